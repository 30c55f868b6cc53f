import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SafetyError, UsageError } from '../../src/core/errors.js';
import { checkGuards, parseMaxDelete } from '../../src/core/guards.js';
import type { Action, GuardOptions, Mapping, Plan, PlanItem } from '../../src/core/types.js';

const MAPPINGS: Mapping[] = [
  { local: 'staticfiles', remote: 'static/' },
  { local: 'media', remote: 'media/' },
];

const item = (mapping: number, action: Action, n: number): PlanItem => ({
  path: `p${n}`,
  key: `k${n}`,
  mapping,
  action,
  reason: 'in-sync',
  bytes: 0,
});

/** `deletes` delete items in mapping 1, plus unrelated items in mapping 0. */
function plan(deletes: number, action: Action = 'delete-remote'): Plan {
  const items = [item(0, 'upload', -1), item(0, 'nothing', -2)];
  for (let n = 0; n < deletes; n++) items.push(item(1, action, n));
  return { items, mode: 'two-way', conflict: 'remote' };
}

const FULL = { localCount: [5, 10], remoteCount: [5, 10] };
const guard = (maxDelete: string, force = false): GuardOptions => ({ maxDelete, force });
const check = (p: Plan, tracked: number[], g: GuardOptions, sides = FULL) => () =>
  checkGuards(p, MAPPINGS, tracked, sides, g);
const refused = (message: RegExp) => (err: unknown) =>
  err instanceof SafetyError && err.exitCode === 3 && message.test(err.message);

describe('parseMaxDelete', () => {
  test('percentages and counts', () => {
    assert.deepEqual(parseMaxDelete('50%'), { kind: 'percent', value: 50 });
    assert.deepEqual(parseMaxDelete('12.5%'), { kind: 'percent', value: 12.5 });
    assert.deepEqual(parseMaxDelete('0'), { kind: 'count', value: 0 });
    assert.deepEqual(parseMaxDelete('100'), { kind: 'count', value: 100 });
  });

  test('anything else is a usage error naming the value', () => {
    for (const bad of ['', 'abc', '-1', '1.5', '50 %', '%', '150%', '5%%', ' 5']) {
      assert.throws(
        () => parseMaxDelete(bad),
        (err: unknown) =>
          err instanceof UsageError &&
          err.message.includes(JSON.stringify(bad)) &&
          !err.message.includes('\n'),
      );
    }
  });
});

describe('delete guard', () => {
  test('percent: exactly the limit passes, one more is refused', () => {
    assert.doesNotThrow(check(plan(5), [3, 10], guard('50%')));
    assert.throws(
      check(plan(6), [3, 10], guard('50%')),
      refused(/^refusing to delete 6 of 10 tracked files in mapping 'media'.*\(max-delete 50%\)/),
    );
  });

  test('percent of a small base is not rounded down', () => {
    assert.throws(check(plan(2), [3, 3], guard('50%')), refused(/delete 2 of 3/));
  });

  test('count: strictly more than the count', () => {
    assert.doesNotThrow(check(plan(3, 'delete-local'), [3, 10], guard('3')));
    const tooMany = check(plan(4, 'delete-local'), [3, 10], guard('3'));
    assert.throws(tooMany, refused(/\(max-delete 3\); rerun with --force$/));
  });

  test('force skips the guard', () => {
    assert.doesNotThrow(check(plan(10), [3, 10], guard('0', true)));
  });

  test('no base means no guard', () => {
    assert.doesNotThrow(check(plan(10), [3, 0], guard('0')));
  });

  test('deletes are counted per mapping', () => {
    assert.doesNotThrow(check(plan(1), [0, 10], guard('10%')));
  });
});

describe('empty-side guard', () => {
  test('an empty local folder with a base is refused', () => {
    const sides = { localCount: [5, 0], remoteCount: [5, 10] };
    assert.throws(
      check(plan(1), [3, 10], guard('100%'), sides),
      refused(/the local folder 'media' is empty but the base tracks 10 files/),
    );
  });

  test('an empty remote listing with a base is refused', () => {
    const sides = { localCount: [5, 10], remoteCount: [5, 0] };
    assert.throws(
      check(plan(1, 'delete-local'), [3, 10], guard('100%'), sides),
      refused(/the remote listing of 'media\/' is empty but the base tracks 10 files/),
    );
  });

  test('an empty side is fine when nothing is deleted, without a base, or with force', () => {
    const sides = { localCount: [5, 0], remoteCount: [5, 10] };
    assert.doesNotThrow(check(plan(0), [3, 10], guard('50%'), sides));
    assert.doesNotThrow(check(plan(3), [3, 0], guard('50%'), sides));
    assert.doesNotThrow(check(plan(10), [3, 10], guard('50%', true), sides));
  });
});
