import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isTempName, scanMapping, tempNameFor } from '../../src/local/scan.js';
import { makeFilter } from '../../src/local/filter.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'ssync-scan-'));
  dirs.push(root);
  for (const [rel, body] of Object.entries(files)) {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), body);
  }
  return root;
}

const all = () => true;

test('lists files with size, mtimeNs and inode, keyed by POSIX path inside the mapping', () => {
  const root = tree({ 'm/a.txt': 'hello', 'm/sub/deep/b.bin': '', 'other/c.txt': 'x' });
  const r = scanMapping(root, 'm', all);
  assert.equal(r.exists, true);
  assert.deepEqual([...r.files.keys()].sort(), ['a.txt', 'sub/deep/b.bin']);
  const st = statSync(join(root, 'm/a.txt'), { bigint: true });
  assert.deepEqual(r.files.get('a.txt'), { size: 5, mtimeNs: st.mtimeNs.toString(), ino: Number(st.ino) });
  assert.deepEqual(r.errors, []);
});

test('a missing mapping folder is not an error', () => {
  const root = tree({});
  assert.deepEqual(scanMapping(root, 'nope', all), { files: new Map(), symlinks: [], temps: [], errors: [], exists: false });
});

test('symlinks are reported and never followed', () => {
  const outside = tree({ 'secret.txt': 'outside', 'dir/inner.txt': 'inner' });
  const root = tree({ 'm/real.txt': 'r' });
  symlinkSync(join(outside, 'secret.txt'), join(root, 'm/link-file'));
  symlinkSync(join(outside, 'dir'), join(root, 'm/link-dir'));
  const r = scanMapping(root, 'm', all);
  assert.deepEqual([...r.files.keys()], ['real.txt']);
  assert.deepEqual(r.symlinks.sort(), ['link-dir', 'link-file']);
});

test('include and exclude globs, dot files included', () => {
  const root = tree({
    'm/a.jpg': '1',
    'm/.hidden/b.jpg': '2',
    'm/c.txt': '3',
    'm/cache/d.jpg': '4',
  });
  const r = scanMapping(root, 'm', makeFilter(['**/*.jpg'], ['cache/**']));
  assert.deepEqual([...r.files.keys()].sort(), ['.hidden/b.jpg', 'a.jpg']);
  const everything = scanMapping(root, 'm', makeFilter([], []));
  assert.equal(everything.files.size, 4);
});

test('our temp files are never reported, whatever the filter', () => {
  const root = tree({ 'm/a.jpg': 'new' });
  const temp = tempNameFor(join(root, 'm/a.jpg'), 'run-20261127T1350');
  writeFileSync(temp, 'partial');
  assert.equal(isTempName(temp.slice(temp.lastIndexOf('/') + 1)), true);
  assert.equal(isTempName('a.jpg'), false);
  const r = scanMapping(root, 'm', all);
  assert.deepEqual([...r.files.keys()], ['a.jpg']);
  assert.deepEqual(r.temps, ['.a.jpg.ssync-run-20261127T1350.tmp'], 'listed apart, for the engine to clean up');
  assert.equal(makeFilter([], [])('x/.a.jpg.ssync-r1.tmp'), false);
});

test('a file removed between readdir and stat is simply absent', () => {
  const root = tree({ 'm/a.txt': 'a', 'm/b.txt': 'b' });
  // The filter runs between the listing and the stat: the closest thing to a real race.
  const r = scanMapping(root, 'm', (rel) => {
    if (rel === 'b.txt') rmSync(join(root, 'm/b.txt'));
    return true;
  });
  assert.deepEqual([...r.files.keys()], ['a.txt']);
  assert.deepEqual(r.errors, []);
});

test('a directory that cannot be read is reported and the walk carries on', () => {
  const root = tree({ 'm/a.txt': 'a', 'm/sub/b.txt': 'b', 'm/ok/c.txt': 'c' });
  // Swapped for a plain file after its parent was listed: fails as root too (ENOTDIR).
  const r = scanMapping(root, 'm', (rel) => {
    if (rel === 'a.txt') {
      rmSync(join(root, 'm/sub'), { recursive: true });
      writeFileSync(join(root, 'm/sub'), 'now a file');
    }
    return true;
  });
  assert.deepEqual([...r.files.keys()].sort(), ['a.txt', 'ok/c.txt']);
  assert.equal(r.errors.length, 1);
  assert.equal(r.errors[0]?.rel, 'sub');
  assert.match(r.errors[0]?.error ?? '', /ENOTDIR/);
});

test('a name that is not valid UTF-8 is reported, not silently dropped', () => {
  const root = tree({ 'm/ok.txt': 'ok' });
  const dir = Buffer.from(join(root, 'm') + '/');
  writeFileSync(Buffer.concat([dir, Buffer.from([0x63, 0x61, 0x66, 0xe9]), Buffer.from('.txt')]), 'latin-1 name');
  const r = scanMapping(root, 'm', all);
  assert.deepEqual([...r.files.keys()], ['ok.txt']);
  assert.equal(r.errors.length, 1);
  assert.match(r.errors[0]!.error, /not valid UTF-8/);
});
