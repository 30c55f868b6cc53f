import type { SyncEvent } from '../engine/events.js';

export interface NdjsonRenderer {
  (e: SyncEvent): void;
  /** Writes what is buffered; the command calls it when it ends, whatever the outcome. */
  flush(): void;
}

const FLUSH_BYTES = 64 * 1024;
const FLUSH_MS = 100;

/**
 * `--json`: one object per line on stdout; internal progress events stay inside. Lines are
 * written in batches (64 KiB, or what came within 100 ms): stdout to a file or a pipe is a
 * synchronous write per call, and one per file event was 7% of the main thread of a first upload
 * of small files. A reader sees a line at most 100 ms late.
 */
export function ndjsonRenderer(out: NodeJS.WritableStream, redact: (s: string) => string): NdjsonRenderer {
  let buffered = '';
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (buffered === '') return;
    const text = buffered;
    buffered = '';
    out.write(text);
  };
  const render = (e: SyncEvent): void => {
    if ('internal' in e) return;
    buffered += redact(JSON.stringify(e)) + '\n';
    // The last events of a run go out at once: nothing waits on a timer after the summary.
    if (buffered.length >= FLUSH_BYTES || e.event === 'summary' || e.event === 'error') flush();
    else timer ??= setTimeout(flush, FLUSH_MS);
  };
  return Object.assign(render, { flush });
}
