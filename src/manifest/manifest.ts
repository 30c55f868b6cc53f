// The base (B) of the decision table, kept in one LMDB environment per profile.
// Written only from executed results (engine/executor.ts), never from a plan.
import fs from 'node:fs';
import path from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { BaseEntry } from '../core/types.js';
import { SafetyError, SyncError, UsageError, oneLine } from '../core/errors.js';

export const FORMAT_VERSION = 1;

/** What the manifest stores per path: the base plus the key it was synced with. */
export interface StoredEntry extends BaseEntry {
  key: string;
}

export interface RunRecord {
  runId: string;
  startedAt: string;
  finishedAt: string;
  mode: string;
  exitCode: number;
  summary: Record<string, unknown>;
}

/** Identity of the remote side the base describes; a base is meaningless against another bucket. */
export interface RemoteIdentity {
  endpoint: string;
  bucket: string;
}

const ENTRY = 'entries';
const META = 'meta';

export class Manifest {
  private constructor(
    private readonly env: RootDatabase | undefined,
    private readonly entries: Database<StoredEntry, string> | undefined,
    private readonly meta: Database<unknown, string> | undefined,
    readonly readOnly: boolean,
  ) {}

  private lastWrite: Promise<unknown> = Promise.resolve();
  private failure: unknown;

  /**
   * Opens the manifest at `file`. Read-only mode (dry runs, status) never creates anything: a
   * missing manifest reads as an empty base.
   */
  static open(file: string, opts: { readOnly: boolean }): Manifest {
    const exists = fs.existsSync(file);
    if (!exists && opts.readOnly) return new Manifest(undefined, undefined, undefined, true);
    if (!exists) fs.mkdirSync(path.dirname(file), { recursive: true });
    let env: RootDatabase;
    try {
      env = open({ path: file, compression: false, readOnly: opts.readOnly });
    } catch (err) {
      throw new UsageError(`cannot open manifest ${file}: ${(err as Error).message}`, { cause: err });
    }
    const entries = env.openDB<StoredEntry, string>({ name: ENTRY });
    const meta = env.openDB<unknown, string>({ name: META });
    const m = new Manifest(env, entries, meta, opts.readOnly);
    m.checkFormat(file, exists);
    return m;
  }

  private checkFormat(file: string, existed: boolean): void {
    const v = this.meta?.get('format');
    if (v === undefined) {
      if (existed && this.entries && this.entries.getKeysCount() > 0) {
        throw new UsageError(`manifest ${file} has entries but no format version; move it away to rebuild`);
      }
      if (!this.readOnly) this.meta?.putSync('format', FORMAT_VERSION);
      return;
    }
    if (v !== FORMAT_VERSION) {
      throw new UsageError(`manifest ${file} has format ${String(v)}, this version reads ${FORMAT_VERSION}`);
    }
  }

  /**
   * Binds the manifest to one bucket. A base recorded against another bucket would read every
   * object as deleted, so that is refused unless `force` (which then starts from an empty base).
   */
  checkRemote(id: RemoteIdentity, force: boolean): 'ok' | 'rebased' {
    const stored = this.meta?.get('remote') as RemoteIdentity | undefined;
    if (!stored || (stored.endpoint === id.endpoint && stored.bucket === id.bucket)) return 'ok';
    if (!force) {
      throw new SafetyError(
        `this manifest tracks bucket "${stored.bucket}" at ${stored.endpoint}, not "${id.bucket}" at ${id.endpoint}; ` +
          'use another --profile, or --force to start a fresh base',
      );
    }
    return 'rebased';
  }

  /** Records which bucket the base describes; called once a run starts changing things. */
  async bindRemote(id: RemoteIdentity, rebase: boolean): Promise<void> {
    if (!this.env || this.readOnly) return;
    if (rebase) await this.entries!.clearAsync();
    await this.meta!.put('remote', id);
  }

  get(p: string): StoredEntry | undefined {
    return this.entries?.get(p);
  }

  /** All entries whose path lies under `folder` (`media` → `media/…`), in byte order. */
  *under(folder: string): Generator<[string, StoredEntry]> {
    if (!this.entries) return;
    const start = folder + '/';
    const end = folder + '0'; // '0' is the code point after '/': the end of the `folder/` range
    for (const { key, value } of this.entries.getRange({ start, end })) yield [key, value];
  }

  /** The paths under `folder` in byte order, without decoding their entries. */
  *pathsUnder(folder: string): Generator<string> {
    if (!this.entries) return;
    yield* this.entries.getKeys({ start: folder + '/', end: folder + '0' });
  }

  *all(): Generator<[string, StoredEntry]> {
    if (!this.entries) return;
    for (const { key, value } of this.entries.getRange({})) yield [key, value];
  }

  count(): number {
    return this.entries?.getKeysCount() ?? 0;
  }

  /**
   * Queues a write. lmdb-js commits the writes queued together in one transaction, so items
   * do not wait on one fsync each; `flush()` (and `close()`) wait for them and report a failure.
   * A write lost to a crash costs only a re-hash: the next run finds both sides equal and
   * records the path again.
   */
  put(p: string, entry: StoredEntry): void {
    this.track(this.writable().put(p, entry));
  }

  remove(p: string): void {
    this.track(this.writable().remove(p));
  }

  private track(w: Promise<boolean>): void {
    w.catch((err: unknown) => {
      this.failure ??= err;
    });
    this.lastWrite = w;
  }

  async flush(): Promise<void> {
    await this.lastWrite.catch(() => undefined);
    if (this.failure) throw new SyncError(`manifest write failed: ${oneLine(this.failure)}`, { cause: this.failure });
  }

  /** Bumped by every run that executes: a saved plan made at another generation is stale. */
  generation(): number {
    return (this.meta?.get('generation') as number | undefined) ?? 0;
  }

  async bumpGeneration(): Promise<number> {
    const next = this.generation() + 1;
    await this.meta!.put('generation', next);
    return next;
  }

  lastRun(): RunRecord | undefined {
    return this.meta?.get('lastRun') as RunRecord | undefined;
  }

  async setLastRun(r: RunRecord): Promise<void> {
    if (this.meta && !this.readOnly) await this.meta.put('lastRun', r);
  }

  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      await this.env?.close();
    }
  }

  private writable(): Database<StoredEntry, string> {
    if (!this.entries || this.readOnly) throw new Error('manifest opened read-only');
    return this.entries;
  }
}

/** Keeps a profile name usable as one folder name whatever it contains. */
export function profileDirName(profile: string): string {
  if (profile === '.' || profile === '..') return encodeURIComponent(profile).replace(/\./g, '%2E');
  return profile.replace(/[^A-Za-z0-9._-]/g, (c) => encodeURIComponent(c).replace(/[!'()*]/g, (x) => '%' + x.charCodeAt(0).toString(16).toUpperCase()));
}

export interface ProfilePaths {
  dir: string;
  manifest: string;
  plans: string;
  trash: string;
  logs: string;
}

export function profilePaths(manifestDir: string, profile: string): ProfilePaths {
  const dir = path.join(manifestDir, profileDirName(profile));
  return {
    dir,
    manifest: path.join(dir, 'manifest.lmdb'),
    plans: path.join(dir, 'plans'),
    trash: path.join(dir, 'trash'),
    logs: path.join(dir, 'logs'),
  };
}
