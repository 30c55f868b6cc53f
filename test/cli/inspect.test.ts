// status and manifest: read-only views that need no credentials and change nothing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startS3Server, type TestS3 } from '../support/s3-server.js';
import { filesUnder, makeProject, runCli, type Project } from '../support/harness.js';

let s3: TestS3;
let p: Project;

before(async () => {
  s3 = await startS3Server();
  p = makeProject({ 'media/a.txt': 'a', 'media/b.txt': 'b', 'media/skip.log': 'log', 'staticfiles/s.css': 's' });
  const r = await runCli(['sync', '--json', '--exclude', '**/*.log'], { cwd: p.root, env: s3.env });
  assert.equal(r.code, 0, r.stderr);
});
after(async () => {
  await s3.stop();
  p.cleanup();
});

test('--exclude keeps matching files out of the sync', async () => {
  assert.deepEqual((await s3.listAll()).map((o) => o.key).sort(), ['media/a.txt', 'media/b.txt', 'static/s.css']);
  const inc = await runCli(['sync', '--json', '--include', '*.log'], { cwd: p.root, env: s3.env });
  assert.deepEqual([inc.summary?.uploaded, inc.summary?.unchanged], [1, 0], 'only the .log file is in scope');
});

test('status reports tracked files and what a stat walk sees moved, without credentials', async () => {
  p.write('media/a.txt', 'edited');
  p.remove('media/b.txt');
  p.write('media/new.txt', 'new');
  const before = filesUnder(p.root);
  const r = await runCli(['status', '--json'], { cwd: p.root, env: {} });
  assert.equal(r.code, 0, r.stderr);
  const st = r.events[0] as { mappings: { local: string; tracked: number; statChanged: string[]; untracked: string[]; missing: string[] }[]; lastRun: { exitCode: number } };
  const media = st.mappings.find((m) => m.local === 'media')!;
  assert.equal(media.tracked, 3);
  assert.deepEqual(media.statChanged, ['media/a.txt']);
  assert.deepEqual(media.missing, ['media/b.txt']);
  assert.deepEqual(media.untracked, ['media/new.txt']);
  assert.equal(st.lastRun.exitCode, 0);
  const human = await runCli(['status'], { cwd: p.root, env: {} });
  assert.match(human.stdout, /media\/ ↔ media\/: 3 tracked/);
  assert.match(human.stdout, /stat changed since last sync: 1/);
  const after = filesUnder(p.root);
  delete before['manifests/default/manifest.lmdb-lock'];
  delete after['manifests/default/manifest.lmdb-lock'];
  assert.deepEqual(after, before, 'status changes nothing');
});

test('manifest ls, show and export read the base', async () => {
  const ls = await runCli(['manifest', 'ls', 'media/**'], { cwd: p.root, env: {} });
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, /media\/a\.txt/);
  assert.doesNotMatch(ls.stdout, /static/);
  const show = await runCli(['manifest', 'show', 'staticfiles/s.css'], { cwd: p.root, env: {} });
  const entry = JSON.parse(show.stdout) as { key: string; local: { md5: string }; remote: { etag: string } };
  assert.equal(entry.key, 'static/s.css');
  assert.equal(entry.local.md5, entry.remote.etag);
  const missing = await runCli(['manifest', 'show', 'media/nope'], { cwd: p.root, env: {} });
  assert.equal(missing.code, 2);
  const exp = await runCli(['manifest', 'export'], { cwd: p.root, env: {} });
  assert.ok(exp.stdout.trim().split('\n').length >= 4);
});

test('a bad --max-delete is a usage error even with --force', async () => {
  const r = await runCli(['sync', '--force', '--max-delete', 'lots'], { cwd: p.root, env: s3.env });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /max-delete|lots/);
});
