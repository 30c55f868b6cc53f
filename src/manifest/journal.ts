// The write-ahead journal: what a changing run is about to do to one path, committed before the
// side effect starts and removed when it has ended. A run killed in between leaves its records
// behind, and the next run reconciles them (engine/reconcile.ts) before it plans.
//
// It lives in the manifest's LMDB environment (db `journal`), so a record and the manifest entry
// that ends it go through the same ordered write queue: a record's removal never becomes durable
// before the entry queued ahead of it. Commits are what the write-ahead waits for; lmdb-js keeps a
// committed transaction across a killed process (it reverts to the last flushed one only after an
// OS crash), and batches every write queued in the same tick into one transaction.
import type { Database } from 'lmdb';
import { SyncError, oneLine } from '../core/errors.js';

export type JournalAction = 'upload' | 'download' | 'delete-remote' | 'delete-local';

export interface JournalLocal {
  size: number;
  mtimeNs: string;
  ino: number;
  /** Present for uploads (the content that goes up); a download's destination needs only its stat. */
  md5?: string;
  xxh64?: string;
}

export interface JournalRemote {
  etag: string;
  size: number;
  lastModified: number;
  /** The content MD5 when known beyond the ETag. */
  md5?: string;
}

export interface JournalRecord {
  runId: string;
  action: JournalAction;
  key: string;
  /** ms since the epoch when the record was written (before the side effect). */
  at: number;
  /**
   * upload: the planned local stat and hashes (the bytes that go up);
   * download: the local file the download may replace (absent: none);
   * delete-local: the file planned for the trash.
   */
  local?: JournalLocal;
  /**
   * upload: the remote state the write was conditional on (absent: none);
   * download: the object being fetched; delete-remote: the object being deleted.
   */
  remote?: JournalRemote;
  /** download: the temp file (path from the root) the bytes are written to before the rename. */
  temp?: string;
  /** upload: the multipart UploadId, once CreateMultipartUpload has answered. */
  uploadId?: string;
}

export class Journal {
  private lastWrite: Promise<unknown> = Promise.resolve();
  private failure: unknown;

  constructor(private readonly db: Database<JournalRecord, string>, private readonly writable: boolean) {}

  /**
   * Commits all `records` in one transaction and resolves once that is done: only then may their
   * side effects start. A failing journal write fails the items, never lets them run unrecorded.
   */
  async begin(records: [string, JournalRecord][]): Promise<void> {
    if (records.length === 0) return;
    this.check();
    let last: Promise<boolean> | undefined;
    for (const [p, r] of records) last = this.db.put(p, r);
    await last;
  }

  /** Adds to a record (e.g. the UploadId), durably: the caller waits before going on. */
  async note(p: string, patch: Partial<JournalRecord>): Promise<void> {
    const r = this.db.get(p);
    if (!r) return;
    await this.db.put(p, { ...r, ...patch });
  }

  /**
   * The side effect of `p` has ended and whatever it changed is recorded (queued before this):
   * the record goes, without waiting. Lost to a crash, it costs the next run one check.
   */
  end(p: string): void {
    if (!this.writable) return;
    const w = this.db.remove(p);
    w.catch((err: unknown) => {
      this.failure ??= err;
    });
    this.lastWrite = w;
  }

  /** Records of runs that did not end them: a killed run's, or items that failed. */
  unfinished(): [string, JournalRecord][] {
    const out: [string, JournalRecord][] = [];
    for (const { key, value } of this.db.getRange({})) out.push([key, value]);
    return out;
  }

  count(): number {
    return this.db.getKeysCount();
  }

  async flush(): Promise<void> {
    await this.lastWrite.catch(() => undefined);
    this.check();
  }

  private check(): void {
    if (!this.writable) throw new Error('journal opened read-only');
    if (this.failure) throw new SyncError(`journal write failed: ${oneLine(this.failure)}`, { cause: this.failure });
  }
}
