// The executor's side of the journal: which items get a record, and committing them ahead of
// time in windows, so that many small transfers share one commit instead of paying one each.
// Only items with a side effect are journaled; a run with nothing to transfer or delete writes
// no record at all.
import path from 'node:path';
import type { PlanItem } from '../core/types.js';
import { remoteMd5 } from '../core/compare.js';
import type { Journal, JournalLocal, JournalRecord, JournalRemote } from '../manifest/journal.js';
import { tempNameFor } from '../local/scan.js';

export interface RecordContext {
  root: string;
  runId: string;
  uploadsAllowed: boolean;
}

function localOf(l: PlanItem['local']): JournalLocal | undefined {
  if (!l) return undefined;
  const out: JournalLocal = { size: l.size, mtimeNs: l.mtimeNs, ino: l.ino };
  if (l.md5 !== undefined) out.md5 = l.md5;
  if (l.xxh64 !== undefined) out.xxh64 = l.xxh64;
  return out;
}

function remoteOf(item: PlanItem): JournalRemote | undefined {
  const r = item.remote;
  if (!r) return undefined;
  const out: JournalRemote = { etag: r.etag, size: r.size, lastModified: r.lastModified };
  const md5 = remoteMd5(r, item.base);
  if (md5 !== undefined) out.md5 = md5;
  return out;
}

/** The records a transfer or delete item needs, keyed by local path (keep-both has two). */
export function recordsFor(item: PlanItem, c: RecordContext): [string, JournalRecord][] {
  const at = Date.now();
  const base = { runId: c.runId, key: item.key, at };
  const with_ = <T extends object>(r: T, extra: Record<string, unknown>): T => {
    for (const [k, v] of Object.entries(extra)) if (v !== undefined) (r as Record<string, unknown>)[k] = v;
    return r;
  };
  switch (item.action) {
    case 'upload':
    case 'conflict-upload':
      return [[item.path, with_<JournalRecord>({ ...base, action: 'upload' }, { local: localOf(item.local), remote: remoteOf(item) })]];
    case 'download':
    case 'conflict-download': {
      const temp = path.relative(c.root, tempNameFor(path.join(c.root, item.path), c.runId)).split(path.sep).join('/');
      // keep-both renames the local version aside before the temp file exists: by then the
      // destination planned is "no file".
      const dest = item.keepBoth ? undefined : localOf(item.local);
      const out: [string, JournalRecord][] = [[item.path, with_<JournalRecord>({ ...base, action: 'download', temp }, { local: dest, remote: remoteOf(item) })]];
      if (item.keepBoth && c.uploadsAllowed) {
        out.push([item.keepBoth.path, with_<JournalRecord>({ ...base, key: item.keepBoth.key, action: 'upload' }, { local: localOf(item.local) })]);
      }
      return out;
    }
    case 'delete-remote':
      return [[item.path, with_<JournalRecord>({ ...base, action: 'delete-remote' }, { remote: remoteOf(item) })]];
    case 'delete-local':
      return [[item.path, with_<JournalRecord>({ ...base, action: 'delete-local' }, { local: localOf(item.local) })]];
    default:
      return [];
  }
}

/**
 * Commits the records of `items` in windows, in the order the executor starts them, the next
 * window once the current one is half used; an item waits for its own window's commit. A commit
 * costs about one disk flush whatever its size, so windows grow (first from `first` records,
 * doubling up to `max`): the first transfer starts after a small commit, and a long run of small
 * transfers pays one flush per `max` items. What a kill leaves is then at most two windows of
 * records, each one HEAD at most for the next run.
 */
export class WriteAhead {
  private readonly index = new Map<PlanItem, number>();
  private readonly windows: Window[] = [];
  /** starts[k]: index of the first item of window k. */
  private readonly starts: number[] = [0];
  private readonly started = new Set<PlanItem>();
  private readonly windowOf = new Map<PlanItem, Window>();

  constructor(
    private readonly journal: Journal | undefined,
    private readonly items: PlanItem[],
    private readonly c: RecordContext,
    private readonly first = 32,
    private readonly max = 512,
  ) {
    items.forEach((it, i) => this.index.set(it, i));
  }

  /** Resolves once `item`'s record is durable; marks it started. Rejects if the journal failed. */
  async ready(item: PlanItem): Promise<void> {
    if (!this.journal) return;
    const i = this.index.get(item) ?? 0;
    let w = 0;
    while (this.start(w + 1) <= i) w++;
    const halfway = i >= (this.start(w) + this.start(w + 1)) / 2;
    for (let k = this.windows.length; k <= (halfway ? w + 1 : w) && this.start(k) < this.items.length; k++) this.windows.push(this.write(k));
    this.started.add(item);
    await this.windows[w]!.written;
  }

  /**
   * The item's side effect is over. `keep`: it may have left something half done (failed or
   * interrupted), so its records stay for the next run to settle.
   */
  finish(item: PlanItem, keep: boolean): void {
    if (!this.journal) return;
    const w = this.windowOf.get(item);
    if (!w) return;
    // A failed multipart upload keeps its UploadId note: the next run aborts its parts.
    if (!keep) for (const [p] of w.records.get(item) ?? []) this.journal.endUpload(p);
    w.pending.delete(item);
    if (keep) w.keep.push(item);
    if (w.pending.size === 0) this.close(w);
  }

  /** After the last transfer: records written ahead for items that never started go too. */
  endUnstarted(): void {
    for (const w of this.windows) {
      for (const item of [...w.pending]) if (!this.started.has(item)) w.pending.delete(item);
      if (w.pending.size === 0 && !w.closed) this.close(w);
    }
  }

  private close(w: Window): void {
    w.closed = true;
    const journal = this.journal!;
    const keep = w.keep.flatMap((i) => w.records.get(i) ?? []);
    // A long run holds only its open windows' records.
    for (const item of w.records.keys()) this.windowOf.delete(item);
    w.records.clear();
    // Ends once its batch is committed (a window written ahead may still be on its way).
    journal.track(w.written.then((id) => journal.end(id, keep), () => undefined));
  }

  private start(k: number): number {
    while (this.starts.length <= k) {
      const n = this.starts.length - 1;
      this.starts.push(this.starts[n]! + Math.min(this.max, this.first * 2 ** n));
    }
    return this.starts[k]!;
  }

  private write(k: number): Window {
    const records = new Map<PlanItem, [string, JournalRecord][]>();
    for (const item of this.items.slice(this.start(k), this.start(k + 1))) records.set(item, recordsFor(item, this.c));
    const written = this.journal!.begin([...records.values()].flat());
    written.catch(() => undefined);
    const w: Window = { written, records, pending: new Set(records.keys()), keep: [], closed: false };
    for (const item of records.keys()) this.windowOf.set(item, w);
    return w;
  }
}

interface Window {
  /** Resolves with the batch id once committed. */
  written: Promise<string | undefined>;
  records: Map<PlanItem, [string, JournalRecord][]>;
  pending: Set<PlanItem>;
  keep: PlanItem[];
  closed: boolean;
}
