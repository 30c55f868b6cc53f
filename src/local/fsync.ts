// Flushing a file or a folder by name, synchronously: for callers that are already off the main
// thread (the writer threads) or whose next step must not start before the flush (a swap).
import fs from 'node:fs';

/** fsync(2) of the file or folder at `p`; throws what open or fsync throws. */
export function fsyncPath(p: string): void {
  const fd = fs.openSync(p, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Makes renames in `dir` durable where the file system allows it. False when it refused: some
 * refuse fsync on a folder, and the renames themselves have happened, so only durability is weaker.
 */
export function fsyncDirQuietly(dir: string): boolean {
  try {
    fsyncPath(dir);
    return true;
  } catch {
    return false;
  }
}
