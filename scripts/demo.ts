// `npm start`: storage-sync on a built-in local default. A sample site in a temp folder, an S3
// server on loopback, then: first sync, a no-op sync, edits on both sides (and a conflict), a
// dry run, the real sync, and a check that both sides hold the same bytes.
// Pass --keep to leave the sample project on disk afterwards.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { main } from '../src/cli/main.js';
import { startS3Server } from '../test/support/s3-server.js';
import { filesUnder } from '../test/support/harness.js';

const keep = process.argv.includes('--keep');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'storage-sync-demo-'));
const s3 = await startS3Server();

function write(rel: string, content: string | Buffer): void {
  const abs = path.join(root, rel);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  fs.writeFileSync(abs, content);
  // An hour old, like files of a real site: a file written in the same instant as a sync is
  // re-read by the next run on purpose (racily clean), which would blur the "hashed: 0" step.
  const t = new Date(Date.now() - 3_600_000);
  fs.utimesSync(abs, t, t);
}

function heading(text: string): void {
  process.stdout.write(`\n\x1b[1m== ${text}\x1b[0m\n`);
}

async function cli(...args: string[]): Promise<number> {
  process.stdout.write(`$ storage-sync ${args.join(' ')}\n`);
  // stderr without isTTY: the demo prints one line per file instead of a progress line.
  const stderr = Object.assign(Object.create(process.stderr) as NodeJS.WriteStream, { isTTY: false });
  const code = await main(args, { stdout: process.stdout, stderr, env: { ...process.env, ...s3.env }, cwd: root, signal: new AbortController().signal });
  process.stdout.write(`(exit ${code})\n`);
  return code;
}

try {
  heading(`Sample site in ${root}, bucket "${s3.bucket}" at ${s3.endpoint}`);
  write('staticfiles/css/site.css', 'body { font-family: sans-serif; }\n');
  write('staticfiles/js/app.js', 'console.log("hello");\n');
  write('staticfiles/img/logo.svg', '<svg xmlns="http://www.w3.org/2000/svg"/>\n');
  write('media/uploads/2026/report.pdf', crypto.randomBytes(300_000));
  write('media/avatars/ada.png', crypto.randomBytes(40_000));
  write('media/avatars/grace.png', crypto.randomBytes(40_000));
  await s3.putRaw('media/uploads/2026/from-server.jpg', crypto.randomBytes(120_000));
  process.stdout.write('6 local files; the bucket already holds media/uploads/2026/from-server.jpg\n');

  heading('1. First two-way sync: local-only files go up, remote-only files come down');
  await cli('sync');

  heading('2. Nothing changed: nothing is transferred and no file is read (hashed 0)');
  await cli('sync');

  heading('3. Changes on both sides');
  write('staticfiles/css/site.css', 'body { font-family: serif; }\n');
  write('media/uploads/2026/new-local.txt', 'written locally\n');
  fs.rmSync(path.join(root, 'media/avatars/grace.png'));
  const t = new Date();
  fs.utimesSync(path.join(root, 'staticfiles/img/logo.svg'), t, t);
  await s3.putRaw('static/js/app.js', 'console.log("edited on the server");\n');
  await s3.putRaw('media/uploads/2026/new-remote.txt', 'written on the server\n');
  write('media/avatars/ada.png', crypto.randomBytes(41_000));
  await s3.putRaw('media/avatars/ada.png', crypto.randomBytes(42_000));
  process.stdout.write(
    'local: edited site.css, added new-local.txt, deleted grace.png, touched logo.svg (same bytes)\n' +
      'remote: edited app.js, added new-remote.txt\nboth: edited ada.png differently (a conflict; remote wins by default)\n',
  );

  heading('4. Dry run: what would happen, and why');
  await cli('plan');

  heading('5. The real sync');
  await cli('sync');

  heading('6. Both sides compared byte for byte');
  const local = filesUnder(root, ['manifests', 'storage-sync.config.json']);
  const remote = await s3.listAll();
  const toLocal = (key: string): string => key.replace(/^static\//, 'staticfiles/');
  const mismatched = remote.filter((o) => local[toLocal(o.key)] !== o.etag);
  const extra = Object.keys(local).filter((f) => !remote.some((o) => toLocal(o.key) === f));
  process.stdout.write(`${remote.length} objects, ${Object.keys(local).length} local files, ${mismatched.length + extra.length} differences\n`);
  const trash = filesUnder(path.join(root, 'manifests/default/trash'));
  process.stdout.write(`kept in trash: ${Object.keys(trash).join(', ') || '(nothing)'}\n`);
  process.stdout.write(`logs: ${fs.readdirSync(path.join(root, 'manifests/default/logs')).length} run logs in manifests/default/logs/\n`);
  if (mismatched.length + extra.length > 0) process.exitCode = 1;
} finally {
  await s3.stop();
  if (keep) process.stdout.write(`\nproject kept at ${root}\n`);
  else fs.rmSync(root, { recursive: true, force: true });
}
