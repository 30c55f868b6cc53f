// Multipart objects (their `-N` ETags) and buckets larger than one listing page.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Upload } from '@aws-sdk/lib-storage';
import type { TestS3 } from '../support/s3-server.js';
import { useFixture } from '../support/fixture.js';
import { makeProject, md5, runCli, type CliResult, type Project } from '../support/harness.js';
import { mapLimit } from '../../src/engine/limit.js';

const MiB = 1024 * 1024;
let s3: TestS3;
let p: Project;

const cli = (...args: string[]): Promise<CliResult> => runCli([...args, '--json'], { cwd: p.root, env: s3.env });

/** Thresholds low enough that a 12 MiB file goes multipart in 5 MiB parts, as fauxqs allows. */
function smallParts(project: Project): void {
  project.write('storage-sync.config.json', JSON.stringify({ multipartThreshold: 5 * MiB, partSize: 5 * MiB }));
}

useFixture({ server: (x) => (s3 = x), project: (x) => (p = x), setup: (_s3, project) => smallParts(project) });

describe('multipart', () => {
  test('a file above the threshold round-trips and its -N ETag is understood', async () => {
    const big = crypto.randomBytes(12 * MiB + 123);
    p.write('media/video.mp4', big);
    const up = await cli('sync');
    assert.equal(up.code, 0, up.stderr);
    const listed = (await s3.listAll('media/'))[0]!;
    assert.match(listed.etag, /^[0-9a-f]{32}-3$/);
    assert.equal((await cli('sync')).summary?.uploaded, 0, 'the -N ETag matches the base: nothing to do');

    // A second machine with an empty folder downloads it, verified against x-amz-meta-md5.
    const other = makeProject();
    smallParts(other);
    const down = await runCli(['sync', '--json'], { cwd: other.root, env: s3.env });
    assert.equal(down.code, 0, down.stderr);
    assert.equal(md5(fs.readFileSync(path.join(other.root, 'media/video.mp4'))), md5(big));
    assert.equal((await runCli(['sync', '--json'], { cwd: other.root, env: s3.env })).summary?.downloaded, 0);
    other.cleanup();
  });

  test('an identical multipart object made by another tool is recorded by computing its ETag, not re-sent', async () => {
    const big = crypto.randomBytes(11 * MiB);
    // Uploaded without x-amz-meta-md5, in the part size our rule would pick, as another client might.
    await new Upload({ client: s3.client, params: { Bucket: s3.bucket, Key: 'media/clip.mov', Body: big }, partSize: 5 * MiB }).done();
    p.write('media/clip.mov', big);
    const r = await cli('sync');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([r.summary?.recorded, r.summary?.uploaded, r.summary?.downloaded], [1, 0, 0]);
  });

  test('a same-sized different multipart object is a conflict, never "equal by MD5"', async () => {
    await new Upload({ client: s3.client, params: { Bucket: s3.bucket, Key: 'media/clip.mov', Body: crypto.randomBytes(11 * MiB) }, partSize: 5 * MiB }).done();
    p.write('media/clip.mov', crypto.randomBytes(11 * MiB));
    const r = await cli('sync');
    assert.equal(r.summary?.conflicts, 1);
    assert.equal(md5(fs.readFileSync(path.join(p.root, 'media/clip.mov'))), md5(await s3.getBuffer('media/clip.mov')));
  });
});

describe('scale', () => {
  test('a prefix holding more than 1,000 keys is listed and synced completely', async () => {
    const keys = Array.from({ length: 1_234 }, (_, i) => `media/many/${String(i).padStart(5, '0')}.txt`);
    await mapLimit(keys, 32, async (k) => void (await s3.putRaw(k, k)));
    const r = await cli('sync', '--download-only');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.summary?.downloaded, 1_234);
    assert.equal(fs.readdirSync(path.join(p.root, 'media/many')).length, 1_234);
    assert.equal((await cli('sync')).summary?.unchanged, 1_234);
  });
});
