// A disk that fills up during a download: the old file stays intact, the error is reported on
// that file (exit 1), no temp file is left, and a rerun with space again completes.
// Two real mechanisms: a 2 MiB tmpfs mounted on the mapped folder (ENOSPC; needs root and
// CAP_SYS_ADMIN), and a file size limit (`ulimit -f`, EFBIG; Node ignores SIGXFSZ, so write()
// fails instead of the process dying) on a CLI child. Where mounting is not allowed, the tmpfs
// case runs with the file size limit instead.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startS3Server, type TestS3 } from '../support/s3-server.js';
import { BIN, md5, runCli, type CliResult } from '../support/harness.js';
import { makeSandbox, type Sandbox } from './sandbox.js';

let s3: TestS3;
const boxes: Sandbox[] = [];
const mounts: string[] = [];

before(async () => {
  s3 = await startS3Server();
});
after(async () => {
  // Before the server stops: no child talks to it any more by now.
  for (const m of mounts) spawnSync('umount', [m]);
  for (const b of boxes) b.cleanup();
  await s3.stop();
});

/** The CLI as a child whose files may not grow beyond `kib` KiB. */
function syncWithFileLimit(root: string, kib: number): Promise<CliResult & { signal: string | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', `ulimit -f ${kib}; exec "${process.execPath}" "${BIN}" sync --json`], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', ...s3.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const events = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code: code ?? 128, signal, stdout, stderr, events, summary: events.find((e) => e['event'] === 'summary') as CliResult['summary'] });
    });
  });
}

function tryMountTmpfs(dir: string): boolean {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir], { stdio: 'ignore' });
  if (r.status !== 0) return false;
  mounts.push(dir);
  return true;
}

const canMount = (() => {
  if (process.getuid?.() !== 0) return false;
  const probe = fs.mkdtempSync('/tmp/ssync-mount-probe-');
  const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { stdio: 'ignore' }).status === 0;
  if (ok) spawnSync('umount', [probe]);
  fs.rmdirSync(probe);
  return ok;
})();

for (const mechanism of [canMount ? 'tmpfs' : 'ulimit', 'ulimit'] as const) {
  test(`disk full during a download (${mechanism}): the old file stays, the error is reported, a rerun completes`, async () => {
    await s3.reset();
    const box = makeSandbox();
    boxes.push(box);
    const media = path.join(box.root, 'media');
    fs.mkdirSync(media);
    // The manifest, trash and logs live off the small disk, as they may well in real life.
    const manifestDir = path.join(box.dir, 'state');
    box.write('project/storage-sync.config.json', JSON.stringify({ manifestDir, mappings: [{ local: 'media', remote: 'media/' }] }));
    if (mechanism === 'tmpfs') assert.ok(tryMountTmpfs(media));
    const v1 = crypto.randomBytes(200 * 1024);
    const v2 = crypto.randomBytes(1536 * 1024);
    fs.writeFileSync(path.join(media, 'doc.bin'), v1);
    fs.writeFileSync(path.join(media, 'small.txt'), 'small');
    const old = new Date(Date.now() - 5000);
    for (const f of ['doc.bin', 'small.txt']) fs.utimesSync(path.join(media, f), old, old);
    const first = await runCli(['sync', '--json'], { cwd: box.root, env: s3.env });
    assert.equal(first.code, 0, first.stderr);
    await s3.putRaw('media/doc.bin', v2);
    await s3.putRaw('media/fits.txt', 'a small download still fits');

    let r: CliResult;
    if (mechanism === 'tmpfs') {
      // Leave about 600 KiB free: the small file fits, the 1.5 MiB one does not.
      const free = () => fs.statfsSync(media).bavail * fs.statfsSync(media).bsize;
      const fd = fs.openSync(path.join(media, '.filler'), 'w');
      fs.writeSync(fd, Buffer.alloc(free() - 600 * 1024, 1));
      fs.closeSync(fd);
      box.write('project/storage-sync.config.json', JSON.stringify({ manifestDir, exclude: ['.filler'], mappings: [{ local: 'media', remote: 'media/' }] }));
      r = await runCli(['sync', '--json'], { cwd: box.root, env: s3.env });
    } else {
      r = await syncWithFileLimit(box.root, 1024);
      assert.equal((r as unknown as { signal: string | null }).signal, null, 'not killed by SIGXFSZ');
    }
    assert.equal(r.code, 1, r.stderr + r.stdout);
    const failed = r.events.filter((e) => e['event'] === 'file' && e['status'] === 'failed');
    assert.deepEqual(failed.map((e) => e['path']), ['media/doc.bin']);
    assert.match(String(failed[0]!['error']), mechanism === 'tmpfs' ? /^download of media\/doc\.bin: .*ENOSPC/ : /^download of media\/doc\.bin: .*(EFBIG|size mismatch)/);
    assert.equal(md5(fs.readFileSync(path.join(media, 'doc.bin'))), md5(v1), 'the old file is intact');
    assert.equal(fs.readFileSync(path.join(media, 'fits.txt'), 'utf8'), 'a small download still fits');
    assert.deepEqual(fs.readdirSync(media).filter((f) => f.includes('.ssync-')), [], 'no temp file left');

    if (mechanism === 'tmpfs') fs.rmSync(path.join(media, '.filler'));
    const again = await runCli(['sync', '--json'], { cwd: box.root, env: s3.env });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(md5(fs.readFileSync(path.join(media, 'doc.bin'))), md5(v2));
    const trashed = fs.readdirSync(path.join(manifestDir, 'default/trash'), { recursive: true }).map(String);
    assert.ok(trashed.some((f) => f.endsWith('doc.bin')), 'v1 kept in the trash');
  });
}
