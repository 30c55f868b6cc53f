// Runs one command and measures it: wall time here, CPU (user + sys) and peak RSS from GNU time,
// which reports the rusage of the command and every descendant it waited for.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface Cmd {
  argv: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface Measured {
  wallMs: number;
  userMs: number | null;
  sysMs: number | null;
  maxRssMB: number | null;
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export const GNU_TIME = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

/**
 * Runs `cmd` with its output in files under `logDir` (a first upload of 100k files writes tens
 * of MB of log lines), killing its process group after `timeoutMs`.
 */
export async function measure(cmd: Cmd, logDir: string, label: string, timeoutMs: number): Promise<Measured> {
  fs.mkdirSync(logDir, { recursive: true });
  const base = path.join(logDir, label.replace(/[^A-Za-z0-9._-]+/g, '_'));
  const outFile = `${base}.out`;
  const errFile = `${base}.err`;
  const timeFile = `${base}.time`;
  fs.rmSync(timeFile, { force: true });
  const out = fs.openSync(outFile, 'w');
  const err = fs.openSync(errFile, 'w');
  const argv = GNU_TIME ? [GNU_TIME, '-f', '%e %U %S %M', '-o', timeFile, ...cmd.argv] : cmd.argv;
  const t0 = process.hrtime.bigint();
  let timedOut = false;
  const exitCode = await new Promise<number>((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { env: cmd.env, cwd: cmd.cwd, stdio: ['ignore', out, err], detached: true });
    const timer = setTimeout(() => {
      timedOut = true;
      // The command's own process group: only what this harness started.
      if (child.pid) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }, timeoutMs);
    child.on('error', () => {
      clearTimeout(timer);
      resolve(127);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? (signal ? 128 + 9 : 1));
    });
  });
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  fs.closeSync(out);
  fs.closeSync(err);
  let userMs: number | null = null;
  let sysMs: number | null = null;
  let maxRssMB: number | null = null;
  if (GNU_TIME && fs.existsSync(timeFile)) {
    // GNU time writes "Command exited with non-zero status N" first when the command failed.
    const line = fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop() ?? '';
    const [, u, s, m] = line.split(' ').map(Number);
    if (u !== undefined && s !== undefined && m !== undefined && [u, s, m].every(Number.isFinite)) {
      userMs = u * 1000;
      sysMs = s * 1000;
      maxRssMB = m / 1024;
    }
  }
  return { wallMs, userMs, sysMs, maxRssMB, exitCode, stdout: fs.readFileSync(outFile, 'utf8'), stderr: fs.readFileSync(errFile, 'utf8'), timedOut };
}

/** A tool's version line, or undefined when it is not installed. */
export function versionOf(bin: string, args: string[] = ['--version'], env: NodeJS.ProcessEnv = process.env): string | undefined {
  const r = spawnSync(bin, args, { encoding: 'utf8', env, timeout: 30_000 });
  if (r.error || r.status !== 0) return undefined;
  return `${r.stdout}${r.stderr}`.trim().split('\n')[0]?.trim();
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
