// A run that finds records of a run that never ended them settles each one against what is really
// there, before it plans: what happened is recorded, what was half done is undone or finished,
// and what cannot be trusted (a torn object) is made to read as "ours, to be sent again".
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs';
import path from 'node:path';
import { SyncError, oneLine } from '../core/errors.js';
import type { Journal, JournalRecord } from '../manifest/journal.js';
import type { Manifest, StoredEntry } from '../manifest/manifest.js';
import type { S3Store } from '../remote/s3-store.js';
import type { Trash } from '../local/trash.js';
import { writeAtomic } from '../local/atomic-write.js';
import { getXxh64 } from '../local/xxh.js';
import type { EventStream } from './events.js';
import { mapLimit } from './limit.js';
import { entryFor, nowNs, sameStat, statOf } from './records.js';

export interface ReconcileDeps {
  root: string;
  runId: string;
  store: S3Store;
  manifest: Manifest;
  events: EventStream;
  signal: AbortSignal;
  concurrency: number;
  /** Where this run keeps what it replaces (absent with --no-trash). */
  trash: Trash | undefined;
  /** This run's trash folder: a torn object is kept under `remote/` there, whatever --no-trash says. */
  trashDir: string;
  multipartThreshold: number;
  /** The base was rebuilt for another bucket: the records describe nothing that is still here. */
  rebase: boolean;
}

export interface Reconciled {
  /** Run ids of the runs whose records were found: their temp files are leftovers, whatever their age. */
  deadRuns: Set<string>;
  /** Records settled. */
  settled: number;
  /** Whether the base changed (a saved plan made before is then stale). */
  changedBase: boolean;
}

/**
 * A local half no file can match: the next plan reads the local file as changed (so it goes up
 * again) or as deleted, never as unchanged.
 */
const NO_LOCAL: StoredEntry['local'] = { size: -1, mtimeNs: '0', ino: 0, md5: '', xxh64: '' };

/** How long before a record a multipart upload of its key may have been created (clock skew). */
const INITIATED_SLACK_MS = 10 * 60_000;

export async function reconcile(d: ReconcileDeps): Promise<Reconciled> {
  const journal = d.manifest.journal;
  const out: Reconciled = { deadRuns: new Set(), settled: 0, changedBase: false };
  if (!journal) return out;
  const records = journal.unfinished();
  if (records.length === 0) return out;
  for (const [, r] of records) out.deadRuns.add(r.runId);
  const warn = (p: string, key: string, message: string): void => d.events.emit({ event: 'warning', path: p, key, message });
  const failures: string[] = [];
  await mapLimit(records, d.concurrency, async ([p, r]) => {
    try {
      const changed = d.rebase ? await forget(p, r, d) : await settle(p, r, d, warn);
      if (changed) out.changedBase = true;
      out.settled++;
    } catch (err) {
      if (d.signal.aborted) return;
      failures.push(`${p}: ${oneLine(err)}`);
    }
  });
  d.signal.throwIfAborted();
  if (failures.length > 0) {
    throw new SyncError(`cannot settle what an interrupted run left unfinished (${failures.length} item(s)), nothing synced: ${failures[0]}`);
  }
  // Settling again is harmless (each step checks what is there), so the records go only once
  // every one is settled and what settling recorded is committed.
  await d.manifest.flush();
  await journal.clear();
  return out;
}

/** Another bucket now: only our own temp file matters. */
async function forget(_p: string, r: JournalRecord, d: ReconcileDeps): Promise<boolean> {
  if (r.temp) await fs.promises.rm(path.join(d.root, r.temp), { force: true });
  return false;
}

type Warn = (p: string, key: string, message: string) => void;

async function settle(p: string, r: JournalRecord, d: ReconcileDeps, warn: Warn): Promise<boolean> {
  switch (r.action) {
    case 'upload':
      return settleUpload(p, r, d, warn);
    case 'download':
      return settleDownload(p, r, d, warn);
    case 'delete-remote': {
      if (await d.store.head(r.key, d.signal)) return false;
      return forgetIfTracked(p, r, d);
    }
    case 'delete-local':
      if (statOf(path.join(d.root, p))) return false;
      return forgetIfTracked(p, r, d);
  }
}

/** A delete that happened: the base drops the path, as the run would have. */
function forgetIfTracked(p: string, r: JournalRecord, d: ReconcileDeps): boolean {
  if (d.manifest.get(p)?.key !== r.key) return false;
  d.manifest.remove(p);
  return true;
}

async function settleUpload(p: string, r: JournalRecord, d: ReconcileDeps, warn: Warn): Promise<boolean> {
  const planned = r.local;
  await abortMultipart(r, d);
  if (!planned?.md5 || !planned.xxh64) return false;
  const now = await d.store.head(r.key, d.signal);
  if (now && now.size === planned.size && (now.etag === planned.md5 || now.md5 === planned.md5)) {
    // It went up; only the record of it was lost. The base pairs the planned local version with
    // the object, exactly as the run would have written it.
    const local = { size: planned.size, mtimeNs: planned.mtimeNs, ino: planned.ino, md5: planned.md5, xxh64: planned.xxh64 };
    const remote = { etag: now.etag, size: now.size, lastModified: now.lastModified, md5: planned.md5 };
    d.manifest.put(p, entryFor(r.key, local, remote, BigInt(r.at) * 1_000_000n));
    warn(p, r.key, 'uploaded by the interrupted run; recorded');
    return true;
  }
  const untouched = r.remote ? now !== undefined && now.etag === r.remote.etag && now.size === r.remote.size : now === undefined;
  if (untouched) return false;
  if (now && now.size < planned.size) {
    // Shorter than what was sent and neither the old version nor ours: a PUT cut off on a server
    // that writes in place (s3rver leaves 0-byte objects). Taken as a remote edit it would be
    // downloaded over the file it was a copy of. The base is set to it with a local half no file
    // matches, so the plan reads "local changed, remote unchanged" and sends the file again. In
    // case it was someone's edit after all, a copy is kept in this run's trash.
    if (now.size > 0) await keepCopy(p, r.key, now.etag, now.size, d);
    const remote = { etag: now.etag, size: now.size, lastModified: now.lastModified, md5: '' };
    d.manifest.put(p, { key: r.key, local: NO_LOCAL, remote, recordedAtNs: '0' });
    warn(p, r.key, `the interrupted upload left a torn object (${now.size} of ${planned.size} bytes); it will be uploaded again`);
    return true;
  }
  // Someone else wrote it meanwhile (or deleted it): the plan compares it like any remote change.
  return false;
}

/** The parts of an upload that never completed cost storage until they are aborted. */
async function abortMultipart(r: JournalRecord, d: ReconcileDeps): Promise<void> {
  if (r.uploadId) {
    await d.store.abortMultipart(r.key, r.uploadId, d.signal);
    return;
  }
  if (!r.local || r.local.size < d.multipartThreshold) return;
  // Killed between CreateMultipartUpload and the record of its id: find it by key and time. Not
  // every server lists uploads (the local test servers do not); then there is nothing to find.
  let uploads: { uploadId: string; initiated: number }[];
  try {
    uploads = await d.store.multipartUploads(r.key, d.signal);
  } catch {
    return;
  }
  for (const u of uploads) if (u.initiated >= r.at - INITIATED_SLACK_MS) await d.store.abortMultipart(r.key, u.uploadId, d.signal);
}

async function keepCopy(p: string, key: string, etag: string, size: number, d: ReconcileDeps): Promise<void> {
  const got = await d.store.get(key, { ifMatch: etag, signal: d.signal });
  await writeAtomic(path.join(d.trashDir, 'remote', p), got.body, { runId: d.runId, expectSize: size, signal: d.signal, label: p });
}

async function settleDownload(p: string, r: JournalRecord, d: ReconcileDeps, warn: Warn): Promise<boolean> {
  if (!r.temp) return false;
  const temp = path.join(d.root, r.temp);
  const st = statOf(temp);
  if (!st) return false;
  const dest = path.join(d.root, p);
  const remote = r.remote;
  const planned = r.local ? { size: r.local.size, mtimeNs: r.local.mtimeNs, ino: r.local.ino } : undefined;
  if (remote?.md5 && st.size === remote.size && sameStat(statOf(dest), planned)) {
    const sums = await hashFile(temp);
    // Complete and verified, and the destination is still what the download was to replace.
    if (sums.md5 === remote.md5 && sameStat(statOf(dest), planned)) {
      if (planned && d.trash) await d.trash.copy(d.root, p);
      const when = (remote.lastModified + 0.0005) / 1000;
      await fs.promises.utimes(temp, when, when);
      const done = statOf(temp)!;
      await fs.promises.rename(temp, dest);
      d.manifest.put(p, entryFor(r.key, { ...done, ...sums }, { etag: remote.etag, size: remote.size, lastModified: remote.lastModified, md5: remote.md5 }, nowNs()));
      warn(p, r.key, 'download finished from the interrupted run\'s verified temp file');
      return true;
    }
  }
  await fs.promises.rm(temp, { force: true });
  return false;
}

async function hashFile(file: string): Promise<{ md5: string; xxh64: string }> {
  const md5 = createHash('md5');
  const xxh = (await getXxh64()).create();
  for await (const chunk of createReadStream(file)) {
    md5.update(chunk as Buffer);
    xxh.update(chunk as Buffer);
  }
  return { md5: md5.digest('hex'), xxh64: xxh.digestHex() };
}

/** For read-only runs: how many records an interrupted run left (settled by the next sync). */
export function unfinishedCount(journal: Journal | undefined): number {
  return journal?.count() ?? 0;
}
