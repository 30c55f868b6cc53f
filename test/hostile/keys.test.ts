// Remote keys are chosen by whoever can write to the bucket. Keys that would escape the mapped
// folder, or cannot be a path at all, are refused with `invalid path`, and nothing is written
// outside the root: the whole sandbox around it is compared before and after.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startS3Server, type TestS3 } from '../support/s3-server.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { runCli, type CliResult } from '../support/harness.js';
import { makeSandbox, treeDiff, type Sandbox } from './sandbox.js';

let s3: TestS3;
let proxy: FaultProxy;
let box: Sandbox;
const boxes: Sandbox[] = [];

before(async () => {
  s3 = await startS3Server();
  proxy = await startFaultProxy(s3.endpoint);
});
after(async () => {
  for (const b of boxes) b.cleanup();
  await proxy.stop();
  await s3.stop();
});
beforeEach(async () => {
  await s3.reset();
  proxy.set([]);
  box = makeSandbox();
  boxes.push(box);
});

const sync = (...args: string[]): Promise<CliResult> => runCli(['sync', '--json', ...args], { cwd: box.root, env: proxy.env(s3.env) });
const failedKeys = (r: CliResult) =>
  r.events.filter((e) => e['event'] === 'file' && e['status'] === 'failed').map((e) => ({ key: String(e['key']), path: e['path'], error: String(e['error']) }));

const tag = crypto.randomBytes(4).toString('hex');
const ABS_DIR = `/tmp/ssync-abs-${tag}`;
const ESCAPE_FILE = `/tmp/ssync-escape-${tag}.txt`;

/** Key → why it must be refused. */
const HOSTILE: [string, RegExp][] = [
  ['media/../escape.txt', /escapes the mapped folder/],
  ['media/../../escape.txt', /escapes the mapped folder/],
  [`media/${'../'.repeat(12)}${ESCAPE_FILE.slice(1)}`, /escapes the mapped folder/],
  ['media/sub/../../../escape.txt', /escapes the mapped folder/],
  ['media/..', /escapes the mapped folder/],
  [`media/${ABS_DIR}/x.txt`, /is absolute/], // media//tmp/…: absolute after the prefix
  ['media/./dot.txt', /"\." segment/],
  ['media/a//b.txt', /empty segment/],
  ['media/..\\..\\escape.txt', /backslash/],
  ['media/C:\\escape.txt', /backslash/],
  ['media/nul\u0000.txt', /control character/],
  ['media/line\nbreak.txt', /control character/],
  [`media/${Array.from({ length: 5 }, (_, i) => String(i).repeat(210)).join('/')}`, /longer than 1024 bytes/],
  [`media/${'é'.repeat(600)}`, /longer than 1024 bytes/],
];

describe('hostile remote keys', () => {
  test('every escaping or impossible key is refused with invalid path; the rest syncs; nothing lands outside the root', async () => {
    box.write('outside/keep.txt', 'outside the root');
    box.write('project/media/local.txt', 'local');
    for (const [key] of HOSTILE) await s3.putRaw(key, `hostile ${key}`);
    await s3.putRaw('media/ok.txt', 'fine');
    await s3.putRaw('media/..ok/...txt', 'dots inside names are fine');
    const before = box.tree();

    const r = await sync();
    assert.equal(r.code, 1, r.stderr);
    const failed = failedKeys(r);
    assert.deepEqual(failed.map((f) => f.key).sort(), HOSTILE.map(([k]) => k).sort());
    for (const [key, why] of HOSTILE) {
      const f = failed.find((x) => x.key === key)!;
      assert.equal(f.path, undefined, `${JSON.stringify(key)} has no local path`);
      assert.match(f.error, /^invalid path: /);
      assert.match(f.error, why, key);
      assert.equal(f.error.split('\n').length, 1);
    }
    assert.equal(r.summary?.failed, HOSTILE.length);
    assert.equal(r.summary?.downloaded, 2);

    const diff = treeDiff(before, box.tree());
    assert.deepEqual(diff.gone, []);
    const outsideManifests = diff.changed.filter((f) => !f.startsWith('project/manifests'));
    assert.deepEqual(outsideManifests, ['project/media/..ok', 'project/media/..ok/...txt', 'project/media/ok.txt']);
    assert.ok(!fs.existsSync(ABS_DIR) && !fs.existsSync(ESCAPE_FILE) && !fs.existsSync('/escape.txt'));

    // Refused keys are never deleted either, not even by a one-way push with --delete.
    const push = await sync('--mode', 'upload', '--delete');
    assert.equal(push.code, 1);
    const keys = (await s3.listAll()).map((o) => o.key);
    for (const [key] of HOSTILE) assert.ok(keys.includes(key), `${JSON.stringify(key)} still in the bucket`);
    assert.ok(keys.includes('media/local.txt'));
    const pull = await sync('--mode', 'download', '--delete');
    assert.equal(pull.code, 1);
    assert.deepEqual(treeDiff(before, box.tree()).changed.filter((f) => !f.startsWith('project/')), []);
    // fauxqs cannot delete a key with a newline through DeleteObjects (the bucket reset's way).
    for (const [key] of HOSTILE) await s3.deleteRaw(key);
  });

  test('keys that are not valid UTF-8 never become file names', async () => {
    box.write('project/media/local.txt', 'local');
    await s3.putRaw('media/ok.txt', 'fine');
    const raw = (hex: string) => Buffer.concat([Buffer.from('media/'), Buffer.from(hex, 'hex'), Buffer.from('.txt')]);
    proxy.set([
      {
        ops: ['ListObjectsV2'],
        key: 'media/',
        faults: ['inject-keys'],
        inject: [
          raw('636166e9'), // "café" in Latin-1: a lone 0xE9
          raw('eda080'), // a UTF-16 surrogate encoded as if it were a code point (CESU-8)
          raw('c0ae2e2f'), // an overlong "." (0xC0 0xAE): "../" to a sloppy decoder
          Buffer.from('media/lone-&#xD800;-entity.txt'), // a lone surrogate as an XML character reference
          Buffer.from('media/&#x2e;&#x2e;/entity-escape.txt'), // ".." spelled as character references
        ],
      },
    ]);
    const before = box.tree();
    const r = await sync();
    const failed = failedKeys(r);
    assert.equal(r.code, 1, r.stderr);
    // The SDK decodes the listing as UTF-8, so invalid bytes arrive as U+FFFD: a key the server
    // does not hold under that name. The GET of that name fails; nothing is written.
    for (const f of failed) assert.match(f.error, /invalid path|NoSuchKey|404|not found/i, f.key);
    assert.equal(failed.length, 5, JSON.stringify(failed));
    assert.match(failed.find((f) => f.key.includes('entity-escape'))!.error, /^invalid path: .* escapes the mapped folder/);
    assert.match(failed.find((f) => f.key.includes('-entity.txt'))!.error, /^invalid path: .* (is not valid UTF-8|control)|NoSuchKey/);
    const diff = treeDiff(before, box.tree());
    const landed = diff.changed.filter((f) => f.startsWith('project/media/'));
    assert.deepEqual(landed, ['project/media/ok.txt'], 'only the real object landed');
    assert.deepEqual(diff.changed.filter((f) => !f.startsWith('project/')), []);
    assert.deepEqual(diff.gone, []);
    // No name under the root carries a replacement character or a raw invalid byte.
    for (const name of fs.readdirSync(path.join(box.root, 'media'), { encoding: 'buffer' })) {
      assert.equal(Buffer.from(name.toString('utf8'), 'utf8').equals(name), true);
      assert.ok(!name.toString('utf8').includes('\uFFFD'));
    }
  });
});

describe('keys named like our own temp files', () => {
  test('are left out on both sides: never downloaded, never deleted as leftovers', async () => {
    const tempLike = ['media/.photo.jpg.ssync-20250101-000000-abcdef.tmp', 'media/sub/.x.ssync-run.tmp'];
    for (const k of tempLike) await s3.putRaw(k, 'an object someone named this way');
    await s3.putRaw('media/ok.txt', 'fine');
    const before = box.tree();
    for (let run = 0; run < 3; run++) {
      const r = await sync();
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!r.events.some((e) => tempLike.includes(String(e['key']))), 'no item for a temp-like key');
    }
    const keys = (await s3.listAll()).map((o) => o.key);
    for (const k of tempLike) assert.ok(keys.includes(k), `${k} still in the bucket`);
    const diff = treeDiff(before, box.tree());
    assert.deepEqual(diff.changed.filter((f) => f.startsWith('project/media/')), ['project/media/ok.txt']);
  });
});
