// One changing run per profile at a time: two overlapping runs would plan against the same base
// and race each other's writes. A lock left by a process that is gone is taken over.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SafetyError } from '../core/errors.js';

interface Holder {
  pid: number;
  host: string;
  startedAt: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readHolder(file: string): Holder | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Holder;
  } catch {
    return undefined;
  }
}

export class RunLock {
  private constructor(private readonly file: string) {}

  static acquire(dir: string): RunLock {
    const file = path.join(dir, 'lock');
    fs.mkdirSync(dir, { recursive: true });
    const me: Holder = { pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString() };
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        fs.writeFileSync(file, JSON.stringify(me), { flag: 'wx' });
        return new RunLock(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = readHolder(file);
      // Another host's pid means nothing here: only a same-host dead process is known stale.
      if (holder && (holder.host !== me.host || alive(holder.pid))) {
        throw new SafetyError(`another run holds the lock ${file} (pid ${holder.pid} on ${holder.host}, since ${holder.startedAt})`);
      }
      fs.rmSync(file, { force: true });
    }
    throw new SafetyError(`could not take the lock ${file}`);
  }

  release(): void {
    const holder = readHolder(this.file);
    if (holder?.pid === process.pid) fs.rmSync(this.file, { force: true });
  }
}
