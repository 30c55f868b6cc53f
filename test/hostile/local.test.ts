// Hostile or awkward things on the local side: symlinks pointing out of the root, and file names
// that URL encoding, XML and Unicode normalisation like to mangle.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { TestS3 } from '../support/s3-server.js';
import { filesUnder, md5, runCli, type CliResult } from '../support/harness.js';
import { treeDiff, useSandboxes, type Sandbox } from './sandbox.js';

let s3: TestS3;
let box: Sandbox;
const anotherSandbox = useSandboxes((x) => (s3 = x), (b) => (box = b));

const cli = (root: string, ...args: string[]): Promise<CliResult> => runCli(['sync', '--json', ...args], { cwd: root, env: s3.env });
const keys = async (): Promise<string[]> => (await s3.listAll()).map((o) => o.key).sort();

describe('symlinks pointing outside the root', () => {
  test('are never uploaded, followed, replaced or written through, in any mode', async () => {
    box.write('outside/secret.txt', 'secret outside the root');
    box.write('outside/dir/inner.txt', 'inner');
    box.write('project/media/real.txt', 'real');
    const media = path.join(box.root, 'media');
    fs.symlinkSync(path.join(box.dir, 'outside/secret.txt'), path.join(media, 'link-file'));
    fs.symlinkSync(path.join(box.dir, 'outside/dir'), path.join(media, 'link-dir'));
    fs.symlinkSync('../../outside/secret.txt', path.join(media, 'relative-link'));
    fs.symlinkSync('real.txt', path.join(media, 'inside-link'));
    fs.mkdirSync(path.join(box.root, 'staticfiles'));
    fs.symlinkSync('/etc', path.join(box.root, 'staticfiles/etc'));

    const r = await cli(box.root);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await keys(), ['media/real.txt'], 'only the real file went up');
    const warned = r.events.filter((e) => e['event'] === 'warning').map((e) => e['path']).sort();
    assert.deepEqual(warned, ['media/inside-link', 'media/link-dir', 'media/link-file', 'media/relative-link', 'staticfiles/etc']);

    // The bucket now offers objects at the links' names and below the linked folder.
    await s3.putRaw('media/link-file', 'would overwrite the secret through the link');
    await s3.putRaw('media/relative-link', 'same, through a relative link');
    await s3.putRaw('media/link-dir/inner.txt', 'would overwrite a file outside');
    await s3.putRaw('media/link-dir/new.txt', 'would create a file outside');
    await s3.putRaw('static/etc/passwd', 'root::0:0::/root:/bin/sh');
    const before = box.tree();
    for (const args of [[], ['--mode', 'download', '--delete', '--force'], ['--mode', 'upload', '--delete', '--force']]) {
      const again = await cli(box.root, ...args);
      assert.equal(again.code, 0, `${args.join(' ')}: ${again.stderr}`);
      assert.equal(again.summary?.downloaded, 0, args.join(' '));
      assert.equal(again.summary?.deletedLocal, 0, args.join(' '));
      assert.deepEqual(treeDiff(before, box.tree()).changed.filter((f) => !f.startsWith('project/manifests')), [], args.join(' '));
      assert.deepEqual(treeDiff(before, box.tree()).gone, [], args.join(' '));
    }
    assert.equal(fs.readlinkSync(path.join(media, 'link-file')), path.join(box.dir, 'outside/secret.txt'));
    assert.equal(fs.readFileSync(path.join(box.dir, 'outside/secret.txt'), 'utf8'), 'secret outside the root');
    assert.deepEqual(fs.readdirSync(path.join(box.dir, 'outside/dir')), ['inner.txt']);
    assert.notEqual(fs.readFileSync('/etc/passwd', 'utf8'), 'root::0:0::/root:/bin/sh');
    // The links' objects are left alone by the upload --delete run too: what lies behind a link is unknown.
    assert.ok((await keys()).includes('media/link-dir/new.txt'));
  });
});

/** Names that URL encoding, XML escaping or form decoding like to get wrong. */
const NAMES = [
  'a b.txt',
  ' leading space.txt',
  'trailing space .txt',
  'double  space.txt',
  '#hash.txt',
  'what?.txt',
  '100%.txt',
  '%20literal-escape.txt',
  '%zz-bad-escape.txt',
  'a+b.txt',
  'plus+and space.txt',
  'a&b.txt',
  'x&amp;y.txt',
  'quote".txt',
  "apostrophe's.txt",
  '<angle>.txt',
  'back`tick.txt',
  'semi;colon,comma.txt',
  'eq=at@dollar$.txt',
  '[brackets]{braces}(parens).txt',
  '~tilde!bang*star.txt',
  'emoji 🎉.txt',
  '日本語/ファイル名.txt',
  'Ünïcødé dir/naïve.txt',
  'tab-free\u00a0nbsp.txt',
  'zero\u200bwidth.txt',
  'rtl-\u202eevil.txt',
  'sub/dir with spaces/#?%+&.txt',
];
const NFC = 'caf\u00e9.txt';
const NFD = 'cafe\u0301.txt';

describe('file names round-trip exactly', () => {
  test('upload, then download into an empty root: the same names, the same bytes, the same keys', async () => {
    box.write('project/media/' + NFD, 'only in NFD form');
    box.write('project/media/pair/' + NFC, 'NFC twin');
    box.write('project/media/pair/' + NFD, 'NFD twin');
    for (const [i, name] of NAMES.entries()) box.write(`project/media/${name}`, `content ${i} of ${name}`);
    const original = filesUnder(path.join(box.root, 'media'));
    assert.equal(Object.keys(original).length, NAMES.length + 3, 'the file system keeps NFC and NFD apart');

    const up = await cli(box.root);
    assert.equal(up.code, 0, up.stderr + up.stdout);
    assert.deepEqual(await keys(), Object.keys(original).map((f) => `media/${f}`).sort(), 'keys are the names, byte for byte');
    for (const [f, sum] of Object.entries(original)) assert.equal(md5(await s3.getBuffer(`media/${f}`)), sum, f);

    // Delete locally (and forget the base), then bring everything back.
    fs.rmSync(path.join(box.root, 'media'), { recursive: true });
    fs.rmSync(path.join(box.root, 'manifests'), { recursive: true });
    const down = await cli(box.root, '--mode', 'download');
    assert.equal(down.code, 0, down.stderr);
    assert.equal(down.summary?.downloaded, NAMES.length + 3);
    assert.deepEqual(filesUnder(path.join(box.root, 'media')), original);
    const pair = fs.readdirSync(path.join(box.root, 'media/pair'), { encoding: 'buffer' }).map((b) => b.toString('hex')).sort();
    assert.deepEqual(pair, [Buffer.from(NFC).toString('hex'), Buffer.from(NFD).toString('hex')].sort());

    // And the other way once more: edits made in a second root come back under the same names.
    const other = anotherSandbox();
    const first = await cli(other.root);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(filesUnder(path.join(other.root, 'media')), original);
    for (const f of Object.keys(original)) fs.writeFileSync(path.join(other.root, 'media', f), `edited ${f}`);
    const push = await cli(other.root);
    assert.equal(push.summary?.uploaded, NAMES.length + 3, push.stdout);
    const pull = await cli(box.root);
    assert.equal(pull.code, 0, pull.stderr);
    assert.equal(pull.summary?.downloaded, NAMES.length + 3);
    for (const f of Object.keys(original)) assert.equal(fs.readFileSync(path.join(box.root, 'media', f), 'utf8'), `edited ${f}`, f);
    const steady = await cli(box.root);
    assert.equal(steady.summary?.unchanged, NAMES.length + 3, 'nothing left to do: no name drifted between the sides');
  });
});
