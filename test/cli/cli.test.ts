// The real binary in a child process: help, exit codes, one-line errors, secrets, signals.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { TestS3 } from '../support/s3-server.js';
import { useServerAndProjects } from '../support/fixture.js';
import { filesUnder, md5, spawnCli, type CliResult, type Project } from '../support/harness.js';

let s3: TestS3;
const project = useServerAndProjects((server) => (s3 = server));

/** Every stack frame line looks like "    at fn (file:line)". */
const STACK = /^\s+at .+[:(]/m;

describe('help and usage errors', () => {
  test('--help for every command and --version', async () => {
    const p = project();
    for (const cmd of ['sync', 'plan', 'apply', 'status', 'update-storage', 'sync-storage', 'manifest']) {
      const r = await spawnCli([cmd, '--help'], { cwd: p.root, env: {} });
      assert.equal(r.code, 0, `${cmd} --help`);
      assert.match(r.stdout, /--dry-run/);
    }
    const v = await spawnCli(['--version'], { cwd: p.root, env: {} });
    assert.match(v.stdout.trim(), /^\d+\.\d+\.\d+$/);
  });

  test('`help` and `help COMMAND` print help and touch nothing, even with credentials set', async () => {
    await s3.reset();
    const p = project({ 'media/a.txt': 'a' });
    const before = p.files();
    const r = await spawnCli(['help'], { cwd: p.root, env: s3.env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /storage-sync <command> \[options\]/);
    const sync = await spawnCli(['help', 'sync'], { cwd: p.root, env: s3.env });
    assert.equal(sync.code, 0, sync.stderr);
    assert.match(sync.stdout, /plan and apply in one go/);
    assert.match(sync.stdout, /--dry-run/);
    assert.deepEqual(await s3.listAll(), [], 'no sync ran: nothing uploaded');
    assert.deepEqual(p.files(), before, 'no manifest, no log');
  });

  test('unknown flags, bad values and bad config are one line, exit 2', async () => {
    const p = project();
    const cases: [string[], RegExp][] = [
      [['sync', '--bogus'], /Unknown argument/i],
      [['sync', '--mode', 'sideways'], /Invalid values|Choices/i],
      [['sync', '--concurrency', '0'], /concurrency/],
      [['sync', '--two-way', '--upload-only'], /choose one/],
      [['sync', '--config', 'nope.json'], /not found/],
      [['sync', '--root', 'no/such/folder'], /root folder .* does not exist/],
      [['sync', '--manifest-dir', 'media/.state'], /inside the mapped folder media\/: it would sync itself/],
    ];
    for (const [args, re] of cases) {
      const r = await spawnCli(args, { cwd: p.root, env: s3.env });
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, re);
      assert.doesNotMatch(r.stderr, STACK);
    }
    for (const [config, why] of [
      [{ mappings: [{ local: 'media', remote: 'media/../x/' }] }, /"\.\."/],
      [{ partSize: 6 * 1024 ** 3 }, /5 GiB/],
      [{ mappings: [{ local: 'C:\\data', remote: 'data/' }] }, /inside the root/],
    ] as const) {
      p.write('storage-sync.config.json', JSON.stringify(config));
      const r = await spawnCli(['sync'], { cwd: p.root, env: s3.env });
      assert.equal(r.code, 2, JSON.stringify(config));
      assert.match(r.stderr, why);
    }
    p.write('storage-sync.config.json', JSON.stringify({ mappings: [{ local: 'media', remote: 'media/' }], colour: 'blue' }));
    const bad = await spawnCli(['sync'], { cwd: p.root, env: s3.env });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown key "colour"/);
  });

  test('missing credentials: exit 2, one line naming what is missing, no stack trace', async () => {
    const p = project({ 'media/a.txt': 'a' });
    const r = await spawnCli(['sync'], { cwd: p.root, env: { AWS_ACCESS_KEY_ID: 'x' } });
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, /missing credentials.*AWS_SECRET_ACCESS_KEY.*AWS_S3_ENDPOINT_URL.*AWS_STORAGE_BUCKET_NAME/);
    assert.doesNotMatch(r.stderr, STACK);
    const j = await spawnCli(['sync', '--json'], { cwd: p.root, env: {} });
    const ev = JSON.parse(j.stdout.trim()) as Record<string, unknown>;
    assert.deepEqual([ev['event'], ev['exitCode']], ['error', 2]);
  });

  test('an unknown bucket is exit 2 with a clear line', async () => {
    const p = project({ 'media/a.txt': 'a' });
    const r = await spawnCli(['sync'], { cwd: p.root, env: { ...s3.env, AWS_STORAGE_BUCKET_NAME: 'no-such-bucket' } });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bucket "no-such-bucket" not found/);
    assert.ok(!fs.existsSync(path.join(p.root, 'manifests')), 'nothing written');
  });
});

describe('secrets', () => {
  test('the secret never appears in output, JSON events, logs or plan files', async () => {
    const p = project({ 'media/a.txt': 'a', 'media/b.txt': 'b' });
    const runs = [
      await spawnCli(['sync', '--log-level', 'debug'], { cwd: p.root, env: s3.env }),
      await spawnCli(['sync', '--json'], { cwd: p.root, env: s3.env }),
      await spawnCli(['plan', '--json'], { cwd: p.root, env: s3.env }),
      await spawnCli(['sync', '--log-level', 'debug'], { cwd: p.root, env: { ...s3.env, AWS_STORAGE_BUCKET_NAME: 'missing' } }),
      await spawnCli(['sync', '--log-level', 'debug'], { cwd: p.root, env: { ...s3.env, AWS_S3_ENDPOINT_URL: 'http://127.0.0.1:1' } }),
    ];
    for (const r of runs) assert.ok(!(r.stdout + r.stderr).includes(s3.secretAccessKey));
    const written = filesUnder(path.join(p.root, 'manifests'));
    assert.ok(Object.keys(written).some((f) => f.includes('logs/')), 'logs were written');
    for (const f of Object.keys(written)) {
      assert.ok(!fs.readFileSync(path.join(p.root, 'manifests', f)).includes(s3.secretAccessKey), f);
    }
  });
});

async function stopMidRun(signal: 'SIGINT' | 'SIGTERM', p: Project): Promise<CliResult> {
  let sent = false;
  const r = await spawnCli(['sync', '--json', '--concurrency', '2'], {
    cwd: p.root,
    env: s3.env,
    onStdout: (chunk, child) => {
      if (!sent && chunk.includes('"event":"file"')) {
        sent = true;
        child.kill(signal);
      }
    },
  });
  assert.ok(sent, 'the run got as far as one file');
  return r;
}

describe('signals', () => {
  test('SIGTERM mid-download exits 143; no temp file, no partial file; a rerun converges', async () => {
    await s3.reset();
    const bodies = new Map<string, Buffer>();
    for (let i = 0; i < 60; i++) bodies.set(`media/d${String(i).padStart(2, '0')}.bin`, Buffer.alloc(512 * 1024, i));
    await Promise.all([...bodies].map(([k, b]) => s3.putRaw(k, b)));
    const p = project();
    const r = await stopMidRun('SIGTERM', p);
    assert.equal(r.code, 143, r.stderr);
    const landed = p.files();
    assert.ok(Object.keys(landed).length < 60, 'stopped before the end');
    assert.deepEqual(Object.keys(landed).filter((f) => f.includes('.tmp')), []);
    for (const [f, sum] of Object.entries(landed)) assert.equal(sum, md5(bodies.get(f)!), `${f} is whole`);
    const again = await spawnCli(['sync', '--json'], { cwd: p.root, env: s3.env });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(Object.keys(p.files()).length, 60);
  });

  test('SIGINT mid-transfer exits 130, leaves no temp file, and a rerun converges', async () => {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 120; i++) files[`media/f${String(i).padStart(3, '0')}.bin`] = Buffer.alloc(256 * 1024, i);
    await s3.reset();
    const p = project(files);
    const r = await stopMidRun('SIGINT', p);
    assert.equal(r.code, 130, r.stderr);
    const uploaded = r.events.filter((e) => e['event'] === 'file' && e['status'] === 'done').length;
    assert.ok(uploaded < 120, 'stopped before the end');
    assert.deepEqual(Object.keys(p.files()).filter((f) => f.includes('.tmp')), []);
    const again = await spawnCli(['sync', '--json'], { cwd: p.root, env: s3.env });
    assert.equal(again.code, 0, again.stderr);
    const remote = await s3.listAll('media/');
    assert.equal(remote.length, 120);
    const local = p.files();
    for (const o of remote) assert.equal(o.etag, local[o.key], o.key);
  });
});
