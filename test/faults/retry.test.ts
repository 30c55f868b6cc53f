// Syncs through the fault proxy: transient faults are retried to success, faults beyond the
// retry budget fail exactly the files they hit, and a rerun without faults converges.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { md5 } from '../support/harness.js';
import { TRANSIENT_FAULTS, type Fault, type Op } from '../support/fault-proxy.js';
import { assertConverged, fileEvents, sync, tempsUnder, useFaultFixture } from './setup.js';

const ctx = useFaultFixture();

/** Local edits, remote edits, new files on both sides and deletes on both sides, over a base. */
async function prepareTwoWay(n: number): Promise<{ up: string[]; down: string[] }> {
  const { p, s3 } = ctx;
  for (let i = 0; i < n + 4; i++) p.write(`media/base${i}.txt`, `base ${i}`);
  const first = await sync(ctx);
  assert.equal(first.code, 0, first.stderr);
  const up: string[] = [];
  const down: string[] = [];
  for (let i = 0; i < n; i++) {
    const rel = `media/up${i}.bin`;
    p.write(rel, crypto.randomBytes(1000 + i * 37));
    up.push(rel);
    const key = `media/down${i}.bin`;
    await s3.putRaw(key, crypto.randomBytes(2000 + i * 41));
    down.push(key);
  }
  return { up, down };
}

describe('transient faults are retried', () => {
  for (const fault of TRANSIENT_FAULTS) {
    test(`${fault} on the first tries of every request: the sync completes`, async () => {
      const { up, down } = await prepareTwoWay(3);
      ctx.p.remove('media/base0.txt'); // a remote delete: HEAD then DeleteObjects
      await ctx.s3.deleteRaw('media/base1.txt'); // a local delete
      // An XML answer that does not parse is not retried by the SDK: a corrupted listing stops the
      // run (integrity.test.ts) and a corrupted DeleteObjects answer fails its keys; corruption is
      // aimed at object bodies only here.
      const xml: Op[] = ['DeleteObjects', 'ListObjectsV2'];
      const ops: Op[] = ['GetObject', 'PutObject', 'HeadObject', ...(fault === 'corrupt' ? [] : xml)];
      // Stalls cost a socket timeout each: once is enough to prove the retry.
      ctx.proxy.set([{ faults: [fault], times: fault.startsWith('stall') ? 1 : 2, ops }]);
      const r = await sync(ctx);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.ok(ctx.proxy.faulted().length >= up.length + down.length, 'the proxy did sabotage');
      assert.equal(r.summary?.uploaded, up.length);
      assert.equal(r.summary?.downloaded, down.length);
      assert.equal(r.summary?.deletedRemote, 1);
      assert.equal(r.summary?.deletedLocal, 1);
      assert.deepEqual(tempsUnder(ctx.p.root), []);
      await assertConverged(ctx);
    });
  }
});

// Stalls (a second each) and SlowDown (backoff from 500 ms) are slow to exhaust; the fixed-key
// tests cover them.
const RANDOM_FAULTS: Fault[] = ['error500', 'reset', 'reset-mid', 'truncate', 'corrupt'];

describe('faults beyond the retry budget', () => {
  test('a key that always fails is the only failed file; exit 1; a rerun converges', async () => {
    const { up, down } = await prepareTwoWay(3);
    const rules: [Op, string, Fault][] = [
      ['PutObject', up[0]!, 'slowdown503'],
      ['GetObject', down[0]!, 'error500'],
      ['GetObject', down[1]!, 'truncate'],
      ['PutObject', up[1]!, 'reset'],
    ];
    ctx.proxy.set(rules.map(([op, key, fault]) => ({ ops: [op], key, faults: [fault] })));
    const r = await sync(ctx);
    assert.equal(r.code, 1, r.stderr);
    const failed = fileEvents(r, 'failed');
    assert.deepEqual(failed.map((e) => e['path']).sort(), rules.map(([, k]) => k).sort());
    for (const e of failed) assert.equal(String(e['error']).split('\n').length, 1);
    assert.match(String(failed.find((e) => e['path'] === up[0])?.['error']), /503 SlowDown/);
    assert.match(String(failed.find((e) => e['path'] === down[0])?.['error']), /500 InternalError/);
    assert.equal(r.summary?.failed, rules.length);
    assert.equal(r.summary?.uploaded, up.length - 2);
    assert.equal(r.summary?.downloaded, down.length - 2);
    assert.deepEqual(tempsUnder(ctx.p.root), []);
    // The SDK tried five times, the engine's download loop three times over that.
    assert.equal(ctx.proxy.log.filter((e) => e.key === up[0]).length, 5);
    assert.ok(!ctx.p.exists(down[0]!) && !ctx.p.exists(down[1]!), 'nothing landed for a failed download');

    ctx.proxy.set([]);
    const again = await sync(ctx);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.summary?.uploaded, 2);
    assert.equal(again.summary?.downloaded, 2);
    await assertConverged(ctx);
  });

  // Three seeds in CI; STORAGE_SYNC_FAULT_SEEDS=N runs N more (seeds 100…).
  const extra = Number(process.env.STORAGE_SYNC_FAULT_SEEDS ?? 0);
  for (const seed of [11, 12, 13, ...Array.from({ length: extra }, (_, i) => 100 + i)]) {
    test(`seed ${seed}: random faults at 45% on every request; the failed files are exactly the sabotaged ones`, async () => {
      const { up, down } = await prepareTwoWay(12);
      ctx.proxy.set([{ ops: ['GetObject', 'PutObject'], faults: RANDOM_FAULTS, rate: 0.45 }], seed);
      const r = await sync(ctx);
      const expected = ctx.proxy.lastFaulted(['GetObject', 'PutObject']);
      const failed = new Set(fileEvents(r, 'failed').map((e) => String(e['key'])));
      assert.deepEqual([...failed].sort(), [...expected].sort());
      assert.equal(r.code, failed.size > 0 ? 1 : 0, r.stderr);
      assert.ok(ctx.proxy.faulted().length > 0);
      const done = new Set(fileEvents(r, 'done').map((e) => String(e['key'])));
      for (const k of [...up, ...down]) assert.ok(done.has(k) !== failed.has(k), `${k} is either done or failed`);
      assert.deepEqual(tempsUnder(ctx.p.root), []);
      // What did land is whole.
      const local = ctx.p.files();
      for (const k of down) if (done.has(k)) assert.equal(local[k], md5(await ctx.s3.getBuffer(k)), k);

      ctx.proxy.set([]);
      const again = await sync(ctx);
      assert.equal(again.code, 0, again.stderr);
      // A PUT whose answer was lost (reset-mid) may have landed: the rerun records it instead.
      const { uploaded, downloaded, recorded } = again.summary as Record<string, number>;
      assert.equal(uploaded! + downloaded! + recorded!, failed.size, again.stdout);
      await assertConverged(ctx);
    });
  }
});

describe('faults on deletes', () => {
  const extra = Number(process.env.STORAGE_SYNC_FAULT_SEEDS ?? 0);
  for (const seed of [22, 23, 25, ...Array.from({ length: extra }, (_, i) => 200 + i)]) {
    test(`seed ${seed}: random faults at 45% on HEAD and DeleteObjects; the failed deletes are exactly the sabotaged ones`, async () => {
      const { p, proxy } = ctx;
      for (let i = 0; i < 20; i++) p.write(`media/f${i}.txt`, `file ${i}`);
      assert.equal((await sync(ctx)).code, 0);
      const gone = [0, 3, 6, 9, 12, 15].map((i) => `media/f${i}.txt`);
      for (const f of gone) p.remove(f);
      proxy.set([{ ops: ['HeadObject', 'DeleteObjects'], faults: RANDOM_FAULTS, rate: 0.45 }], seed);
      const r = await sync(ctx);
      // A delete fails when its last HEAD was sabotaged, or the last DeleteObjects that carried it.
      const headFailed = proxy.lastFaulted(['HeadObject']);
      const expected = gone.filter((k) => {
        if (headFailed.has(k)) return true;
        const last = proxy.log.filter((e) => e.op === 'DeleteObjects' && e.deleteKeys?.includes(k)).at(-1);
        return last?.fault !== undefined;
      });
      const failed = fileEvents(r, 'failed').map((e) => String(e['key'])).sort();
      assert.deepEqual(failed, expected.sort());
      assert.equal(r.code, failed.length > 0 ? 1 : 0, r.stderr);
      assert.equal(r.summary?.deletedRemote, gone.length - failed.length);
      assert.ok(proxy.faulted().length > 0);
      proxy.set([]);
      const again = await sync(ctx);
      assert.equal(again.code, 0, again.stderr);
      await assertConverged(ctx);
    });
  }
});

describe('stalls', () => {
  test('a socket that stalls forever is given up after the idle timeout; the file fails, the rest syncs', async () => {
    const { up } = await prepareTwoWay(2);
    ctx.proxy.set([
      { ops: ['PutObject'], key: up[0]!, faults: ['stall'] },
      { ops: ['GetObject'], faults: ['stall-mid'], times: 1 },
    ]);
    const r = await sync(ctx);
    assert.equal(r.code, 1, r.stderr);
    const failed = fileEvents(r, 'failed');
    assert.deepEqual(failed.map((e) => e['path']), [up[0]]);
    assert.match(String(failed[0]?.['error']), /timed out|TimeoutError/i);
    assert.ok(ctx.proxy.faulted().some((e) => e.fault === 'stall-mid'));
    ctx.proxy.set([]);
    assert.equal((await sync(ctx)).code, 0);
    await assertConverged(ctx);
  });
});
