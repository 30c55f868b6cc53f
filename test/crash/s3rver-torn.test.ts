// Against s3rver, whose PUTs write the object in place: the CLI is SIGKILLed with a PUT half sent
// (held by a proxy), which leaves a torn object on the server. The next run must send the local
// file again, never take the torn object for a remote edit and download it over the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startS3rver, type S3rverHandle } from '../support/s3rver.js';
import { makeProject, md5, spawnCli, type Project } from '../support/harness.js';
import { Bucket, checkConverged, localFiles, tempsUnder } from './world.js';
import { startStallProxy, type StallProxy } from './stall-proxy.js';

const KiB = 1024;

async function killMidPut(p: Project, proxy: StallProxy, env: Record<string, string>, minBytes: number): Promise<string> {
  const stalled = proxy.arm(minBytes, 0.4);
  let key = '';
  const r = await spawnCli(['sync', '--json', '--concurrency', '2'], {
    cwd: p.root,
    env,
    onStdout: (_chunk, child) => {
      if (key) return;
      void stalled.then((k) => {
        key = k;
        child.kill('SIGKILL');
      });
    },
  });
  assert.ok(key, `the run ended before a PUT was cut: exit ${r.code} ${r.stderr}`);
  return key;
}

test('s3rver: a SIGKILL mid-PUT leaves a torn object; the rerun uploads the file again, both sides whole', { timeout: 120_000 }, async () => {
  const server: S3rverHandle = await startS3rver('torn');
  const proxy = await startStallProxy(server.env['AWS_S3_ENDPOINT_URL']!);
  const env = proxy.env(server.env);
  const b = new Bucket(env);
  const p = makeProject();
  try {
    const model = new Map<string, string>();
    const put = (f: string, data: Buffer): void => {
      p.write(f, data);
      model.set(f, md5(data));
    };
    for (let i = 0; i < 12; i++) put(`media/small/s${i}.txt`, crypto.randomBytes(2 * KiB + i));
    put('media/big.bin', crypto.randomBytes(3000 * KiB));

    // 1. A new object torn on its first upload.
    const key1 = await killMidPut(p, proxy, env, 1000 * KiB);
    assert.match(key1, /\/media\/big\.bin(\?|$)/);
    const torn1 = (await b.list()).find((o) => o.key === 'media/big.bin');
    assert.ok(torn1 && torn1.size < 3000 * KiB, `s3rver kept a torn object (${torn1?.size} bytes)`);
    const r1 = await spawnCli(['sync', '--json'], { cwd: p.root, env });
    assert.equal(r1.code, 0, r1.stderr);
    assert.ok(r1.events.some((e) => e['event'] === 'warning' && /torn object/.test(String(e['message']))), 'the torn object was recognised');
    assert.equal(r1.summary?.['conflicts'], 0);
    assert.equal(r1.summary?.['downloaded'], 0, 'the torn object is never downloaded over the file');
    await checkConverged(p, b, model, false, 'after a torn first upload');

    // 2. An overwrite torn: the old version had a base, the new one is cut off on the way.
    put('media/big.bin', crypto.randomBytes(2500 * KiB));
    await killMidPut(p, proxy, env, 1000 * KiB);
    const r2 = await spawnCli(['sync', '--json'], { cwd: p.root, env });
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(r2.summary?.['conflicts'], 0);
    assert.equal(r2.summary?.['downloaded'], 0);
    await checkConverged(p, b, model, false, 'after a torn overwrite');
    assert.deepEqual(tempsUnder(p.root), []);
    assert.deepEqual([...localFiles(p).keys()].sort(), [...model.keys()].sort());
    // What the torn objects held is kept, in case it was someone's edit after all.
    const trash = path.join(p.root, 'manifests/default/trash');
    const kept = fs.existsSync(trash) ? fs.readdirSync(trash, { recursive: true }).map(String) : [];
    assert.ok(kept.some((f) => f.endsWith(path.join('remote', 'media', 'big.bin'))), kept.join(', '));
  } finally {
    b.close();
    await proxy.close();
    await server.stop();
    p.cleanup();
  }
});
