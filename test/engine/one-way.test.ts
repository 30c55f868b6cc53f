// Upload-only and download-only end to end, and plan/apply, against a real S3 endpoint.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { TestS3 } from '../support/s3-server.js';
import { useFixture } from '../support/fixture.js';
import { filesUnder, md5, runCli, type CliResult, type Project } from '../support/harness.js';

let s3: TestS3;
let p: Project;

const cli = (...args: string[]): Promise<CliResult> => runCli([...args, '--json'], { cwd: p.root, env: s3.env });

useFixture({
  server: (x) => (s3 = x),
  project: (x) => (p = x),
  setup: async (server, project) => {
    for (const [k, v] of Object.entries({ 'media/l1.txt': 'local one', 'media/l2.txt': 'local two', 'staticfiles/s.css': 'css' })) project.write(k, v);
    await server.putRaw('media/r1.txt', 'remote one');
  },
});

describe('upload-only', () => {
  test('first run uploads local files and never downloads; a second run is a no-op', async () => {
    const r = await cli('sync', '--mode', 'upload');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([r.summary?.uploaded, r.summary?.downloaded, r.summary?.skipped], [3, 0, 1]);
    assert.ok(!p.exists('media/r1.txt'));
    const keys = (await s3.listAll()).map((o) => o.key).sort();
    assert.deepEqual(keys, ['media/l1.txt', 'media/l2.txt', 'media/r1.txt', 'static/s.css']);
    const again = await cli('update-storage', '--upload-only');
    assert.deepEqual([again.summary?.uploaded, again.summary?.hashed], [0, 0]);
  });

  test('--delete removes remote extras; a remote edit is skipped, not overwritten', async () => {
    await cli('sync', '--mode', 'upload');
    await s3.putRaw('media/l1.txt', 'edited remotely');
    const r = await cli('sync', '--mode', 'upload', '--delete', '--force');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.summary?.deletedRemote, 1);
    const skip = r.events.find((e) => e['event'] === 'item' && e['path'] === 'media/l1.txt');
    assert.equal(skip?.['reason'], 'remote-changed');
    assert.equal((await s3.getBuffer('media/l1.txt')).toString(), 'edited remotely');
  });

  test('a local delete is not propagated without --delete', async () => {
    await cli('sync', '--upload-only');
    p.remove('media/l2.txt');
    const r = await cli('sync', '--upload-only');
    assert.equal(r.summary?.deletedRemote, 0);
    assert.ok((await s3.listAll()).some((o) => o.key === 'media/l2.txt'));
  });
});

describe('upload-only over a bucket that differs', () => {
  test('a first upload-only run replaces differing objects and keeps their versions in the trash', async () => {
    await s3.putRaw('media/l1.txt', 'what the bucket had');
    const r = await cli('sync', '--upload-only');
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await s3.getBuffer('media/l1.txt')).toString(), 'local one');
    const kept = filesUnder(path.join(p.root, 'manifests/default/trash'));
    assert.deepEqual(Object.values(kept), [md5('what the bucket had')]);
    assert.match(Object.keys(kept)[0]!, /\/remote\/media\/l1\.txt$/);
  });
});

describe('download-only', () => {
  test('first run downloads and never uploads; local extras are kept', async () => {
    const r = await cli('sync', '--mode', 'download');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([r.summary?.uploaded, r.summary?.downloaded], [0, 1]);
    assert.equal(p.read('media/r1.txt'), 'remote one');
    assert.equal((await s3.listAll()).length, 1);
    assert.ok(p.exists('media/l1.txt'));
  });

  test('--delete moves local extras to the trash', async () => {
    const r = await cli('sync', '--download-only', '--delete', '--force');
    assert.equal(r.summary?.deletedLocal, 3);
    assert.ok(!p.exists('media/l1.txt'));
    const trashed = Object.values(filesUnder(path.join(p.root, 'manifests/default/trash'))).sort();
    assert.deepEqual(trashed, [md5('css'), md5('local one'), md5('local two')].sort());
  });

  test('a differing local file is replaced by the remote one, the old one kept in trash', async () => {
    p.write('media/r1.txt', 'stale local copy');
    const r = await cli('sync', '--download-only');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(p.read('media/r1.txt'), 'remote one');
    assert.ok(Object.values(filesUnder(path.join(p.root, 'manifests/default/trash'))).includes(md5('stale local copy')));
  });
});

describe('plan and apply', () => {
  test('plan changes nothing and saves a plan that apply carries out', async () => {
    const planned = await cli('plan');
    assert.equal(planned.code, 0, planned.stderr);
    assert.ok(!p.exists('media/r1.txt'));
    assert.equal((await s3.listAll()).length, 1);
    const saved = planned.events.find((e) => e['event'] === 'plan-saved');
    assert.ok(saved && fs.existsSync(String(saved['file'])));
    const applied = await cli('apply');
    assert.equal(applied.code, 0, applied.stderr);
    assert.deepEqual([applied.summary?.uploaded, applied.summary?.downloaded], [3, 1]);
    assert.equal(p.read('media/r1.txt'), 'remote one');
  });

  test('apply of a saved plan counts the unchanged paths as the plan did', async () => {
    assert.equal((await cli('sync')).code, 0);
    p.write('media/new.txt', 'new since the sync');
    const planned = await cli('plan');
    const unchanged = planned.summary?.unchanged;
    assert.ok(typeof unchanged === 'number' && unchanged > 0, JSON.stringify(planned.summary));
    const applied = await cli('apply');
    assert.equal(applied.code, 0, applied.stderr);
    assert.deepEqual([applied.summary?.uploaded, applied.summary?.unchanged], [1, unchanged]);
  });

  test('an item that drifted since planning is skipped and reported', async () => {
    await cli('plan');
    p.write('media/l1.txt', 'edited after planning');
    const applied = await cli('apply');
    const drifted = applied.events.find((e) => e['event'] === 'file' && e['path'] === 'media/l1.txt');
    assert.equal(drifted?.['status'], 'skipped');
    assert.match(String(drifted?.['error']), /changed since the plan/);
    assert.equal(applied.summary?.uploaded, 2);
  });

  test('a same-size rewrite that kept its mtime is still caught as drift (by content)', async () => {
    await cli('sync');
    p.write('media/l1.txt', 'local ONE');
    const planned = await cli('plan');
    assert.ok(planned.events.some((e) => e['event'] === 'item' && e['path'] === 'media/l1.txt'));
    const abs = path.join(p.root, 'media/l1.txt');
    const st = fs.statSync(abs);
    fs.writeFileSync(abs, 'LOCAL one');
    fs.utimesSync(abs, st.atime, st.mtime);
    const applied = await cli('apply');
    const item = applied.events.find((e) => e['event'] === 'file' && e['path'] === 'media/l1.txt');
    assert.equal(item?.['status'], 'skipped', JSON.stringify(item));
    assert.equal((await s3.getBuffer('media/l1.txt')).toString(), 'local one');
  });

  test('a plan made before another run is stale (exit 3); an edited plan is refused (exit 2)', async () => {
    const planned = await cli('plan');
    const file = String(planned.events.find((e) => e['event'] === 'plan-saved')?.['file']);
    const text = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(file, text.replace('"upload"', '"delete-remote"'));
    const tampered = await cli('apply', file);
    assert.equal(tampered.code, 2);
    assert.match(tampered.stderr, /digest mismatch/);
    fs.writeFileSync(file, text);
    await cli('sync');
    const stale = await cli('apply', file);
    assert.equal(stale.code, 3);
    assert.match(stale.stderr, /stale plan/);
  });
});
