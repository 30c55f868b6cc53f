// The yargs-free fast path of the argument parser (parse.ts) against yargs itself: every command
// line the fast path takes must come out exactly as yargs reads it, and the lines scripts run
// must be taken (otherwise the start-up saving is gone without any test noticing).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fastParse, parseArgs, yargsParse } from '../../src/cli/parse.js';

const KEYS = [
  'root', 'config', 'profile', 'mode', 'two-way', 'upload-only', 'download-only', 'dry-run', 'json', 'delete', 'max-delete',
  'force', 'conflict', 'concurrency', 'include', 'exclude', 'manifest-dir', 'trash', 'progress', 'log-level', 'log-file', 'file',
];

async function sameAsYargs(argv: string[]): Promise<boolean> {
  const fast = fastParse(argv);
  if (!fast) return false;
  const slow = await yargsParse(argv);
  assert.equal(fast.command, slow.command, JSON.stringify(argv));
  assert.equal(fast.output, '');
  for (const k of KEYS) assert.deepEqual(fast.args[k], slow.args[k], `${k} of ${JSON.stringify(argv)}`);
  return true;
}

test('the command lines scripts run are parsed without yargs, with the values yargs gives', async () => {
  const lines = [
    ['sync'],
    ['sync', '--json'],
    ['plan', '--json', '--profile', 'site'],
    ['apply', '--json', 'manifests/default/plans/last.json'],
    ['apply', '--dry-run', 'plan.json', '--json'],
    ['status', '--root', '/srv/my site', '--config=conf/sync.json'],
    ['update-storage', '--upload-only', '--delete', '--no-trash', '--concurrency', '16', '--max-delete', '20%'],
    ['sync-storage', '--include', '*.jpg', '--include=**/*.png', '--exclude', 'tmp/**', '--log-level', 'debug', '--log-file', 'run.ndjson'],
    ['sync', '--mode', 'download', '--conflict', 'keep-both', '--manifest-dir', '.state', '--no-progress', '--force'],
    ['sync', '--two-way', '--dry-run'],
  ];
  for (const argv of lines) assert.ok(await sameAsYargs(argv), `not taken by the fast path: ${JSON.stringify(argv)}`);
  // parseArgs uses it: the same result object shape as yargs' for these.
  assert.deepEqual((await parseArgs(['sync', '--json'])).args, { _: ['sync'], json: true });
});

test('anything unusual is left to yargs: help, typos, short flags, repeats, ambiguous values', async () => {
  const lines = [
    [], ['--help'], ['sync', '--help'], ['--version'], ['sync', '-h'], ['repl'], ['manifest', 'ls'], ['creds', 'list'],
    ['sync', '--bogus'], ['sync', 'extra'], ['sync', '--json', '--json'], ['sync', '--mode', 'sideways'], ['sync', '--force', 'true'],
    ['sync', '--force=false'], ['sync', '--concurrency', 'x'], ['sync', '--profile'], ['sync', '--root', '--json'], ['sync', '--no-root'],
    ['sync', '--include', 'a', 'b'], ['apply', 'a', 'b'], ['sync', '--dryRun'], ['sync', '--'], ['sync', '--max-delete', '10'],
  ];
  for (const argv of lines) assert.equal(fastParse(argv), undefined, JSON.stringify(argv));
  // And yargs still says what is wrong, as before.
  await assert.rejects(parseArgs(['sync', '--bogus']), /Unknown argument: bogus/);
});

test('property: whatever the fast path takes, yargs reads the same way', async () => {
  const names = [...KEYS.filter((k) => k !== 'file'), 'bogus', 'dryRun', 'help', 'version', 'file'];
  const word = fc.constantFrom(
    'two-way', 'upload', 'download', 'remote', 'local', 'newer', 'keep-both', 'debug', 'warn', 'info', 'error',
    '8', '16', '0', '08', '1e3', '-1', '3.5', '50%', 'true', 'false', '', ' ', 'a b', 'x.json', 'site', '*.jpg', '-x', '--', 'é/ü', 'null',
  );
  const token = fc.oneof(
    fc.constantFrom(...names).map((n) => `--${n}`),
    fc.constantFrom(...names).map((n) => `--no-${n}`),
    fc.tuple(fc.constantFrom(...names), word).map(([n, v]) => `--${n}=${v}`),
    word,
    fc.constantFrom('-h', '-v', '-'),
  );
  const command = fc.constantFrom('sync', 'plan', 'apply', 'status', 'update-storage', 'sync-storage', 'repl', 'manifest');
  let taken = 0;
  await fc.assert(
    fc.asyncProperty(command, fc.array(token, { maxLength: 8 }), async (cmd, rest) => {
      if (await sameAsYargs([cmd, ...rest])) taken++;
    }),
    { numRuns: 400 },
  );
  assert.ok(taken > 20, `the fast path took only ${taken} of 400 generated lines`);
});
