// `manifest verify`: the base against both sides, changing nothing; only an inconsistent base
// (one a sync would trust wrongly) fails the check, pending changes are information.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { open } from 'lmdb';
import type { TestS3 } from '../support/s3-server.js';
import { syncedSite, useFixture } from '../support/fixture.js';
import { filesUnder, md5, runCli, type CliResult, type Project } from '../support/harness.js';

let s3: TestS3;
let p: Project;
const manifestFile = (): string => path.join(p.root, 'manifests', 'default', 'manifest.lmdb');

useFixture({ server: (x) => (s3 = x), project: (x) => (p = x), setup: syncedSite });

const verify = (...args: string[]): Promise<CliResult> => runCli(['manifest', 'verify', '--json', ...args], { cwd: p.root, env: s3.env });
const found = (r: CliResult): { path?: string; problem: string; kind: string }[] =>
  r.events.filter((e) => e['event'] === 'verify') as { path?: string; problem: string; kind: string }[];

/** Writes into the manifest's LMDB directly, as damage or another version would. */
async function tamper(fn: (entries: { put(k: string, v: unknown): Promise<boolean> }, raw: { put(k: string, v: Buffer): Promise<boolean> }, meta: { put(k: string, v: unknown): Promise<boolean> }) => Promise<void>): Promise<void> {
  const env = open({ path: manifestFile(), compression: false });
  try {
    await fn(env.openDB({ name: 'entries' }), env.openDB({ name: 'entries', encoding: 'binary' }), env.openDB({ name: 'meta' }));
  } finally {
    await env.close();
  }
}

test('after a clean sync the manifest is consistent with both sides, deep or not', async () => {
  for (const args of [[], ['--deep']]) {
    const r = await verify(...args);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(found(r), []);
    assert.equal(r.summary?.['consistent'], true);
    assert.equal(r.summary?.['checked'], 4);
    assert.equal(r.summary?.['hashed'], args.length ? 4 : 0);
  }
  const human = await runCli(['manifest', 'verify'], { cwd: p.root, env: s3.env });
  assert.equal(human.code, 0);
  assert.match(human.stdout, /verified 4 of 4 entries: 0 inconsistent, 0 not checked, 0 pending/);
  assert.match(human.stdout, /consistent with both sides/);
});

test('a same-stat rewrite is invisible to the stat check and caught by --deep (exit 1)', async () => {
  const abs = path.join(p.root, 'media/a.txt');
  // Whole seconds survive utimes exactly (a Date goes through a lossy double): let a sync record
  // such an mtime first (a touch: the stat is refreshed), then put it back after the rewrite.
  const t = Math.floor(Date.now() / 1000) - 10;
  fs.utimesSync(abs, t, t);
  assert.equal((await runCli(['sync'], { cwd: p.root, env: s3.env })).code, 0);
  const st = fs.statSync(abs, { bigint: true });
  fs.writeFileSync(abs, 'ALPHA'); // same size, same inode
  fs.utimesSync(abs, t, t);
  assert.equal(fs.statSync(abs, { bigint: true }).mtimeNs, st.mtimeNs, 'stat restored exactly');

  const quick = await verify();
  assert.equal(quick.code, 0, 'the stat matches: a plain verify (like a sync) cannot see it');
  const deep = await verify('--deep');
  assert.equal(deep.code, 1, deep.stdout);
  assert.deepEqual(found(deep).map((f) => [f.path, f.problem, f.kind]), [['media/a.txt', 'content-differs', 'inconsistent']]);
  const human = await runCli(['manifest', 'verify', '--deep'], { cwd: p.root, env: s3.env });
  assert.equal(human.code, 1);
  assert.match(human.stdout, /^inconsistent +media\/a\.txt: content differs .* a sync would skip this file \[content-differs\]$/m);
  assert.match(human.stdout, /NOT consistent/);
});

test('changes on either side since the last sync are pending work, not inconsistency (exit 0)', async () => {
  await s3.putRaw('media/b.txt', 'replaced behind our back');
  await s3.deleteRaw('static/s.css');
  p.write('media/sub/c.txt', 'charlie, edited');
  p.remove('media/a.txt');
  p.write('media/new.txt', 'not tracked yet');
  const before = filesUnder(p.root);
  const r = await verify();
  assert.equal(r.code, 0, r.stdout);
  assert.deepEqual(found(r).map((f) => [f.path, f.problem, f.kind]), [
    ['media/a.txt', 'local-deleted', 'pending'],
    ['media/b.txt', 'remote-changed', 'pending'],
    ['media/sub/c.txt', 'local-changed', 'pending'],
    ['staticfiles/s.css', 'remote-deleted', 'pending'],
  ]);
  assert.equal(r.summary?.['untrackedLocal'], 1);
  const human = await runCli(['manifest', 'verify'], { cwd: p.root, env: s3.env });
  assert.match(human.stdout, /^pending +media\/b\.txt: remote object changed since the last sync .*\[remote-changed\]$/m);
  assert.match(human.stdout, /manifest is consistent with both sides \(4 pending changes for the next sync\)/);
  assert.equal(r.summary?.['pending'], 4);
  // A touch with the same content: --deep tells it from an edit.
  const abs = path.join(p.root, 'media/b.txt');
  const later = new Date(Date.now() - 2000);
  fs.utimesSync(abs, later, later);
  const deep = await verify('--deep');
  assert.equal(deep.code, 0);
  assert.ok(found(deep).some((f) => f.path === 'media/b.txt' && f.problem === 'local-touched'));
  assert.ok(found(deep).some((f) => f.path === 'media/sub/c.txt' && f.problem === 'local-changed'));
  const after = filesUnder(p.root);
  for (const f of Object.keys(before)) if (f.startsWith('manifests/')) delete before[f];
  for (const f of Object.keys(after)) if (f.startsWith('manifests/')) delete after[f];
  assert.deepEqual(after, before, 'verify changes nothing');
});

test('malformed, undecodable, self-contradicting and out-of-mapping entries are reported (exit 1)', async () => {
  const good = JSON.parse((await runCli(['manifest', 'show', 'media/b.txt'], { cwd: p.root, env: {} })).stdout) as Record<string, unknown> & { local: Record<string, unknown>; remote: Record<string, unknown> };
  delete good['path'];
  await tamper(async (entries, raw) => {
    await raw.put('media/garbage.bin', Buffer.from([0xc1, 0xc1, 0xff]));
    await entries.put('media/half.txt', { key: 'media/half.txt', local: { size: 3 } });
    await entries.put('media/not-an-entry', 'just a string');
    await entries.put('old/x.txt', { ...good, key: 'old/x.txt' });
    await entries.put('media/moved.txt', { ...good, key: 'elsewhere/moved.txt' });
    // B says its single-part ETag is one MD5 and its content another.
    await entries.put('media/b.txt', { ...good, remote: { ...good.remote, md5: md5('something else') }, local: { ...good.local, md5: md5('something else') } });
  });
  const r = await verify();
  assert.equal(r.code, 1, r.stdout);
  assert.deepEqual(found(r).map((f) => [f.path, f.problem, f.kind]), [
    ['media/b.txt', 'base-mismatch', 'inconsistent'],
    ['media/garbage.bin', 'malformed', 'inconsistent'],
    ['media/half.txt', 'malformed', 'inconsistent'],
    ['media/moved.txt', 'key-mismatch', 'inconsistent'],
    ['media/not-an-entry', 'malformed', 'inconsistent'],
    ['old/x.txt', 'outside-mappings', 'inconsistent'],
  ]);
  assert.equal(r.summary?.['inconsistent'], 6);
  assert.equal(r.summary?.['entries'], 9);
});

test('a manifest bound to another bucket is reported, and a damaged file is reported instead of crashing', async () => {
  await tamper(async (_e, _r, meta) => {
    await meta.put('remote', { endpoint: s3.endpoint, bucket: 'someone-elses-bucket' });
  });
  const other = await verify();
  assert.equal(other.code, 1);
  assert.deepEqual(found(other).map((f) => f.problem), ['identity']);

  // lmdb-js kills the process (SIGSEGV) on such a file: it must be refused before it is opened.
  fs.writeFileSync(manifestFile(), Buffer.alloc(64 * 1024));
  const zeroed = await verify();
  assert.equal(zeroed.code, 1);
  assert.deepEqual(found(zeroed).map((f) => f.problem), ['format']);
  const sync = await runCli(['sync'], { cwd: p.root, env: s3.env });
  assert.equal(sync.code, 2);
  assert.match(sync.stderr, /is not an LMDB data file.*manifest rebuild/);
  const status = await runCli(['status'], { cwd: p.root, env: {} });
  assert.equal(status.code, 2);
});

test('without a manifest there is nothing to verify (exit 0); without credentials, exit 2', async () => {
  fs.rmSync(path.join(p.root, 'manifests'), { recursive: true });
  const r = await runCli(['manifest', 'verify'], { cwd: p.root, env: s3.env });
  assert.equal(r.code, 0);
  assert.match(r.stdout, /no manifest at .*nothing to verify/);
  assert.ok(!fs.existsSync(path.join(p.root, 'manifests')), 'verify creates nothing');
  const noCreds = await runCli(['manifest', 'verify'], { cwd: p.root, env: {} });
  assert.equal(noCreds.code, 2);
  const withPath = await runCli(['manifest', 'verify', 'media/a.txt'], { cwd: p.root, env: s3.env });
  assert.equal(withPath.code, 2);
  assert.match(withPath.stderr, /takes no PATH/);
});

test('a tracked path behind a symlink is reported as not checked, not as deleted', async () => {
  const sub = path.join(p.root, 'media/sub');
  fs.renameSync(sub, path.join(p.root, 'elsewhere'));
  fs.symlinkSync(path.join(p.root, 'elsewhere'), sub);
  const r = await verify();
  assert.equal(r.code, 1, r.stdout);
  assert.deepEqual(found(r).map((f) => [f.path, f.problem, f.kind]), [['media/sub/c.txt', 'unchecked', 'failed']]);
});
