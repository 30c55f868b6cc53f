// Projects on disk, the CLI run in-process with captured streams, and the CLI as a real child.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.js';

export const BIN = fileURLToPath(new URL('../../src/cli/bin.js', import.meta.url));

export interface Project {
  root: string;
  write(rel: string, content: string | Buffer, opts?: { ageMs?: number }): void;
  read(rel: string): string;
  exists(rel: string): boolean;
  remove(rel: string): void;
  /** Every file under the root except the manifest folder: rel path → MD5. */
  files(): Record<string, string>;
  cleanup(): void;
}

/**
 * Files are back-dated by default: a file written in the same clock tick as a sync is "racily
 * clean" and is re-read by the next run on purpose (git's rule), which tests of `hashed: 0`
 * must not trip over.
 */
export function makeProject(files: Record<string, string | Buffer> = {}): Project {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ssync-test-'));
  const p: Project = {
    root,
    write(rel, content, opts) {
      const abs = path.join(root, rel);
      fs.mkdirSync(path.dirname(abs), { recursive: true });
      fs.writeFileSync(abs, content);
      const t = new Date(Date.now() - (opts?.ageMs ?? 5000));
      fs.utimesSync(abs, t, t);
    },
    read: (rel) => fs.readFileSync(path.join(root, rel), 'utf8'),
    exists: (rel) => fs.existsSync(path.join(root, rel)),
    remove: (rel) => fs.rmSync(path.join(root, rel)),
    files: () => filesUnder(root, ['manifests']),
    cleanup: () => fs.rmSync(root, { recursive: true, force: true }),
  };
  for (const [rel, c] of Object.entries(files)) p.write(rel, c);
  return p;
}

export function md5(b: Buffer | string): string {
  return crypto.createHash('md5').update(b).digest('hex');
}

export function filesUnder(dir: string, skipTop: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const d of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      if (!rel && skipTop.includes(d.name)) continue;
      if (d.isDirectory()) walk(r);
      else if (d.isFile()) out[r] = md5(fs.readFileSync(path.join(dir, r)));
    }
  };
  if (fs.existsSync(dir)) walk('');
  return out;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Parsed NDJSON lines of stdout (with --json). */
  events: Record<string, unknown>[];
  summary: Record<string, number | string | boolean> | undefined;
}

/** The NDJSON lines of stdout; other output (human lines, pretty-printed JSON) is passed over. */
function parseEvents(stdout: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{') || !line.endsWith('}')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // not an event line
    }
  }
  return out;
}

function result(code: number, stdout: string, stderr: string): CliResult {
  const events = parseEvents(stdout);
  const summary = events.find((e) => e['event'] === 'summary') as CliResult['summary'];
  return { code, stdout, stderr, events, summary };
}

/** The CLI in this process: fast, and it shares the in-process S3 server without deadlock. */
export async function runCli(args: string[], opts: { cwd: string; env: Record<string, string>; signal?: AbortSignal }): Promise<CliResult> {
  const o = captureOutput();
  const code = await main(args, { stdout: o.out, stderr: o.err, env: opts.env, cwd: opts.cwd, signal: opts.signal ?? new AbortController().signal });
  return result(code, o.stdout(), o.stderr());
}

/** Two streams to hand `main()` as stdout and stderr, and what was written to each. */
export function captureOutput(): { out: PassThrough; err: PassThrough; stdout(): string; stderr(): string } {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (c: Buffer) => (stdout += c.toString()));
  err.on('data', (c: Buffer) => (stderr += c.toString()));
  return { out, err, stdout: () => stdout, stderr: () => stderr };
}

/** The real binary in a child process (never spawnSync: the S3 server lives in this process). */
export function spawnCli(
  args: string[],
  opts: { cwd: string; env: Record<string, string>; onStdout?: (chunk: string, child: ReturnType<typeof spawn>) => void },
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd, env: { PATH: process.env.PATH ?? '', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      opts.onStdout?.(c.toString(), child);
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(result(code ?? (signal ? 128 : 1), stdout, stderr)));
  });
}
