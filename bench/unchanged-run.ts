// The engine against the physical floors and against rclone, side by side in one run:
//   node dist/bench/unchanged-run.js [--files 100000] [--large-files 0] [--large-mb 20] [--seed 1]
//     [--repeat 3] [--concurrency 16] [--scenario all|first-upload,unchanged,plan,touch,hash]
// Tree A: `files` small files (sizes ~ exponential, mean 8 KiB, 20 a folder); tree B (optional):
// `large-files` files of about `large-mb` MB. The local S3 server (fauxqs) runs in its own process.
// Scenarios:
//   first-upload  storage-sync sync of the whole tree vs `rclone copy` at the same concurrency
//   unchanged     a second sync with nothing changed vs `find -printf` stat walk + bare listing
//   plan          `plan` on the unchanged tree (peak RSS is the point)
//   touch         10% of files touched (mtime only): only those hashed, nothing uploaded
//   hash          a cold hash of every file (plan with an empty manifest) vs `xargs -P2 md5sum`
// Every figure is a median of `repeat`; peak RSS from /usr/bin/time when installed.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { rng } from './tree.js';

const { values } = parseArgs({
  options: {
    files: { type: 'string', default: '100000' },
    'large-files': { type: 'string', default: '0' },
    'large-mb': { type: 'string', default: '20' },
    seed: { type: 'string', default: '1' },
    repeat: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '16' },
    scenario: { type: 'string', default: 'all' },
  },
});
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const { ListObjectsV2Command, S3Client } = await import('@aws-sdk/client-s3');
const N = Number(values.files);
const LARGE = Number(values['large-files']);
const LARGE_MB = Number(values['large-mb']);
const REPEAT = Number(values.repeat);
const CONC = values.concurrency;
const ALL = ['first-upload', 'unchanged', 'plan', 'touch', 'hash'];
const SCENARIOS = new Set(values.scenario === 'all' ? ALL : values.scenario.split(','));
const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.join(here, '../src/cli/bin.js');
// fauxqs in its own process with the request-body limit lifted from 11 MiB: rclone PUTs files up
// to its 200 MiB upload cutoff whole (its multipart uploads fail to complete on fauxqs). rclone
// writes to a bucket of its own: fauxqs sorts the whole bucket for every listing page, so its
// copy would double the cost of every later listing of ours.
const SERVER_CODE = `
import { buildApp } from 'fauxqs';
const app = buildApp({ logger: false, host: '127.0.0.1' });
app.removeContentTypeParser('*');
app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 1 << 30 }, (_req, body, done) => done(null, body));
const address = await app.listen({ port: 0, host: '127.0.0.1' });
await fetch(address + '/bench', { method: 'PUT' });
await fetch(address + '/peer', { method: 'PUT' });
process.stdout.write('AWS_S3_ENDPOINT_URL=' + address + ' AWS_STORAGE_BUCKET_NAME=bench AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local-secret AWS_S3_FORCE_PATH_STYLE=true\\n# fauxqs\\n');
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
`;
const hasRclone = (() => {
  try {
    execFileSync('rclone', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();


function randomBlock(r: () => number, size: number): Buffer {
  const block = Buffer.alloc(size);
  for (let i = 0; i + 4 <= block.length; i += 4) block.writeUInt32LE((r() * 4294967296) >>> 0, i);
  return block;
}

function generateSmall(root: string, n: number, seed: number): number {
  const r = rng(seed);
  let bytes = 0;
  const block = randomBlock(r, 256 * 1024);
  for (let i = 0; i < n; i++) {
    const dir = path.join(root, 'media', `d${String(Math.floor(i / 20)).padStart(5, '0')}`);
    if (i % 20 === 0) fs.mkdirSync(dir, { recursive: true });
    const size = Math.min(block.length - 8, Math.floor(-Math.log(1 - r()) * 8192));
    const off = Math.floor(r() * 8);
    // The index in front keeps every file's content distinct.
    const body = Buffer.concat([Buffer.from(`${i}:`), block.subarray(off, off + size)]);
    fs.writeFileSync(path.join(dir, `f${i}.bin`), body);
    bytes += body.length;
  }
  return bytes;
}

function generateLarge(root: string, n: number, mb: number, seed: number): number {
  const r = rng(seed + 1);
  const block = randomBlock(r, 1024 * 1024);
  const dir = path.join(root, 'media');
  fs.mkdirSync(dir, { recursive: true });
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    // 50%–150% of the mean, never a multiple of the part size.
    const size = Math.floor(mb * 1024 * 1024 * (0.5 + r())) + 1;
    const fd = fs.openSync(path.join(dir, `v${i}.mp4`), 'w');
    fs.writeSync(fd, Buffer.from(`${i}:`));
    for (let left = size; left > 0; left -= block.length) {
      block.writeUInt32LE(i, 0);
      fs.writeSync(fd, block, 0, Math.min(left, block.length));
    }
    fs.closeSync(fd);
    bytes += size + String(i).length + 1;
  }
  return bytes;
}

function backdate(root: string): void {
  const old = new Date(Date.now() - 3_600_000);
  execFileSync('find', [root, '-type', 'f', '-exec', 'touch', '-d', old.toISOString(), '{}', '+']);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}×`;

interface Tree {
  name: string;
  root: string;
  remote: string;
  files: number;
  bytes: number;
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ssync-bench-'));
  const server = spawn(process.execPath, ['--input-type=module', '-e', SERVER_CODE], { cwd: path.join(here, '../..'), stdio: ['ignore', 'pipe', 'inherit'] });
  const out: string[] = [];
  try {
    const envText = await new Promise<string>((resolve) => {
      let buf = '';
      server.stdout.on('data', (c: Buffer) => {
        buf += c.toString();
        if (buf.includes('# fauxqs')) resolve(buf);
      });
    });
    const env: Record<string, string> = { ...(process.env as Record<string, string>) };
    for (const m of envText.matchAll(/(\w+)=(\S+)/g)) env[m[1]!] = m[2]!;
    const peerEnv: Record<string, string> = {
      ...env,
      RCLONE_CONFIG_BENCH_TYPE: 's3', RCLONE_CONFIG_BENCH_PROVIDER: 'Other', RCLONE_CONFIG_BENCH_ENDPOINT: env['AWS_S3_ENDPOINT_URL']!,
      RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: 'local', RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: 'local-secret', RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: 'true',
    };
    delete peerEnv['AWS_CA_BUNDLE'];

    const trees: Tree[] = [];
    if (N > 0) {
      const rootA = path.join(work, 'a');
      process.stderr.write(`generating ${N} small files…\n`);
      trees.push({ name: 'A', root: rootA, remote: 'media/', files: N, bytes: generateSmall(rootA, N, Number(values.seed)) });
    }
    if (LARGE > 0) {
      const rootB = path.join(work, 'b');
      process.stderr.write(`generating ${LARGE} large files…\n`);
      const bytes = generateLarge(rootB, LARGE, LARGE_MB, Number(values.seed));
      fs.writeFileSync(path.join(rootB, 'storage-sync.config.json'), JSON.stringify({ mappings: [{ local: 'media', remote: 'large/' }] }));
      trees.push({ name: 'B', root: rootB, remote: 'large/', files: LARGE, bytes });
    }
    for (const t of trees) backdate(t.root);

    // GNU time, when installed, gives each run's peak RSS (the target is under 300 MB at 100k files).
    const gnuTime = fs.existsSync('/usr/bin/time');
    const rssFile = path.join(work, 'rss');
    const peakRss: Record<string, number> = {};
    /** Runs a command; returns wall ms and stdout, and keeps the peak RSS under `label`. */
    const timed = (label: string, cmd: string, args: string[], cmdEnv = env): [number, string] => {
      const t = process.hrtime.bigint();
      const stdout = gnuTime
        ? execFileSync('/usr/bin/time', ['-f', '%M', '-o', rssFile, cmd, ...args], { env: cmdEnv, maxBuffer: 1 << 30 }).toString()
        : execFileSync(cmd, args, { env: cmdEnv, maxBuffer: 1 << 30 }).toString();
      const ms = Number(process.hrtime.bigint() - t) / 1e6;
      if (gnuTime) peakRss[label] = Math.max(peakRss[label] ?? 0, Number(fs.readFileSync(rssFile, 'utf8').trim().split('\n').pop()) / 1024);
      return [ms, stdout];
    };
    interface CliRun { ms: number; summary: Record<string, number>; hashMs?: number }
    const cli = (label: string, t: Tree, ...args: string[]): CliRun => {
      const [ms, stdout] = timed(label, process.execPath, [BIN, ...args, '--json', '--root', t.root]);
      const events = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      const hash = events.find((e) => e['event'] === 'scan' && e['phase'] === 'hash');
      return { ms, summary: events.at(-1) as Record<string, number>, hashMs: hash ? Number(hash['durationMs']) : undefined };
    };
    const client = new S3Client({
      endpoint: env['AWS_S3_ENDPOINT_URL']!, region: 'auto', forcePathStyle: true,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local-secret' },
    });
    const bareList = async (prefix: string, bucket = 'bench'): Promise<[number, number]> => {
      const t = process.hrtime.bigint();
      let token: string | undefined;
      let keys = 0;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
        keys += page.KeyCount ?? 0;
        token = page.NextContinuationToken;
      } while (token);
      return [Number(process.hrtime.bigint() - t) / 1e6, keys];
    };
    const find = (t: Tree): number => timed('find', 'sh', ['-c', `find '${t.root}/media' -type f -printf '%s %T@\\n' > /dev/null`])[0];
    const md5sum = (t: Tree): number => timed('md5sum', 'sh', ['-c', `find '${t.root}/media' -type f -print0 | xargs -0 -P2 md5sum > /dev/null`])[0];

    out.push(`trees: ${trees.map((t) => `${t.name} ${t.files} files, ${(t.bytes / 1e6).toFixed(0)} MB`).join('; ')}; ${os.cpus().length} cores; median of ${REPEAT}; concurrency ${CONC}`);
    out.push('', '| tree | scenario | storage-sync | reference | ratio (ours / reference) |', '|---|---|---|---|---|');
    const row = (t: Tree, scenario: string, ours: number, refName: string, ref: number, note = ''): void => {
      out.push(`| ${t.name} | ${scenario}${note ? ` (${note})` : ''} | ${fmt(ours)} | ${refName} ${fmt(ref)} | ${ratio(ours, ref)} |`);
    };
    let failed = false;
    const check = (ok: boolean, what: string): void => {
      if (!ok) {
        failed = true;
        out.push(`| | CHECK FAILED: ${what} | | | |`);
      }
    };

    for (const t of trees) {
      // The first upload happens whatever the scenarios: everything else needs the bucket full.
      process.stderr.write(`tree ${t.name}: first upload…\n`);
      const first = cli(`sync-first-${t.name}`, t, 'sync', '--concurrency', CONC);
      check(first.summary['uploaded'] === t.files, `first upload of ${t.name} uploaded ${first.summary['uploaded']}`);
      if (SCENARIOS.has('first-upload') && hasRclone) {
        process.stderr.write(`tree ${t.name}: rclone copy…\n`);
        const flags = ['--transfers', CONC, '--checkers', CONC, '--s3-no-check-bucket'];
        const [rcloneMs] = timed(`rclone-${t.name}`, 'rclone', ['copy', '-q', `${t.root}/media`, `bench:peer/rclone-${t.name}/`, ...flags], peerEnv);
        const [, keys] = await bareList(`rclone-${t.name}/`, 'peer');
        check(keys === t.files, `rclone uploaded ${keys} of ${t.files}`);
        row(t, 'first upload', first.ms, `rclone copy --transfers ${CONC}`, rcloneMs);
      } else if (SCENARIOS.has('first-upload')) {
        out.push(`| ${t.name} | first upload | ${fmt(first.ms)} | rclone not installed | |`);
      }
      // rclone keeps no state: with --checksum an unchanged run rereads every byte (tree B's target
      // is to be 10× faster than that).
      const rcloneChecksum: number[] = [];
      const rows: Record<string, number[]> = {};
      const add = (k: string, v: number | undefined): void => void (v !== undefined && (rows[k] ??= []).push(v));
      let hashedTouch: number[] = [];
      for (let i = 0; i < REPEAT; i++) {
        process.stderr.write(`tree ${t.name}: round ${i + 1}/${REPEAT}…\n`);
        if (SCENARIOS.has('unchanged')) {
          const s = cli('sync-unchanged', t, 'sync', '--concurrency', CONC);
          check(s.summary['hashed'] === 0 && s.summary['uploaded'] === 0, `unchanged sync hashed ${s.summary['hashed']}, uploaded ${s.summary['uploaded']}`);
          add('unchanged', s.ms);
          add('find', find(t));
          const [listMs, keys] = await bareList(t.remote);
          check(keys === t.files, `listing saw ${keys} keys, expected ${t.files}`);
          add('list', listMs);
          if (hasRclone && SCENARIOS.has('first-upload')) {
            const args = ['sync', '-q', '--checksum', '--transfers', CONC, '--checkers', CONC, '--s3-no-check-bucket', `${t.root}/media`, `bench:peer/rclone-${t.name}/`];
            rcloneChecksum.push(timed(`rclone-checksum-${t.name}`, 'rclone', args, peerEnv)[0]);
          }
        }
        if (SCENARIOS.has('plan')) add('plan', cli('plan', t, 'plan').ms);
        if (SCENARIOS.has('hash')) {
          // An empty manifest: every file is read (plan changes nothing, so it can be repeated).
          const h = cli(`hash-${t.name}`, t, 'plan', '--manifest-dir', path.join(work, 'no-manifest'));
          check(h.summary['hashed'] === t.files, `cold plan hashed ${h.summary['hashed']}`);
          add('hash-phase', h.hashMs);
          add('md5sum', md5sum(t));
        }
        if (SCENARIOS.has('touch')) {
          const when = new Date();
          let touched = 0;
          const dirs = fs.readdirSync(path.join(t.root, 'media'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
          dirs.forEach((e, j) => {
            if (j % 10 !== i % 10) return;
            fs.utimesSync(path.join(e.parentPath, e.name), when, when);
            touched++;
          });
          const s = cli('sync-touch', t, 'sync', '--concurrency', CONC);
          check(s.summary['hashed'] === touched && s.summary['uploaded'] === 0, `touch: ${touched} touched, hashed ${s.summary['hashed']}, uploaded ${s.summary['uploaded']}`);
          add('touch', s.ms);
          hashedTouch = [touched, s.summary['hashed']!];
        }
      }
      const med = (k: string): number => median(rows[k]!);
      if (rows['unchanged']) {
        const floor = med('find') + med('list');
        row(t, 'unchanged sync', med('unchanged'), 'find + bare listing', floor, `find ${fmt(med('find'))}, listing ${fmt(med('list'))}`);
      }
      if (rows['unchanged'] && rcloneChecksum.length > 0) {
        row(t, 'unchanged sync', med('unchanged'), 'rclone sync --checksum, unchanged', median(rcloneChecksum));
      }
      if (rows['plan']) row(t, 'plan, unchanged', med('plan'), 'find + bare listing', rows['find'] ? med('find') + med('list') : NaN);
      if (rows['hash-phase']) {
        const mbs = (ms: number): string => `${((t.bytes / 1e6) / (ms / 1000)).toFixed(0)} MB/s`;
        row(t, 'cold hash phase', med('hash-phase'), 'xargs -P2 md5sum', med('md5sum'), `${mbs(med('hash-phase'))} vs ${mbs(med('md5sum'))}`);
        out.push(`| ${t.name} | hash throughput ratio (target ≥ 0.8) | | | ${(med('md5sum') / med('hash-phase')).toFixed(2)}× of md5sum |`);
      }
      if (rows['touch']) {
        row(t, `10% touched sync (${hashedTouch[0]} touched, ${hashedTouch[1]} hashed, 0 uploaded)`, med('touch'), 'unchanged sync', rows['unchanged'] ? med('unchanged') : NaN);
      }
    }
    client.destroy();
    out.push('', gnuTime ? `peak RSS (MB): ${Object.entries(peakRss).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')}` : 'peak RSS: /usr/bin/time not installed');
    process.stdout.write(out.join('\n') + '\n');
    if (failed) process.exitCode = 1;
  } finally {
    server.kill('SIGTERM');
    fs.rmSync(work, { recursive: true, force: true });
  }
}

await main();
