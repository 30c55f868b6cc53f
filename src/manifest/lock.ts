// One changing run per profile at a time: two overlapping runs would plan against the same base
// and race each other's writes. A lock whose holder is gone is taken over.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SafetyError } from '../core/errors.js';

interface Holder {
  pid: number;
  host: string;
  startedAt: string;
}

/** The holder touches the lock this often; one untouched for STALE_MS is abandoned (any host). */
const HEARTBEAT_MS = 30_000;
const STALE_MS = 5 * 60_000;

/** Locks this process holds: a lock naming our own pid that is not here is a previous incarnation's. */
const held = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function read(file: string): { text: string; holder: Holder | undefined; ageMs: number } | undefined {
  try {
    const text = fs.readFileSync(file, 'utf8');
    const ageMs = Date.now() - fs.statSync(file).mtimeMs;
    let holder: Holder | undefined;
    try {
      holder = JSON.parse(text) as Holder;
    } catch {
      holder = undefined;
    }
    return { text, holder, ageMs };
  } catch {
    return undefined;
  }
}

function isStale(file: string, h: Holder | undefined, ageMs: number): boolean {
  if (ageMs > STALE_MS) return true;
  // Only a pid on this host says anything; another host's lock ages out through its heartbeat.
  if (!h || h.host !== os.hostname()) return false;
  if (h.pid === process.pid) return !held.has(file);
  return !alive(h.pid);
}

export class RunLock {
  private readonly beat: NodeJS.Timeout;

  private constructor(private readonly file: string, private readonly text: string) {
    held.add(file);
    this.beat = setInterval(() => {
      const now = new Date();
      fs.utimes(file, now, now, () => undefined);
    }, HEARTBEAT_MS);
    this.beat.unref();
  }

  static acquire(dir: string): RunLock {
    const file = path.join(dir, 'lock');
    fs.mkdirSync(dir, { recursive: true });
    const text = JSON.stringify({ pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString() } satisfies Holder);
    // Written aside then linked in: link() fails if the lock exists, and never shows half a file.
    const mine = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}`;
    fs.writeFileSync(mine, text);
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          fs.linkSync(mine, file);
          return new RunLock(file, text);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
        const seen = read(file);
        if (!seen) continue;
        if (!isStale(file, seen.holder, seen.ageMs)) {
          const h = seen.holder;
          const who = h ? `pid ${h.pid} on ${h.host}, since ${h.startedAt}` : 'holder unknown';
          throw new SafetyError(`another run holds the lock ${file} (${who})`);
        }
        takeOver(file, seen.text);
      }
      throw new SafetyError(`could not take the lock ${file}: other runs keep taking it`);
    } finally {
      fs.rmSync(mine, { force: true });
    }
  }

  release(): void {
    clearInterval(this.beat);
    held.delete(this.file);
    if (read(this.file)?.text === this.text) fs.rmSync(this.file, { force: true });
  }
}

/**
 * Moves the stale lock aside, then checks that what moved is the one judged stale: if another
 * run took it over in between, its fresh lock is put back (link fails if yet another appeared).
 */
function takeOver(file: string, staleText: string): void {
  const aside = `${file}.stale.${process.pid}.${crypto.randomBytes(4).toString('hex')}`;
  try {
    fs.renameSync(file, aside);
  } catch {
    return;
  }
  if (fs.readFileSync(aside, 'utf8') !== staleText) {
    try {
      fs.linkSync(aside, file);
    } catch {
      // Someone holds the lock again either way; the next attempt sees theirs.
    }
  }
  fs.rmSync(aside, { force: true });
}
