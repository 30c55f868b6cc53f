// One error class per category; the CLI maps each to its exit code and a one-line message
// (cli/exit.ts). The original error, when there is one, is kept as `cause` and only shown with
// `--log-level debug`.

export class SyncError extends Error {
  readonly exitCode: number = 1;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad flags, bad config, bad plan file: nothing was changed. Exit 2. */
export class UsageError extends SyncError {
  override readonly exitCode = 2;
}

/** Missing or rejected credentials, unknown bucket or endpoint. Exit 2. */
export class CredentialsError extends SyncError {
  override readonly exitCode = 2;
}

/** Delete guard, empty-side guard, stale plan, lock held: refused before any change. Exit 3. */
export class SafetyError extends SyncError {
  override readonly exitCode = 3;
}

/** SIGINT (130) or SIGTERM (143): in-flight work stopped cleanly. */
export class InterruptedError extends SyncError {
  override readonly exitCode: number;
  constructor(readonly signal: 'SIGINT' | 'SIGTERM') {
    super(`interrupted by ${signal}`);
    this.exitCode = signal === 'SIGINT' ? 130 : 143;
  }
}

/** A per-item failure: reported on that item; the rest of the run carries on. */
export class ItemError extends SyncError {}

/** A remote key or local name that cannot map to a path inside the mapped folder. */
export class InvalidPathError extends ItemError {
  constructor(readonly key: string, why: string) {
    super(`invalid path: ${JSON.stringify(key)} ${why}`);
  }
}

/** One line, no stack: what users see for any error. */
export function oneLine(err: unknown): string {
  const msg = err instanceof Error ? err.message || err.name : String(err);
  return msg.replace(/\s*\n\s*/g, ' ').trim();
}
