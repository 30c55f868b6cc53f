// Fixed sequences through the same model and invariants as the random cases: the situations the
// random search reaches only rarely (the delete guard, keep-both twice in one second, the
// download-only keep-both copy under --delete, two machines), and regressions the search found.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ConflictPolicy, Mode } from '../../src/core/types.js';
import { useServerAndProjects } from '../support/fixture.js';
import { runOps, useServer, type Op } from './world.js';

useServerAndProjects(useServer);

interface SyncMore { conflict?: ConflictPolicy; del?: boolean; force?: boolean; who?: number; dry?: boolean }
const sync = (mode: Mode = 'two-way', more: SyncMore = {}): Op => ({
  op: 'sync',
  who: more.who ?? 0,
  mode,
  conflict: more.conflict ?? 'remote',
  del: more.del ?? false,
  force: more.force ?? false,
  maxDelete: '50%',
  dry: more.dry ?? false,
  exclude: undefined,
});
const write = (p: string, c: string, who = 0, when: 'past' | 'future' | 'now' = 'past'): Op => ({ op: 'lwrite', who, p, c, when });
const remove = (p: string, who = 0): Op => ({ op: 'ldelete', who, p });
const put = (p: string, c: string): Op => ({ op: 'rput', p, c });
const exits = (log: string[]) => log.map((l) => Number(/exit (\d+)$/.exec(l)?.[1]));

describe('model examples', () => {
  test('the delete guard: emptying a mapping is refused (exit 3, nothing changes), --force goes ahead', async () => {
    const c = await runOps([write('media/a.txt', 'x'), write('media/b.txt', 'y'), sync(), remove('media/a.txt'), remove('media/b.txt'), sync(), sync('two-way', { force: true })]);
    assert.deepEqual(exits(c.log), [0, 3, 0]);
    assert.deepEqual([...c.R.keys()], []);
  });

  test('keep-both twice on the same path: two copies, both sides equal', async () => {
    const c = await runOps([
      write('media/a.txt', 'x'),
      sync(),
      write('media/a.txt', 'y'),
      put('media/a.txt', 'z'),
      sync('two-way', { conflict: 'keep-both' }),
      write('media/a.txt', 'ww', 0, 'future'),
      put('media/a.txt', 'x'),
      sync('two-way', { conflict: 'keep-both' }),
    ]);
    assert.deepEqual(exits(c.log), [0, 0, 0]);
    const copies = [...c.clients[0]!.L.keys()].filter((p) => /^media\/a\.conflict-\d{8}-\d{6}\.txt$/.test(p));
    assert.equal(copies.length, 2);
    assert.deepEqual(copies.map((p) => c.R.get(p)?.content).sort(), ['ww', 'y']);
  });

  test('download-only keep-both keeps the local version beside; a later download --delete moves it to the trash', async () => {
    const c = await runOps([
      write('media/sub/c.txt', 'x'),
      write('media/b.txt', 'x'),
      sync(),
      write('media/sub/c.txt', 'y'),
      put('media/sub/c.txt', 'z'),
      sync('download', { conflict: 'keep-both' }),
      sync('download', { del: true, force: true }),
    ]);
    assert.deepEqual(exits(c.log), [0, 0, 0]);
    assert.deepEqual([...c.clients[0]!.L.keys()].sort(), ['media/b.txt', 'media/sub/c.txt']);
  });

  test('a delete is not undone by later syncs in any mode', async () => {
    const c = await runOps([
      write('media/a.txt', 'x'),
      write('media/b.txt', 'y'),
      write('staticfiles/s.css', 'z'),
      sync(),
      { op: 'rdelete', p: 'media/a.txt' },
      sync(),
      sync('upload', { del: true }),
      sync('download', { del: true }),
      sync(),
    ]);
    assert.deepEqual(exits(c.log), [0, 0, 0, 0, 0]);
    assert.ok(!c.clients[0]!.L.has('media/a.txt') && !c.R.has('media/a.txt'));
  });

  test('upload-only --delete removes a remote extra; download-only puts back a file deleted locally', async () => {
    const c = await runOps([put('media/d', 'x'), write('media/a.txt', '', 0, 'future'), sync('upload', { del: true }), remove('media/a.txt'), sync('download')]);
    assert.deepEqual(exits(c.log), [0, 0]);
    assert.deepEqual(Object.fromEntries(c.clients[0]!.L), { 'media/a.txt': '' });
    assert.deepEqual(Object.fromEntries([...c.R].map(([p, o]) => [p, o.content])), { 'media/a.txt': '' });
  });

  test('two machines: an edit on one reaches the other, a delete on one is not undone by the other', async () => {
    const c = await runOps(
      [
        write('media/a.txt', 'x'),
        write('media/b.txt', 'y'),
        write('staticfiles/s.css', 'z'),
        sync(),
        sync('two-way', { who: 1 }),
        write('media/a.txt', 'ww', 1, 'now'),
        remove('media/b.txt', 0),
        sync('two-way', { who: 1 }),
        sync('two-way', { who: 0, dry: true }),
        sync(),
        sync('two-way', { who: 1 }),
      ],
      2,
    );
    assert.deepEqual(exits(c.log), [0, 0, 0, 0, 0, 0]);
    for (const client of c.clients) assert.deepEqual(Object.fromEntries(client.L), { 'media/a.txt': 'ww', 'staticfiles/s.css': 'z' });
  });

  test('plan then apply: a drifted item is skipped and reported, the rest runs; a plan older than the last run is refused', async () => {
    const planOp: Op = { op: 'plan', who: 0, mode: 'two-way', conflict: 'remote', del: false, force: false, maxDelete: '50%', exclude: undefined };
    const apply: Op = { op: 'apply', who: 0, force: false, maxDelete: '50%' };
    const c = await runOps([
      apply,
      write('media/a.txt', 'x'),
      put('media/b.txt', 'y'),
      planOp,
      { op: 'ltouch', who: 0, p: 'media/a.txt', when: 'now' },
      apply,
      apply,
      planOp,
      sync(),
      apply,
    ]);
    assert.deepEqual(exits(c.log), [2, 0, 0, 3, 0, 0, 3]);
    assert.deepEqual(Object.fromEntries(c.clients[0]!.L), { 'media/a.txt': 'x', 'media/b.txt': 'y' });
    assert.deepEqual(Object.fromEntries([...c.R].map(([p, o]) => [p, o.content])), { 'media/a.txt': 'x', 'media/b.txt': 'y' });
  });
});
