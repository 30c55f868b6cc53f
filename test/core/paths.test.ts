import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidPathError } from '../../src/core/errors.js';
import {
  isFolderMarker,
  joinKey,
  joinLocal,
  keyToRelPath,
  normalizePrefix,
} from '../../src/core/paths.js';

const refused = (key: string, why: RegExp) => () =>
  assert.throws(
    () => keyToRelPath(key, 'media/'),
    (err: unknown) => err instanceof InvalidPathError && err.key === key && why.test(err.message),
  );

describe('keyToRelPath refuses hostile keys', () => {
  test('.. segments', refused('media/../x', /^invalid path: "media\/\.\.\/x" escapes the mapped/));
  test('.. as the last segment', refused('media/a/..', /escapes the mapped folder/));
  test('. segments', refused('media/./x', /"\." segment/));
  test('empty segments', refused('media/a//b', /empty segment/));
  test('trailing slash (an empty last segment)', refused('media/a/', /empty segment/));
  test('a leading slash after the prefix', refused('media//etc/passwd', /is absolute/));
  test('backslashes', refused('media/a\\..\\x', /backslash/));
  test('NUL', refused('media/a\u0000b', /control character/));
  test('other control characters', refused('media/a\nb', /control character/));
  test('the prefix alone', refused('media/', /names no file/));
  test('a key outside the prefix', refused('static/x', /not under the prefix/));
  test('a lone surrogate', refused('media/a\uD800b', /not valid UTF-8/));
  test('more than 1024 bytes of UTF-8', refused(`media/${'é'.repeat(513)}`, /longer than 1024/));
});

describe('keyToRelPath accepts ordinary keys', () => {
  test('the rest after the prefix', () => {
    assert.equal(keyToRelPath('media/photos/a.jpg', 'media/'), 'photos/a.jpg');
    assert.equal(keyToRelPath('a.jpg', ''), 'a.jpg');
  });

  test('unicode with spaces, #, ?, %, + and astral characters', () => {
    const rels = ['Ünïcødé dir/naïve café #1?.txt', '100% + more.pdf', 'emoji 🎉/日本語.md'];
    for (const rel of rels) {
      assert.equal(keyToRelPath(`media/${rel}`, 'media/'), rel);
    }
  });

  test('dots inside names and exactly 1024 bytes are fine', () => {
    assert.equal(keyToRelPath('media/..hidden/.env/a..b', 'media/'), '..hidden/.env/a..b');
    const long = 'é'.repeat(512);
    assert.equal(keyToRelPath(`media/${long}`, 'media/'), long);
  });
});

describe('folder markers and joins', () => {
  test('a folder marker ends with / and is empty', () => {
    assert.equal(isFolderMarker('media/photos/', 0), true);
    assert.equal(isFolderMarker('media/photos/', 3), false);
    assert.equal(isFolderMarker('media/photos', 0), false);
  });

  test('joinKey and joinLocal never double a slash', () => {
    assert.equal(joinKey('media/', 'a/b.jpg'), 'media/a/b.jpg');
    assert.equal(joinKey('', 'a.jpg'), 'a.jpg');
    assert.equal(joinLocal('media', 'a/b.jpg'), 'media/a/b.jpg');
    assert.equal(joinLocal('media/', '/a.jpg'), 'media/a.jpg');
    assert.equal(joinLocal('', 'a.jpg'), 'a.jpg');
  });

  test('normalizePrefix adds one trailing slash and drops leading ones', () => {
    assert.equal(normalizePrefix('static'), 'static/');
    assert.equal(normalizePrefix('/static/'), 'static/');
    assert.equal(normalizePrefix('a/b//'), 'a/b/');
    assert.equal(normalizePrefix(''), '');
    assert.equal(normalizePrefix('/'), '');
  });
});
