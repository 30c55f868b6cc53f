// The tools compared, how each is run, and what each says it did. Every tool gets the same
// concurrency where it has such a setting; the flags are recorded with the results.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Cmd } from './measure.js';
import { versionOf } from './measure.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const BIN = path.join(here, '../src/cli/bin.js');

export interface Server {
  endpoint: string;
  bucket: string;
}

/** Where one tool's copy lives: `root/tree` is the synced folder; state files sit beside it. */
export interface Place {
  root: string;
  tree: string;
  /** Key prefix, ending in `/`. */
  prefix: string;
}

export interface Counts {
  /** Files uploaded or downloaded. */
  transferred: number;
  deleted: number;
  /** Files whose content the tool read to hash, when it tells. */
  hashed: number | null;
  /** The tool's own failure count, when it tells. */
  errors: number;
}

export interface Tool {
  id: string;
  label: string;
  version: string;
  /** The flags it runs with, for the record. */
  flags: string;
  /** Forgets state kept between runs (a fresh first upload). */
  reset(place: Place): void;
  upload(place: Place, first: boolean): Cmd;
  plan?(place: Place): Cmd;
  /** Into an empty `place.tree`; undefined when the tool has no one-way download. */
  download?(place: Place): Cmd;
  parse(stdout: string, stderr: string): Counts;
}

export interface ToolOptions {
  server: Server;
  concurrency: number;
  /** Holds the peers' config files. */
  configDir: string;
}

/** The peers must not see the sandbox's CA bundle: rclone refuses to start with one on plain HTTP. */
function peerEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const k of ['AWS_CA_BUNDLE', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'AWS_PROFILE', 'AWS_DEFAULT_PROFILE', 'AWS_ENDPOINT_URL']) delete env[k];
  return env;
}

const noPrefixSlash = (prefix: string): string => prefix.replace(/\/$/, '');

function storageSync(o: ToolOptions): Tool {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local-secret',
    AWS_S3_ENDPOINT_URL: o.server.endpoint,
    AWS_STORAGE_BUCKET_NAME: o.server.bucket,
    AWS_S3_FORCE_PATH_STYLE: 'true',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  const configure = (p: Place): void => {
    fs.writeFileSync(
      path.join(p.root, 'storage-sync.config.json'),
      JSON.stringify({ mappings: [{ local: path.relative(p.root, p.tree), remote: p.prefix }] }),
    );
  };
  const cli = (p: Place, ...args: string[]): Cmd => {
    configure(p);
    return { argv: [process.execPath, BIN, ...args, '--json', '--root', p.root, '--concurrency', String(o.concurrency)], env };
  };
  const pkg = JSON.parse(fs.readFileSync(path.join(here, '../../package.json'), 'utf8')) as { version: string };
  return {
    id: 'storage-sync',
    label: 'storage-sync',
    version: `storage-sync ${pkg.version}`,
    flags: `sync --json --concurrency ${o.concurrency} (two-way, the default mode); download: sync --mode download; plan: plan --json`,
    reset: (p) => fs.rmSync(path.join(p.root, 'manifests'), { recursive: true, force: true }),
    upload: (p) => cli(p, 'sync'),
    plan: (p) => cli(p, 'plan'),
    download: (p) => cli(p, 'sync', '--mode', 'download'),
    parse(stdout) {
      const lines = stdout.trim().split('\n');
      for (let i = lines.length - 1; i >= 0; i--) {
        let ev: Record<string, unknown>;
        try {
          ev = JSON.parse(lines[i]!) as Record<string, unknown>;
        } catch {
          continue;
        }
        if (ev['event'] !== 'summary') continue;
        const n = (k: string): number => Number(ev[k] ?? 0);
        return { transferred: n('uploaded') + n('downloaded'), deleted: n('deletedRemote') + n('deletedLocal'), hashed: n('hashed'), errors: n('failed') };
      }
      return { transferred: 0, deleted: 0, hashed: null, errors: 1 };
    },
  };
}

function rcloneEnv(o: ToolOptions): NodeJS.ProcessEnv {
  return peerEnv({
    RCLONE_CONFIG: '/dev/null',
    RCLONE_CONFIG_BENCH_TYPE: 's3',
    RCLONE_CONFIG_BENCH_PROVIDER: 'Other',
    RCLONE_CONFIG_BENCH_ENDPOINT: o.server.endpoint,
    RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: 'local',
    RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: 'local-secret',
    RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: 'true',
    RCLONE_CONFIG_BENCH_REGION: 'us-east-1',
  });
}

/** rclone's closing stats, logged as JSON at NOTICE so that no per-file logging slows it down. */
function parseRclone(_stdout: string, stderr: string): Counts {
  const lines = stderr.trim().split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    if (!lines[i]!.includes('"stats"')) continue;
    try {
      const s = (JSON.parse(lines[i]!) as { stats: Record<string, number> }).stats;
      return { transferred: s['transfers'] ?? 0, deleted: s['deletes'] ?? 0, hashed: null, errors: s['errors'] ?? 0 };
    } catch {
      continue;
    }
  }
  return { transferred: 0, deleted: 0, hashed: null, errors: 1 };
}

const RCLONE_LOG = ['--use-json-log', '--stats', '1h', '--stats-log-level', 'NOTICE'];

function rcloneSync(o: ToolOptions, version: string, checksum: boolean): Tool {
  const env = rcloneEnv(o);
  const extra = [...(checksum ? ['--checksum'] : []), '--transfers', String(o.concurrency), '--checkers', String(o.concurrency)];
  const remote = (p: Place): string => `bench:${o.server.bucket}/${noPrefixSlash(p.prefix)}`;
  return {
    id: checksum ? 'rclone-checksum' : 'rclone',
    label: checksum ? 'rclone sync --checksum' : 'rclone sync',
    version,
    flags: `rclone sync ${extra.join(' ')} (S3 remote, provider Other, path style; defaults otherwise: upload cutoff 200 MiB, 5 MiB chunks${checksum ? '' : '; size + modtime compare, modtime kept in X-Amz-Meta-Mtime, which fauxqs keeps'})`,
    reset: () => undefined,
    upload: (p) => ({ argv: ['rclone', 'sync', p.tree, remote(p), ...extra, ...RCLONE_LOG], env }),
    download: (p) => ({ argv: ['rclone', 'sync', remote(p), p.tree, ...extra, ...RCLONE_LOG], env }),
    parse: parseRclone,
  };
}

function rcloneBisync(o: ToolOptions, version: string): Tool {
  const env = rcloneEnv(o);
  const extra = ['--transfers', String(o.concurrency), '--checkers', String(o.concurrency)];
  const workdir = (p: Place): string => path.join(p.root, 'bisync');
  return {
    id: 'rclone-bisync',
    label: 'rclone bisync',
    version,
    flags: `rclone bisync ${extra.join(' ')} --workdir <own> (first run with --resync); no one-way download, so no download figure`,
    reset: (p) => fs.rmSync(workdir(p), { recursive: true, force: true }),
    upload: (p, first) => ({
      argv: ['rclone', 'bisync', p.tree, `bench:${o.server.bucket}/${noPrefixSlash(p.prefix)}`, ...(first ? ['--resync'] : []), '--workdir', workdir(p), ...extra, ...RCLONE_LOG],
      env,
    }),
    parse: parseRclone,
  };
}

/** Lines aws-cli and s3cmd print per file: `upload: ...`, `download: ...`, `delete: ...`, `copy: ...`. */
function countLines(stdout: string): Counts {
  let transferred = 0;
  let deleted = 0;
  for (const line of stdout.split(/[\r\n]+/)) {
    if (/^(upload|download|copy|remote copy):/.test(line)) transferred++;
    else if (/^delete:/.test(line)) deleted++;
  }
  return { transferred, deleted, hashed: null, errors: 0 };
}

function awsCli(o: ToolOptions, bin: string, version: string): Tool {
  const config = path.join(o.configDir, 'aws-config');
  fs.writeFileSync(
    config,
    ['[default]', 'region = us-east-1', 's3 =', '  addressing_style = path', `  max_concurrent_requests = ${o.concurrency}`, '  multipart_threshold = 8MB', '  multipart_chunksize = 8MB', ''].join('\n'),
  );
  const env = peerEnv({ AWS_CONFIG_FILE: config, AWS_SHARED_CREDENTIALS_FILE: '/dev/null', AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local-secret' });
  const s3url = (p: Place): string => `s3://${o.server.bucket}/${noPrefixSlash(p.prefix)}`;
  const common = ['--endpoint-url', o.server.endpoint, '--no-progress'];
  return {
    id: 'aws',
    label: 'aws s3 sync',
    version,
    flags: `aws s3 sync --delete --no-progress (max_concurrent_requests ${o.concurrency}, multipart 8 MiB, path style; compares size and mtime)`,
    reset: () => undefined,
    upload: (p) => ({ argv: [bin, 's3', 'sync', p.tree, s3url(p), '--delete', ...common], env }),
    download: (p) => ({ argv: [bin, 's3', 'sync', s3url(p), p.tree, ...common], env }),
    parse: (stdout) => countLines(stdout),
  };
}

function s3cmd(o: ToolOptions, version: string): Tool {
  const config = path.join(o.configDir, 's3cmd.cfg');
  const host = new URL(o.server.endpoint).host;
  fs.writeFileSync(
    config,
    ['[default]', 'access_key = local', 'secret_key = local-secret', `host_base = ${host}`, `host_bucket = ${host}`, 'use_https = False', 'signature_v2 = False', 'bucket_location = us-east-1', 'progress_meter = False', ''].join('\n'),
  );
  const env = peerEnv({});
  const s3url = (p: Place): string => `s3://${o.server.bucket}/${p.prefix}`;
  return {
    id: 's3cmd',
    label: 's3cmd sync',
    version,
    flags: 's3cmd sync --delete-removed (one transfer at a time: s3cmd has no concurrency setting; 15 MB multipart chunks; compares size and MD5, so it reads every local file)',
    reset: () => undefined,
    upload: (p) => ({ argv: ['s3cmd', '-c', config, 'sync', `${p.tree}/`, s3url(p), '--delete-removed', '--no-progress'], env }),
    download: (p) => ({ argv: ['s3cmd', '-c', config, 'sync', s3url(p), `${p.tree}/`, '--no-progress'], env }),
    parse: (stdout) => countLines(stdout),
  };
}

export const TOOL_IDS = ['storage-sync', 'rclone-checksum', 'rclone', 'rclone-bisync', 'aws', 's3cmd'] as const;

/** The tools asked for that are installed, and a line for each one that is not. */
export function makeTools(wanted: string[], o: ToolOptions, awsBin: string): { tools: Tool[]; missing: string[] } {
  const tools: Tool[] = [];
  const missing: string[] = [];
  const rclone = wanted.some((w) => w.startsWith('rclone')) ? versionOf('rclone', ['--version'], rcloneEnv(o)) : undefined;
  for (const id of wanted) {
    if (id === 'storage-sync') tools.push(storageSync(o));
    else if (id === 'rclone-checksum' || id === 'rclone' || id === 'rclone-bisync') {
      if (!rclone) missing.push(`${id}: rclone not installed (scripts/install-peers.sh)`);
      else if (id === 'rclone-bisync') tools.push(rcloneBisync(o, rclone));
      else tools.push(rcloneSync(o, rclone, id === 'rclone-checksum'));
    } else if (id === 'aws') {
      const v = versionOf(awsBin, ['--version'], peerEnv({}));
      if (v) tools.push(awsCli(o, awsBin, v));
      else missing.push(`aws: ${awsBin} not installed (scripts/install-peers.sh)`);
    } else if (id === 's3cmd') {
      const v = versionOf('s3cmd', ['--version'], peerEnv({}));
      if (v) tools.push(s3cmd(o, v));
      else missing.push('s3cmd: not installed (scripts/install-peers.sh)');
    } else throw new Error(`unknown tool ${id}; known: ${TOOL_IDS.join(', ')}`);
  }
  return { tools, missing };
}
