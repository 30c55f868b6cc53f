// The write-ahead journal: what a changing run is about to do to each path, committed before the
// side effect starts and removed when it has ended. A run killed in between leaves its records
// behind, and the next run reconciles them (engine/reconcile.ts) before it plans. Records are
// written and removed in batches (a window of transfers, a set of deletes): per-record writes
// would double the manifest's write load on a run of many small files.
//
// It lives in the manifest's LMDB environment (db `journal`), so a record and the manifest entry
// that ends it go through the same ordered write queue: a record's removal never becomes durable
// before the entry queued ahead of it. Commits are what the write-ahead waits for; lmdb-js keeps a
// committed transaction across a killed process (it reverts to the last flushed one only after an
// OS crash), and batches every write queued in the same tick into one transaction.
import { randomBytes } from 'node:crypto';
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

/** Records committed together, ended together: one write to begin a window, one to end it. */
interface Batch {
  entries: [string, JournalRecord][];
}

/** The UploadId of one multipart upload, learnt after its batch was written. */
interface UploadNote {
  runId: string;
  key: string;
  uploadId: string;
  at: number;
}

export type JournalStored = Batch | UploadNote;

const BATCH = 'b/';
const UPLOAD = 'u/';

export class Journal {
  /** Writes not waited for yet: flush() waits for them all. */
  private readonly pending = new Set<Promise<unknown>>();
  private failure: unknown;
  private seq = 0;
  /** Batch ids stay unique even if the same run id opened the journal twice. */
  private readonly instance = randomBytes(4).toString('hex');
  private readonly noted = new Set<string>();

  constructor(private readonly db: Database<JournalStored, string>, private readonly writable: boolean) {}

  /**
   * Commits `records` as one batch and resolves with its id once that is done: only then may
   * their side effects start. A failing journal write fails the items, never lets them run
   * unrecorded.
   */
  async begin(records: [string, JournalRecord][]): Promise<string | undefined> {
    if (records.length === 0) return undefined;
    this.check();
    const id = `${BATCH}${records[0]![1].runId}/${this.instance}/${String(this.seq++).padStart(8, '0')}`;
    await this.db.put(id, { entries: records });
    return id;
  }

  /**
   * The batch's side effects are over and recorded (queued before this): it goes, without
   * waiting, or shrinks to the records in `keep` (items that failed half way). Lost to a crash,
   * it costs the next run one check per record.
   */
  end(id: string | undefined, keep: [string, JournalRecord][] = []): void {
    if (!id || !this.writable) return;
    this.track(keep.length === 0 ? this.db.remove(id) : this.db.put(id, { entries: keep }));
  }

  /** A multipart upload's id, durably: the caller waits before sending the first part. */
  async noteUpload(p: string, note: UploadNote): Promise<void> {
    this.check();
    this.noted.add(p);
    await this.db.put(UPLOAD + p, note);
  }

  /** Drops the upload note of `p`, if this run wrote one. */
  endUpload(p: string): void {
    if (!this.noted.delete(p)) return;
    this.track(this.db.remove(UPLOAD + p));
  }

  /** Records no run ended: a killed run's, or items that failed. Upload notes join their record. */
  unfinished(): [string, JournalRecord][] {
    const out = new Map<string, JournalRecord>();
    const notes: [string, UploadNote][] = [];
    for (const { key, value } of this.db.getRange({})) {
      if (key.startsWith(BATCH)) for (const [p, r] of (value as Batch).entries) out.set(p, r);
      else if (key.startsWith(UPLOAD)) notes.push([key.slice(UPLOAD.length), value as UploadNote]);
    }
    for (const [p, n] of notes) {
      const r = out.get(p);
      if (r && r.key === n.key) out.set(p, { ...r, uploadId: n.uploadId });
      else out.set(p, { runId: n.runId, action: 'upload', key: n.key, at: n.at, uploadId: n.uploadId });
    }
    return [...out];
  }

  count(): number {
    return this.unfinished().length;
  }

  /** Everything settled: the journal starts empty. */
  async clear(): Promise<void> {
    this.check();
    await this.db.clearAsync();
  }

  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
    this.check();
  }

  /** Also waited for by flush(): e.g. an end that waits for its batch's commit first. */
  track(w: Promise<unknown>): void {
    const p = w.catch((err: unknown) => {
      this.failure ??= err;
    });
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  private check(): void {
    if (!this.writable) throw new Error('journal opened read-only');
    if (this.failure) throw new SyncError(`journal write failed: ${oneLine(this.failure)}`, { cause: this.failure });
  }
}
