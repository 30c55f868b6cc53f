// The planner against the reference model, with no I/O: random (L, R, B) states in every mode,
// policy and --delete setting must get the action the spec gives them, and planning again after
// the model's effects are applied must find nothing left to do.
//
// Contents are a few short strings, several of one size, so that "same size, other bytes" and
// "same bytes" both come up often. Remote objects may be multipart (`<md5>-2` ETags whose MD5 is
// known only from the base, an x-amz-meta-md5 HEAD, or the locally computed multipart ETag). A
// local file whose stat equals the base's may differ in content only when the base is racily
// clean (git's rule): a same-stat rewrite outside that window is invisible by design.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { buildPlan } from '../../src/core/plan.js';
import { CONFLICT_POLICIES, MODES, type BaseEntry, type LocalFile, type PathState, type PlanItem, type PlanOptions, type RemoteObject } from '../../src/core/types.js';
import { check, RUNS } from './config.js';
import { conflictCopyName, expectedAction, type LocalSide, type Options, type RemoteSide, type Situation } from './reference.js';

const T_MS = 1_700_000_000_000;
const ms = (n: number): bigint => BigInt(n) * 1_000_000n;
/** Recorded long after every mtime the model hands out: a base written by the model is never racy. */
const LATE_NS = ms(T_MS + 1_000_000);
const NOW = new Date(T_MS + 5_000);

const md5 = (s: string): string => crypto.createHash('md5').update(s).digest('hex');
const xxh = (s: string): string => crypto.createHash('sha1').update(s).digest('hex').slice(0, 16);
const mpEtag = (s: string): string => `${md5(`multipart:${s}`)}-2`;
const size = (s: string): number => Buffer.byteLength(s);

interface CL { content: string; mtimeNs: bigint; ino: number; computeMpEtag: boolean }
interface CR { content: string; multipart: boolean; metaMd5: boolean; lastModified: number }
interface CB { local: { content: string; mtimeNs: bigint; ino: number }; remote: { content: string; multipart: boolean }; recordedAtNs: bigint }
interface Cell { path: string; L?: CL; R?: CR; B?: CB }

const etagOf = (r: { content: string; multipart: boolean }): string => (r.multipart ? mpEtag(r.content) : md5(r.content));

/** What gather would hand the planner for this cell. */
function toState(c: Cell): PathState {
  const s: PathState = { path: c.path, key: c.path.replace(/^media\//, 'm/'), mapping: 0 };
  let base: BaseEntry | undefined;
  if (c.B) {
    const b = c.B;
    base = {
      local: { size: size(b.local.content), mtimeNs: String(b.local.mtimeNs), ino: b.local.ino, md5: md5(b.local.content), xxh64: xxh(b.local.content) },
      remote: { etag: etagOf(b.remote), size: size(b.remote.content), lastModified: T_MS - 60_000, md5: md5(b.remote.content) },
      recordedAtNs: String(b.recordedAtNs),
    };
    s.base = base;
  }
  let remote: RemoteObject | undefined;
  if (c.R) {
    remote = { etag: etagOf(c.R), size: size(c.R.content), lastModified: c.R.lastModified };
    if (c.R.multipart && c.R.metaMd5) remote.md5 = md5(c.R.content);
    s.remote = remote;
  }
  if (c.L) {
    const l: LocalFile = { size: size(c.L.content), mtimeNs: String(c.L.mtimeNs), ino: c.L.ino, md5: md5(c.L.content), xxh64: xxh(c.L.content) };
    // gather computes the multipart ETag only when nothing else tells the remote MD5.
    const md5Unknown = c.R?.multipart === true && !c.R.metaMd5 && !(base && c.B && etagOf(c.B.remote) === etagOf(c.R));
    if (c.L.computeMpEtag && md5Unknown && c.R && size(c.R.content) === l.size) l.multipartEtag = mpEtag(c.L.content);
    s.local = l;
  }
  return s;
}

/** The facts the reference model decides on, derived from the abstract cell. */
function situation(c: Cell): Situation {
  let local: LocalSide;
  if (!c.B) local = c.L ? 'new' : 'absent';
  else if (!c.L) local = 'deleted';
  else {
    const statSame = c.L.mtimeNs === c.B.local.mtimeNs && c.L.ino === c.B.local.ino && size(c.L.content) === size(c.B.local.content);
    const racy = c.L.mtimeNs >= c.B.recordedAtNs;
    if (statSame && !racy) local = 'unchanged';
    else local = c.L.content === c.B.local.content ? 'touched' : 'changed';
  }
  let remote: RemoteSide;
  if (!c.B) remote = c.R ? 'new' : 'absent';
  else if (!c.R) remote = 'deleted';
  else remote = etagOf(c.R) === etagOf(c.B.remote) ? 'unchanged' : 'changed';
  let same = false;
  if (c.L && c.R && c.L.content === c.R.content) {
    const knowable =
      !c.R.multipart || c.R.metaMd5 || (c.B !== undefined && etagOf(c.B.remote) === etagOf(c.R)) || c.L.computeMpEtag;
    same = knowable;
  }
  const localNewer = c.L !== undefined && c.R !== undefined && c.L.mtimeNs / 1_000_000n > BigInt(c.R.lastModified);
  return { local, remote, same, localNewer };
}

let inoCounter = 1000;

/** The effects of a carried-out item on the abstract state (what the executor does). */
function apply(c: Cell, item: PlanItem, opts: PlanOptions): Cell[] {
  const L = c.L;
  const R = c.R;
  const synced = (content: string, l: CL, r: CR): CB => ({
    local: { content, mtimeNs: l.mtimeNs, ino: l.ino },
    remote: { content: r.content, multipart: r.multipart },
    recordedAtNs: LATE_NS,
  });
  const uploaded = (l: CL): CR => ({ content: l.content, multipart: false, metaMd5: false, lastModified: T_MS + 100 });
  switch (item.action) {
    case 'upload':
    case 'conflict-upload': {
      const r = uploaded(L!);
      return [{ path: c.path, L, R: r, B: synced(L!.content, L!, r) }];
    }
    case 'download':
    case 'conflict-download': {
      const l: CL = { content: R!.content, mtimeNs: ms(R!.lastModified), ino: ++inoCounter, computeMpEtag: false };
      const out: Cell[] = [{ path: c.path, L: l, R, B: synced(R!.content, l, R!) }];
      if (item.keepBoth && L) {
        const copy: Cell = { path: item.keepBoth.path, L };
        if (opts.mode === 'two-way') {
          copy.R = uploaded(L);
          copy.B = synced(L.content, L, copy.R);
        }
        out.push(copy);
      }
      return out;
    }
    case 'record':
      return [{ path: c.path, L, R, B: synced(L!.content, L!, R!) }];
    case 'refresh':
      return [{ path: c.path, L, R, B: { ...c.B!, local: { content: L!.content, mtimeNs: L!.mtimeNs, ino: L!.ino }, recordedAtNs: LATE_NS } }];
    case 'delete-remote':
      return [{ path: c.path, L }];
    case 'delete-local':
      return [{ path: c.path, R }];
    case 'forget':
      return [{ path: c.path, L, R }];
    case 'skip':
    case 'nothing':
      return [c];
  }
}

const CONTENTS = ['x', 'y', 'z', 'ww'];
const content = fc.constantFrom(...CONTENTS);

const cellArb = (path: string): fc.Arbitrary<Cell> =>
  fc
    .record({
      base: fc.option(fc.record({ content, multipart: fc.boolean(), racy: fc.boolean() }), { nil: undefined }),
      local: fc.option(
        fc.record({ content, statSame: fc.boolean(), offMs: fc.integer({ min: -1, max: 1 }), extraNs: fc.constantFrom(0, 1, 999_999), computeMpEtag: fc.boolean() }),
        { nil: undefined },
      ),
      remote: fc.option(fc.record({ content, multipart: fc.boolean(), metaMd5: fc.boolean() }), { nil: undefined }),
    })
    .filter((g) => g.base !== undefined || g.local !== undefined || g.remote !== undefined)
    .map((g): Cell => {
      const cell: Cell = { path };
      const baseMtime = ms(T_MS - 10_000);
      if (g.base) {
        cell.B = {
          local: { content: g.base.content, mtimeNs: baseMtime, ino: 1 },
          remote: { content: g.base.content, multipart: g.base.multipart },
          recordedAtNs: g.base.racy ? baseMtime : baseMtime + ms(5_000),
        };
      }
      if (g.local) {
        const l = g.local;
        if (cell.B && l.statSame) {
          // Same stat: the content can differ from the base only inside the racy window.
          const c = g.base!.racy ? l.content : g.base!.content;
          cell.L = { content: c, mtimeNs: baseMtime, ino: 1, computeMpEtag: l.computeMpEtag };
          if (size(c) !== size(g.base!.content)) cell.L.mtimeNs = ms(T_MS + l.offMs) + BigInt(l.extraNs);
        } else {
          cell.L = { content: l.content, mtimeNs: ms(T_MS + l.offMs) + BigInt(l.extraNs), ino: 1, computeMpEtag: l.computeMpEtag };
        }
      }
      if (g.remote) cell.R = { ...g.remote, lastModified: T_MS };
      return cell;
    });

const PATHS = ['media/a.txt', 'media/b.txt', 'media/sub/c.css', 'media/d', 'media/.env'];

const scenario = fc.record({
  cells: fc.tuple(...PATHS.map((p) => fc.option(cellArb(p), { nil: undefined }))).map((cs) => cs.filter((c): c is Cell => c !== undefined)),
  mode: fc.constantFrom(...MODES),
  conflict: fc.constantFrom(...CONFLICT_POLICIES),
  delete: fc.boolean(),
});

const STAMP = '20231114-221325'; // NOW (2023-11-14T22:13:25Z) as the keep-both name shows it

function planOf(cells: Cell[], opts: PlanOptions): Map<string, PlanItem> {
  const plan = buildPlan(cells.map(toState), opts);
  return new Map(plan.items.map((i) => [i.path, i]));
}

test('planner: every path gets the reference action, in every mode, policy and --delete setting', async () => {
  await check(
    'planner',
    fc.property(scenario, ({ cells, mode, conflict, delete: del }) => {
      const opts: PlanOptions = { mode, conflict, delete: del, now: NOW };
      const ref: Options = { mode, conflict, delete: del };
      const items = planOf(cells, opts);
      assert.equal(items.size, cells.length);
      for (const c of cells) {
        const item = items.get(c.path)!;
        const sit = situation(c);
        const want = expectedAction(sit, ref);
        assert.deepEqual(
          { action: item.action, keepBoth: item.keepBoth !== undefined },
          { action: want.action, keepBoth: want.keepBoth === true },
          `${c.path}: ${JSON.stringify(sit)} in ${mode}/${conflict}${del ? '/--delete' : ''}: rule ${item.rule}`,
        );
        if (item.keepBoth) assert.equal(item.keepBoth.path, conflictCopyName(c.path, STAMP));
        const up = item.local?.size ?? 0;
        const down = item.remote?.size ?? 0;
        const bytes: Record<string, number> = {
          upload: up,
          'conflict-upload': up,
          download: down,
          'conflict-download': item.keepBoth && mode === 'two-way' ? up + down : down,
        };
        assert.equal(item.bytes, bytes[item.action] ?? 0, `${c.path}: bytes of ${item.action}`);
      }
    }),
    Math.max(2_000, (RUNS ?? 0) * 20),
  );
});

test('planner: a second plan after the model applies the first finds nothing to do', async () => {
  await check(
    'planner idempotence',
    fc.property(scenario, ({ cells, mode, conflict, delete: del }) => {
      const opts: PlanOptions = { mode, conflict, delete: del, now: NOW };
      const first = planOf(cells, opts);
      const after = cells.flatMap((c) => apply(c, first.get(c.path)!, opts)).filter((c) => c.L || c.R || c.B);
      const second = planOf(after, opts);
      for (const c of after) {
        const item = second.get(c.path)!;
        const before = first.get(c.path);
        const want = expectedAction(situation(c), { mode, conflict, delete: del });
        assert.equal(item.action, want.action, `${c.path}: second plan disagrees with the reference`);
        if (before?.action === 'skip') {
          assert.equal(item.action, 'skip', `${c.path}: a skipped path is still skipped`);
        } else if (before === undefined && mode === 'download') {
          // A keep-both copy made in download-only mode exists only locally: a local extra, which
          // the next download-only run skips, or moves to the trash with --delete.
          assert.equal(item.action, del ? 'delete-local' : 'skip');
        } else {
          assert.equal(item.action, 'nothing', `${c.path}: ${before?.action ?? 'keep-both copy'} left work behind (${item.rule})`);
        }
      }
    }),
    Math.max(2_000, (RUNS ?? 0) * 20),
  );
});
