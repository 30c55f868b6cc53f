// One event stream per run. The NDJSON output, the progress bar, the plain lines and the log file
// are readers of it; the engine never prints.
import type { Action, Mode, Reason } from '../core/types.js';

export interface Summary {
  mode: Mode;
  dryRun: boolean;
  uploaded: number;
  downloaded: number;
  deletedRemote: number;
  deletedLocal: number;
  conflicts: number;
  recorded: number;
  unchanged: number;
  failed: number;
  skipped: number;
  hashed: number;
  bytesUp: number;
  bytesDown: number;
  durationMs: number;
}

export type FileStatus = 'done' | 'failed' | 'skipped';

/** Events of the contract (cli-contract.md) plus a few extensions; `internal` ones are not in --json. */
export type SyncEvent =
  | { event: 'start'; runId: string; mode: Mode; dryRun: boolean; profile: string; bucket: string }
  | { event: 'scan'; phase: 'local' | 'remote' | 'hash' | 'plan'; files: number; durationMs: number }
  | { event: 'warning'; path?: string; key?: string; message: string }
  | { event: 'item'; path?: string; key: string; action: Action; reason: Reason; bytes: number; rule?: string }
  | { event: 'file'; path?: string; key: string; action: Action | 'invalid'; status: FileStatus; bytes: number; error?: string }
  | ({ event: 'summary' } & Summary)
  | { event: 'error'; exitCode: number; message: string }
  | { event: 'plan-saved'; file: string; items: number }
  | InternalEvent;

export type InternalEvent =
  | { event: 'hash-progress'; internal: true; done: number; total: number; bytes: number }
  | { event: 'exec-start'; internal: true; files: number; bytes: number }
  | { event: 'transfer-start'; internal: true; path: string; bytes: number }
  | { event: 'transfer-bytes'; internal: true; path: string; bytes: number }
  | { event: 'transfer-end'; internal: true; path: string }
  /** How the engine went about something, for --log-level debug (e.g. a serial listing fallback). */
  | { event: 'note'; internal: true; message: string };

export type Listener = (e: SyncEvent) => void;

export class EventStream {
  private readonly listeners: Listener[] = [];

  on(l: Listener): () => void {
    this.listeners.push(l);
    return () => {
      const i = this.listeners.indexOf(l);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  emit(e: SyncEvent): void {
    for (const l of this.listeners) l(e);
  }
}

export function emptySummary(mode: Mode, dryRun: boolean): Summary {
  return {
    mode,
    dryRun,
    uploaded: 0,
    downloaded: 0,
    deletedRemote: 0,
    deletedLocal: 0,
    conflicts: 0,
    recorded: 0,
    unchanged: 0,
    failed: 0,
    skipped: 0,
    hashed: 0,
    bytesUp: 0,
    bytesDown: 0,
    durationMs: 0,
  };
}

/** Replaces every occurrence of a secret in a string; applied to everything that leaves the process. */
export function makeRedactor(secrets: string[]): (s: string) => string {
  const live = secrets.filter((s) => s.length >= 4);
  if (live.length === 0) return (s) => s;
  return (s) => {
    let out = s;
    for (const secret of live) out = out.split(secret).join('***');
    return out;
  };
}
