// Remote keys are untrusted input: anyone with write access to the bucket chooses them, and a key
// becomes a local path. Every key is checked here before it can reach the file system.

import { InvalidPathError } from './errors.js';

const MAX_PATH_BYTES = 1024;
// In a `u` regex a well-formed surrogate pair is one code point, so only lone halves match.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
const CONTROL = /[\u0000-\u001f]/;
const utf8 = new TextEncoder();

export function keyToRelPath(key: string, prefix: string): string {
  if (!key.startsWith(prefix)) {
    throw new InvalidPathError(key, `is not under the prefix ${JSON.stringify(prefix)}`);
  }
  const rel = key.slice(prefix.length);
  const why = invalidBecause(rel);
  if (why !== undefined) throw new InvalidPathError(key, why);
  return rel;
}

function invalidBecause(rel: string): string | undefined {
  if (rel === '') return 'names no file';
  if (rel.startsWith('/')) return 'is absolute';
  if (rel.includes('\\')) return 'contains a backslash';
  if (CONTROL.test(rel)) return 'contains a control character';
  if (LONE_SURROGATE.test(rel)) return 'is not valid UTF-8';
  if (utf8.encode(rel).length > MAX_PATH_BYTES) return `is longer than ${MAX_PATH_BYTES} bytes`;
  for (const segment of rel.split('/')) {
    if (segment === '..') return 'escapes the mapped folder';
    if (segment === '.') return 'has a "." segment';
    if (segment === '') return 'has an empty segment';
  }
  return undefined;
}

/** S3 consoles create `folder/` placeholder objects; they hold no file and are skipped. */
export function isFolderMarker(key: string, size: number): boolean {
  return key.endsWith('/') && size === 0;
}

export function joinKey(prefix: string, rel: string): string {
  return joinPosix(prefix, rel);
}

export function joinLocal(mappingLocal: string, rel: string): string {
  return joinPosix(mappingLocal, rel);
}

export function normalizePrefix(p: string): string {
  const bare = p.replace(/^\/+/, '').replace(/\/+$/, '');
  return bare === '' ? '' : `${bare}/`;
}

function joinPosix(dir: string, rel: string): string {
  const tail = rel.replace(/^\/+/, '');
  if (dir === '') return tail;
  return dir.endsWith('/') ? dir + tail : `${dir}/${tail}`;
}
