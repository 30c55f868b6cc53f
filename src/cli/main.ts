// The CLI as a function: argv and streams in, exit code out. bin.ts wires it to the process.
// Only what every command needs is imported up front: each command's modules (the S3 SDK, LMDB,
// the SQL Server driver, the REPL) load when that command runs, so `--version`, `--help` and a
// sync without SQL Server do not pay for the others (mssql alone costs ~100 ms to load).
import path from 'node:path';
import { SyncError, UsageError, oneLine } from '../core/errors.js';
import type { Mode } from '../core/types.js';
import { EventStream, makeRedactor } from '../engine/events.js';
import { resolveSettings, type Overrides, type Settings } from '../engine/settings.js';
import { EnvSource } from '../credentials/env-source.js';
import { resolveCredentials } from '../credentials/resolve.js';
import { secretsOf, type CredentialSource } from '../credentials/source.js';
import { mssqlTarget } from '../credentials/mssql-target.js';
import { ndjsonRenderer } from '../render/ndjson.js';
import { HumanRenderer, type HumanOptions } from '../render/human.js';
import { RunLog } from '../render/log-file.js';
import { REMOTE_ACTIONS, parseArgs } from './parse.js';

/** The SQL Server credential store and its driver: loaded only when a connection string is set. */
async function loadMssql() {
  const [config, store] = await Promise.all([import('../credentials/mssql-config.js'), import('../credentials/mssql-store.js')]);
  return { mssqlSecrets: config.mssqlSecrets, MssqlStore: store.MssqlStore, MssqlSource: store.MssqlSource };
}

const REPL_COMMANDS = ['repl', 'ui', 'storage-sync-ui'];

export interface CliIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** For commands that read (the REPL, `creds set` without a value); absent in scripted calls. */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Aborted on SIGINT/SIGTERM (reason: the signal name). */
  signal: AbortSignal;
  /**
   * The REPL handles SIGINT itself (stop the running apply, not the process): bin.ts passes this,
   * and a handler that returns true has taken the signal.
   */
  claimSignals?: (handler: (sig: 'SIGINT' | 'SIGTERM') => boolean) => void;
  /** Extra credential sources after the environment (the SQL Server store plugs in here). */
  sources?: CredentialSource[];
}

function modeOf(a: Record<string, unknown>, command: string): Mode | undefined {
  const flags = [a['two-way'] && 'two-way', a['upload-only'] && 'upload', a['download-only'] && 'download'].filter(Boolean) as Mode[];
  if (flags.length > 1) throw new UsageError('choose one of --two-way, --upload-only, --download-only');
  const mode = (a['mode'] as Mode | undefined) ?? flags[0];
  if (a['mode'] && flags[0] && flags[0] !== a['mode']) throw new UsageError(`--mode ${String(a['mode'])} contradicts --${flags[0]}`);
  if (command === 'sync-storage' && mode && mode !== 'two-way') throw new UsageError('sync-storage is always two-way');
  return command === 'sync-storage' ? 'two-way' : mode;
}

export function overridesFrom(a: Record<string, unknown>, command: string): Overrides {
  const o: Overrides = {};
  const set = <K extends keyof Overrides>(k: K, v: unknown): void => {
    if (v !== undefined) o[k] = v as Overrides[K];
  };
  set('root', a['root']);
  set('config', a['config']);
  set('profile', a['profile']);
  set('mode', modeOf(a, command));
  set('dryRun', a['dry-run']);
  set('delete', a['delete']);
  set('maxDelete', a['max-delete']);
  set('force', a['force']);
  set('conflict', a['conflict']);
  set('concurrency', a['concurrency']);
  set('include', a['include']);
  set('exclude', a['exclude']);
  set('manifestDir', a['manifest-dir']);
  set('trash', a['trash']);
  if (typeof o.concurrency === 'number' && Number.isNaN(o.concurrency)) throw new UsageError('--concurrency must be a number');
  return o;
}

const SYNC_COMMANDS = new Set(['sync', 'plan', 'apply', 'update-storage', 'sync-storage']);
const KNOWN_COMMANDS = new Set([...SYNC_COMMANDS, 'status', 'manifest', 'creds', ...REPL_COMMANDS]);

export async function main(argv: string[], io: CliIO): Promise<number> {
  let redact = (s: string): string => s;
  let json = argv.includes('--json');
  let debug = false;
  try {
    const parsed = await parseArgs(argv);
    if (parsed.output) {
      io.stdout.write(parsed.output + '\n');
      return 0;
    }
    const a = parsed.args;
    json = a['json'] === true;
    debug = a['log-level'] === 'debug';
    const command = parsed.command ?? '';
    // Nothing but a known command may reach a sync: a word yargs lets through (`help` was one)
    // must never fall through to a two-way sync.
    if (!KNOWN_COMMANDS.has(command)) throw new UsageError(`unknown command "${command}" (see --help)`);
    const settings = resolveSettings(overridesFrom(a, command), io.cwd);
    if (command === 'status') return await (await import('./status.js')).statusCommand(settings, io, json);
    const action = a['action'] as string;
    if (command === 'manifest' && !REMOTE_ACTIONS.has(action)) {
      return await (await import('./manifest-cmd.js')).manifestCommand(settings, action, a['path'] as string | undefined, io);
    }

    // The SQL password is kept out of every message from here on, whatever raised it.
    const target = mssqlTarget(io.env, settings.mssql);
    const sql = target ? await loadMssql() : undefined;
    if (target && sql) redact = makeRedactor(sql.mssqlSecrets(target.connectionString));
    if (command === 'creds') return await (await import('./creds-cmd.js')).credsCommand(settings, a, io, json);

    // SQL Server comes after the environment (per key); its one connection is closed as soon as
    // the credentials are read, so a long sync holds no database connection.
    const sqlStore = target && sql ? new sql.MssqlStore(target) : undefined;
    let credentials: Awaited<ReturnType<typeof resolveCredentials>>;
    try {
      const sqlSources = sqlStore && sql ? [new sql.MssqlSource(sqlStore)] : [];
      credentials = await resolveCredentials(settings.profile, [new EnvSource(io.env), ...sqlSources, ...(io.sources ?? [])]);
    } finally {
      await sqlStore?.close();
    }
    redact = makeRedactor([...secretsOf(credentials), ...(sqlStore?.secrets ?? [])]);
    if (command === 'manifest') {
      const { manifestCommand } = await import('./manifest-cmd.js');
      return await manifestCommand(settings, action, a['path'] as string | undefined, io, { credentials, json, deep: a['deep'] === true, redact });
    }
    if (REPL_COMMANDS.includes(command)) return await (await import('../repl/repl.js')).replCommand(settings, credentials, io, sqlStore?.secrets ?? []);
    return await runCommand(command, a, settings, credentials, io, json, redact);
  } catch (err) {
    const code = err instanceof SyncError ? err.exitCode : 1;
    const message = redact(oneLine(err));
    io.stderr.write(`storage-sync: ${message}\n`);
    if (debug && err instanceof Error && err.stack) io.stderr.write(redact(err.stack) + '\n');
    if (json) io.stdout.write(JSON.stringify({ event: 'error', exitCode: code, message }) + '\n');
    return code;
  }
}

async function runCommand(
  command: string,
  a: Record<string, unknown>,
  settings: Settings,
  credentials: Awaited<ReturnType<typeof resolveCredentials>>,
  io: CliIO,
  json: boolean,
  redact: (s: string) => string,
): Promise<number> {
  const [{ run }, { profilePaths }] = await Promise.all([import('../engine/run.js'), import('../manifest/manifest.js')]);
  const events = new EventStream();
  const ndjson = json ? ndjsonRenderer(io.stdout, redact) : undefined;
  if (ndjson) events.on(ndjson);
  else {
    const progress = (a['progress'] as boolean | undefined) ?? io.stderr.isTTY === true;
    const human = new HumanRenderer(io.stdout, io.stderr, { progress, everyFile: !io.stderr.isTTY, columns: io.stderr.columns ?? 100, level: (a['log-level'] as HumanOptions['level'] | undefined) ?? 'info' }, redact);
    events.on(human.listener);
  }
  let runId = '';
  events.on((e) => {
    if (e.event === 'start') runId = e.runId;
  });
  const logFile = a['log-file'] as string | undefined;
  const log = new RunLog(() => {
    const files = [path.join(profilePaths(settings.manifestDir, settings.profile).logs, `${runId}.ndjson`)];
    if (logFile) files.push(path.resolve(io.cwd, logFile));
    return files;
  }, redact);
  events.on(log.listener);
  try {
    const kind = command === 'plan' ? 'plan' : command === 'apply' ? 'apply' : 'sync';
    const req = { command: kind, settings, credentials, events, signal: io.signal } as const;
    const file = a['file'] as string | undefined;
    const result = await run(file ? { ...req, planFile: path.resolve(io.cwd, file) } : req);
    return result.exitCode;
  } finally {
    ndjson?.flush();
    log.close();
  }
}
