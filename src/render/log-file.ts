// The run log under <manifest dir>/<profile>/logs/ (and --log-file): every event but byte
// counts, timestamped. Opened only once a run starts changing things, so a refused run or a dry
// run leaves no file behind.
import fs from 'node:fs';
import path from 'node:path';
import type { SyncEvent } from '../engine/events.js';

/** Lines are written in batches: one write per event cost more CPU than the download it logs. */
const BATCH_BYTES = 64 * 1024;
const BATCH_MS = 200;

export class RunLog {
  private fds: number[] | undefined;
  private pending: string[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | undefined;

  /** `files` is asked when the run starts executing, once the run id is known. */
  constructor(private readonly files: () => string[], private readonly redact: (s: string) => string) {}

  readonly listener = (e: SyncEvent): void => {
    if (e.event === 'exec-start') {
      this.open();
      return;
    }
    if ('internal' in e) return;
    const line = this.redact(JSON.stringify({ ts: new Date().toISOString(), ...e })) + '\n';
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (this.fds === undefined) return;
    if (this.pendingBytes >= BATCH_BYTES || e.event === 'summary' || e.event === 'error') this.flush();
    else this.timer ??= setTimeout(() => this.flush(), BATCH_MS).unref();
  };

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.fds === undefined || this.pending.length === 0) return;
    const text = this.pending.join('');
    this.pending = [];
    this.pendingBytes = 0;
    for (const fd of this.fds) fs.writeSync(fd, text);
  }

  private open(): void {
    this.fds = this.files().map((f) => {
      fs.mkdirSync(path.dirname(f), { recursive: true });
      return fs.openSync(f, 'a');
    });
    this.flush();
  }

  close(): void {
    this.flush();
    for (const fd of this.fds ?? []) fs.closeSync(fd);
    this.fds = undefined;
  }
}
