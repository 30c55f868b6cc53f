// A damaged manifest file must be an error, never a crash: lmdb-js maps the file and dies with
// SIGSEGV or SIGBUS on an empty, zeroed, truncated or foreign one (measured with lmdb 3.5.6).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Manifest } from '../../src/manifest/manifest.js';
import { lmdbFileProblem } from '../../src/manifest/lmdb-check.js';
import { malformed, selfMismatch } from '../../src/engine/verify.js';
import { UsageError } from '../../src/core/errors.js';

const entry = {
  key: 'media/a.txt',
  local: { size: 5, mtimeNs: '1700000000000000000', ino: 42, md5: '2c1743a391305fbf367df8e4f069f9f9', xxh64: '0123456789abcdef' },
  remote: { etag: '2c1743a391305fbf367df8e4f069f9f9', size: 5, lastModified: 1700000000000, md5: '2c1743a391305fbf367df8e4f069f9f9' },
  recordedAtNs: '1700000001000000000',
};

test('a real manifest passes the header check; damaged copies are refused with a reason, not a crash', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssync-damage-'));
  try {
    const file = path.join(dir, 'manifest.lmdb');
    const m = Manifest.open(file, { readOnly: false });
    for (let i = 0; i < 500; i++) m.put(`media/f${i}.txt`, { ...entry, key: `media/f${i}.txt` });
    await m.close();
    assert.equal(lmdbFileProblem(file), undefined);
    const good = fs.readFileSync(file);
    const psize = good.readUInt32LE(48);
    assert.ok(good.length > 2 * psize, 'the tree lies beyond the two meta pages');

    const cases: [string, Buffer, RegExp][] = [
      ['text', Buffer.from('not a database'), /too short/],
      ['zeros', Buffer.alloc(good.length), /not an LMDB data file/],
      ['truncated', good.subarray(0, 2 * psize), /is truncated/],
      ['foreign', Buffer.concat([Buffer.from('SQLite format 3\0'), Buffer.alloc(8192)]), /not an LMDB data file/],
    ];
    for (const [name, bytes, why] of cases) {
      const f = path.join(dir, `${name}.lmdb`);
      fs.writeFileSync(f, bytes);
      assert.match(lmdbFileProblem(f) ?? '', why, name);
      for (const readOnly of [true, false]) {
        assert.throws(() => Manifest.open(f, { readOnly }), (err: unknown) => err instanceof UsageError && /manifest rebuild/.test(err.message), name);
      }
      assert.ok(fs.readFileSync(f).equals(bytes), `${name}: left as it was`);
    }
    // An empty file (creation cut short) is no damage: an empty base, initialised on first write.
    const empty = path.join(dir, 'empty.lmdb');
    fs.writeFileSync(empty, '');
    assert.equal(lmdbFileProblem(empty), undefined);
    const ro = Manifest.open(empty, { readOnly: true });
    assert.equal(ro.count(), 0);
    await ro.close();
    const rw = Manifest.open(empty, { readOnly: false });
    rw.put('media/a.txt', entry);
    await rw.close();
    assert.equal(lmdbFileProblem(empty), undefined);
    const reopened = Manifest.open(file, { readOnly: true });
    assert.equal(reopened.count(), 500);
    await reopened.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('entry checks: shape, and the two halves of B agreeing with each other', () => {
  assert.equal(malformed(entry), undefined);
  assert.equal(selfMismatch(entry), undefined);
  assert.match(malformed(null) ?? '', /not an entry \(null\)/);
  assert.match(malformed({ ...entry, local: { ...entry.local, md5: 'xyz' } }) ?? '', /local MD5/);
  assert.match(malformed({ ...entry, recordedAtNs: 12 }) ?? '', /recordedAtNs/);
  assert.match(malformed({ ...entry, remote: { ...entry.remote, etag: '""' } }) ?? '', /ETag is empty/);
  assert.match(selfMismatch({ ...entry, remote: { ...entry.remote, size: 6 } }) ?? '', /sizes? .*differ/);
  const other = 'ffffffffffffffffffffffffffffffff';
  assert.match(selfMismatch({ ...entry, remote: { ...entry.remote, etag: other } }) ?? '', /single-part ETag .* is not the recorded MD5/);
  // A multipart ETag never equals the MD5: nothing to cross-check without a HEAD.
  assert.equal(selfMismatch({ ...entry, remote: { ...entry.remote, etag: `${other}-3` } }), undefined);
});
