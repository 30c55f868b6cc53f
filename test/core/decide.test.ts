import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decide } from '../../src/core/decide.js';
import { buildPlan } from '../../src/core/plan.js';
import type * as T from '../../src/core/types.js';

// Fixtures: content A is what the base recorded; B and C are two other contents.
const NOW = new Date('2026-11-27T13:50:00.123Z');
const T0 = 1_700_000_000_000_000_000n;
// 10 s after T0 plus a sub-millisecond part, which the `newer` policy must truncate away.
const LATER = String(T0 + 10_000_999_999n);
const content = (ch: string, size: number) => ({ md5: ch.repeat(32), xxh64: ch.repeat(16), size });
const [A, B, C] = [content('a', 100), content('b', 200), content('c', 300)];
type Content = typeof A;

const BASE: T.BaseEntry = {
  local: { size: A.size, mtimeNs: String(T0), ino: 1, md5: A.md5, xxh64: A.xxh64 },
  remote: { etag: A.md5, size: A.size, lastModified: 1_700_000_000_000, md5: A.md5 },
  recordedAtNs: String(T0 + 5_000_000_000n),
};
/** Stat-equal to the base and not racy: carries no hashes, so decide must not need them. */
const lSame = (): T.LocalFile => ({ size: A.size, mtimeNs: String(T0), ino: 1 });
const lNew = (c: Content, mtimeNs = LATER, extra: Partial<T.LocalFile> = {}): T.LocalFile =>
  ({ size: c.size, mtimeNs, ino: 1, md5: c.md5, xxh64: c.xxh64, ...extra });
/** Remote LastModified defaults to 10 s after the local LATER mtime. */
const rNew = (c: Content, extra: Partial<T.RemoteObject> = {}): T.RemoteObject =>
  ({ etag: `"${c.md5}"`, size: c.size, lastModified: 1_700_000_020_000, ...extra });
const st = (parts: Partial<T.PathState> = {}): T.PathState =>
  ({ path: 'staticfiles/img/a.jpg', key: 'static/img/a.jpg', mapping: 0, ...parts });
const bp = (local?: T.LocalFile, remote?: T.RemoteObject) => st({ base: BASE, local, remote });
const opts = (over: Partial<T.PlanOptions> = {}): T.PlanOptions =>
  ({ mode: 'two-way', conflict: 'remote', delete: false, now: NOW, ...over });

const ROWS = {
  'B absent, L absent, R present': () => st({ remote: rNew(C) }),
  'B absent, L present, R absent': () => st({ local: lNew(B) }),
  'B absent, L present, R present, same content': () => st({ local: lNew(B), remote: rNew(B) }),
  'B absent, L present, R present, different': () => st({ local: lNew(B), remote: rNew(C) }),
  'B present, L unchanged, R unchanged': () => bp(lSame(), rNew(A)),
  'B present, L changed, R unchanged': () => bp(lNew(B), rNew(A)),
  'B present, L unchanged, R changed': () => bp(lSame(), rNew(C)),
  'B present, L changed, R changed, same content': () => bp(lNew(B), rNew(B)),
  'B present, L changed, R changed, different': () => bp(lNew(B), rNew(C)),
  'B present, L deleted, R unchanged': () => bp(undefined, rNew(A)),
  'B present, L unchanged, R deleted': () => bp(lSame()),
  'B present, L deleted, R changed': () => bp(undefined, rNew(C)),
  'B present, L changed, R deleted': () => bp(lNew(B)),
  'B present, L deleted, R deleted': () => bp(),
};
type RowName = keyof typeof ROWS;
type Expect = [action: T.Action, reason: T.Reason, bytes: number];
/** An outcome, or the outcomes without and with --delete when that flag matters. */
type Expected = Record<RowName, Expect | { off: Expect; on: Expect }>;
const onlyWithDelete = (action: T.Action, reason: T.Reason) =>
  ({ off: ['skip', reason, 0], on: [action, reason, 0] }) satisfies { off: Expect; on: Expect };

const check = (item: T.PlanItem, want: Expect) =>
  assert.deepEqual([item.action, item.reason, item.bytes], want);

const rowTests = (title: string, mode: T.Mode, table: Expected) =>
  describe(title, () => {
    for (const [row, exp] of Object.entries(table) as [RowName, Expected[RowName]][]) {
      test(row, () => {
        for (const del of [false, true]) {
          const want = Array.isArray(exp) ? exp : del ? exp.on : exp.off;
          const item = decide(ROWS[row](), opts({ mode, delete: del }));
          check(item, want);
          assert.equal(item.rule, `${row} → ${want[0]}`);
        }
      });
    }
  });

rowTests('two-way: one test per row of the table', 'two-way', {
  'B absent, L absent, R present': ['download', 'remote-new', 300],
  'B absent, L present, R absent': ['upload', 'local-new', 200],
  'B absent, L present, R present, same content': ['record', 'same-content', 0],
  'B absent, L present, R present, different': ['conflict-download', 'conflict-remote-wins', 300],
  'B present, L unchanged, R unchanged': ['nothing', 'in-sync', 0],
  'B present, L changed, R unchanged': ['upload', 'local-changed', 200],
  'B present, L unchanged, R changed': ['download', 'remote-changed', 300],
  'B present, L changed, R changed, same content': ['record', 'same-content', 0],
  'B present, L changed, R changed, different': ['conflict-download', 'conflict-remote-wins', 300],
  'B present, L deleted, R unchanged': ['delete-remote', 'local-deleted', 0],
  'B present, L unchanged, R deleted': ['delete-local', 'remote-deleted', 0],
  'B present, L deleted, R changed': ['download', 'change-beats-delete', 300],
  'B present, L changed, R deleted': ['upload', 'change-beats-delete', 200],
  'B present, L deleted, R deleted': ['forget', 'both-deleted', 0],
});

rowTests('upload-only: every row, with and without --delete', 'upload', {
  'B absent, L absent, R present': onlyWithDelete('delete-remote', 'remote-only'),
  'B absent, L present, R absent': ['upload', 'local-new', 200],
  'B absent, L present, R present, same content': ['record', 'same-content', 0],
  'B absent, L present, R present, different': ['upload', 'first-run-differs', 200],
  'B present, L unchanged, R unchanged': ['nothing', 'in-sync', 0],
  'B present, L changed, R unchanged': ['upload', 'local-changed', 200],
  'B present, L unchanged, R changed': ['skip', 'remote-changed', 0],
  'B present, L changed, R changed, same content': ['record', 'same-content', 0],
  'B present, L changed, R changed, different': ['skip', 'conflict-skipped', 0],
  'B present, L deleted, R unchanged': onlyWithDelete('delete-remote', 'local-deleted'),
  'B present, L unchanged, R deleted': ['upload', 'remote-missing', 100],
  'B present, L deleted, R changed': ['skip', 'remote-changed', 0],
  'B present, L changed, R deleted': ['upload', 'local-changed', 200],
  'B present, L deleted, R deleted': ['forget', 'both-deleted', 0],
});

rowTests('download-only: every row, with and without --delete', 'download', {
  'B absent, L absent, R present': ['download', 'remote-new', 300],
  'B absent, L present, R absent': onlyWithDelete('delete-local', 'local-only'),
  'B absent, L present, R present, same content': ['record', 'same-content', 0],
  'B absent, L present, R present, different': ['download', 'first-run-differs', 300],
  'B present, L unchanged, R unchanged': ['nothing', 'in-sync', 0],
  'B present, L changed, R unchanged': ['skip', 'local-changed', 0],
  'B present, L unchanged, R changed': ['download', 'remote-changed', 300],
  'B present, L changed, R changed, same content': ['record', 'same-content', 0],
  'B present, L changed, R changed, different': ['conflict-download', 'conflict-remote-wins', 300],
  'B present, L deleted, R unchanged': ['download', 'local-missing', 100],
  'B present, L unchanged, R deleted': onlyWithDelete('delete-local', 'remote-deleted'),
  'B present, L deleted, R changed': ['download', 'remote-changed', 300],
  'B present, L changed, R deleted': ['skip', 'local-changed', 0],
  'B present, L deleted, R deleted': ['forget', 'both-deleted', 0],
});

// The local mtime is LATER (T0 + 10 000 ms); the remote's LastModified is set around it.
const CLOCK = { 'remote newer': 20_000, 'local newer': 0, 'same ms': 10_000 };
type Clock = keyof typeof CLOCK;
const KEPT = {
  path: 'staticfiles/img/a.conflict-20261127-135000.jpg',
  key: 'static/img/a.conflict-20261127-135000.jpg',
};

const POLICIES: [T.Mode, T.ConflictPolicy, Clock, Expect, boolean?][] = [
  ['two-way', 'remote', 'local newer', ['conflict-download', 'conflict-remote-wins', 300]],
  ['two-way', 'local', 'remote newer', ['conflict-upload', 'conflict-local-wins', 200]],
  ['two-way', 'newer', 'local newer', ['conflict-upload', 'conflict-newer-local', 200]],
  ['two-way', 'newer', 'remote newer', ['conflict-download', 'conflict-newer-remote', 300]],
  ['two-way', 'newer', 'same ms', ['conflict-download', 'conflict-newer-remote', 300]],
  ['two-way', 'keep-both', 'local newer', ['conflict-download', 'conflict-keep-both', 500], true],
  ['upload', 'remote', 'local newer', ['skip', 'conflict-skipped', 0]],
  ['upload', 'local', 'remote newer', ['conflict-upload', 'conflict-local-wins', 200]],
  ['upload', 'keep-both', 'remote newer', ['conflict-upload', 'conflict-local-wins', 200]],
  ['upload', 'newer', 'local newer', ['conflict-upload', 'conflict-newer-local', 200]],
  ['upload', 'newer', 'remote newer', ['skip', 'conflict-skipped', 0]],
  ['download', 'remote', 'remote newer', ['conflict-download', 'conflict-remote-wins', 300]],
  ['download', 'local', 'local newer', ['skip', 'conflict-skipped', 0]],
  ['download', 'keep-both', 'local newer', ['conflict-download', 'conflict-keep-both', 300], true],
  ['download', 'newer', 'same ms', ['conflict-download', 'conflict-newer-remote', 300]],
  ['download', 'newer', 'local newer', ['skip', 'conflict-skipped', 0]],
];

describe('conflict policies, with and without a base', () => {
  for (const [mode, conflict, clock, want, keeps] of POLICIES) {
    test(`${mode} --conflict ${conflict} (${clock})`, () => {
      // One-way modes with no base are not conflicts: the source side wins (first-run-differs).
      for (const base of mode === 'two-way' ? [BASE, undefined] : [BASE]) {
        const remote = rNew(C, { lastModified: 1_700_000_000_000 + CLOCK[clock] });
        const state = st({ base, local: lNew(B), remote });
        const item = decide(state, opts({ mode, conflict }));
        check(item, want);
        assert.deepEqual(item.keepBoth, keeps ? KEPT : undefined);
      }
    });
  }
});

describe('keep-both names', () => {
  const keepBoth = opts({ conflict: 'keep-both' });
  const kept = (path: string) =>
    decide(st({ path, key: `k/${path}`, local: lNew(B), remote: rNew(C) }), keepBoth).keepBoth;
  const cases: [string, string][] = [
    ['a/b.tar.gz', 'a/b.tar.conflict-20261127-135000.gz'],
    ['README', 'README.conflict-20261127-135000'],
    ['cfg/.env', 'cfg/.env.conflict-20261127-135000'],
    ['v1.2/notes', 'v1.2/notes.conflict-20261127-135000'],
  ];
  for (const [path, renamed] of cases) {
    test(`${path} → ${renamed}`, () => {
      assert.deepEqual(kept(path), { path: renamed, key: `k/${renamed}` });
    });
  }
});

describe('touch rule', () => {
  test('content unchanged but stat moved → refresh', () => {
    check(decide(bp(lNew(A), rNew(A)), opts()), ['refresh', 'touched', 0]);
  });

  test('racily clean (written in the tick the base was recorded), same hash → refresh', () => {
    const state = st({ base: { ...BASE, recordedAtNs: String(T0) }, local: lNew(A, String(T0)) });
    check(decide({ ...state, remote: rNew(A) }, opts()), ['refresh', 'touched', 0]);
  });

  test('a touched file counts as unchanged against a remote change', () => {
    check(decide(bp(lNew(A), rNew(C)), opts()), ['download', 'remote-changed', 300]);
  });
});

describe('multipart ETags', () => {
  const ETAG = `${'f'.repeat(32)}-2`;
  const multi = (extra: Partial<T.RemoteObject> = {}) => rNew(B, { etag: ETAG, ...extra });
  const run = (local: T.LocalFile, remote: T.RemoteObject, base?: T.BaseEntry) =>
    decide(st({ base, local, remote }), opts()).action;

  test('same content via x-amz-meta-md5, first run and after both changed', () => {
    assert.equal(run(lNew(B), multi({ md5: B.md5 })), 'record');
    assert.equal(run(lNew(B), multi({ md5: B.md5 }), BASE), 'record');
  });

  test('same content via the locally computed multipart ETag', () => {
    assert.equal(run(lNew(B, LATER, { multipartEtag: ETAG }), multi()), 'record');
  });

  test('unknown MD5 is a conflict, not a silent record', () => {
    assert.equal(run(lNew(B), multi()), 'conflict-download');
  });

  test('a plain MD5 equal to the hex part of a -N ETag is not the same content', () => {
    assert.equal(run(lNew(B), multi({ etag: `${B.md5}-2` })), 'conflict-download');
  });
});

describe('plan', () => {
  test('first run: only-local, only-remote, same, different; sorted in UTF-8 byte order', () => {
    const states = [
      st({ path: 'm/\u{1F389}', local: lNew(B) }),
      st({ path: 'm/\uFF5E', remote: rNew(C) }),
      st({ path: 'm/b', local: lNew(B), remote: rNew(B) }),
      st({ path: 'm/a', local: lNew(B), remote: rNew(C) }),
    ];
    const plan = buildPlan(states, opts());
    assert.deepEqual(plan.items.map((i) => [i.path, i.action]), [
      ['m/a', 'conflict-download'],
      ['m/b', 'record'],
      ['m/\uFF5E', 'download'],
      ['m/\u{1F389}', 'upload'],
    ]);
    assert.deepEqual([plan.mode, plan.conflict], ['two-way', 'remote']);
  });



  test('a state with no local file, remote object or base is a programming error', () => {
    assert.throws(() => decide(st(), opts()), /no local file, remote object or base/);
  });
});
