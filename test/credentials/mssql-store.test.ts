// Credentials in SQL Server, against the TDS stand-in (or a real server: STORAGE_SYNC_TEST_MSSQL,
// see sql-server.ts): the creds commands, the errors users meet, and a sync whose credentials come
// only from SQL Server. Everything printed is kept and searched for the secrets at the end.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { main } from '../../src/cli/main.js';
import { EnvSource } from '../../src/credentials/env-source.js';
import { MssqlSource, MssqlStore, KNOWN_KEYS } from '../../src/credentials/mssql-store.js';
import { resolveCredentials } from '../../src/credentials/resolve.js';
import { captureOutput, makeProject, type Project } from '../support/harness.js';
import { startS3Server, type TestS3 } from '../support/s3-server.js';
import { startTdsServer } from '../support/tds/server.js';
import { startSql, type TestSql } from './sql-server.js';

const run = randomBytes(4).toString('hex');
const SECRET = `wJalrXUtnFEMI-K7MDENG-${randomBytes(8).toString('hex')}`;
const ACCESS_KEY = 'AKIAIOSFODNN7EXAMPLE';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

type FakeStdin = PassThrough & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };

describe('credentials in SQL Server', () => {
  let db: TestSql;
  let s3: TestS3;
  let project: Project;
  const profiles = new Set<string>();
  /** Every stdout and stderr of the file, except runs that were asked to show a secret. */
  const captured: string[] = [];

  const profile = (name: string): string => {
    const p = `${name}-${run}`;
    profiles.add(p);
    return p;
  };

  async function cli(args: string[], opts: { env?: Record<string, string>; stdin?: FakeStdin; showsSecret?: boolean } = {}): Promise<Result> {
    const o = captureOutput();
    const env = opts.env ?? { STORAGE_SYNC_MSSQL: db.connectionString };
    const io = { stdout: o.out, stderr: o.err, env, cwd: project.root, signal: new AbortController().signal, ...(opts.stdin ? { stdin: opts.stdin } : {}) };
    const code = await main(args, io);
    const [stdout, stderr] = [o.stdout(), o.stderr()];
    if (!opts.showsSecret) captured.push(stdout, stderr);
    return { code, stdout, stderr };
  }

  async function assertNoConnectionLeft(): Promise<void> {
    assert.equal(await db.openConnections(), 0, 'every pooled connection is closed after the command');
  }

  function assertOneLineExit2(r: Result): void {
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }

  before(async () => {
    db = await startSql();
    s3 = await startS3Server();
    project = makeProject();
    const init = await cli(['creds', 'init']);
    assert.equal(init.code, 0, init.stderr);
  });

  after(async () => {
    // Leave a real server as it was found (the stand-in is thrown away anyway).
    if (db.real) {
      const store = new MssqlStore({ connectionString: db.connectionString, origin: 'STORAGE_SYNC_MSSQL' });
      for (const p of profiles) for (const k of KNOWN_KEYS) await store.delete(p, k).catch(() => false);
      await store.close();
    }
    await db.close();
    await s3.stop();
    project.cleanup();
  });

  it('init is idempotent: a second init keeps what is stored', async () => {
    const p = profile('init');
    assert.equal((await cli(['creds', 'set', 'AWS_STORAGE_BUCKET_NAME', 'kept', '--profile', p])).code, 0);
    const again = await cli(['creds', 'init']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /dbo\.storage_credentials is ready/);
    const get = await cli(['creds', 'get', 'AWS_STORAGE_BUCKET_NAME', '--profile', p]);
    assert.equal(get.stdout, 'kept\n');
    await assertNoConnectionLeft();
  });

  it('set, get (masked unless --show-secret), list and delete', async () => {
    const p = profile('crud');
    const values: Record<string, string> = {
      AWS_ACCESS_KEY_ID: ACCESS_KEY,
      AWS_SECRET_ACCESS_KEY: SECRET,
      AWS_S3_ENDPOINT_URL: 'https://acc.r2.cloudflarestorage.com',
      AWS_STORAGE_BUCKET_NAME: 'site-media',
    };
    for (const [k, v] of Object.entries(values)) {
      const r = await cli(['creds', 'set', k, v, '--profile', p]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${k} set for profile "${p}"\n`);
    }
    // an update replaces the value (UPDATE first, INSERT only when no row)
    assert.equal((await cli(['creds', 'set', 'AWS_STORAGE_BUCKET_NAME', 'site-media-2', '--profile', p])).code, 0);

    assert.equal((await cli(['creds', 'get', 'AWS_SECRET_ACCESS_KEY', '--profile', p])).stdout, '********\n');
    assert.equal((await cli(['creds', 'get', 'AWS_ACCESS_KEY_ID', '--profile', p])).stdout, '****MPLE\n');
    assert.equal((await cli(['creds', 'get', 'AWS_S3_ENDPOINT_URL', '--profile', p])).stdout, 'https://acc.r2.cloudflarestorage.com\n');
    assert.equal((await cli(['creds', 'get', 'AWS_STORAGE_BUCKET_NAME', '--profile', p])).stdout, 'site-media-2\n');
    const shown = await cli(['creds', 'get', 'AWS_SECRET_ACCESS_KEY', '--profile', p, '--show-secret'], { showsSecret: true });
    assert.equal(shown.stdout, `${SECRET}\n`);

    const getJson = JSON.parse((await cli(['creds', 'get', 'AWS_SECRET_ACCESS_KEY', '--profile', p, '--json'])).stdout) as Record<string, unknown>;
    assert.equal(getJson['value'], '********');
    assert.equal(getJson['masked'], true);
    assert.match(String(getJson['updatedAt']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    const list = await cli(['creds', 'list', '--profile', p]);
    assert.equal(list.code, 0, list.stderr);
    const lines = list.stdout.trim().split('\n');
    assert.deepEqual(
      lines.map((l) => l.split(/\s+/).slice(0, 2)),
      [
        ['AWS_ACCESS_KEY_ID', '****MPLE'],
        ['AWS_S3_ENDPOINT_URL', 'https://acc.r2.cloudflarestorage.com'],
        ['AWS_SECRET_ACCESS_KEY', '********'],
        ['AWS_STORAGE_BUCKET_NAME', 'site-media-2'],
      ],
    );
    for (const l of lines) assert.match(l, /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const listJson = JSON.parse((await cli(['creds', 'list', '--profile', p, '--json'])).stdout) as { credentials: { name: string; value: string }[]; missing: string[] };
    assert.equal(listJson.credentials.length, 4);
    assert.deepEqual(listJson.missing, []);

    const del = await cli(['creds', 'delete', 'AWS_SECRET_ACCESS_KEY', '--profile', p]);
    assert.equal(del.stdout, `AWS_SECRET_ACCESS_KEY deleted from profile "${p}"\n`);
    const gone = await cli(['creds', 'get', 'AWS_SECRET_ACCESS_KEY', '--profile', p]);
    assertOneLineExit2(gone);
    assert.match(gone.stderr, new RegExp(`AWS_SECRET_ACCESS_KEY is not set for profile "${p}"`));
    const again = await cli(['creds', 'delete', 'AWS_SECRET_ACCESS_KEY', '--profile', p, '--json']);
    assert.equal(again.code, 0);
    assert.equal((JSON.parse(again.stdout) as { deleted: boolean }).deleted, false);
    assert.match((await cli(['creds', 'list', '--profile', p])).stdout, /^missing: AWS_SECRET_ACCESS_KEY$/m);
    await assertNoConnectionLeft();
  });

  it('two profiles are kept apart', async () => {
    const [a, b] = [profile('a'), profile('b')];
    await cli(['creds', 'set', 'AWS_STORAGE_BUCKET_NAME', 'bucket-a', '--profile', a]);
    await cli(['creds', 'set', 'AWS_STORAGE_BUCKET_NAME', 'bucket-b', '--profile', b]);
    await cli(['creds', 'set', 'AWS_S3_REGION_NAME', 'eu', '--profile', b]);
    assert.equal((await cli(['creds', 'get', 'AWS_STORAGE_BUCKET_NAME', '--profile', a])).stdout, 'bucket-a\n');
    assert.equal((await cli(['creds', 'get', 'AWS_STORAGE_BUCKET_NAME', '--profile', b])).stdout, 'bucket-b\n');
    assert.equal((await cli(['creds', 'get', 'AWS_S3_REGION_NAME', '--profile', a])).code, 2);
    await cli(['creds', 'delete', 'AWS_STORAGE_BUCKET_NAME', '--profile', a]);
    assert.equal((await cli(['creds', 'get', 'AWS_STORAGE_BUCKET_NAME', '--profile', b])).stdout, 'bucket-b\n');
  });

  it('a profile name full of quotes and semicolons is stored and read back literally', async () => {
    const nasty = profile(`it's"; DROP TABLE dbo.storage_credentials; --[x]'`);
    const value = `va'l"ue; DELETE FROM dbo.storage_credentials; --`;
    const set = await cli(['creds', 'set', 'AWS_STORAGE_BUCKET_NAME', value, '--profile', nasty]);
    assert.equal(set.code, 0, set.stderr);
    assert.equal((await cli(['creds', 'get', 'AWS_STORAGE_BUCKET_NAME', '--profile', nasty])).stdout, `${value}\n`);
    const listed = JSON.parse((await cli(['creds', 'list', '--profile', nasty, '--json'])).stdout) as { profile: string; credentials: { value: string }[] };
    assert.equal(listed.profile, nasty);
    assert.deepEqual(listed.credentials.map((c) => c.value), [value]);
    // nothing was executed: the table and the other profiles are still there
    const store = new MssqlStore({ connectionString: db.connectionString, origin: 'STORAGE_SYNC_MSSQL' });
    try {
      assert.equal((await store.get(nasty, 'AWS_STORAGE_BUCKET_NAME'))?.value, value);
      assert.equal((await store.get(`init-${run}`, 'AWS_STORAGE_BUCKET_NAME'))?.value, 'kept');
      // a profile that differs only by the quote is another profile
      assert.equal(await store.get(nasty.replace(`'`, ''), 'AWS_STORAGE_BUCKET_NAME'), undefined);
    } finally {
      await store.close();
    }
    // On the stand-in, see it on the wire: the SQL text is always one of the fixed statements,
    // and the user's strings travel only as NVARCHAR parameters.
    if (db.requests) {
      const reqs = db.requests();
      const mine = reqs.filter((r) => r.params.some((p) => p.value === nasty));
      assert.ok(mine.length >= 3);
      for (const r of mine) {
        assert.equal(r.kind, 'rpc');
        assert.ok(!r.sql.includes(nasty) && !r.sql.includes(value) && !r.sql.includes("it's"), r.sql);
        assert.match(r.sql, /^(SELECT|UPDATE|INSERT INTO|DELETE FROM) .*dbo\.storage_credentials/);
        for (const p of r.params) assert.match(p.type, /^nvarchar/i, `${p.name}: ${p.type}`);
      }
      assert.ok(reqs.some((r) => r.params.some((p) => p.name.replace(/^@/, '') === 'value' && p.value === value)));
    }
  });

  it('set racing another writer of the same new key (PK violation 2627): UPDATE again, no error, last writer wins', async () => {
    const p = profile('race');
    const a = new MssqlStore({ connectionString: db.connectionString, origin: 'STORAGE_SYNC_MSSQL' });
    const b = new MssqlStore({ connectionString: db.connectionString, origin: 'STORAGE_SYNC_MSSQL' });
    try {
      // The other writer inserts between a's UPDATE (0 rows) and a's INSERT.
      const internals = a as unknown as { query: (text: string, params: unknown) => Promise<unknown> };
      const query = internals.query.bind(a);
      const seen: string[] = [];
      internals.query = async (text, params) => {
        seen.push(text.split(' ')[0]!);
        if (text.startsWith('INSERT') && seen.filter((t) => t === 'INSERT').length === 1) await b.set(p, 'AWS_S3_REGION_NAME', 'from-b');
        return query(text, params);
      };
      await a.set(p, 'AWS_S3_REGION_NAME', 'from-a');
      assert.deepEqual(seen, ['UPDATE', 'INSERT', 'UPDATE']);
      assert.equal((await b.get(p, 'AWS_S3_REGION_NAME'))?.value, 'from-a');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('set reads the value from a pipe (one trailing newline dropped) or a hidden prompt (no echo)', async () => {
    const p = profile('stdin');
    const pipe: FakeStdin = new PassThrough();
    pipe.end(`${SECRET}\n`);
    const piped = await cli(['creds', 'set', 'AWS_SECRET_ACCESS_KEY', '--profile', p], { stdin: pipe });
    assert.equal(piped.code, 0, piped.stderr);

    const tty: FakeStdin = Object.assign(new PassThrough(), { isTTY: true });
    const modes: boolean[] = [];
    tty.setRawMode = (raw: boolean) => modes.push(raw);
    const pending = cli(['creds', 'set', 'AWS_ACCESS_KEY_ID', '--profile', p], { stdin: tty });
    // typed one key at a time, with a mistake corrected by backspace
    for (const ch of [...'AKIAXX\u007fEXAMPLE99', '\r']) {
      await new Promise((r) => setImmediate(r));
      tty.write(ch);
    }
    const typed = await pending;
    assert.equal(typed.code, 0, typed.stderr);
    assert.deepEqual(modes, [true, false]);
    assert.equal(typed.stderr, 'AWS_ACCESS_KEY_ID (input hidden): \n');

    const store = new MssqlStore({ connectionString: db.connectionString, origin: 'STORAGE_SYNC_MSSQL' });
    try {
      assert.equal((await store.get(p, 'AWS_SECRET_ACCESS_KEY'))?.value, SECRET);
      assert.equal((await store.get(p, 'AWS_ACCESS_KEY_ID'))?.value, 'AKIAXEXAMPLE99');
    } finally {
      await store.close();
    }
  });

  it('at the hidden prompt, arrow keys and bracketed-paste markers are not part of the value', async () => {
    const p = profile('keys');
    const tty: FakeStdin = Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => true });
    const pending = cli(['creds', 'set', 'AWS_ACCESS_KEY_ID', '--profile', p], { stdin: tty });
    for (const chunk of ['AKIA', '\u001b[D', '\u001bOH', '\u001b[200~PASTED\u001b[201~', '\u001b[3~', 'Z9', '\r']) {
      await new Promise((r) => setImmediate(r));
      tty.write(chunk);
    }
    const typed = await pending;
    assert.equal(typed.code, 0, typed.stderr);
    const store = new MssqlStore({ connectionString: db.connectionString, origin: 'STORAGE_SYNC_MSSQL' });
    try {
      assert.equal((await store.get(p, 'AWS_ACCESS_KEY_ID'))?.value, 'AKIAPASTEDZ9');
    } finally {
      await store.close();
    }
  });

  it('wrong password: login failed (18456), one line, neither password in it', async () => {
    const wrong = `Wrong-${randomBytes(6).toString('hex')}`;
    const r = await cli(['creds', 'list'], { env: { STORAGE_SYNC_MSSQL: db.withPassword(wrong) } });
    assertOneLineExit2(r);
    assert.match(r.stderr, new RegExp(`login failed for user "${db.user}" \\(error 18456\\): check User Id and Password in STORAGE_SYNC_MSSQL`, 'i'));
    assert.ok(!r.stderr.includes(wrong));
    const sync = await cli(['sync', '--profile', profile('crud')], { env: { STORAGE_SYNC_MSSQL: db.withPassword(wrong) } });
    assertOneLineExit2(sync);
    assert.match(sync.stderr, /error 18456/);
    await assertNoConnectionLeft();
  });

  it('a database that does not exist (4060): say so, and what to run after creating it', async () => {
    const r = await cli(['creds', 'list'], { env: { STORAGE_SYNC_MSSQL: db.withDatabase(`nodb_${run}`) } });
    assertOneLineExit2(r);
    assert.match(r.stderr, new RegExp(`database nodb_${run}: cannot open the database \\(error 4060\\).*storage-sync creds init`));
  });

  it('an unencrypted server when Encrypt is left at its default: refused before the login, with the way out', async () => {
    // Always the stand-in: a real server supports encryption.
    const plain = await startTdsServer({ password: db.real ? 'Plain-Pw-1' : db.password });
    try {
      const env = { STORAGE_SYNC_MSSQL: plain.connectionString.replace(/;Encrypt=false/i, '') };
      const r = await cli(['creds', 'list'], { env });
      assertOneLineExit2(r);
      assert.match(r.stderr, /does not support encryption, and the connection string \(STORAGE_SYNC_MSSQL\) asks for it \(Encrypt=true is the default\): for a trusted local server only, add Encrypt=false/);
      await plain.idle();
      assert.equal(plain.connections(), 0);
    } finally {
      await plain.close();
    }
  });

  it('the table missing: every command says to run `storage-sync creds init`; init brings it back', async () => {
    await db.dropTable();
    const list = await cli(['creds', 'list']);
    assertOneLineExit2(list);
    assert.match(list.stderr, /has no table dbo\.storage_credentials: run `storage-sync creds init`$/m);
    const set = await cli(['creds', 'set', 'AWS_S3_REGION_NAME', 'auto']);
    assertOneLineExit2(set);
    assert.match(set.stderr, /run `storage-sync creds init`/);
    const sync = await cli(['sync', '--json']);
    assertOneLineExit2(sync);
    assert.match(sync.stderr, /run `storage-sync creds init`/);
    const init = await cli(['creds', 'init']);
    assert.equal(init.code, 0, init.stderr);
    const empty = await cli(['creds', 'list']);
    assert.equal(empty.code, 0, empty.stderr);
    assert.match(empty.stdout, /^no credentials for profile "default"/);
    await assertNoConnectionLeft();
  });

  async function storeS3Credentials(p: string, overrides: Record<string, string | undefined> = {}): Promise<void> {
    const values: Record<string, string | undefined> = {
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      AWS_S3_ENDPOINT_URL: s3.endpoint,
      AWS_STORAGE_BUCKET_NAME: s3.bucket,
      AWS_S3_FORCE_PATH_STYLE: String(s3.forcePathStyle),
      ...overrides,
    };
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) continue;
      const r = await cli(['creds', 'set', k, '--profile', p], { stdin: Object.assign(new PassThrough(), {}).end(v) as FakeStdin });
      assert.equal(r.code, 0, r.stderr);
    }
  }

  it('missing keys: the error names them and where it looked', async () => {
    const p = profile('partial');
    await storeS3Credentials(p, { AWS_SECRET_ACCESS_KEY: undefined, AWS_STORAGE_BUCKET_NAME: undefined });
    const r = await cli(['sync', '--profile', p]);
    assertOneLineExit2(r);
    assert.match(
      r.stderr,
      new RegExp(`missing credentials for profile "${p}": AWS_SECRET_ACCESS_KEY, AWS_STORAGE_BUCKET_NAME \\(looked in: environment, SQL Server dbo\\.storage_credentials at `),
    );
    await assertNoConnectionLeft();
  });

  it('the environment overrides one key, SQL Server gives the rest', async () => {
    const p = profile('override');
    await storeS3Credentials(p, { AWS_STORAGE_BUCKET_NAME: `no-such-bucket-${run}` });
    const store = new MssqlStore({ connectionString: db.connectionString, origin: 'STORAGE_SYNC_MSSQL' });
    const source = new MssqlSource(store);
    try {
      const c = await resolveCredentials(p, [new EnvSource({ AWS_STORAGE_BUCKET_NAME: s3.bucket }), source]);
      assert.equal(c.bucket, s3.bucket);
      assert.equal(c.secretAccessKey, s3.secretAccessKey);
      assert.equal(c.endpoint, s3.endpoint);
    } finally {
      await source.close();
    }
    await s3.reset();
    project.write('staticfiles/override.txt', 'override');
    const r = await cli(['sync', '--profile', p, '--json'], { env: { STORAGE_SYNC_MSSQL: db.connectionString, AWS_STORAGE_BUCKET_NAME: s3.bucket } });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((await s3.listAll()).map((o) => o.key), ['static/override.txt']);
    project.remove('staticfiles/override.txt');
  });

  it('a full sync --profile P whose credentials come only from SQL Server; the connection is closed after', async () => {
    const p = profile('sync');
    await storeS3Credentials(p);
    await s3.reset();
    project.write('staticfiles/css/app.css', 'body{}');
    project.write('media/up.txt', 'uploaded');
    await s3.putRaw('media/down.txt', 'downloaded');
    const logFile = path.join(project.root, 'run.log');
    const env = { STORAGE_SYNC_MSSQL: db.connectionString }; // no AWS_* at all
    const r = await cli(['sync', '--profile', p, '--json', '--log-file', logFile], { env });
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, number>;
    assert.equal(summary['uploaded'], 2);
    assert.equal(summary['downloaded'], 1);
    assert.deepEqual((await s3.listAll()).map((o) => o.key).sort(), ['media/down.txt', 'media/up.txt', 'static/css/app.css']);
    assert.equal(project.read('media/down.txt'), 'downloaded');
    assert.ok(fs.existsSync(logFile));
    await assertNoConnectionLeft();

    const human = await cli(['sync', '--profile', p], { env });
    assert.equal(human.code, 0, human.stderr);
    await assertNoConnectionLeft();
  });

  it('the REPL on credentials from SQL Server: a secret pasted at its prompt stays off its screen and out of its history file', async () => {
    const p = profile('repl');
    await storeS3Credentials(p);
    await s3.reset();
    const input = new PassThrough();
    for (const line of [s3.secretAccessKey, `explain ${db.password}`, 'status']) input.write(line + '\n');
    input.end();
    const r = await cli(['repl', '--profile', p], { env: { STORAGE_SYNC_MSSQL: db.connectionString }, stdin: input as FakeStdin });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /error: unknown command "\*\*\*"/);
    assert.match(r.stdout, /error: \*\*\* is not in the last scan/);
    const history = fs.readFileSync(path.join(project.root, 'manifests', p, 'repl_history'), 'utf8');
    assert.match(history, /^status$/m, 'the history was written');
    for (const secret of [s3.secretAccessKey, db.password]) assert.ok(!history.includes(secret) && !r.stdout.includes(secret), 'no secret in the history file or on screen');
    await assertNoConnectionLeft();
  });

  it('no secret anywhere: not the secret key, not the SQL password, in any output, log or file', () => {
    const secrets = [SECRET, s3.secretAccessKey, db.password].filter((s) => s.length >= 6);
    const files: string[] = [];
    const walk = (dir: string): void => {
      for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
        const abs = path.join(dir, d.name);
        if (d.isDirectory()) walk(abs);
        else if (d.isFile() && !d.name.endsWith('.mdb')) files.push(abs); // the LMDB map is sparse and large
      }
    };
    walk(project.root);
    assert.ok(files.some((f) => f.endsWith('.ndjson')), 'the run logs were written');
    const texts = [...captured, ...files.map((f) => fs.readFileSync(f, 'utf8'))];
    assert.ok(captured.length > 40);
    for (const secret of secrets) {
      const hit = texts.find((t) => t.includes(secret));
      assert.equal(hit, undefined, `a secret leaked: ${hit?.slice(0, 200)}`);
    }
  });
});
