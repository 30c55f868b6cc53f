// Settings of one run: built-in defaults, then the JSON config file, then command-line flags.
import fs from 'node:fs';
import path from 'node:path';
import { CONFLICT_POLICIES, MODES, type ConflictPolicy, type Mapping, type Mode } from '../core/types.js';
import { UsageError } from '../core/errors.js';
import { parseMaxDelete } from '../core/guards.js';
import { DEFAULT_PART_SIZE, MiB } from '../remote/etag.js';

const GiB = 1024 * MiB;
/**
 * Files below this go up in one streamed PutObject (rclone's cutoff too). Against the local
 * server, one PUT of a 200 MB file cost the client 0.3 s and the server 0.53 s of CPU (0.7 s
 * wall), a multipart upload of it in 8 MiB parts 0.76 s and 0.95 s (1.4 s): the parts' MD5s and
 * the server's part assembly. Above it a failed try would resend a whole big file, and one
 * connection would cap the speed of a big file sent alone: parts, 4 in flight, take over.
 */
export const DEFAULT_MULTIPART_THRESHOLD = 200 * MiB;

export interface Settings {
  root: string;
  mappings: Mapping[];
  manifestDir: string;
  profile: string;
  mode: Mode;
  dryRun: boolean;
  delete: boolean;
  maxDelete: string;
  force: boolean;
  conflict: ConflictPolicy;
  concurrency: number;
  include: string[];
  exclude: string[];
  trash: boolean;
  multipartThreshold: number;
  partSize: number;
  mssql?: string;
}

export const DEFAULT_MAPPINGS: Mapping[] = [
  { local: 'staticfiles', remote: 'static/' },
  { local: 'media', remote: 'media/' },
];

/** What the command line may override (undefined = not given). */
export type Overrides = Partial<Omit<Settings, 'root'>> & { root?: string; config?: string };

type FieldCheck = (v: unknown, key: string) => unknown;

const str: FieldCheck = (v, k) => {
  if (typeof v !== 'string' || v === '') throw new UsageError(`config: "${k}" must be a non-empty string`);
  return v;
};
const strList: FieldCheck = (v, k) => {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new UsageError(`config: "${k}" must be an array of strings`);
  return v;
};
const posInt: FieldCheck = (v, k) => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new UsageError(`config: "${k}" must be a positive integer`);
  return v;
};
const oneOf = (allowed: readonly string[]): FieldCheck => (v, k) => {
  if (typeof v !== 'string' || !allowed.includes(v)) throw new UsageError(`config: "${k}" must be one of ${allowed.join(', ')}`);
  return v;
};
const maxDeleteCheck: FieldCheck = (v, k) => {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return String(v);
  if (typeof v === 'string' && /^\d+(\.\d+)?%?$/.test(v)) return v;
  throw new UsageError(`config: "${k}" must be a count or a percentage like "50%"`);
};
const mappingsCheck: FieldCheck = (v, k) => {
  if (!Array.isArray(v) || v.length === 0) throw new UsageError(`config: "${k}" must be a non-empty array`);
  return v.map((m, i) => {
    if (typeof m !== 'object' || m === null) throw new UsageError(`config: "${k}[${i}]" must be an object`);
    for (const key of Object.keys(m)) {
      if (key !== 'local' && key !== 'remote') throw new UsageError(`config: unknown key "${k}[${i}].${key}"`);
    }
    return { local: str((m as Mapping).local, `${k}[${i}].local`), remote: str((m as Mapping).remote, `${k}[${i}].remote`) };
  });
};

const FIELDS: Record<string, FieldCheck> = {
  mappings: mappingsCheck,
  manifestDir: str,
  profile: str,
  mode: oneOf(MODES),
  conflict: oneOf(CONFLICT_POLICIES),
  maxDelete: maxDeleteCheck,
  concurrency: posInt,
  include: strList,
  exclude: strList,
  multipartThreshold: posInt,
  partSize: posInt,
  credentials: (v, k) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UsageError(`config: "${k}" must be an object`);
    for (const key of Object.keys(v)) if (key !== 'mssql') throw new UsageError(`config: unknown key "${k}.${key}"`);
    const mssql = (v as { mssql?: unknown }).mssql;
    return mssql === undefined ? {} : { mssql: str(mssql, `${k}.mssql`) };
  },
};

/**
 * V8 quotes the text around a JSON syntax error (`Unexpected token 'P', ..."mssql": Password=h"...`),
 * and a config file can hold a SQL password: only the position is told, never the text.
 */
function notJson(err: SyntaxError): string {
  const at = /at position (\d+)/.exec(err.message)?.[1];
  return `not valid JSON${at ? ` (at character ${at})` : /end of JSON input/.test(err.message) ? ' (it ends early)' : ''}`;
}

/** Reads and validates a config file; unknown keys and wrong types name the key (exit 2). */
export function readConfigFile(file: string): Partial<Settings> {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : err instanceof SyntaxError ? notJson(err) : (err as Error).message;
    throw new UsageError(`config ${file}: ${why}`, { cause: err });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new UsageError(`config ${file}: must be a JSON object`);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    const check = FIELDS[key];
    if (!check) throw new UsageError(`config ${file}: unknown key "${key}"`);
    const v = check(value, key);
    if (key === 'credentials') Object.assign(out, v);
    else out[key] = v;
  }
  return out as Partial<Settings>;
}

/** Folders must stay inside the root, and two mappings must not overlap. */
function checkMappings(mappings: Mapping[]): Mapping[] {
  const norm = mappings.map((m) => {
    const local = path.posix.normalize(m.local.replace(/\\/g, '/')).replace(/\/+$/, '');
    if (local === '.' || local.startsWith('../') || local === '..' || path.posix.isAbsolute(local)) {
      throw new UsageError(`config: mapping folder "${m.local}" must be a folder inside the root`);
    }
    if (/^[A-Za-z]:/.test(local)) throw new UsageError(`config: mapping folder "${m.local}" must be a folder inside the root`);
    let remote = m.remote.replace(/^\/+/, '');
    if (remote !== '' && !remote.endsWith('/')) remote += '/';
    // The prefix is used verbatim as part of every key: no segment may be empty, "." or "..".
    if (remote !== '' && remote.slice(0, -1).split('/').some((seg) => seg === '' || seg === '.' || seg === '..' || seg.includes('\\'))) {
      throw new UsageError(`config: mapping prefix "${m.remote}" has an empty, ".", ".." or backslash segment`);
    }
    return { local, remote };
  });
  for (const a of norm) {
    for (const b of norm) {
      if (a === b) continue;
      if ((a.local + '/').startsWith(b.local + '/')) throw new UsageError(`config: mapping folders "${a.local}" and "${b.local}" overlap`);
      if (a.remote.startsWith(b.remote)) throw new UsageError(`config: mapping prefixes "${a.remote}" and "${b.remote}" overlap`);
    }
  }
  return norm;
}

export function resolveSettings(o: Overrides, cwd: string): Settings {
  const root = path.resolve(cwd, o.root ?? '.');
  const defaultConfig = path.join(root, 'storage-sync.config.json');
  const configFile = o.config ? path.resolve(cwd, o.config) : fs.existsSync(defaultConfig) ? defaultConfig : undefined;
  const file = configFile ? readConfigFile(configFile) : {};
  const pick = <K extends keyof Settings>(k: K, d: Settings[K]): Settings[K] => (o[k] ?? file[k] ?? d) as Settings[K];
  const concurrency = pick('concurrency', 8);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) {
    throw new UsageError('--concurrency must be an integer from 1 to 256');
  }
  const manifestDir = path.resolve(root, pick('manifestDir', 'manifests'));
  const settings: Settings = {
    root,
    mappings: checkMappings(pick('mappings', DEFAULT_MAPPINGS)),
    manifestDir,
    profile: pick('profile', 'default'),
    mode: pick('mode', 'two-way'),
    dryRun: pick('dryRun', false),
    delete: pick('delete', false),
    maxDelete: String(pick('maxDelete', '50%')),
    force: pick('force', false),
    conflict: pick('conflict', 'remote'),
    concurrency,
    include: [...(file.include ?? []), ...(o.include ?? [])],
    exclude: [...(file.exclude ?? []), ...(o.exclude ?? [])],
    trash: pick('trash', true),
    multipartThreshold: pick('multipartThreshold', DEFAULT_MULTIPART_THRESHOLD),
    partSize: pick('partSize', DEFAULT_PART_SIZE),
  };
  const mssql = o.mssql ?? file.mssql;
  if (mssql !== undefined) settings.mssql = mssql;
  parseMaxDelete(settings.maxDelete); // a bad value is an error even when --force would skip the guard
  if (!fs.statSync(root, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`root folder ${root} does not exist`);
  for (const m of settings.mappings) {
    const folder = path.join(root, m.local);
    if ((manifestDir + path.sep).startsWith(folder + path.sep)) {
      throw new UsageError(`the manifest folder ${manifestDir} is inside the mapped folder ${m.local}/: it would sync itself`);
    }
  }
  if (settings.partSize < 5 * MiB || settings.partSize > 5 * GiB) throw new UsageError('partSize must be from 5 MiB to 5 GiB (the S3 and R2 part limits)');
  if (settings.multipartThreshold > 5 * GiB - 5 * MiB) throw new UsageError('multipartThreshold must be at most 5 GiB - 5 MiB (the largest single PUT on R2)');
  return settings;
}
