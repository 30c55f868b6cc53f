import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getEventListeners } from 'node:events';
import xxhash from 'xxhash-wasm';
import { spawnSync } from 'node:child_process';
import { Hasher, makeBatches, workerSafe, type HashResult } from '../../src/local/hasher.js';

const root = mkdtempSync(join(tmpdir(), 'ssync-hash-'));
const hasher = new Hasher({ threads: 2 });
after(async () => {
  await hasher.close();
  rmSync(root, { recursive: true, force: true });
});

const { h64Raw } = await xxhash();
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const xxh = (b: Buffer) => h64Raw(b).toString(16).padStart(16, '0');

function file(name: string, body: Buffer): string {
  const abs = join(root, name);
  mkdirSync(join(abs, '..'), { recursive: true });
  writeFileSync(abs, body);
  return abs;
}

function multipartEtag(body: Buffer, partSize: number): string {
  const parts: Buffer[] = [];
  for (let off = 0; off < body.length; off += partSize) {
    parts.push(createHash('md5').update(body.subarray(off, off + partSize)).digest());
  }
  return `${createHash('md5').update(Buffer.concat(parts)).digest('hex')}-${parts.length}`;
}

test('MD5 and xxh64 match direct computation for 0-byte, small and 20 MiB files', async () => {
  const bodies = [Buffer.alloc(0), randomBytes(1000), randomBytes(20 * 1024 * 1024)];
  const tasks = bodies.map((b, i) => ({ abs: file(`plain/${i}`, b), size: b.length }));
  const results = await hasher.hashMany(tasks);
  results.forEach((r, i) => {
    const b = bodies[i]!;
    assert.deepEqual(r, { abs: tasks[i]!.abs, size: b.length, xxh64: xxh(b), md5: md5(b) });
  });
  assert.equal(xxh(Buffer.alloc(0)).length, 16);
});

test('a matching expectXxh64 returns no MD5 (touch-only change), a different one does', async () => {
  const small = randomBytes(5000);
  const large = randomBytes(9 * 1024 * 1024);
  const a = file('touch/small', small);
  const b = file('touch/large', large);
  const same = await hasher.hashMany([
    { abs: a, size: small.length, expectXxh64: xxh(small) },
    { abs: b, size: large.length, expectXxh64: xxh(large) },
  ]);
  assert.deepEqual(same.map((r) => [r.xxh64, r.md5]), [[xxh(small), undefined], [xxh(large), undefined]]);
  const changed = await hasher.hashMany([
    { abs: a, size: small.length, expectXxh64: '0000000000000000' },
    { abs: b, size: large.length, expectXxh64: '0000000000000000' },
  ]);
  assert.deepEqual(changed.map((r) => r.md5), [md5(small), md5(large)]);
});

test('multipart ETag of a 12 MiB file with 5 MiB parts equals a direct computation', async () => {
  const body = randomBytes(12 * 1024 * 1024);
  const abs = file('mp/12m', body);
  const [r] = await hasher.hashMany([{ abs, size: body.length, multipartPartSize: 5 * 1024 * 1024 }]);
  assert.equal(r?.multipartEtag, multipartEtag(body, 5 * 1024 * 1024));
  assert.match(r?.multipartEtag ?? '', /-3$/);
  assert.equal(r?.md5, md5(body));
  // Small files take the in-memory path: same arithmetic.
  const smallBody = randomBytes(3 * 1024 * 1024 + 7);
  const small = file('mp/3m', smallBody);
  const [s] = await hasher.hashMany([{ abs: small, size: smallBody.length, multipartPartSize: 1024 * 1024 }]);
  assert.equal(s?.multipartEtag, multipartEtag(smallBody, 1024 * 1024));
});

test('1,000 small files are batched and all come back, in order', async () => {
  const bodies = Array.from({ length: 1000 }, (_, i) => randomBytes(i % 50));
  const tasks = bodies.map((b, i) => ({ abs: file(`many/${i % 10}/${i}`, b), size: b.length }));
  assert.ok(makeBatches(tasks).length <= 4);
  const seen: HashResult[] = [];
  const ac = new AbortController();
  const results = await hasher.hashMany(tasks, (r) => seen.push(r), ac.signal);
  assert.equal(getEventListeners(ac.signal, 'abort').length, 0, 'abort listeners removed');
  assert.equal(results.length, 1000);
  assert.equal(seen.length, 1000);
  results.forEach((r, i) => assert.equal(r.md5, md5(bodies[i]!)));
});

test('batches hold at most 256 files or 4 MiB; large files go alone', () => {
  const MiB = 1024 * 1024;
  const sizes = [...Array<number>(300).fill(1), 3 * MiB, 2 * MiB, 9 * MiB, 1];
  const batches = makeBatches(sizes.map((size, i) => ({ abs: String(i), size })));
  // The 9 MiB file is sent at once; the 2 MiB one waits for company.
  assert.deepEqual(batches, [
    Array.from({ length: 256 }, (_, i) => i),
    Array.from({ length: 45 }, (_, i) => 256 + i),
    [302],
    [301, 303],
  ]);
});

test('a vanished or changed file gives an error result; the others still hash', async () => {
  const body = randomBytes(100);
  const ok = file('err/ok', body);
  const grown = file('err/grown', randomBytes(200));
  const results = await hasher.hashMany([
    { abs: join(root, 'err/missing'), size: 10 },
    { abs: ok, size: body.length },
    { abs: grown, size: 150 },
  ]);
  assert.match(results[0]?.error ?? '', /ENOENT/);
  assert.equal(results[1]?.md5, md5(body));
  assert.equal(results[2]?.error, 'file changed while hashing');
});

test('an abort stops the run and rejects with the reason given', async () => {
  const tasks = Array.from({ length: 2000 }, (_, i) => ({ abs: file(`abort/${i}`, randomBytes(10)), size: 10 }));
  const reason = new Error('stop');
  await assert.rejects(hasher.hashMany(tasks, undefined, AbortSignal.abort(reason)), reason);
  const ac = new AbortController();
  let seen = 0;
  const run = hasher.hashMany(tasks, () => (++seen === 1 ? ac.abort(reason) : undefined), ac.signal);
  await assert.rejects(run, reason);
  assert.ok(seen < tasks.length, `${seen} results after the abort`);
  // The pool is still usable afterwards.
  assert.equal((await hasher.hashMany(tasks.slice(0, 3))).length, 3);
});

test('nothing to hash starts no workers', async () => {
  const idle = new Hasher();
  assert.deepEqual(await idle.hashMany([]), []);
  await idle.close();
});

test('hash workers load their module with import(), never through require(esm) (a V8 fatal error under load on Node 20.19+)', async () => {
  const { Worker } = await import('node:worker_threads');
  const { WORKER_EXEC_ARGV } = await import('../../src/local/hasher.js');
  const workerFile = new URL('../../src/local/hash-worker.js', import.meta.url).pathname;
  const probe = `const { parentPort, workerData } = require('node:worker_threads');
    try { require(workerData); parentPort.postMessage('required'); } catch (e) { parentPort.postMessage(String(e.code)); }`;
  const w = new Worker(probe, { eval: true, execArgv: WORKER_EXEC_ARGV, workerData: workerFile });
  const answer = await new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  await w.terminate();
  // piscina tries require() first and falls back to import() when it throws.
  assert.equal(answer, 'ERR_REQUIRE_ESM');
  const body = randomBytes(5000);
  const [r] = await hasher.hashMany([{ abs: file('esm/x.bin', body), size: body.length }]);
  assert.equal(r?.md5, md5(body));
});

test('hasher: a process started with V8 flags still hashes (the workers get only the flags they accept)', () => {
  const a = file('flags/a.txt', Buffer.from('abc'));
  const script = `
    const { Hasher } = await import(${JSON.stringify(new URL('../../src/local/hasher.js', import.meta.url).href)});
    const h = new Hasher({ threads: 2 });
    const [r] = await h.hashMany([{ abs: ${JSON.stringify(a)}, size: 3 }]);
    await h.close();
    console.log(r.md5);
  `;
  // No S3 server here: a child is the only way to start a process with its own V8 flags.
  const r = spawnSync(process.execPath, ['--max-old-space-size=256', '--max-semi-space-size=4', '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr.slice(0, 2000));
  assert.equal(r.stdout.trim(), md5(Buffer.from('abc')));
  assert.deepEqual(
    workerSafe(['--max-old-space-size=256', '--import', 'x.mjs', '--trace-gc', '-r', 'y.cjs', '--enable-source-maps', '--experimental-vm-modules', '--stack-size=900', '--conditions=dev']),
    ['--import', 'x.mjs', '-r', 'y.cjs', '--enable-source-maps', '--experimental-vm-modules', '--conditions=dev'],
  );
});
