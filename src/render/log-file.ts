// The run log under <manifest dir>/<profile>/logs/ (and --log-file): every event but byte
// counts, timestamped. Opened only once a run starts changing things, so a refused run or a dry
// run leaves no file behind.
import fs from 'node:fs';
import path from 'node:path';
import type { SyncEvent } from '../engine/events.js';

export class RunLog {
  private fds: number[] | undefined;
  private pending: string[] = [];

  /** `files` is asked when the run starts executing, once the run id is known. */
  constructor(private readonly files: () => string[], private readonly redact: (s: string) => string) {}

  readonly listener = (e: SyncEvent): void => {
    if (e.event === 'exec-start') {
      this.open();
      return;
    }
    if ('internal' in e) return;
    const line = this.redact(JSON.stringify({ ts: new Date().toISOString(), ...e })) + '\n';
    if (this.fds === undefined) this.pending.push(line);
    else for (const fd of this.fds) fs.writeSync(fd, line);
  };

  private open(): void {
    this.fds = this.files().map((f) => {
      fs.mkdirSync(path.dirname(f), { recursive: true });
      return fs.openSync(f, 'a');
    });
    for (const line of this.pending) for (const fd of this.fds) fs.writeSync(fd, line);
    this.pending = [];
  }

  close(): void {
    for (const fd of this.fds ?? []) fs.closeSync(fd);
    this.fds = undefined;
  }
}
