// What a command loads: start-up is most of a run that has nothing to do, so the SQL Server driver,
// the S3 SDK and the engine must stay unloaded where a command does not use them. Checked in a
// child process (a fresh module cache), through the CommonJS cache the heavy packages land in.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BIN, makeProject } from '../support/harness.js';
import { VERSION } from '../../src/cli/version.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** Runs main(argv) in a child; returns its exit code and which packages it loaded. */
function loadedBy(argv: string[], cwd: string, env: Record<string, string> = {}): { code: number; loaded: string[]; stderr: string } {
  const script = `
    import { createRequire } from 'node:module';
    const { main } = await import(${JSON.stringify(MAIN)});
    const sink = { write: () => true };
    const code = await main(${JSON.stringify(argv)}, { stdout: sink, stderr: { write: (s) => (process.stderr.write(s), true) }, env: process.env, cwd: process.cwd(), signal: new AbortController().signal });
    const cache = Object.keys(createRequire(import.meta.url).cache);
    const loaded = ['mssql', 'tedious', '@aws-sdk/client-s3', 'lmdb', 'piscina'].filter((p) => cache.some((f) => f.includes('/node_modules/' + p + '/')));
    process.stdout.write(JSON.stringify({ code, loaded }));
  `;
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_') && k !== 'STORAGE_SYNC_MSSQL')) as Record<string, string>;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd, env: { ...clean, ...env }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return { ...(JSON.parse(r.stdout) as { code: number; loaded: string[] }), stderr: r.stderr };
}

test('a sync without a SQL Server connection string never loads mssql; status loads no S3 SDK', () => {
  const p = makeProject({ 'storage-sync.config.json': JSON.stringify({ mappings: [{ local: 'media', remote: 'media/' }] }), 'media/a.txt': 'a' });
  try {
    // No credentials anywhere: the run ends at credential resolution (exit 2), before any network.
    const sync = loadedBy(['sync', '--json'], p.root);
    assert.equal(sync.code, 2, sync.stderr);
    assert.match(sync.stderr, /missing credentials/);
    assert.deepEqual(sync.loaded, []);
    const status = loadedBy(['status'], p.root);
    assert.equal(status.code, 0, status.stderr);
    assert.ok(!status.loaded.includes('@aws-sdk/client-s3') && !status.loaded.includes('mssql'), status.loaded.join(', '));
    // With a connection string the driver is loaded (it is consulted: the environment has no keys).
    const sql = loadedBy(['sync', '--json'], p.root, { STORAGE_SYNC_MSSQL: 'not a connection string' });
    assert.equal(sql.code, 2, sql.stderr);
    assert.ok(sql.loaded.includes('mssql'), sql.loaded.join(', '));
  } finally {
    p.cleanup();
  }
});

test('--version is answered without the parser, --help by yargs as before', () => {
  const v = spawnSync(process.execPath, [BIN, '--version'], { encoding: 'utf8' });
  assert.equal(v.status, 0, v.stderr);
  assert.equal(v.stdout, `${VERSION}\n`);
  const h = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
  assert.equal(h.status, 0, h.stderr);
  assert.match(h.stdout, /storage-sync <command> \[options\]/);
  assert.match(h.stdout, /--version/);
});
