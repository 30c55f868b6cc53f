// Piscina worker: hashes a batch of files. Each file is read once where possible; the quick
// xxh64 check comes first so that a touch-only change (same content, new mtime) costs no MD5.
// Per-file failures are results, not exceptions, so one bad file never fails its batch.

import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import crypto, { createHash, type Hash } from 'node:crypto';
import { oneLine } from '../core/errors.js';
import { getXxh64, type Xxh64 } from './xxh.js';

export interface HashTask {
  abs: string;
  size: number;
  /** The base's xxh64: when the content still matches it, the MD5 is not computed. */
  expectXxh64?: string;
  /** Also compute the multipart ETag this content would have with parts of this size. */
  multipartPartSize?: number;
}

export interface HashResult {
  abs: string;
  xxh64?: string;
  md5?: string;
  multipartEtag?: string;
  size: number;
  error?: string;
}

/** Files up to this size are read whole into one reused buffer and hashed from memory. */
export const SMALL_FILE_MAX = 8 * 1024 * 1024;
const CHUNK = 1024 * 1024;

// One extra byte so that a file which grew since the scan is noticed without reading it all.
// Shared by every task of this worker: safe because a batch is hashed without any await. Made on
// first use: the main thread imports this module for its types and limit, and needs no buffer.
let whole: Buffer | undefined;
const wholeBuf = (): Buffer => (whole ??= Buffer.allocUnsafe(SMALL_FILE_MAX + 1));
const CHANGED = 'file changed while hashing';

/** S3's multipart ETag: MD5 of the concatenated binary MD5s of each part, then `-<parts>`. */
class MultipartEtag {
  private readonly partMd5s: Buffer[] = [];
  private part: Hash = createHash('md5');
  private filled = 0;
  constructor(private readonly partSize: number) {}

  update(data: Buffer): void {
    for (let off = 0; off < data.length; ) {
      const n = Math.min(this.partSize - this.filled, data.length - off);
      this.part.update(data.subarray(off, off + n));
      this.filled += n;
      off += n;
      if (this.filled === this.partSize) this.endPart();
    }
  }

  digest(): string {
    if (this.filled > 0 || this.partMd5s.length === 0) this.endPart();
    const all = createHash('md5').update(Buffer.concat(this.partMd5s)).digest('hex');
    return `${all}-${this.partMd5s.length}`;
  }

  private endPart(): void {
    this.partMd5s.push(this.part.digest());
    this.part = createHash('md5');
    this.filled = 0;
  }
}

// crypto.hash is Node 20.12+; package.json allows 20.10.
const md5Hex: (data: Buffer) => string =
  typeof crypto.hash === 'function' ? (data) => crypto.hash('md5', data, 'hex') : (data) => createHash('md5').update(data).digest('hex');

/** Reads up to `max` bytes at `pos` into `buf`, looping over short reads; returns bytes read. */
function readFully(fd: number, buf: Buffer, max: number, pos: number): number {
  let got = 0;
  while (got < max) {
    const n = readSync(fd, buf, got, max - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

/** MD5, plus the multipart ETag when asked: both hash the content, so they travel together. */
function contentHashes(partSize: number | undefined) {
  const md5 = createHash('md5');
  const mp = partSize ? new MultipartEtag(partSize) : undefined;
  return {
    update(chunk: Buffer): void {
      md5.update(chunk);
      mp?.update(chunk);
    },
    digest(): Pick<HashResult, 'md5' | 'multipartEtag'> {
      return mp ? { md5: md5.digest('hex'), multipartEtag: mp.digest() } : { md5: md5.digest('hex') };
    },
  };
}

function hashSmall(fd: number, task: HashTask, xxh: Xxh64): HashResult {
  const got = readFully(fd, wholeBuf(), task.size + 1, 0);
  if (got !== task.size) return { abs: task.abs, size: got, error: CHANGED };
  const data = wholeBuf().subarray(0, got);
  const xxh64 = xxh.hex(data);
  if (task.expectXxh64 === xxh64) return { abs: task.abs, size: got, xxh64 };
  // One-shot: a Hash object per small file cost about as much as hashing 8 KiB with it.
  if (!task.multipartPartSize) return { abs: task.abs, size: got, xxh64, md5: md5Hex(data) };
  const content = contentHashes(task.multipartPartSize);
  content.update(data);
  return { abs: task.abs, size: got, xxh64, ...content.digest() };
}

/** One sequential pass over a large file feeding every sink; returns the bytes read. */
function pass(fd: number, size: number, sinks: ((chunk: Buffer) => void)[]): number {
  const buf = wholeBuf().subarray(0, CHUNK);
  let total = 0;
  // Stop one chunk past the expected size: enough to tell that the file grew.
  while (total <= size) {
    const n = readFully(fd, buf, CHUNK, total);
    if (n === 0) break;
    const chunk = buf.subarray(0, n);
    for (const sink of sinks) sink(chunk);
    total += n;
  }
  return total;
}

function hashLarge(fd: number, task: HashTask, xxh: Xxh64): HashResult {
  const base = { abs: task.abs, size: task.size };
  const x = xxh.create();
  const xxhSink = (chunk: Buffer) => x.update(chunk);
  const content = contentHashes(task.multipartPartSize);
  const contentSink = (chunk: Buffer) => content.update(chunk);

  if (task.expectXxh64 !== undefined) {
    // Most large files that reach the hasher with a known xxh64 were only touched: pay for the
    // cheap hash alone first, and reread for MD5 only when the content really changed.
    if (pass(fd, task.size, [xxhSink]) !== task.size) return { ...base, error: CHANGED };
    const xxh64 = x.digestHex();
    if (xxh64 === task.expectXxh64) return { ...base, xxh64 };
    if (pass(fd, task.size, [contentSink]) !== task.size) return { ...base, error: CHANGED };
    return { ...base, xxh64, ...content.digest() };
  }
  if (pass(fd, task.size, [xxhSink, contentSink]) !== task.size) return { ...base, error: CHANGED };
  return { ...base, xxh64: x.digestHex(), ...content.digest() };
}

function hashOne(task: HashTask, xxh: Xxh64): HashResult {
  let fd: number | undefined;
  try {
    // O_NONBLOCK: a path swapped for a FIFO since the scan must not block this thread in open();
    // O_NOFOLLOW: nor for a symlink. Only a regular file is read.
    fd = openSync(task.abs, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
    if (!fstatSync(fd).isFile()) return { abs: task.abs, size: task.size, error: 'no longer a regular file' };
    return task.size <= SMALL_FILE_MAX ? hashSmall(fd, task, xxh) : hashLarge(fd, task, xxh);
  } catch (err) {
    return { abs: task.abs, size: task.size, error: oneLine(err) };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export default async function hashBatch(tasks: HashTask[]): Promise<HashResult[]> {
  const xxh = await getXxh64();
  return tasks.map((task) => hashOne(task, xxh));
}
