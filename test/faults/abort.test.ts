// A stop (SIGINT) while sockets are stalled: the run ends promptly with 130, without waiting for
// the idle timeout, and leaves no temp file and every local file as it was.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { md5, runCli } from '../support/harness.js';
import { fileEvents, sync, tempsUnder, useFaultFixture } from './setup.js';

const ctx = useFaultFixture();
// Long enough that only the stop can end the stalled requests.
process.env.STORAGE_SYNC_SOCKET_TIMEOUT_MS = '600000';

test('SIGINT during stalled GETs and PUTs exits 130 at once; nothing half-written', { timeout: 60_000 }, async () => {
  const { p, s3, proxy } = ctx;
  const v1 = crypto.randomBytes(200_000);
  p.write('media/doc.bin', v1);
  assert.equal((await sync(ctx)).code, 0);
  await s3.putRaw('media/doc.bin', crypto.randomBytes(300_000));
  await s3.putRaw('media/new.bin', crypto.randomBytes(300_000));
  p.write('media/up.bin', crypto.randomBytes(1000));
  proxy.set([
    { ops: ['GetObject'], key: 'media/doc.bin', faults: ['stall-mid'] },
    { ops: ['GetObject'], key: 'media/new.bin', faults: ['stall'] },
    { ops: ['PutObject'], faults: ['stall'] },
  ]);
  const stop = new AbortController();
  const running = runCli(['sync', '--json'], { cwd: p.root, env: proxy.env(s3.env), signal: stop.signal });
  // Stop once all three requests hang (the proxy's log says so; no clock involved).
  while (proxy.faulted().length < 3) await new Promise((r) => setImmediate(r));
  stop.abort('SIGINT');
  const r = await running;
  assert.equal(r.code, 130, r.stderr);
  assert.deepEqual(fileEvents(r, 'done'), []);
  assert.equal(p.files()['media/doc.bin'], md5(v1), 'the old file is intact');
  assert.ok(!p.exists('media/new.bin'), 'no partial new file');
  assert.deepEqual(tempsUnder(p.root), []);
  assert.ok(!(await s3.listAll()).some((o) => o.key === 'media/up.bin'));
});
