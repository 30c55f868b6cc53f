// Human output. Plain lines (one per file) when stdout is not a terminal; on a terminal a progress
// line on stderr (files, bytes, rate, current file) with only the notable lines printed above it.
import type { SyncEvent, Summary } from '../engine/events.js';
import { ellipsize, formatBytes, formatDuration, PAST } from './format.js';

export interface HumanOptions {
  /** Draw the live progress line on stderr. */
  progress: boolean;
  /** Print every file line (plain mode); otherwise only failures, conflicts and deletes. */
  everyFile: boolean;
  columns: number;
  /** `warn` keeps warnings, skips, failures and the summary; `error` only failures and the summary. */
  level: 'debug' | 'info' | 'warn' | 'error';
}

const RANK = { debug: 0, info: 1, warn: 2, error: 3 } as const;

type Tty = NodeJS.WritableStream & { columns?: number };

export class HumanRenderer {
  private total = { files: 0, bytes: 0 };
  private done = { files: 0, bytes: 0 };
  private inFlight = new Map<string, number>();
  private startedAt = 0;
  private lastDraw = 0;
  private drawn = false;
  private dryRun = false;
  private finished = false;

  constructor(private readonly out: NodeJS.WritableStream, private readonly err: Tty, private readonly o: HumanOptions, private readonly redact: (s: string) => string) {}

  readonly listener = (e: SyncEvent): void => {
    switch (e.event) {
      case 'start':
        this.dryRun = e.dryRun;
        return this.phase('scanning local files and listing the bucket…');
      case 'scan':
        if (e.phase === 'local') return this.phase(`${e.files} local files; listing the bucket…`);
        if (e.phase === 'remote') return this.phase(`${e.files} remote objects; reading files whose stat changed…`);
        return this.clear();
      case 'warning':
        if (!this.shows('warn')) return;
        return this.line(this.err, `warning: ${e.path ?? e.key ?? ''}: ${e.message}`);
      case 'item':
        if ((this.dryRun && this.shows('info')) || (e.action === 'skip' && this.shows('warn'))) {
          const verb = e.action === 'skip' ? 'skip' : `would ${e.action}`;
          this.line(this.out, `${verb.padEnd(24)} ${e.path ?? e.key}  ${e.bytes ? formatBytes(e.bytes) + '  ' : ''}(${e.reason})`);
        }
        return;
      case 'plan-saved':
        if (!this.shows('info')) return;
        return this.line(this.out, `plan saved: ${e.file} (${e.items} items; run \`storage-sync apply\` to carry it out)`);
      case 'exec-start':
        this.total = { files: e.files, bytes: e.bytes };
        this.startedAt = Date.now();
        return;
      case 'transfer-start':
        this.inFlight.set(e.path, 0);
        return this.draw(false);
      case 'transfer-bytes':
        this.done.bytes += e.bytes;
        return this.draw(false);
      case 'transfer-end':
        this.inFlight.delete(e.path);
        return;
      case 'note':
        if (this.shows('debug')) this.line(this.err, `debug: ${e.message}`);
        return;
      case 'file':
        return this.file(e);
      case 'summary':
        this.clear();
        this.finished = true;
        return this.line(this.out, summaryLine(e));
      default:
        return;
    }
  };

  private file(e: Extract<SyncEvent, { event: 'file' }>): void {
    if (e.action !== 'record') this.done.files++;
    const name = e.path ?? e.key;
    if (e.status === 'failed') this.line(this.err, `failed  ${name}: ${e.error ?? ''}`);
    else if (e.status === 'skipped') {
      if (this.shows('warn')) this.line(this.out, `skipped  ${name}: ${e.error ?? ''}`);
    } else if (this.shows('info') && (this.o.everyFile || e.action.startsWith('conflict') || e.action.startsWith('delete'))) {
      this.line(this.out, `${PAST[e.action] ?? e.action}  ${name}${e.bytes ? '  ' + formatBytes(e.bytes) : ''}`);
    }
    this.draw(false);
  }

  private shows(level: keyof typeof RANK): boolean {
    return RANK[this.o.level] <= RANK[level];
  }

  /** Before transfers start, the progress line says what the run is waiting on. */
  private phase(text: string): void {
    if (!this.o.progress) return;
    this.err.write('\r\x1b[K' + text);
    this.drawn = true;
  }

  private line(stream: NodeJS.WritableStream, text: string): void {
    this.clear();
    stream.write(this.redact(text) + '\n');
    this.draw(true);
  }

  private clear(): void {
    if (this.drawn) this.err.write('\r\x1b[K');
    this.drawn = false;
  }

  private draw(force: boolean): void {
    if (!this.o.progress || this.total.files === 0 || this.finished) return;
    const now = Date.now();
    if (!force && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const secs = Math.max((now - this.startedAt) / 1000, 0.001);
    const pct = this.total.bytes > 0 ? Math.min(1, this.done.bytes / this.total.bytes) : this.done.files / this.total.files;
    const width = 20;
    const filled = Math.round(pct * width);
    const bar = '[' + '='.repeat(filled) + ' '.repeat(width - filled) + ']';
    const current = [...this.inFlight.keys()].pop() ?? '';
    const rate = this.done.bytes / secs;
    const eta = rate > 0 && this.total.bytes > this.done.bytes ? `  ETA ${formatDuration(((this.total.bytes - this.done.bytes) / rate) * 1000)}` : '';
    const head = `${bar} ${this.done.files}/${this.total.files} files  ${formatBytes(this.done.bytes)}/${formatBytes(this.total.bytes)}  ${formatBytes(rate)}/s${eta}  `;
    const room = Math.max(10, (this.err.columns ?? this.o.columns) - head.length - 1);
    this.err.write('\r\x1b[K' + head + ellipsize(this.redact(current), room));
    this.drawn = true;
  }
}

export function summaryLine(s: Summary): string {
  const parts = [
    `${s.uploaded} uploaded`,
    `${s.downloaded} downloaded`,
    `${s.deletedRemote} deleted remote`,
    `${s.deletedLocal} deleted local`,
    `${s.conflicts} conflicts`,
    `${s.unchanged} unchanged`,
    `${s.skipped} skipped`,
    `${s.failed} failed`,
    `${s.hashed} hashed`,
  ];
  const bytes = `${formatBytes(s.bytesUp)} up, ${formatBytes(s.bytesDown)} down`;
  return `${s.dryRun ? 'dry run (nothing changed)' : 'done'} in ${formatDuration(s.durationMs)} [${s.mode}]: ${parts.join(', ')}; ${bytes}`;
}
