// `manifest rebuild`: a base from both sides as they are now; only equal content gets one, so the
// next sync transfers nothing that is already in sync and deletes nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Upload } from '@aws-sdk/lib-storage';
import { RunLock } from '../../src/manifest/lock.js';
import type { TestS3 } from '../support/s3-server.js';
import { syncedSite, useFixture } from '../support/fixture.js';
import { filesUnder, md5, runCli, type CliResult, type Project } from '../support/harness.js';

let s3: TestS3;
let p: Project;
const profileDir = (): string => path.join(p.root, 'manifests', 'default');
const cli = (...args: string[]): Promise<CliResult> => runCli(args, { cwd: p.root, env: s3.env });

useFixture({ server: (x) => (s3 = x), project: (x) => (p = x), setup: syncedSite });

test('after the manifest folder is lost, rebuild records every equal path: the next sync moves and hashes nothing', async () => {
  fs.rmSync(path.join(p.root, 'manifests'), { recursive: true });
  const r = await cli('manifest', 'rebuild', '--json');
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(
    [r.summary?.['recorded'], r.summary?.['differing'], r.summary?.['localOnly'], r.summary?.['remoteOnly'], r.summary?.['hashed']],
    [4, 0, 0, 0, 4],
  );
  assert.equal(r.summary?.['oldManifest'], undefined, 'there was no old manifest to keep');
  assert.equal(r.events.filter((e) => e['event'] === 'rebuild' && e['outcome'] === 'recorded').length, 4);
  const bound = await cli('manifest', 'verify', '--json');
  assert.deepEqual(bound.events.filter((e) => e['event'] === 'verify'), [], 'bound to this bucket, every entry matching both sides');

  const next = await cli('sync', '--json');
  assert.equal(next.code, 0, next.stderr);
  const s = next.summary!;
  assert.deepEqual([s['uploaded'], s['downloaded'], s['deletedRemote'], s['deletedLocal'], s['conflicts'], s['hashed'], s['unchanged']], [0, 0, 0, 0, 0, 0, 4]);
  const v = await cli('manifest', 'verify', '--deep');
  assert.equal(v.code, 0, v.stdout);
  const human = await cli('manifest', 'rebuild', '--force');
  assert.equal(human.code, 0);
  assert.match(human.stdout, /rebuilt .*manifest\.lmdb: 4 recorded \(same content on both sides\), 0 differing, 0 local-only, 0 remote-only; 4 files hashed/);
  assert.match(human.stdout, /old manifest is kept as .*manifest\.lmdb\.old-\d{8}-\d{6}-[0-9a-f]{6}/);
});

test('paths that differ or exist on one side get no base: the next two-way sync deletes nothing and keeps the loser', async () => {
  fs.rmSync(path.join(p.root, 'manifests'), { recursive: true });
  p.remove('media/a.txt'); // with the old base this would have deleted the object; now it comes back
  p.write('media/local-only.txt', 'only here');
  await s3.putRaw('media/remote-only.txt', 'only there');
  p.write('media/b.txt', 'bravo, mine');
  await s3.putRaw('media/b.txt', 'bravo, theirs');

  const r = await cli('manifest', 'rebuild', '--json');
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const outcome = Object.fromEntries(r.events.filter((e) => e['event'] === 'rebuild').map((e) => [e['path'], e['outcome']]));
  assert.deepEqual(outcome, {
    'media/a.txt': 'remote-only',
    'media/b.txt': 'differs',
    'media/local-only.txt': 'local-only',
    'media/remote-only.txt': 'remote-only',
    'media/sub/c.txt': 'recorded',
    'staticfiles/s.css': 'recorded',
  });
  assert.deepEqual([r.summary?.['recorded'], r.summary?.['differing'], r.summary?.['localOnly'], r.summary?.['remoteOnly']], [2, 1, 1, 2]);

  const next = await cli('sync', '--json');
  assert.equal(next.code, 0, next.stderr);
  const s = next.summary!;
  assert.deepEqual([s['deletedRemote'], s['deletedLocal'], s['uploaded'], s['downloaded'], s['conflicts']], [0, 0, 1, 3, 1]);
  // Remote wins the conflict (the default policy); the local version is in this run's trash.
  assert.equal(p.read('media/b.txt'), 'bravo, theirs');
  const trash = filesUnder(path.join(profileDir(), 'trash'));
  assert.deepEqual(Object.values(trash), [md5('bravo, mine')]);
  assert.equal(p.read('media/a.txt'), 'alpha');
  assert.equal(p.read('media/remote-only.txt'), 'only there');
  assert.equal((await s3.getBuffer('media/local-only.txt')).toString(), 'only here');
  const keys = (await s3.listAll()).map((o) => o.key).sort();
  assert.deepEqual(keys, ['media/a.txt', 'media/b.txt', 'media/local-only.txt', 'media/remote-only.txt', 'media/sub/c.txt', 'static/s.css']);
  assert.equal((await cli('manifest', 'verify', '--deep')).code, 0);
});

test('a healthy manifest is not replaced without --force (exit 3, nothing changed); with it the old one is kept', async () => {
  const file = path.join(profileDir(), 'manifest.lmdb');
  const before = fs.readFileSync(file);
  const r = await cli('manifest', 'rebuild');
  assert.equal(r.code, 3);
  assert.match(r.stderr, /not rebuilt: the manifest \(4 entries\) is consistent with both sides.*--force/);
  assert.ok(fs.readFileSync(file).equals(before), 'manifest untouched');
  assert.deepEqual(fs.readdirSync(profileDir()).filter((n) => n.includes('.old-') || n.includes('.rebuild-')), []);

  const forced = await cli('manifest', 'rebuild', '--force', '--json');
  assert.equal(forced.code, 0, forced.stderr);
  const old = forced.summary?.['oldManifest'] as string;
  assert.ok(fs.readFileSync(old).equals(before), 'the replaced manifest is kept as it was');
  assert.deepEqual(fs.readdirSync(profileDir()).filter((n) => n.includes('.rebuild-')), [], 'no build leftovers');
  const ls = await cli('manifest', 'ls');
  assert.equal(ls.stdout.trim().split('\n').length, 4);
});

test('a damaged manifest is rebuilt without --force; --dry-run reports and writes nothing', async () => {
  const file = path.join(profileDir(), 'manifest.lmdb');
  fs.writeFileSync(file, 'not a database');
  const dry = await cli('manifest', 'rebuild', '--dry-run', '--json');
  assert.equal(dry.code, 0, dry.stderr);
  assert.equal(dry.summary?.['recorded'], 4);
  assert.equal(fs.readFileSync(file, 'utf8'), 'not a database');
  assert.ok(!fs.existsSync(path.join(profileDir(), 'lock')));

  const r = await cli('manifest', 'rebuild');
  assert.equal(r.code, 0, r.stderr);
  const kept = fs.readdirSync(profileDir()).filter((n) => n.startsWith('manifest.lmdb.old-'));
  assert.equal(kept.length, 1);
  assert.equal(fs.readFileSync(path.join(profileDir(), kept[0]!), 'utf8'), 'not a database');
  const next = await cli('sync', '--json');
  assert.deepEqual([next.code, next.summary?.['unchanged'], next.summary?.['hashed']], [0, 4, 0]);
});

test('rebuild refuses while another run holds the lock (exit 3)', async () => {
  fs.rmSync(path.join(profileDir(), 'manifest.lmdb'));
  const lock = RunLock.acquire(profileDir());
  try {
    const r = await cli('manifest', 'rebuild');
    assert.equal(r.code, 3);
    assert.match(r.stderr, /another run holds the lock/);
    assert.ok(!fs.existsSync(path.join(profileDir(), 'manifest.lmdb')), 'nothing written');
  } finally {
    lock.release();
  }
});

test('a plan saved before a rebuild is stale afterwards (apply exits 3)', async () => {
  p.write('media/a.txt', 'alpha, edited');
  const plan = await cli('plan', '--json');
  assert.equal(plan.code, 0, plan.stderr);
  const r = await cli('manifest', 'rebuild', '--force');
  assert.equal(r.code, 0, r.stderr);
  const apply = await cli('apply');
  assert.equal(apply.code, 3);
  assert.match(apply.stderr, /stale plan/);
  assert.equal((await s3.getBuffer('media/a.txt')).toString(), 'alpha', 'nothing applied');
});

test('multipart objects are compared by x-amz-meta-md5, or by the recomputed multipart ETag', async () => {
  fs.writeFileSync(path.join(p.root, 'storage-sync.config.json'), JSON.stringify({ multipartThreshold: 5 * 1024 * 1024, partSize: 5 * 1024 * 1024 }));
  const big = Buffer.alloc(6 * 1024 * 1024, 7);
  p.write('media/big.bin', big);
  assert.equal((await cli('sync')).code, 0);
  assert.match((await s3.listAll('media/big')).at(0)!.etag, /-2$/);
  // Another tool's multipart upload carries no MD5: the local multipart ETag is computed instead.
  const foreign = Buffer.alloc(6 * 1024 * 1024, 9);
  p.write('media/foreign.bin', foreign);
  await new Upload({ client: s3.client, params: { Bucket: s3.bucket, Key: 'media/foreign.bin', Body: foreign }, partSize: 5 * 1024 * 1024 }).done();
  p.write('media/foreign-differs.bin', Buffer.alloc(6 * 1024 * 1024, 1));
  await new Upload({ client: s3.client, params: { Bucket: s3.bucket, Key: 'media/foreign-differs.bin', Body: Buffer.alloc(6 * 1024 * 1024, 2) }, partSize: 5 * 1024 * 1024 }).done();
  fs.rmSync(path.join(profileDir(), 'manifest.lmdb'));
  const r = await cli('manifest', 'rebuild', '--json');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual([r.summary?.['recorded'], r.summary?.['differing']], [6, 1]);
  assert.ok(r.events.some((e) => e['path'] === 'media/foreign.bin' && e['outcome'] === 'recorded'));
  p.remove('media/foreign-differs.bin');
  await s3.deleteRaw('media/foreign-differs.bin');
  const next = await cli('sync', '--json');
  assert.deepEqual([next.summary?.['uploaded'], next.summary?.['downloaded'], next.summary?.['hashed']], [0, 0, 0]);
});

test('an interrupted rebuild changes nothing (exit 130), and a killed one\'s leftover is never trusted', async () => {
  const file = path.join(profileDir(), 'manifest.lmdb');
  const before = fs.readFileSync(file);
  const ac = new AbortController();
  ac.abort('SIGINT');
  const r = await runCli(['manifest', 'rebuild', '--force'], { cwd: p.root, env: s3.env, signal: ac.signal });
  assert.equal(r.code, 130, r.stderr);
  assert.ok(fs.readFileSync(file).equals(before));
  assert.deepEqual(fs.readdirSync(profileDir()).filter((n) => n.includes('.rebuild-') || n.includes('.old-') || n === 'lock'), []);

  // What a rebuild killed before its swap leaves: a complete-looking environment under another name.
  const leftover = `${file}.rebuild-20260101-000000-abcdef`;
  fs.copyFileSync(file, leftover);
  await s3.putRaw('media/b.txt', 'bravo, changed remotely');
  const sync = await cli('sync', '--json');
  assert.equal(sync.code, 0, sync.stderr);
  assert.equal(sync.summary?.['downloaded'], 1, 'the real manifest was used');
  const again = await cli('manifest', 'rebuild', '--force');
  assert.equal(again.code, 0, again.stderr);
  assert.ok(!fs.existsSync(leftover), 'the next rebuild removes it');
});

test('a sound manifest with a path that cannot be checked (behind a symlink) is not replaced without --force', async () => {
  const file = path.join(profileDir(), 'manifest.lmdb');
  // A local edit the old base knows is an edit: a rebuild would turn it into a conflict.
  p.write('media/a.txt', 'alpha, edited');
  const sub = path.join(p.root, 'media/sub');
  fs.renameSync(sub, path.join(p.root, 'elsewhere'));
  fs.symlinkSync(path.join(p.root, 'elsewhere'), sub);
  const before = fs.readFileSync(file);
  const r = await cli('manifest', 'rebuild');
  assert.equal(r.code, 3, r.stdout + r.stderr);
  assert.match(r.stderr, /not rebuilt: .*1 path could not be checked.*--force/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.ok(fs.readFileSync(file).equals(before), 'manifest untouched');
  fs.rmSync(sub);
  fs.renameSync(path.join(p.root, 'elsewhere'), sub);
  const sync = await cli('sync', '--json');
  assert.equal(sync.code, 0, sync.stderr);
  assert.equal(sync.summary?.['uploaded'], 1, 'the edit is still an upload, not a conflict');
  assert.equal(sync.summary?.['conflicts'], 0);
});

test('a rebuild narrowed by --include replaces only the matching paths\' base: a local delete elsewhere still propagates', async () => {
  p.remove('media/a.txt'); // pending: the next sync deletes the object
  const r = await cli('manifest', 'rebuild', '--include', 'sub/**', '--force', '--json');
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(r.events.filter((e) => e['event'] === 'rebuild').map((e) => [e['path'], e['outcome']]), [['media/sub/c.txt', 'recorded']]);
  assert.equal(r.summary?.['carried'], 3, 'media/a.txt, media/b.txt and staticfiles/s.css keep their base');
  const ls = await cli('manifest', 'ls');
  for (const kept of ['media/a.txt', 'media/b.txt', 'media/sub/c.txt', 'staticfiles/s.css']) assert.ok(ls.stdout.includes(kept), `${kept} in:\n${ls.stdout}`);

  const next = await cli('sync', '--json');
  assert.equal(next.code, 0, next.stderr);
  assert.deepEqual([next.summary?.['deletedRemote'], next.summary?.['downloaded'], next.summary?.['hashed']], [1, 0, 0]);
  assert.ok(!fs.existsSync(path.join(p.root, 'media/a.txt')), 'the delete was not undone');
  assert.deepEqual((await s3.listAll()).map((o) => o.key).sort(), ['media/b.txt', 'media/sub/c.txt', 'static/s.css']);
});

test('a filtered rebuild refuses (exit 2, nothing hashed or written) when the old manifest cannot be read to keep the other paths', async () => {
  const file = path.join(profileDir(), 'manifest.lmdb');
  fs.writeFileSync(file, 'not a database');
  const r = await cli('manifest', 'rebuild', '--include', 'sub/**', '--json');
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /not rebuilt: with --include\/--exclude the other paths keep their base from the old manifest, which cannot be read .*rebuild without filters/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.equal(fs.readFileSync(file, 'utf8'), 'not a database');
  assert.deepEqual(fs.readdirSync(profileDir()).filter((n) => n.includes('.old-') || n.includes('.rebuild-') || n === 'lock'), []);
});
