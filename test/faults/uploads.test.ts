// Upload faults: bytes damaged on the way to a server that does not check them must not be
// recorded as synced.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { md5 } from '../support/harness.js';
import { assertConverged, fileEvents, sync, tracked, useFaultFixture } from './setup.js';

const ctx = useFaultFixture();

test('a PUT or a part damaged on the way is caught by its ETag and sent again', async () => {
  const { p, s3, proxy } = ctx;
  const small = crypto.randomBytes(100_000);
  const big = crypto.randomBytes(10 * 1024 * 1024);
  p.write('media/small.bin', small);
  p.write('media/big.bin', big);
  p.write('media/edit.txt', 'v1');
  assert.equal((await sync(ctx)).code, 0);
  p.write('media/edit.txt', 'v2, edited');
  p.write('media/new.txt', 'new file');
  await s3.deleteRaw('media/small.bin');
  await s3.deleteRaw('media/big.bin');
  p.write('media/small.bin', crypto.randomBytes(100_000));
  p.write('media/big.bin', crypto.randomBytes(10 * 1024 * 1024));
  proxy.set([{ ops: ['PutObject', 'UploadPart'], faults: ['corrupt-request'], times: 1 }]);
  const r = await sync(ctx);
  assert.ok(proxy.faulted().length >= 4, 'the proxy damaged the first PUT of each file');
  assert.equal(r.code, 0, r.stderr + JSON.stringify(fileEvents(r)));
  const local = p.files();
  for (const key of ['media/small.bin', 'media/big.bin', 'media/edit.txt', 'media/new.txt']) {
    assert.equal(md5(await s3.getBuffer(key)), local[key], `${key} holds the local bytes`);
  }
  proxy.set([]);
  const again = await sync(ctx);
  assert.equal(again.code, 0);
  assert.equal(Number(again.summary?.uploaded) + Number(again.summary?.downloaded), 0);
  await assertConverged(ctx);
  assert.equal(Object.keys(tracked(p)).length, 4);
});

test('a PUT damaged on every try fails the file (exit 1), unrecorded', async () => {
  const { p, proxy } = ctx;
  p.write('media/ok.txt', 'fine');
  assert.equal((await sync(ctx)).code, 0);
  const body = crypto.randomBytes(50_000);
  p.write('media/doomed.bin', body);
  proxy.set([{ ops: ['PutObject'], key: 'media/doomed.bin', faults: ['corrupt-request'] }]);
  const r = await sync(ctx);
  assert.equal(r.code, 1, r.stderr);
  const failed = fileEvents(r, 'failed');
  assert.deepEqual(failed.map((e) => e['path']), ['media/doomed.bin']);
  assert.match(String(failed[0]!['error']), /^S3 PutObject media\/doomed\.bin: stored ETag [0-9a-f]{32} does not match the content sent/);
  assert.equal(proxy.log.filter((e) => e.op === 'PutObject').length, 3, 'three tries');
  assert.ok(!('media/doomed.bin' in tracked(p)), 'not recorded as synced');
  assert.equal(p.files()['media/doomed.bin'], md5(body), 'the local file is untouched');
  // Left alone (see the report): the next run then reads the damaged object as a remote version
  // in conflict, and by the default policy it wins (the local file is kept in the trash).
});

test('with conditional writes (as on R2), a PUT whose answer was lost is not sent over again blindly', async () => {
  const { p, s3, proxy } = ctx;
  p.write('media/edit.txt', 'v1');
  p.write('media/keep.txt', 'keep');
  assert.equal((await sync(ctx)).code, 0);
  p.write('media/edit.txt', 'v2, edited locally');
  p.write('media/new.txt', 'new');
  proxy.set([{ ops: ['PutObject'], faults: ['reset-mid'], times: 1 }]);
  proxy.conditionalWrites = true;
  const r = await sync(ctx);
  // The first PUT landed; its retry meets its own object and gets 412: reported, not failed.
  assert.equal(r.code, 0, r.stderr);
  assert.equal(proxy.faulted().length, 2);
  const skipped = fileEvents(r, 'skipped');
  assert.deepEqual(skipped.map((e) => e['path']).sort(), ['media/edit.txt', 'media/new.txt']);
  for (const e of skipped) assert.match(String(e['error']), /remote object changed since it was listed/);
  assert.equal((await s3.getBuffer('media/edit.txt')).toString(), 'v2, edited locally');
  // The next run finds both sides equal and records them: no transfer, no conflict.
  proxy.set([]);
  const again = await sync(ctx);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.summary?.uploaded, 0);
  assert.equal(again.summary?.downloaded, 0);
  assert.equal(again.summary?.conflicts, 0);
  assert.equal(again.summary?.recorded, 2, again.stdout);
  assert.equal(p.read('media/edit.txt'), 'v2, edited locally');
  await assertConverged(ctx);
});
