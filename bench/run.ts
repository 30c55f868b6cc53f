// `npm run bench -- [options]`: storage-sync side by side with rclone, aws-cli and s3cmd on two
// generated trees, against a local S3 server in its own process, with physical references
// (a find stat walk, md5sum over the tree, a bare listing) measured in the same run.
// Options (defaults in brackets; --quick: 2,000 files, 100 MB, 1 repeat, smaller scale check):
//   --files N [100000]        tree A: small files (exponential sizes around 8 KiB)
//   --large MB [3000]         tree B: total size of the large files (5-200 MB each)
//   --trees A,B [A,B]         --tools LIST [all]: storage-sync,rclone-checksum,rclone,rclone-bisync,aws,s3cmd
//   --repeat N [3]            runs per measurement, median reported
//   --repeat-transfer N       runs of first upload and download [= --repeat]
//   --concurrency N [8]       the same for every tool that has the setting
//   --seed N [1]   --scale LIST [100000,250000,500000,1000000] (or "none")
//   --out DIR [bench/results; --quick: bench/results/quick] --work DIR [os tmp] --keep (keep the trees) --aws BIN [aws]
//   --timeout S [3600]        a single run is killed (and marked wrong) after S seconds
//   --skip LIST               scenarios to leave out: plan, touch, modify, add-delete, download
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { applyChange, generate, totalBytes, type Change, type Expected } from './tree.js';
import { GNU_TIME, measure, type Cmd, type Measured } from './measure.js';
import { makeTools, TOOL_IDS, type Counts, type Place, type Tool } from './tools.js';
import { Checker, type Verdict } from './verify.js';
import { writeReport, type Results, type Run, type Scenario, type ScaleRow, type Reference } from './report.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.join(here, '../..');

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    files: { type: 'string' },
    large: { type: 'string' },
    trees: { type: 'string', default: 'A,B' },
    tools: { type: 'string', default: TOOL_IDS.join(',') },
    repeat: { type: 'string' },
    'repeat-transfer': { type: 'string' },
    concurrency: { type: 'string', default: '8' },
    seed: { type: 'string', default: '1' },
    scale: { type: 'string' },
    out: { type: 'string' },
    work: { type: 'string', default: os.tmpdir() },
    keep: { type: 'boolean', default: false },
    aws: { type: 'string', default: 'aws' },
    timeout: { type: 'string', default: '3600' },
    skip: { type: 'string', default: '' },
  },
});
const quick = values.quick;
const intOpt = (v: string | undefined, d: number, name: string): number => {
  const n = v === undefined ? d : Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number, got ${v}`);
  return n;
};
const FILES = intOpt(values.files, quick ? 2000 : 100_000, 'files');
const LARGE_MB = intOpt(values.large, quick ? 100 : 3000, 'large');
const REPEAT = Math.max(1, intOpt(values.repeat, quick ? 1 : 3, 'repeat'));
const REPEAT_TRANSFER = Math.max(1, intOpt(values['repeat-transfer'], REPEAT, 'repeat-transfer'));
const CONCURRENCY = Math.max(1, intOpt(values.concurrency, 8, 'concurrency'));
const SEED = intOpt(values.seed, 1, 'seed');
const TIMEOUT_MS = intOpt(values.timeout, 3600, 'timeout') * 1000;
const SCALE =
  values.scale === 'none'
    ? []
    : (values.scale ?? (quick ? '10000,20000,40000' : '100000,250000,500000,1000000')).split(',').map((s) => intOpt(s, 0, 'scale'));
// A quick run's figures go beside the full run's, not over them (results/quick is not committed).
const OUT = values.out ?? path.join(repoRoot, quick ? 'bench/results/quick' : 'bench/results');
// Scenarios left out (e.g. --skip download for a big tree on a short budget); the report shows which ran.
const SKIP = new Set(values.skip.split(',').filter(Boolean));
const TREES = values.trees.split(',').filter(Boolean) as ('A' | 'B')[];
for (const t of TREES) if (t !== 'A' && t !== 'B') throw new Error(`--trees: A and/or B, got ${t}`);

const t00 = Date.now();
const say = (msg: string): void => {
  process.stderr.write(`[${((Date.now() - t00) / 1000).toFixed(1).padStart(7)}s] ${msg}\n`);
};

function machine(): Record<string, string | number> {
  const cpus = os.cpus();
  const sh = (cmd: string, args: string[]): string => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8' }).trim();
    } catch {
      return 'unknown';
    }
  };
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    os: sh('sh', ['-c', '. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"']),
    node: process.version,
    filesystem: sh('sh', ['-c', `df -T '${values.work}' | tail -n 1 | awk '{print $2}'`]),
    gitCommit: sh('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD']),
  };
}

async function startServer(): Promise<{ endpoint: string; bucket: string; stop: () => void; pid: number }> {
  const child = spawn(process.execPath, [path.join(here, 's3-server.js'), '--port', '0', '--bucket', 'bench'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (c: Buffer) => {
      buf += c.toString();
      if (buf.includes('\n')) resolve(buf);
    });
    child.on('exit', (code) => reject(new Error(`S3 server exited (${code}) before it listened`)));
  });
  const endpoint = /endpoint=(\S+)/.exec(line)?.[1];
  if (!endpoint) throw new Error(`S3 server said: ${line}`);
  return { endpoint, bucket: 'bench', stop: () => child.kill('SIGTERM'), pid: child.pid! };
}

/** The server's CPU so far, from /proc (it runs in its own process so the tools don't pay for it). */
function cpuMsOf(pid: number): number | null {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const work = fs.mkdtempSync(path.join(values.work, 'ssync-bench-'));
  const logs = path.join(work, 'logs');
  const server = await startServer();
  const checker = Checker.connect(server.endpoint, server.bucket);
  const { tools, missing } = makeTools(values.tools.split(',').filter(Boolean), { server, concurrency: CONCURRENCY, configDir: work }, values.aws);
  say(`S3 server: fauxqs ${server.endpoint} (own process, pid ${server.pid}, body limit raised to 1 GiB)`);
  for (const t of tools) say(`tool: ${t.label} — ${t.version}`);
  for (const m of missing) say(`skipped: ${m}`);
  if (!GNU_TIME) say('GNU time (/usr/bin/time) not found: no CPU or peak RSS figures');
  const results: Results = {
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    startedAt: startedAt.toISOString(),
    finishedAt: '',
    machine: machine(),
    server: `fauxqs (in memory) via node dist/bench/s3-server.js on 127.0.0.1, its own process; request-body limit raised from 11 MiB to 1 GiB so no peer needs special part sizes`,
    options: { skip: [...SKIP].join(',') || 'none', files: FILES, largeMB: LARGE_MB, repeat: REPEAT, repeatTransfer: REPEAT_TRANSFER, concurrency: CONCURRENCY, seed: SEED, quick },
    tools: Object.fromEntries(tools.map((t) => [t.label, { version: t.version, flags: t.flags }])),
    skipped: missing,
    trees: {},
    references: [],
    runs: [],
    scale: [],
    notes: [
      'Page cache warm: every tree is generated (or copied) just before it is used.',
      'CPU is user + sys of the tool process and its children (GNU time), without the S3 server, which runs in its own process.',
      'Each tool syncs its own copy of the tree into its own key prefix; changes are seeded, so every tool sees the same ones.',
      'correct = after the run, the bucket prefix holds exactly the expected keys, sizes and content (plain ETag = MD5; a multipart ETag recomputed from the content) and the folder exactly the expected files (MD5).',
      'A no-op run (unchanged, plan) counts as a no-op only if the tool reports nothing transferred or deleted.',
    ],
  };
  try {
    for (const tree of TREES) await benchTree(tree, tools, server, checker, work, logs, results);
    if (SCALE.length > 0) results.scale = await scaleCheck(work, results);
  } catch (err) {
    // What ran so far is still reported; the run fails.
    results.notes.push(`the run stopped early: ${(err as Error).message}`);
    say(`stopped early: ${(err as Error).stack ?? String(err)}`);
    process.exitCode = 1;
  } finally {
    results.finishedAt = new Date().toISOString();
    checker.client.destroy();
    server.stop();
  }
  const { markdown, files } = writeReport(results, OUT);
  process.stdout.write(markdown + '\n');
  say(`results: ${files.join(', ')}`);
  if (values.keep) say(`trees and logs kept in ${work}`);
  else {
    say(`removing ${work}…`);
    fs.rmSync(work, { recursive: true, force: true });
  }
  const wrong = results.runs.filter((r) => !r.correct);
  if (wrong.some((r) => r.tool === 'storage-sync')) process.exitCode = 1;
}

interface Ctx {
  tree: 'A' | 'B';
  server: { endpoint: string; bucket: string; pid: number };
  checker: Checker;
  logs: string;
  results: Results;
}

async function benchTree(
  tree: 'A' | 'B',
  tools: Tool[],
  server: { endpoint: string; bucket: string; pid: number },
  checker: Checker,
  work: string,
  logs: string,
  results: Results,
): Promise<void> {
  const master = path.join(work, `master-${tree}`);
  say(`tree ${tree}: generating…`);
  const t0 = Date.now();
  let lastSaid = t0;
  const expected0 = generate(master, { name: tree, files: FILES, bytes: LARGE_MB * 1e6, seed: SEED }, (done, total) => {
    if (Date.now() - lastSaid > 2000 && (lastSaid = Date.now())) say(`tree ${tree}: ${tree === 'A' ? `${done} / ${total} files` : `${(done / 1e6).toFixed(0)} / ${(total / 1e6).toFixed(0)} MB`}`);
  });
  const bytes = totalBytes(expected0);
  const folders = new Set([...expected0.keys()].map((k) => path.posix.dirname(k))).size;
  results.trees[tree] = { files: expected0.size, bytes, folders, description: tree === 'A' ? 'many small files (exponential sizes, mean ~8 KiB, 20 a folder)' : 'large media (log-uniform sizes, 5-200 MB)' };
  say(`tree ${tree}: ${expected0.size} files, ${(bytes / 1e6).toFixed(0)} MB in ${folders} folders (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  const ctx: Ctx = { tree, server, checker, logs, results };

  // Physical references on the master tree (the same bytes every tool reads).
  for (let i = 0; i < REPEAT; i++) {
    await reference(ctx, 'find stat walk', { argv: ['sh', '-c', `find '${master}' -type f -printf '%s %T@\\n' > /dev/null`], env: process.env });
    await reference(ctx, 'md5sum (xargs -P2)', { argv: ['sh', '-c', `find '${master}' -type f -print0 | xargs -0 -P2 md5sum > /dev/null`], env: process.env });
  }
  let listed = false;
  for (const tool of tools) {
    await benchTool(ctx, tool, master, expected0, work, async (prefix) => {
      if (listed) return;
      listed = true;
      for (let i = 0; i < REPEAT; i++) {
        const m = await measure({ argv: [process.execPath, path.join(here, 'list.js'), server.endpoint, server.bucket, prefix], env: process.env }, logs, `${tree}-list-${i}`, TIMEOUT_MS);
        const out = JSON.parse(m.stdout.trim()) as { keys: number; ms: number };
        const ok = m.exitCode === 0 && out.keys === expected0.size;
        results.references.push({ tree, name: 'bare ListObjectsV2', wallMs: out.ms, processWallMs: m.wallMs, cpuMs: cpu(m), maxRssMB: m.maxRssMB, ok });
        say(`${tree} reference bare ListObjectsV2 ${i + 1}/${REPEAT}: ${(out.ms / 1000).toFixed(2)} s (${out.keys} keys; process ${(m.wallMs / 1000).toFixed(2)} s)`);
      }
    });
  }
  discard(master, work);
}

const cpu = (m: Measured): number | null => (m.userMs === null || m.sysMs === null ? null : m.userMs + m.sysMs);

async function reference(ctx: Ctx, name: string, cmd: Cmd): Promise<void> {
  const m = await measure(cmd, ctx.logs, `${ctx.tree}-${name}`, TIMEOUT_MS);
  const r: Reference = { tree: ctx.tree, name, wallMs: m.wallMs, processWallMs: m.wallMs, cpuMs: cpu(m), maxRssMB: m.maxRssMB, ok: m.exitCode === 0 };
  ctx.results.references.push(r);
  say(`${ctx.tree} reference ${name}: ${(m.wallMs / 1000).toFixed(2)} s`);
}

async function benchTool(ctx: Ctx, tool: Tool, master: string, expected0: Expected, work: string, onUploaded: (prefix: string) => Promise<void>): Promise<void> {
  const { tree, checker } = ctx;
  const root = path.join(work, tree, tool.id);
  fs.mkdirSync(root, { recursive: true });
  const place: Place = { root, tree: path.join(root, 'tree'), prefix: '' };
  const tcp = Date.now();
  execFileSync('cp', ['-a', master, place.tree]);
  say(`${tree} ${tool.label}: tree copied in ${((Date.now() - tcp) / 1000).toFixed(1)} s`);
  const expected: Expected = new Map(expected0);

  const record = async (scenario: Scenario, i: number, n: number, cmd: Cmd, check: () => Promise<Verdict>, noop: boolean): Promise<void> => {
    const serverBefore = cpuMsOf(ctx.server.pid);
    const m = await measure(cmd, ctx.logs, `${tree}-${tool.id}-${scenario}-${i}`, TIMEOUT_MS);
    const serverAfter = cpuMsOf(ctx.server.pid);
    let counts: Counts;
    try {
      counts = tool.parse(m.stdout, m.stderr);
    } catch {
      counts = { transferred: 0, deleted: 0, hashed: null, errors: 1 };
    }
    const tc = Date.now();
    const verdict = await check();
    const checkMs = Date.now() - tc;
    const problems = [...verdict.problems];
    if (m.exitCode !== 0) problems.unshift(`exit code ${m.exitCode}${m.timedOut ? ' (timed out)' : ''}: ${lastLine(m.stderr)}`);
    if (counts.errors > 0) problems.unshift(`the tool reported ${counts.errors} errors`);
    const notNoop = noop && (counts.transferred > 0 || counts.deleted > 0);
    const run: Run = {
      tree,
      tool: tool.label,
      scenario,
      repeat: i,
      wallMs: m.wallMs,
      cpuMs: cpu(m),
      maxRssMB: m.maxRssMB,
      serverCpuMs: serverBefore !== null && serverAfter !== null ? serverAfter - serverBefore : null,
      exitCode: m.exitCode,
      transferred: counts.transferred,
      deleted: counts.deleted,
      hashed: counts.hashed,
      correct: m.exitCode === 0 && counts.errors === 0 && verdict.ok,
      noop: noop ? !notNoop : null,
      problems: problems.slice(0, 10),
    };
    ctx.results.runs.push(run);
    say(
      `${tree} ${tool.label.padEnd(22)} ${scenario.padEnd(12)} ${i + 1}/${n}: ${(m.wallMs / 1000).toFixed(2)} s` +
        `${run.cpuMs !== null ? `, cpu ${(run.cpuMs / 1000).toFixed(2)} s` : ''}${run.maxRssMB !== null ? `, rss ${run.maxRssMB.toFixed(0)} MB` : ''}` +
        `, moved ${counts.transferred}, deleted ${counts.deleted}${counts.hashed !== null ? `, hashed ${counts.hashed}` : ''}` +
        ` ${run.correct ? 'correct' : `WRONG: ${problems.slice(0, 2).join('; ')}`}${notNoop ? ' (NOT a no-op)' : ''} [checked in ${(checkMs / 1000).toFixed(1)} s]`,
    );
  };
  const checkBoth = async (): Promise<Verdict> => {
    const local = checker.checkLocal(place.tree, expected);
    const remote = await checker.checkRemote(place.prefix, expected, place.tree);
    return { ok: local.ok && remote.ok, problems: [...local.problems, ...remote.problems] };
  };

  // First upload: each repeat into a fresh prefix, with the tool's state forgotten; the last is kept.
  for (let i = 0; i < REPEAT_TRANSFER; i++) {
    if (i > 0) await checker.deletePrefix(place.prefix);
    place.prefix = `${tree}/${tool.id}/u${i}/`;
    tool.reset(place);
    await record('first upload', i, REPEAT_TRANSFER, tool.upload(place, true), checkBoth, false);
  }
  await onUploaded(place.prefix);
  for (let i = 0; i < REPEAT; i++) await record('unchanged', i, REPEAT, tool.upload(place, false), checkBoth, true);
  if (tool.plan && !SKIP.has('plan')) for (let i = 0; i < REPEAT; i++) await record('plan', i, REPEAT, tool.plan(place), checkBoth, true);
  const changes: [Scenario, Change][] = [
    ['touch 10%', 'touch'],
    ['modify 1%', 'modify'],
    ['add+del 1%', 'add-delete'],
  ];
  for (const [scenario, change] of changes) {
    if (SKIP.has(scenario) || SKIP.has(change)) continue;
    for (let i = 0; i < REPEAT; i++) {
      applyChange(place.tree, expected, tree, change, SEED, `${tree}-${change}-${i}`);
      await record(scenario, i, REPEAT, tool.upload(place, false), checkBoth, false);
    }
  }
  if (tool.download && !SKIP.has('download')) {
    for (let i = 0; i < REPEAT_TRANSFER; i++) {
      const dl: Place = { root: path.join(work, tree, `${tool.id}-download-${i}`), tree: '', prefix: place.prefix };
      dl.tree = path.join(dl.root, 'tree');
      fs.mkdirSync(dl.tree, { recursive: true });
      const check = async (): Promise<Verdict> => {
        const local = checker.checkLocal(dl.tree, expected);
        const remote = await checker.checkRemote(place.prefix, expected, place.tree);
        return { ok: local.ok && remote.ok, problems: [...local.problems, ...remote.problems] };
      };
      await record('download', i, REPEAT_TRANSFER, tool.download(dl), check, false);
      discard(dl.root, work);
    }
  }
  // The server keeps objects in memory: free this tool's before the next one starts.
  const tc = Date.now();
  await checker.deletePrefix(place.prefix);
  discard(root, work);
  say(`${tree} ${tool.label}: cleaned up in ${((Date.now() - tc) / 1000).toFixed(1)} s`);
}

/**
 * Deleting tens of thousands of small files takes a minute on a busy disk: folders are moved
 * aside (a rename) and deleted once the report is written.
 */
let trashCount = 0;
function discard(dir: string, work: string): void {
  const trash = path.join(work, 'trash');
  fs.mkdirSync(trash, { recursive: true });
  fs.renameSync(dir, path.join(trash, String(trashCount++)));
}

function lastLine(s: string): string {
  return s.trim().split('\n').pop()?.slice(0, 300) ?? '';
}

async function scaleCheck(work: string, results: Results): Promise<ScaleRow[]> {
  const rows: ScaleRow[] = [];
  for (const n of [...SCALE].sort((a, b) => a - b)) {
    // A manifest of its own per size: each measurement starts from a manifest written in one go.
    const dir = path.join(work, `scale-${n}`);
    fs.mkdirSync(dir, { recursive: true });
    say(`scale check: building a manifest of ${n} entries…`);
    const b = spawnSync(process.execPath, [path.join(here, 'scale.js'), 'build', dir, String(n)], { encoding: 'utf8', timeout: TIMEOUT_MS, killSignal: 'SIGKILL' });
    const p = b.status === 0 ? spawnSync(process.execPath, [path.join(here, 'scale.js'), 'plan', dir, String(n)], { encoding: 'utf8', timeout: TIMEOUT_MS, killSignal: 'SIGKILL' }) : b;
    fs.rmSync(dir, { recursive: true, force: true });
    if (p.status !== 0) {
      const why = `scale check at ${n}: ${p === b ? 'build' : 'plan'} failed (${p.signal ?? p.status}): ${lastLine(p.stderr ?? '')}`;
      results.notes.push(why);
      say(why);
      continue;
    }
    const row = JSON.parse(p.stdout.trim()) as ScaleRow;
    rows.push(row);
    say(`scale check: ${n} paths planned in ${(row.totalMs / 1000).toFixed(2)} s, peak RSS ${row.peakRssMB.toFixed(0)} MB`);
  }
  return rows;
}

await main();
