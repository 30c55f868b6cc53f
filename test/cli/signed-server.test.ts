// Against s3rver, a second, independent S3 implementation (out of process, on disk). It checks
// the access key ID but, despite its reputation, not SigV4 signatures ("Signature version 4
// calculation is unimplemented" in its authentication middleware): a wrong secret passes there,
// so the rejection below uses an unknown key ID. A real endpoint rejects both.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startS3rver, type S3rverHandle } from '../support/s3rver.js';
import { makeProject, md5, spawnCli, type Project } from '../support/harness.js';

let server: S3rverHandle;
let p: Project;

before(async () => {
  server = await startS3rver();
  p = makeProject({ 'media/a.txt': 'alpha', 'media/b b#?%+é.txt': 'odd name', 'staticfiles/app.css': 'css' });
});
after(async () => {
  await server.stop();
  p.cleanup();
});

test('a two-way sync round-trips through a second, filesystem-backed server', async () => {
  p.write('media/big.bin', crypto.randomBytes(9 * 1024 * 1024));
  const first = await spawnCli(['sync', '--json'], { cwd: p.root, env: server.env });
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.summary?.uploaded, 4);
  const second = await spawnCli(['sync', '--json'], { cwd: p.root, env: server.env });
  assert.deepEqual([second.summary?.uploaded, second.summary?.downloaded, second.summary?.hashed], [0, 0, 0]);

  const other = makeProject();
  const down = await spawnCli(['sync', '--json'], { cwd: other.root, env: server.env });
  assert.equal(down.code, 0, down.stderr);
  assert.deepEqual(other.files(), p.files());
  assert.equal(other.files()['media/b b#?%+é.txt'], md5('odd name'));
  other.cleanup();
});

test('rejected credentials: exit 2, one line, the secret nowhere', async () => {
  const secret = 'wrong-secret-' + crypto.randomBytes(8).toString('hex');
  const env = { ...server.env, AWS_ACCESS_KEY_ID: 'NOT-AN-ACCOUNT', AWS_SECRET_ACCESS_KEY: secret };
  const r = await spawnCli(['sync', '--log-level', 'debug'], { cwd: p.root, env });
  assert.equal(r.code, 2);
  assert.match(r.stderr.split('\n')[0]!, /credentials rejected/);
  assert.ok(!(r.stdout + r.stderr).includes(secret));
});
