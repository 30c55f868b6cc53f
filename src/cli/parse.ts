// The command-line contract (cli-contract.md) as a yargs parser. Parsing only: main.ts dispatches,
// so the CLI can run in-process with its own streams (tests, the REPL).
import type { Argv } from 'yargs';
import { CONFLICT_POLICIES, MODES } from '../core/types.js';
import { UsageError } from '../core/errors.js';

export { VERSION } from './version.js';
import { VERSION } from './version.js';

/** manifest actions that talk to the bucket (they need credentials); the others read the base only. */
export const REMOTE_ACTIONS: ReadonlySet<string> = new Set(['verify', 'rebuild']);

export interface Parsed {
  command: string | undefined;
  args: Record<string, unknown>;
  /** Help or version text when asked for; nothing else runs then. */
  output: string;
}

type OptionSpec = {
  type: 'string' | 'boolean' | 'number';
  choices?: readonly string[];
  array?: true;
  describe: string;
  defaultDescription?: string;
};

/** The options of every command that syncs or looks at a sync: one table for yargs and the fast path. */
const SYNC_OPTIONS: Record<string, OptionSpec> = {
  root: { type: 'string', describe: 'project root that holds the mapped folders', defaultDescription: 'current directory' },
  config: { type: 'string', describe: 'JSON config file', defaultDescription: 'storage-sync.config.json in the root' },
  profile: { type: 'string', describe: 'credentials profile and manifest name', defaultDescription: 'default' },
  mode: { type: 'string', choices: MODES, describe: 'sync direction', defaultDescription: 'two-way' },
  'two-way': { type: 'boolean', describe: 'same as --mode two-way' },
  'upload-only': { type: 'boolean', describe: 'same as --mode upload' },
  'download-only': { type: 'boolean', describe: 'same as --mode download' },
  'dry-run': { type: 'boolean', describe: 'decide and report; change nothing (no transfer, manifest, trash or log)' },
  json: { type: 'boolean', describe: 'newline-delimited JSON events on stdout' },
  delete: { type: 'boolean', describe: 'one-way modes: also delete extras on the destination' },
  'max-delete': { type: 'string', describe: 'refuse a plan deleting more than N files or N% of a mapping', defaultDescription: '50%' },
  force: { type: 'boolean', describe: 'override the delete guard and the empty-side guard' },
  conflict: { type: 'string', choices: CONFLICT_POLICIES, describe: 'two-way divergence policy', defaultDescription: 'remote' },
  concurrency: { type: 'number', describe: 'parallel transfers', defaultDescription: '8' },
  include: { type: 'string', array: true, describe: 'only paths matching this glob (repeatable, relative to each mapping)' },
  exclude: { type: 'string', array: true, describe: 'skip paths matching this glob (repeatable)' },
  'manifest-dir': { type: 'string', describe: 'where the manifest, plans, trash and logs live', defaultDescription: '<root>/manifests' },
  trash: { type: 'boolean', describe: 'keep local files a sync removes or overwrites (--no-trash to disable)', defaultDescription: 'true' },
  progress: { type: 'boolean', describe: 'progress line on a terminal (--no-progress to hide)', defaultDescription: 'on a TTY' },
  'log-level': { type: 'string', choices: ['debug', 'info', 'warn', 'error'], describe: 'output detail; debug adds stack traces', defaultDescription: 'info' },
  'log-file': { type: 'string', describe: 'also write the run log to this file' },
};

function syncOptions(y: Argv): Argv {
  for (const [name, { type, choices, array, describe, defaultDescription }] of Object.entries(SYNC_OPTIONS)) {
    y = choices
      ? y.option(name, { choices, describe, ...(defaultDescription ? { defaultDescription } : {}) })
      : y.option(name, { type, ...(array ? { array } : {}), describe, ...(defaultDescription ? { defaultDescription } : {}) });
  }
  return y;
}

/** Commands the fast path parses (their whole grammar is SYNC_OPTIONS, plus apply's [file]). */
const FAST_COMMANDS = new Set(['sync', 'plan', 'apply', 'status', 'update-storage', 'sync-storage']);

/**
 * The command lines a script runs every few minutes (`sync --json --profile x`), parsed without
 * yargs: loading and running yargs was ~60 ms of a 0.3 s no-op sync. Only an unambiguous subset
 * is taken: a known command, then known options as `--name value`, `--name=value`, `--flag` or
 * `--no-flag`, and apply's one file. Anything else (help, a typo, a short flag, a value that
 * could be read two ways, a repeated option) returns undefined and yargs parses it, errors and
 * all; a test checks that every line taken here gets the same values from yargs.
 */
export function fastParse(argv: readonly string[]): Parsed | undefined {
  const command = argv[0];
  if (command === undefined || !FAST_COMMANDS.has(command)) return undefined;
  const args: Record<string, unknown> = { _: [command] };
  for (let i = 1; i < argv.length; i++) {
    const tok = argv[i]!;
    if (!tok.startsWith('--')) {
      // apply's plan file: a plain name, once, and not one yargs could take for a number.
      if (command !== 'apply' || 'file' in args || tok === '' || tok.startsWith('-') || !Number.isNaN(Number(tok))) return undefined;
      args['file'] = tok;
      continue;
    }
    const eq = tok.indexOf('=');
    let name = eq < 0 ? tok.slice(2) : tok.slice(2, eq);
    let negated = false;
    if (!(name in SYNC_OPTIONS) && name.startsWith('no-') && SYNC_OPTIONS[name.slice(3)]?.type === 'boolean') {
      name = name.slice(3);
      negated = true;
    }
    const spec = SYNC_OPTIONS[name];
    if (!spec || !Object.hasOwn(SYNC_OPTIONS, name)) return undefined;
    if (name in args && !spec.array) return undefined;
    if (spec.type === 'boolean') {
      // `--force true` and `--force=false` mean something to yargs; they are left to it.
      if (eq >= 0) return undefined;
      const next = argv[i + 1];
      if (next === 'true' || next === 'false') return undefined;
      args[name] = !negated;
      continue;
    }
    if (negated) return undefined;
    let value: string;
    if (eq >= 0) value = tok.slice(eq + 1);
    else {
      const next = argv[i + 1];
      if (next === undefined) return undefined;
      value = next;
      i++;
    }
    if (value === '' || value.startsWith('-')) return undefined;
    if (spec.choices && !spec.choices.includes(value)) return undefined;
    if (spec.type === 'number') {
      if (!/^[1-9][0-9]{0,5}$/.test(value)) return undefined;
      args[name] = Number(value);
    } else if (spec.array) {
      // yargs' array options take every following word: only one followed by an option (or
      // nothing) is unambiguous.
      const after = argv[i + 1];
      if (after !== undefined && !after.startsWith('--')) return undefined;
      args[name] = [...((args[name] as string[] | undefined) ?? []), value];
    } else {
      // A string yargs would read as a number or a boolean-looking word stays with yargs.
      if (!Number.isNaN(Number(value))) return undefined;
      args[name] = value;
    }
  }
  return { command, args, output: '' };
}

// creds: the SQL Server credential store (issue 4). Its own small option set: it moves no files.
function credsOptions(y: Argv): Argv {
  return y
    .positional('action', { choices: ['init', 'set', 'get', 'list', 'delete'] as const, describe: 'what to do' })
    .positional('name', { type: 'string', describe: 'credential name, e.g. AWS_SECRET_ACCESS_KEY' })
    .positional('value', { type: 'string', describe: 'set only; leave out to read stdin or a hidden prompt' })
    .option('root', { type: 'string', describe: 'project root (for its storage-sync.config.json)', defaultDescription: 'current directory' })
    .option('config', { type: 'string', describe: 'JSON config file (credentials.mssql)', defaultDescription: 'storage-sync.config.json in the root' })
    .option('profile', { type: 'string', describe: 'credentials profile', defaultDescription: 'default' })
    .option('show-secret', { type: 'boolean', describe: 'get/list: print values unmasked' })
    .option('json', { type: 'boolean', describe: 'one JSON object on stdout' })
    .option('log-level', { choices: ['debug', 'info', 'warn', 'error'], describe: 'debug adds stack traces', defaultDescription: 'info' });
}

function build(yargs: (argv: string[]) => Argv, argv: string[]): Argv {
  return yargs(argv)
    .scriptName('storage-sync')
    .usage('$0 <command> [options]\n\nKeep staticfiles/ and media/ in step with an S3-compatible bucket.')
    .command('sync', 'plan and apply in one go (two-way unless told otherwise)', syncOptions)
    .command('plan', 'compute and print the plan, save it as JSON; changes nothing', syncOptions)
    .command('apply [file]', 'apply a saved plan (default: the last one); drifted items are skipped', (y) =>
      syncOptions(y).positional('file', { type: 'string', describe: 'plan file' }),
    )
    .command('status', 'what the manifest tracks, the last run, local changes seen by stat', syncOptions)
    .command('update-storage', 'alias of sync (--two-way | --upload-only | --download-only)', syncOptions)
    .command('sync-storage', 'alias of sync --mode two-way', syncOptions)
    // The interactive REPL (src/repl): the shared options set up the session it starts with.
    .command(['repl', 'ui', 'storage-sync-ui'], 'the interactive REPL: look at the plan, diffs and reasons, then apply (aliases: ui, storage-sync-ui)', syncOptions)
    .command('manifest <action> [path]', 'the manifest: ls [GLOB] | show PATH | export | verify [--deep] | rebuild [--force]', (y) =>
      syncOptions(y)
        .positional('action', { choices: ['ls', 'show', 'export', 'verify', 'rebuild'] as const })
        .positional('path', { type: 'string' })
        .option('deep', { type: 'boolean', describe: 'verify: rehash every tracked file, even when its stat matches' }),
    )
    .command('creds <action> [name] [value]', 'credentials in SQL Server: init | set NAME [VALUE] | get NAME | list | delete NAME', credsOptions)
    .epilog(
      'Credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_S3_ENDPOINT_URL, AWS_STORAGE_BUCKET_NAME\n' +
        '(optional AWS_S3_REGION_NAME, default auto; AWS_S3_FORCE_PATH_STYLE=true for local servers),\n' +
        'then SQL Server dbo.storage_credentials via STORAGE_SYNC_MSSQL or config credentials.mssql.\n' +
        'Exit codes: 0 done, 1 some items failed, 2 usage/config/credentials, 3 refused by a safety check,\n' +
        '130/143 interrupted.',
    )
    .demandCommand(1, 'a command is required (see --help)')
    .strict()
    .version(VERSION)
    .help()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .exitProcess(false);
}

export async function parseArgs(argv: string[]): Promise<Parsed> {
  // `storage-sync help [command]` reads as the user means it: that command's --help.
  if (argv[0] === 'help') return yargsParse([...argv.slice(1), '--help']);
  return fastParse(argv) ?? yargsParse(argv);
}

/** The full contract through yargs: help, every error message, every form an option can take. */
export async function yargsParse(argv: string[]): Promise<Parsed> {
  const y = build((await import('yargs')).default, argv);
  // yargs renders the whole help text after every command it runs (~30 ms of a no-op sync's CPU),
  // kept only to print it beside a validation error, and that output is dropped here (an error
  // is one line). With a help flag yargs is left as it is.
  if (!argv.some((a) => a === '--help' || a === '-h')) {
    const usage = (y as unknown as { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } })
      .getInternalMethods?.()
      .getUsageInstance?.();
    if (usage && typeof usage.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => undefined;
  }
  return new Promise((resolve, reject) => {
    y.parse(argv, {}, (err: Error | undefined, args: Record<string, unknown>, output: string) => {
      if (output && (args['help'] || args['version'])) {
        resolve({ command: undefined, args, output });
        return;
      }
      if (err) {
        // One line, but all of it: yargs puts the useful part of "Invalid values:" on the next lines.
        reject(new UsageError(err.message.replace(/\s*\n\s*/g, ' ').trim() || 'invalid arguments'));
        return;
      }
      const command = (args['_'] as unknown[])[0];
      resolve({ command: typeof command === 'string' ? command : undefined, args, output: '' });
    });
  });
}
