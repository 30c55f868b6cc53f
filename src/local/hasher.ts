// The hash pool: MD5 + xxh64 of many files on all cores (Piscina worker threads).
// Small files travel in batches because a message round trip per 8 KiB file would cost more
// than hashing it; at most threads×2 batches are in flight so results stream back steadily
// and an abort has little queued work to throw away.

import { availableParallelism } from 'node:os';
import type { Piscina } from 'piscina';
import type { HashResult, HashTask } from './hash-worker.js';
import { SMALL_FILE_MAX } from './hash-worker.js';

export type { HashResult, HashTask } from './hash-worker.js';

/** Worker-safe flags (see workerSafe): those that take a value, and those that do not. */
const WITH_VALUE = new Set(['--import', '--require', '--loader', '--experimental-loader', '--conditions']);
const BARE = new Set(['--enable-source-maps', '--no-warnings', '--no-deprecation', '--preserve-symlinks', '--preserve-symlinks-main']);

/**
 * Piscina first tries require() on the worker file, which Node 20.19+ turns into require(esm); in
 * worker threads under load that aborts the whole process now and then (V8 fatal error
 * "IsGraphAsync must be used on an instantiated module", seen in the test suite). Without
 * require(esm) the require throws and piscina loads the file with import(), as on older Nodes.
 */
export const WORKER_EXEC_ARGV = [
  ...workerSafe(process.execArgv),
  ...(process.allowedNodeEnvironmentFlags.has('--no-experimental-require-module') ? ['--no-experimental-require-module'] : []),
];

/**
 * The process's flags a worker thread accepts. V8 and per-process flags (`--max-old-space-size`,
 * `--max-semi-space-size`, `--trace-gc`, `--stack-size`) make Worker throw
 * ERR_WORKER_INVALID_EXEC_ARGV, and the whole hash failed with them: only module loading and
 * warning flags are passed on (a loader or `--import` hook the process runs under).
 */
export function workerSafe(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^(--[a-z-]+)(=.*)?$/.exec(a) ?? (a === '-r' ? ['', '--require'] : undefined);
    const name = m?.[1];
    if (name === undefined || !(WITH_VALUE.has(name) || BARE.has(name) || /^--(no-)?experimental-[a-z-]+$/.test(name))) continue;
    out.push(a);
    // `--import x`: the value travels as the next argument.
    if (WITH_VALUE.has(name) && m?.[2] === undefined && i + 1 < argv.length) out.push(argv[++i]!);
  }
  return out;
}

const BATCH_FILES = 256;
const BATCH_BYTES = 4 * 1024 * 1024;
/** How long close() waits for threads still loading the worker module. */
const LOAD_WAIT_MS = 5_000;

/** Groups task indices: small files up to BATCH_FILES / BATCH_BYTES, each large file alone. */
export function makeBatches(tasks: readonly HashTask[]): number[][] {
  const batches: number[][] = [];
  let open: number[] = [];
  let openBytes = 0;
  tasks.forEach((task, i) => {
    if (task.size > SMALL_FILE_MAX) {
      batches.push([i]);
      return;
    }
    if (open.length > 0 && (open.length >= BATCH_FILES || openBytes + task.size > BATCH_BYTES)) {
      batches.push(open);
      open = [];
      openBytes = 0;
    }
    open.push(i);
    openBytes += task.size;
  });
  if (open.length > 0) batches.push(open);
  return batches;
}

export class Hasher {
  readonly threads: number;
  /** Piscina loads with the pool: a run that hashes nothing never loads it. */
  private pool: Promise<Piscina<HashTask[], HashResult[]>> | undefined;

  constructor(opts: { threads?: number } = {}) {
    this.threads = Math.max(1, opts.threads ?? availableParallelism());
  }

  /** Results come back in the order of `tasks`; `onResult` sees them as they finish. */
  async hashMany(
    tasks: HashTask[],
    onResult?: (r: HashResult, index: number) => void,
    signal?: AbortSignal,
  ): Promise<HashResult[]> {
    const results = new Array<HashResult>(tasks.length);
    await this.hashEach(tasks, (r, i) => {
      results[i] = r;
      onResult?.(r, i);
    }, signal);
    return tasks.length === 0 ? [] : results;
  }

  /**
   * Each result to `onResult` (with its task's index) as its batch finishes, in no set order, and
   * kept nowhere else: a run that hashes 100k files need not hold 100k results at once.
   */
  async hashEach(tasks: readonly HashTask[], onResult: (r: HashResult, index: number) => void, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const batches = makeBatches(tasks);
    if (batches.length === 0) return;
    const pool = await this.getPool();
    signal?.throwIfAborted();
    let next = 0;
    // The signal is not handed to Piscina: it terminates the worker of an aborted task even when
    // that worker runs another task too (piscina#934, with concurrentTasksPerWorker), and the
    // other task's late answer then crashes the process. On abort we stop scheduling and return;
    // batches still in flight are dropped, and close() ends the workers.
    const runner = async (): Promise<void> => {
      while (next < batches.length && !signal?.aborted) {
        const batch = batches[next++]!;
        const out = await pool.run(batch.map((i) => tasks[i]!));
        if (signal?.aborted) return;
        out.forEach((r, j) => onResult(r, batch[j]!));
      }
    };
    const inFlight = Math.min(batches.length, this.threads * 2);
    const work = Promise.all(Array.from({ length: inFlight }, runner));
    work.catch(() => undefined);
    let onAbort: (() => void) | undefined;
    const stopped = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal!.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await Promise.race([work, stopped]);
    } finally {
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
    signal?.throwIfAborted();
  }

  /**
   * Starts the workers ahead of the first hashMany, when the caller knows hashing will follow:
   * their start-up (a V8 isolate and the wasm module each) then overlaps other waiting.
   */
  warm(): void {
    // A failure to start shows again, and is thrown, at the first hashMany.
    this.getPool().catch(() => undefined);
  }

  /**
   * Waits for every worker to finish loading before ending them: Piscina loads the ESM worker
   * through require(), and a worker terminated in the middle of that aborts the whole process
   * (V8 fatal error in Node 20.19+'s require(esm)). With all threads started up front, a run that
   * hashed one small batch closed while the other thread was still loading: a loop of
   * open-hash-close crashed about once in several hundred cycles (test/model/hasher-close.test.ts).
   */
  async close(): Promise<void> {
    const loading = this.pool;
    this.pool = undefined;
    const pool = await loading?.catch(() => undefined);
    if (!pool) return;
    // Bounded: a worker that fails to start leaves pool.threads; one stuck loading is ended anyway.
    for (let waited = 0; waited < LOAD_WAIT_MS && pool.threads.some((t) => !this.ready.has(t.threadId)); waited += 5) {
      await new Promise((r) => setTimeout(r, 5));
    }
    await pool.destroy();
  }

  /** Threads that have loaded the worker module (Piscina's `workerCreate` comes after that). */
  private readonly ready = new Set<number>();

  private getPool(): Promise<Piscina<HashTask[], HashResult[]>> {
    this.pool ??= import('piscina').then(({ Piscina }) => this.startPool(Piscina));
    return this.pool;
  }

  private startPool(P: typeof Piscina): Piscina<HashTask[], HashResult[]> {
    const pool = new P<HashTask[], HashResult[]>({
      filename: new URL('./hash-worker.js', import.meta.url).href,
      execArgv: WORKER_EXEC_ARGV,
      // Threads start on demand: Piscina marks threads it starts up front as ready before they
      // have loaded anything (and says so by no event), so close() could not tell when it may end them.
      minThreads: 0,
      maxThreads: this.threads,
      idleTimeout: Infinity,
      // Each worker holds its next batch already, instead of idling for a round trip through
      // the main thread after each one (measured: ~10% faster on 100k small files).
      concurrentTasksPerWorker: 2,
    });
    pool.on('workerCreate', (w: { id: number }) => this.ready.add(w.id));
    return pool;
  }
}
