import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Trash } from '../../src/local/trash.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function setup(): { root: string; trashBase: string; put: (rel: string, body: string) => void } {
  const base = mkdtempSync(join(tmpdir(), 'ssync-trash-'));
  dirs.push(base);
  const root = join(base, 'project');
  const put = (rel: string, body: string) => {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), body);
  };
  return { root, trashBase: join(base, 'manifests/default/trash'), put };
}

test('keep moves the file into trash/<runId>/<path>', async () => {
  const { root, trashBase, put } = setup();
  put('media/a.jpg', 'v1');
  const trash = new Trash(join(trashBase, 'run1'));
  const kept = await trash.keep(root, 'media/a.jpg');
  assert.equal(kept, join(trashBase, 'run1/media/a.jpg'));
  assert.equal(readFileSync(kept, 'utf8'), 'v1');
  assert.equal(existsSync(join(root, 'media/a.jpg')), false);
});

test('keep of a missing file returns undefined', async () => {
  const { root, trashBase } = setup();
  assert.equal(await new Trash(join(trashBase, 'run1')).keep(root, 'nope.txt'), undefined);
});

test('the same path trashed twice in one run keeps both, with a numeric suffix', async () => {
  const { root, trashBase, put } = setup();
  const trash = new Trash(join(trashBase, 'run1'));
  put('media/a.jpg', 'v1');
  await trash.keep(root, 'media/a.jpg');
  put('media/a.jpg', 'v2');
  const second = await trash.keep(root, 'media/a.jpg');
  assert.equal(second, join(trashBase, 'run1/media/a.1.jpg'));
  assert.equal(readFileSync(join(trashBase, 'run1/media/a.jpg'), 'utf8'), 'v1');
  assert.equal(readFileSync(second!, 'utf8'), 'v2');
});

test('copy keeps a hard link (or copy) and leaves the original in place', async () => {
  const { root, trashBase, put } = setup();
  put('doc.txt', 'original');
  const kept = await new Trash(join(trashBase, 'run1')).copy(root, 'doc.txt');
  assert.ok(kept);
  assert.equal(readFileSync(join(root, 'doc.txt'), 'utf8'), 'original');
  assert.equal(readFileSync(kept, 'utf8'), 'original');
  // An atomic replace of the original (rename over it) must not touch the trashed copy.
  writeFileSync(join(root, '.doc.txt.tmp'), 'replaced');
  renameSync(join(root, '.doc.txt.tmp'), join(root, 'doc.txt'));
  assert.equal(readFileSync(join(root, 'doc.txt'), 'utf8'), 'replaced');
  assert.equal(readFileSync(kept, 'utf8'), 'original');
  assert.equal(statSync(kept).size, 8);
});

test('list returns every trashed file per run, sizes included', async () => {
  const { root, trashBase, put } = setup();
  assert.deepEqual(await Trash.list(trashBase), []);
  put('a.txt', '12345');
  put('dir/b.txt', '1');
  await new Trash(join(trashBase, 'run1')).keep(root, 'a.txt');
  await new Trash(join(trashBase, 'run2')).keep(root, 'dir/b.txt');
  assert.deepEqual(await Trash.list(trashBase), [
    { runId: 'run1', path: 'a.txt', size: 5 },
    { runId: 'run2', path: 'dir/b.txt', size: 1 },
  ]);
});

// /dev/shm (tmpfs) and the temp folder are different file systems here: rename() fails with
// EXDEV and the trash must copy, verify and only then remove.
test('across file systems keep() copies, syncs and removes; copy() leaves the original', async () => {
  const { trashBase } = setup();
  const root = mkdtempSync(join('/dev/shm', 'ssync-trash-'));
  dirs.push(root);
  assert.notEqual(statSync(root).dev, statSync(trashBase.split('/manifests')[0]!).dev, 'the test needs two file systems');
  const body = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
  mkdirSync(join(root, 'media'), { recursive: true });
  writeFileSync(join(root, 'media/big.bin'), body);
  writeFileSync(join(root, 'media/stay.bin'), body);
  const trash = new Trash(join(trashBase, 'run1'));
  const kept = await trash.keep(root, 'media/big.bin');
  assert.ok(!existsSync(join(root, 'media/big.bin')));
  assert.ok(readFileSync(kept!).equals(body));
  const copied = await trash.copy(root, 'media/stay.bin');
  assert.ok(existsSync(join(root, 'media/stay.bin')));
  assert.ok(readFileSync(copied!).equals(body));
});
