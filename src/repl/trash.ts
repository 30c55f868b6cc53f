// Listing the trash and putting a file back. A restore never loses a file: whatever sits at the
// destination goes to the trash first, and the trashed copy is linked into place (which fails
// rather than overwrites) before its trash name is removed.
import fs from 'node:fs';
import path from 'node:path';
import { Trash } from '../local/trash.js';
import { RunLock } from '../manifest/lock.js';
import { newRunId } from '../engine/run.js';
import { ArgError } from './args.js';

export interface TrashEntry {
  runId: string;
  /** The local path the file belongs at. */
  path: string;
  size: number;
  /** The remote side of a conflict the local side won (kept under `<run>/remote/<path>`). */
  remote: boolean;
  /** Where it sits inside the run's trash folder. */
  file: string;
}

/**
 * Every trashed file, by the local path it belongs at. The engine keeps the remote loser of a
 * conflict under `<run>/remote/<path>`: that is the remote version of `<path>`, not a file of a
 * folder named `remote`, unless `remote` is itself a mapped folder and the rest is not.
 */
export async function listTrash(trashDir: string, mappedFolders: readonly string[] = []): Promise<TrashEntry[]> {
  const mapped = (p: string): boolean => mappedFolders.some((m) => p.startsWith(m + '/'));
  return (await Trash.list(trashDir)).map((e) => {
    const rest = e.path.startsWith('remote/') ? e.path.slice('remote/'.length) : undefined;
    const remote = rest !== undefined && (mapped(rest) || !mapped(e.path));
    return { runId: e.runId, path: remote ? rest! : e.path, size: e.size, remote, file: e.path };
  });
}

export interface Restored {
  rel: string;
  runId: string;
  /** Where the file that was in the way went. */
  displaced?: string;
  /** Other runs that also hold this path. */
  others: string[];
  /** It was the remote version (the loser of a conflict). */
  remote: boolean;
  /** Dry run: nothing was moved; `displaced` then says whether a file is in the way. */
  dryRun?: boolean;
}

export async function restoreFromTrash(o: { root: string; profileDir: string; trashDir: string; rel: string; runId?: string; mappedFolders?: readonly string[]; dryRun?: boolean }): Promise<Restored> {
  const rel = path.posix.normalize(o.rel.replace(/\\/g, '/').replace(/^\.\//, ''));
  if (rel === '.' || rel.startsWith('../') || rel === '..' || path.posix.isAbsolute(rel)) throw new ArgError(`${o.rel} is not a path inside the project`);
  const entries = (await listTrash(o.trashDir, o.mappedFolders)).filter((e) => e.path === rel);
  if (entries.length === 0) throw new ArgError(`${rel} is not in the trash (type trash to list it)`);
  const runs = entries.map((e) => e.runId);
  const runId = o.runId ?? runs[runs.length - 1]!;
  if (!runs.includes(runId)) throw new ArgError(`run ${runId} has no ${rel} in the trash (it is in ${runs.join(', ')})`);
  const entry = entries.filter((e) => e.runId === runId).pop()!;
  const src = path.join(o.trashDir, runId, entry.file);
  const dest = path.join(o.root, rel);
  const others = [...new Set(runs.filter((r) => r !== runId))];
  if (o.dryRun) {
    // --dry-run writes nothing anywhere: say what would happen, move nothing.
    const inTheWay = fs.existsSync(dest) ? dest : undefined;
    return { rel, runId, ...(inTheWay ? { displaced: inTheWay } : {}), others, remote: entry.remote, dryRun: true };
  }
  // A sync running meanwhile (another terminal) could be writing the same path.
  const lock = RunLock.acquire(o.profileDir);
  try {
    await fs.promises.mkdir(path.dirname(dest), { recursive: true });
    let displaced: string | undefined;
    const trash = new Trash(path.join(o.trashDir, newRunId(new Date())));
    for (let attempt = 0; ; attempt++) {
      const kept = await trash.keep(o.root, rel);
      displaced ??= kept;
      try {
        await fs.promises.link(src, dest);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST' && attempt < 3) continue;
        if (code === 'EEXIST') throw new Error(`${rel} keeps reappearing; left the trashed copy where it is`, { cause: err });
        // No hard links here (another device, a file system without them): copy beside, then rename.
        const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.restore-${process.pid}.tmp`);
        await fs.promises.copyFile(src, tmp, fs.constants.COPYFILE_EXCL);
        await fs.promises.rename(tmp, dest);
        break;
      }
    }
    await fs.promises.unlink(src);
    return { rel, runId, ...(displaced ? { displaced } : {}), others, remote: entry.remote };
  } finally {
    lock.release();
  }
}
