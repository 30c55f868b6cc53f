// Building manifest entries from what actually happened, and the stat comparisons that guard
// every write against a file that moved since it was planned.
import fs from 'node:fs';
import type { BaseEntry, LocalFile } from '../core/types.js';
import type { StoredEntry } from '../manifest/manifest.js';

/**
 * Kernel file timestamps advance in clock ticks (a few ms), not nanoseconds: a file rewritten in
 * the same tick as the stat we record keeps its stat. Moving the racy cut-off back by more than a
 * tick makes such files re-read next run (git's racily-clean rule). File systems that keep whole
 * seconds only (FAT keeps two, ext4 with small inodes, some network mounts) show it as an mtime
 * with no sub-second part: those get a cut-off two seconds back.
 */
const TICK_MARGIN_NS = 20_000_000n;
const COARSE_MARGIN_NS = 2_000_000_000n;

export function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

export function statOf(abs: string): LocalFile | undefined {
  try {
    // No exception for the common "not there yet" (every download of a new file asks).
    const st = fs.lstatSync(abs, { bigint: true, throwIfNoEntry: false });
    if (!st?.isFile()) return undefined;
    return { size: Number(st.size), mtimeNs: st.mtimeNs.toString(), ino: Number(st.ino) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw err;
  }
}

export function sameStat(a: LocalFile | undefined, b: LocalFile | undefined): boolean {
  if (!a || !b) return a === b;
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ino === b.ino;
}

/** `statTakenNs`: when the content we are recording was read (or the stat taken before it). */
export function entryFor(key: string, local: LocalFile, remote: BaseEntry['remote'], statTakenNs: bigint): StoredEntry {
  if (local.md5 === undefined || local.xxh64 === undefined) {
    throw new Error(`internal: recording ${key} without local hashes`);
  }
  return {
    key,
    local: { size: local.size, mtimeNs: local.mtimeNs, ino: local.ino, md5: local.md5, xxh64: local.xxh64 },
    remote: { etag: remote.etag, size: remote.size, lastModified: remote.lastModified, md5: remote.md5 },
    recordedAtNs: (statTakenNs - (BigInt(local.mtimeNs) % 1_000_000_000n === 0n ? COARSE_MARGIN_NS : TICK_MARGIN_NS)).toString(),
  };
}
