import type { SyncEvent } from '../engine/events.js';

/** `--json`: one object per line on stdout; internal progress events stay inside. */
export function ndjsonRenderer(out: NodeJS.WritableStream, redact: (s: string) => string): (e: SyncEvent) => void {
  return (e) => {
    if ('internal' in e) return;
    out.write(redact(JSON.stringify(e)) + '\n');
  };
}
