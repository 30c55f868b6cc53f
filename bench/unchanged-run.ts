// The manifest's bet, measured: a second sync over an unchanged tree against the physical floor of
// "what changed?" — a `find` stat walk plus one bare paginated listing of the same bucket.
//   node dist/bench/unchanged-run.js [--files 100000] [--seed 1] [--repeat 3]
// Generates a reproducible tree (sizes ~ exponential, mean 8 KiB, 20 files a folder), starts the
// local S3 server in its own process, uploads once, then times each measurement `repeat` times and
// prints medians and ratios.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const { values } = parseArgs({ options: { files: { type: 'string', default: '100000' }, seed: { type: 'string', default: '1' }, repeat: { type: 'string', default: '3' } } });
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const { ListObjectsV2Command, S3Client } = await import('@aws-sdk/client-s3');
const N = Number(values.files);
const REPEAT = Number(values.repeat);
const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.join(here, '../src/cli/bin.js');
const SERVER = path.join(here, '../scripts/s3-server.js');

/** xorshift32: the same tree for the same seed on every machine. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

function generate(root: string, n: number, seed: number): number {
  const r = rng(seed);
  let bytes = 0;
  const block = Buffer.alloc(256 * 1024);
  for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((r() * 4294967296) >>> 0, i);
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
  const old = new Date(Date.now() - 3_600_000);
  execFileSync('find', [root, '-type', 'f', '-exec', 'touch', '-d', old.toISOString(), '{}', '+']);
  return bytes;
}

function time<T>(fn: () => T): [number, T] {
  const t = process.hrtime.bigint();
  const v = fn();
  return [Number(process.hrtime.bigint() - t) / 1e6, v];
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ssync-bench-'));
  const server = spawn(process.execPath, [SERVER, '--port', '0', '--bucket', 'bench'], { stdio: ['ignore', 'pipe', 'inherit'] });
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
    process.stderr.write(`generating ${N} files in ${root}…\n`);
    const bytes = generate(root, N, Number(values.seed));
    // GNU time, when installed, gives each run's peak RSS (the target is under 300 MB at 100k files).
    const gnuTime = fs.existsSync('/usr/bin/time');
    const rssFile = path.join(os.tmpdir(), `ssync-bench-rss-${process.pid}`);
    const peakRss: Record<string, number> = {};
    const cli = (...args: string[]): Record<string, number> => {
      const argv = [BIN, ...args, '--json', '--root', root];
      const out = gnuTime
        ? execFileSync('/usr/bin/time', ['-f', '%M', '-o', rssFile, process.execPath, ...argv], { env, maxBuffer: 1 << 30 }).toString()
        : execFileSync(process.execPath, argv, { env, maxBuffer: 1 << 30 }).toString();
      if (gnuTime) peakRss[args[0]!] = Math.max(peakRss[args[0]!] ?? 0, Number(fs.readFileSync(rssFile, 'utf8').trim()) / 1024);
      return JSON.parse(out.trim().split('\n').pop()!) as Record<string, number>;
    };
    process.stderr.write('first sync (upload of the whole tree)…\n');
    const [firstMs, first] = time(() => cli('sync', '--concurrency', '16'));
    const client = new S3Client({
      endpoint: env['AWS_S3_ENDPOINT_URL']!, region: 'auto', forcePathStyle: true,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local-secret' },
    });
    const rows: Record<string, number[]> = { second: [], plan: [], find: [], list: [] };
    let second: Record<string, number> = {};
    for (let i = 0; i < REPEAT; i++) {
      process.stderr.write(`round ${i + 1}/${REPEAT}…\n`);
      const [ms, s] = time(() => cli('sync'));
      rows['second']!.push(ms);
      second = s;
      rows['plan']!.push(time(() => cli('plan'))[0]);
      rows['find']!.push(time(() => execFileSync('sh', ['-c', `find '${root}/media' -type f -printf '%s %T@\\n' > /dev/null`]))[0]);
      const t = process.hrtime.bigint();
      let token: string | undefined;
      let keys = 0;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: 'bench', Prefix: 'media/', ContinuationToken: token }));
        keys += page.KeyCount ?? 0;
        token = page.NextContinuationToken;
      } while (token);
      rows['list']!.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (keys !== N) throw new Error(`listing saw ${keys} keys, expected ${N}`);
    }
    client.destroy();
    const med = Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, median(v)])) as Record<string, number>;
    const floor = med['find']! + med['list']!;
    const fmt = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
    process.stdout.write(
      [
        `tree: ${N} files, ${(bytes / 1e6).toFixed(0)} MB; ${os.cpus().length} cores; median of ${REPEAT}`,
        `first sync: ${fmt(firstMs)} (uploaded ${first['uploaded']}, hashed ${first['hashed']})`,
        '',
        '| measurement | median | ratio to find + list |',
        '|---|---|---|',
        `| storage-sync sync, unchanged (hashed ${second['hashed']}, uploaded ${second['uploaded']}) | ${fmt(med['second']!)} | ${(med['second']! / floor).toFixed(2)}× |`,
        `| storage-sync plan, unchanged | ${fmt(med['plan']!)} | ${(med['plan']! / floor).toFixed(2)}× |`,
        `| find -printf stat walk | ${fmt(med['find']!)} | |`,
        `| bare paginated ListObjectsV2 | ${fmt(med['list']!)} | |`,
        `| find + list | ${fmt(floor)} | 1.00× |`,
        '',
        gnuTime ? `peak RSS: ${Object.entries(peakRss).map(([k, v]) => `${k} ${v.toFixed(0)} MB`).join(', ')} (first sync included)` : 'peak RSS: /usr/bin/time not installed',
      ].join('\n') + '\n',
    );
    if (second['hashed'] !== 0 || second['uploaded'] !== 0) process.exitCode = 1;
  } finally {
    server.kill('SIGTERM');
    fs.rmSync(root, { recursive: true, force: true });
  }
}

await main();
