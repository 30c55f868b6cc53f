// Downloads land atomically: written to a temp file in the destination folder, hashed on the
// way, fsynced and verified, then renamed over the destination. A reader sees the old file or
// the new one, never half of one; on any failure the destination is untouched and no temp file
// is left behind.
//
// Speed (tree A of the benchmark is 20,000 files of ~8 KiB): a dozen `fs.promises` calls per file,
// each a round trip through libuv's four-thread pool, cost more than the download itself, and
// synchronous calls on the main thread stalled every download in flight (see write-worker.ts).
// So a body is buffered up to FLUSH_BYTES; one that fits (most files) is verified in memory and
// handed to a writer thread, which writes, fsyncs and renames it in batches: one message per file
// where the name is free (onlyIfAbsent), two where beforeReplace must run between. A larger body
// goes out from here in writev calls of FLUSH_BYTES, one in flight.

import { lstat, mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ItemError, SyncError, oneLine } from '../core/errors.js';
import { tempNameFor } from './scan.js';
import { getXxh64 } from './xxh.js';
import type { WriteReply, WriteRequest } from './write-worker.js';

export interface WriteAtomicOptions {
  runId: string;
  expectSize: number;
  /** Verified before the rename when the remote ETag gives the content MD5. */
  expectMd5?: string;
  mtimeMs?: number;
  signal?: AbortSignal;
  onBytes?: (n: number) => void;
  /** Runs after verification, before the rename: the engine moves the old file to trash here. */
  beforeReplace?: (dest: string) => Promise<void>;
  /**
   * The destination must still be absent at the rename, else this error is thrown and nothing
   * replaced. Checked by the writer thread right before it renames, which saves a round trip.
   */
  onlyIfAbsent?: () => Error;
  /** How the file is named in error messages (e.g. its path in the mapping); default: dest. */
  label?: string;
}

export interface WrittenFile {
  md5: string;
  xxh64: string;
  size: number;
  mtimeNs: string;
  ino: number;
}

/**
 * Bodies up to this size go to the writer thread whole, after they are verified; larger ones are
 * written in writes of this size. Big enough that a large file costs few pool round trips, small
 * enough that `concurrency` buffered bodies stay a few MB.
 */
export const FLUSH_BYTES = 1024 * 1024;

export async function writeAtomic(
  dest: string,
  body: AsyncIterable<Buffer> | NodeJS.ReadableStream,
  opts: WriteAtomicOptions,
): Promise<WrittenFile> {
  const label = opts.label ?? dest;
  const temp = tempNameFor(dest, opts.runId);
  const dir = dirname(dest);
  const iterator = (body as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
  const reader = abortableReader(body, iterator, opts.signal);
  let fh: FileHandle | undefined;
  let created = false;
  // At most one write in flight; the file is not closed under it.
  let writing: Promise<void> | undefined;
  try {
    const md5 = createHash('md5');
    const xxh = (await getXxh64()).create();
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let size = 0;
    for (;;) {
      const r = await reader.next();
      if (r.done) break;
      const chunk = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
      // Stop a body longer than announced now, rather than after it has filled the disk.
      if (size + chunk.length > opts.expectSize) {
        throw sizeMismatch(label, opts.expectSize, `more than ${opts.expectSize}`);
      }
      md5.update(chunk);
      xxh.update(chunk);
      size += chunk.length;
      opts.onBytes?.(chunk.length);
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= FLUSH_BYTES) {
        if (!fh) {
          await mkdir(dir, { recursive: true });
          fh = await open(temp, 'wx');
          created = true;
        }
        if (writing) await writing;
        writing = writeAllAsync(fh, pending, pendingBytes);
        // Awaited before the next write or in cleanup; never an unhandled rejection meanwhile.
        writing.catch(() => undefined);
        pending = [];
        pendingBytes = 0;
      }
    }
    reader.done();
    if (size !== opts.expectSize) throw sizeMismatch(label, opts.expectSize, String(size));
    const digest = md5.digest('hex');
    // A body that fits in one buffer is verified before it touches the disk.
    if (!fh) verifyMd5(label, opts.expectMd5, digest);
    const mtimeSec =
      // On the temp file, so that the destination appears with its final mtime at the rename.
      // utimes takes seconds as a double and truncates: x.678 s would land as .677999 s. Half a
      // microsecond more makes the file's mtime the exact millisecond asked for.
      opts.mtimeMs === undefined ? undefined : (opts.mtimeMs + 0.0005) / 1000;
    let st: { size: number; mtimeNs: string; ino: number };
    const large = fh !== undefined;
    if (!fh) {
      // One exact-size copy, handed over to the writer thread rather than copied again.
      const data = new Uint8Array(size);
      let at = 0;
      for (const c of pending) {
        data.set(c, at);
        at += c.length;
      }
      pending = [];
      const req: DistributiveOmit<WriteRequest, 'id'> = { op: 'write', temp, dir, data, modeOf: dest };
      if (mtimeSec !== undefined) req.mtimeSec = mtimeSec;
      // With nothing to run between the fsync and the rename, the writer renames as well.
      const renameThere = opts.onlyIfAbsent && !opts.beforeReplace && !opts.signal?.aborted;
      if (renameThere) req.renameIfAbsent = dest;
      // On failure the writer has removed what it created.
      const r = await localWriter.request(req, [data.buffer]);
      st = reply(r);
      created = !renameThere;
      if (r.occupied) throw opts.onlyIfAbsent!();
      if (renameThere) {
        return { md5: digest, xxh64: xxh.digestHex(), size, mtimeNs: st.mtimeNs, ino: st.ino };
      }
    } else {
      if (writing) await writing;
      writing = undefined;
      if (pendingBytes > 0) await writeAllAsync(fh, pending, pendingBytes);
      pending = [];
      verifyMd5(label, opts.expectMd5, digest);
      if (mtimeSec !== undefined) await fh.utimes(mtimeSec, mtimeSec);
      // A replaced file keeps its permissions (a private 0600 file must not come back 0644).
      const old = await stat(dest).catch(() => undefined);
      if (old?.isFile()) await fh.chmod(old.mode & 0o7777);
      await fh.sync();
      const s = await fh.stat({ bigint: true });
      await fh.close();
      fh = undefined;
      st = { size: Number(s.size), mtimeNs: s.mtimeNs.toString(), ino: Number(s.ino) };
    }
    // The stat of our own bytes, taken before the rename: inode and mtime survive it, and a write
    // by someone else after the rename then always shows as a stat change.
    if (st.size !== size) throw sizeMismatch(label, size, `${st.size} on disk`);
    opts.signal?.throwIfAborted();
    await opts.beforeReplace?.(dest);
    if (opts.onlyIfAbsent && (await lstat(dest).then(() => true, () => false))) throw opts.onlyIfAbsent();
    if (large) {
      // A few round trips more are nothing next to a large file's bytes, and a large-file run
      // then needs no writer thread (nor its memory) at all.
      await rename(temp, dest);
      created = false;
      // The file is in place and verified; a failing folder fsync only weakens durability.
      await syncDir(dir).catch(() => undefined);
    } else {
      reply(await localWriter.request({ op: 'rename', temp, dest, dir }));
    }
    created = false;
    return { md5: digest, xxh64: xxh.digestHex(), size, mtimeNs: st.mtimeNs, ino: st.ino };
  } catch (err) {
    reader.done();
    release(body, iterator);
    if (writing) await writing.catch(() => undefined);
    if (fh) await fh.close().catch(() => undefined);
    // The error to report is the one above, not a failed clean-up.
    if (created) await rm(temp, { force: true }).catch(() => undefined);
    if (err instanceof SyncError) throw err;
    throw new ItemError(`download of ${label}: ${oneLine(err)}`, { cause: err });
  }
}

function verifyMd5(label: string, expected: string | undefined, digest: string): void {
  if (expected !== undefined && expected !== digest) {
    throw new ItemError(`download of ${label}: MD5 mismatch (expected ${expected}, got ${digest})`);
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** The writer's answer, or its error as one (with the errno code, as fs would throw it). */
function reply(r: WriteReply): { size: number; mtimeNs: string; ino: number } {
  if (r.error) throw Object.assign(new Error(r.error.message), r.error.code === undefined ? {} : { code: r.error.code });
  return { size: r.size ?? -1, mtimeNs: r.mtimeNs ?? '', ino: r.ino ?? -1 };
}

/**
 * The writer threads (write-worker.ts), started on first use. Two, so that one creates and writes
 * files while the other waits for its fsyncs: a request goes to a thread with nothing
 * outstanding, else to the one with least. A thread holds the process open only while a request
 * is outstanding, so none needs closing; if one dies, what was asked of it fails and the next
 * request starts another.
 */
const WRITER_THREADS = 2;

interface Writer {
  worker: Worker;
  waiting: Map<number, { resolve: (r: WriteReply) => void; reject: (e: Error) => void }>;
  /**
   * Requests of this turn of the event loop, posted together at its end: each message wakes the
   * thread (~0.1 ms of the main thread's time here), and responses often arrive several at once.
   */
  outbox: WriteRequest[];
  transfer: ArrayBuffer[];
}

class LocalWriter {
  private readonly writers: Writer[] = [];
  private nextId = 1;

  request(req: DistributiveOmit<WriteRequest, 'id'>, transfer: ArrayBuffer[] = []): Promise<WriteReply> {
    const w = this.pick();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      w.waiting.set(id, { resolve, reject });
      if (w.waiting.size === 1) w.worker.ref();
      w.outbox.push({ ...req, id } as WriteRequest);
      w.transfer.push(...transfer);
      if (w.outbox.length === 1) setImmediate(() => this.post(w));
    });
  }

  private post(w: Writer): void {
    const batch = w.outbox;
    const transfer = w.transfer;
    w.outbox = [];
    w.transfer = [];
    if (batch.length > 0) w.worker.postMessage(batch, transfer);
  }

  private pick(): Writer {
    let best: Writer | undefined;
    for (const w of this.writers) if (!best || w.waiting.size < best.waiting.size) best = w;
    if (best && (best.waiting.size === 0 || this.writers.length >= WRITER_THREADS)) return best;
    return this.start();
  }

  private start(): Writer {
    const worker = new Worker(new URL('./write-worker.js', import.meta.url));
    const w: Writer = { worker, waiting: new Map(), outbox: [], transfer: [] };
    worker.unref();
    worker.on('message', (replies: WriteReply[]) => {
      for (const r of replies) {
        const p = w.waiting.get(r.id);
        w.waiting.delete(r.id);
        p?.resolve(r);
      }
      if (w.waiting.size === 0) worker.unref();
    });
    const fail = (err: Error): void => {
      const i = this.writers.indexOf(w);
      if (i >= 0) this.writers.splice(i, 1);
      const all = [...w.waiting.values()];
      w.waiting.clear();
      w.outbox = [];
      w.transfer = [];
      for (const p of all) p.reject(err);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`file writer thread exited (${code})`)));
    this.writers.push(w);
    return w;
  }
}

const localWriter = new LocalWriter();

/** One writev of the buffered chunks (no copy into one buffer); the rest of a short write after it. */
async function writeAllAsync(fh: FileHandle, parts: Buffer[], bytes: number): Promise<void> {
  let done = (await fh.writev(parts)).bytesWritten;
  if (done === bytes) return;
  // write() may write less than asked (a nearly full disk, a file size limit): the rest must go
  // too, or the hashes would vouch for bytes that never reached the disk.
  const rest = Buffer.concat(parts, bytes);
  while (done < bytes) done += (await fh.write(rest, done)).bytesWritten;
}

function sizeMismatch(label: string, expected: number, got: string): ItemError {
  return new ItemError(`download of ${label}: size mismatch (expected ${expected} bytes, got ${got})`);
}

interface Reader {
  next(): Promise<IteratorResult<Buffer | string>>;
  /** Drops the abort listener. */
  done(): void;
}

/**
 * The body's chunks, ending with the signal's reason as soon as it aborts. A stream is destroyed
 * with the reason (one listener per body, which also frees its socket); any other iterable is
 * raced against the signal chunk by chunk, since its pending next() may never settle.
 */
function abortableReader(body: object, it: AsyncIterator<Buffer | string>, signal: AbortSignal | undefined): Reader {
  if (!signal) return { next: () => it.next(), done: () => undefined };
  if (body instanceof Readable) {
    const onAbort = (): void => void body.destroy(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    return {
      next: () => {
        signal.throwIfAborted();
        return it.next();
      },
      done: () => signal.removeEventListener('abort', onAbort),
    };
  }
  return { next: () => nextOrAbort(it, signal), done: () => undefined };
}

/** Resolves with the next chunk, or rejects as soon as the signal aborts. */
function nextOrAbort<T>(it: AsyncIterator<T>, signal: AbortSignal): Promise<IteratorResult<T>> {
  signal.throwIfAborted();
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([it.next(), aborted]).finally(() => signal.removeEventListener('abort', onAbort));
}

/** Lets a body that is still open (an HTTP response) free its socket. */
function release(body: object, iterator: AsyncIterator<unknown>): void {
  // Async iterators, a Readable's included, run return() only after a pending next() settles,
  // which after an abort may be never: destroy a stream directly instead.
  const destroy = (body as { destroy?: unknown }).destroy;
  if (typeof destroy === 'function') destroy.call(body);
  else void iterator.return?.().catch(() => undefined);
}

/** Makes a rename durable: without it a crash can bring back the old directory entry. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
