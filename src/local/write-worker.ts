// The threads that put downloaded small files on disk. Creating a file cost 0.3-0.9 ms of kernel
// time on the bench machine (ext4's inode allocator skipping recently deleted inodes) and each
// fsync waits for the disk: done synchronously on the main thread, that stalled every download in
// flight (measured: 30% of its samples in open()). Here they wait alone. The messages drained in
// one go are one batch: its renames first, then all its files are written, then fsynced (on a
// journaling file system the first fsync commits the batch and the rest find little left to do),
// then each folder with a new name in it is fsynced once.
import fs from 'node:fs';
import { fsyncDirQuietly } from './fsync.js';
import { parentPort, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';

export type WriteRequest =
  | {
      id: number;
      op: 'write';
      temp: string;
      dir: string;
      data: Uint8Array;
      /** Seconds, as utimes takes them. */
      mtimeSec?: number;
      /** A file there keeps its permissions: the temp gets its mode. */
      modeOf: string;
      /** Then renamed onto this path, if nothing is there yet (else the temp is removed). */
      renameIfAbsent?: string;
    }
  | { id: number; op: 'rename'; temp: string; dest: string; dir: string };

export interface WriteReply {
  id: number;
  /** write: the temp file's stat after fsync (inode and mtime survive the rename). */
  size?: number;
  mtimeNs?: string;
  ino?: number;
  /** renameIfAbsent found something in the way: nothing was renamed, the temp is gone. */
  occupied?: boolean;
  error?: { message: string; code?: string };
}

/** Folders created or found by this thread; one removed behind our back is made again. */
const knownDirs = new Set<string>();
const KNOWN_DIRS_MAX = 100_000;

export function openTemp(temp: string, dir: string): number {
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

export function writeAllSync(fd: number, buf: Uint8Array): void {
  // write() may write less than asked (a nearly full disk, a file size limit): the rest must go
  // too, or the hashes would vouch for bytes that never reached the disk.
  for (let done = 0; done < buf.length; ) done += fs.writeSync(fd, buf, done);
}

function failure(id: number, err: unknown): WriteReply {
  const e = err as NodeJS.ErrnoException;
  return { id, error: e.code === undefined ? { message: String(e?.message ?? e) } : { message: e.message, code: e.code } };
}

function removeQuietly(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch {
    // The reply carries the error that matters.
  }
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // Already failing; the close error adds nothing.
  }
}

export function runBatch(batch: WriteRequest[]): WriteReply[] {
  const replies: WriteReply[] = [];
  const written: { req: WriteRequest & { op: 'write' }; fd: number }[] = [];
  const renamed = new Map<string, WriteReply[]>();
  for (const req of batch) {
    if (req.op === 'rename') {
      try {
        fs.renameSync(req.temp, req.dest);
        const list = renamed.get(req.dir) ?? [];
        list.push({ id: req.id });
        renamed.set(req.dir, list);
      } catch (err) {
        replies.push(failure(req.id, err));
      }
      continue;
    }
    let fd: number | undefined;
    try {
      fd = openTemp(req.temp, req.dir);
      writeAllSync(fd, req.data);
      if (req.mtimeSec !== undefined) fs.futimesSync(fd, req.mtimeSec, req.mtimeSec);
      const old = fs.statSync(req.modeOf, { throwIfNoEntry: false });
      if (old?.isFile()) fs.fchmodSync(fd, old.mode & 0o7777);
      written.push({ req, fd });
    } catch (err) {
      if (fd !== undefined) {
        closeQuietly(fd);
        removeQuietly(req.temp);
      }
      replies.push(failure(req.id, err));
    }
  }
  for (const { req, fd } of written) {
    let open = true;
    try {
      fs.fsyncSync(fd);
      const st = fs.fstatSync(fd, { bigint: true });
      // The hashes vouch for exactly these bytes: a short file must never be renamed into place.
      if (Number(st.size) !== req.data.length) throw new Error(`size mismatch (expected ${req.data.length} bytes, got ${st.size} on disk)`);
      open = false;
      fs.closeSync(fd);
      const reply: WriteReply = { id: req.id, size: Number(st.size), mtimeNs: st.mtimeNs.toString(), ino: Number(st.ino) };
      if (req.renameIfAbsent === undefined) {
        replies.push(reply);
        continue;
      }
      // Checked at the last moment: a file that appeared while the bytes came in is the user's.
      if (fs.lstatSync(req.renameIfAbsent, { throwIfNoEntry: false })) {
        removeQuietly(req.temp);
        replies.push({ ...reply, occupied: true });
        continue;
      }
      fs.renameSync(req.temp, req.renameIfAbsent);
      const list = renamed.get(req.dir) ?? [];
      list.push(reply);
      renamed.set(req.dir, list);
    } catch (err) {
      // Never a second close: the number may already be another thread's file.
      if (open) closeQuietly(fd);
      removeQuietly(req.temp);
      replies.push(failure(req.id, err));
    }
  }
  for (const [dir, list] of renamed) {
    // The files are in place and verified; a failing folder fsync only weakens durability.
    fsyncDirQuietly(dir);
    replies.push(...list);
  }
  return replies;
}

if (parentPort) {
  const port: MessagePort = parentPort;
  port.on('message', (first: WriteRequest[]) => {
    const batch = [...first];
    for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) batch.push(...(m.message as WriteRequest[]));
    port.postMessage(runBatch(batch));
  });
}
