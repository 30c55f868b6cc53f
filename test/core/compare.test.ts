import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  carryHashes,
  isMultipartEtag,
  isRacy,
  localChange,
  needsHash,
  normalizeEtag,
  remoteChange,
  remoteMd5,
  sameContent,
  statEqual,
} from '../../src/core/compare.js';
import type { BaseEntry, LocalFile, RemoteObject } from '../../src/core/types.js';

const MD5 = 'a'.repeat(32);
const OTHER_MD5 = 'b'.repeat(32);
const MULTI = `${'c'.repeat(32)}-3`;
const T0 = 1_700_000_000_000_000_000n;

const base = (over: Partial<BaseEntry['remote']> = {}): BaseEntry => ({
  local: { size: 10, mtimeNs: String(T0), ino: 7, md5: MD5, xxh64: 'x1' },
  remote: { etag: MD5, size: 10, lastModified: 1, md5: MD5, ...over },
  recordedAtNs: String(T0 + 5_000_000_000n),
});
const local = (over: Partial<LocalFile> = {}): LocalFile => ({
  size: 10,
  mtimeNs: String(T0),
  ino: 7,
  ...over,
});
const remote = (over: Partial<RemoteObject> = {}): RemoteObject => ({
  etag: MD5,
  size: 10,
  lastModified: 1,
  ...over,
});

describe('etags', () => {
  test('multipart ETags are hex-dash-parts, case-insensitive', () => {
    assert.equal(isMultipartEtag(MULTI), true);
    assert.equal(isMultipartEtag(MULTI.toUpperCase()), true);
    assert.equal(isMultipartEtag(MD5), false);
    assert.equal(isMultipartEtag(`${MD5}-`), false);
  });

  test('normalizeEtag strips quotes and W/ and lowercases', () => {
    assert.equal(normalizeEtag(`"${MD5.toUpperCase()}"`), MD5);
    assert.equal(normalizeEtag(`W/"${MULTI}"`), MULTI);
    assert.equal(normalizeEtag(MD5), MD5);
  });
});

describe('local side', () => {
  test('statEqual compares size, mtime and inode', () => {
    assert.equal(statEqual(local(), base()), true);
    assert.equal(statEqual(local({ size: 11 }), base()), false);
    assert.equal(statEqual(local({ mtimeNs: String(T0 + 1n) }), base()), false);
    assert.equal(statEqual(local({ ino: 8 }), base()), false);
  });

  test('a file modified at or after the base was recorded is racy', () => {
    const b = base();
    assert.equal(isRacy(local(), b), false);
    assert.equal(isRacy(local({ mtimeNs: b.recordedAtNs }), b), true);
  });

  test('needsHash: no base, stat moved, or racy', () => {
    const b = base();
    assert.equal(needsHash(local(), undefined), true);
    assert.equal(needsHash(local(), b), false);
    assert.equal(needsHash(local({ ino: 9 }), b), true);
    assert.equal(needsHash(local(), { ...b, recordedAtNs: String(T0) }), true);
  });

  test('carryHashes copies the base hashes without touching the input', () => {
    const l = local();
    assert.deepEqual(carryHashes(l, base()), { ...l, md5: MD5, xxh64: 'x1' });
    assert.equal(l.md5, undefined);
  });

  test('localChange covers every state', () => {
    const b = base();
    const moved = String(T0 + 1n);
    assert.equal(localChange(undefined, undefined), 'absent');
    assert.equal(localChange(local(), undefined), 'new');
    assert.equal(localChange(undefined, b), 'deleted');
    assert.equal(localChange(local(), b), 'unchanged');
    assert.equal(localChange(local({ mtimeNs: moved, xxh64: 'x1' }), b), 'touched');
    assert.equal(localChange(local({ mtimeNs: moved, xxh64: 'x2' }), b), 'changed');
  });

  test('a racy stat-equal file is hashed and judged by content', () => {
    const b = { ...base(), recordedAtNs: String(T0) };
    assert.equal(localChange(local({ xxh64: 'x1' }), b), 'touched');
    assert.equal(localChange(local({ xxh64: 'x2' }), b), 'changed');
  });

  test('localChange throws when a needed hash is missing', () => {
    assert.throws(() => localChange(local({ ino: 9 }), base()), /hash before planning/);
  });
});

describe('remote side', () => {
  test('remoteChange compares the normalized ETag and the size', () => {
    const b = base();
    assert.equal(remoteChange(undefined, undefined), 'absent');
    assert.equal(remoteChange(remote(), undefined), 'new');
    assert.equal(remoteChange(undefined, b), 'deleted');
    assert.equal(remoteChange(remote({ etag: `"${MD5.toUpperCase()}"` }), b), 'unchanged');
    assert.equal(remoteChange(remote({ etag: OTHER_MD5 }), b), 'changed');
    assert.equal(remoteChange(remote({ size: 11 }), b), 'changed');
  });

  test('remoteMd5: a single-part ETag is the MD5', () => {
    assert.equal(remoteMd5(remote({ etag: `"${MD5}"` }), undefined), MD5);
  });

  test('remoteMd5: multipart uses the base MD5 only for the same ETag, then x-amz-meta-md5', () => {
    const b = base({ etag: MULTI, md5: OTHER_MD5 });
    assert.equal(remoteMd5(remote({ etag: MULTI }), b), OTHER_MD5);
    assert.equal(remoteMd5(remote({ etag: `${'d'.repeat(32)}-3` }), b), undefined);
    assert.equal(remoteMd5(remote({ etag: `${'d'.repeat(32)}-3`, md5: MD5 }), b), MD5);
    assert.equal(remoteMd5(remote({ etag: MULTI }), undefined), undefined);
  });

  test('remoteMd5: a non-MD5 single-part ETag (SSE-KMS) is not taken as the MD5', () => {
    assert.equal(remoteMd5(remote({ etag: 'kms-opaque-tag' }), undefined), undefined);
  });
});

describe('sameContent', () => {
  const hashed = local({ md5: MD5, xxh64: 'x1' });

  test('different sizes are different without looking at hashes', () => {
    assert.equal(sameContent(local({ size: 11 }), remote(), undefined), false);
  });

  test('single-part: local MD5 against the ETag', () => {
    assert.equal(sameContent(hashed, remote(), undefined), true);
    assert.equal(sameContent(hashed, remote({ etag: OTHER_MD5 }), undefined), false);
  });

  test('multipart: same content through the base MD5 recorded for that ETag', () => {
    assert.equal(sameContent(hashed, remote({ etag: MULTI }), base({ etag: MULTI })), true);
  });

  test('multipart: through x-amz-meta-md5', () => {
    assert.equal(sameContent(hashed, remote({ etag: MULTI, md5: MD5 }), undefined), true);
  });

  test('multipart: through the locally computed multipart ETag', () => {
    const l = { ...hashed, multipartEtag: `"${MULTI.toUpperCase()}"` };
    assert.equal(sameContent(l, remote({ etag: MULTI }), undefined), true);
  });

  test('multipart with nothing known is treated as different', () => {
    assert.equal(sameContent(hashed, remote({ etag: MULTI }), undefined), false);
  });

  test('a plain MD5 never matches the hex part of a -N ETag', () => {
    assert.equal(sameContent(hashed, remote({ etag: `${MD5}-1` }), undefined), false);
    const asMultipart = { ...hashed, multipartEtag: MD5 };
    assert.equal(sameContent(asMultipart, remote({ etag: `${MD5}-2` }), undefined), false);
  });

  test('throws when the local MD5 is needed but missing', () => {
    assert.throws(() => sameContent(local(), remote(), undefined), /hash before planning/);
  });
});
