import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { EtagHasher, MiB, etagPartCount, multipartEtag, normalizeEtag, partSizeFor } from '../../src/remote/etag.js';

const md5 = (data: Buffer) => createHash('md5').update(data).digest();

describe('partSizeFor', () => {
  it('keeps the configured part size while it needs at most 10,000 parts', () => {
    assert.equal(partSizeFor(12 * MiB, 8 * MiB), 8 * MiB);
    assert.equal(partSizeFor(10_000 * 8 * MiB, 8 * MiB), 8 * MiB);
    assert.equal(partSizeFor(12 * MiB), 8 * MiB, 'defaults to 8 MiB');
  });

  it('never goes below the 5 MiB S3 minimum', () => {
    assert.equal(partSizeFor(12 * MiB, 1 * MiB), 5 * MiB);
  });

  it('grows to the smallest whole MiB that fits in 10,000 parts', () => {
    for (const size of [10_000 * 8 * MiB + 1, 100 * 1024 * MiB, 5 * 1024 * 1024 * MiB]) {
      const part = partSizeFor(size, 8 * MiB);
      assert.equal(part % MiB, 0);
      assert.ok(Math.ceil(size / part) <= 10_000, `${size} in ${part}`);
      assert.ok(Math.ceil(size / (part - MiB)) > 10_000, `${part} is not the smallest`);
    }
  });
});

describe('multipartEtag', () => {
  it('is the MD5 of the concatenated binary part MD5s, then -parts', () => {
    const parts = [randomBytes(1000), randomBytes(10)];
    const expected = createHash('md5').update(Buffer.concat(parts.map(md5))).digest('hex');
    assert.equal(multipartEtag(parts.map(md5)), `${expected}-2`);
  });

  it('gives a one-part upload -1, unlike its plain MD5', () => {
    const data = Buffer.from('hello');
    const etag = multipartEtag([md5(data)]);
    assert.match(etag, /^[0-9a-f]{32}-1$/);
    assert.notEqual(etag.slice(0, 32), md5(data).toString('hex'));
  });
});

describe('normalizeEtag and etagPartCount', () => {
  it('strips quotes and lowercases', () => {
    assert.equal(normalizeEtag('"5EB63BBBE01EEED093CB22BB8F5ACDC3"'), '5eb63bbbe01eeed093cb22bb8f5acdc3');
    assert.equal(normalizeEtag('5eb63bbbe01eeed093cb22bb8f5acdc3-12'), '5eb63bbbe01eeed093cb22bb8f5acdc3-12');
  });

  it('reads the part count of multipart ETags only', () => {
    assert.equal(etagPartCount('"5eb63bbbe01eeed093cb22bb8f5acdc3-3"'), 3);
    assert.equal(etagPartCount('5eb63bbbe01eeed093cb22bb8f5acdc3'), undefined);
  });
});

describe('EtagHasher', () => {
  it('gives the same MD5 and multipart ETag however the stream is chunked', () => {
    const partSize = 5 * MiB;
    const data = randomBytes(12 * MiB + 123);
    const hasher = new EtagHasher(partSize);
    for (let offset = 0; offset < data.length; ) {
      const n = Math.min(data.length - offset, 1 + Math.floor(Math.random() * 3 * MiB));
      hasher.update(data.subarray(offset, offset + n));
      offset += n;
    }
    const parts = [0, 1, 2].map((i) => md5(data.subarray(i * partSize, (i + 1) * partSize)));
    assert.deepEqual(hasher.digest(), { md5: md5(data).toString('hex'), multipartEtag: multipartEtag(parts) });
  });

  it('does not add an empty part when the size is a multiple of the part size', () => {
    const data = randomBytes(2 * 5 * MiB);
    const hasher = new EtagHasher(5 * MiB);
    hasher.update(data);
    assert.equal(etagPartCount(hasher.digest().multipartEtag), 2);
  });
});
