// The world of the model-based end-to-end tests (sync.test.ts, examples.test.ts): sequences of
// user operations on both sides, interleaved with syncs in any mode, policy, guard and --exclude
// setting (and dry runs, and `plan` ... `apply` with drift in between), run in-process through
// the CLI against the local S3 server. A case has one or two clients: project folders with their
// own manifests sharing one bucket prefix, as two machines would; in half of the cases the engine
// uploads big files multipart. Before each run the reference model (reference.ts, written from
// the spec) predicts every path's action from that client's L and B and the shared R; the test
// compares it with the run's `item` and `file` events, the exit code (the delete guard
// included), the run's trash, and both sides afterwards. On top of the model, invariants that do
// not depend on it:
//   - after a two-way sync: both sides hold the same files with the same bytes;
//   - nothing present before a sync is gone after it unless it is in the trash, or it was the
//     synced version (B) of a remote object whose local copy the user changed or deleted, or a
//     remote extra that upload-only --delete was asked to remove (remote deletes are not kept);
//   - a path gone from the bucket and every client stays gone until a user writes it again;
//   - upload-only never changes a local file (bytes or stat); download-only never changes an object.
//
// Every local write and touch sets an explicit, never-repeated mtime (an hour in the past; an
// hour in the future: racily clean, so re-hashed every run; or the kernel's own "now" of the write,
// which is never the same tick as an earlier sync's record), so the stat always moves with the
// content. A same-size rewrite that kept size, mtime and inode would be invisible by stat, as in
// git; that is the documented limit of stat-based change detection, not a case for this model.
// The hour's distance also keeps the `newer` policy's comparison (local mtime vs LastModified) far
// from ties; the model computes it from the real stat and listing anyway.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CopyObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import fc from 'fast-check';
import { CONFLICT_POLICIES, type Action, type ConflictPolicy, type Mode } from '../../src/core/types.js';
import type { TestS3 } from '../support/s3-server.js';
import { makeProject, runCli, type CliResult, type Project } from '../support/harness.js';
import {
  conflictCopyName,
  executedWithEvent,
  expectedAction,
  guardRefuses,
  reported,
  type Expected,
  type LocalSide,
  type RemoteSide,
} from './reference.js';

let s3: TestS3;
/** The server every case of this process talks to. */
export function useServer(server: TestS3): void {
  s3 = server;
}
/** What the runs covered, printed at the end (a diagnostic, not a pass/fail criterion). */
export const stats = { cases: 0, runs: {} as Record<string, number>, refused: 0, keepBoth: 0, actions: {} as Record<string, number> };

// Small universe: collisions and conflicts on every other step. `media/d` has no extension,
// `media/sub/c.txt` is in a subfolder, `staticfiles/s.css` is in the second mapping.
const NAMES = ['media/a.txt', 'media/b.txt', 'media/sub/c.txt', 'media/d', 'staticfiles/s.css'] as const;
// Several of one size (same-size edits), one longer, and the empty file.
// Two big ones (5 MiB + 1 byte, one size) go up as two-part multipart uploads in `multipart` cases.
// The model names contents by these labels; bytesOf gives the bytes.
const CONTENTS = ['x', 'y', 'z', 'ww', '', 'BIG1', 'BIG2'] as const;
const MiB = 1024 * 1024;
const PART = 5 * MiB;
const BIG = new Map(['BIG1', 'BIG2'].map((l) => [l, Buffer.alloc(PART + 1, l)]));
const bytesOf = (label: string): Buffer => BIG.get(label) ?? Buffer.from(label);
/** The ETag of a single-part PUT, and of a multipart upload in 5 MiB parts (MD5 of the part MD5s). */
const plainEtag = (c: string): string => md5(bytesOf(c));
function multipartEtag(c: string): string {
  const b = bytesOf(c);
  const parts: Buffer[] = [];
  for (let at = 0; at < b.length; at += PART) parts.push(crypto.createHash('md5').update(b.subarray(at, at + PART)).digest());
  return `${md5(Buffer.concat(parts))}-${parts.length}`;
}
const MD5_TO_CONTENT = new Map(CONTENTS.map((c) => [plainEtag(c), c]));
const ETAG_TO_CONTENT = new Map(CONTENTS.flatMap((c) => [[plainEtag(c), c], [multipartEtag(c), c]] as const));
/** The label of a file's or object's bytes; a failure if no user ever wrote them. */
function labelOf(bytes: Buffer, where: string): string {
  const label = MD5_TO_CONTENT.get(md5(bytes));
  assert.ok(label !== undefined, `${where} holds bytes no user wrote`);
  return label;
}

function md5(s: string | Buffer): string {
  return crypto.createHash('md5').update(s).digest('hex');
}

/** How a local write or touch sets the mtime (see the header). */
type When = 'past' | 'future' | 'now';

export type Op =
  | { op: 'lwrite'; who: number; p: string; c: string; when: When }
  | { op: 'ldelete'; who: number; p: string }
  | { op: 'lrename'; who: number; from: string; to: string }
  | { op: 'ltouch'; who: number; p: string; when: When }
  | { op: 'rput'; p: string; c: string }
  | { op: 'rdelete'; p: string }
  | { op: 'rrename'; from: string; to: string; copy: boolean }
  | SyncOp
  | PlanOp
  | ApplyOp
  | PlanApplyOp;

export interface PlanApplyOp {
  op: 'plan-apply';
  plan: PlanOp;
  between: Op[];
  apply: ApplyOp;
}

/** An --exclude glob, relative to each mapping (or none). */
type ExcludeGlob = '*.txt' | 'sub/**' | '*.css' | undefined;

/** The model's reading of the three globs (picomatch: `*` stays within one folder). */
function excluded(p: string, exclude: ExcludeGlob): boolean {
  const rel = p.slice(p.indexOf('/') + 1);
  if (exclude === '*.txt') return !rel.includes('/') && rel.endsWith('.txt');
  if (exclude === '*.css') return !rel.includes('/') && rel.endsWith('.css');
  if (exclude === 'sub/**') return rel.startsWith('sub/');
  return false;
}

/** What a plan and a sync are run with. */
interface RunChoices {
  exclude: ExcludeGlob;
  who: number;
  mode: Mode;
  conflict: ConflictPolicy;
  del: boolean;
  force: boolean;
  maxDelete: '50%' | '100%';
}

export interface PlanOp extends RunChoices {
  op: 'plan';
}

export interface ApplyOp {
  op: 'apply';
  who: number;
  force: boolean;
  maxDelete: '50%' | '100%';
}

export interface SyncOp extends RunChoices {
  op: 'sync';
  dry: boolean;
}

const name = fc.constantFrom(...NAMES);
// The big contents are rarer: each costs a few 5 MiB transfers.
const contentArb = fc.oneof({ arbitrary: fc.constantFrom(...CONTENTS.slice(0, 5)), weight: 6 }, { arbitrary: fc.constantFrom('BIG1', 'BIG2'), weight: 1 });
const who = fc.nat({ max: 1 });
const when = fc.constantFrom<When>('past', 'future', 'now');
const excludeArb = fc.constantFrom<ExcludeGlob>(undefined, undefined, undefined, undefined, undefined, '*.txt', 'sub/**', '*.css');
const syncArb: fc.Arbitrary<SyncOp> = fc.record({
  op: fc.constant('sync' as const),
  exclude: excludeArb,
  who,
  mode: fc.constantFrom<Mode>('two-way', 'two-way', 'upload', 'download'),
  conflict: fc.constantFrom(...CONFLICT_POLICIES),
  del: fc.boolean(),
  force: fc.boolean(),
  maxDelete: fc.constantFrom('50%' as const, '100%' as const),
  dry: fc.nat({ max: 7 }).map((n) => n === 0),
});
type UserOp = Exclude<Op, SyncOp | PlanOp | ApplyOp | PlanApplyOp>;
const userOps: fc.WeightedArbitrary<UserOp>[] = [
  { arbitrary: fc.record({ op: fc.constant('lwrite' as const), who, p: name, c: contentArb, when }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant('ldelete' as const), who, p: name }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('lrename' as const), who, from: name, to: name }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('ltouch' as const), who, p: name, when }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('rput' as const), p: name, c: contentArb }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('rdelete' as const), p: name }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('rrename' as const), from: name, to: name, copy: fc.boolean() }), weight: 1 },
];
const planArb: fc.Arbitrary<PlanOp> = fc.record({
  op: fc.constant('plan' as const),
  exclude: excludeArb,
  who,
  mode: fc.constantFrom<Mode>('two-way', 'upload', 'download'),
  conflict: fc.constantFrom(...CONFLICT_POLICIES),
  del: fc.boolean(),
  force: fc.boolean(),
  maxDelete: fc.constantFrom('50%' as const, '100%' as const),
});
const applyArb: fc.Arbitrary<ApplyOp> = fc.record({ op: fc.constant('apply' as const), who, force: fc.boolean(), maxDelete: fc.constantFrom('50%' as const, '100%' as const) });
export const opArb: fc.Arbitrary<Op> = fc.oneof(
  ...userOps,
  { arbitrary: syncArb, weight: 5 },
  { arbitrary: planArb, weight: 1 },
  { arbitrary: applyArb, weight: 1 },
  // A plan, a few user operations (drift, or none), and an apply of that plan by the same client.
  {
    arbitrary: fc
      .record({ plan: planArb, between: fc.array(fc.oneof(...userOps), { maxLength: 3 }), force: fc.boolean(), maxDelete: fc.constantFrom('50%' as const, '100%' as const) })
      .map(({ plan, between, force, maxDelete }): PlanApplyOp => ({ op: 'plan-apply', plan, between, apply: { op: 'apply', who: plan.who, force, maxDelete } })),
    weight: 2,
  },
);

/** Content by path; absent = no entry. */
type Side = Map<string, string>;
/** An object, or a base entry: the content and the ETag it has (or had) remotely. */
interface Obj {
  content: string;
  etag: string;
}
type Objects = Map<string, Obj>;

/** One machine: a project folder with its own manifest. */
export interface Client {
  project: Project;
  /** Its local files. */
  L: Side;
  /** Its base: the content both sides held when the path was last in sync, with the ETag then. */
  B: Objects;
  /** Runs that changed something (the manifest generation a saved plan must still match). */
  generation: number;
  /** The last plan `plan` saved. */
  plan?: { generation: number; stamp: string; mode: Mode; del: boolean; items: Map<string, PlannedItem> };
}

/** A saved plan item, with the local stat and remote ETag it was decided on (for drift). */
interface PlannedItem {
  e: Expected;
  local: string | undefined;
  remote: string | undefined;
}

interface Real {
  local: Map<string, { content: string; mtimeNs: bigint; ino: bigint }>;
  remote: Map<string, { content: string; etag: string; lastModified: number }>;
}

export class Case {
  readonly prefix = `case-${crypto.randomBytes(5).toString('hex')}`;
  readonly clients: Client[];
  /** The shared bucket prefix. */
  readonly R: Objects = new Map();
  /** Paths gone from the bucket and every client after a sync, not written by a user since. */
  readonly tombstones = new Set<string>();
  private clock = 0;
  /** Keep-both stamps (yyyymmdd-hhmmss) of runs and plans that name conflict copies. */
  private readonly keepBothStamps = new Set<string>();
  readonly log: string[] = [];

  /**
   * `multipart`: the engine uploads files of 5 MiB and more in 5 MiB parts, so its ETags for the
   * big contents are `<md5 of md5s>-2` while a user's PUT of the same bytes has a plain MD5 ETag:
   * "R changed" goes by ETag, not content, as the spec says.
   */
  constructor(clients: number, readonly multipart = false) {
    const config = {
      mappings: [
        { local: 'media', remote: `${this.prefix}/media/` },
        { local: 'staticfiles', remote: `${this.prefix}/static/` },
      ],
      ...(multipart ? { multipartThreshold: PART, partSize: PART } : {}),
    };
    this.clients = Array.from({ length: clients }, () => {
      const project = makeProject();
      fs.writeFileSync(path.join(project.root, 'storage-sync.config.json'), JSON.stringify(config));
      return { project, L: new Map(), B: new Map(), generation: 0 };
    });
  }

  cleanup(): void {
    for (const c of this.clients) c.project.cleanup();
  }

  key(p: string): string {
    if (p.startsWith('media/')) return `${this.prefix}/${p}`;
    if (p.startsWith('staticfiles/')) return `${this.prefix}/static/${p.slice('staticfiles/'.length)}`;
    throw new Error(`no mapping for ${p}`);
  }

  private pathOf(key: string): string {
    const rest = key.slice(this.prefix.length + 1);
    if (rest.startsWith('media/')) return rest;
    if (rest.startsWith('static/')) return `staticfiles/${rest.slice('static/'.length)}`;
    throw new Error(`key ${key} outside the mappings`);
  }

  private client(who: number): Client {
    return this.clients[who % this.clients.length]!;
  }

  private abs(c: Client, p: string): string {
    return path.join(c.project.root, p);
  }

  /** Sets a fresh mtime, never used before in this case (or leaves the kernel's "now"). */
  private stamp(abs: string, w: When): void {
    if (w === 'now') return;
    this.clock++;
    const t = new Date(Date.now() + (w === 'future' ? 3_600_000 : -3_600_000) + this.clock * 1_003);
    fs.utimesSync(abs, t, t);
  }

  private userWrote(p: string): void {
    this.tombstones.delete(p);
  }

  async apply(op: Op): Promise<void> {
    switch (op.op) {
      case 'lwrite': {
        const c = this.client(op.who);
        const abs = this.abs(c, op.p);
        fs.mkdirSync(path.dirname(abs), { recursive: true });
        fs.writeFileSync(abs, bytesOf(op.c));
        this.stamp(abs, op.when);
        c.L.set(op.p, op.c);
        this.userWrote(op.p);
        return;
      }
      case 'ldelete': {
        const c = this.client(op.who);
        if (!c.L.has(op.p)) return;
        fs.rmSync(this.abs(c, op.p));
        c.L.delete(op.p);
        return;
      }
      case 'lrename': {
        // mv: the file keeps its mtime and inode under the new name.
        const c = this.client(op.who);
        const content = c.L.get(op.from);
        if (content === undefined || op.from === op.to) return;
        fs.mkdirSync(path.dirname(this.abs(c, op.to)), { recursive: true });
        fs.renameSync(this.abs(c, op.from), this.abs(c, op.to));
        c.L.delete(op.from);
        c.L.set(op.to, content);
        this.userWrote(op.to);
        return;
      }
      case 'ltouch': {
        const c = this.client(op.who);
        if (!c.L.has(op.p)) return;
        if (op.when === 'now') {
          const t = new Date();
          fs.utimesSync(this.abs(c, op.p), t, t);
        } else this.stamp(this.abs(c, op.p), op.when);
        return;
      }
      case 'rput':
        await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: this.key(op.p), Body: bytesOf(op.c) }));
        this.R.set(op.p, { content: op.c, etag: plainEtag(op.c) });
        this.userWrote(op.p);
        return;
      case 'rdelete':
        if (!this.R.has(op.p)) return;
        await s3.deleteRaw(this.key(op.p));
        this.R.delete(op.p);
        return;
      case 'rrename': {
        const obj = this.R.get(op.from);
        if (obj === undefined || op.from === op.to) return;
        let etag = plainEtag(obj.content);
        if (op.copy) {
          // Whether a copy keeps a multipart ETag is the server's business: the model reads it.
          const source = `${s3.bucket}/${this.key(op.from).split('/').map(encodeURIComponent).join('/')}`;
          const res = await s3.client.send(new CopyObjectCommand({ Bucket: s3.bucket, Key: this.key(op.to), CopySource: source }));
          etag = (res.CopyObjectResult?.ETag ?? '').replace(/"/g, '');
        } else {
          await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: this.key(op.to), Body: bytesOf(obj.content) }));
        }
        await s3.deleteRaw(this.key(op.from));
        this.R.delete(op.from);
        this.R.set(op.to, { content: obj.content, etag });
        this.userWrote(op.to);
        return;
      }
      case 'sync':
        await this.sync(op);
        return;
      case 'plan':
        await this.plan(op);
        return;
      case 'apply':
        await this.applyPlan(op);
        return;
      case 'plan-apply':
        await this.plan(op.plan);
        for (const o of op.between) await this.apply(o);
        await this.applyPlan(op.apply);
        return;
    }
  }

  private async readReal(c: Client): Promise<Real> {
    const local: Real['local'] = new Map();
    const walk = (rel: string): void => {
      const dir = this.abs(c, rel);
      if (!fs.existsSync(dir)) return;
      for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
        const r = `${rel}/${d.name}`;
        if (d.isDirectory()) walk(r);
        else {
          const st = fs.statSync(this.abs(c, r), { bigint: true });
          local.set(r, { content: labelOf(fs.readFileSync(this.abs(c, r)), r), mtimeNs: st.mtimeNs, ino: st.ino });
        }
      }
    };
    walk('media');
    walk('staticfiles');
    const remote: Real['remote'] = new Map();
    let token: string | undefined;
    do {
      const page = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `${this.prefix}/`, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        const etag = (o.ETag ?? '').replace(/"/g, '');
        const content = ETAG_TO_CONTENT.get(etag);
        assert.ok(content !== undefined, `object ${o.Key} has an ETag ${etag} of no content any user wrote`);
        remote.set(this.pathOf(o.Key!), { content, etag, lastModified: o.LastModified!.getTime() });
      }
      token = page.NextContinuationToken;
    } while (token);
    return { local, remote };
  }

  /** The real sides must be exactly what the model holds. */
  private assertMatches(c: Client, real: Real, when: string): void {
    const l = Object.fromEntries(sorted(new Map([...real.local].map(([p, f]) => [p, f.content]))));
    const r = Object.fromEntries(sorted(new Map([...real.remote].map(([p, o]) => [p, `${o.content}|${o.etag}`]))));
    assert.deepEqual(l, Object.fromEntries(sorted(c.L)), `${when}: local files differ from the model`);
    const model = Object.fromEntries(sorted(new Map([...this.R].map(([p, o]) => [p, `${o.content}|${o.etag}`]))));
    assert.deepEqual(r, model, `${when}: remote objects (content|ETag) differ from the model`);
  }

  private predict(c: Client, real: Real, mode: Mode, conflict: ConflictPolicy, del: boolean, exclude: ExcludeGlob): Map<string, Expected> {
    const { L, B } = c;
    const R = this.R;
    const out = new Map<string, Expected>();
    for (const p of new Set([...L.keys(), ...R.keys(), ...B.keys()])) {
      // An excluded path is not looked at: no decision, its base untouched.
      if (excluded(p, exclude)) continue;
      const l = L.get(p);
      const r = R.get(p);
      const b = B.get(p);
      // `touched` and `unchanged` differ only in bookkeeping (refresh vs nothing), never reported.
      const local: LocalSide = b === undefined ? (l === undefined ? 'absent' : 'new') : l === undefined ? 'deleted' : l === b.content ? 'unchanged' : 'changed';
      // By ETag: the same bytes put again with another ETag (single vs multipart) are a change.
      const remote: RemoteSide = b === undefined ? (r === undefined ? 'absent' : 'new') : r === undefined ? 'deleted' : r.etag === b.etag ? 'unchanged' : 'changed';
      const rl = real.local.get(p);
      const rr = real.remote.get(p);
      const localNewer = rl !== undefined && rr !== undefined && rl.mtimeNs / 1_000_000n > BigInt(rr.lastModified);
      // Every object's MD5 is knowable here: a plain ETag, the base's, x-amz-meta-md5 on the
      // engine's multipart uploads (kept by a copy), or the multipart ETag computed locally.
      out.set(p, expectedAction({ local, remote, same: l !== undefined && l === r?.content, localNewer }, { mode, conflict, delete: del }));
    }
    return out;
  }

  private refused(c: Client, expected: Map<string, Expected>, guard: { maxDelete: '50%' | '100%'; force: boolean }, exclude: ExcludeGlob): boolean {
    const mappingOf = (p: string) => (p.startsWith('media/') ? 0 : 1);
    const per = [0, 1].map((i) => {
      // The guard counts what the filters let through.
      const inMapping = (side: Map<string, unknown>) => [...side.keys()].filter((p) => mappingOf(p) === i && !excluded(p, exclude)).length;
      const deletes = [...expected].filter(([p, e]) => mappingOf(p) === i && (e.action === 'delete-local' || e.action === 'delete-remote')).length;
      return { tracked: inMapping(c.B), deletes, localFiles: inMapping(c.L), remoteFiles: inMapping(this.R) };
    });
    return guardRefuses(per, guard.maxDelete === '50%' ? 50 : 100, guard.force);
  }

  /**
   * Keep-both names carry the run's second: a second copy of one path in one second, on this
   * client or another, would collide (the engine then fails that item rather than overwrite).
   */
  private async waitForNewSecond(expected: Map<string, Expected>): Promise<void> {
    if (![...expected.values()].some((e) => e.keepBoth)) return;
    while (this.keepBothStamps.has(stampOf(new Date()))) await new Promise((r) => setTimeout(r, 25));
  }

  private async cli(c: Client, args: string[]): Promise<{ res: CliResult; what: string }> {
    const res = await runCli(args, { cwd: c.project.root, env: s3.env });
    const what = `client ${this.clients.indexOf(c)}: ${args.filter((a) => a !== '--json').join(' ')}`;
    this.log.push(`${what} → exit ${res.code}`);
    stats.runs[args[0]!] = (stats.runs[args[0]!] ?? 0) + 1;
    if (res.code === 3) stats.refused++;
    for (const e of res.events) if (e['event'] === 'item') stats.actions[String(e['action'])] = (stats.actions[String(e['action'])] ?? 0) + 1;
    assert.ok(!res.stdout.includes(s3.secretAccessKey) && !res.stderr.includes(s3.secretAccessKey), 'secret in output');
    return { res, what };
  }

  private async sync(op: SyncOp): Promise<void> {
    const { mode, conflict, del } = op;
    const c = this.client(op.who);
    const before = await this.readReal(c);
    this.assertMatches(c, before, 'before the sync');
    const expected = this.predict(c, before, mode, conflict, del, op.exclude);
    const refused = this.refused(c, expected, op, op.exclude);
    if (!op.dry && !refused) await this.waitForNewSecond(expected);

    const args = ['sync', '--json', '--mode', mode, '--conflict', conflict, '--max-delete', op.maxDelete];
    if (op.exclude) args.push('--exclude', op.exclude);
    if (del) args.push('--delete');
    if (op.force) args.push('--force');
    if (op.dry) args.push('--dry-run');
    const { res, what } = await this.cli(c, args);
    const after = await this.readReal(c);

    if (refused) {
      assert.equal(res.code, 3, `${what}: the delete guard should refuse\n${res.stdout}${res.stderr}`);
      assert.equal(res.events.filter((e) => e['event'] === 'item' || e['event'] === 'file').length, 0, `${what}: a refused run reports no items`);
      this.assertMatches(c, after, `${what} (refused)`);
      return;
    }
    assert.equal(res.code, 0, `${what}: exit code\n${res.stdout}${res.stderr}`);
    const runId = String(res.events.find((e) => e['event'] === 'start')?.['runId']);
    this.checkEvents(res, what, expected, op.dry ? new Map() : expected, new Set());
    if (op.dry) {
      this.assertUnchanged(c, before, after, runId, what);
      return;
    }
    this.carriedOut(c, { what, runId, stamp: runId.slice(0, 15), mode, del, expected, before, after });
    if (mode === 'two-way') {
      const l = Object.fromEntries(sorted(new Map([...after.local].filter(([p]) => !excluded(p, op.exclude)).map(([p, f]) => [p, md5(f.content)]))));
      const r = Object.fromEntries(sorted(new Map([...after.remote].filter(([p]) => !excluded(p, op.exclude)).map(([p, o]) => [p, md5(o.content)]))));
      assert.deepEqual(l, r, `${what}: after a two-way sync both sides must be equal (outside what --exclude leaves out)`);
    }
  }

  /** `plan`: the same decisions as a sync, saved for `apply`; nothing changes. */
  private async plan(op: PlanOp): Promise<void> {
    const { mode, conflict, del } = op;
    const c = this.client(op.who);
    const before = await this.readReal(c);
    this.assertMatches(c, before, 'before the plan');
    const expected = this.predict(c, before, mode, conflict, del, op.exclude);
    const refused = this.refused(c, expected, op, op.exclude);
    // The copy's name is fixed now, from the plan's clock.
    if (!refused) await this.waitForNewSecond(expected);
    const args = ['plan', '--json', '--mode', mode, '--conflict', conflict, '--max-delete', op.maxDelete];
    if (op.exclude) args.push('--exclude', op.exclude);
    if (del) args.push('--delete');
    if (op.force) args.push('--force');
    const { res, what } = await this.cli(c, args);
    const after = await this.readReal(c);
    if (refused) {
      // The last saved plan stays what `apply` finds.
      assert.equal(res.code, 3, `${what}: the delete guard should refuse\n${res.stdout}${res.stderr}`);
      this.assertMatches(c, after, `${what} (refused)`);
      return;
    }
    assert.equal(res.code, 0, `${what}: exit code\n${res.stdout}${res.stderr}`);
    const runId = String(res.events.find((e) => e['event'] === 'start')?.['runId']);
    this.checkEvents(res, what, expected, new Map(), new Set());
    this.assertUnchanged(c, before, after, runId, what);
    const items = new Map<string, PlannedItem>();
    for (const [p, e] of expected) {
      if (e.action === 'nothing') continue;
      const l = before.local.get(p);
      items.set(p, { e, local: l && `${l.mtimeNs}|${l.ino}|${l.content}`, remote: before.remote.get(p)?.etag });
    }
    c.plan = { generation: c.generation, stamp: runId.slice(0, 15), mode, del, items };
    if ([...items.values()].some((it) => it.e.keepBoth)) this.keepBothStamps.add(c.plan.stamp);
  }

  /** `apply`: the saved plan's items, minus those whose local stat or remote ETag moved since. */
  private async applyPlan(op: ApplyOp): Promise<void> {
    const c = this.client(op.who);
    const before = await this.readReal(c);
    this.assertMatches(c, before, 'before apply');
    const plan = c.plan;
    const kept = new Map<string, Expected>();
    const dropped = new Set<string>();
    for (const [p, it] of plan?.items ?? []) {
      const l = before.local.get(p);
      const moved = (l && `${l.mtimeNs}|${l.ino}|${l.content}`) !== it.local || before.remote.get(p)?.etag !== it.remote;
      if (moved) dropped.add(p);
      else kept.set(p, it.e);
    }
    const fresh = plan !== undefined && plan.generation === c.generation;
    const refused = fresh && this.refused(c, kept, op, undefined);
    const args = ['apply', '--json', '--max-delete', op.maxDelete];
    if (op.force) args.push('--force');
    const { res, what } = await this.cli(c, args);
    const after = await this.readReal(c);
    const outcome = !plan ? 'apply: no plan' : !fresh ? 'apply: stale' : refused ? 'apply: guard' : dropped.size > 0 ? 'apply: some drifted' : 'apply: whole plan';
    stats.runs[outcome] = (stats.runs[outcome] ?? 0) + 1;
    if (!plan || !fresh || refused) {
      // No plan yet: a usage error (2). A plan older than the last run, or one the guard refuses: 3.
      assert.equal(res.code, plan ? 3 : 2, `${what}: ${plan ? (fresh ? 'the delete guard should refuse' : 'a stale plan is refused') : 'no plan saved'}\n${res.stdout}${res.stderr}`);
      this.assertMatches(c, after, `${what} (refused)`);
      return;
    }
    assert.equal(res.code, 0, `${what}: exit code\n${res.stdout}${res.stderr}`);
    const runId = String(res.events.find((e) => e['event'] === 'start')?.['runId']);
    const droppedReported = new Set([...dropped].filter((p) => { const a = plan.items.get(p)!.e.action; return reported(a) && a !== 'skip'; }));
    this.checkEvents(res, what, kept, kept, droppedReported);
    this.carriedOut(c, { what, runId, stamp: plan.stamp, mode: plan.mode, del: plan.del, expected: kept, before, after });
  }

  /** `item` events are the reported actions; `file` events the carried-out ones plus drift skips. */
  private checkEvents(res: CliResult, what: string, announced: Map<string, Expected>, executed: Map<string, Expected>, skipped: Set<string>): void {
    const items = new Map(res.events.filter((e) => e['event'] === 'item').map((e) => [String(e['path']), String(e['action'])]));
    const wantItems = new Map([...announced].filter(([, e]) => reported(e.action)).map(([p, e]) => [p, e.action as string]));
    assert.deepEqual(Object.fromEntries(sorted(items)), Object.fromEntries(sorted(wantItems)), `${what}: item events differ from the model`);
    const files = new Map(res.events.filter((e) => e['event'] === 'file').map((e) => [String(e['path']), String(e['status'])]));
    const wantFiles = new Map([...executed].filter(([, e]) => executedWithEvent(e.action)).map(([p]) => [p, 'done']));
    for (const p of skipped) wantFiles.set(p, 'skipped');
    assert.deepEqual(Object.fromEntries(sorted(files)), Object.fromEntries(sorted(wantFiles)), `${what}: file events differ from the model`);
  }

  private assertUnchanged(c: Client, before: Real, after: Real, runId: string, what: string): void {
    this.assertMatches(c, after, what);
    assert.equal(fs.existsSync(path.join(c.project.root, 'manifests/default/trash', runId)), false, `${what}: kept trash without changing anything`);
    const snap = (x: Real) => JSON.stringify([sorted(x.local), sorted(x.remote)], (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    assert.equal(snap(after), snap(before), `${what}: changed a file or an object`);
  }

  /** A run that carried out `expected`: its trash, the model's effects, and the invariants. */
  private carriedOut(c: Client, r: { what: string; runId: string; stamp: string; mode: Mode; del: boolean; expected: Map<string, Expected>; before: Real; after: Real }): void {
    const { what, runId, mode, del, expected, before, after } = r;
    const trashBase = path.join(c.project.root, 'manifests/default/trash');
    // What the run must have kept in its trash: every local file replaced or removed, and every
    // remote object overwritten without the base knowing it (conflict, or a first-run upload).
    const wantTrash = new Map<string, string>();
    for (const [p, e] of expected) {
      const l = c.L.get(p);
      const rc = this.R.get(p)?.content;
      const replacesLocal = e.action === 'download' || e.action === 'conflict-download' || e.action === 'delete-local';
      if (replacesLocal && l !== undefined && !e.keepBoth) wantTrash.set(p, l);
      const firstRunUpload = e.action === 'upload' && !c.B.has(p);
      if ((e.action === 'conflict-upload' || firstRunUpload) && rc !== undefined) wantTrash.set(`remote/${p}`, rc);
    }
    assert.deepEqual(Object.fromEntries(sorted(readTree(path.join(trashBase, runId)))), Object.fromEntries(sorted(wantTrash)), `${what}: this run's trash`);

    const present = new Set([...before.local.values(), ...before.remote.values()].map((f) => f.content));
    const baseBefore = new Map(c.B);
    for (const [p, e] of expected) this.effect(c, p, e, mode, r.stamp);
    c.generation++;
    if ([...expected.values()].some((e) => e.keepBoth)) {
      this.keepBothStamps.add(r.stamp);
      stats.keepBoth++;
    }
    this.assertMatches(c, after, `after ${what}`);

    // Invariants that do not lean on the reference model.
    if (mode === 'upload') {
      const snap = (x: Real) => Object.fromEntries(sorted(new Map([...x.local].map(([p, f]) => [p, `${f.content}|${f.mtimeNs}|${f.ino}`]))));
      assert.deepEqual(snap(after), snap(before), `${what}: upload-only changed a local file`);
    }
    if (mode === 'download') {
      const snap = (x: Real) => Object.fromEntries(sorted(new Map([...x.remote].map(([p, o]) => [p, `${o.etag}|${o.lastModified}`]))));
      assert.deepEqual(snap(after), snap(before), `${what}: download-only changed a remote object`);
    }
    // A remote object may go without a copy only as the synced version of a file the user
    // changed or deleted locally, or as an extra that upload-only --delete was asked to remove.
    const mayGo = (p: string, content: string) => baseBefore.get(p)?.content === content || (mode === 'upload' && del && expected.get(p)?.action === 'delete-remote');
    const trashAll = new Set(readTree(trashBase).values());
    const nowThere = new Set([...after.local.values(), ...after.remote.values()].map((f) => f.content));
    for (const other of this.clients) for (const content of other.L.values()) nowThere.add(content);
    for (const [p, o] of before.remote) {
      if (nowThere.has(o.content) || trashAll.has(o.content)) continue;
      assert.ok(mayGo(p, o.content), `${what}: remote ${p} (${JSON.stringify(o.content)}) is gone, not in the trash, and was not the synced version`);
    }
    for (const content of present) {
      if (nowThere.has(content) || trashAll.has(content)) continue;
      assert.ok([...before.remote].some(([p, o]) => o.content === content && mayGo(p, content)), `${what}: content ${JSON.stringify(content)} was lost`);
    }
    for (const p of this.tombstones) {
      assert.ok(!after.local.has(p) && !after.remote.has(p), `${what}: ${p} was deleted everywhere and came back`);
    }
    for (const p of [...before.local.keys(), ...before.remote.keys()]) {
      if (!this.R.has(p) && this.clients.every((x) => !x.L.has(p))) this.tombstones.add(p);
    }
  }

  private effect(c: Client, p: string, e: Expected, mode: Mode, stamp: string): void {
    const { L, B } = c;
    const R = this.R;
    const l = L.get(p);
    const r = R.get(p);
    const uploaded = (content: string): Obj => ({ content, etag: this.multipart && bytesOf(content).length >= PART ? multipartEtag(content) : plainEtag(content) });
    switch (e.action as Action) {
      case 'upload':
      case 'conflict-upload': {
        const o = uploaded(l!);
        R.set(p, o);
        B.set(p, o);
        return;
      }
      case 'download':
      case 'conflict-download':
        if (e.keepBoth && l !== undefined) {
          const copy = conflictCopyName(p, stamp);
          L.set(copy, l);
          if (mode !== 'download') {
            R.set(copy, uploaded(l));
            B.set(copy, uploaded(l));
          }
        }
        L.set(p, r!.content);
        B.set(p, r!);
        return;
      case 'record':
        B.set(p, r!);
        return;
      case 'delete-remote':
        R.delete(p);
        B.delete(p);
        return;
      case 'delete-local':
        L.delete(p);
        B.delete(p);
        return;
      case 'forget':
        B.delete(p);
        return;
      default:
        return;
    }
  }
}

function sorted<V>(m: Map<string, V>): [string, V][] {
  return [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function stampOf(d: Date): string {
  return d.toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-');
}

/** Files under a folder: relative POSIX path → content. */
function readTree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!fs.existsSync(dir)) return out;
  for (const rel of fs.readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const abs = path.join(dir, rel);
    if (fs.statSync(abs).isFile()) out.set(rel.split(path.sep).join('/'), labelOf(fs.readFileSync(abs), `trash ${rel}`));
  }
  return out;
}

/** Every case ends with a two-way sync of each client, so the two-way invariants always run. */
export const finalSyncs = (clients: number): fc.Arbitrary<SyncOp[]> =>
  fc.array(fc.constantFrom(...CONFLICT_POLICIES), { minLength: clients, maxLength: clients }).map((policies) =>
    policies.map((conflict, who) => ({ op: 'sync', who, mode: 'two-way', conflict, del: false, force: true, maxDelete: '100%', dry: false, exclude: undefined })),
  );

export async function runOps(ops: Op[], clients = 1, multipart = false): Promise<Case> {
  const c = new Case(clients, multipart);
  stats.cases++;
  try {
    for (const op of ops) await c.apply(op);
    return c;
  } finally {
    c.cleanup();
  }
}
