// The executor's promises that need a hand on the event stream: a file that changes while it is
// being sent is never recorded as synced, and a run stopped mid-way keeps what it finished.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import type { TestS3 } from '../support/s3-server.js';
import { useFixture } from '../support/fixture.js';
import { md5, runCli, type Project } from '../support/harness.js';
import { run } from '../../src/engine/run.js';
import { EventStream, type SyncEvent } from '../../src/engine/events.js';
import { resolveSettings } from '../../src/engine/settings.js';
import { Manifest, profilePaths } from '../../src/manifest/manifest.js';
import { InterruptedError } from '../../src/core/errors.js';

const MiB = 1024 * 1024;
let s3: TestS3;
let p: Project;

useFixture({ server: (x) => (s3 = x), project: (x) => (p = x) });

function request(onEvent: (e: SyncEvent) => void, signal = new AbortController().signal) {
  const events = new EventStream();
  events.on(onEvent);
  const settings = resolveSettings({ multipartThreshold: 5 * MiB, partSize: 5 * MiB, concurrency: 1 }, p.root);
  const credentials = { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, endpoint: s3.endpoint, bucket: s3.bucket, region: 'auto', forcePathStyle: true };
  return { command: 'sync' as const, settings, credentials, events, signal };
}

function tracked(): string[] {
  const m = Manifest.open(profilePaths(path.join(p.root, 'manifests'), 'default').manifest, { readOnly: true });
  const paths = [...m.all()].map(([k]) => k);
  void m.close();
  return paths;
}

test('a file rewritten while it is uploaded is not recorded, and goes up whole next run', async () => {
  p.write('media/big.bin', crypto.randomBytes(12 * MiB));
  p.write('media/small.txt', 'small');
  const rewritten = crypto.randomBytes(12 * MiB);
  const files: SyncEvent[] = [];
  const result = await run(
    request((e) => {
      if (e.event === 'transfer-start' && e.path === 'media/big.bin') fs.writeFileSync(path.join(p.root, 'media/big.bin'), rewritten);
      if (e.event === 'file') files.push(e);
    }),
  );
  const big = files.find((e) => e.event === 'file' && e.path === 'media/big.bin');
  assert.ok(big && big.event === 'file' && big.status !== 'done', 'the changed file is not reported done');
  assert.match(String(big.error), /changed/);
  assert.equal(result.summary.uploaded, 1);
  assert.deepEqual(tracked(), ['media/small.txt'], 'only the untouched file is in the manifest');
  assert.ok(!(await s3.listAll()).some((o) => o.key === 'media/big.bin'), 'no object from a half-changed file');

  const next = await runCli(['sync', '--json'], { cwd: p.root, env: s3.env });
  assert.equal(next.code, 0, next.stderr);
  assert.equal(md5(await s3.getBuffer('media/big.bin')), md5(rewritten));
});

test('an aborted run keeps what it finished and throws InterruptedError(SIGTERM)', async () => {
  for (let i = 0; i < 30; i++) p.write(`media/f${i}.txt`, `file ${i}`);
  const controller = new AbortController();
  let done = 0;
  await assert.rejects(
    run(
      request((e) => {
        if (e.event === 'file' && e.status === 'done' && ++done === 5) controller.abort('SIGTERM');
      }, controller.signal),
    ),
    (err: unknown) => err instanceof InterruptedError && err.exitCode === 143,
  );
  const remote = (await s3.listAll()).map((o) => o.key);
  assert.ok(remote.length >= 5 && remote.length < 30, `stopped part-way (${remote.length} uploaded)`);
  const recorded = tracked();
  for (const r of recorded) assert.ok(remote.includes(r), `${r} recorded only once it was uploaded`);
  assert.ok(recorded.length >= 5);
  const rerun = await runCli(['sync', '--json'], { cwd: p.root, env: s3.env });
  // A PUT aborted in flight may still have landed; the rerun then records it instead of sending it.
  assert.equal(Number(rerun.summary?.uploaded) + Number(rerun.summary?.recorded), 30 - recorded.length);
  assert.equal((await s3.listAll()).length, 30);
});

test('a local file that appears while its download is in flight is left alone', async () => {
  await s3.putRaw('media/photo.jpg', crypto.randomBytes(200_000));
  let outcome: SyncEvent | undefined;
  await run(
    request((e) => {
      if (e.event === 'transfer-start' && e.path === 'media/photo.jpg') p.write('media/photo.jpg', 'made by the user meanwhile', { ageMs: 0 });
      if (e.event === 'file') outcome = e;
    }),
  );
  assert.ok(outcome?.event === 'file' && outcome.status === 'skipped');
  assert.equal(p.read('media/photo.jpg'), 'made by the user meanwhile');
  assert.deepEqual(tracked(), []);
  assert.deepEqual(Object.keys(p.files()).filter((f) => f.endsWith('.tmp')), []);
});

test('a remote object edited after listing is not deleted', async () => {
  for (let i = 0; i < 4; i++) p.write(`media/f${i}.txt`, `file ${i}`);
  p.write('media/big.bin', crypto.randomBytes(6 * MiB));
  await runCli(['sync', '--json'], { cwd: p.root, env: s3.env });
  p.remove('media/f0.txt');
  p.write('media/big.bin', crypto.randomBytes(6 * MiB));
  let edit: Promise<string> | undefined;
  const files: SyncEvent[] = [];
  await run(
    request((e) => {
      // Someone edits the object while this run is busy with another transfer.
      if (e.event === 'transfer-start' && e.path === 'media/big.bin') edit = s3.putRaw('media/f0.txt', 'edited elsewhere');
      if (e.event === 'file') files.push(e);
    }),
  );
  await edit;
  const del = files.find((e) => e.event === 'file' && e.path === 'media/f0.txt');
  assert.ok(del?.event === 'file' && del.status === 'skipped', JSON.stringify(del));
  assert.equal((await s3.getBuffer('media/f0.txt')).toString(), 'edited elsewhere');
  const next = await runCli(['sync', '--json'], { cwd: p.root, env: s3.env });
  assert.equal(p.read('media/f0.txt'), 'edited elsewhere', 'the change beats the delete next run');
  assert.equal(next.code, 0);
});

test('a stop during scanning or listing is an interruption (130), not a failure, and frees the lock', async () => {
  p.write('media/a.txt', 'a');
  const controller = new AbortController();
  const stopOnScan = (e: SyncEvent): void => {
    if (e.event === 'scan' && e.phase === 'local') controller.abort('SIGINT');
  };
  await assert.rejects(run(request(stopOnScan, controller.signal)), (err: unknown) => err instanceof InterruptedError && err.exitCode === 130);
  assert.ok(!fs.existsSync(path.join(p.root, 'manifests/default/lock')));
  assert.deepEqual(await s3.listAll(), []);
});

test('a file rewritten after its bytes went up is uploaded again next run, not reverted', async () => {
  p.write('media/doc.txt', 'v1');
  await runCli(['sync', '--json'], { cwd: p.root, env: s3.env });
  p.write('media/doc.txt', 'v2 planned');
  const warnings: SyncEvent[] = [];
  await run(
    request((e) => {
      // Fires once the PUT of v2 has completed, before the engine re-stats the file.
      if (e.event === 'transfer-bytes' && e.path === 'media/doc.txt') p.write('media/doc.txt', 'v3, written meanwhile', { ageMs: 0 });
      if (e.event === 'warning') warnings.push(e);
    }),
  );
  assert.equal((await s3.getBuffer('media/doc.txt')).toString(), 'v2 planned');
  assert.equal(warnings.length, 1);
  const next = await runCli(['sync', '--json'], { cwd: p.root, env: s3.env });
  assert.equal(next.summary?.uploaded, 1, next.stdout);
  assert.equal(next.summary?.conflicts, 0);
  assert.equal(p.read('media/doc.txt'), 'v3, written meanwhile');
  assert.equal((await s3.getBuffer('media/doc.txt')).toString(), 'v3, written meanwhile');
});

test('the run lock: a live holder refuses (exit 3), a dead or aged one is taken over', async () => {
  p.write('media/a.txt', 'a');
  const lockFile = path.join(p.root, 'manifests/default/lock');
  fs.mkdirSync(path.dirname(lockFile), { recursive: true });
  const holder = spawn('sleep', ['30']);
  try {
    const lock = (pid: number, host = os.hostname(), ageMs = 0): void => {
      fs.writeFileSync(lockFile, JSON.stringify({ pid, host, startedAt: 'then' }));
      const t = new Date(Date.now() - ageMs);
      fs.utimesSync(lockFile, t, t);
    };
    const refused = async (why: RegExp): Promise<void> => {
      const r = await runCli(['sync'], { cwd: p.root, env: s3.env });
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, why);
      assert.deepEqual(await s3.listAll(), [], 'refused before any change');
      assert.ok(fs.existsSync(lockFile), "the holder's lock is left alone");
    };
    lock(holder.pid!);
    await refused(new RegExp(`another run holds the lock .*pid ${holder.pid}`));
    lock(4_000_000, 'another-host'); // a pid there means nothing here
    await refused(/another-host/);
    fs.writeFileSync(lockFile, '{"pid":'); // half-written by someone: held, not stale
    await refused(/holder unknown/);
  } finally {
    holder.kill();
  }
  const takenOver = async (): Promise<void> => {
    const r = await runCli(['sync', '--json'], { cwd: p.root, env: s3.env });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!fs.existsSync(lockFile), 'released at the end');
  };
  const dead = spawnSync(process.execPath, ['-e', '0']).pid;
  fs.writeFileSync(lockFile, JSON.stringify({ pid: dead, host: os.hostname(), startedAt: 'then' }));
  await takenOver();
  fs.writeFileSync(lockFile, JSON.stringify({ pid: 4_000_000, host: 'vanished-container', startedAt: 'then' }));
  const old = new Date(Date.now() - 3_600_000);
  fs.utimesSync(lockFile, old, old); // no heartbeat for an hour
  await takenOver();
  fs.writeFileSync(lockFile, JSON.stringify({ pid: process.pid, host: os.hostname(), startedAt: 'a previous incarnation' }));
  await takenOver();
});

test('temp files left by a killed run are removed by the next run, never uploaded', async () => {
  p.write('media/a.txt', 'a');
  p.write('media/.a.txt.ssync-20261127-000000-abcdef.tmp', 'half a download', { ageMs: 3_600_000 });
  p.write('media/.b.txt.ssync-20261127-000001-abcdef.tmp', 'another run may still be writing this', { ageMs: 0 });
  const dry = await runCli(['sync', '--dry-run', '--json'], { cwd: p.root, env: s3.env });
  assert.equal(dry.code, 0);
  assert.ok(p.exists('media/.a.txt.ssync-20261127-000000-abcdef.tmp'), 'a dry run removes nothing');
  const r = await runCli(['sync', '--json'], { cwd: p.root, env: s3.env });
  assert.equal(r.summary?.uploaded, 1);
  assert.ok(!p.exists('media/.a.txt.ssync-20261127-000000-abcdef.tmp'));
  assert.ok(p.exists('media/.b.txt.ssync-20261127-000001-abcdef.tmp'), 'a fresh temp file is left for its writer');
  assert.deepEqual((await s3.listAll()).map((o) => o.key), ['media/a.txt']);
});
