// Gather leaves paths that are unchanged on both sides out of the states (dropUnchanged) and only
// counts them. That must never change a decision: every path left out is one decide() plans as
// `nothing`, and every other path is planned exactly as it is without the shortcut.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { joinMapping, Shortcut, type Gathered } from '../../src/engine/gather.js';
import { buildPlan } from '../../src/core/plan.js';
import type { LocalFile, Mapping, PlanOptions } from '../../src/core/types.js';
import type { StoredEntry } from '../../src/manifest/manifest.js';
import type { ListedObject } from '../../src/remote/s3-store.js';

const M: Mapping = { local: 'media', remote: 'pre/' };
const MD5 = ['a'.repeat(32), 'b'.repeat(32)];
const MULTI = `${'c'.repeat(32)}-2`;
const MTIME = 1_700_000_000_000_000_000n;

interface Cell {
  base?: { size: number; etag: string; racy: boolean; otherKey: boolean };
  local?: { size: number; mtimeDelta: number; inoDelta: number };
  remote?: { size: number; etag: string };
}

const etag = fc.constantFrom(MD5[0]!, MD5[1]!, MD5[0]!.toUpperCase(), MULTI);
const size = fc.constantFrom(10, 11);
const baseArb = fc.record({ size, etag, racy: fc.boolean(), otherKey: fc.boolean() });
const localArb = fc.record({ size, mtimeDelta: fc.constantFrom(0, 1), inoDelta: fc.constantFrom(0, 1) });
const remoteArb = fc.record({ size, etag });
// Half the cells with a base have both sides as the base recorded them: the shortcut's case.
const cell: fc.Arbitrary<Cell> = fc.oneof(
  baseArb.map((base): Cell => ({ base, local: { size: base.size, mtimeDelta: 0, inoDelta: 0 }, remote: { size: base.size, etag: base.etag } })),
  fc.record({ base: baseArb, local: localArb, remote: remoteArb }, { requiredKeys: [] }),
);
const names = ['a.txt', 'b/c.txt', 'b/d.txt', 'bad\\name.txt', 'e.bin'];

function inputs(cells: Cell[]) {
  const local = new Map<string, LocalFile>();
  const remote: ListedObject[] = [];
  const base: [string, StoredEntry][] = [];
  cells.forEach((c, i) => {
    const rel = names[i]!;
    const mtimeNs = MTIME.toString();
    if (c.local) local.set(rel, { size: c.local.size, mtimeNs: (MTIME + BigInt(c.local.mtimeDelta)).toString(), ino: 100 + i + c.local.inoDelta });
    if (c.remote) remote.push({ key: `${M.remote}${rel}`, etag: c.remote.etag, size: c.remote.size, lastModified: 1_700_000_000_000 });
    if (c.base) {
      const md5 = c.base.etag.length === 32 ? c.base.etag.toLowerCase() : MD5[1]!;
      base.push([`${M.local}/${rel}`, {
        key: c.base.otherKey ? `elsewhere/${rel}` : `${M.remote}${rel}`,
        local: { size: c.base.size, mtimeNs, ino: 100 + i, md5, xxh64: 'f'.repeat(16) },
        remote: { etag: c.base.etag, size: c.base.size, lastModified: 1_700_000_000_000, md5 },
        recordedAtNs: (c.base.racy ? MTIME : MTIME + 10n ** 10n).toString(),
      }]);
    }
  });
  return { local, remote, base };
}

/**
 * `listing`: the unchanged shortcut also runs on the listing as it arrives (Shortcut.keep), and
 * `relist` shows it every object a second time, as a ranged listing that falls back does.
 */
function join(cells: Cell[], dropUnchanged: boolean, listing: 'join' | 'listing' | 'relist' = 'join'): Gathered {
  const { local, remote, base } = inputs(cells);
  const byPath = new Map(base);
  const manifest = {
    *under(): Generator<[string, StoredEntry]> { yield* base; },
    *pathsUnder(): Generator<string> { for (const [p] of base) yield p; },
    get: (p: string) => byPath.get(p),
  };
  const g: Gathered = { states: [], problems: [], tracked: [], unchanged: [], localCount: [], remoteCount: [], hashed: 0, temps: [] };
  let shortcut: Shortcut | undefined;
  let listed = remote;
  if (listing !== 'join') {
    shortcut = new Shortcut(M, manifest);
    shortcut.walked(local);
    listed = remote.filter((o) => shortcut!.keep(o));
    if (listing === 'relist') listed = remote.filter((o) => shortcut!.keep(o));
  }
  joinMapping(M, 0, local, listed, manifest, () => true, g, dropUnchanged, shortcut);
  // What hashing would do for the paths that are kept: content as the base knows it.
  for (const s of g.states) if (s.local && s.local.xxh64 === undefined) s.local = { ...s.local, xxh64: 'f'.repeat(16), md5: s.base?.local.md5 ?? MD5[0]! };
  return g;
}

const opts = (mode: PlanOptions['mode']): PlanOptions => ({ mode, conflict: 'newer', delete: true, now: new Date(0) });

describe('gather: unchanged paths counted instead of planned', () => {
  it('plans every other path exactly as the full join does, and the dropped ones are all `nothing`', () => {
    let droppedTotal = 0;
    fc.assert(
      fc.property(
        fc.array(cell, { minLength: 1, maxLength: names.length }),
        fc.constantFrom('two-way', 'upload', 'download') as fc.Arbitrary<PlanOptions['mode']>,
        fc.constantFrom('join', 'listing', 'relist') as fc.Arbitrary<'join' | 'listing' | 'relist'>,
        (cells, mode, listing) => {
          const full = join(cells, false);
          const lean = join(cells, true, listing);
          const fullPlan = buildPlan(full.states, opts(mode)).items;
          const leanPlan = buildPlan(lean.states, opts(mode)).items;
          const dropped = fullPlan.filter((it) => !leanPlan.some((l) => l.path === it.path));
          assert.equal(lean.unchanged[0], dropped.length);
          droppedTotal += dropped.length;
          for (const it of dropped) assert.equal(it.action, 'nothing', `${it.path} was left out but planned ${it.action}`);
          assert.deepEqual(leanPlan, fullPlan.filter((it) => !dropped.includes(it)));
          assert.deepEqual(lean.problems, full.problems);
          assert.deepEqual([lean.tracked, lean.localCount, lean.remoteCount], [full.tracked, full.localCount, full.remoteCount]);
          assert.equal(full.unchanged[0], 0);
        },
      ),
      { numRuns: 400 },
    );
    // The shortcut was taken, not only ruled out.
    assert.ok(droppedTotal > 50, `only ${droppedTotal} paths left out over all runs`);
  });

  it('leaves out a path whose stat and ETag match the base, and keeps a touched, racy or refused one', () => {
    const same: Cell = { base: { size: 10, etag: MD5[0]!, racy: false, otherKey: false }, local: { size: 10, mtimeDelta: 0, inoDelta: 0 }, remote: { size: 10, etag: MD5[0]! } };
    const touched: Cell = { ...same, local: { size: 10, mtimeDelta: 1, inoDelta: 0 } };
    const racy: Cell = { ...same, base: { ...same.base!, racy: true } };
    // a.txt, b/c.txt, b/d.txt, bad\name.txt (a local name that is refused), e.bin
    const g = join([same, touched, racy, same, same], true);
    assert.equal(g.unchanged[0], 2);
    assert.deepEqual(g.states.map((s) => s.path), ['media/b/c.txt', 'media/b/d.txt']);
    // Its key is refused as well as its local name.
    assert.equal(g.problems.length, 2);
    assert.deepEqual(g.tracked, [5]);
  });
});
