// Downloads land atomically: written to a temp file in the destination folder, hashed on the
// way, fsynced and verified, then renamed over the destination. A reader sees the old file or
// the new one, never half of one; on any failure the destination is untouched and no temp file
// is left behind.
//
// Speed (tree A of the benchmark is 20,000 files of ~8 KiB): every `fs.promises` call is a round
// trip through libuv's four-thread pool with its wake-ups, and a dozen of them per file cost more
// than the download itself. So a body is buffered up to FLUSH_BYTES; one that fits (most files) is
// verified in memory and then written with synchronous calls that each take microseconds on the
// page cache (open, write, futimes, fstat, close, rename), leaving only the two fsyncs, which wait
// for the disk, to the pool. A larger body goes out in writes of FLUSH_BYTES, one in flight.

import fs from 'node:fs';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { dirname } from 'node:path';
import { ItemError, SyncError, oneLine } from '../core/errors.js';
import { tempNameFor } from './scan.js';
import { getXxh64 } from './xxh.js';

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
 * Bodies up to this size are written in one synchronous write after they are verified; larger
 * ones in writes of this size. Big enough that a large file costs few pool round trips, small
 * enough that `concurrency` buffered bodies stay a few MB and a write blocks the loop < 1 ms.
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
  let fd: number | undefined;
  let created = false;
  // At most one write in flight; the fd is not closed under it.
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
        if (fd === undefined) {
          fd = openTemp(temp, dir);
          created = true;
        }
        if (writing) await writing;
        const out = concat(pending, pendingBytes);
        pending = [];
        pendingBytes = 0;
        writing = writeAllAsync(fd, out);
        // Awaited before the next write or in cleanup; never an unhandled rejection meanwhile.
        writing.catch(() => undefined);
      }
    }
    reader.done();
    if (size !== opts.expectSize) throw sizeMismatch(label, opts.expectSize, String(size));
    const digest = md5.digest('hex');
    // Verified before the last bytes are written: a damaged small body never touches the disk.
    if (opts.expectMd5 !== undefined && opts.expectMd5 !== digest) {
      throw new ItemError(`download of ${label}: MD5 mismatch (expected ${opts.expectMd5}, got ${digest})`);
    }
    if (fd === undefined) {
      fd = openTemp(temp, dir);
      created = true;
    }
    if (writing) await writing;
    writing = undefined;
    // write() may write less than asked (a nearly full disk, a file size limit): the rest must go
    // too, or the hashes would vouch for bytes that never reached the disk.
    if (pendingBytes > 0) writeAllSync(fd, concat(pending, pendingBytes));
    if (opts.mtimeMs !== undefined) {
      // On the temp file, so that the destination appears with its final mtime at the rename.
      // utimes takes seconds as a double and truncates: x.678 s would land as .677999 s. Half a
      // microsecond more makes the file's mtime the exact millisecond asked for.
      const when = (opts.mtimeMs + 0.0005) / 1000;
      fs.futimesSync(fd, when, when);
    }
    // A replaced file keeps its permissions (a private 0600 file must not come back 0644).
    const old = fs.statSync(dest, { throwIfNoEntry: false });
    if (old?.isFile()) fs.fchmodSync(fd, old.mode & 0o7777);
    await fsyncAsync(fd);
    // The stat of our own bytes, taken before the rename: inode and mtime survive it, and a write
    // by someone else after the rename then always shows as a stat change.
    const st = fs.fstatSync(fd, { bigint: true });
    if (Number(st.size) !== size) throw sizeMismatch(label, size, `${st.size} on disk`);
    fs.closeSync(fd);
    fd = undefined;
    opts.signal?.throwIfAborted();
    await opts.beforeReplace?.(dest);
    fs.renameSync(temp, dest);
    created = false;
    // The file is in place and verified; a failing folder fsync only weakens durability.
    await syncDir(dir).catch(() => undefined);
    return { md5: digest, xxh64: xxh.digestHex(), size, mtimeNs: st.mtimeNs.toString(), ino: Number(st.ino) };
  } catch (err) {
    reader.done();
    release(body, iterator);
    if (writing) await writing.catch(() => undefined);
    if (fd !== undefined) closeQuietly(fd);
    if (created) fs.rmSync(temp, { force: true });
    if (err instanceof SyncError) throw err;
    throw new ItemError(`download of ${label}: ${oneLine(err)}`, { cause: err });
  }
}

function sizeMismatch(label: string, expected: number, got: string): ItemError {
  return new ItemError(`download of ${label}: size mismatch (expected ${expected} bytes, got ${got})`);
}

function concat(parts: Buffer[], bytes: number): Buffer {
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, bytes);
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

/**
 * Folders this process has created or found: a download into a known folder skips the mkdir (a
 * syscall and, recursive, an EEXIST). A folder removed behind our back shows as ENOENT at the
 * open, which drops it from here and creates it again.
 */
const knownDirs = new Set<string>();
const KNOWN_DIRS_MAX = 100_000;

function openTemp(temp: string, dir: string): number {
  if (!knownDirs.has(dir)) {
    fs.mkdirSync(dir, { recursive: true });
    if (knownDirs.size >= KNOWN_DIRS_MAX) knownDirs.clear();
    knownDirs.add(dir);
  }
  try {
    return fs.openSync(temp, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    knownDirs.delete(dir);
    fs.mkdirSync(dir, { recursive: true });
    knownDirs.add(dir);
    return fs.openSync(temp, 'wx');
  }
}

function writeAllSync(fd: number, buf: Buffer): void {
  for (let done = 0; done < buf.length; ) done += fs.writeSync(fd, buf, done);
}

async function writeAllAsync(fd: number, buf: Buffer): Promise<void> {
  for (let done = 0; done < buf.length; ) {
    done += await new Promise<number>((resolve, reject) =>
      fs.write(fd, buf, done, buf.length - done, null, (err, n) => (err ? reject(err) : resolve(n))),
    );
  }
}

function fsyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())));
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // Already failing; the close error adds nothing.
  }
}

/** Lets a body that is still open (an HTTP response) free its socket. */
function release(body: object, iterator: AsyncIterator<unknown>): void {
  // Async iterators, a Readable's included, run return() only after a pending next() settles,
  // which after an abort may be never: destroy a stream directly instead.
  const destroy = (body as { destroy?: unknown }).destroy;
  if (typeof destroy === 'function') destroy.call(body);
  else void iterator.return?.().catch(() => undefined);
}

/**
 * Makes renames durable: without a folder fsync a crash can bring back the old directory entry.
 * Concurrent downloads into one folder share one: a caller whose rename came before a sync
 * started is covered by it, so it joins the next sync not yet started rather than queueing its
 * own. Each caller still returns only after a folder fsync that began after its rename.
 */
const dirSyncs = new Map<string, { running?: Promise<void>; queued?: Promise<void> }>();

function syncDir(dir: string): Promise<void> {
  let s = dirSyncs.get(dir);
  if (!s) {
    s = {};
    dirSyncs.set(dir, s);
  }
  if (s.queued) return s.queued;
  const state = s;
  const start = (): Promise<void> => {
    const p = fsyncDirOnce(dir).finally(() => {
      if (state.running === p) state.running = undefined;
      if (!state.running && !state.queued && dirSyncs.get(dir) === state) dirSyncs.delete(dir);
    });
    state.running = p;
    return p;
  };
  if (!state.running) return start();
  const queued = state.running
    .catch(() => undefined)
    .then(() => {
      state.queued = undefined;
      return start();
    });
  state.queued = queued;
  return queued;
}

async function fsyncDirOnce(dir: string): Promise<void> {
  const fd = fs.openSync(dir, 'r');
  try {
    await fsyncAsync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
