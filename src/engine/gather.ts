// Everything known before planning: L from a stat walk, R from the listing, B from the manifest,
// and content hashes for exactly the files whose stat no longer matches B.
import path from 'node:path';
import type { BaseEntry, LocalFile, Mapping, PathState, RemoteObject } from '../core/types.js';
import { InvalidPathError, oneLine } from '../core/errors.js';
import { carryHashes, isMultipartEtag, isRacy, needsHash, remoteChange, remoteMd5, statEqual } from '../core/compare.js';
import { isFolderMarker, joinKey, joinLocal, keyToRelPath } from '../core/paths.js';
import { scanMapping } from '../local/scan.js';
import { makeFilter } from '../local/filter.js';
import type { Hasher } from '../local/hasher.js';
import type { HashTask } from '../local/hash-worker.js';
import { LIST_CHAINS, PARALLEL_LIST_MIN, type S3Store, type ListedObject } from '../remote/s3-store.js';
import { partSizeFor } from '../remote/etag.js';
import type { Manifest, StoredEntry } from '../manifest/manifest.js';
import type { EventStream } from './events.js';
import type { Settings } from './settings.js';
import { mapLimit } from './limit.js';
import { CAP_FROM, capHeapGrowth, restoreHeapGrowth } from './heap-growth.js';

export interface Gathered {
  states: PathState[];
  /** Keys or files that cannot be synced this run (invalid names, unreadable files): failed items. */
  problems: { key: string; path?: string; error: string }[];
  tracked: number[];
  /**
   * Per mapping: paths left out of `states` because L and R both still match B (GatherDeps
   * `dropUnchanged`); each is planned `nothing`.
   */
  unchanged: number[];
  localCount: number[];
  remoteCount: number[];
  hashed: number;
  /** Temp files of ours (paths from the root) that a killed run left behind. */
  temps: string[];
}

export interface GatherDeps {
  settings: Settings;
  store: S3Store;
  manifest: Manifest;
  hasher: Hasher;
  events: EventStream;
  signal: AbortSignal;
  /** False when the base belongs to another bucket and --force asked for a fresh start. */
  useBase: boolean;
  /** False: stat and listing only (manifest verify hashes on its own terms). Default true. */
  hash?: boolean;
  /**
   * True: paths unchanged on both sides get no state, only a count (see joinMapping). For runs
   * that need only what to do; views that list every path (the REPL, verify) leave it off.
   */
  dropUnchanged?: boolean;
}

function listMapping(d: GatherDeps, prefix: string, hints: string[], keep: ((o: ListedObject) => boolean) | undefined): Promise<ListedObject[]> {
  const onNote = (message: string): void => d.events.emit({ event: 'note', internal: true, message });
  const chains = Math.max(2, Math.min(d.settings.concurrency, LIST_CHAINS));
  const p = d.store.listAll(prefix, keep ? { signal: d.signal, hints, chains, onNote, keep } : { signal: d.signal, hints, chains, onNote });
  p.catch(() => undefined);
  return p;
}

/** The keys the manifest knew under a mapping last run: where its listing splits into ranges. */
function baseKeys(manifest: Manifest, m: Mapping): string[] {
  const keys: string[] = [];
  const prefixLen = m.local.length + 1;
  for (const p of manifest.pathsUnder(m.local)) keys.push(joinKey(m.remote, p.slice(prefixLen)));
  return keys;
}

/** Keeps a local name from becoming a key that could not come back as the same path. */
function localNameProblem(rel: string, key: string): string | undefined {
  if (/[\\\u0000-\u001f]/.test(rel)) return 'has a backslash or control character';
  if (Buffer.byteLength(key) > 1024) return 'makes a key longer than 1,024 bytes';
  return undefined;
}

export async function gather(d: GatherDeps): Promise<Gathered> {
  const { settings, manifest, events } = d;
  const filter = makeFilter(settings.include, settings.exclude);
  const t0 = Date.now();
  // Listing first: its requests are in flight while the synchronous walk runs. Its ranges come
  // from last run's keys; without enough of them (a first run) the walk goes first and the local
  // paths say where to split.
  const known: number[] = [];
  // Unchanged paths are counted as their page arrives, instead of each listed object being kept.
  const shortcuts = settings.mappings.map((m) => (d.dropUnchanged && d.useBase ? new Shortcut(m, manifest) : undefined));
  const keep = (i: number): ((o: ListedObject) => boolean) | undefined => {
    const sc = shortcuts[i];
    return sc && ((o) => sc.keep(o));
  };
  const listings: (Promise<ListedObject[]> | undefined)[] = settings.mappings.map((m, i) => {
    const hints = d.useBase ? baseKeys(manifest, m) : [];
    known[i] = hints.length;
    return hints.length >= PARALLEL_LIST_MIN ? listMapping(d, m.remote, hints, keep(i)) : undefined;
  });
  // A large tree is gathered under a capped heap growth: its listing is mostly the SDK's garbage
  // (every page parsed into objects and dropped), its hashing the workers' answers. The cap takes
  // effect at the next full GC, so it is set as soon as the size is known: from last run's
  // keys, else from the walk.
  let capped = known.reduce((n, k) => n + k, 0) >= CAP_FROM;
  if (capped) capHeapGrowth();

  const scans = settings.mappings.map((m) => scanMapping(settings.root, m.local, filter));
  // The listing's pages are handled only after this synchronous walk: the map is there for them.
  scans.forEach((sc, i) => shortcuts[i]?.walked(sc.files));
  // Local files without any base will all be hashed: the workers start while the listing runs.
  if (scans.some((sc, i) => sc.files.size > 0 && known[i] === 0)) d.hasher.warm();
  const listed = settings.mappings.map(
    (m, i) => listings[i] ?? listMapping(d, m.remote, [...scans[i]!.files.keys()].map((rel) => joinKey(m.remote, rel)), keep(i)),
  );
  const localFiles = scans.reduce((n, s) => n + s.files.size, 0);
  if (!capped && localFiles >= CAP_FROM) {
    capped = true;
    capHeapGrowth();
  }
  events.emit({ event: 'scan', phase: 'local', files: localFiles, durationMs: Date.now() - t0 });
  for (const [i, s] of scans.entries()) {
    const folder = settings.mappings[i]!.local;
    for (const rel of s.symlinks.filter(filter)) events.emit({ event: 'warning', path: joinLocal(folder, rel), message: 'symlink skipped (links are not followed)' });
    for (const e of s.errors) events.emit({ event: 'warning', path: joinLocal(folder, e.rel), message: e.error });
  }

  const t1 = Date.now();
  const remotes: (ListedObject[] | undefined)[] = await Promise.all(listed);
  const listedCount = remotes.reduce((n, r, i) => n + r!.length + (shortcuts[i]?.unchanged ?? 0), 0);
  events.emit({ event: 'scan', phase: 'remote', files: listedCount, durationMs: Date.now() - t1 });

  const out: Gathered = { states: [], problems: [], tracked: [], unchanged: [], localCount: [], remoteCount: [], hashed: 0, temps: [] };
  settings.mappings.forEach((m, i) => {
    out.temps.push(...scans[i]!.temps.map((rel) => joinLocal(m.local, rel)));
    joinMapping(m, i, scans[i]!.files, remotes[i]!, d.useBase ? manifest : undefined, filter, out, d.dropUnchanged === true, shortcuts[i]);
    // Joined: the listing need not sit through the hashing (the walk's map is emptied by the join).
    remotes[i] = undefined;
    dropUnknown(out, m, [...scans[i]!.errors.map((e) => e.rel), ...scans[i]!.symlinks]);
  });
  const hashing = d.hash !== false && (await hashWhatChanged(d, out));
  // Kept through the transfers that follow a large hash (the executor lifts it), not otherwise.
  if (capped && !hashing) restoreHeapGrowth();
  return out;
}

/**
 * Joins one mapping's walk, listing and base into path states, in the order the listing, the walk
 * and the base name them. With `dropUnchanged`, a path whose local stat and remote ETag both still
 * match its base (exactly what decide() plans as `nothing`, and what needs no hash and no HEAD)
 * gets no state at all, only a count in `out.unchanged`: on an unchanged tree that was the
 * biggest share of a run's memory (a state, a base copy and a plan item a path). The walk's map
 * is consumed: its entries are deleted as they are joined.
 */
export function joinMapping(
  m: Mapping,
  index: number,
  local: Map<string, LocalFile>,
  remote: readonly ListedObject[],
  manifest: Pick<Manifest, 'under' | 'pathsUnder' | 'get'> | undefined,
  filter: (rel: string) => boolean,
  out: Gathered,
  dropUnchanged = false,
  shortcut?: Shortcut,
): void {
  out.localCount[index] = local.size;
  // Objects the listing already counted as unchanged are valid, filtered keys like any other.
  const counted = shortcut?.unchanged ?? 0;
  let remoteCount = counted;
  const remoteByRel = new Map<string, ListedObject>();
  for (const o of remote) {
    if (isFolderMarker(o.key, o.size)) continue;
    let rel: string;
    try {
      rel = keyToRelPath(o.key, m.remote);
    } catch (err) {
      if (!filter(o.key.slice(m.remote.length))) continue;
      if (err instanceof InvalidPathError) out.problems.push({ key: o.key, error: err.message });
      else throw err;
      continue;
    }
    if (!filter(rel)) continue;
    remoteCount++;
    remoteByRel.set(rel, o);
  }
  out.remoteCount[index] = remoteCount;
  // A path whose local name cannot be synced gets no decision at all: its remote object and base
  // would otherwise read it as locally deleted.
  const refused = new Set<string>();
  for (const [rel, l] of local) {
    if (l === COUNTED) continue;
    const problem = localNameProblem(rel, joinKey(m.remote, rel));
    if (!problem) continue;
    out.problems.push({ key: joinKey(m.remote, rel), path: joinLocal(m.local, rel), error: `invalid path: local name ${JSON.stringify(rel)} ${problem}` });
    refused.add(rel);
  }
  for (const rel of refused) {
    local.delete(rel);
    remoteByRel.delete(rel);
  }

  let tracked = 0;
  let unchanged = counted;
  const bases = new Map<string, BaseEntry>();
  const prefixLen = m.local.length + 1;
  for (const [p, entry] of baseEntries(manifest, m.local, counted > 0 ? local : undefined)) {
    const rel = p.slice(prefixLen);
    // Counted from the listing: its base matched (key included), and it needs nothing more.
    if (entry === COUNTED_BASE) {
      tracked++;
      local.delete(rel);
      continue;
    }
    // A base recorded under another prefix says nothing about this key: ignore it rather than
    // read the object as deleted.
    if (entry.key !== joinKey(m.remote, rel) || !filter(rel)) continue;
    tracked++;
    if (refused.has(rel)) continue;
    if (dropUnchanged) {
      const l = local.get(rel);
      const r = remoteByRel.get(rel);
      if (l !== undefined && r !== undefined && bothUnchanged(l, r, entry)) {
        unchanged++;
        local.delete(rel);
        remoteByRel.delete(rel);
        continue;
      }
    }
    bases.set(rel, stripKey(entry));
  }
  out.tracked[index] = tracked;
  out.unchanged[index] = unchanged;

  const state = (rel: string, remote: RemoteObject | undefined, l: LocalFile | undefined, b: BaseEntry | undefined): PathState => {
    const s = newState(joinLocal(m.local, rel), joinKey(m.remote, rel), index, remote, l, b);
    if (l !== undefined) local.delete(rel);
    if (b !== undefined) bases.delete(rel);
    return s;
  };
  for (const [rel, o] of remoteByRel) {
    const l = local.get(rel);
    // Listed twice (a duplicate key) after being counted: counted once.
    if (l === COUNTED) continue;
    out.states.push(state(rel, { etag: o.etag, size: o.size, lastModified: o.lastModified }, l, bases.get(rel)));
  }
  remoteByRel.clear();
  for (const [rel, l] of local) {
    if (l === COUNTED) continue;
    out.states.push(state(rel, undefined, l, bases.get(rel)));
  }
  local.clear();
  for (const [rel, b] of bases) out.states.push(state(rel, undefined, undefined, b));
}

/**
 * One literal per combination of sides, rather than fields added after the object is made: V8
 * keeps added fields in a second object (~40 bytes a path of a large plan). The fields and their
 * order are those of assigning remote, local and base in turn.
 */
function newState(path: string, key: string, mapping: number, r: RemoteObject | undefined, l: LocalFile | undefined, b: BaseEntry | undefined): PathState {
  if (r !== undefined) {
    if (l !== undefined) return b !== undefined ? { path, key, mapping, remote: r, local: l, base: b } : { path, key, mapping, remote: r, local: l };
    return b !== undefined ? { path, key, mapping, remote: r, base: b } : { path, key, mapping, remote: r };
  }
  if (l !== undefined) return b !== undefined ? { path, key, mapping, local: l, base: b } : { path, key, mapping, local: l };
  return b !== undefined ? { path, key, mapping, base: b } : { path, key, mapping };
}

/** Stands in the walk's map for a file whose path was counted unchanged from the listing. */
const COUNTED: LocalFile = Object.freeze({ size: -1, mtimeNs: '', ino: -1 });
const COUNTED_BASE = Object.freeze({}) as StoredEntry;

/**
 * The base entries under a folder. With `local` holding COUNTED paths, their entries are not
 * decoded again (the listing's check read them already): keys are walked and only the others
 * are read.
 */
function* baseEntries(manifest: Pick<Manifest, 'under' | 'pathsUnder' | 'get'> | undefined, folder: string, local: Map<string, LocalFile> | undefined): Generator<[string, StoredEntry]> {
  if (!manifest) return;
  if (!local) {
    yield* manifest.under(folder);
    return;
  }
  const prefixLen = folder.length + 1;
  for (const p of manifest.pathsUnder(folder)) {
    if (local.get(p.slice(prefixLen)) === COUNTED) {
      yield [p, COUNTED_BASE];
      continue;
    }
    const entry = manifest.get(p);
    if (entry !== undefined) yield [p, entry];
  }
}

/**
 * The unchanged shortcut applied to the listing as it arrives: an object whose walked file and
 * base both match it (bothUnchanged, the base recorded under this very key) is counted and
 * dropped, and its file marked COUNTED in the walk's map, instead of being kept to the join.
 * What it cannot tell (no file walked yet, a name the join refuses) it leaves to the join.
 */
export class Shortcut {
  unchanged = 0;
  private local: Map<string, LocalFile> | undefined;

  constructor(
    private readonly m: Mapping,
    private readonly manifest: Pick<Manifest, 'get'>,
  ) {}

  walked(local: Map<string, LocalFile>): void {
    this.local = local;
  }

  keep(o: ListedObject): boolean {
    const local = this.local;
    if (local === undefined || !o.key.startsWith(this.m.remote)) return true;
    const rel = o.key.slice(this.m.remote.length);
    const l = local.get(rel);
    if (l === undefined) return true;
    // Listed again (a ranged listing fell back to a serial one): counted already.
    if (l === COUNTED) return false;
    if (localNameProblem(rel, o.key) !== undefined) return true;
    try {
      keyToRelPath(o.key, this.m.remote);
    } catch {
      return true;
    }
    const entry = this.manifest.get(joinLocal(this.m.local, rel));
    if (entry === undefined || entry.key !== joinKey(this.m.remote, rel) || !bothUnchanged(l, o, entry)) return true;
    local.set(rel, COUNTED);
    this.unchanged++;
    return false;
  }
}

/** decide()'s `unchanged/unchanged` row: the stat says L is B's file, the ETag that R is B's object. */
function bothUnchanged(l: LocalFile, r: ListedObject, b: StoredEntry): boolean {
  return statEqual(l, b) && !isRacy(l, b) && remoteChange(r, b) === 'unchanged';
}

/**
 * What lies under a folder the walk could not read, or behind a symlink it does not follow, is
 * unknown, not deleted: no decision is made for it (otherwise an unreadable or symlinked folder
 * would delete its files remotely, and a download would replace a link with a file).
 */
function dropUnknown(g: Gathered, m: Mapping, unreadable: string[]): void {
  if (unreadable.length === 0) return;
  // A set of paths and a walk up each state's folders: linear, where collectstatic --link can
  // leave a symlink for every file.
  const shadowed = new Set(unreadable.map((rel) => (rel === '' ? m.local : joinLocal(m.local, rel))));
  const isShadowed = (p: string): boolean => {
    for (let at = p.length; at > 0; at = p.lastIndexOf('/', at - 1)) if (shadowed.has(p.slice(0, at))) return true;
    return false;
  };
  g.states = g.states.filter((s) => !isShadowed(s.path));
}

/**
 * The base as the plan keeps it. The manifest's decoder hands out its strings as slices of one
 * string per entry that also holds the entry's field names and key (~300 characters), and a slice
 * keeps all of it alive: for every path of a large tree that was the biggest share of the heap.
 * Own copies of the strings kept (one for the MD5 that the ETag usually repeats) let it go:
 * ~35 MB less at 100k paths, for ~1 µs a path.
 */
function stripKey(e: StoredEntry): BaseEntry {
  const { local: l, remote: r } = e;
  const md5 = own(l.md5);
  const same = (s: string): string => (s === l.md5 ? md5 : own(s));
  return {
    local: { size: l.size, mtimeNs: own(l.mtimeNs), ino: l.ino, md5, xxh64: own(l.xxh64) },
    remote: { etag: same(r.etag), size: r.size, lastModified: r.lastModified, md5: same(r.md5) },
    recordedAtNs: own(e.recordedAtNs),
  };
}

/** A flat copy of a hex or decimal string (which is all the manifest holds here); others as they are. */
function own(s: string): string {
  return HEX_OR_DIGITS.test(s) ? Buffer.from(s, 'latin1').toString('latin1') : s;
}
const HEX_OR_DIGITS = /^[0-9a-f-]{1,64}$/;

/** Hashes files whose stat moved; reuses B's hashes for the rest. True: the heap's growth was capped for it. */
async function hashWhatChanged(d: GatherDeps, g: Gathered): Promise<boolean> {
  const t0 = Date.now();
  await fetchMultipartMd5s(d, g);
  const tasks: HashTask[] = [];
  // stateOf[i] is the state of tasks[i]: results come back with their task's index.
  const stateOf: PathState[] = [];
  for (const s of g.states) {
    if (!s.local) continue;
    if (s.base && !needsHash(s.local, s.base)) {
      s.local = carryHashes(s.local, s.base);
      continue;
    }
    const task: HashTask = { abs: path.join(d.settings.root, s.path), size: s.local.size };
    if (s.base && s.base.local.size === s.local.size) task.expectXxh64 = s.base.local.xxh64;
    if (s.remote && isMultipartEtag(s.remote.etag) && remoteMd5(s.remote, s.base) === undefined && s.remote.size === s.local.size) {
      task.multipartPartSize = s.remote.partSize ?? partSizeFor(s.local.size, d.settings.partSize);
    }
    tasks.push(task);
    stateOf.push(s);
  }
  if (tasks.length === 0) return false;
  // Many files to hash: most likely a first run, whose transfers follow (the executor lifts the cap).
  const capped = tasks.length >= CAP_FROM;
  if (capped) capHeapGrowth();
  const unreadable = new Map<number, string>();
  // Each result is applied as its batch arrives and then dropped: none of them is kept.
  await d.hasher.hashEach(tasks, (r, i) => {
    const s = stateOf[i]!;
    g.hashed++;
    if (r.error) {
      unreadable.set(i, r.error);
      return;
    }
    const was = s.local!;
    // One literal with every field in the usual case: fields added one by one afterwards put
    // each record's extra fields in a second object (V8's out-of-object properties).
    if (r.xxh64 !== undefined && r.md5 !== undefined && r.multipartEtag === undefined) {
      s.local = { size: was.size, mtimeNs: was.mtimeNs, ino: was.ino, xxh64: r.xxh64, md5: r.md5 };
      return;
    }
    // Not `...s.local`: in this loop V8 gives every spread copy a hidden class of its own.
    const l: LocalFile = { size: was.size, mtimeNs: was.mtimeNs, ino: was.ino };
    if (r.xxh64 !== undefined) l.xxh64 = r.xxh64;
    if (r.md5 !== undefined) l.md5 = r.md5;
    else if (s.base && r.xxh64 === s.base.local.xxh64) l.md5 = s.base.local.md5;
    if (r.multipartEtag !== undefined) l.multipartEtag = r.multipartEtag;
    s.local = l;
  }, d.signal);
  // Nothing hashes after this in a run: the workers' heaps need not sit through the transfers.
  await d.hasher.close();
  const results = tasks.length;
  tasks.length = 0;
  // Problems in the order of the tasks, whatever order the batches finished in.
  for (const i of [...unreadable.keys()].sort((a, b) => a - b)) {
    const s = stateOf[i]!;
    g.problems.push({ key: s.key, path: s.path, error: `cannot read ${s.path}: ${unreadable.get(i)!}` });
  }
  const dropped = new Set([...unreadable.keys()].map((i) => stateOf[i]!));
  // Without readable content nothing may be decided for a path: it leaves the plan.
  if (dropped.size > 0) g.states = g.states.filter((s) => !dropped.has(s));
  d.events.emit({ event: 'scan', phase: 'hash', files: results, durationMs: Date.now() - t0 });
  return capped;
}

/**
 * Listings carry no metadata: for a multipart object whose MD5 the base does not already know,
 * and which has a local counterpart to compare with, one HEAD reads x-amz-meta-md5 (and a second
 * one the part size, when the MD5 is not there).
 */
async function fetchMultipartMd5s(d: GatherDeps, g: Gathered): Promise<void> {
  const need = g.states.filter(
    (s) => s.local && s.remote && isMultipartEtag(s.remote.etag) && remoteMd5(s.remote, s.base) === undefined,
  );
  await mapLimit(need, d.settings.concurrency, async (s) => {
    try {
      const h = await d.store.head(s.key, d.signal);
      if (h?.md5 && h.etag === s.remote!.etag) {
        s.remote = { ...s.remote!, md5: h.md5 };
        return;
      }
      // No MD5 on the object (another tool uploaded it): its exact part size lets the local
      // multipart ETag be computed; servers that cannot tell leave our own part-size rule.
      const part = await d.store.headPart1(s.key, d.signal);
      if (part) s.remote = { ...s.remote!, partSize: part.partSize };
    } catch (err) {
      d.events.emit({ event: 'warning', key: s.key, message: `HEAD failed, content compared by ETag only: ${oneLine(err)}` });
    }
  });
}
