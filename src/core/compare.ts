// Per-side change detection against the base, and the content comparison between the two sides.
// Hashes are expensive, so the stat decides first; the racy-clean rule guards against a write
// that lands in the same clock tick as the base was recorded (git's index has the same hazard).

import type { BaseEntry, LocalFile, RemoteObject } from './types.js';

export type LocalChange = 'absent' | 'new' | 'unchanged' | 'touched' | 'changed' | 'deleted';
export type RemoteChange = 'absent' | 'new' | 'unchanged' | 'changed' | 'deleted';

const MULTIPART_ETAG = /^[0-9a-f]{32}-\d+$/i;
// SSE-KMS and SSE-C objects have ETags that are neither; only a bare MD5 may stand for content.
const PLAIN_MD5 = /^[0-9a-f]{32}$/;

export function isMultipartEtag(etag: string): boolean {
  return MULTIPART_ETAG.test(etag);
}

/** Strips the W/ prefix, surrounding whitespace and quotes, and lowercases the hex. */
export function normalizeEtag(raw: string): string {
  return raw.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1').toLowerCase();
}

export function statEqual(local: LocalFile, base: BaseEntry): boolean {
  return (
    local.size === base.local.size &&
    local.mtimeNs === base.local.mtimeNs &&
    local.ino === base.local.ino
  );
}

export function isRacy(local: LocalFile, base: BaseEntry): boolean {
  return BigInt(local.mtimeNs) >= BigInt(base.recordedAtNs);
}

export function needsHash(local: LocalFile, base: BaseEntry | undefined): boolean {
  return base === undefined || !statEqual(local, base) || isRacy(local, base);
}

export function carryHashes(local: LocalFile, base: BaseEntry): LocalFile {
  // Called only when the stat equals the base's: the base's record is then this file field for
  // field, so it is shared rather than copied (an object and an mtime string less per unchanged
  // path, about 10 MB of a 100k-file run). Neither record is modified after gathering.
  if (local.multipartEtag === undefined && statEqual(local, base)) return base.local;
  // Not `...local`: called once a path, a spread copy gets a hidden class of its own in V8.
  const out: LocalFile = { size: local.size, mtimeNs: local.mtimeNs, ino: local.ino, md5: base.local.md5, xxh64: base.local.xxh64 };
  if (local.multipartEtag !== undefined) out.multipartEtag = local.multipartEtag;
  return out;
}

export function localChange(
  local: LocalFile | undefined,
  base: BaseEntry | undefined,
): LocalChange {
  if (base === undefined) return local === undefined ? 'absent' : 'new';
  if (local === undefined) return 'deleted';
  if (statEqual(local, base) && !isRacy(local, base)) return 'unchanged';
  if (local.xxh64 === undefined) {
    throw new Error('localChange: the stat moved but the file is not hashed; hash before planning');
  }
  return local.xxh64 === base.local.xxh64 && local.size === base.local.size ? 'touched' : 'changed';
}

export function remoteChange(
  remote: RemoteObject | undefined,
  base: BaseEntry | undefined,
): RemoteChange {
  if (base === undefined) return remote === undefined ? 'absent' : 'new';
  if (remote === undefined) return 'deleted';
  const same =
    normalizeEtag(remote.etag) === normalizeEtag(base.remote.etag) &&
    remote.size === base.remote.size;
  return same ? 'unchanged' : 'changed';
}

/** The content MD5 of a remote object, when anything tells us; never a multipart ETag. */
export function remoteMd5(remote: RemoteObject, base: BaseEntry | undefined): string | undefined {
  const etag = normalizeEtag(remote.etag);
  if (PLAIN_MD5.test(etag)) return etag;
  if (base !== undefined && normalizeEtag(base.remote.etag) === etag) {
    return base.remote.md5.toLowerCase();
  }
  return remote.md5?.toLowerCase();
}

/**
 * Whether L and R hold the same bytes. Unknown counts as different: the caller then treats the
 * pair as a conflict, whose loser is kept, rather than silently recording a mismatch as synced.
 */
export function sameContent(
  local: LocalFile,
  remote: RemoteObject,
  base: BaseEntry | undefined,
): boolean {
  if (local.size !== remote.size) return false;
  const md5 = remoteMd5(remote, base);
  if (md5 !== undefined) {
    if (local.md5 === undefined) {
      throw new Error('sameContent: the local file was not hashed; hash before planning');
    }
    return local.md5.toLowerCase() === md5;
  }
  if (isMultipartEtag(remote.etag) && local.multipartEtag !== undefined) {
    return normalizeEtag(local.multipartEtag) === normalizeEtag(remote.etag);
  }
  return false;
}
