// sync = gather → plan → guard → execute → record. `plan` stops after the guard and saves the
// plan; `apply` loads a saved plan, drops items that drifted, and executes the rest.
import crypto from 'node:crypto';
import { setMaxListeners } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { Plan, PlanItem } from '../core/types.js';
import { InterruptedError, SafetyError } from '../core/errors.js';
import { buildPlan } from '../core/plan.js';
import { checkGuards } from '../core/guards.js';
import { Hasher } from '../local/hasher.js';
import { Trash } from '../local/trash.js';
import { S3Store } from '../remote/s3-store.js';
import { Manifest, profilePaths } from '../manifest/manifest.js';
import { RunLock } from '../manifest/lock.js';
import type { Credentials } from '../credentials/source.js';
import { emptySummary, type EventStream, type Summary } from './events.js';
import { gather, type Gathered } from './gather.js';
import { execute } from './executor.js';
import { isReported, summarizeDryRun } from './summary.js';
import { checkPlanFresh, loadPlan, savePlan, type PlanFile } from './plan-file.js';
import { dropDrifted } from './drift.js';
import { nowNs } from './records.js';
import { reconcile, unfinishedCount } from './reconcile.js';
import type { Settings } from './settings.js';

export interface RunRequest {
  command: 'sync' | 'plan' | 'apply';
  settings: Settings;
  credentials: Credentials;
  events: EventStream;
  signal: AbortSignal;
  /** apply: the plan file (default: the last one saved). */
  planFile?: string;
  /** apply: a plan held in memory (the REPL's), checked for staleness like a file. */
  planData?: PlanFile;
  /** plan: false keeps the plan in memory only (`planData` of the result). Default true. */
  savePlan?: boolean;
  /**
   * plan: settle what an interrupted run left in the journal first (taking the lock), so the plan
   * is made on the settled base and an apply of it right after is not stale. The REPL's scans do
   * this: its own stopped applies leave such records. Ignored with --dry-run.
   */
  settle?: boolean;
  now?: Date;
}

export interface RunResult {
  summary: Summary;
  exitCode: number;
  runId: string;
  plan: Plan;
  planFile?: string;
  /** plan: the plan as `apply` takes it (`planData`), whether or not it was saved. */
  planData?: PlanFile;
  /** What the gather step saw (L, R, B per path): for `explain` and `status`-like views. */
  gathered?: Gathered;
}

export function newRunId(now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${stamp}-${crypto.randomBytes(3).toString('hex')}`;
}

export async function run(req: RunRequest): Promise<RunResult> {
  const { settings: s, credentials: c, events } = req;
  // Every in-flight request listens on the run's signal; Node's leak warning at 11 listeners is
  // a false alarm here and must not reach the terminal.
  setMaxListeners(0, req.signal);
  const started = Date.now();
  const now = req.now ?? new Date();
  const runId = newRunId(now);
  const paths = profilePaths(s.manifestDir, s.profile);
  const changes = req.command !== 'plan' && !s.dryRun;
  let settleFirst = changes || (req.command === 'plan' && req.settle === true && !s.dryRun);
  const identity = { endpoint: c.endpoint, bucket: c.bucket };
  // A damaged or edited plan file is refused before any listing, hashing or lock (exit 2).
  const applyFile = req.command === 'apply' && !req.planData ? req.planFile ?? path.join(paths.plans, 'last.json') : undefined;
  const loaded = applyFile !== undefined ? loadPlan(applyFile) : undefined;
  const store = new S3Store({
    endpoint: c.endpoint,
    bucket: c.bucket,
    accessKeyId: c.accessKeyId,
    secretAccessKey: c.secretAccessKey,
    region: c.region,
    forcePathStyle: c.forcePathStyle,
    concurrency: s.concurrency,
    multipartThreshold: s.multipartThreshold,
    partSize: s.partSize,
  });
  const hasher = new Hasher();
  let manifest: Manifest | undefined;
  let lock: RunLock | undefined;
  try {
    await store.checkBucket();
    try {
      if (settleFirst) lock = RunLock.acquire(paths.dir);
    } catch (err) {
      // A plan only settles when it can: while another run holds the lock it plans read-only.
      if (changes || !(err instanceof SafetyError)) throw err;
      settleFirst = false;
    }
    manifest = Manifest.open(paths.manifest, { readOnly: !settleFirst });
    const rebase = manifest.checkRemote(identity, s.force) === 'rebased';
    events.emit({ event: 'start', runId, mode: s.mode, dryRun: !changes, profile: s.profile, bucket: c.bucket });
    // What a killed run left half done is settled before anything is planned on top of it.
    let deadRuns = new Set<string>();
    if (settleFirst) {
      const r = await reconcile({
        root: s.root, runId, store, manifest, events, signal: req.signal, concurrency: s.concurrency,
        trash: s.trash ? new Trash(path.join(paths.trash, runId)) : undefined, trashDir: path.join(paths.trash, runId),
        multipartThreshold: s.multipartThreshold, rebase,
      });
      deadRuns = r.deadRuns;
      if (r.changedBase) await manifest.bumpGeneration();
    } else if (unfinishedCount(manifest.journal) > 0) {
      events.emit({ event: 'warning', message: `an interrupted run left ${unfinishedCount(manifest.journal)} item(s) unfinished; the next sync settles them first, and may decide differently` });
    }

    const scanStartedNs = nowNs();
    // Only the REPL's in-memory plan lists every path (its `explain` and in-sync count).
    const dropUnchanged = req.command !== 'plan' || req.savePlan !== false;
    const g = await gather({ settings: s, store, manifest, hasher, events, signal: req.signal, useBase: !rebase, dropUnchanged });
    throwIfAborted(req.signal);
    const summary = emptySummary(s.mode, !changes);
    summary.hashed = g.hashed;

    const unchangedPaths = g.unchanged.reduce((n, c) => n + c, 0);
    let plan: Plan;
    if (req.command === 'apply') {
      const file = applyFile ?? '(in memory)';
      const pf = req.planData ?? loaded!;
      checkPlanFresh(pf, file, { profile: s.profile, ...identity, generation: manifest.generation(), mappings: s.mappings });
      plan = dropDrifted(pf.plan, g, events, summary);
    } else {
      plan = buildPlan(g.states, { mode: s.mode, conflict: s.conflict, delete: s.delete, now });
    }
    // The paths gather left out as unchanged are `nothing` items: counted, never carried. A saved
    // plan's own `nothing` items for them found no state and were dropped above, so none counts twice.
    summary.unchanged += unchangedPaths;
    // A saved plan carries its own mode; the command line's does not apply to it.
    summary.mode = plan.mode;
    checkGuards(plan, s.mappings, g.tracked, { localCount: g.localCount, remoteCount: g.remoteCount }, { maxDelete: s.maxDelete, force: s.force });
    events.emit({ event: 'scan', phase: 'plan', files: plan.items.length + unchangedPaths, durationMs: Date.now() - started });
    announce(plan.items, g, events, summary);

    let planFile: string | undefined;
    let planData: PlanFile | undefined;
    if (req.command === 'plan') {
      planData = {
        kind: 'storage-sync-plan', format: 1, runId, createdAt: now.toISOString(), profile: s.profile, ...identity,
        // Paths that need nothing stay out of the file: apply has nothing to re-check for them.
        mappings: s.mappings, delete: s.delete, generation: manifest.generation(),
        plan: { ...plan, items: plan.items.filter((i) => i.action !== 'nothing') },
      };
      if (!s.dryRun && req.savePlan !== false) {
        planFile = savePlan(paths.plans, planData);
        events.emit({ event: 'plan-saved', file: planFile, items: plan.items.filter((i) => isReported(i.action)).length });
      }
    }
    if (!changes) {
      summarizeDryRun(plan, summary);
      return finish(summary, started, events, { runId, plan, gathered: g, ...(planFile ? { planFile } : {}), ...(planData ? { planData } : {}) });
    }

    removeLeftovers(s.root, g.temps, deadRuns);
    await manifest.bindRemote(identity, rebase);
    await manifest.bumpGeneration();
    const trashDir = path.join(paths.trash, runId);
    await execute(plan.items, {
      root: s.root, runId, store, manifest, events, signal: req.signal, concurrency: s.concurrency, scanStartedNs,
      trash: s.trash ? new Trash(trashDir) : undefined, trashDir, uploadsAllowed: plan.mode !== 'download',
    }, summary);
    await manifest.flush();
    const result = finish(summary, started, events, { runId, plan, gathered: g });
    await manifest.setLastRun({
      runId, startedAt: now.toISOString(), finishedAt: new Date().toISOString(), mode: plan.mode,
      exitCode: req.signal.aborted ? 130 : result.exitCode, summary: { ...summary },
    });
    throwIfAborted(req.signal);
    return result;
  } catch (err) {
    // Whatever a stopped listing or hash pool threw, a stop is a stop: 130 or 143.
    if (req.signal.aborted && !(err instanceof InterruptedError)) throwIfAborted(req.signal);
    throw err;
  } finally {
    try {
      await hasher.close();
      store.close();
      await manifest?.close();
    } finally {
      lock?.release();
    }
  }
}

/** Exactly our temp names (`.<name>.ssync-<run id>.tmp`), with the run id newRunId makes. */
const LEFTOVER = /\.ssync-(\d{8}-\d{6}-[0-9a-f]{6})\.tmp$/;
/**
 * A download writes its temp file continuously and gives up after the socket timeout (2 min): one
 * untouched for longer belongs to a run that is gone. The age matters because the lock is per
 * profile, and another profile's run could be writing into the same tree.
 */
const LEFTOVER_AGE_MS = 5 * 60_000;

function removeLeftovers(root: string, temps: string[], deadRuns: Set<string>): void {
  for (const t of temps) {
    const m = LEFTOVER.exec(t);
    if (!m) continue;
    const abs = path.join(root, t);
    // A run of this profile whose journal records we found is gone: its temp files go now.
    if (deadRuns.has(m[1]!)) {
      fs.rmSync(abs, { force: true });
      continue;
    }
    const st = fs.statSync(abs, { throwIfNoEntry: false });
    if (st && Date.now() - st.mtimeMs > LEFTOVER_AGE_MS) fs.rmSync(abs, { force: true });
  }
}

function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new InterruptedError(signal.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT');
}

/** Items and problems are told before anything runs, so a reader sees the plan first. */
function announce(items: PlanItem[], g: Gathered, events: EventStream, summary: Summary): void {
  for (const it of items) {
    if (!isReported(it.action)) continue;
    const e = { event: 'item' as const, path: it.path, key: it.key, action: it.action, reason: it.reason, bytes: it.bytes };
    events.emit(it.rule ? { ...e, rule: it.rule } : e);
  }
  for (const p of g.problems) {
    summary.failed++;
    const e = { event: 'file' as const, key: p.key, action: 'invalid' as const, status: 'failed' as const, bytes: 0, error: p.error };
    events.emit(p.path ? { ...e, path: p.path } : e);
  }
}

function finish(summary: Summary, started: number, events: EventStream, rest: Omit<RunResult, 'summary' | 'exitCode'>): RunResult {
  summary.durationMs = Date.now() - started;
  events.emit({ event: 'summary', ...summary });
  return { summary, exitCode: summary.failed > 0 ? 1 : 0, ...rest };
}
