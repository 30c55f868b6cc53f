// `manifest verify`: checks the base against both sides and changes nothing (git fsck for B).
// Two kinds of findings: a *pending* change is work the next sync will do (a side moved on since
// B); an *inconsistent* base would make a sync decide wrongly (skip a changed file, trust a
// malformed entry, read another bucket's objects as deleted). Only the second fails the check.
import fs from 'node:fs';
import path from 'node:path';
import type { Mapping, PathState } from '../core/types.js';
import { InterruptedError, oneLine } from '../core/errors.js';
import { isMultipartEtag, isRacy, normalizeEtag, remoteChange, statEqual } from '../core/compare.js';
import { joinKey } from '../core/paths.js';
import { makeFilter } from '../local/filter.js';
import type { Hasher } from '../local/hasher.js';
import type { S3Store } from '../remote/s3-store.js';
import { Manifest, profilePaths, type RemoteIdentity, type StoredEntry } from '../manifest/manifest.js';
import { lmdbFileProblem } from '../manifest/lmdb-check.js';
import { EventStream } from './events.js';
import { gather } from './gather.js';
import { mapLimit } from './limit.js';
import type { Settings } from './settings.js';

/** inconsistent: the base is wrong; failed: a path could not be checked; pending: sync work. */
export type VerifyKind = 'inconsistent' | 'failed' | 'pending';

export interface VerifyProblem {
  kind: VerifyKind;
  problem: string;
  path?: string;
  key?: string;
  message: string;
}

export interface VerifyResult {
  /** False when there is no manifest at all (nothing to check: the next sync is a first run). */
  exists: boolean;
  manifest: string;
  problems: VerifyProblem[];
  /** Entries stored in the manifest. */
  entries: number;
  /** Entries in scope (under a mapping, with the mapping's key, not excluded) that were checked. */
  checked: number;
  hashed: number;
  untrackedLocal: number;
  untrackedRemote: number;
  generation: number;
}

export interface VerifyDeps {
  settings: Settings;
  store: S3Store;
  identity: RemoteIdentity;
  hasher: Hasher;
  signal: AbortSignal;
  /** Rehash every tracked file, and HEAD multipart objects for their recorded MD5. */
  deep: boolean;
}

const HEX32 = /^[0-9a-f]{32}$/i;
const HEX16 = /^[0-9a-f]{16}$/i;
const DECIMAL = /^\d+$/;

/** What is wrong with a stored value as a base entry, or undefined when it is well-formed. */
export function malformed(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return `not an entry (${value === null ? 'null' : typeof value})`;
  const e = value as Partial<StoredEntry>;
  if (typeof e.key !== 'string' || e.key === '') return 'no key';
  const l = e.local as Partial<StoredEntry['local']> | undefined;
  const r = e.remote as Partial<StoredEntry['remote']> | undefined;
  if (typeof l !== 'object' || l === null) return 'no local half';
  if (typeof r !== 'object' || r === null) return 'no remote half';
  if (!Number.isSafeInteger(l.size) || l.size! < 0) return 'local size is not a size';
  if (typeof l.mtimeNs !== 'string' || !DECIMAL.test(l.mtimeNs)) return 'local mtime is not a number of nanoseconds';
  if (!Number.isSafeInteger(l.ino)) return 'local inode is not a number';
  if (typeof l.md5 !== 'string' || !HEX32.test(l.md5)) return 'local MD5 is not 32 hex digits';
  if (typeof l.xxh64 !== 'string' || !HEX16.test(l.xxh64)) return 'local xxh64 is not 16 hex digits';
  if (typeof r.etag !== 'string' || normalizeEtag(r.etag) === '') return 'remote ETag is empty';
  if (!Number.isSafeInteger(r.size) || r.size! < 0) return 'remote size is not a size';
  if (typeof r.lastModified !== 'number' || !Number.isFinite(r.lastModified)) return 'remote LastModified is not a time';
  if (typeof r.md5 !== 'string' || !HEX32.test(r.md5)) return 'remote MD5 is not 32 hex digits';
  if (typeof e.recordedAtNs !== 'string' || !DECIMAL.test(e.recordedAtNs)) return 'recordedAtNs is not a number of nanoseconds';
  return undefined;
}

/**
 * B records a moment when both sides held the same bytes: its halves must agree with each other,
 * and a single-part ETag is the MD5 itself.
 */
export function selfMismatch(e: StoredEntry): string | undefined {
  if (e.local.size !== e.remote.size) return `local size ${e.local.size} and remote size ${e.remote.size} differ`;
  if (e.local.md5.toLowerCase() !== e.remote.md5.toLowerCase()) return 'local and remote MD5 differ';
  const etag = normalizeEtag(e.remote.etag);
  if (!isMultipartEtag(etag) && HEX32.test(etag) && etag !== e.remote.md5.toLowerCase()) {
    return `single-part ETag ${etag} is not the recorded MD5 ${e.remote.md5}`;
  }
  return undefined;
}

function mappingOf(mappings: Mapping[], p: string): number {
  return mappings.findIndex((m) => p.startsWith(m.local + '/'));
}

export async function verifyManifest(d: VerifyDeps): Promise<VerifyResult> {
  const { settings: s } = d;
  const file = profilePaths(s.manifestDir, s.profile).manifest;
  const res: VerifyResult = { exists: fs.existsSync(file), manifest: file, problems: [], entries: 0, checked: 0, hashed: 0, untrackedLocal: 0, untrackedRemote: 0, generation: 0 };
  if (!res.exists) return res;
  const add = (p: VerifyProblem): void => {
    res.problems.push(p);
  };

  const damage = lmdbFileProblem(file);
  if (damage) {
    add({ kind: 'inconsistent', problem: 'format', message: `manifest ${file} ${damage}` });
    return res;
  }
  let manifest: Manifest;
  try {
    manifest = Manifest.open(file, { readOnly: true });
  } catch (err) {
    add({ kind: 'inconsistent', problem: 'format', message: oneLine(err) });
    return res;
  }
  try {
    res.generation = manifest.generation();
    const bound = manifest.boundRemote();
    let remoteComparable = true;
    const tracked = new Map<string, StoredEntry>();
    const filter = makeFilter(s.include, s.exclude);
    for (const raw of manifest.rawEntries()) {
      res.entries++;
      const p = typeof raw.path === 'string' ? raw.path : undefined;
      const where = p ?? JSON.stringify(raw.path);
      if (raw.error !== undefined || !p) {
        add({ kind: 'inconsistent', problem: 'malformed', path: where, message: raw.error ? `entry cannot be decoded: ${raw.error}` : 'entry has a path that is not a string' });
        continue;
      }
      const bad = malformed(raw.value);
      if (bad) {
        add({ kind: 'inconsistent', problem: 'malformed', path: p, message: `malformed entry: ${bad}` });
        continue;
      }
      const e = raw.value as StoredEntry;
      const mi = mappingOf(s.mappings, p);
      if (mi < 0) {
        add({ kind: 'inconsistent', problem: 'outside-mappings', path: p, key: e.key, message: 'entry lies under no mapped folder (the mappings changed?); a sync ignores it' });
        continue;
      }
      const m = s.mappings[mi]!;
      const rel = p.slice(m.local.length + 1);
      if (!filter(rel)) continue;
      if (e.key !== joinKey(m.remote, rel)) {
        add({ kind: 'inconsistent', problem: 'key-mismatch', path: p, key: e.key, message: `entry was synced with key ${e.key}, the mapping now gives ${joinKey(m.remote, rel)}; a sync ignores it` });
        continue;
      }
      const self = selfMismatch(e);
      if (self) {
        add({ kind: 'inconsistent', problem: 'base-mismatch', path: p, key: e.key, message: `entry contradicts itself: ${self}` });
        continue;
      }
      tracked.set(p, e);
    }
    if (bound && (bound.endpoint !== d.identity.endpoint || bound.bucket !== d.identity.bucket)) {
      remoteComparable = false;
      add({ kind: 'inconsistent', problem: 'identity', message: `manifest tracks bucket "${bound.bucket}" at ${bound.endpoint}, not "${d.identity.bucket}" at ${d.identity.endpoint}; remote halves not checked` });
    } else if (!bound && res.entries > 0) {
      add({ kind: 'pending', problem: 'unbound', message: 'manifest is not bound to a bucket yet; the next sync binds it' });
    }

    await checkSides(d, manifest, tracked, remoteComparable, res, add);
  } finally {
    await manifest.close();
  }
  res.problems.sort((a, b) => (a.path ?? '').localeCompare(b.path ?? '') || a.problem.localeCompare(b.problem));
  return res;
}

async function checkSides(
  d: VerifyDeps,
  manifest: Manifest,
  tracked: Map<string, StoredEntry>,
  remoteComparable: boolean,
  res: VerifyResult,
  add: (p: VerifyProblem) => void,
): Promise<void> {
  // The sync's own scan and listing, without its hashing: which files to hash is verify's call.
  const events = new EventStream();
  // Folders the walk could not read and symlinks it does not follow: gather leaves what lies
  // under them out, which must not read as deleted here either.
  const unknown = new Map<string, string>();
  events.on((e) => {
    if (e.event === 'warning' && e.path) unknown.set(e.path, e.message);
  });
  const g = await gather({ settings: d.settings, store: d.store, manifest, hasher: d.hasher, events, signal: d.signal, useBase: false, hash: false });
  throwIfAborted(d.signal);
  for (const p of g.problems) if (p.path) unknown.set(p.path, p.error);
  const byPath = new Map<string, PathState>(g.states.map((st) => [st.path, st]));
  for (const st of g.states) {
    if (tracked.has(st.path)) continue;
    if (st.local) res.untrackedLocal++;
    if (st.remote) res.untrackedRemote++;
  }
  // A walk up the path's folders, not a scan of the list: collectstatic --link can leave a
  // symlink for every file.
  const shadow = (p: string): string | undefined => {
    for (let at = p.length; at > 0; at = p.lastIndexOf('/', at - 1)) {
      const why = unknown.get(p.slice(0, at));
      if (why !== undefined) return why;
    }
    return undefined;
  };

  const toHash: { path: string; entry: StoredEntry; abs: string; size: number; statSame: boolean }[] = [];
  const heads: { path: string; entry: StoredEntry }[] = [];
  for (const [p, e] of tracked) {
    res.checked++;
    const st = byPath.get(p);
    const why = st ? undefined : shadow(p);
    if (why !== undefined) {
      add({ kind: 'failed', problem: 'unchecked', path: p, key: e.key, message: `not checked: ${why}` });
      continue;
    }
    const local = st?.local;
    const base = { local: e.local, remote: e.remote, recordedAtNs: e.recordedAtNs };
    if (!local) add({ kind: 'pending', problem: 'local-deleted', path: p, key: e.key, message: 'local file is gone since the last sync' });
    else {
      // A racily-clean stat is rehashed by every sync anyway: only a trusted stat can mislead it.
      const statSame = statEqual(local, base) && !isRacy(local, base);
      if (d.deep) toHash.push({ path: p, entry: e, abs: path.join(d.settings.root, p), size: local.size, statSame });
      else if (!statSame) add({ kind: 'pending', problem: 'local-changed', path: p, key: e.key, message: 'size, mtime or inode differ from the manifest; a sync rehashes it' });
    }
    if (!remoteComparable) continue;
    const remote = st?.remote;
    const rc = remoteChange(remote, base);
    if (rc === 'deleted') add({ kind: 'pending', problem: 'remote-deleted', path: p, key: e.key, message: 'remote object is gone since the last sync' });
    else if (rc === 'changed') {
      add({ kind: 'pending', problem: 'remote-changed', path: p, key: e.key, message: `remote object changed since the last sync (ETag ${remote!.etag}, ${remote!.size} bytes; manifest has ${e.remote.etag}, ${e.remote.size} bytes)` });
    } else if (d.deep && isMultipartEtag(e.remote.etag)) heads.push({ path: p, entry: e });
  }

  if (toHash.length > 0) {
    const results = await d.hasher.hashMany(toHash.map((t) => ({ abs: t.abs, size: t.size })), undefined, d.signal);
    res.hashed += results.length;
    results.forEach((r, i) => {
      const t = toHash[i]!;
      const e = t.entry;
      if (r.error) {
        add({ kind: 'failed', problem: 'unreadable', path: t.path, key: e.key, message: `cannot read: ${r.error}` });
        return;
      }
      const md5Same = r.md5 === e.local.md5.toLowerCase();
      const xxhSame = r.xxh64 === e.local.xxh64.toLowerCase();
      if (md5Same !== xxhSame) {
        add({ kind: 'inconsistent', problem: 'hash-mismatch', path: t.path, key: e.key, message: `the file's ${md5Same ? 'MD5' : 'xxh64'} matches the manifest but its ${md5Same ? 'xxh64' : 'MD5'} does not: the entry is damaged` });
      } else if (!md5Same && t.statSame) {
        add({ kind: 'inconsistent', problem: 'content-differs', path: t.path, key: e.key, message: 'content differs from the manifest although size, mtime and inode match: a sync would skip this file' });
      } else if (!md5Same) {
        add({ kind: 'pending', problem: 'local-changed', path: t.path, key: e.key, message: 'content changed since the last sync' });
      } else if (!t.statSame) {
        add({ kind: 'pending', problem: 'local-touched', path: t.path, key: e.key, message: 'stat moved but the content is unchanged; a sync refreshes the stat' });
      }
    });
  }

  // A multipart ETag does not show the MD5; the object's x-amz-meta-md5 (our uploads set it) does.
  await mapLimit(heads, d.settings.concurrency, async ({ path: p, entry: e }) => {
    try {
      const h = await d.store.head(e.key, d.signal);
      if (!h || normalizeEtag(h.etag) !== normalizeEtag(e.remote.etag) || !h.md5) return;
      if (h.md5 !== e.remote.md5.toLowerCase()) {
        add({ kind: 'inconsistent', problem: 'remote-md5-mismatch', path: p, key: e.key, message: `object's x-amz-meta-md5 ${h.md5} is not the recorded MD5 ${e.remote.md5} for the same ETag` });
      }
    } catch (err) {
      if (d.signal.aborted) return;
      add({ kind: 'failed', problem: 'unchecked', path: p, key: e.key, message: `HEAD failed: ${oneLine(err)}` });
    }
  }, d.signal);
  throwIfAborted(d.signal);
}

export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new InterruptedError(signal.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT');
}

/** Whether the base may be trusted: no inconsistent entry and nothing that could not be checked. */
export function isConsistent(r: VerifyResult): boolean {
  return !r.problems.some((p) => p.kind !== 'pending');
}
