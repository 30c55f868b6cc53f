// Two-way sync end to end: the CLI in-process against a real S3 endpoint on loopback.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestS3 } from '../support/s3-server.js';
import { useFixture } from '../support/fixture.js';
import { filesUnder, md5, runCli, type CliResult, type Project } from '../support/harness.js';

let s3: TestS3;
let p: Project;
const outputs: CliResult[] = [];

async function sync(...args: string[]): Promise<CliResult> {
  const r = await runCli(['sync', '--json', ...args], { cwd: p.root, env: s3.env });
  outputs.push(r);
  return r;
}

async function bucket(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const o of await s3.listAll()) out[o.key] = o.etag;
  return out;
}

function fileEvents(r: CliResult, status?: string): Record<string, unknown>[] {
  return r.events.filter((e) => e['event'] === 'file' && (!status || e['status'] === status));
}

const FOUR = {
  'staticfiles/css/app.css': 'body { color: red }',
  'staticfiles/js/app.js': 'console.log(1)',
  'media/a.txt': 'alpha',
  'media/b.txt': 'bravo',
  'media/c.txt': 'charlie',
  'media/d.txt': 'delta',
};

useFixture({
  server: (x) => (s3 = x),
  project: (x) => (p = x),
  // No secret in any output of any run of this file.
  finally: (server) => {
    for (const r of outputs) assert.ok(!r.stdout.includes(server.secretAccessKey) && !r.stderr.includes(server.secretAccessKey), 'secret leaked into output');
  },
});

describe('first run', () => {
  test('uploads local-only, downloads remote-only, records identical files', async () => {
    p.write('staticfiles/css/app.css', 'body{}');
    p.write('media/same.txt', 'same');
    await s3.putRaw('media/same.txt', 'same');
    await s3.putRaw('media/remote-only.jpg', 'JPEGDATA');
    const r = await sync();
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      { up: r.summary?.uploaded, down: r.summary?.downloaded, rec: r.summary?.recorded, failed: r.summary?.failed },
      { up: 1, down: 1, rec: 1, failed: 0 },
    );
    assert.equal(p.read('media/remote-only.jpg'), 'JPEGDATA');
    assert.equal((await s3.getBuffer('static/css/app.css')).toString(), 'body{}');
    const items = r.events.filter((e) => e['event'] === 'item').map((e) => `${String(e['action'])}:${String(e['path'])}:${String(e['reason'])}`);
    assert.deepEqual(items.sort(), ['download:media/remote-only.jpg:remote-new', 'record:media/same.txt:same-content', 'upload:staticfiles/css/app.css:local-new']);
  });

  test('both present and different on first run: remote wins, local loser kept in trash', async () => {
    p.write('media/x.txt', 'local version');
    await s3.putRaw('media/x.txt', 'remote version');
    const r = await sync();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.summary?.conflicts, 1);
    assert.equal(p.read('media/x.txt'), 'remote version');
    const trashed = Object.keys(filesUnder(path.join(p.root, 'manifests/default/trash')));
    assert.equal(trashed.length, 1);
    assert.equal(fs.readFileSync(path.join(p.root, 'manifests/default/trash', trashed[0]!), 'utf8'), 'local version');
  });
});

describe('steady state', () => {
  test('a second run with no change transfers nothing and hashes nothing', async () => {
    for (const [k, v] of Object.entries(FOUR)) p.write(k, v);
    assert.equal((await sync()).code, 0);
    const r = await sync();
    assert.equal(r.code, 0);
    assert.deepEqual([r.summary?.uploaded, r.summary?.downloaded, r.summary?.hashed, r.summary?.unchanged], [0, 0, 0, 6]);
  });

  test('a touch-only change uploads nothing and re-reads only that file', async () => {
    for (const [k, v] of Object.entries(FOUR)) p.write(k, v);
    await sync();
    // Three seconds back: clear of the racy cut-off even when the mtime lands on a whole second.
    const t = new Date(Date.now() - 3000);
    fs.utimesSync(path.join(p.root, 'media/a.txt'), t, t);
    const r = await sync();
    assert.deepEqual([r.summary?.uploaded, r.summary?.downloaded, r.summary?.hashed], [0, 0, 1]);
    assert.deepEqual([(await sync()).summary?.hashed], [0], 'stat refreshed: not re-read again');
  });

  test('local edit uploads, remote edit downloads', async () => {
    for (const [k, v] of Object.entries(FOUR)) p.write(k, v);
    await sync();
    p.write('media/a.txt', 'alpha v2');
    await s3.putRaw('media/b.txt', 'bravo v2');
    const r = await sync();
    assert.deepEqual([r.summary?.uploaded, r.summary?.downloaded], [1, 1]);
    assert.equal((await s3.getBuffer('media/a.txt')).toString(), 'alpha v2');
    assert.equal(p.read('media/b.txt'), 'bravo v2');
  });
});

describe('deletes', () => {
  test('a local delete deletes remote, a remote delete trashes local, and neither comes back', async () => {
    for (const [k, v] of Object.entries(FOUR)) p.write(k, v);
    await sync();
    p.remove('media/a.txt');
    await s3.deleteRaw('media/b.txt');
    const r = await sync();
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([r.summary?.deletedRemote, r.summary?.deletedLocal], [1, 1]);
    assert.ok(!('media/a.txt' in (await bucket())));
    assert.ok(!p.exists('media/b.txt'));
    const again = await sync();
    assert.deepEqual([again.summary?.uploaded, again.summary?.downloaded], [0, 0]);
    assert.ok(!p.exists('media/a.txt') && !p.exists('media/b.txt') && !('media/b.txt' in (await bucket())));
    const trashed = Object.values(filesUnder(path.join(p.root, 'manifests/default/trash')));
    assert.deepEqual(trashed, [md5('bravo')]);
  });

  test('a change beats a delete on the other side', async () => {
    for (const [k, v] of Object.entries(FOUR)) p.write(k, v);
    await sync();
    p.remove('media/a.txt');
    await s3.putRaw('media/a.txt', 'alpha edited remotely');
    await s3.deleteRaw('media/c.txt');
    p.write('media/c.txt', 'charlie edited locally');
    const r = await sync();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(p.read('media/a.txt'), 'alpha edited remotely');
    assert.equal((await s3.getBuffer('media/c.txt')).toString(), 'charlie edited locally');
  });

  test('the delete guard refuses (exit 3) and changes nothing; --force goes ahead', async () => {
    for (const [k, v] of Object.entries(FOUR)) p.write(k, v);
    await sync();
    for (const f of ['media/a.txt', 'media/b.txt', 'media/c.txt']) p.remove(f);
    p.write('media/new.txt', 'a pending upload');
    await s3.putRaw('static/pending-download.css', 'x');
    const before = await bucket();
    const r = await sync();
    assert.equal(r.code, 3);
    assert.ok(!p.exists('staticfiles/pending-download.css'), 'a refused run transfers nothing either');
    assert.match(r.stderr, /refusing to delete 3 of 4/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.deepEqual(await bucket(), before);
    assert.equal((await sync('--force')).summary?.deletedRemote, 3);
  });

  test('an emptied local folder is refused as a likely mistake', async () => {
    for (const [k, v] of Object.entries(FOUR)) p.write(k, v);
    await sync();
    fs.rmSync(path.join(p.root, 'media'), { recursive: true });
    const r = await sync('--max-delete', '100%');
    assert.equal(r.code, 3);
    assert.match(r.stderr, /empty/);
    assert.equal((await s3.listAll('media/')).length, 4);
  });

  test('an emptied bucket prefix is refused too, and the JSON error event says exit 3', async () => {
    for (const [k, v] of Object.entries(FOUR)) p.write(k, v);
    await sync();
    await s3.reset();
    const r = await sync('--max-delete', '100%');
    assert.equal(r.code, 3);
    const err = r.events.find((e) => e['event'] === 'error');
    assert.equal(err?.['exitCode'], 3);
    assert.match(String(err?.['message']), /remote listing .* is empty/);
    assert.deepEqual(Object.keys(p.files()).sort(), Object.keys(FOUR).sort(), 'every local file still there');
  });

  test('--no-trash: an overwritten local file is not kept, a remote loser still is', async () => {
    await (async () => {
      for (const [k, v] of Object.entries(FOUR)) p.write(k, v);
      await sync();
    })();
    p.write('media/a.txt', 'local edit');
    await s3.putRaw('media/a.txt', 'remote edit');
    p.write('media/b.txt', 'local b');
    await s3.putRaw('media/b.txt', 'remote b');
    await sync('--no-trash');
    assert.equal(p.read('media/a.txt'), 'remote edit');
    assert.deepEqual(filesUnder(path.join(p.root, 'manifests/default/trash')), {});
    p.write('media/c.txt', 'local c');
    await s3.putRaw('media/c.txt', 'remote c');
    await sync('--no-trash', '--conflict', 'local');
    assert.deepEqual(Object.values(filesUnder(path.join(p.root, 'manifests/default/trash'))), [md5('remote c')]);
  });
});

describe('conflicts', () => {
  async function diverge(): Promise<void> {
    for (const [k, v] of Object.entries(FOUR)) p.write(k, v);
    await sync();
    p.write('media/a.txt', 'local edit');
    await s3.putRaw('media/a.txt', 'remote edit');
  }

  test('default policy: remote wins, local loser in trash', async () => {
    await diverge();
    const r = await sync();
    assert.equal(r.summary?.conflicts, 1);
    assert.equal(p.read('media/a.txt'), 'remote edit');
    assert.deepEqual(Object.values(filesUnder(path.join(p.root, 'manifests/default/trash'))), [md5('local edit')]);
  });

  test('--conflict local: local wins, remote loser kept in trash', async () => {
    await diverge();
    const r = await sync('--conflict', 'local');
    assert.equal(r.summary?.conflicts, 1);
    assert.equal((await s3.getBuffer('media/a.txt')).toString(), 'local edit');
    assert.deepEqual(Object.values(filesUnder(path.join(p.root, 'manifests/default/trash'))), [md5('remote edit')]);
  });

  test('--conflict newer: the later edit wins, whichever side it is on', async () => {
    await diverge();
    const later = new Date(Date.now() + 3_600_000);
    fs.utimesSync(path.join(p.root, 'media/a.txt'), later, later);
    const localWins = await sync('--conflict', 'newer');
    assert.equal(localWins.summary?.conflicts, 1);
    assert.equal((await s3.getBuffer('media/a.txt')).toString(), 'local edit');

    p.write('media/b.txt', 'older local edit', { ageMs: 3_600_000 });
    await s3.putRaw('media/b.txt', 'newer remote edit');
    await sync('--conflict', 'newer');
    assert.equal(p.read('media/b.txt'), 'newer remote edit');
  });

  test('--conflict keep-both: remote keeps the name, local is renamed and uploaded', async () => {
    await diverge();
    const r = await sync('--conflict', 'keep-both');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(p.read('media/a.txt'), 'remote edit');
    const copies = Object.keys(p.files()).filter((f) => /^media\/a\.conflict-\d{8}-\d{6}\.txt$/.test(f));
    assert.equal(copies.length, 1);
    assert.equal(p.read(copies[0]!), 'local edit');
    assert.equal((await s3.getBuffer(copies[0]!)).toString(), 'local edit');
    assert.deepEqual([(await sync()).summary?.uploaded, (await sync()).summary?.downloaded], [0, 0]);
  });
});

describe('dry run and hostile keys', () => {
  test('--dry-run leaves local files, bucket and manifest byte-identical', async () => {
    for (const [k, v] of Object.entries(FOUR)) p.write(k, v);
    await sync();
    p.write('media/a.txt', 'changed');
    p.remove('media/b.txt');
    await s3.putRaw('media/new-remote.txt', 'x');
    await s3.putRaw('media/c.txt', 'remote change');
    const snapLocal = filesUnder(p.root);
    delete snapLocal['manifests/default/manifest.lmdb-lock']; // LMDB's reader table, not data
    const snapBucket = await bucket();
    const r = await sync('--dry-run');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.summary?.dryRun, true);
    assert.deepEqual([r.summary?.uploaded, r.summary?.downloaded, r.summary?.deletedRemote], [1, 2, 1]);
    const after = filesUnder(p.root);
    delete after['manifests/default/manifest.lmdb-lock'];
    assert.deepEqual(after, snapLocal);
    assert.deepEqual(await bucket(), snapBucket);
  });

  test('--dry-run on a fresh project creates no manifest folder at all', async () => {
    p.write('media/a.txt', 'a');
    const r = await sync('--dry-run');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!fs.existsSync(path.join(p.root, 'manifests')));
  });

  test('a remote key escaping the folder is refused; the rest syncs', async () => {
    await s3.putRaw('media/../x.txt', 'evil');
    await s3.putRaw('media/ok.txt', 'fine');
    p.write('media/local.txt', 'local');
    const r = await sync();
    assert.equal(r.code, 1);
    const failed = fileEvents(r, 'failed');
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!['key'], 'media/../x.txt');
    assert.equal(failed[0]!['path'], undefined);
    assert.match(String(failed[0]!['error']), /invalid path/);
    assert.ok(!fs.existsSync(path.join(p.root, 'x.txt')));
    assert.equal(p.read('media/ok.txt'), 'fine');
    assert.equal((await s3.getBuffer('media/local.txt')).toString(), 'local');
  });
});

describe('unreadable local folders', () => {
  test('files under a folder that cannot be read, or that became a symlink, are left alone', async () => {
    for (const [k, v] of Object.entries(FOUR)) p.write(k, v);
    p.write('media/sub/x.txt', 'x');
    p.write('media/sub/y.txt', 'y');
    await sync();
    // Unreadable for a normal user; root reads everything, so there the folder becomes a symlink.
    const sub = path.join(p.root, 'media/sub');
    fs.rmSync(sub, { recursive: true });
    fs.mkdirSync(sub);
    fs.chmodSync(sub, 0o000);
    const unreadable = process.getuid?.() !== 0;
    if (!unreadable) {
      fs.rmdirSync(sub);
      fs.symlinkSync(os.tmpdir(), sub);
    }
    const target = fs.mkdtempSync(path.join(os.tmpdir(), 'ssync-link-target-'));
    if (!unreadable) {
      fs.rmSync(sub);
      fs.symlinkSync(target, sub);
    }
    await s3.putRaw('media/sub/new.txt', 'must not land through the link');
    const r = await sync();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.summary?.deletedRemote, 0, r.stdout);
    assert.equal(r.summary?.downloaded, 0, r.stdout);
    assert.deepEqual(fs.readdirSync(target), [], 'nothing written through the link');
    assert.deepEqual((await s3.listAll('media/sub/')).map((o) => o.key).sort(), ['media/sub/new.txt', 'media/sub/x.txt', 'media/sub/y.txt']);
    if (unreadable) fs.chmodSync(sub, 0o755);
    fs.rmSync(target, { recursive: true, force: true });
  });
});

describe('human output', () => {
  test('plain lines per file off a terminal; --log-level warn keeps only what needs attention', async () => {
    p.write('media/a.txt', 'a');
    const info = await runCli(['sync'], { cwd: p.root, env: s3.env });
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, /^uploaded {2}media\/a\.txt {2}1 B$/m);
    assert.match(info.stdout, /^done in .*1 uploaded/m);
    p.write('media/b.txt', 'b');
    const warn = await runCli(['sync', '--log-level', 'warn'], { cwd: p.root, env: s3.env });
    assert.doesNotMatch(warn.stdout, /uploaded {2}media\/b\.txt/);
    assert.match(warn.stdout, /^done in .*1 uploaded/m);
    outputs.push(info, warn);
  });
});

describe('failures', () => {
  test('one failing file never stops the others, and deletes wait for a clean run', async () => {
    for (const [k, v] of Object.entries(FOUR)) p.write(k, v);
    await sync();
    p.remove('media/d.txt'); // a delete to propagate
    await s3.putRaw('media/a.txt/inside.txt', 'cannot land: media/a.txt is a file');
    await s3.putRaw('media/new.txt', 'fine');
    p.write('media/up.txt', 'fine too');
    const r = await sync();
    assert.equal(r.code, 1);
    const failed = fileEvents(r, 'failed');
    assert.deepEqual(failed.map((e) => e['path']), ['media/a.txt/inside.txt']);
    assert.match(String(failed[0]!['error']), /^download of media\/a\.txt\/inside\.txt: (EEXIST|ENOTDIR)/);
    assert.equal(p.read('media/new.txt'), 'fine');
    assert.equal((await s3.getBuffer('media/up.txt')).toString(), 'fine too');
    const held = fileEvents(r, 'skipped').find((e) => e['path'] === 'media/d.txt');
    assert.match(String(held?.['error']), /not deleted/);
    assert.ok((await s3.listAll()).some((o) => o.key === 'media/d.txt'), 'the delete waits');
    await s3.deleteRaw('media/a.txt/inside.txt');
    const clean = await sync();
    assert.equal(clean.code, 0, clean.stderr);
    assert.equal(clean.summary?.deletedRemote, 1);
  });
});
