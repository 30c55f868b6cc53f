// Driving the REPL through its streams: lines in, transcript out, one prompt back per command.
import { PassThrough } from 'node:stream';
import { main } from '../../src/cli/main.js';

export const PROMPT = /storage-sync \[[^\]]*\]> /g;

export interface Driver {
  /** Everything printed so far. */
  readonly text: string;
  /** Sends a line and resolves with what it printed, once the prompt is back. */
  cmd(line: string): Promise<string>;
  send(line: string): void;
  /** Resolves with the transcript from `from` once `re` matches it. */
  waitFor(re: RegExp, from?: number): Promise<string>;
  /** The handler the REPL registered for process signals (bin.ts passes one). */
  claimed: ((sig: 'SIGINT' | 'SIGTERM') => boolean) | undefined;
  /** Ends the input (like Ctrl+D on a pipe) and resolves with the exit code. */
  close(): Promise<number>;
  done: Promise<number>;
}

const DEADLINE_MS = 30_000;

export async function startRepl(argv: string[], opts: { cwd: string; env: Record<string, string>; signal?: AbortSignal; onOutput?: (text: string, d: Driver) => void }): Promise<Driver> {
  const input = new PassThrough();
  const output = new PassThrough();
  let text = '';
  const waiters = new Set<() => boolean>();
  const d: Driver = {
    get text() {
      return text;
    },
    claimed: undefined,
    send(line) {
      input.write(line + '\n');
    },
    async cmd(line) {
      const from = text.length;
      d.send(line);
      const out = await d.waitFor(PROMPT, from);
      return out.replace(PROMPT, '');
    },
    waitFor(re, from = 0) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re} in:\n${text.slice(from)}`)), DEADLINE_MS);
        timer.unref();
        const check = (): boolean => {
          const slice = text.slice(from);
          const hit = new RegExp(re.source, re.flags.replace('g', '')).test(slice);
          if (hit) {
            clearTimeout(timer);
            resolve(slice);
          }
          return hit;
        };
        if (!check()) waiters.add(check);
      });
    },
    async close() {
      input.end();
      return d.done;
    },
    done: Promise.resolve(0),
  };
  output.on('data', (c: Buffer) => {
    text += c.toString();
    opts.onOutput?.(text, d);
    for (const w of [...waiters]) if (w()) waiters.delete(w);
  });
  d.done = main(argv, {
    stdin: input,
    stdout: output,
    stderr: output,
    env: opts.env,
    cwd: opts.cwd,
    signal: opts.signal ?? new AbortController().signal,
    claimSignals: (h) => {
      d.claimed = h;
    },
  });
  // The first prompt comes after the first scan (or straight away if main failed).
  await Promise.race([d.waitFor(PROMPT).catch(() => undefined), d.done]);
  return d;
}
