// What `apply` shows while it runs. On a terminal: a few lines redrawn in place (progress bar with
// files, bytes, rate and ETA; running totals; the files in flight), with notable lines printed
// above them. Elsewhere: one plain line per file, so logs and tests read a stable transcript.
import type { SyncEvent } from '../engine/events.js';
import { ellipsize, formatBytes, formatDuration, PAST } from '../render/format.js';
import type { Paint } from './paint.js';

const SHOWN_IN_FLIGHT = 4;

export class LiveView {
  private total = { files: 0, bytes: 0 };
  private bytes = 0;
  private counts = { done: 0, failed: 0, skipped: 0 };
  private inFlight = new Map<string, string>();
  private startedAt = 0;
  private lastDraw = 0;
  private drawnLines = 0;
  private phase = '';
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly tty: boolean,
    private readonly columns: () => number,
    private readonly paint: Paint,
    private readonly say: (line: string) => void,
    private readonly actionOf: (path: string) => string | undefined,
  ) {}

  readonly listener = (e: SyncEvent): void => {
    switch (e.event) {
      case 'start':
        return this.setPhase('scanning local files and listing the bucket…');
      case 'scan':
        if (e.phase === 'local') return this.setPhase(`${e.files} local files; listing the bucket…`);
        if (e.phase === 'remote') return this.setPhase(`${e.files} remote objects; checking what changed…`);
        return;
      case 'exec-start':
        this.total = { files: e.files, bytes: e.bytes };
        this.startedAt = Date.now();
        this.phase = '';
        if (this.tty) this.timer = setInterval(() => this.draw(true), 250).unref();
        return this.draw(true);
      case 'transfer-start':
        this.inFlight.set(e.path, this.actionOf(e.path) ?? '');
        return this.draw(false);
      case 'transfer-bytes':
        this.bytes += e.bytes;
        return this.draw(false);
      case 'transfer-end':
        this.inFlight.delete(e.path);
        return this.draw(false);
      case 'file':
        return this.file(e);
      case 'warning':
        return this.above(this.paint.yellow(`warning: ${e.path ?? e.key ?? ''}: ${e.message}`));
      default:
        return;
    }
  };

  /** Removes the live lines for good (the run ended or stopped). */
  finish(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.erase();
  }

  private file(e: Extract<SyncEvent, { event: 'file' }>): void {
    const name = e.path ?? e.key;
    if (e.status === 'failed') {
      this.counts.failed++;
      this.above(this.paint.red(`failed   ${name}: ${e.error ?? ''}`));
    } else if (e.status === 'skipped') {
      this.counts.skipped++;
      this.above(this.paint.yellow(`skipped  ${name}: ${e.error ?? ''}`));
    } else {
      this.counts.done++;
      const line = `${PAST[e.action] ?? e.action}  ${name}${e.bytes ? '  ' + formatBytes(e.bytes) : ''}`;
      // On a terminal only what needs a look scrolls by; the counts say the rest.
      if (!this.tty) this.above(line);
      else if (e.action.startsWith('conflict') || e.action.startsWith('delete')) this.above(this.paint.yellow(line));
    }
    this.draw(false);
  }

  /** A line from outside the run (a stop request), printed above the live lines. */
  note(line: string): void {
    this.above(line);
  }

  private setPhase(text: string): void {
    this.phase = text;
    if (this.tty) this.draw(true);
  }

  private above(line: string): void {
    this.erase();
    this.say(line);
    this.draw(true);
  }

  private erase(): void {
    if (!this.tty || this.drawnLines === 0) return;
    // Back to the first live line, then clear to the end of the screen.
    this.out.write(`\r${this.drawnLines > 1 ? `\x1b[${this.drawnLines - 1}A` : ''}\x1b[J`);
    this.drawnLines = 0;
  }

  private draw(force: boolean): void {
    if (!this.tty) return;
    const now = Date.now();
    if (!force && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const lines = this.phase ? [this.paint.dim(this.phase)] : this.total.files + this.counts.done + this.counts.failed > 0 ? this.lines(now) : [];
    const width = Math.max(20, this.columns() - 1);
    this.erase();
    if (lines.length === 0) return;
    this.out.write(lines.map((l) => fit(l, width)).join('\n'));
    this.drawnLines = lines.length;
  }

  private lines(now: number): string[] {
    const secs = Math.max((now - this.startedAt) / 1000, 0.001);
    const finished = this.counts.done + this.counts.failed + this.counts.skipped;
    const pct = this.total.bytes > 0 ? Math.min(1, this.bytes / this.total.bytes) : this.total.files > 0 ? Math.min(1, finished / this.total.files) : 1;
    const width = 24;
    const filled = Math.round(pct * width);
    const bar = '[' + this.paint.green('#'.repeat(filled)) + '.'.repeat(width - filled) + ']';
    const rate = this.bytes / secs;
    const eta = rate > 0 && this.total.bytes > this.bytes ? `  ETA ${formatDuration(((this.total.bytes - this.bytes) / rate) * 1000)}` : '';
    const out = [
      `${bar} ${Math.round(pct * 100)}%  ${Math.min(finished, this.total.files)}/${this.total.files} files  ${formatBytes(this.bytes)}/${formatBytes(this.total.bytes)}  ${formatBytes(rate)}/s${eta}`,
      `done ${this.paint.green(String(this.counts.done))}  failed ${this.counts.failed ? this.paint.red(String(this.counts.failed)) : '0'}  skipped ${this.counts.skipped}  in flight ${this.inFlight.size}   ${this.paint.dim('(stop or Ctrl+C to stop)')}`,
    ];
    const flying = [...this.inFlight];
    for (const [p, action] of flying.slice(0, SHOWN_IN_FLIGHT)) out.push(`  ${arrow(action)} ${p}`);
    if (flying.length > SHOWN_IN_FLIGHT) out.push(`  … and ${flying.length - SHOWN_IN_FLIGHT} more`);
    return out;
  }
}

function arrow(action: string): string {
  return action.endsWith('upload') ? '↑' : action.endsWith('download') ? '↓' : '·';
}

/** Cuts a line to the terminal width without counting colour codes, so no line wraps. */
function fit(line: string, width: number): string {
  // eslint-disable-next-line no-control-regex
  const visible = line.replace(/\x1b\[[0-9;]*m/g, '');
  if (visible.length <= width) return line;
  return ellipsize(visible, width);
}
