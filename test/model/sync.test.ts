// Model-based end-to-end tests: random sequences of user operations on both sides, interleaved
// with syncs in random modes, policies and guard settings, run in-process through the CLI against
// the local S3 server. Before each sync the reference model (reference.ts, written from the spec)
// predicts every path's action; the test compares it with the run's `item` and `file` events, the
// exit code (the delete guard included), the trash of the run, and both sides afterwards. On top of
// the model, invariants that do not depend on it:
//   - after a two-way sync: both sides hold the same files with the same bytes;
//   - nothing present before a sync is gone after it unless it is in the trash, or it was the
//     synced version (B) of a remote object whose local copy the user changed or deleted, or a
//     remote extra that upload-only --delete was asked to remove (remote deletes are not kept);
//   - a path gone from both sides stays gone until a user writes it again;
//   - upload-only never changes a local file (bytes or stat); download-only never changes an object.
//
// Every local write and touch sets an explicit, never-repeated mtime (an hour in the past, or an
// hour in the future: racily clean, so re-hashed every run), so the stat always moves with the
// content. A same-size rewrite that kept size, mtime and inode would be invisible by stat, as in
// git; that is the documented limit of stat-based change detection, not a case for this model.
// The hour's distance also keeps the `newer` policy's comparison (local mtime vs LastModified) far
// from ties; the model computes it from the real stat and listing anyway.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { CopyObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import fc from 'fast-check';
import { CONFLICT_POLICIES, type Action, type ConflictPolicy, type Mode } from '../../src/core/types.js';
import { startS3Server, type TestS3 } from '../support/s3-server.js';
import { makeProject, runCli, type Project } from '../support/harness.js';
import { check, RUNS } from './config.js';
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
/** What the runs covered, printed at the end (a diagnostic, not a pass/fail criterion). */
const stats = { cases: 0, syncs: 0, refused: 0, actions: {} as Record<string, number> };
before(async () => {
  s3 = await startS3Server();
});
after(async () => {
  await s3?.stop();
});

// Small universe: collisions and conflicts on every other step. `media/d` has no extension,
// `media/sub/c.txt` is in a subfolder, `staticfiles/s.css` is in the second mapping.
const NAMES = ['media/a.txt', 'media/b.txt', 'media/sub/c.txt', 'media/d', 'staticfiles/s.css'] as const;
// Several of one size (same-size edits), one longer, and the empty file.
const CONTENTS = ['x', 'y', 'z', 'ww', ''] as const;
const MD5_TO_CONTENT = new Map(CONTENTS.map((c) => [md5(c), c]));

function md5(s: string | Buffer): string {
  return crypto.createHash('md5').update(s).digest('hex');
}

type Op =
  | { op: 'lwrite'; p: string; c: string; future: boolean }
  | { op: 'ldelete'; p: string }
  | { op: 'lrename'; from: string; to: string }
  | { op: 'ltouch'; p: string; future: boolean }
  | { op: 'rput'; p: string; c: string }
  | { op: 'rdelete'; p: string }
  | { op: 'rrename'; from: string; to: string; copy: boolean }
  | { op: 'sync'; mode: Mode; conflict: ConflictPolicy; del: boolean; force: boolean; maxDelete: '50%' | '100%' };

const name = fc.constantFrom(...NAMES);
const contentArb = fc.constantFrom(...CONTENTS);
const syncArb = fc.record({
  op: fc.constant('sync' as const),
  mode: fc.constantFrom<Mode>('two-way', 'two-way', 'upload', 'download'),
  conflict: fc.constantFrom(...CONFLICT_POLICIES),
  del: fc.boolean(),
  force: fc.boolean(),
  maxDelete: fc.constantFrom('50%' as const, '100%' as const),
});
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('lwrite' as const), p: name, c: contentArb, future: fc.boolean() }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant('ldelete' as const), p: name }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('lrename' as const), from: name, to: name }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('ltouch' as const), p: name, future: fc.boolean() }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('rput' as const), p: name, c: contentArb }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant('rdelete' as const), p: name }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('rrename' as const), from: name, to: name, copy: fc.boolean() }), weight: 1 },
  { arbitrary: syncArb, weight: 4 },
);

/** Content by path; `undefined` = absent. */
type Side = Map<string, string>;

interface Model {
  L: Side;
  R: Side;
  /** The base: the content both sides held when the path was last in sync. */
  B: Side;
  /** Paths gone from both sides after a sync, not written by a user since. */
  tombstones: Set<string>;
}

interface Real {
  local: Map<string, { content: string; mtimeNs: bigint; ino: bigint }>;
  remote: Map<string, { content: string; etag: string; lastModified: number }>;
}

class Case {
  readonly prefix = `case-${crypto.randomBytes(5).toString('hex')}`;
  readonly project: Project = makeProject();
  readonly model: Model = { L: new Map(), R: new Map(), B: new Map(), tombstones: new Set() };
  private clock = 0;
  /** The keep-both stamp (yyyymmdd-hhmmss) of the last run that made a conflict copy. */
  private lastKeepBothStamp = '';
  readonly log: string[] = [];

  constructor() {
    const config = {
      mappings: [
        { local: 'media', remote: `${this.prefix}/media/` },
        { local: 'staticfiles', remote: `${this.prefix}/static/` },
      ],
    };
    fs.writeFileSync(path.join(this.project.root, 'storage-sync.config.json'), JSON.stringify(config));
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

  private abs(p: string): string {
    return path.join(this.project.root, p);
  }

  /** A fresh mtime an hour away from now, never used before in this case. */
  private mtime(future: boolean): Date {
    this.clock++;
    const offsetMs = (future ? 3_600_000 : -3_600_000) + this.clock * 1_003;
    return new Date(Date.now() + offsetMs);
  }

  private userWrote(p: string): void {
    this.model.tombstones.delete(p);
  }

  async apply(op: Op): Promise<void> {
    const m = this.model;
    switch (op.op) {
      case 'lwrite': {
        const abs = this.abs(op.p);
        fs.mkdirSync(path.dirname(abs), { recursive: true });
        fs.writeFileSync(abs, op.c);
        const t = this.mtime(op.future);
        fs.utimesSync(abs, t, t);
        m.L.set(op.p, op.c);
        this.userWrote(op.p);
        return;
      }
      case 'ldelete':
        if (!m.L.has(op.p)) return;
        fs.rmSync(this.abs(op.p));
        m.L.delete(op.p);
        return;
      case 'lrename': {
        // mv: the file keeps its mtime and inode under the new name.
        const c = m.L.get(op.from);
        if (c === undefined || op.from === op.to) return;
        fs.mkdirSync(path.dirname(this.abs(op.to)), { recursive: true });
        fs.renameSync(this.abs(op.from), this.abs(op.to));
        m.L.delete(op.from);
        m.L.set(op.to, c);
        this.userWrote(op.to);
        return;
      }
      case 'ltouch': {
        if (!m.L.has(op.p)) return;
        const t = this.mtime(op.future);
        fs.utimesSync(this.abs(op.p), t, t);
        return;
      }
      case 'rput':
        await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: this.key(op.p), Body: op.c }));
        m.R.set(op.p, op.c);
        this.userWrote(op.p);
        return;
      case 'rdelete':
        if (!m.R.has(op.p)) return;
        await s3.deleteRaw(this.key(op.p));
        m.R.delete(op.p);
        return;
      case 'rrename': {
        const c = m.R.get(op.from);
        if (c === undefined || op.from === op.to) return;
        if (op.copy) {
          const source = `${s3.bucket}/${this.key(op.from).split('/').map(encodeURIComponent).join('/')}`;
          await s3.client.send(new CopyObjectCommand({ Bucket: s3.bucket, Key: this.key(op.to), CopySource: source }));
        } else {
          await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: this.key(op.to), Body: c }));
        }
        await s3.deleteRaw(this.key(op.from));
        m.R.delete(op.from);
        m.R.set(op.to, c);
        this.userWrote(op.to);
        return;
      }
      case 'sync':
        await this.sync(op);
        return;
    }
  }

  async readReal(): Promise<Real> {
    const local: Real['local'] = new Map();
    const walk = (rel: string): void => {
      const dir = this.abs(rel);
      if (!fs.existsSync(dir)) return;
      for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
        const r = `${rel}/${d.name}`;
        if (d.isDirectory()) walk(r);
        else {
          const st = fs.statSync(this.abs(r), { bigint: true });
          local.set(r, { content: fs.readFileSync(this.abs(r), 'utf8'), mtimeNs: st.mtimeNs, ino: st.ino });
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
        const content = MD5_TO_CONTENT.get(etag);
        assert.ok(content !== undefined, `object ${o.Key} has an ETag ${etag} of no content any user wrote`);
        remote.set(this.pathOf(o.Key!), { content, etag, lastModified: o.LastModified!.getTime() });
      }
      token = page.NextContinuationToken;
    } while (token);
    return { local, remote };
  }

  /** The real sides must be exactly what the model holds. */
  private assertMatches(real: Real, when: string): void {
    const l = Object.fromEntries([...real.local].map(([p, f]) => [p, f.content]));
    const r = Object.fromEntries([...real.remote].map(([p, o]) => [p, o.content]));
    assert.deepEqual(l, Object.fromEntries(sorted(this.model.L)), `${when}: local files differ from the model`);
    assert.deepEqual(r, Object.fromEntries(sorted(this.model.R)), `${when}: remote objects differ from the model`);
  }

  private predict(real: Real, mode: Mode, conflict: ConflictPolicy, del: boolean): Map<string, Expected> {
    const { L, R, B } = this.model;
    const out = new Map<string, Expected>();
    for (const p of new Set([...L.keys(), ...R.keys(), ...B.keys()])) {
      const l = L.get(p);
      const r = R.get(p);
      const b = B.get(p);
      // `touched` and `unchanged` differ only in bookkeeping (refresh vs nothing), never reported.
      const local: LocalSide = b === undefined ? (l === undefined ? 'absent' : 'new') : l === undefined ? 'deleted' : l === b ? 'unchanged' : 'changed';
      const remote: RemoteSide = b === undefined ? (r === undefined ? 'absent' : 'new') : r === undefined ? 'deleted' : r === b ? 'unchanged' : 'changed';
      const rl = real.local.get(p);
      const rr = real.remote.get(p);
      const localNewer = rl !== undefined && rr !== undefined && rl.mtimeNs / 1_000_000n > BigInt(rr.lastModified);
      out.set(p, expectedAction({ local, remote, same: l !== undefined && l === r, localNewer }, { mode, conflict, delete: del }));
    }
    return out;
  }

  private mappingOf(p: string): number {
    return p.startsWith('media/') ? 0 : 1;
  }

  private refused(expected: Map<string, Expected>, op: Extract<Op, { op: 'sync' }>): boolean {
    const per = [0, 1].map((i) => {
      const inMapping = (side: Side) => [...side.keys()].filter((p) => this.mappingOf(p) === i).length;
      const deletes = [...expected].filter(([p, e]) => this.mappingOf(p) === i && (e.action === 'delete-local' || e.action === 'delete-remote')).length;
      return { tracked: inMapping(this.model.B), deletes, localFiles: inMapping(this.model.L), remoteFiles: inMapping(this.model.R) };
    });
    return guardRefuses(per, op.maxDelete === '50%' ? 50 : 100, op.force);
  }

  private async sync(op: Extract<Op, { op: 'sync' }>): Promise<void> {
    const { mode, conflict, del } = op;
    const m = this.model;
    const before = await this.readReal();
    this.assertMatches(before, 'before the sync');
    const expected = this.predict(before, mode, conflict, del);
    const refused = this.refused(expected, op);
    const makesCopies = [...expected.values()].some((e) => e.keepBoth && !refused);
    // Keep-both names carry the run's second: a second copy of the same path in the same second
    // would collide (the engine refuses it as "target already exists"). Wait the second out.
    if (makesCopies) while (stampOf(new Date()) === this.lastKeepBothStamp) await new Promise((r) => setTimeout(r, 25));

    const args = ['sync', '--json', '--mode', mode, '--conflict', conflict, '--max-delete', op.maxDelete];
    if (del) args.push('--delete');
    if (op.force) args.push('--force');
    const res = await runCli(args, { cwd: this.project.root, env: s3.env });
    this.log.push(`${args.slice(1).join(' ')} → exit ${res.code}`);
    stats.syncs++;
    if (res.code === 3) stats.refused++;
    for (const e of res.events) if (e['event'] === 'item') stats.actions[String(e['action'])] = (stats.actions[String(e['action'])] ?? 0) + 1;
    const what = `sync ${args.slice(2).join(' ')}`;
    assert.ok(!res.stdout.includes(s3.secretAccessKey) && !res.stderr.includes(s3.secretAccessKey), 'secret in output');
    const after = await this.readReal();

    if (refused) {
      assert.equal(res.code, 3, `${what}: the delete guard should refuse\n${res.stdout}${res.stderr}`);
      assert.equal(res.events.filter((e) => e['event'] === 'item' || e['event'] === 'file').length, 0, `${what}: a refused run reports no items`);
      this.assertMatches(after, `${what} (refused)`);
      return;
    }
    assert.equal(res.code, 0, `${what}: exit code\n${res.stdout}${res.stderr}`);
    const runId = String(res.events.find((e) => e['event'] === 'start')?.['runId']);
    const stamp = runId.slice(0, 15);

    // Items: exactly the reported actions the model predicts.
    const items = new Map(res.events.filter((e) => e['event'] === 'item').map((e) => [String(e['path']), String(e['action'])]));
    const wantItems = new Map([...expected].filter(([, e]) => reported(e.action)).map(([p, e]) => [p, e.action as string]));
    assert.deepEqual(Object.fromEntries(sorted(items)), Object.fromEntries(sorted(wantItems)), `${what}: item events differ from the model`);
    // Files: every executed item done, nothing else touched.
    const files = new Map(res.events.filter((e) => e['event'] === 'file').map((e) => [String(e['path']), `${String(e['action'])}:${String(e['status'])}`]));
    const wantFiles = new Map([...expected].filter(([, e]) => executedWithEvent(e.action)).map(([p, e]) => [p, `${e.action}:done`]));
    assert.deepEqual(Object.fromEntries(sorted(files)), Object.fromEntries(sorted(wantFiles)), `${what}: file events differ from the model`);

    // What the run must have kept in its trash: every local file replaced or removed, and every
    // remote object overwritten without the base knowing it (conflict, or a first-run upload).
    const wantTrash = new Map<string, string>();
    for (const [p, e] of expected) {
      const l = m.L.get(p);
      const r = m.R.get(p);
      const replacesLocal = e.action === 'download' || e.action === 'conflict-download' || e.action === 'delete-local';
      if (replacesLocal && l !== undefined && !e.keepBoth) wantTrash.set(p, l);
      const firstRunUpload = e.action === 'upload' && !m.B.has(p);
      if ((e.action === 'conflict-upload' || firstRunUpload) && r !== undefined) wantTrash.set(`remote/${p}`, r);
    }
    const trashDir = path.join(this.project.root, 'manifests/default/trash', runId);
    assert.deepEqual(Object.fromEntries(sorted(readTree(trashDir))), Object.fromEntries(sorted(wantTrash)), `${what}: this run's trash`);

    // The model's effects.
    const present = new Set([...before.local.values(), ...before.remote.values()].map((f) => f.content));
    const baseBefore = new Map(m.B);
    for (const [p, e] of expected) this.effect(p, e, mode, stamp);
    if (makesCopies) this.lastKeepBothStamp = stamp;
    this.assertMatches(after, `after ${what}`);

    // Invariants that do not lean on the reference model.
    if (mode === 'two-way') {
      const l = Object.fromEntries([...after.local].map(([p, f]) => [p, md5(f.content)]).sort());
      const r = Object.fromEntries([...after.remote].map(([p, o]) => [p, o.etag]).sort());
      assert.deepEqual(l, r, `${what}: after a two-way sync both sides must be equal`);
    }
    if (mode === 'upload') {
      const snap = (x: Real) => Object.fromEntries([...x.local].map(([p, f]) => [p, `${f.content}|${f.mtimeNs}|${f.ino}`]).sort());
      assert.deepEqual(snap(after), snap(before), `${what}: upload-only changed a local file`);
    }
    if (mode === 'download') {
      const snap = (x: Real) => Object.fromEntries([...x.remote].map(([p, o]) => [p, `${o.etag}|${o.lastModified}`]).sort());
      assert.deepEqual(snap(after), snap(before), `${what}: download-only changed a remote object`);
    }
    const trashAll = new Set(Object.values(Object.fromEntries(readTree(path.join(this.project.root, 'manifests/default/trash')))));
    const nowThere = new Set([...after.local.values(), ...after.remote.values()].map((f) => f.content));
    // A remote object may go without a copy only as the synced version of a file the user
    // changed or deleted locally, or as an extra that upload-only --delete was asked to remove.
    const mayGo = (p: string, c: string) => baseBefore.get(p) === c || (mode === 'upload' && del && expected.get(p)?.action === 'delete-remote');
    for (const [p, o] of before.remote) {
      if (nowThere.has(o.content) || trashAll.has(o.content)) continue;
      assert.ok(mayGo(p, o.content), `${what}: remote ${p} (${JSON.stringify(o.content)}) is gone, not in the trash, and was not the synced version`);
    }
    for (const c of present) {
      if (nowThere.has(c) || trashAll.has(c)) continue;
      assert.ok([...before.remote].some(([p, o]) => o.content === c && mayGo(p, c)), `${what}: content ${JSON.stringify(c)} was lost`);
    }
    for (const p of this.model.tombstones) {
      assert.ok(!after.local.has(p) && !after.remote.has(p), `${what}: ${p} was deleted on both sides and came back`);
    }
    for (const p of [...before.local.keys(), ...before.remote.keys()]) {
      if (!after.local.has(p) && !after.remote.has(p)) this.model.tombstones.add(p);
    }
  }

  private effect(p: string, e: Expected, mode: Mode, stamp: string): void {
    const { L, R, B } = this.model;
    const set = (side: Side, v: string | undefined) => (v === undefined ? side.delete(p) : side.set(p, v));
    const l = L.get(p);
    const r = R.get(p);
    switch (e.action as Action) {
      case 'upload':
      case 'conflict-upload':
        set(R, l);
        set(B, l);
        return;
      case 'download':
      case 'conflict-download':
        if (e.keepBoth && l !== undefined) {
          const copy = conflictCopyName(p, stamp);
          L.set(copy, l);
          if (mode !== 'download') {
            R.set(copy, l);
            B.set(copy, l);
          }
        }
        set(L, r);
        set(B, r);
        return;
      case 'record':
        set(B, l);
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
    if (fs.statSync(abs).isFile()) out.set(rel.split(path.sep).join('/'), fs.readFileSync(abs, 'utf8'));
  }
  return out;
}

const FINAL_SYNC = fc.record({
  op: fc.constant('sync' as const),
  mode: fc.constant<Mode>('two-way'),
  conflict: fc.constantFrom(...CONFLICT_POLICIES),
  del: fc.constant(false),
  force: fc.constant(true),
  maxDelete: fc.constant('100%' as const),
});

export async function runOps(ops: Op[]): Promise<Case> {
  const c = new Case();
  stats.cases++;
  try {
    for (const op of ops) await c.apply(op);
    return c;
  } finally {
    c.project.cleanup();
  }
}

test('model: random user operations on both sides and syncs in every mode agree with the reference model', async () => {
  await check(
    'sync model',
    fc.asyncProperty(fc.tuple(fc.array(opArb, { minLength: 3, maxLength: 20, size: 'medium' }), FINAL_SYNC), async ([ops, last]) => {
      await runOps([...ops, last]);
    }),
    RUNS ?? 60,
  );
  process.stdout.write(`# model coverage: ${JSON.stringify(stats)}\n`);
});
