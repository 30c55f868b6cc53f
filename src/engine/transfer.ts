// One upload or download, with the checks that keep both sides whole: the file must still be what
// was planned, a download lands atomically and verified, and an upload of a file that changed
// while it was sent is not recorded.
import fs from 'node:fs';
import path from 'node:path';
import type { PlanItem } from '../core/types.js';
import { ItemError } from '../core/errors.js';
import { remoteMd5 } from '../core/compare.js';
import type { S3Store } from '../remote/s3-store.js';
import { StoredEtagMismatch } from '../remote/upload.js';
import type { Manifest } from '../manifest/manifest.js';
import type { Trash } from '../local/trash.js';
import { writeAtomic } from '../local/atomic-write.js';
import type { EventStream } from './events.js';
import type { Outcome } from './executor.js';
import { entryFor, nowNs, sameStat, statOf } from './records.js';

export interface TransferDeps {
  root: string;
  runId: string;
  store: S3Store;
  manifest: Manifest;
  trash: Trash | undefined;
  /**
   * `<manifest dir>/<profile>/trash/<run id>`: where remote losers of a conflict are kept, even
   * with --no-trash (which is about local files): an overwritten remote edit has no other copy.
   */
  trashDir: string;
  events: EventStream;
  signal: AbortSignal;
  /** False in download-only mode: keep-both then only renames the local version aside. */
  uploadsAllowed: boolean;
}

const DOWNLOAD_ATTEMPTS = 3;
const UPLOAD_ATTEMPTS = 3;

class LocalChangedError extends ItemError {
  constructor() {
    super('local file changed during the download; left in place, it will be compared again next run');
  }
}

function progress(d: TransferDeps, p: string): (n: number) => void {
  return (n) => d.events.emit({ event: 'transfer-bytes', internal: true, path: p, bytes: n });
}

async function withProgress<T>(d: TransferDeps, p: string, bytes: number, run: () => Promise<T>): Promise<T> {
  d.events.emit({ event: 'transfer-start', internal: true, path: p, bytes });
  try {
    return await run();
  } finally {
    d.events.emit({ event: 'transfer-end', internal: true, path: p });
  }
}

export async function uploadItem(item: PlanItem, d: TransferDeps): Promise<Outcome> {
  const abs = path.join(d.root, item.path);
  const local = item.local!;
  const before = statOf(abs);
  if (!sameStat(before, local)) return { status: 'skipped', error: 'local file changed since planning; it will be picked up next run' };
  const t = nowNs();
  let expect: { etag: string } | 'absent' = item.remote ? { etag: item.remote.etag } : 'absent';
  let res: Awaited<ReturnType<S3Store['upload']>> | undefined;
  try {
    // A remote version this upload replaces without the base knowing it is kept, like a local one.
    if (item.remote && (item.action === 'conflict-upload' || item.reason === 'first-run-differs')) await keepRemoteLoser(item, d);
    for (let attempt = 1; !res; attempt++) {
      try {
        res = await withProgress(d, item.path, local.size, () =>
          d.store.upload(item.key, { filePath: abs, size: local.size, md5: local.md5!, xxh64: local.xxh64 }, { signal: d.signal, onBytes: progress(d, item.path), expect, ...noteUploadId(d, item.path, item.key) }),
        );
      } catch (err) {
        // Damaged on the way: the object now holds what the server got, which is ours to replace.
        if (!(err instanceof StoredEtagMismatch) || attempt >= UPLOAD_ATTEMPTS || d.signal.aborted) throw err;
        expect = { etag: err.stored };
      }
    }
  } catch (err) {
    if (err instanceof ItemError && /changed since it was listed/.test(err.message)) {
      return { status: 'skipped', error: 'remote object changed since it was listed; not overwritten, compared again next run' };
    }
    throw err;
  }
  // The store checked that the bytes sent are the planned ones, so the base records exactly that
  // pair: the planned local stat and hashes, and the ETag they produced. A file rewritten after
  // its bytes went out then reads next run as "local changed, remote unchanged" and goes up again;
  // recording nothing would make our own upload look like a remote edit and revert the user's.
  d.manifest.put(item.path, entryFor(item.key, local, { etag: res.etag, size: local.size, lastModified: Date.now(), md5: local.md5! }, t));
  if (!sameStat(statOf(abs), before)) {
    d.events.emit({ event: 'warning', path: item.path, key: item.key, message: 'changed while uploading; the version planned was sent, the new one goes up next run' });
  }
  return { status: 'done' };
}

export async function downloadItem(item: PlanItem, d: TransferDeps): Promise<Outcome> {
  const abs = path.join(d.root, item.path);
  const current = statOf(abs);
  if (!sameStat(current, item.local ? { size: item.local.size, mtimeNs: item.local.mtimeNs, ino: item.local.ino } : undefined)) {
    return { status: 'skipped', error: 'local file changed since planning; it will be compared again next run' };
  }
  let expected = current;
  if (item.keepBoth && current) {
    await keepBothUpload(item, d);
    expected = undefined;
  }
  // Checked again at the last moment: a file that appeared or changed while the bytes came in
  // is the user's newer work, never replaced. Where nothing was there, the writer thread checks
  // that right before its rename (one round trip less per new file).
  const beforeReplace = expected
    ? async (): Promise<void> => {
        const now = statOf(abs);
        if (!sameStat(now, expected)) throw new LocalChangedError();
        if (now && d.trash) {
          await d.trash.copy(d.root, item.path);
          // Across devices the copy is a real copy that takes time: a write during it wins too.
          if (!sameStat(statOf(abs), expected)) throw new LocalChangedError();
        }
      }
    : undefined;
  const onlyIfAbsent = expected ? undefined : () => new LocalChangedError();
  const remote = item.remote!;
  const expectMd5 = remoteMd5(remote, item.base);
  let res: Awaited<ReturnType<typeof writeAtomic>>;
  try {
    res = await withProgress(d, item.path, remote.size, () =>
      fetchAtomic(item.key, abs, remote.etag, remote.size, expectMd5, remote.lastModified, d, beforeReplace, onlyIfAbsent),
    );
  } catch (err) {
    if (err instanceof LocalChangedError) return { status: 'skipped', error: err.message };
    throw err;
  }
  const local = { size: res.size, mtimeNs: res.mtimeNs, ino: res.ino, md5: res.md5, xxh64: res.xxh64 };
  d.manifest.put(item.path, entryFor(item.key, local, { ...remote, md5: res.md5 }, nowNs()));
  return { status: 'done' };
}

/** A multipart upload's id goes into the journal before its first part is sent. */
function noteUploadId(d: TransferDeps, p: string, key: string): { onMultipartStart?: (id: string) => Promise<void> } {
  const journal = d.manifest.journal;
  return journal ? { onMultipartStart: (uploadId) => journal.noteUpload(p, { runId: d.runId, key, uploadId, at: Date.now() }) } : {};
}

/** GET into a temp file beside `dest`, verify, then rename; retried when the body breaks off. */
async function fetchAtomic(
  key: string,
  dest: string,
  etag: string,
  size: number,
  md5: string | undefined,
  mtimeMs: number | undefined,
  d: TransferDeps,
  beforeReplace: (() => Promise<unknown>) | undefined,
  onlyIfAbsent?: () => Error,
): Promise<Awaited<ReturnType<typeof writeAtomic>>> {
  let lastErr: unknown;
  for (let attempt = 1; attempt <= DOWNLOAD_ATTEMPTS; attempt++) {
    if (d.signal.aborted) break;
    try {
      const got = await d.store.get(key, { ifMatch: etag, signal: d.signal });
      const label = path.relative(d.root, dest);
      const opts: Parameters<typeof writeAtomic>[2] = { runId: d.runId, expectSize: size, signal: d.signal, onBytes: progress(d, key), label };
      const expect = md5 ?? got.md5;
      if (expect) opts.expectMd5 = expect;
      if (mtimeMs !== undefined) opts.mtimeMs = mtimeMs;
      if (beforeReplace) opts.beforeReplace = async () => void (await beforeReplace());
      if (onlyIfAbsent) opts.onlyIfAbsent = onlyIfAbsent;
      return await writeAtomic(dest, got.body, opts);
    } catch (err) {
      lastErr = err;
      if (err instanceof LocalChangedError || (err instanceof ItemError && /changed since it was listed/.test(err.message))) break;
    }
  }
  throw lastErr ?? new ItemError('interrupted');
}

/** keep-both: the local version moves aside under its conflict name and is uploaded as a new file. */
async function keepBothUpload(item: PlanItem, d: TransferDeps): Promise<void> {
  const kb = item.keepBoth!;
  const from = path.join(d.root, item.path);
  const to = path.join(d.root, kb.path);
  if (fs.existsSync(to)) throw new ItemError(`keep-both target ${kb.path} already exists`);
  await fs.promises.rename(from, to);
  if (!d.uploadsAllowed) return;
  const local = item.local!;
  const moved = statOf(to)!;
  const t = nowNs();
  const res = await d.store.upload(kb.key, { filePath: to, size: moved.size, md5: local.md5!, xxh64: local.xxh64 }, { signal: d.signal, expect: 'absent', ...noteUploadId(d, kb.path, kb.key) });
  d.manifest.put(kb.path, entryFor(kb.key, { ...moved, md5: local.md5!, xxh64: local.xxh64! }, { etag: res.etag, size: moved.size, lastModified: Date.now(), md5: local.md5! }, t));
}

/** The remote side of a conflict is about to be overwritten: keep a local copy of it in the trash. */
async function keepRemoteLoser(item: PlanItem, d: TransferDeps): Promise<void> {
  const remote = item.remote!;
  const dest = path.join(d.trashDir, 'remote', item.path);
  await fetchAtomic(item.key, dest, remote.etag, remote.size, remoteMd5(remote, item.base), remote.lastModified, d, undefined);
}
