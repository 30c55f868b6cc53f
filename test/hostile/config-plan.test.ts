// A malformed config file or a damaged or tampered plan file is refused before anything happens:
// one line on stderr, exit 2, and the root, the bucket and the manifest exactly as they were.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { TestS3 } from '../support/s3-server.js';
import { runCli, type CliResult } from '../support/harness.js';
import { treeDiff, useSandboxes, treeOf, type Sandbox } from './sandbox.js';

let s3: TestS3;
let box: Sandbox;
useSandboxes((x) => (s3 = x), (b) => (box = b));

const cli = (...args: string[]): Promise<CliResult> => runCli([...args, '--json'], { cwd: box.root, env: s3.env });
const bucket = async (): Promise<string[]> => (await s3.listAll()).map((o) => `${o.key} ${o.etag}`).sort();

/** Exit 2, one stderr line matching `why`, a JSON error event, and nothing changed anywhere. */
async function refused(args: string[], why: RegExp, label: string): Promise<string> {
  const tree = box.tree();
  const objects = await bucket();
  const r = await cli(...args);
  assert.equal(r.code, 2, `${label}: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `${label}: one line`);
  assert.match(lines[0]!, why, label);
  assert.doesNotMatch(r.stderr, /^\s+at /m, `${label}: no stack trace`);
  const error = r.events.find((e) => e['event'] === 'error');
  assert.equal(error?.['exitCode'], 2, label);
  assert.ok(!r.events.some((e) => e['event'] === 'file'), `${label}: no item ran`);
  const diff = treeDiff(tree, box.tree());
  assert.deepEqual([...diff.changed, ...diff.gone].filter((f) => !f.startsWith('project/manifests/default/logs')), [], `${label}: nothing changed on disk`);
  assert.deepEqual(await bucket(), objects, `${label}: nothing changed in the bucket`);
  return lines[0]!;
}

const PASSWORD = 'hunter2-' + crypto.randomBytes(6).toString('hex');

describe('malformed config files', () => {
  const CASES: [string, string, RegExp][] = [
    ['empty file', '', /config .*storage-sync\.config\.json: not valid JSON/],
    ['truncated', '{"mappings": [{"local": "media", ', /not valid JSON/],
    ['trailing comma', '{"conflict": "remote",}', /not valid JSON/],
    ['comments', '// settings\n{"conflict": "remote"}', /not valid JSON/],
    ['an array', '[{"local": "media", "remote": "media/"}]', /must be a JSON object/],
    ['null', 'null', /must be a JSON object/],
    ['a string', '"media"', /must be a JSON object/],
    ['unknown key', '{"mapings": []}', /unknown key "mapings"/],
    ['unknown nested key', '{"mappings": [{"local": "media", "remote": "media/", "delete": true}]}', /unknown key "mappings\[0\]\.delete"/],
    ['unknown credentials key', `{"credentials": {"password": "${PASSWORD}"}}`, /unknown key "credentials\.password"/],
    ['concurrency as a string', '{"concurrency": "8"}', /"concurrency" must be a positive integer/],
    ['concurrency zero', '{"concurrency": 0}', /"concurrency" must be a positive integer/],
    ['concurrency fractional', '{"concurrency": 1.5}', /"concurrency" must be a positive integer/],
    ['mappings as a string', '{"mappings": "media"}', /"mappings" must be a non-empty array/],
    ['mappings empty', '{"mappings": []}', /"mappings" must be a non-empty array/],
    ['mapping local a number', '{"mappings": [{"local": 5, "remote": "m/"}]}', /"mappings\[0\]\.local" must be a non-empty string/],
    ['mapping outside the root', '{"mappings": [{"local": "../elsewhere", "remote": "m/"}]}', /must be a folder inside the root/],
    ['mapping absolute', '{"mappings": [{"local": "/etc", "remote": "m/"}]}', /must be a folder inside the root/],
    ['exclude a string', '{"exclude": "*.tmp"}', /"exclude" must be an array of strings/],
    ['exclude with a number', '{"exclude": ["*.tmp", 1]}', /"exclude" must be an array of strings/],
    ['conflict unknown', '{"conflict": "sometimes"}', /"conflict" must be one of remote, local, newer, keep-both/],
    ['maxDelete words', '{"maxDelete": "lots"}', /"maxDelete" must be a count or a percentage/],
    ['manifestDir empty', '{"manifestDir": ""}', /"manifestDir" must be a non-empty string/],
    ['partSize a string', '{"partSize": "8MiB"}', /"partSize" must be a positive integer/],
    ['credentials a string', '{"credentials": "x"}', /"credentials" must be an object/],
    ['mssql a number', '{"credentials": {"mssql": 5}}', /"credentials\.mssql" must be a non-empty string/],
  ];
  test('each is exit 2 with a line naming the problem, and changes nothing', async () => {
    box.write('project/media/a.txt', 'a');
    await s3.putRaw('media/b.txt', 'b');
    for (const [label, text, why] of CASES) {
      box.write('project/storage-sync.config.json', text);
      for (const cmd of ['sync', 'plan']) await refused([cmd], why, `${cmd}: ${label}`);
    }
    await refused(['sync', '--config', 'missing.json'], /config .*missing\.json: not found/, 'missing --config');
  });

  test('a config that does not parse never echoes its text: the SQL password stays out of the error', async () => {
    box.write('project/media/a.txt', 'a');
    const texts = [
      `{"credentials": {"mssql": Server=db;User Id=sa;Password=${PASSWORD}}}`,
      `{"credentials": {"mssql": "Server=db;Password=${PASSWORD}" "oops"}}`,
      `{"credentials": {"mssql": "Password=${PASSWORD}\n"}}`,
      `{"credentials": {"mssql": Password=${PASSWORD}}}`,
      `{"credentials": {"mssql": "Password=${PASSWORD}"}, "colour": "${PASSWORD}"}`,
    ];
    for (const text of texts) {
      box.write('project/storage-sync.config.json', text);
      const line = await refused(['sync'], /config .*storage-sync\.config\.json: /, text);
      assert.ok(!line.includes(PASSWORD.slice(0, 4)) && !line.includes('Password='), `no part of the password: ${line}`);
    }
  });
});

describe('damaged or tampered plan files', () => {
  async function planned(): Promise<{ file: string; text: string }> {
    box.write('project/media/up.txt', 'to upload');
    box.write('project/media/keep.txt', 'keep');
    await s3.putRaw('media/down.txt', 'to download');
    const first = await runCli(['sync', '--json', '--exclude', 'up.txt', '--exclude', 'down.txt'], { cwd: box.root, env: s3.env });
    assert.equal(first.code, 0, first.stderr);
    const r = await cli('plan');
    assert.equal(r.code, 0, r.stderr);
    const file = String(r.events.find((e) => e['event'] === 'plan-saved')?.['file']);
    return { file, text: fs.readFileSync(file, 'utf8') };
  }

  /** An edit that also recomputes the plain SHA-256, as anyone editing the file can. */
  function resealed(text: string, edit: (pf: Record<string, any>) => void): string {
    const { sha256: _drop, ...body } = JSON.parse(text) as Record<string, any>;
    edit(body);
    const sha256 = crypto.createHash('sha256').update(JSON.stringify(body)).digest('hex');
    return JSON.stringify({ ...body, sha256 }, null, 1);
  }

  test('edited, re-digested, truncated, wrong kind or format: refused with exit 2, nothing applied', async () => {
    const { file, text } = await planned();
    const pf = JSON.parse(text) as { sha256: string };
    const cases: [string, string, RegExp][] = [
      ['edited item', text.replace('"media/up.txt"', '"media/../up.txt"'), /digest mismatch/],
      ['edited digest', text.replace(pf.sha256, pf.sha256.replace(/^./, (c) => (c === '0' ? '1' : '0'))), /digest mismatch/],
      ['digest removed', JSON.stringify({ ...JSON.parse(text), sha256: undefined }), /digest mismatch/],
      ['truncated', text.slice(0, Math.floor(text.length / 2)), /not valid JSON/],
      ['empty', '', /not valid JSON/],
      ['an array', '[]', /not a storage-sync plan/],
      ['null', 'null', /not a plan/],
      ['wrong kind', text.replace('"storage-sync-plan"', '"rclone-plan"'), /not a storage-sync plan/],
      ['wrong format', text.replace(/"format": ?1/, '"format": 2'), /format 2 is not supported/],
      ['unknown action, re-digested', resealed(text, (b) => (b.plan.items[0].action = 'format-disk')), /unknown action "format-disk"/],
      ['items not an array, re-digested', resealed(text, (b) => (b.plan.items = {})), /malformed plan body/],
      ['item without a key, re-digested', resealed(text, (b) => delete b.plan.items[0].key), /lacks path, key, action or mapping/],
    ];
    for (const [label, body, why] of cases) {
      fs.writeFileSync(file, body);
      await refused(['apply', file], why, label);
    }
    fs.writeFileSync(file, text);
    const ok = await cli('apply', file);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.summary?.uploaded, 1);
    assert.equal(ok.summary?.downloaded, 1);
  });

  test('a re-digested plan whose items point outside their mapping is refused, never applied', async () => {
    const { file, text } = await planned();
    box.write('victim.txt', 'outside the root');
    const keepEtag = (await s3.listAll()).find((o) => o.key === 'media/keep.txt')!.etag;
    const cases: [string, (b: Record<string, any>) => void][] = [
      ['download to a path outside the root', (b) => {
        const it = b.plan.items.find((i: any) => i.action === 'download');
        it.path = '../victim.txt';
      }],
      ['upload to another key', (b) => {
        const it = b.plan.items.find((i: any) => i.action === 'upload');
        it.key = 'media/keep.txt';
        it.remote = { etag: keepEtag, size: 4, lastModified: 0 };
      }],
      ['delete-local of a file outside the root', (b) => {
        b.plan.items.push({ path: '../victim.txt', key: 'media/../victim.txt', mapping: 0, action: 'delete-local', reason: 'remote-deleted', bytes: 0 });
      }],
      ['delete-remote of a key under another prefix', (b) => {
        b.plan.items.push({ path: 'media/keep.txt', key: 'static/keep.txt', mapping: 1, action: 'delete-remote', reason: 'local-deleted', bytes: 0 });
      }],
      ['mapping out of range', (b) => (b.plan.items[0].mapping = 7)],
    ];
    const victim = fs.readFileSync(path.join(box.dir, 'victim.txt'), 'utf8');
    for (const [label, edit] of cases) {
      fs.writeFileSync(file, resealed(text, edit));
      const before = treeOf(box.dir);
      const objects = await bucket();
      const r = await cli('apply', file);
      assert.ok(r.code === 2, `${label}: exit ${r.code} ${r.stderr}${r.stdout}`);
      assert.match(r.stderr, /^storage-sync: plan .*: item \d+\b/, label);
      assert.deepEqual(treeDiff(before, treeOf(box.dir)).changed.filter((f) => !f.includes('/logs/')), [], label);
      assert.deepEqual(await bucket(), objects, label);
      assert.equal(fs.readFileSync(path.join(box.dir, 'victim.txt'), 'utf8'), victim);
    }
  });
});
