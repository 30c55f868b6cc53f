// Carries out plan items; never decides. Each completed item updates the manifest at once, so an
// interrupted run keeps everything it finished. Deletes run last, and not at all after a failure.
import fs from 'node:fs';
import path from 'node:path';
import type { PlanItem } from '../core/types.js';
import { oneLine } from '../core/errors.js';
import type { S3Store } from '../remote/s3-store.js';
import type { Manifest } from '../manifest/manifest.js';
import type { Trash } from '../local/trash.js';
import type { EventStream, FileStatus, Summary } from './events.js';
import { mapLimit } from './limit.js';
import { CAP_FROM, capHeapGrowth, restoreHeapGrowth } from './heap-growth.js';
import { tally } from './summary.js';
import { downloadItem, uploadItem, type TransferDeps } from './transfer.js';
import { entryFor, sameStat, statOf } from './records.js';
import { WriteAhead, recordsFor } from './write-ahead.js';

export interface ExecDeps extends TransferDeps {
  manifest: Manifest;
  trash: Trash | undefined;
  events: EventStream;
  signal: AbortSignal;
  concurrency: number;
  /** Wall clock (ns) when the local scan started: the racy-clean cut-off for no-transfer records. */
  scanStartedNs: bigint;
}

/** Outcome of one item, for `file` events and the summary. */
export interface Outcome {
  status: FileStatus;
  error?: string;
}

const TRANSFERS = new Set(['upload', 'download', 'conflict-upload', 'conflict-download']);


export async function execute(items: PlanItem[], d: ExecDeps, summary: Summary): Promise<void> {
  const report = (item: PlanItem, o: Outcome): void => {
    count(item, o, summary);
    const e = { event: 'file' as const, path: item.path, key: item.key, action: item.action, status: o.status, bytes: item.bytes };
    d.events.emit(o.error ? { ...e, error: o.error } : e);
  };

  for (const item of items) {
    if (item.action === 'nothing' || item.action === 'refresh' || item.action === 'skip') tally(item, summary);
    if (item.action === 'record' || item.action === 'refresh' || item.action === 'forget') {
      if (d.signal.aborted) break;
      const o = await bookkeeping(item, d);
      if (item.action === 'record' || o.status !== 'done') report(item, o);
    }
  }

  let transferFailed = false;
  const transfers = items.filter((i) => TRANSFERS.has(i.action));
  d.events.emit({ event: 'exec-start', internal: true, files: transfers.length, bytes: transfers.reduce((n, i) => n + i.bytes, 0) });
  const ahead = new WriteAhead(d.manifest.journal, transfers, d);
  if (transfers.length >= CAP_FROM) capHeapGrowth();
  try {
    await mapLimit(
      transfers,
      d.concurrency,
      async (item) => {
        const o = await guarded(item, d, async () => {
          await ahead.ready(item);
          return item.action.endsWith('upload') ? uploadItem(item, d) : downloadItem(item, d);
        });
        if (o.status === 'failed') transferFailed = true;
        // A failed or interrupted transfer may have left something half done (a torn object on a
        // server whose PUTs are not atomic, a multipart upload): its record stays for the next run.
        ahead.finish(item, !(o.status === 'done' || (o.status === 'skipped' && !d.signal.aborted)));
        report(item, o);
      },
      d.signal,
    );
  } finally {
    restoreHeapGrowth();
  }
  ahead.endUnstarted();

  const deletes = items.filter((i) => i.action === 'delete-remote' || i.action === 'delete-local');
  if (deletes.length === 0 || d.signal.aborted) return;
  if (transferFailed) {
    for (const item of deletes) report(item, { status: 'skipped', error: 'not deleted: another item of this run failed' });
    return;
  }
  await deleteRemote(deletes.filter((i) => i.action === 'delete-remote'), d, report);
  const locals = deletes.filter((i) => i.action === 'delete-local');
  if (locals.length === 0 || d.signal.aborted) return;
  const records = locals.flatMap((i) => recordsFor(i, d));
  let batch: string | undefined;
  try {
    batch = await d.manifest.journal?.begin(records);
  } catch (err) {
    for (const item of locals) report(item, { status: 'failed', error: `${item.path}: ${oneLine(err)}` });
    return;
  }
  const failed = new Set<string>();
  for (const item of locals) {
    if (d.signal.aborted) break;
    const o = await guarded(item, d, () => deleteLocal(item, d));
    if (o.status === 'failed') failed.add(item.path);
    report(item, o);
  }
  d.manifest.journal?.end(batch, records.filter(([p]) => failed.has(p)));
}

/** One failing item never stops the others: every error becomes that item's outcome. */
async function guarded(item: PlanItem, d: ExecDeps, run: () => Promise<Outcome>): Promise<Outcome> {
  try {
    return await run();
  } catch (err) {
    if (d.signal.aborted) return { status: 'skipped', error: 'interrupted' };
    const message = oneLine(err);
    const named = message.includes(item.path) || message.includes(item.key);
    return { status: 'failed', error: named ? message : `${item.path}: ${message}` };
  }
}

async function bookkeeping(item: PlanItem, d: ExecDeps): Promise<Outcome> {
  if (item.action === 'forget') {
    d.manifest.remove(item.path);
    return { status: 'done' };
  }
  const local = item.local!;
  const remote = item.action === 'record' ? { ...item.remote!, md5: local.md5! } : item.base!.remote;
  d.manifest.put(item.path, entryFor(item.key, local, remote, d.scanStartedNs));
  return { status: 'done' };
}

async function deleteLocal(item: PlanItem, d: ExecDeps): Promise<Outcome> {
  const abs = path.join(d.root, item.path);
  const now = statOf(abs);
  if (!now) {
    d.manifest.remove(item.path);
    return { status: 'done' };
  }
  if (!item.local || !sameStat(now, item.local)) return { status: 'skipped', error: 'local file changed since planning; left in place' };
  if (d.trash) await d.trash.keep(d.root, item.path);
  else await fs.promises.unlink(abs);
  d.manifest.remove(item.path);
  return { status: 'done' };
}

/**
 * Deletes run last, possibly long after the listing: each object is looked at once more, and one
 * that changed meanwhile is left alone (a change beats a delete, as in the table).
 */
async function stillAsListed(items: PlanItem[], d: ExecDeps, report: (i: PlanItem, o: Outcome) => void): Promise<PlanItem[]> {
  const keep: PlanItem[] = [];
  await mapLimit(items, d.concurrency, async (item) => {
    try {
      const now = await d.store.head(item.key, d.signal);
      if (!now) {
        d.manifest.remove(item.path);
        report(item, { status: 'done' });
      } else if (now.etag !== item.remote?.etag) {
        report(item, { status: 'skipped', error: 'remote object changed since it was listed; not deleted' });
      } else keep.push(item);
    } catch (err) {
      report(item, { status: 'failed', error: `${item.key}: ${oneLine(err)}` });
    }
  }, d.signal);
  return keep;
}

async function deleteRemote(all: PlanItem[], d: ExecDeps, report: (i: PlanItem, o: Outcome) => void): Promise<void> {
  const items = await stillAsListed(all, d, report);
  if (items.length === 0) return;
  const byKey = new Map(items.map((i) => [i.key, i]));
  let result: Awaited<ReturnType<S3Store['deleteMany']>>;
  const records = items.flatMap((i) => recordsFor(i, d));
  let batch: string | undefined;
  try {
    batch = await d.manifest.journal?.begin(records);
    result = await d.store.deleteMany([...byKey.keys()], d.signal);
  } catch (err) {
    for (const item of items) report(item, { status: 'failed', error: `${item.key}: ${oneLine(err)}` });
    // Interrupted or failed part way: which deletes happened is for the next run to find out.
    return;
  }
  for (const key of result.deleted) {
    const item = byKey.get(key);
    if (!item) continue;
    d.manifest.remove(item.path);
    report(item, { status: 'done' });
  }
  const failed = new Set<string>();
  for (const f of result.failed) {
    const item = byKey.get(f.key);
    if (!item) continue;
    failed.add(item.path);
    report(item, { status: 'failed', error: `${f.key}: ${f.error}` });
  }
  d.manifest.journal?.end(batch, records.filter(([p]) => failed.has(p)));
}

function count(item: PlanItem, o: Outcome, s: Summary): void {
  if (o.status === 'failed') {
    s.failed++;
    return;
  }
  if (o.status === 'skipped') {
    s.skipped++;
    return;
  }
  tally(item, s);
}
