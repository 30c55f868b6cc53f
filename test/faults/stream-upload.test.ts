// A streamed PutObject cannot be rewound: every try must send a fresh stream from the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { md5 } from '../support/harness.js';
import { assertConverged, fileEvents, sync, tracked, useFaultFixture } from './setup.js';

const ctx = useFaultFixture();

test('a streamed PUT reset mid-body is sent again from a fresh stream and ends correct', async () => {
  const { p, s3, proxy } = ctx;
  const video = crypto.randomBytes(9 * 1024 * 1024 + 123);
  p.write('media/video.bin', video);
  p.write('media/note.txt', 'small');
  proxy.set([{ ops: ['PutObject'], key: 'media/video.bin', faults: ['reset-request'], times: 2 }]);
  const r = await sync(ctx);
  assert.equal(r.code, 0, r.stderr + JSON.stringify(fileEvents(r)));
  const puts = proxy.log.filter((e) => e.op === 'PutObject' && e.key === 'media/video.bin');
  assert.deepEqual(puts.map((e) => e.fault ?? 'ok'), ['reset-request', 'reset-request', 'ok'], 'cut twice while sending, then whole');
  assert.ok(!proxy.log.some((e) => e.op === 'CreateMultipartUpload'), 'one PUT, not multipart');
  assert.equal(md5(await s3.getBuffer('media/video.bin')), md5(video));
  assert.equal(tracked(p)['media/video.bin'], md5(video));
  assert.doesNotMatch(r.stderr, /non-retryable/);
  proxy.set([]);
  const again = await sync(ctx);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(Number(again.summary?.uploaded) + Number(again.summary?.downloaded), 0);
  await assertConverged(ctx);
});

test('a streamed PUT cut on every try fails the file (exit 1) after the retries, unrecorded and not stored', async () => {
  const { p, s3, proxy } = ctx;
  p.write('media/ok.txt', 'fine');
  const body = crypto.randomBytes(3 * 1024 * 1024);
  p.write('media/doomed.bin', body);
  proxy.set([{ ops: ['PutObject'], key: 'media/doomed.bin', faults: ['reset-request'] }]);
  const r = await sync(ctx);
  assert.equal(r.code, 1, r.stderr);
  const failed = fileEvents(r, 'failed');
  assert.deepEqual(failed.map((e) => e['path']), ['media/doomed.bin']);
  assert.match(String(failed[0]!['error']), /^S3 PutObject media\/doomed\.bin: /);
  assert.equal(proxy.log.filter((e) => e.op === 'PutObject' && e.key === 'media/doomed.bin').length, 5, 'the SDK\'s five tries, each a fresh stream');
  assert.doesNotMatch(r.stderr, /non-retryable/);
  assert.ok(!(await s3.listAll()).some((o) => o.key === 'media/doomed.bin'));
  assert.deepEqual(Object.keys(tracked(p)), ['media/ok.txt']);
  assert.equal(p.files()['media/doomed.bin'], md5(body), 'the local file is untouched');
});

test('a streamed PUT damaged on the way is caught by its ETag and sent again', async () => {
  const { p, s3, proxy } = ctx;
  const clip = crypto.randomBytes(6 * 1024 * 1024);
  p.write('media/clip.bin', clip);
  proxy.set([{ ops: ['PutObject'], key: 'media/clip.bin', faults: ['corrupt-request'], times: 1 }]);
  const r = await sync(ctx);
  assert.equal(r.code, 0, r.stderr + JSON.stringify(fileEvents(r)));
  assert.equal(proxy.faulted().length, 1);
  assert.equal(md5(await s3.getBuffer('media/clip.bin')), md5(clip));
  assert.equal(tracked(p)['media/clip.bin'], md5(clip));
});
