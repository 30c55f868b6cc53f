// The three states of a path (L, R, B) and the plan items the decision table produces.
// Nothing in core/ touches the file system, the network, LMDB or workers.

export type Mode = 'two-way' | 'upload' | 'download';
export const MODES: readonly Mode[] = ['two-way', 'upload', 'download'];

export type ConflictPolicy = 'remote' | 'local' | 'newer' | 'keep-both';
export const CONFLICT_POLICIES: readonly ConflictPolicy[] = ['remote', 'local', 'newer', 'keep-both'];

/** A local folder (relative to the project root, POSIX separators) paired with a key prefix. */
export interface Mapping {
  local: string;
  remote: string;
}

/** L: the local file as the scanner saw it, plus hashes once the hasher has read it. */
export interface LocalFile {
  size: number;
  /** mtime in nanoseconds since the epoch, as a decimal string (too wide for a double). */
  mtimeNs: string;
  ino: number;
  /** Hex MD5 of the content; present once hashed (or carried over from an unchanged base). */
  md5?: string;
  /** Hex xxh64 of the content; present once hashed (or carried over from an unchanged base). */
  xxh64?: string;
  /**
   * The multipart ETag this content would have at `multipartPartSize`, computed only when the
   * remote object is multipart and its MD5 is known no other way.
   */
  multipartEtag?: string;
}

/** R: the remote object as listed. */
export interface RemoteObject {
  /** ETag without quotes. Either a hex MD5 or `<hex>-<parts>` for multipart uploads. */
  etag: string;
  size: number;
  /** LastModified in ms since the epoch. */
  lastModified: number;
  /** MD5 of the content when known beyond the ETag (x-amz-meta-md5 from a HEAD). */
  md5?: string;
  /** A multipart object's part size, when the server tells it (HeadObject with PartNumber=1). */
  partSize?: number;
}

/** B: what the manifest recorded the last time the path was in sync on both sides. */
export interface BaseEntry {
  local: {
    size: number;
    mtimeNs: string;
    ino: number;
    md5: string;
    xxh64: string;
  };
  remote: {
    etag: string;
    size: number;
    lastModified: number;
    /** The content MD5 behind the ETag (equals the ETag for single-part objects). */
    md5: string;
  };
  /** Wall clock (ns, decimal string) when this entry was written: git's racy-clean cut-off. */
  recordedAtNs: string;
}

/** Everything known about one path before planning. */
export interface PathState {
  /** Local path relative to the root, POSIX separators, e.g. `staticfiles/css/app.css`. */
  path: string;
  /** Remote key, e.g. `static/css/app.css`. */
  key: string;
  /** Index into the mappings list. */
  mapping: number;
  local?: LocalFile;
  remote?: RemoteObject;
  base?: BaseEntry;
}

export type Action =
  | 'upload'
  | 'download'
  | 'delete-remote'
  | 'delete-local'
  | 'record'
  | 'conflict-upload'
  | 'conflict-download'
  /** Both sides deleted: drop B. No transfer. */
  | 'forget'
  /** Content unchanged but the stat moved (touch): refresh B's local stat. No transfer. */
  | 'refresh'
  /** Something differs but this mode or policy leaves it alone; reported, not executed. */
  | 'skip'
  /** In sync; counted as unchanged. */
  | 'nothing';

export type Reason =
  | 'in-sync'
  | 'touched'
  | 'local-new'
  | 'remote-new'
  | 'local-changed'
  | 'remote-changed'
  | 'local-deleted'
  | 'remote-deleted'
  | 'local-missing'
  | 'remote-missing'
  | 'local-only'
  | 'remote-only'
  | 'same-content'
  | 'both-deleted'
  | 'change-beats-delete'
  | 'first-run-differs'
  | 'conflict-remote-wins'
  | 'conflict-local-wins'
  | 'conflict-newer-local'
  | 'conflict-newer-remote'
  | 'conflict-keep-both'
  | 'conflict-skipped';

export interface PlanItem extends PathState {
  action: Action;
  reason: Reason;
  /** Bytes this item moves (0 for no-transfer actions). */
  bytes: number;
  /**
   * keep-both only: the local path the local version is renamed to (and uploaded as), e.g.
   * `media/a.conflict-20261127-135000.jpg`, with its key.
   */
  keepBoth?: { path: string; key: string };
  /** For conflicts and skips: which side's changed state led here (for `explain`). */
  rule?: string;
}

export interface PlanOptions {
  mode: Mode;
  conflict: ConflictPolicy;
  /** One-way modes: also delete extras on the destination. */
  delete: boolean;
  /** Clock used to name keep-both copies; passed in so the planner stays pure. */
  now: Date;
}

/** Per-mapping guard input: how many files the base tracks, and how many the plan deletes. */
export interface GuardOptions {
  /** `50%` or an absolute count. */
  maxDelete: string;
  force: boolean;
}

export interface Plan {
  items: PlanItem[];
  mode: Mode;
  conflict: ConflictPolicy;
}
