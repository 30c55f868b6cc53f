// What a fault must never do: land a damaged download, replace a good file with a bad one,
// turn a failed listing into deletes, or hide which keys a partial delete left behind.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { filesUnder, md5 } from '../support/harness.js';
import type { Fault } from '../support/fault-proxy.js';
import { assertConverged, fileEvents, sync, tempsUnder, tracked, useFaultFixture } from './setup.js';

const ctx = useFaultFixture();

const remoteState = async (): Promise<Record<string, string>> => {
  const out: Record<string, string> = {};
  for (const o of await ctx.s3.listAll()) out[o.key] = md5(await ctx.s3.getBuffer(o.key));
  return out;
};

describe('a damaged download never lands', () => {
  const cases: [Fault, RegExp][] = [
    ['truncate', /size mismatch|aborted|ECONNRESET|premature/i],
    ['corrupt', /MD5 mismatch/],
    ['reset-mid', /aborted|ECONNRESET|socket hang up|size mismatch/i],
    ['stall-mid', /timed out|TimeoutError|aborted/i],
  ];
  for (const [fault, why] of cases) {
    test(`${fault} on every GET of a newer remote version: the old local file stays, byte for byte`, async () => {
      const { p, s3, proxy } = ctx;
      const v1 = crypto.randomBytes(300_000);
      const v2 = crypto.randomBytes(400_000);
      p.write('media/doc.bin', v1);
      p.write('media/other.txt', 'other');
      assert.equal((await sync(ctx)).code, 0);
      const baseEtag = tracked(p)['media/doc.bin'];
      await s3.putRaw('media/doc.bin', v2);
      await s3.putRaw('media/fresh.txt', 'a download that works');

      proxy.set([{ ops: ['GetObject'], key: 'media/doc.bin', faults: [fault] }]);
      const r = await sync(ctx);
      assert.equal(r.code, 1, r.stderr);
      const failed = fileEvents(r, 'failed');
      assert.deepEqual(failed.map((e) => e['path']), ['media/doc.bin']);
      assert.match(String(failed[0]!['error']), why);
      assert.equal(proxy.log.filter((e) => e.op === 'GetObject' && e.key === 'media/doc.bin' && e.fault).length, 3, 'three download attempts');
      assert.equal(md5(fs.readFileSync(path.join(p.root, 'media/doc.bin'))), md5(v1), 'the previous good file is intact');
      assert.equal(p.read('media/fresh.txt'), 'a download that works');
      assert.deepEqual(tempsUnder(p.root), [], 'no temp file left');
      assert.equal(tracked(p)['media/doc.bin'], baseEtag, 'the base still records the old version');
      const trash = path.join(p.root, 'manifests/default/trash');
      assert.ok(!Object.keys(filesUnder(trash)).some((f) => f.endsWith('doc.bin')), 'nothing was moved aside');

      proxy.set([]);
      const again = await sync(ctx);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(md5(fs.readFileSync(path.join(p.root, 'media/doc.bin'))), md5(v2));
      assert.ok(Object.entries(filesUnder(trash)).some(([f, sum]) => f.endsWith('doc.bin') && sum === md5(v1)), 'v1 kept in the trash');
      await assertConverged(ctx);
    });
  }
});

describe('a failing listing', () => {
  async function preparedChanges(): Promise<{ local: Record<string, string>; remote: Record<string, string>; base: Record<string, string> }> {
    const { p, s3 } = ctx;
    for (let i = 0; i < 8; i++) p.write(`media/f${i}.txt`, `file ${i}`);
    p.write('staticfiles/app.css', 'body {}');
    assert.equal((await sync(ctx)).code, 0);
    p.remove('media/f0.txt'); // would delete remotely
    p.write('media/f1.txt', 'edited locally'); // would upload
    await s3.deleteRaw('media/f2.txt'); // would delete locally
    await s3.putRaw('media/f3.txt', 'edited remotely'); // would download
    return { local: p.files(), remote: await remoteState(), base: tracked(p) };
  }

  async function assertNothingChanged(before: Awaited<ReturnType<typeof preparedChanges>>): Promise<void> {
    assert.deepEqual(ctx.p.files(), before.local, 'local files untouched');
    assert.deepEqual(await remoteState(), before.remote, 'bucket untouched');
    assert.deepEqual(tracked(ctx.p), before.base, 'manifest untouched');
    const writes = ctx.proxy.log.filter((e) => !['ListObjectsV2', 'HeadBucket', 'HeadObject', 'GetObject'].includes(e.op));
    assert.deepEqual(writes, [], 'no write request was sent');
  }

  test('a listing that keeps failing aborts the run: one line, exit 1, nothing changed', async () => {
    const before = await preparedChanges();
    ctx.proxy.set([{ ops: ['ListObjectsV2'], key: 'media/', faults: ['error500', 'reset'] }]);
    const r = await sync(ctx);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, /^storage-sync: S3 ListObjectsV2 media\/: /);
    assert.deepEqual(fileEvents(r), [], 'no item was executed');
    const error = r.events.find((e) => e['event'] === 'error');
    assert.equal(error?.['exitCode'], 1);
    await assertNothingChanged(before);

    ctx.proxy.set([]);
    const again = await sync(ctx);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.summary?.deletedRemote, 1);
    assert.equal(again.summary?.deletedLocal, 1);
    await assertConverged(ctx);
  });

  test('a listing damaged in transit (bytes flipped) aborts the run with a readable line, nothing changed', async () => {
    const before = await preparedChanges();
    ctx.proxy.set([{ ops: ['ListObjectsV2'], key: 'media/', faults: ['corrupt'] }]);
    const r = await sync(ctx);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, /^storage-sync: S3 ListObjectsV2 media\/: .*(could not be read|not valid|unexpected)/i);
    await assertNothingChanged(before);
  });

  test('a second listing page that fails aborts the run; the keys of page one are not read as the whole bucket', async () => {
    const { p, s3 } = ctx;
    const keys = Array.from({ length: 1005 }, (_, i) => `media/n${String(i).padStart(4, '0')}.txt`);
    // Both sides hold the same bytes: the first run records the base without a transfer.
    for (const k of keys) p.write(k, k);
    for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => s3.putRaw(k, k)));
    const first = await sync(ctx);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.summary?.recorded, 1005);
    assert.equal(Object.keys(p.files()).length, 1005);
    const before = { local: p.files(), remote: Object.fromEntries((await s3.listAll()).map((o) => [o.key, o.etag])), base: tracked(p) };
    ctx.proxy.set([{ ops: ['ListObjectsV2'], query: (q) => q.has('continuation-token'), faults: ['error500'] }]);
    const r = await sync(ctx);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /ListObjectsV2 media\//);
    assert.ok(ctx.proxy.faulted().length > 0);
    assert.deepEqual(fileEvents(r), []);
    assert.deepEqual(p.files(), before.local);
    assert.deepEqual(Object.fromEntries((await s3.listAll()).map((o) => [o.key, o.etag])), before.remote);
    assert.deepEqual(tracked(p), before.base);
  });
});

describe('DeleteObjects', () => {
  async function withThreeLocalDeletes(): Promise<void> {
    for (let i = 0; i < 8; i++) ctx.p.write(`media/f${i}.txt`, `file ${i}`);
    assert.equal((await sync(ctx)).code, 0);
    for (const i of [0, 1, 2]) ctx.p.remove(`media/f${i}.txt`);
  }

  test('a partial failure is reported per key; the refused key stays tracked and goes next run', async () => {
    await withThreeLocalDeletes();
    ctx.proxy.set([{ ops: ['DeleteObjects'], key: 'media/f1.txt', faults: ['key-error'] }]);
    const r = await sync(ctx);
    assert.equal(r.code, 1, r.stderr);
    const byPath = Object.fromEntries(fileEvents(r).map((e) => [e['path'], e]));
    assert.equal(byPath['media/f0.txt']?.['status'], 'done');
    assert.equal(byPath['media/f2.txt']?.['status'], 'done');
    assert.equal(byPath['media/f1.txt']?.['status'], 'failed');
    assert.match(String(byPath['media/f1.txt']?.['error']), /^media\/f1\.txt: AccessDenied: Access Denied$/);
    assert.equal(r.summary?.deletedRemote, 2);
    assert.equal(r.summary?.failed, 1);
    assert.deepEqual(ctx.proxy.faulted().map((e) => e.keyErrors), [['media/f1.txt']]);
    const remote = (await ctx.s3.listAll()).map((o) => o.key);
    assert.ok(remote.includes('media/f1.txt') && !remote.includes('media/f0.txt') && !remote.includes('media/f2.txt'));
    const base = tracked(ctx.p);
    assert.ok('media/f1.txt' in base && !('media/f0.txt' in base) && !('media/f2.txt' in base));

    ctx.proxy.set([]);
    const again = await sync(ctx);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.summary?.deletedRemote, 1);
    await assertConverged(ctx);
  });

  test('a DeleteObjects request that keeps failing fails every key in it, and deletes nothing', async () => {
    await withThreeLocalDeletes();
    ctx.proxy.set([{ ops: ['DeleteObjects'], faults: ['error500', 'reset'] }]);
    const r = await sync(ctx);
    assert.equal(r.code, 1, r.stderr);
    const failed = fileEvents(r, 'failed');
    assert.deepEqual(failed.map((e) => e['path']).sort(), ['media/f0.txt', 'media/f1.txt', 'media/f2.txt']);
    for (const e of failed) assert.match(String(e['error']), new RegExp(`^${String(e['key']).replace('.', '\\.')}: S3 DeleteObjects 3 keys: `));
    assert.equal((await ctx.s3.listAll()).length, 8);
    assert.equal(Object.keys(tracked(ctx.p)).length, 8);
    ctx.proxy.set([]);
    assert.equal((await sync(ctx)).code, 0);
    await assertConverged(ctx);
  });

  test('a HEAD before a delete that keeps failing fails that delete only', async () => {
    await withThreeLocalDeletes();
    ctx.proxy.set([{ ops: ['HeadObject'], key: 'media/f2.txt', faults: ['error500'] }]);
    const r = await sync(ctx);
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(fileEvents(r, 'failed').map((e) => e['path']), ['media/f2.txt']);
    assert.equal(r.summary?.deletedRemote, 2);
    assert.ok((await ctx.s3.listAll()).some((o) => o.key === 'media/f2.txt'));
  });
});

describe('multipart uploads', () => {
  test('failing parts are retried; a part that always fails fails the file, aborts the upload and stores nothing', async () => {
    const { p, s3, proxy } = ctx;
    // Below the default threshold these would go up in one PUT: multipart is asked for, in a
    // config file outside the synced tree.
    const config = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ssync-cfg-')), 'config.json');
    fs.writeFileSync(config, JSON.stringify({ multipartThreshold: 8 * 1024 * 1024 }));
    const args = ['--config', config];
    const big = crypto.randomBytes(12 * 1024 * 1024);
    const big2 = crypto.randomBytes(10 * 1024 * 1024);
    p.write('media/big.bin', big);
    p.write('media/big2.bin', big2);
    proxy.set([
      { ops: ['UploadPart'], key: 'media/big.bin', faults: ['error500', 'reset', 'reset-mid'], times: 2 },
      { ops: ['UploadPart'], key: 'media/big2.bin', faults: ['error500'] },
    ]);
    const r = await sync(ctx, { args });
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(fileEvents(r, 'failed').map((e) => e['path']), ['media/big2.bin']);
    assert.equal(md5(await s3.getBuffer('media/big.bin')), md5(big));
    assert.ok(!(await s3.listAll()).some((o) => o.key === 'media/big2.bin'), 'no object from a failed multipart upload');
    assert.ok(proxy.log.some((e) => e.op === 'AbortMultipartUpload' && e.key === 'media/big2.bin'), 'the upload was aborted');
    proxy.set([]);
    assert.equal((await sync(ctx, { args })).code, 0);
    await assertConverged(ctx);
    fs.rmSync(path.dirname(config), { recursive: true });
  });
});
