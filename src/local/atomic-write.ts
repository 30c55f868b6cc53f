// Downloads land atomically: written to a temp file in the destination folder, hashed on the
// way, fsynced and verified, then renamed over the destination. A reader sees the old file or
// the new one, never half of one; on any failure the destination is untouched and no temp file
// is left behind.

import { chmod, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
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

/** Resolves with the next chunk, or rejects as soon as the signal aborts. */
function nextOrAbort<T>(it: AsyncIterator<T>, signal: AbortSignal | undefined): Promise<IteratorResult<T>> {
  if (!signal) return it.next();
  signal.throwIfAborted();
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([it.next(), aborted]).finally(() => signal.removeEventListener('abort', onAbort));
}

export async function writeAtomic(
  dest: string,
  body: AsyncIterable<Buffer> | NodeJS.ReadableStream,
  opts: WriteAtomicOptions,
): Promise<WrittenFile> {
  const label = opts.label ?? dest;
  const temp = tempNameFor(dest, opts.runId);
  const iterator = (body as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
  let created = false;
  try {
    const md5 = createHash('md5');
    const xxh = (await getXxh64()).create();
    await mkdir(dirname(dest), { recursive: true });
    const fh = await open(temp, 'wx');
    created = true;
    let size = 0;
    try {
      for (;;) {
        const r = await nextOrAbort(iterator, opts.signal);
        if (r.done) break;
        const chunk = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
        // Stop a body longer than announced now, rather than after it has filled the disk.
        if (size + chunk.length > opts.expectSize) {
          throw sizeMismatch(label, opts.expectSize, `more than ${opts.expectSize}`);
        }
        // write() may write less than asked (a nearly full disk, a file size limit): the rest
        // must go too, or the hashes would vouch for bytes that never reached the disk.
        for (let done = 0; done < chunk.length; ) done += (await fh.write(chunk, done)).bytesWritten;
        md5.update(chunk);
        xxh.update(chunk);
        size += chunk.length;
        opts.onBytes?.(chunk.length);
      }
      if (opts.mtimeMs !== undefined) {
        // On the temp file, so that the destination appears with its final mtime at the rename.
        // utimes takes seconds as a double and truncates: x.678 s would land as .677999 s. Half a
        // microsecond more makes the file's mtime the exact millisecond asked for.
        const when = (opts.mtimeMs + 0.0005) / 1000;
        await fh.utimes(when, when);
      }
      await fh.sync();
      const onDisk = (await fh.stat()).size;
      if (onDisk !== size) throw sizeMismatch(label, size, `${onDisk} on disk`);
    } finally {
      await fh.close();
    }

    const digest = md5.digest('hex');
    if (size !== opts.expectSize) throw sizeMismatch(label, opts.expectSize, String(size));
    if (opts.expectMd5 !== undefined && opts.expectMd5 !== digest) {
      throw new ItemError(`download of ${label}: MD5 mismatch (expected ${opts.expectMd5}, got ${digest})`);
    }
    opts.signal?.throwIfAborted();
    // The stat of our own bytes, taken before the rename: inode and mtime survive it, and a write
    // by someone else after the rename then always shows as a stat change.
    // A replaced file keeps its permissions (a private 0600 file must not come back 0644).
    const old = await stat(dest).catch(() => undefined);
    if (old?.isFile()) await chmod(temp, old.mode & 0o7777);
    const st = await stat(temp, { bigint: true });
    await opts.beforeReplace?.(dest);
    await rename(temp, dest);
    created = false;
    // The file is in place and verified; a failing folder fsync only weakens durability.
    await syncDir(dirname(dest)).catch(() => undefined);
    return { md5: digest, xxh64: xxh.digestHex(), size, mtimeNs: st.mtimeNs.toString(), ino: Number(st.ino) };
  } catch (err) {
    release(body, iterator);
    if (created) await rm(temp, { force: true });
    if (err instanceof SyncError) throw err;
    throw new ItemError(`download of ${label}: ${oneLine(err)}`, { cause: err });
  }
}

function sizeMismatch(label: string, expected: number, got: string): ItemError {
  return new ItemError(`download of ${label}: size mismatch (expected ${expected} bytes, got ${got})`);
}

/** Lets a body that is still open (an HTTP response) free its socket. */
function release(body: object, iterator: AsyncIterator<unknown>): void {
  // Async iterators, a Readable's included, run return() only after a pending next() settles,
  // which after an abort may be never: destroy a stream directly instead.
  const destroy = (body as { destroy?: unknown }).destroy;
  if (typeof destroy === 'function') destroy.call(body);
  else void iterator.return?.().catch(() => undefined);
}

/** Makes the rename itself durable: without it a crash can bring back the old directory entry. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
