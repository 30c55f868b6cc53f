// A server (or a proxy) that echoes the secret key back in its error messages: the secret must
// still never reach stdout, stderr, JSON events, the log files, plans or the manifest.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startS3Server, type TestS3 } from '../support/s3-server.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { makeProject, runCli, type CliResult, type Project } from '../support/harness.js';

let s3: TestS3;
let proxy: FaultProxy;
let p: Project;

before(async () => {
  s3 = await startS3Server();
  proxy = await startFaultProxy(s3.endpoint);
  p = makeProject();
});
after(async () => {
  p.cleanup();
  await proxy.stop();
  await s3.stop();
});

function everyFileUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const abs = path.join(d, e.name);
      if (e.isDirectory()) walk(abs);
      else if (e.isFile()) out.push(abs);
    }
  };
  walk(dir);
  return out;
}

test('errors that carry the secret are redacted everywhere: output, events, logs, plans, manifest', async () => {
  const secret = s3.secretAccessKey;
  const password = `pw-${crypto.randomBytes(8).toString('hex')}`;
  // A valid config holding a SQL password: it must not be copied anywhere either.
  p.write('storage-sync.config.json', JSON.stringify({ credentials: { mssql: `Server=db;User Id=sa;Password=${password}` } }));
  for (let i = 0; i < 6; i++) p.write(`media/f${i}.txt`, `file ${i}`);
  const env = proxy.env(s3.env);
  const cli = (...args: string[]): Promise<CliResult> => runCli(args, { cwd: p.root, env });
  const logFile = path.join(p.root, 'extra-log.ndjson');
  const runs: CliResult[] = [];
  runs.push(await cli('sync', '--json'));
  assert.equal(runs[0]!.code, 0, runs[0]!.stderr);

  // Transfers fail with the secret in the server's message.
  p.write('media/up.txt', 'up');
  await s3.putRaw('media/down.txt', 'down');
  proxy.set([{ ops: ['PutObject', 'GetObject'], faults: ['echo'], echo: `bad signature for secret ${secret}` }]);
  for (const args of [['sync', '--log-level', 'debug', '--log-file', logFile], ['sync', '--json', '--log-level', 'debug']]) {
    const r = await cli(...args);
    assert.equal(r.code, 1, r.stderr);
    runs.push(r);
  }
  assert.ok(runs.at(-1)!.events.some((e) => e['event'] === 'file' && String(e['error']).includes('***')), 'the message came through, redacted');

  // Per-key DeleteObjects errors with the secret.
  proxy.set([]);
  assert.equal((await cli('sync', '--json')).code, 0);
  p.remove('media/f0.txt');
  proxy.set([{ ops: ['DeleteObjects'], faults: ['key-error'], echo: `denied, the key was ${secret}` }]);
  runs.push(await cli('sync', '--json', '--log-level', 'debug'));
  assert.equal(runs.at(-1)!.code, 1);

  // A listing that fails with the secret ends the run: the one-line error and the debug stack too.
  proxy.set([{ ops: ['ListObjectsV2'], faults: ['echo'], echo: `listing refused for ${secret}` }]);
  for (const args of [['sync', '--log-level', 'debug'], ['sync', '--json', '--log-level', 'debug'], ['plan', '--json'], ['apply', '--json']]) {
    const r = await cli(...args);
    assert.notEqual(r.code, 0, args.join(' '));
    runs.push(r);
  }
  assert.match(runs.at(-2)!.stderr, /\*\*\*/, 'the listing error was redacted, not dropped');

  for (const r of runs) {
    for (const text of [r.stdout, r.stderr]) {
      assert.ok(!text.includes(secret), `secret in output: ${text.slice(0, 300)}`);
      assert.ok(!text.includes(password), 'SQL password in output');
    }
  }
  const files = everyFileUnder(p.root).filter((f) => !f.endsWith('storage-sync.config.json'));
  assert.ok(files.some((f) => f.includes(`${path.sep}logs${path.sep}`)), 'run logs were written');
  assert.ok(fs.existsSync(logFile));
  for (const f of files) {
    const bytes = fs.readFileSync(f);
    assert.ok(!bytes.includes(secret), `secret in ${path.relative(p.root, f)}`);
    assert.ok(!bytes.includes(password), `SQL password in ${path.relative(p.root, f)}`);
  }
});
