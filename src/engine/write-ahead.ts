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
 * Commits the records of `items` in windows of `size`, in the order the executor starts them, the
 * next window while the current one is half used. An item waits for its own window's commit.
 */
export class WriteAhead {
  private readonly index = new Map<PlanItem, number>();
  private readonly windows: Promise<void>[] = [];
  private readonly keys = new Map<PlanItem, string[]>();
  private readonly started = new Set<PlanItem>();

  constructor(
    private readonly journal: Journal | undefined,
    private readonly items: PlanItem[],
    private readonly c: RecordContext,
    private readonly size: number,
  ) {
    items.forEach((it, i) => this.index.set(it, i));
  }

  /** Resolves once `item`'s record is durable; marks it started. Rejects if the journal failed. */
  async ready(item: PlanItem): Promise<void> {
    if (!this.journal) return;
    const i = this.index.get(item) ?? 0;
    const w = Math.floor(i / this.size);
    const upto = i % this.size >= this.size / 2 ? w + 1 : w;
    for (let k = this.windows.length; k <= upto && k * this.size < this.items.length; k++) this.windows.push(this.write(k));
    this.started.add(item);
    await this.windows[w];
  }

  /** The item's side effect is over and recorded: its records go. */
  end(item: PlanItem): void {
    for (const p of this.keys.get(item) ?? []) this.journal?.end(p);
    this.keys.delete(item);
  }

  /** Records written ahead for items that never started (a stop, a failure) go too. */
  endUnstarted(): void {
    for (const item of [...this.keys.keys()]) if (!this.started.has(item)) this.end(item);
  }

  private write(k: number): Promise<void> {
    const records: [string, JournalRecord][] = [];
    for (const item of this.items.slice(k * this.size, (k + 1) * this.size)) {
      const rs = recordsFor(item, this.c);
      this.keys.set(item, rs.map(([p]) => p));
      records.push(...rs);
    }
    const p = this.journal!.begin(records);
    p.catch(() => undefined);
    return p;
  }
}
