// `manifest rebuild`: a new base from what both sides hold now, for a lost or damaged manifest
// (Unison's archive rebuild). A path gets a base only where local and remote hold the same bytes;
// everything else starts over as on a first run, so a rebuilt manifest can never cause a delete.
import fs from 'node:fs';
import path from 'node:path';
import { SafetyError, UsageError, oneLine } from '../core/errors.js';
import { sameContent } from '../core/compare.js';
import type { Hasher } from '../local/hasher.js';
import { makeFilter } from '../local/filter.js';
import { fsyncDirQuietly, fsyncPath } from '../local/fsync.js';
import type { S3Store } from '../remote/s3-store.js';
import { Manifest, profilePaths, type RemoteIdentity, type StoredEntry } from '../manifest/manifest.js';
import { RunLock } from '../manifest/lock.js';
import type { EventStream } from './events.js';
import { gather } from './gather.js';
import { entryFor, nowNs } from './records.js';
import { newRunId } from './run.js';
import type { Settings } from './settings.js';
import { isConsistent, throwIfAborted, verifyManifest } from './verify.js';

export type RebuildOutcome = 'recorded' | 'differs' | 'local-only' | 'remote-only';

export interface RebuildResult {
  runId: string;
  manifest: string;
  /** Where the replaced manifest was kept, when there was one. */
  oldManifest?: string;
  paths: { path: string; key: string; outcome: RebuildOutcome }[];
  counts: Record<RebuildOutcome, number>;
  /**
   * With --include/--exclude, old entries outside the filters, kept as they were: the rebuild
   * covers only the paths it compared.
   */
  carried: number;
  /** Files or keys that could not be compared (unreadable, invalid names): no base for them. */
  failed: { path?: string; key: string; error: string }[];
  hashed: number;
  generation: number;
  dryRun: boolean;
}

export interface RebuildDeps {
  settings: Settings;
  store: S3Store;
  identity: RemoteIdentity;
  hasher: Hasher;
  events: EventStream;
  signal: AbortSignal;
  now?: Date;
}

export async function rebuildManifest(d: RebuildDeps): Promise<RebuildResult> {
  const { settings: s } = d;
  const now = d.now ?? new Date();
  const runId = newRunId(now);
  const paths = profilePaths(s.manifestDir, s.profile);
  const file = paths.manifest;
  const lock = s.dryRun ? undefined : RunLock.acquire(paths.dir);
  try {
    const oldGeneration = await refuseHealthy(d);
    const res: RebuildResult = {
      runId, manifest: file, paths: [], failed: [], hashed: 0, carried: 0, dryRun: s.dryRun,
      counts: { recorded: 0, differs: 0, 'local-only': 0, 'remote-only': 0 },
      // Saved plans carry the generation they were made at: the new one must match none of them,
      // even when the old manifest was unreadable and its count unknown.
      generation: Math.max(oldGeneration + 1, now.getTime()),
    };

    // Read before anything else: a filtered rebuild that cannot keep the other paths' base must
    // stop before it has hashed the tree.
    const carried = await carriedOver(s, file);
    res.carried = carried.length;
    const scanStartedNs = nowNs();
    // No base (an absent file opens as an empty one, whatever state the old manifest is in):
    // gather hashes every local file, and HEADs multipart objects for their MD5.
    const none = Manifest.open(path.join(paths.dir, `.no-manifest-${runId}`), { readOnly: true });
    const g = await gather({ settings: s, store: d.store, manifest: none, hasher: d.hasher, events: d.events, signal: d.signal, useBase: false });
    throwIfAborted(d.signal);
    res.hashed = g.hashed;
    res.failed = g.problems;
    const entries: [string, StoredEntry][] = [];
    for (const st of [...g.states].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
      let outcome: RebuildOutcome;
      if (st.local && st.remote) {
        outcome = sameContent(st.local, st.remote, undefined) ? 'recorded' : 'differs';
        if (outcome === 'recorded') entries.push([st.path, entryFor(st.key, st.local, { ...st.remote, md5: st.local.md5! }, scanStartedNs)]);
      } else outcome = st.local ? 'local-only' : 'remote-only';
      res.counts[outcome]++;
      res.paths.push({ path: st.path, key: st.key, outcome });
    }
    if (s.dryRun) return res;
    entries.push(...carried);

    leftovers(file);
    const fresh = `${file}.rebuild-${runId}`;
    try {
      await writeManifest(fresh, entries, d.identity, res, now);
      throwIfAborted(d.signal);
      const kept = swap(fresh, file, `${file}.old-${runId}`);
      if (kept) res.oldManifest = kept;
    } finally {
      removeEnv(fresh);
    }
    return res;
  } finally {
    lock?.release();
  }
}

/**
 * Replacing a manifest that verify finds sound would only throw away what it knows, and one bound
 * to another bucket may be someone's good base: both need --force. Returns the old generation.
 */
async function refuseHealthy(d: RebuildDeps): Promise<number> {
  const v = await verifyManifest({ ...d, deep: false });
  throwIfAborted(d.signal);
  if (!v.exists || v.entries === 0 || d.settings.force) return v.generation;
  const other = v.problems.find((p) => p.problem === 'identity');
  if (other) throw new SafetyError(`not rebuilt: ${other.message.replace(/; remote halves not checked$/, '')}; use --force to replace it with a base for this bucket`);
  if (isConsistent(v)) {
    throw new SafetyError(`not rebuilt: the manifest (${v.entries} entries) is consistent with both sides (\`storage-sync manifest verify\` finds no problem); use --force to rebuild it anyway`);
  }
  // A path that could not be checked (behind a symlink, in an unreadable folder) is no evidence
  // against the base, and a rebuild would turn every pending edit into a conflict.
  if (!v.problems.some((p) => p.kind === 'inconsistent')) {
    const n = v.problems.filter((p) => p.kind === 'failed').length;
    throw new SafetyError(
      `not rebuilt: the manifest (${v.entries} entries) has no inconsistent entry; ${n} path${n === 1 ? '' : 's'} could not be checked ` +
        '(`storage-sync manifest verify` lists them); use --force to rebuild it anyway',
    );
  }
  return v.generation;
}

/**
 * A rebuild narrowed by --include/--exclude replaces the base of the paths it compared only.
 * Dropping the others' base would turn a delete made since the last sync into a new file on the
 * other side, which a rebuild must never cause; so their old entries are carried over as they
 * are, and a rebuild that cannot read them refuses rather than drop them.
 */
async function carriedOver(s: Settings, file: string): Promise<[string, StoredEntry][]> {
  if ((s.include.length === 0 && s.exclude.length === 0) || !fs.existsSync(file)) return [];
  const refuse = (err: unknown): never => {
    throw new UsageError(
      `not rebuilt: with --include/--exclude the other paths keep their base from the old manifest, which cannot be read (${oneLine(err)}); rebuild without filters`,
      { cause: err },
    );
  };
  let old: Manifest | undefined;
  try {
    old = Manifest.open(file, { readOnly: true });
  } catch (err) {
    refuse(err);
  }
  const filter = makeFilter(s.include, s.exclude);
  const kept: [string, StoredEntry][] = [];
  try {
    for (const [p, e] of old!.all()) {
      const m = s.mappings.find((x) => p.startsWith(x.local + '/'));
      if (m && filter(p.slice(m.local.length + 1))) continue;
      kept.push([p, e]);
    }
  } catch (err) {
    refuse(err);
  } finally {
    await old!.close();
  }
  return kept;
}

/** A rebuild killed before its swap leaves its new environment behind; it was never in use. */
function leftovers(file: string): void {
  const dir = path.dirname(file);
  const prefix = path.basename(file) + '.rebuild-';
  for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    if (name.startsWith(prefix)) fs.rmSync(path.join(dir, name), { force: true });
  }
}

async function writeManifest(file: string, entries: [string, StoredEntry][], identity: RemoteIdentity, res: RebuildResult, now: Date): Promise<void> {
  const m = Manifest.open(file, { readOnly: false });
  try {
    for (const [p, e] of entries) m.put(p, e);
    await m.flush();
    await m.bindRemote(identity, false);
    await m.setGeneration(res.generation);
    await m.setLastRun({
      runId: res.runId, startedAt: now.toISOString(), finishedAt: new Date().toISOString(), mode: 'rebuild',
      exitCode: res.failed.length > 0 ? 1 : 0, summary: { ...res.counts, failed: res.failed.length, hashed: res.hashed },
    });
  } finally {
    await m.close();
  }
  // The swap below must not publish a file whose pages are still only in the page cache.
  fsyncPath(file);
}

/**
 * Puts the new manifest in place. The old one gets a second name first (a hard link), then one
 * rename replaces it: at every moment `manifest.lmdb` is the whole old base or the whole new one.
 * Where links are not supported the old one is moved aside first; a crash between the two renames
 * leaves no manifest, which the next sync treats as a first run (no deletes).
 */
function swap(fresh: string, file: string, keepAs: string): string | undefined {
  const had = fs.existsSync(file);
  if (had) {
    try {
      fs.linkSync(file, keepAs);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw err;
      fs.renameSync(file, keepAs);
    }
  }
  fs.renameSync(fresh, file);
  // LMDB's lock file describes the environment it was made with; the next opener makes a new one.
  fs.rmSync(`${file}-lock`, { force: true });
  // Some file systems refuse fsync on a folder; the rename itself has happened.
  fsyncDirQuietly(path.dirname(file));
  return had ? keepAs : undefined;
}

function removeEnv(file: string): void {
  fs.rmSync(file, { force: true });
  fs.rmSync(`${file}-lock`, { force: true });
}

