// The executor's promises that need a hand on the event stream: a file that changes while it is
// being sent is never recorded as synced, and a run stopped mid-way keeps what it finished.
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startS3Server, type TestS3 } from '../support/s3-server.js';
import { makeProject, md5, runCli, type Project } from '../support/harness.js';
import { run } from '../../src/engine/run.js';
import { EventStream, type SyncEvent } from '../../src/engine/events.js';
import { resolveSettings } from '../../src/engine/settings.js';
import { Manifest, profilePaths } from '../../src/manifest/manifest.js';
import { InterruptedError } from '../../src/core/errors.js';

const MiB = 1024 * 1024;
let s3: TestS3;
let p: Project;

before(async () => {
  s3 = await startS3Server();
});
after(async () => s3.stop());
beforeEach(async () => {
  await s3.reset();
  p?.cleanup();
  p = makeProject();
});

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
