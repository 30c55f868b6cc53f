// Nothing the engine removes or overwrites locally is lost: it goes to
// <manifestDir>/<profile>/trash/<runId>/<path> first. A name already taken in this run's trash
// (the same path replaced twice) gets a numeric suffix rather than overwriting the first copy.

import { constants } from 'node:fs';
import { link, lstat, mkdir, open, readdir, rename, rm, unlink } from 'node:fs/promises';
import { ItemError } from '../core/errors.js';
import { dirname, extname, join, sep } from 'node:path';

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** `a/b.jpg`, `a/b.1.jpg`, `a/b.2.jpg`, … */
function candidate(base: string, n: number): string {
  if (n === 0) return base;
  const ext = extname(base);
  return `${base.slice(0, base.length - ext.length)}.${n}${ext}`;
}

// Errors on which a hard link cannot be made but a copy can.
const NO_LINK = new Set(['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK']);

export class Trash {
  constructor(readonly trashRoot: string) {}

  /** Moves root/relPath into the trash; undefined when there is nothing to keep. */
  async keep(root: string, relPath: string): Promise<string | undefined> {
    const src = join(root, relPath);
    if (!(await exists(src))) return undefined;
    // Reserve a unique name first: rename would silently replace an earlier trashed copy.
    const dest = await this.claim(relPath, async (p) => (await open(p, 'wx')).close());
    try {
      await rename(src, dest);
    } catch (err) {
      if (code(err) !== 'EXDEV') {
        await rm(dest, { force: true });
        if (code(err) === 'ENOENT') return undefined;
        throw err;
      }
      await copyVerified(src, dest, 'w');
      await unlink(src);
    }
    return dest;
  }

  /** Keeps a copy but leaves the original in place, for an atomic replace that comes later. */
  async copy(root: string, relPath: string): Promise<string | undefined> {
    const src = join(root, relPath);
    if (!(await exists(src))) return undefined;
    return this.claim(relPath, async (p) => {
      try {
        await link(src, p);
      } catch (err) {
        if (!NO_LINK.has(code(err) ?? '')) throw err;
        await copyVerified(src, p, 'wx');
      }
    });
  }

  /** Every file in every run's trash; `path` is relative to that run's folder, POSIX. */
  static async list(trashBase: string): Promise<{ runId: string; path: string; size: number }[]> {
    let runs;
    try {
      runs = await readdir(trashBase, { withFileTypes: true });
    } catch (err) {
      if (code(err) === 'ENOENT') return [];
      throw err;
    }
    const out: { runId: string; path: string; size: number }[] = [];
    for (const run of runs.filter((d) => d.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
      const runDir = join(trashBase, run.name);
      const names = await readdir(runDir, { recursive: true });
      for (const name of names.sort()) {
        const st = await lstat(join(runDir, name));
        if (!st.isDirectory()) out.push({ runId: run.name, path: name.split(sep).join('/'), size: st.size });
      }
    }
    return out;
  }

  /** Runs `create` on the first free name, which it must create exclusively (EEXIST if taken). */
  private async claim(relPath: string, create: (p: string) => Promise<void>): Promise<string> {
    const base = join(this.trashRoot, relPath);
    await mkdir(dirname(base), { recursive: true });
    for (let n = 0; ; n++) {
      const p = candidate(base, n);
      try {
        await create(p);
        return p;
      } catch (err) {
        if (code(err) !== 'EEXIST') throw err;
      }
    }
  }
}

/**
 * A copy across devices, by our own read loop: fs.copyFile spins forever on a source that shrinks
 * while it is copied (seen on Node 20). The copy is fsynced before the original may go, and a
 * source that changed meanwhile fails the copy, so its newer bytes are never dropped.
 */
async function copyVerified(src: string, dest: string, flags: 'w' | 'wx'): Promise<void> {
  const before = await lstat(src, { bigint: true });
  const input = await open(src, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const output = await open(dest, flags);
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (let n = (await input.read(buf, 0, buf.length, null)).bytesRead; n > 0; n = (await input.read(buf, 0, buf.length, null)).bytesRead) {
        for (let done = 0; done < n; ) done += (await output.write(buf, done, n - done)).bytesWritten;
      }
      await output.sync();
    } finally {
      await output.close();
    }
    const after = await lstat(src, { bigint: true });
    if (after.size !== before.size || after.mtimeNs !== before.mtimeNs || after.ino !== before.ino) {
      throw new ItemError(`${src} changed while it was copied to the trash; left in place`);
    }
  } catch (err) {
    await rm(dest, { force: true });
    throw err;
  } finally {
    await input.close();
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch (err) {
    if (code(err) === 'ENOENT') return false;
    throw err;
  }
}
