// The benchmark's correctness column: a wrong result must be caught, locally and in the bucket,
// including same-size content changes and multipart objects (whose ETag is not the MD5).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { Checker } from '../../bench/verify.js';
import type { Expected } from '../../bench/tree.js';
import { startS3Server, type TestS3 } from '../support/s3-server.js';
import { md5 } from '../support/harness.js';

let s3: TestS3;
before(async () => {
  s3 = await startS3Server();
});
after(async () => {
  await s3.stop();
});

function folder(files: Record<string, Buffer>): { dir: string; expected: Expected } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-verify-'));
  const expected: Expected = new Map();
  for (const [rel, body] of Object.entries(files)) {
    fs.mkdirSync(path.join(dir, path.dirname(rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), body);
    expected.set(rel, { size: body.length, md5: md5(body) });
  }
  return { dir, expected };
}

test('checkLocal: same-size content changes, extra and missing files are wrong; an untouched folder is right', () => {
  const { dir, expected } = folder({ 'a/x.bin': Buffer.from('hello world'), 'b.bin': Buffer.from('second') });
  try {
    const checker = new Checker(s3.client, s3.bucket);
    assert.deepEqual(checker.checkLocal(dir, expected), { ok: true, problems: [] });
    fs.writeFileSync(path.join(dir, 'a/x.bin'), 'hello World');
    // The checker rehashes files whose stat moved; make sure it moved even within one clock tick.
    fs.utimesSync(path.join(dir, 'a/x.bin'), new Date(Date.now() + 60_000), new Date(Date.now() + 60_000));
    fs.writeFileSync(path.join(dir, 'extra.bin'), 'x');
    fs.rmSync(path.join(dir, 'b.bin'));
    const v = checker.checkLocal(dir, expected);
    assert.equal(v.ok, false);
    assert.deepEqual([...v.problems].sort(), ['local a/x.bin: content differs', 'local extra extra.bin', 'local missing b.bin']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('checkRemote: plain ETags must be the MD5, multipart ETags must match the content at some part size', async () => {
  await s3.reset();
  const big = Buffer.alloc(6 * 1024 * 1024 + 123, 7);
  big.write('start of the big file');
  const { dir, expected } = folder({ 'small.bin': Buffer.from('small'), 'big.bin': big, 'same.bin': Buffer.from('abcdef') });
  try {
    const checker = new Checker(s3.client, s3.bucket);
    await s3.putRaw('p/small.bin', 'small');
    await s3.putRaw('p/same.bin', 'abcdef');
    await multipart(`p/big.bin`, big, 5 * 1024 * 1024);
    assert.deepEqual(await checker.checkRemote('p/', expected, dir), { ok: true, problems: [] });

    // Same sizes, different bytes: a tool that compared sizes only would pass this.
    await s3.putRaw('p/same.bin', 'abcdeF');
    const wrongBig = Buffer.from(big);
    wrongBig[wrongBig.length - 1] = 8;
    await multipart('p/big.bin', wrongBig, 5 * 1024 * 1024);
    await s3.putRaw('p/stray.bin', 'x');
    await s3.deleteRaw('p/small.bin');
    const v = await checker.checkRemote('p/', expected, dir);
    assert.equal(v.ok, false);
    const text = v.problems.join('\n');
    assert.match(text, /remote p\/same\.bin: ETag [0-9a-f]{32} is not the content's MD5/);
    assert.match(text, /remote p\/big\.bin: multipart ETag [0-9a-f]{32}-2 matches no part size/);
    assert.match(text, /remote extra p\/stray\.bin/);
    assert.match(text, /remote missing p\/small\.bin/);

    await checker.deletePrefix('p/');
    assert.deepEqual(await s3.listAll('p/'), []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

async function multipart(key: string, body: Buffer, partSize: number): Promise<void> {
  const { UploadId } = await s3.client.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: key }));
  const parts: { ETag: string; PartNumber: number }[] = [];
  for (let i = 0, n = 1; i < body.length; i += partSize, n++) {
    const r = await s3.client.send(new UploadPartCommand({ Bucket: s3.bucket, Key: key, UploadId, PartNumber: n, Body: body.subarray(i, i + partSize) }));
    parts.push({ ETag: r.ETag!, PartNumber: n });
  }
  await s3.client.send(new CompleteMultipartUploadCommand({ Bucket: s3.bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
}
