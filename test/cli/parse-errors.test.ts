// Usage errors from the argument parser: one line that still says what was wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs } from '../../src/cli/parse.js';

test('a bad choice names the argument, what was given and the choices, on one line (exit 2)', async () => {
  const cases: [string[], RegExp][] = [
    [['creds', 'frob'], /Argument: action, Given: "frob", Choices: "init", "set", "get", "list", "delete"/],
    [['manifest', 'frob'], /Argument: action, Given: "frob", Choices: "ls"/],
    [['sync', '--mode', 'sideways'], /Argument: mode, Given: "sideways", Choices: "two-way", "upload", "download"/],
  ];
  for (const [argv, re] of cases) {
    await assert.rejects(parseArgs(argv), (err: Error & { exitCode?: number }) => {
      assert.equal(err.exitCode, 2, argv.join(' '));
      assert.match(err.message, re, argv.join(' '));
      assert.doesNotMatch(err.message, /\n/);
      return true;
    });
  }
});
