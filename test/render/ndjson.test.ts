import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { ndjsonRenderer } from '../../src/render/ndjson.js';

test('--json lines are written in batches, in order, all of them by the summary; internal events stay out', () => {
  const out = new PassThrough();
  const writes: string[] = [];
  out.on('data', (c: Buffer) => writes.push(c.toString()));
  const render = ndjsonRenderer(out, (s) => s.replaceAll('secret', '***'));
  const n = 3000;
  for (let i = 0; i < n; i++) {
    render({ event: 'file', path: `media/f${i}.bin`, key: `media/f${i}-secret`, action: 'upload', status: 'done', bytes: i });
    render({ event: 'hash-progress', internal: true, done: i, total: n, bytes: 0 });
  }
  render({ event: 'error', exitCode: 1, message: 'secret out' });
  const lines = writes.join('').split('\n');
  assert.equal(lines.pop(), '');
  assert.equal(lines.length, n + 1);
  lines.slice(0, n).forEach((l, i) => assert.deepEqual(JSON.parse(l), { event: 'file', path: `media/f${i}.bin`, key: `media/f${i}-***`, action: 'upload', status: 'done', bytes: i }));
  assert.deepEqual(JSON.parse(lines[n]!), { event: 'error', exitCode: 1, message: '*** out' });
  assert.ok(writes.length < n / 10, `${writes.length} writes for ${n + 1} lines`);
  // flush() writes a partial batch at once (the command calls it when it ends).
  render({ event: 'warning', message: 'late' });
  render.flush();
  assert.equal(JSON.parse(writes.at(-1)!.trim()).message, 'late');
});
