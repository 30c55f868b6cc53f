// What the next run does with each kind of record a killed run can leave in the journal. Each test
// builds the exact state a kill leaves (the record plus what was half done), which a real kill
// only hits by chance; test/crash/ kills the real CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CreateMultipartUploadCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import type { TestS3 } from '../support/s3-server.js';
import { useFixture } from '../support/fixture.js';
import { md5, runCli, type CliResult, type Project } from '../support/harness.js';
import { Manifest, profilePaths } from '../../src/manifest/manifest.js';
import { Journal, type JournalRecord } from '../../src/manifest/journal.js';
import { newRunId } from '../../src/engine/run.js';
import { WriteAhead } from '../../src/engine/write-ahead.js';
import type { PlanItem } from '../../src/core/types.js';
import { statOf } from '../../src/engine/records.js';
import { tempNameFor } from '../../src/local/scan.js';
import { getXxh64 } from '../../src/local/xxh.js';

const MiB = 1024 * 1024;
let s3: TestS3;
let p: Project;

useFixture({ server: (x) => (s3 = x), project: (x) => (p = x) });

const manifestFile = (): string => profilePaths(path.join(p.root, 'manifests'), 'default').manifest;

async function withManifest<T>(fn: (m: Manifest) => Promise<T> | T, readOnly = false): Promise<T> {
  const m = Manifest.open(manifestFile(), { readOnly });
  try {
    return await fn(m);
  } finally {
    await m.close();
  }
}

/** A record as the executor writes it, for a run that was killed right after. */
async function journal(p_: string, r: Omit<JournalRecord, 'runId' | 'at'> & { runId?: string; at?: number }): Promise<string> {
  const runId = r.runId ?? newRunId(new Date(Date.now() - 60_000));
  await withManifest((m) => m.journal!.begin([[p_, { at: Date.now() - 60_000, ...r, runId }]]));
  return runId;
}

async function localOf(rel: string): Promise<NonNullable<JournalRecord['local']>> {
  const abs = path.join(p.root, rel);
  const data = fs.readFileSync(abs);
  return { ...statOf(abs)!, md5: md5(data), xxh64: (await getXxh64()).hex(data) };
}

async function sync(...args: string[]): Promise<CliResult> {
  const r = await runCli(['sync', '--json', ...args], { cwd: p.root, env: s3.env });
  assert.ok(r.code === 0, `exit ${r.code}: ${r.stderr}`);
  return r;
}

const warnings = (r: CliResult): string[] => r.events.filter((e) => e['event'] === 'warning').map((e) => String(e['message']));
const journalCount = (): Promise<number> => withManifest((m) => m.journal?.count() ?? 0, true);

test('a torn new object (0 bytes, as s3rver leaves after a kill) is sent again, not downloaded over the file', async () => {
  const body = crypto.randomBytes(200_000);
  p.write('media/a.bin', body);
  await journal('media/a.bin', { action: 'upload', key: 'media/a.bin', local: await localOf('media/a.bin') });
  await s3.putRaw('media/a.bin', Buffer.alloc(0));
  const r = await sync();
  assert.ok(warnings(r).some((w) => /torn object \(0 of 200000 bytes\)/.test(w)), warnings(r).join('\n'));
  assert.equal(r.summary?.['uploaded'], 1);
  assert.equal(r.summary?.['downloaded'], 0);
  assert.equal(md5(fs.readFileSync(path.join(p.root, 'media/a.bin'))), md5(body), 'the local file is intact');
  assert.equal(md5(await s3.getBuffer('media/a.bin')), md5(body), 'the object is whole');
  assert.equal(await journalCount(), 0);
  const again = await sync();
  assert.equal(again.summary?.['unchanged'], 1);
});

test('without the record the same torn object would win as a remote edit (why the journal is needed)', async () => {
  const body = crypto.randomBytes(200_000);
  p.write('media/a.bin', body);
  await s3.putRaw('media/a.bin', Buffer.alloc(0));
  const r = await sync();
  assert.equal(r.summary?.['downloaded'], 1, 'a first run with differing sides lets the remote win');
  assert.equal(fs.statSync(path.join(p.root, 'media/a.bin')).size, 0);
});

test('a torn overwrite (a prefix of the new version) is kept in the trash and the new version goes up', async () => {
  const v0 = crypto.randomBytes(50_000);
  p.write('media/b.bin', v0);
  await sync();
  const v1 = crypto.randomBytes(300_000);
  p.write('media/b.bin', v1);
  const before = (await s3.listAll('media/'))[0]!;
  await journal('media/b.bin', {
    action: 'upload', key: 'media/b.bin', local: await localOf('media/b.bin'),
    remote: { etag: before.etag, size: before.size, lastModified: 0, md5: before.etag },
  });
  await s3.putRaw('media/b.bin', v1.subarray(0, 100_000));
  const r = await sync();
  assert.equal(r.summary?.['uploaded'], 1);
  assert.equal(r.summary?.['conflicts'], 0);
  assert.equal(md5(await s3.getBuffer('media/b.bin')), md5(v1));
  assert.equal(md5(fs.readFileSync(path.join(p.root, 'media/b.bin'))), md5(v1));
  const kept = fs.readdirSync(path.join(p.root, 'manifests/default/trash'), { recursive: true }).map(String);
  assert.ok(kept.some((f) => f.endsWith(path.join('remote', 'media', 'b.bin'))), `the torn object is kept: ${kept.join(', ')}`);
});

test('an upload that completed but was not recorded is recorded from its ETag, with no transfer', async () => {
  const body = crypto.randomBytes(10_000);
  p.write('media/c.bin', body);
  await journal('media/c.bin', { action: 'upload', key: 'media/c.bin', local: await localOf('media/c.bin'), at: Date.now() });
  await s3.putRaw('media/c.bin', body);
  const r = await sync();
  assert.ok(warnings(r).some((w) => /uploaded by the interrupted run; recorded/.test(w)));
  assert.equal(r.summary?.['uploaded'], 0);
  assert.equal(r.summary?.['recorded'], 0, 'settled before planning: the plan finds it in sync');
  assert.equal(r.summary?.['unchanged'], 1);
  assert.equal(r.summary?.['hashed'], 0, 'the base carries the planned hashes');
});

test('an upload that never happened leaves no trace: the plan uploads it as usual', async () => {
  p.write('media/d.bin', 'never sent');
  await journal('media/d.bin', { action: 'upload', key: 'media/d.bin', local: await localOf('media/d.bin') });
  const r = await sync();
  assert.deepEqual(warnings(r), []);
  assert.equal(r.summary?.['uploaded'], 1);
});

test("a verified complete temp file is renamed into place; a partial one is removed; both sides end equal", async () => {
  const whole = crypto.randomBytes(120_000);
  const other = crypto.randomBytes(90_000);
  const etagWhole = await s3.putRaw('media/whole.bin', whole);
  const etagOther = await s3.putRaw('media/part.bin', other);
  const runId = newRunId(new Date(Date.now() - 60_000));
  const temps: string[] = [];
  for (const [rel, etag, data, len] of [['media/whole.bin', etagWhole, whole, whole.length], ['media/part.bin', etagOther, other, 1000]] as const) {
    const temp = tempNameFor(path.join(p.root, rel), runId);
    fs.mkdirSync(path.dirname(temp), { recursive: true });
    fs.writeFileSync(temp, data.subarray(0, len));
    temps.push(temp);
    await journal(rel, {
      runId, action: 'download', key: rel, temp: path.relative(p.root, temp),
      remote: { etag, size: data.length, lastModified: Date.now() - 120_000, md5: etag },
    });
  }
  const r = await sync();
  assert.ok(warnings(r).some((w) => /download finished from the interrupted run/.test(w)));
  assert.equal(r.summary?.['downloaded'], 1, 'only the partial one is fetched again');
  for (const t of temps) assert.ok(!fs.existsSync(t), `${t} is gone`);
  assert.equal(md5(fs.readFileSync(path.join(p.root, 'media/whole.bin'))), md5(whole));
  assert.equal(md5(fs.readFileSync(path.join(p.root, 'media/part.bin'))), md5(other));
  const again = await sync();
  assert.equal(again.summary?.['unchanged'], 2);
});

test('a complete temp file is not renamed over a destination that changed since it was planned', async () => {
  const remote = crypto.randomBytes(40_000);
  const etag = await s3.putRaw('media/e.bin', remote);
  p.write('media/e.bin', 'the user wrote this after the kill');
  const runId = newRunId(new Date(Date.now() - 60_000));
  const temp = tempNameFor(path.join(p.root, 'media/e.bin'), runId);
  fs.writeFileSync(temp, remote);
  await journal('media/e.bin', {
    runId, action: 'download', key: 'media/e.bin', temp: path.relative(p.root, temp),
    remote: { etag, size: remote.length, lastModified: Date.now(), md5: etag },
  });
  const r = await sync();
  assert.ok(!fs.existsSync(temp));
  assert.ok(!warnings(r).some((w) => /download finished/.test(w)));
  // First run with both sides differing: a conflict, remote wins, the user's version in the trash.
  assert.equal(r.summary?.['conflicts'], 1);
  const trashed = fs.readdirSync(path.join(p.root, 'manifests/default/trash'), { recursive: true }).map(String);
  assert.ok(trashed.some((f) => f.endsWith(path.join('media', 'e.bin'))));
});

test("a dead run's temp files go at once, whatever their age; another run's young ones stay", async () => {
  p.write('media/keep.txt', 'x');
  await sync();
  const dead = await journal('media/keep.txt', { action: 'delete-local', key: 'media/keep.txt', local: await localOf('media/keep.txt') });
  const deadTemp = path.join(p.root, 'media', `.gone.bin.ssync-${dead}.tmp`);
  const liveTemp = path.join(p.root, 'media', `.other.bin.ssync-${newRunId(new Date())}.tmp`);
  fs.writeFileSync(deadTemp, 'half');
  fs.writeFileSync(liveTemp, 'being written by another profile');
  const r = await sync();
  assert.ok(!fs.existsSync(deadTemp), 'the dead run is known from its journal');
  assert.ok(fs.existsSync(liveTemp), 'a young temp of an unknown run may still be written');
  assert.equal(r.summary?.['unchanged'], 1, 'a delete that did not happen changes nothing');
});

test('a remote delete that happened is recorded: a file restored with the same bytes is then uploaded, not deleted', async () => {
  p.write('media/f.txt', 'same bytes');
  await sync();
  await journal('media/f.txt', { action: 'delete-remote', key: 'media/f.txt', remote: { etag: md5('same bytes'), size: 10, lastModified: 0 } });
  await s3.deleteRaw('media/f.txt');
  p.remove('media/f.txt');
  p.write('media/f.txt', 'same bytes'); // restored by the user: new inode, same content
  const r = await sync();
  assert.equal(r.summary?.['uploaded'], 1);
  assert.equal(r.summary?.['deletedLocal'], 0);
  assert.ok(p.exists('media/f.txt'));
});

test('an unfinished multipart upload named in the record is aborted', async () => {
  p.write('media/g.bin', crypto.randomBytes(1000));
  const created = await s3.client.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: 'media/g.bin' }));
  const uploadId = created.UploadId!;
  await s3.client.send(new UploadPartCommand({ Bucket: s3.bucket, Key: 'media/g.bin', UploadId: uploadId, PartNumber: 1, Body: Buffer.alloc(5 * MiB) }));
  await journal('media/g.bin', { action: 'upload', key: 'media/g.bin', local: await localOf('media/g.bin'), uploadId });
  await sync();
  await assert.rejects(
    s3.client.send(new UploadPartCommand({ Bucket: s3.bucket, Key: 'media/g.bin', UploadId: uploadId, PartNumber: 2, Body: Buffer.alloc(10) })),
    /NoSuchUpload|does not exist|not found/i,
  );
});

test('a read-only run reports unfinished records and leaves them; a changing run settles them', async () => {
  p.write('media/h.txt', 'h');
  await journal('media/h.txt', { action: 'upload', key: 'media/h.txt', local: await localOf('media/h.txt') });
  const plan = await runCli(['plan', '--json'], { cwd: p.root, env: s3.env });
  assert.equal(plan.code, 0, plan.stderr);
  assert.ok(warnings(plan).some((w) => /interrupted run left 1 item/.test(w)));
  assert.equal(await journalCount(), 1);
  await sync();
  assert.equal(await journalCount(), 0);
});

test('a plan saved before the records were settled is stale once settling changed the base', async () => {
  const body = crypto.randomBytes(5000);
  p.write('media/i.bin', body);
  await journal('media/i.bin', { action: 'upload', key: 'media/i.bin', local: await localOf('media/i.bin') });
  await s3.putRaw('media/i.bin', Buffer.alloc(0));
  const plan = await runCli(['plan', '--json'], { cwd: p.root, env: s3.env });
  assert.equal(plan.code, 0, plan.stderr);
  const apply = await runCli(['apply', '--json'], { cwd: p.root, env: s3.env });
  assert.equal(apply.code, 3, 'the plan would download the torn object: refused as stale');
  assert.equal(md5(fs.readFileSync(path.join(p.root, 'media/i.bin'))), md5(body));
  await sync();
  assert.equal(md5(await s3.getBuffer('media/i.bin')), md5(body));
});

test('journal commits: none on an unchanged run, one per window of transfers, the journal empty after', async () => {
  const commits: number[] = [];
  const begin = Journal.prototype.begin;
  Journal.prototype.begin = function (records) {
    commits.push(records.length);
    return begin.call(this, records);
  };
  try {
    for (let i = 0; i < 100; i++) p.write(`media/n${String(i).padStart(3, '0')}.txt`, `n${i}`);
    await s3.putRaw('media/remote-only.txt', 'r');
    await sync('--concurrency', '8');
    // 101 transfers in windows of 32, 64, then the rest: 3 commits, not 101.
    assert.deepEqual(commits, [32, 64, 5]);
    assert.equal(await journalCount(), 0);
    commits.length = 0;
    const r = await sync();
    assert.equal(r.summary?.['unchanged'], 101);
    assert.deepEqual(commits, [], 'an unchanged run writes no journal record');
  } finally {
    Journal.prototype.begin = begin;
  }
});

test('a window keeps only the records of items that failed or were interrupted; unstarted ones go', async () => {
  const m = Manifest.open(manifestFile(), { readOnly: false });
  try {
    const item = (i: number): PlanItem => ({
      path: `media/w${i}`, key: `media/w${i}`, mapping: 0, action: 'upload', reason: 'local-new', bytes: 1,
      local: { size: 1, mtimeNs: '1', ino: i, md5: 'a'.repeat(32), xxh64: 'b'.repeat(16) },
    });
    const items = Array.from({ length: 10 }, (_, i) => item(i));
    const ahead = new WriteAhead(m.journal, items, { root: p.root, runId: newRunId(new Date()), uploadsAllowed: true }, 4, 4);
    for (const i of [0, 1, 2, 3, 4]) await ahead.ready(items[i]!);
    assert.deepEqual(m.journal!.unfinished().map(([k]) => k).sort(), items.slice(0, 8).map((i) => i.path), 'two windows written ahead');
    await m.journal!.noteUpload('media/w1', { runId: 'r', key: 'media/w1', uploadId: 'up-1', at: Date.now() });
    await m.journal!.noteUpload('media/w2', { runId: 'r', key: 'media/w2', uploadId: 'up-2', at: Date.now() });
    ahead.finish(items[0]!, false);
    ahead.finish(items[1]!, true); // failed half way: its multipart upload is still to be aborted
    ahead.finish(items[2]!, false);
    ahead.finish(items[3]!, false);
    ahead.finish(items[4]!, false);
    ahead.endUnstarted();
    await m.flush();
    assert.deepEqual(m.journal!.unfinished().map(([k, r]) => [k, r.uploadId]), [['media/w1', 'up-1']]);
  } finally {
    await m.close();
  }
});
