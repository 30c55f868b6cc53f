// The REPL in a real terminal (tmux on a private socket) against an S3 server in another process:
// the live view renders in place, Ctrl+C during `apply` stops it and the prompt comes back, and a
// later apply leaves both sides equal. Polls the screen with a deadline; no fixed sleeps.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createS3Client } from '../../src/remote/client.js';
import { BIN, makeProject, type Project } from '../support/harness.js';

const run = promisify(execFile);
const SERVER = fileURLToPath(new URL('../../scripts/s3-server.js', import.meta.url));
const FILES = 400;
const socket = `ssync-repl-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
let server: ChildProcess;
let env: Record<string, string> = {};
let p: Project;
/** tmux leaves its socket file behind; it is removed at the end. */
let socketPath = '';

before(async () => {
  server = spawn(process.execPath, [SERVER, '--bucket', 'repl-tty'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    server.on('error', reject);
    server.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('# fauxqs')) resolve();
    });
  });
  for (const m of out.matchAll(/([A-Z0-9_]+)=(\S+)/g)) env[m[1]!] = m[2]!;
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < FILES; i++) files[`media/batch/${String(i).padStart(3, '0')}.bin`] = crypto.randomBytes(48 * 1024);
  p = makeProject(files);
});

after(async () => {
  await run('tmux', ['-L', socket, 'kill-server']).catch(() => undefined);
  if (socketPath) fs.rmSync(socketPath, { force: true });
  server?.kill('SIGTERM');
  p?.cleanup();
});

const tmux = (...args: string[]) => run('tmux', ['-L', socket, ...args]);
const screen = async (): Promise<string> => (await tmux('capture-pane', '-p', '-t', 'repl')).stdout;

/** Polls the screen until `ok` holds, up to a deadline; returns the screen it held on. */
async function until(what: string, ok: (s: string) => boolean, ms = 90_000): Promise<string> {
  const deadline = Date.now() + ms;
  let s = '';
  while (Date.now() < deadline) {
    s = await screen().catch(() => '');
    if (ok(s)) return s;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}; screen:\n${s}`);
}

/** The session ends when the REPL exits (its command was the pane's only process). */
async function gone(ms = 45_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await tmux('has-session', '-t', 'repl').then(() => false, () => true)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the REPL did not exit; screen:\n${await screen().catch(() => '')}`);
}

const lastLine = (s: string): string => s.trimEnd().split('\n').pop() ?? '';
const atPrompt = (s: string): boolean => /^storage-sync \[two-way\]> $/.test(lastLine(s) + ' ') || /^storage-sync \[two-way\]>$/.test(lastLine(s));

async function remote(): Promise<Map<string, string>> {
  const client = createS3Client({
    endpoint: env['AWS_S3_ENDPOINT_URL']!, bucket: 'repl-tty', accessKeyId: env['AWS_ACCESS_KEY_ID']!, secretAccessKey: env['AWS_SECRET_ACCESS_KEY']!,
    forcePathStyle: true, concurrency: 4, multipartThreshold: 8 * 1024 * 1024, partSize: 8 * 1024 * 1024,
  });
  const all = new Map<string, string>();
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: 'repl-tty', ContinuationToken: token }));
    for (const o of page.Contents ?? []) all.set(o.Key!, (o.ETag ?? '').replace(/"/g, ''));
    token = page.NextContinuationToken;
  } while (token);
  client.destroy();
  return all;
}

test('live view in a terminal; Ctrl+C during apply returns to the prompt; resume ends in sync', async () => {
  const vars = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  fs.mkdirSync(path.join(p.root, 'manifests/default'), { recursive: true });
  fs.writeFileSync(path.join(p.root, 'manifests/default/repl_history'), 'status\n');
  const cmd = ['env', ...vars, process.execPath, BIN, 'repl', '--root', p.root, '--concurrency', '1'].map((a) => `'${a}'`).join(' ');
  await tmux('new-session', '-d', '-s', 'repl', '-x', '120', '-y', '32', cmd);
  socketPath = (await tmux('display-message', '-p', '#{socket_path}')).stdout.trim();
  await until('the first prompt', atPrompt);
  // History from an earlier session comes back with the Up arrow.
  await tmux('send-keys', '-t', 'repl', 'Up');
  await until('the history entry', (s) => lastLine(s).endsWith('> status'));
  await tmux('send-keys', '-t', 'repl', 'C-u');
  await until('an empty line', atPrompt);

  // Tab completes a command name; Ctrl+C on a typed line clears it; on an empty one it says how to exit.
  await tmux('send-keys', '-t', 'repl', 'expl', 'Tab');
  await until('completion', (s) => /> explain $/.test(lastLine(s) + ' ') || lastLine(s).endsWith('> explain'));
  await tmux('send-keys', '-t', 'repl', 'C-c');
  await until('a cleared line', atPrompt);
  await tmux('send-keys', '-t', 'repl', 'C-c');
  await until('the exit hint', (s) => /To exit, press Ctrl\+C again/.test(s) && atPrompt(s));

  await tmux('send-keys', '-t', 'repl', 'apply', 'Enter');
  const live = await until('the live view', (s) => new RegExp(`\\] +\\d+%  \\d+/${FILES} files`).test(s) && /in flight 1/.test(s) && /↑ media\/batch\//.test(s));
  assert.match(live, /done \d+ {2}failed 0 {2}skipped \d+/);
  assert.match(live, /MiB\/s|KiB\/s/);
  // Updated in place: one progress bar on the screen, not a scrolling list of them.
  assert.equal((live.match(/files {2}[\d.]+ [KM]iB\//g) ?? []).length, 1);

  await tmux('send-keys', '-t', 'repl', 'C-c');
  const stopped = await until('the prompt after the stop', (s) => /stopped: what finished is recorded/.test(s) && atPrompt(s));
  assert.match(stopped, /stopping the apply/);
  assert.match(stopped, /type apply to resume/);
  const up = (await remote()).size;
  assert.ok(up > 0 && up < FILES, `stopped part-way: ${up} of ${FILES}`);

  // Still answering; then the rest, faster.
  await tmux('send-keys', '-t', 'repl', 'set concurrency 8', 'Enter');
  await until('the setting', (s) => /concurrency 8/.test(s) && atPrompt(s));
  await tmux('send-keys', '-t', 'repl', 'apply', 'Enter');
  await until('the resumed apply', (s) => /nothing to do: \d+ paths in sync/.test(s) && atPrompt(s), 50_000);
  await tmux('send-keys', '-t', 'repl', 'exit', 'Enter');
  await gone();

  const objects = await remote();
  assert.equal(objects.size, FILES);
  for (const [rel, sum] of Object.entries(p.files())) assert.equal(objects.get(rel), sum, rel);
  const history = fs.readFileSync(path.join(p.root, 'manifests/default/repl_history'), 'utf8');
  assert.match(history, /^apply$/m);
});
