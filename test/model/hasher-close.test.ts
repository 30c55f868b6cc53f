// Regression found by the model-based runs: a long randomized run died with SIGABRT ("FATAL
// ERROR: v8::ToLocalChecked Empty MaybeLocal" / "IsGraphAsync must be used on an instantiated
// module", in require() of the hash worker). Piscina loads the ESM worker through require(), and
// on Node 20.19+ a worker terminated while that require(esm) runs takes the whole process down.
// The Hasher started every thread up front, so a run that hashed one small batch on one thread
// closed the pool while the other threads were still loading: about one CLI run in a few hundred.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Hasher } from '../../src/local/hasher.js';

const HASHER = fileURLToPath(new URL('../../src/local/hasher.js', import.meta.url));

test('hasher: threads start on demand, and close() ends only threads that have loaded', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssync-hasher-'));
  try {
    fs.writeFileSync(path.join(dir, 'a'), 'a');
    const h = new Hasher({ threads: 8 });
    const [r] = await h.hashMany([{ abs: path.join(dir, 'a'), size: 1 }]);
    assert.equal(r?.error, undefined);
    // One small batch needs one thread; the seven others were the ones closed mid-load.
    const pool = await (h as unknown as { pool: Promise<{ threads: unknown[] }> }).pool;
    assert.equal(pool.threads.length, 1);
    await h.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('hasher: many open-hash-close cycles in one process never abort it', async () => {
  // A child process, because the failure is an abort of the whole process. The old Hasher
  // crashed about once in 250-500 cycles here; STORAGE_SYNC_MODEL_RUNS raises the count.
  const cycles = Math.max(100, Number(process.env.STORAGE_SYNC_MODEL_RUNS ?? 0) * 5);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssync-hasher-'));
  try {
    fs.writeFileSync(path.join(dir, 'a'), 'a');
    const script = `
      const { Hasher } = await import(${JSON.stringify(HASHER)});
      for (let i = 0; i < ${cycles}; i++) {
        const h = new Hasher({ threads: 8 });
        await h.hashMany([{ abs: ${JSON.stringify(path.join(dir, 'a'))}, size: 1 }]);
        await h.close();
      }
      console.log('cycles done');
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, out.slice(0, 2000));
    assert.match(out, /cycles done/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
