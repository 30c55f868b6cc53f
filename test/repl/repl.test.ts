// The REPL driven through its streams (no TTY) against the local S3 server: what it prints, and
// what both sides hold afterwards.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import type { TestS3 } from '../support/s3-server.js';
import { useServerAndProjects } from '../support/fixture.js';
import { BIN, type Project } from '../support/harness.js';
import { resolveSettings } from '../../src/engine/settings.js';
import { Session } from '../../src/repl/repl.js';
import { tokenize } from '../../src/repl/args.js';
import { PROMPT, startRepl, type Driver } from './support.js';

let s3: TestS3;
const project = useServerAndProjects((server) => (s3 = server));

const toKey = (rel: string): string => rel.replace(/^staticfiles\//, 'static/');

/** Local files (outside the manifest folder) and remote objects hold the same bytes. */
async function assertInSync(p: Project): Promise<void> {
  const local = Object.fromEntries(Object.entries(p.files()).map(([rel, sum]) => [toKey(rel), sum]));
  const remote = Object.fromEntries((await s3.listAll()).map((o) => [o.key, o.etag]));
  assert.deepEqual(remote, local);
}

/** A Session in this process, for what only its handle shows (completion). */
async function inProcess(p: Project): Promise<{ input: PassThrough; handle: Awaited<ReturnType<Session['start']>> }> {
  const settings = resolveSettings({ root: p.root }, p.root);
  const input = new PassThrough();
  const output = new PassThrough();
  output.resume();
  const session = new Session(settings, { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, endpoint: s3.endpoint, bucket: s3.bucket, region: 'auto', forcePathStyle: true }, {
    stdin: input, stdout: output, stderr: output, env: {}, cwd: p.root, signal: new AbortController().signal,
  });
  return { input, handle: await session.start() };
}

async function open(p: Project, extra: string[] = [], command = 'repl'): Promise<Driver> {
  return startRepl([command, '--root', p.root, ...extra], { cwd: p.root, env: s3.env });
}

describe('looking before leaping', () => {
  test('scan, plan (filters, sort, truncation), explain, diff, skip/unskip, apply', async () => {
    await s3.reset();
    const p = project({
      'staticfiles/css/site.css': 'body { color: red; }\n',
      'staticfiles/js/app.js': 'console.log("v1");\n',
      'media/big.bin': crypto.randomBytes(3000),
    });
    await s3.putRaw('media/remote.txt', 'from the server\n');
    const r = await open(p);
    assert.match(r.text, /pending: 3 upload, 1 download/);

    const plan = await r.cmd('plan');
    assert.match(plan, /4 items: 3 upload, 1 download/);
    assert.match(plan, /upload\s+media\/big\.bin\s+2\.9 KiB\s+local-new/);
    assert.match(plan, /download\s+media\/remote\.txt/);

    const onlyDown = await r.cmd('plan --action download');
    assert.match(onlyDown, /1 item: 1 download/);
    assert.doesNotMatch(onlyDown, /site\.css/);

    const biggest = await r.cmd('plan --sort size --limit 1');
    assert.match(biggest, /media\/big\.bin/);
    assert.doesNotMatch(biggest, /site\.css|app\.js|remote\.txt/);
    assert.match(biggest, /… 3 more of 4/);

    const globbed = await r.cmd('plan staticfiles/**/*.css');
    assert.match(globbed, /1 item: 1 upload/);
    assert.match(globbed, /staticfiles\/css\/site\.css/);

    const why = await r.cmd('explain staticfiles/css/site.css');
    assert.match(why, /base\s+none: never synced/);
    assert.match(why, /remote\s+absent/);
    assert.match(why, /rule\s+B absent, L present, R absent → upload/);
    assert.match(why, /exists only locally/);
    const byKey = await r.cmd('explain media/remote.txt');
    assert.match(byKey, /local\s+absent/);
    assert.match(byKey, /→ download/);

    assert.match(await r.cmd('apply'), /done in .*3 uploaded, 1 downloaded/);
    await assertInSync(p);

    // Both sides move on: a local edit, a remote edit, a binary change.
    p.write('staticfiles/css/site.css', 'body { color: blue; }\n');
    await s3.putRaw('static/js/app.js', 'console.log("v2");\n');
    p.write('media/big.bin', crypto.randomBytes(4000));
    const rescan = await r.cmd('scan');
    assert.match(rescan, /pending: 2 upload, 1 download/);
    assert.match(rescan, /since the last scan: 3 new, 0 gone, 0 changed/);

    const text = await r.cmd('diff staticfiles/css/site.css');
    assert.match(text, /^--- remote\/static\/css\/site\.css/m);
    assert.match(text, /^\+\+\+ local\/staticfiles\/css\/site\.css/m);
    assert.match(text, /^-body \{ color: red; \}$/m);
    assert.match(text, /^\+body \{ color: blue; \}$/m);
    assert.doesNotMatch(text, /\x1b\[/, 'no colour on a plain stream');
    const remoteSide = await r.cmd('diff staticfiles/js/app.js');
    assert.match(remoteSide, /^-console\.log\("v2"\);$/m);
    const binary = await r.cmd('diff media/big.bin');
    assert.match(binary, /not text: comparing metadata/);
    assert.match(binary, /size\s+3\.9 KiB \(4000 B\)\s+2\.9 KiB \(3000 B\)/);
    assert.match(binary, /different content \(MD5 differs\)/);

    assert.match(await r.cmd('skip staticfiles/js'), /skipping: 1 item: staticfiles\/js\/app\.js/);
    const skippedPlan = await r.cmd('plan');
    assert.match(skippedPlan, /skipped \(you\)\s+staticfiles\/js\/app\.js/);
    assert.match(await r.cmd('explain staticfiles/js/app.js'), /skipped by you \(skip staticfiles\/js\)/);
    const partial = await r.cmd('apply');
    assert.match(partial, /2 uploaded, 0 downloaded/);
    assert.match(partial, /nothing to do: .*1 skipped by you/);
    assert.equal(p.read('staticfiles/js/app.js'), 'console.log("v1");\n', 'the skipped download did not happen');

    assert.match(await r.cmd('unskip all'), /back in the plan: 1 item/);
    assert.match(await r.cmd('apply staticfiles/**'), /1 downloaded/);
    assert.equal(p.read('staticfiles/js/app.js'), 'console.log("v2");\n');
    await assertInSync(p);
    assert.match(await r.cmd('stats'), /2 scans|3 scans|4 scans|5 scans/);
    assert.equal(await r.close(), 0);
    assert.ok(!r.text.includes(s3.secretAccessKey), 'the secret never shows');
  });

  test('a long plan is truncated with a count; settings and modes replan', async () => {
    await s3.reset();
    const files: Record<string, string> = {};
    for (let i = 0; i < 80; i++) files[`media/f${String(i).padStart(3, '0')}.txt`] = `file ${i}\n`;
    const p = project(files);
    const r = await open(p, [], 'ui');
    const plan = await r.cmd('plan');
    assert.equal((plan.match(/^upload|^\s+media\/f/gm) ?? []).length, 30, 'default: 30 rows');
    assert.match(plan, /… 50 more of 80/);
    const all = await r.cmd('plan --limit all');
    assert.match(all, /media\/f079\.txt/);
    assert.doesNotMatch(all, /more of/);

    const down = await r.cmd('mode download');
    assert.match(down, /nothing to do/, 'download-only leaves local-only files alone');
    assert.match(await r.cmd('plan --action skip --limit 2'), /80 items: 80 skip/);
    assert.match(await r.cmd('set delete on'), /pending: 80 delete-local/);
    await r.cmd('set delete off');
    await r.cmd('mode two-way');
    assert.match(await r.cmd('set dry-run on'), /dry-run on/);
    assert.match(await r.cmd('apply'), /dry run \(nothing changed\).*80 uploaded/);
    assert.equal((await s3.listAll()).length, 0);
    assert.match(await r.cmd('status'), /dry-run on/);
    await r.cmd('set dry-run off');
    assert.match(await r.cmd('set conflict keep-both'), /conflict keep-both/);
    assert.match(await r.cmd('set'), /conflict keep-both/);
    assert.equal(await r.close(), 0);
  });
});

describe('diff beyond the simple case', () => {
  test('over 1 MiB compares metadata; colours only when asked (FORCE_COLOR)', async () => {
    await s3.reset();
    const big = 'line of text\n'.repeat(90_000);
    const p = project({ 'media/big.txt': big, 'media/small.txt': 'one\ntwo\n' });
    await s3.putRaw('media/big.txt', big + 'one more\n');
    await s3.putRaw('media/small.txt', 'one\n2\n');
    const r = await startRepl(['repl', '--root', p.root], { cwd: p.root, env: { ...s3.env, FORCE_COLOR: '1' } });
    const large = await r.cmd('diff media/big.txt');
    assert.match(large, /larger than 1 MiB: comparing metadata/);
    assert.match(large, /size\s+1\.1 MiB \(1170000 B\)\s+1\.1 MiB \(1170009 B\)/);
    const coloured = await r.cmd('diff media/small.txt');
    assert.match(coloured, /\x1b\[32m\+two\x1b\[39m/);
    assert.match(coloured, /\x1b\[31m-2\x1b\[39m/);
    assert.equal(await r.close(), 0);
  });

  test('installed as storage-sync-ui, the binary opens the REPL', async () => {
    const p = project();
    const link = path.join(p.root, 'storage-sync-ui');
    fs.symlinkSync(BIN, link);
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [link, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0);
    assert.match(out, /^storage-sync repl\n/);
    assert.match(out, /the interactive REPL/);
  });
});

describe('stopping and resuming', () => {
  test('stop mid-apply returns to the prompt; a later apply resumes and both sides end equal', async () => {
    await s3.reset();
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 200; i++) files[`media/batch/${String(i).padStart(3, '0')}.bin`] = crypto.randomBytes(2048);
    const p = project(files);
    let stopSent = false;
    const r = await startRepl(['repl', '--root', p.root, '--concurrency', '1'], {
      cwd: p.root,
      env: s3.env,
      // Typed as soon as the first file is done, so the stop lands mid-run whatever the speed.
      onOutput: (text, d) => {
        if (!stopSent && /uploaded {2}media\/batch/.test(text)) {
          stopSent = true;
          d.send('stop');
        }
      },
    });
    const from = r.text.length;
    r.send('apply');
    const out = await r.waitFor(/stopped: what finished is recorded[\s\S]*type apply to resume[\s\S]*> $/, from);
    assert.match(out, /stopping the apply/);
    const uploaded = (await s3.listAll()).length;
    assert.ok(uploaded > 0 && uploaded < 200, `stopped part-way (${uploaded} of 200 up)`);
    // The REPL still answers, and the plan is what is left.
    assert.match(await r.cmd('status'), /mode two-way/);
    assert.match(await r.cmd('plan --limit 1'), new RegExp(`${200 - uploaded} items: ${200 - uploaded} upload`));
    assert.match(await r.cmd('stats'), /1 applies \(1 stopped\)/);
    const rest = await r.cmd('apply');
    assert.match(rest, new RegExp(`done in .*${200 - uploaded} uploaded`));
    assert.match(rest, /nothing to do/);
    await assertInSync(p);
    assert.equal(await r.close(), 0);
  });

  test('SIGINT claimed from the process stops the apply, not the session; at an idle prompt it is node\'s Ctrl+C', async () => {
    await s3.reset();
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 150; i++) files[`staticfiles/s/${i}.bin`] = crypto.randomBytes(1024);
    const p = project(files);
    let sent = false;
    const r = await startRepl(['repl', '--root', p.root, '--concurrency', '1'], {
      cwd: p.root,
      env: s3.env,
      onOutput: (text, d) => {
        if (!sent && /uploaded {2}staticfiles\/s/.test(text)) {
          sent = true;
          assert.equal(d.claimed?.('SIGINT'), true, 'the REPL takes SIGINT');
        }
      },
    });
    assert.ok(r.claimed, 'the REPL registered a signal handler');
    assert.equal(r.claimed('SIGTERM'), false, 'SIGTERM stays with the process');
    const from = r.text.length;
    r.send('apply');
    await r.waitFor(/stopped:[\s\S]*> $/, from);
    const at = r.text.length;
    assert.equal(r.claimed('SIGINT'), true);
    await r.waitFor(/To exit, press Ctrl\+C again/, at);
    assert.match(await r.cmd('apply'), /done in/);
    await assertInSync(p);
    assert.equal(await r.close(), 0);
  });

  test('an aborted process signal (SIGTERM) ends the session with 143', async () => {
    const p = project({ 'media/a.txt': 'a\n' });
    await s3.reset();
    const controller = new AbortController();
    const r = await startRepl(['repl', '--root', p.root], { cwd: p.root, env: s3.env, signal: controller.signal });
    controller.abort('SIGTERM');
    assert.equal(await r.done, 143);
  });
});

describe('trash and restore', () => {
  test('a file replaced by a download comes back; the one in its place goes to the trash', async () => {
    await s3.reset();
    const p = project({ 'media/doc.txt': 'version 1\n' });
    const r = await open(p);
    await r.cmd('apply');
    await s3.putRaw('media/doc.txt', 'version 2 from the server\n');
    await r.cmd('scan');
    assert.match(await r.cmd('apply'), /1 downloaded/);
    assert.equal(p.read('media/doc.txt'), 'version 2 from the server\n');
    const trash = await r.cmd('trash');
    assert.match(trash, /^\d{8}-\d{6}-[0-9a-f]{6}: 1 file/m);
    assert.match(trash, /media\/doc\.txt/);
    const restored = await r.cmd('restore media/doc.txt');
    assert.match(restored, /went to the trash first/);
    assert.match(restored, /restored media\/doc\.txt from run/);
    assert.equal(p.read('media/doc.txt'), 'version 1\n');
    // Nothing lost: the downloaded version is now the trashed one.
    const kept = Object.entries(p.files()).length;
    const trashed = fs.readdirSync(path.join(p.root, 'manifests/default/trash'), { recursive: true }).filter((f) => String(f).endsWith('doc.txt'));
    assert.equal(trashed.length, 1);
    assert.equal(kept, 1);
    const again = await r.cmd('trash');
    assert.match(again, /media\/doc\.txt/);
    assert.match(await r.cmd('restore media/doc.txt --run nope'), /error: run nope has no media\/doc\.txt/);
    assert.match(await r.cmd('restore ../../etc/passwd'), /error: .* is not a path inside the project/);
    assert.match(await r.cmd('restore media/none.txt'), /error: media\/none\.txt is not in the trash/);
    const plan = await r.cmd('scan');
    assert.match(plan, /1 upload/, 'the restored version is a local change to sync');
    assert.equal(await r.close(), 0);
    const history = fs.readFileSync(path.join(p.root, 'manifests/default/repl_history'), 'utf8');
    assert.match(history, /^restore media\/doc\.txt$/m, 'history kept in the manifest folder');
  });
});

describe('nothing typed can break it', () => {
  test('unknown commands, bad arguments and random garbage: one line each, the prompt comes back', async () => {
    await s3.reset();
    const p = project({ 'media/a.txt': 'a\n' });
    const r = await open(p);
    const cases: [string, RegExp][] = [
      ['frobnicate', /^error: unknown command "frobnicate" \(type help for the list\)$/],
      ['plan --limit -1', /^error: --limit must be a positive whole number/],
      ['plan --limit', /^error: --limit needs a value/],
      ['plan --bogus 1', /^error: unknown option --bogus/],
      ['plan a b', /^error: one GLOB at most/],
      ['explain', /^error: give one PATH/],
      ['explain no/such.txt', /^error: no\/such\.txt is not in the last scan/],
      ['diff a b', /^error: give one PATH/],
      ['mode sideways', /^error: mode is one of two-way, upload, download/],
      ['set nope on', /^error: no setting "nope"/],
      ['set dry-run maybe', /^error: dry-run is on or off/],
      ['set concurrency 999', /^error: concurrency is at most 256/],
      ['set max-delete lots', /^error: max-delete is a count or a percentage/],
      ['log x', /^error: N must be a positive whole number/],
      ['unskip', /^error: give a GLOB/],
      ['help nope', /^error: no command "nope"/],
      ['explain "unterminated', /^error: unterminated " quote$/],
      ['stop', /^nothing is running$/],
      ['__proto__', /^error: unknown command "__proto__"/],
      ['constructor', /^error: unknown command "constructor"/],
    ];
    for (const [line, re] of cases) {
      const out = (await r.cmd(line)).trim();
      assert.match(out, re, line);
      assert.equal(out.split('\n').length, 1, `one line for ${line}: ${out}`);
    }
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 60, unit: 'grapheme' }), async (junk) => {
        const line = junk.replace(/[\r\n]/g, ' ');
        if (/^\s*(exit|quit|apply|restore|\.)/i.test(line)) return;
        const before = r.text.length;
        r.send(line);
        await r.waitFor(PROMPT, before);
      }),
      { numRuns: 150, seed: 42 },
    );
    assert.match(await r.cmd('status'), /mode two-way/);
    assert.match(await r.cmd('log 3'), /\d\d:\d\d:\d\d/);
    assert.match(await r.cmd('clear'), /log cleared/);
    assert.match(await r.cmd('log'), /the log is empty/);
    assert.match(await r.cmd(`plan ${'x'.repeat(5000)}`), /no pending item matches/);
    assert.equal(await r.close(), 0);
    assert.ok(!r.text.includes(s3.secretAccessKey));
  });

  test('missing credentials: one line, exit 2, before any prompt', async () => {
    const p = project();
    const r = await startRepl(['repl', '--root', p.root], { cwd: p.root, env: {} });
    assert.equal(await r.done, 2);
    assert.match(r.text, /^storage-sync: .*AWS_ACCESS_KEY_ID/m);
    assert.doesNotMatch(r.text, PROMPT);
  });

  test('tab completion: commands, settings, and paths of the plan a folder at a time', async () => {
    await s3.reset();
    const p = project({ 'media/a/one.txt': '1', 'media/a/two.txt': '2', 'media/b.txt': 'b', 'staticfiles/x.css': 'x' });
    const { input, handle } = await inProcess(p);
    assert.deepEqual(handle.complete('ex'), [['exit', 'explain'], 'ex']);
    assert.deepEqual(handle.complete('mode d'), [['download'], 'd']);
    assert.deepEqual(handle.complete('set conflict k'), [['keep-both'], 'k']);
    assert.deepEqual(handle.complete('explain me'), [['media/'], 'me']);
    assert.deepEqual(handle.complete('diff media/'), [['media/a/', 'media/b.txt'], 'media/']);
    assert.deepEqual(handle.complete('skip media/a/t'), [['media/a/two.txt'], 'media/a/t']);
    assert.deepEqual(handle.complete('plan --sort s'), [['size'], 's']);
    input.end();
    assert.equal(await handle.closed, 0);
  });

  test('tab completion quotes names with spaces or quotes, so the completed line parses back to the path', async () => {
    await s3.reset();
    const p = project({ 'media/my photos/a b.jpg': '1', 'media/my photos/c.jpg': '2', "media/it's.txt": '3' });
    const { input, handle } = await inProcess(p);
    assert.deepEqual(handle.complete('explain media/my'), [['"media/my photos/'], 'media/my']);
    assert.deepEqual(handle.complete('explain "media/my photos/a'), [['"media/my photos/a b.jpg"'], '"media/my photos/a']);
    assert.deepEqual(handle.complete("explain 'media/my photos/c"), [["'media/my photos/c.jpg'"], "'media/my photos/c"]);
    assert.deepEqual(handle.complete('explain media/it'), [['"media/it\'s.txt"'], 'media/it']);
    // What the completion produces reads back as the path itself.
    assert.deepEqual(tokenize('explain "media/my photos/a b.jpg"'), ['explain', 'media/my photos/a b.jpg']);
    input.end();
    assert.equal(await handle.closed, 0);
  });
});

describe('dry run and .save write nothing they should not', () => {
  test('under --dry-run no history is written and restore only says what it would do', async () => {
    await s3.reset();
    const p = project({ 'media/doc.txt': 'version 1\n' });
    const live = await open(p);
    await live.cmd('apply');
    await s3.putRaw('media/doc.txt', 'version 2\n');
    await live.cmd('scan');
    assert.match(await live.cmd('apply'), /1 downloaded/);
    assert.equal(await live.close(), 0);
    const historyFile = path.join(p.root, 'manifests/default/repl_history');
    const history = fs.readFileSync(historyFile, 'utf8');
    const trashBefore = fs.readdirSync(path.join(p.root, 'manifests/default/trash'), { recursive: true }).sort();

    const dry = await open(p, ['--dry-run']);
    const said = await dry.cmd('restore media/doc.txt');
    assert.match(said, /dry run: would restore media\/doc\.txt from run \S+, moving the file now there to the trash first; nothing changed/);
    assert.equal(p.read('media/doc.txt'), 'version 2\n');
    assert.match(await dry.cmd('.save session.txt'), /dry run: \.save writes nothing/);
    assert.equal(await dry.close(), 0);
    assert.equal(fs.readFileSync(historyFile, 'utf8'), history, 'no history line added under --dry-run');
    assert.deepEqual(fs.readdirSync(path.join(p.root, 'manifests/default/trash'), { recursive: true }).sort(), trashBefore);
    assert.ok(!fs.existsSync(path.join(p.root, 'session.txt')));
  });

  test('.save writes the typed lines with secrets redacted', async () => {
    await s3.reset();
    const p = project({ 'media/a.txt': 'a\n' });
    const r = await open(p);
    await r.cmd(`explain ${s3.secretAccessKey}`);
    const file = path.join(p.root, 'saved.txt');
    assert.match(await r.cmd(`.save ${file}`), /session saved to/);
    assert.equal(await r.close(), 0);
    const saved = fs.readFileSync(file, 'utf8');
    assert.match(saved, /^explain \*\*\*$/m);
    assert.ok(!saved.includes(s3.secretAccessKey));
  });
});

describe('skip by key', () => {
  test('skip accepts the remote key as apply and explain do: the item is left out of the apply', async () => {
    await s3.reset();
    const p = project({ 'staticfiles/css/keep.css': 'keep\n', 'staticfiles/css/go.css': 'go\n' });
    const r = await open(p);
    assert.match(await r.cmd('skip static/css/keep.css'), /skipping: 1 item: staticfiles\/css\/keep\.css/);
    assert.match(await r.cmd('plan'), /skipped \(you\)\s+staticfiles\/css\/keep\.css/);
    assert.match(await r.cmd('apply'), /1 uploaded/);
    assert.deepEqual((await s3.listAll()).map((o) => o.key), ['static/css/go.css']);
    assert.match(await r.cmd('unskip static/css/keep.css'), /back in the plan: 1 item/);
    assert.match(await r.cmd('apply'), /1 uploaded/);
    await assertInSync(p);
    assert.equal(await r.close(), 0);
  });
});

describe('restoring the remote loser of a conflict', () => {
  test('the remote version kept when the local one won comes back at its own path, not under a remote/ folder', async () => {
    await s3.reset();
    const p = project({ 'media/doc.txt': 'v1\n' });
    const r = await open(p);
    await r.cmd('apply');
    p.write('media/doc.txt', 'local edit\n');
    await s3.putRaw('media/doc.txt', 'remote edit\n');
    await r.cmd('set conflict local');
    assert.match(await r.cmd('apply'), /1 conflicts/);
    assert.equal((await s3.getBuffer('media/doc.txt')).toString(), 'local edit\n');
    const trash = await r.cmd('trash');
    assert.match(trash, /^ {2}media\/doc\.txt {2}.*remote version/m);
    assert.doesNotMatch(trash, /remote\/media/);
    assert.match(await r.cmd('restore media/doc.txt'), /restored the remote version of media\/doc\.txt/);
    assert.equal(p.read('media/doc.txt'), 'remote edit\n');
    assert.ok(!fs.existsSync(path.join(p.root, 'remote')), 'nothing restored outside the mapped folders');
    // The local winner it replaced is in the trash now, and can come back in turn.
    assert.match(await r.cmd('restore media/doc.txt'), /restored media\/doc\.txt/);
    assert.equal(p.read('media/doc.txt'), 'local edit\n');
    assert.equal(await r.close(), 0);
  });
});

describe('touched files', () => {
  test('apply records files whose stat moved but bytes did not, so the next scan does not hash them again', async () => {
    await s3.reset();
    const p = project({ 'media/a.txt': 'same bytes\n', 'media/b.txt': 'b\n' });
    const r = await open(p);
    assert.match(await r.cmd('apply'), /2 uploaded/);
    const when = new Date('2021-03-01T00:00:00Z');
    fs.utimesSync(path.join(p.root, 'media/a.txt'), when, when);
    assert.match(await r.cmd('scan'), /1 read and hashed/);
    assert.match(await r.cmd('apply'), /recording 1 unchanged path in the manifest/);
    assert.match(await r.cmd('scan'), /0 read and hashed/);
    assert.match(await r.cmd('apply'), /^nothing to apply$/m);
    await assertInSync(p);
    assert.equal(await r.close(), 0);
  });
});

describe('diff of hostile content', () => {
  test('escape sequences in an object are shown as ^[, never sent to the terminal', async () => {
    await s3.reset();
    const p = project({ 'media/t.txt': 'line one\n' });
    const r = await open(p);
    await r.cmd('apply');
    await s3.putRaw('media/t.txt', 'line one\n\x1b]0;pwned\x07\x1b[2Jhidden\n');
    await r.cmd('scan');
    const out = await r.cmd('diff media/t.txt');
    assert.match(out, /^-\^\[\]0;pwned\^G\^\[\[2Jhidden$/m);
    assert.ok(!out.includes('\x1b') && !out.includes('\x07'), JSON.stringify(out));
    assert.equal(await r.close(), 0);
  });
});
