import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getEventListeners } from 'node:events';
import { Readable } from 'node:stream';
import { execFileSync } from 'node:child_process';
import { ItemError } from '../../src/core/errors.js';
import { FLUSH_BYTES, writeAtomic } from '../../src/local/atomic-write.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function folder(): string {
  const d = mkdtempSync(join(tmpdir(), 'ssync-write-'));
  dirs.push(d);
  return d;
}

const md5 = (b: Buffer | string) => createHash('md5').update(b).digest('hex');

async function* chunks(...parts: string[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield Buffer.from(p);
}

test('writes content, creates folders, sets mtime and returns the final stat and hashes', async () => {
  const dir = folder();
  const dest = join(dir, 'media/2026/a.jpg');
  const mtimeMs = Date.UTC(2025, 0, 2, 3, 4, 5, 678);
  let bytes = 0;
  const ac = new AbortController();
  const r = await writeAtomic(dest, chunks('hello ', 'world'), {
    runId: 'r1',
    signal: ac.signal,
    expectSize: 11,
    expectMd5: md5('hello world'),
    mtimeMs,
    onBytes: (n) => (bytes += n),
  });
  assert.equal(readFileSync(dest, 'utf8'), 'hello world');
  const st = statSync(dest, { bigint: true });
  assert.equal(st.mtimeNs, BigInt(mtimeMs) * 1_000_000n);
  assert.equal(r.mtimeNs, st.mtimeNs.toString());
  assert.equal(r.ino, Number(st.ino));
  assert.equal(r.md5, md5('hello world'));
  assert.match(r.xxh64, /^[0-9a-f]{16}$/);
  assert.equal(r.size, 11);
  assert.equal(bytes, 11);
  assert.equal(getEventListeners(ac.signal, 'abort').length, 0, 'abort listeners removed');
  assert.deepEqual(readdirSync(join(dir, 'media/2026')), ['a.jpg']);
});

test('accepts a Node readable stream and replaces an existing file', async () => {
  const dir = folder();
  const dest = join(dir, 'a.txt');
  writeFileSync(dest, 'old');
  await writeAtomic(dest, Readable.from([Buffer.from('new content')]), { runId: 'r1', expectSize: 11 });
  assert.equal(readFileSync(dest, 'utf8'), 'new content');
});

test('an MD5 mismatch leaves the old file intact and no temp file', async () => {
  const dir = folder();
  const dest = join(dir, 'a.txt');
  writeFileSync(dest, 'old');
  await assert.rejects(
    writeAtomic(dest, chunks('new'), { runId: 'r1', expectSize: 3, expectMd5: md5('other'), label: 'media/a.txt' }),
    (err: unknown) => {
      assert.ok(err instanceof ItemError);
      assert.equal(err.message, `download of media/a.txt: MD5 mismatch (expected ${md5('other')}, got ${md5('new')})`);
      return true;
    },
  );
  assert.equal(readFileSync(dest, 'utf8'), 'old');
  assert.deepEqual(readdirSync(dir), ['a.txt']);
});

test('a short or overlong body is a size mismatch and changes nothing', async () => {
  const dir = folder();
  const dest = join(dir, 'a.txt');
  await assert.rejects(writeAtomic(dest, chunks('abc'), { runId: 'r1', expectSize: 10 }), /size mismatch/);
  assert.deepEqual(readdirSync(dir), []);
  let pulled = 0;
  async function* endless(): AsyncGenerator<Buffer> {
    for (;;) {
      pulled++;
      yield Buffer.alloc(1024);
    }
  }
  await assert.rejects(
    writeAtomic(dest, endless(), { runId: 'r2', expectSize: 4096 }),
    /size mismatch \(expected 4096 bytes, got more than 4096\)/,
  );
  assert.equal(pulled, 5, 'stopped at the first chunk past the announced size');
  assert.deepEqual(readdirSync(dir), []);
});

test('an aborted stream leaves no temp file and the destination untouched', async () => {
  const dir = folder();
  const dest = join(dir, 'a.txt');
  writeFileSync(dest, 'old');
  const ac = new AbortController();
  let cleanedUp = false;
  async function* stalls(): AsyncGenerator<Buffer> {
    try {
      yield Buffer.from('first part');
      ac.abort(new Error('user abort'));
      await new Promise(() => undefined); // a network read that never completes
    } finally {
      cleanedUp = true;
    }
  }
  await assert.rejects(writeAtomic(dest, stalls(), { runId: 'r1', expectSize: 100, signal: ac.signal }), /user abort/);
  assert.equal(readFileSync(dest, 'utf8'), 'old');
  assert.deepEqual(readdirSync(dir), ['a.txt']);
  assert.equal(cleanedUp, false, 'a generator stuck in next() cannot run finally; we did not wait for it');

  const stream = new Readable({ read() {} });
  stream.push('partial');
  const ac2 = new AbortController();
  setTimeout(() => ac2.abort(new Error('stop')), 20);
  await assert.rejects(writeAtomic(dest, stream, { runId: 'r2', expectSize: 100, signal: ac2.signal }), /stop/);
  assert.equal(stream.destroyed, true);
  assert.deepEqual(readdirSync(dir), ['a.txt']);
});

test('beforeReplace runs after verification and before the rename', async () => {
  const dir = folder();
  const dest = join(dir, 'a.txt');
  writeFileSync(dest, 'old');
  const seen: string[] = [];
  await writeAtomic(dest, chunks('new'), {
    runId: 'r1',
    expectSize: 3,
    beforeReplace: async (d) => {
      seen.push(readFileSync(d, 'utf8'));
      rmSync(d); // the engine moves it to trash here
    },
  });
  assert.deepEqual(seen, ['old']);
  assert.equal(readFileSync(dest, 'utf8'), 'new');

  await assert.rejects(
    writeAtomic(dest, chunks('bad'), {
      runId: 'r2',
      expectSize: 3,
      expectMd5: md5('x'),
      beforeReplace: async () => void seen.push('called'),
    }),
    /MD5 mismatch/,
  );
  assert.deepEqual(seen, ['old'], 'not called when verification fails');
  assert.equal(existsSync(dest), true);
});

test('a short write (file size limit, full disk) fails the download instead of installing a short file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ssync-short-'));
  const script = join(dir, 'child.mjs');
  const body = Buffer.alloc(120 * 1024, 1);
  const moduleUrl = new URL('../../src/local/atomic-write.js', import.meta.url).href;
  writeFileSync(
    script,
    `import { writeAtomic } from ${JSON.stringify(moduleUrl)};
     const body = Buffer.alloc(${body.length}, 1);
     async function* chunks() { yield body.subarray(0, 61440); yield body.subarray(61440); }
     try {
       await writeAtomic(${JSON.stringify(join(dir, 'dest.bin'))}, chunks(), { runId: '20261127-000000-abcdef', expectSize: body.length, expectMd5: ${JSON.stringify(createHash('md5').update(body).digest('hex'))} });
       console.log('INSTALLED');
     } catch (e) { console.log('REFUSED ' + e.message); }`,
  );
  // 100 blocks of 1 KiB: the second chunk can only be written in part.
  const out = execFileSync('bash', ['-c', `ulimit -f 100; exec "${process.execPath}" "${script}"`]).toString();
  assert.match(out, /^REFUSED /);
  assert.ok(!existsSync(join(dir, 'dest.bin')), 'nothing under the real name');
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temp file left');
  rmSync(dir, { recursive: true, force: true });
});

test('a file name near the 255-byte limit can still be written (its temp name is shortened)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ssync-long-'));
  const dest = join(dir, 'é'.repeat(120) + '.jpg'); // 244 bytes
  const body = Buffer.from('long name');
  await writeAtomic(dest, Readable.from([body]), { runId: '20261127-000000-abcdef', expectSize: body.length });
  assert.equal(readFileSync(dest, 'utf8'), 'long name');
  rmSync(dir, { recursive: true, force: true });
});

test('a body larger than one buffer goes out in several writes: content, mtime, the old mode, no temp', async () => {
  const dir = folder();
  const dest = join(dir, 'big.bin');
  writeFileSync(dest, 'old', { mode: 0o600 });
  chmodSync(dest, 0o600);
  const body = randomBytes(FLUSH_BYTES * 3 + 12345);
  const mtimeMs = Date.UTC(2024, 5, 6, 7, 8, 9, 321);
  const parts = Array.from({ length: Math.ceil(body.length / 65536) }, (_, i) => body.subarray(i * 65536, (i + 1) * 65536));
  const r = await writeAtomic(dest, Readable.from(parts), { runId: 'r1', expectSize: body.length, expectMd5: md5(body), mtimeMs, signal: new AbortController().signal });
  assert.ok(readFileSync(dest).equals(body));
  const st = statSync(dest, { bigint: true });
  assert.equal(st.mtimeNs, BigInt(mtimeMs) * 1_000_000n);
  assert.equal(Number(st.mode & 0o777n), 0o600, 'a private file stays private');
  assert.equal(r.ino, Number(st.ino));
  assert.equal(r.md5, md5(body));
  assert.deepEqual(readdirSync(dir), ['big.bin']);
});

test('a large body with a wrong MD5 leaves the old file and no temp', async () => {
  const dir = folder();
  const dest = join(dir, 'big.bin');
  writeFileSync(dest, 'old');
  const body = randomBytes(FLUSH_BYTES * 2 + 1);
  await assert.rejects(writeAtomic(dest, Readable.from([body]), { runId: 'r1', expectSize: body.length, expectMd5: md5('other') }), /MD5 mismatch/);
  assert.equal(readFileSync(dest, 'utf8'), 'old');
  assert.deepEqual(readdirSync(dir), ['big.bin']);
});

test('many small files at once into shared folders all land whole, with their mode kept and no temp', async () => {
  const dir = folder();
  const files = Array.from({ length: 60 }, (_, i) => ({ dest: join(dir, `d${i % 3}`, `f${i}.txt`), body: randomBytes(100 + i * 97) }));
  mkdirSync(join(dir, 'd0'));
  writeFileSync(files[0]!.dest, 'old private', { mode: 0o600 });
  chmodSync(files[0]!.dest, 0o600);
  await Promise.all(files.map((f) => writeAtomic(f.dest, Readable.from([f.body]), { runId: 'r1', expectSize: f.body.length, expectMd5: md5(f.body) })));
  for (const f of files) assert.ok(readFileSync(f.dest).equals(f.body), f.dest);
  assert.equal(statSync(files[0]!.dest).mode & 0o777, 0o600);
  for (const d of ['d0', 'd1', 'd2']) assert.equal(readdirSync(join(dir, d)).length, 20, 'no temp left in ' + d);

  // A folder removed behind the writer's back (it remembers folders it made) is made again.
  rmSync(join(dir, 'd1'), { recursive: true });
  const again = Buffer.from('again');
  await writeAtomic(join(dir, 'd1', 'new.txt'), chunks('again'), { runId: 'r2', expectSize: again.length });
  assert.equal(readFileSync(join(dir, 'd1', 'new.txt'), 'utf8'), 'again');
});

test('a folder that cannot be made (a file is in the way) fails the download, leaving nothing', async () => {
  const dir = folder();
  writeFileSync(join(dir, 'a.txt'), 'a file');
  await assert.rejects(writeAtomic(join(dir, 'a.txt', 'inside.txt'), chunks('x'), { runId: 'r1', expectSize: 1, label: 'a.txt/inside.txt' }), (err: unknown) => {
    assert.ok(err instanceof ItemError);
    assert.match(err.message, /^download of a\.txt\/inside\.txt: (EEXIST|ENOTDIR)/);
    return true;
  });
  assert.deepEqual(readdirSync(dir), ['a.txt']);
});

test('onlyIfAbsent: a file that appeared during the download is never replaced, and no temp is left', async () => {
  const dir = folder();
  const dest = join(dir, 'new.txt');
  const appeared = new ItemError('appeared meanwhile');
  async function* slow(): AsyncGenerator<Buffer> {
    yield Buffer.from('ours');
    writeFileSync(dest, 'the user wrote this'); // while the download is under way
  }
  await assert.rejects(writeAtomic(dest, slow(), { runId: 'r1', expectSize: 4, onlyIfAbsent: () => appeared }), (err) => err === appeared);
  assert.equal(readFileSync(dest, 'utf8'), 'the user wrote this');
  assert.deepEqual(readdirSync(dir), ['new.txt']);

  // The large path checks too.
  const big = randomBytes(FLUSH_BYTES + 10);
  const dest2 = join(dir, 'big.bin');
  async function* slowBig(): AsyncGenerator<Buffer> {
    yield big;
    writeFileSync(dest2, 'mine');
  }
  await assert.rejects(writeAtomic(dest2, slowBig(), { runId: 'r2', expectSize: big.length, onlyIfAbsent: () => appeared }), (err) => err === appeared);
  assert.equal(readFileSync(dest2, 'utf8'), 'mine');
  assert.deepEqual(readdirSync(dir).sort(), ['big.bin', 'new.txt']);

  // Still absent: it lands.
  const r = await writeAtomic(join(dir, 'free.txt'), chunks('free'), { runId: 'r3', expectSize: 4, onlyIfAbsent: () => appeared, mtimeMs: 1_700_000_000_123 });
  assert.equal(readFileSync(join(dir, 'free.txt'), 'utf8'), 'free');
  const st = statSync(join(dir, 'free.txt'), { bigint: true });
  assert.equal(r.ino, Number(st.ino));
  assert.equal(r.mtimeNs, st.mtimeNs.toString());
  assert.equal(st.mtimeNs, 1_700_000_000_123_000_000n);
});
