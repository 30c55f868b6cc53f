// The SQL Server connection without a SQL Server: the config built from a connection string (safe
// defaults), where the string comes from, and the errors of a server that is not there.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { explainMssqlError, mssqlConfig, mssqlTarget, redactConnectionString, DEFAULT_CONNECT_TIMEOUT_MS } from '../../src/credentials/mssql-config.js';
import { MssqlStore } from '../../src/credentials/mssql-store.js';
import { maskValue } from '../../src/cli/creds-cmd.js';
import { makeProject, runCli, type CliResult } from '../support/harness.js';
import { startS3Server } from '../support/s3-server.js';

const PASSWORD = 'Sql-Pw-9f3c1e77';

/** A port nobody listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function assertOneLineNoSecret(r: CliResult): void {
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^storage-sync: /);
  for (const out of [r.stdout, r.stderr]) assert.ok(!out.includes(PASSWORD), `password leaked: ${out}`);
}

describe('mssql config from a connection string', () => {
  it('encrypts and validates the certificate unless the string says otherwise; one pooled connection; 15 s connect timeout', () => {
    const cfg = mssqlConfig(`Server=db.example.com,1444;Database=storage;User Id=sync;Password=${PASSWORD}`);
    assert.equal(cfg.server, 'db.example.com');
    assert.equal(cfg.port, 1444);
    assert.equal(cfg.database, 'storage');
    assert.equal(cfg.user, 'sync');
    assert.equal(cfg.password, PASSWORD);
    assert.equal(cfg.options?.encrypt, true);
    assert.equal(cfg.options?.trustServerCertificate, false);
    assert.equal(cfg.connectionTimeout, DEFAULT_CONNECT_TIMEOUT_MS);
    assert.equal(DEFAULT_CONNECT_TIMEOUT_MS, 15_000);
    assert.equal(cfg.pool?.max, 1);
  });

  it('keeps what the string says: Encrypt=false, TrustServerCertificate=true, Connect Timeout, a quoted password', () => {
    const cfg = mssqlConfig('Server=tcp:127.0.0.1,1433;Initial Catalog=st;UID=sa;PWD="a;b=c";Encrypt=false;TrustServerCertificate=true;Connect Timeout=3');
    assert.equal(cfg.options?.encrypt, false);
    assert.equal(cfg.options?.trustServerCertificate, true);
    assert.equal(cfg.connectionTimeout, 3000);
    assert.equal(cfg.password, 'a;b=c');
    assert.equal(cfg.database, 'st');
    assert.equal(mssqlConfig('Server=h;Encrypt=yes;Encrypt=true').options?.encrypt, true);
  });

  it('a string without a server is a usage error that does not quote the password', () => {
    assert.throws(
      () => mssqlConfig(`Database=x;Password=${PASSWORD}`),
      (e: Error & { exitCode?: number }) => e.exitCode === 2 && /no Server/.test(e.message) && !e.message.includes(PASSWORD),
    );
  });

  it('redacts Password= and Pwd= values, quoted or not', () => {
    assert.equal(redactConnectionString('Server=h;Password=abc;User Id=u'), 'Server=h;Password=***;User Id=u');
    assert.equal(redactConnectionString('pwd = "x;y";Server=h'), 'pwd = ***;Server=h');
    assert.equal(redactConnectionString("PASSWORD='it''s';a=b"), 'PASSWORD=***;a=b');
    assert.equal(redactConnectionString('Password={a}}b};x=1'), 'Password=***;x=1');
  });

  it('a value too long for a narrower column (error 2628) is not quoted back: it may be the secret key', () => {
    const cfg = mssqlConfig('Server=db,1433;Database=app;User Id=sa;Password=pw1234;Encrypt=false');
    const secret = 'wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY';
    const err = Object.assign(new Error(`String or binary data would be truncated in table 'app.dbo.storage_credentials', column 'value'. Truncated value: '${secret.slice(0, 20)}'.`), { number: 2628 });
    const e = explainMssqlError(err, cfg, 'STORAGE_SYNC_MSSQL', { numbers: [] }, ['pw1234']);
    assert.equal(e.exitCode, 2);
    assert.match(e.message, /would be truncated .*column 'value'\. Truncated value: '\*\*\*'/);
    assert.ok(!e.message.includes(secret.slice(0, 8)), e.message);
  });

  it('takes STORAGE_SYNC_MSSQL before the config, and nothing when neither is set', () => {
    assert.deepEqual(mssqlTarget({ STORAGE_SYNC_MSSQL: 'Server=env' }, 'Server=cfg'), { connectionString: 'Server=env', origin: 'STORAGE_SYNC_MSSQL' });
    assert.deepEqual(mssqlTarget({ STORAGE_SYNC_MSSQL: '' }, 'Server=cfg'), { connectionString: 'Server=cfg', origin: 'credentials.mssql in the config' });
    assert.equal(mssqlTarget({}, undefined), undefined);
  });

  it('masks nothing but the two keys: no character of the secret key, the last 4 of a long access key id', () => {
    assert.equal(maskValue('AWS_SECRET_ACCESS_KEY', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'), '********');
    assert.equal(maskValue('AWS_SECRET_ACCESS_KEY', 'x'), '********');
    assert.equal(maskValue('AWS_ACCESS_KEY_ID', 'AKIAIOSFODNN7EXAMPLE'), '****MPLE');
    assert.equal(maskValue('AWS_ACCESS_KEY_ID', 'short'), '****');
    assert.equal(maskValue('AWS_S3_ENDPOINT_URL', 'https://acc.r2.cloudflarestorage.com'), 'https://acc.r2.cloudflarestorage.com');
    assert.equal(maskValue('AWS_STORAGE_BUCKET_NAME', 'site-media'), 'site-media');
  });
});

describe('a SQL Server that is not there', () => {
  const project = makeProject();
  const silent: net.Socket[] = [];
  const closed: Promise<unknown>[] = [];
  // Reads and drops what it gets (a paused socket would never see the client's FIN), answers nothing.
  const listener = net.createServer((s) => {
    silent.push(s);
    closed.push(new Promise((r) => s.once('close', r)));
    s.resume();
  });
  after(async () => {
    for (const s of silent) s.destroy();
    await new Promise<void>((r) => listener.close(() => r()));
    project.cleanup();
  });

  it('connection refused: one line naming host and port, exit 2, for creds and for sync', async () => {
    const port = await closedPort();
    const env = { STORAGE_SYNC_MSSQL: `Server=127.0.0.1,${port};Database=storage;User Id=sa;Password=${PASSWORD};Encrypt=false` };
    const creds = await runCli(['creds', 'list'], { cwd: project.root, env });
    assertOneLineNoSecret(creds);
    assert.match(creds.stderr, new RegExp(`cannot reach SQL Server 127\\.0\\.0\\.1:${port} database storage: connection refused`));
    const sync = await runCli(['sync', '--json'], { cwd: project.root, env });
    assertOneLineNoSecret(sync);
    assert.match(sync.stderr, /connection refused/);
    const ev = sync.events.find((e) => e['event'] === 'error');
    assert.equal(ev?.['exitCode'], 2);
  });

  it('the environment alone is enough: SQL Server is not contacted when every key is set there', async () => {
    const port = await closedPort();
    const s3 = await startS3Server();
    try {
      project.write('staticfiles/a.txt', 'a');
      const env = { STORAGE_SYNC_MSSQL: `Server=127.0.0.1,${port};Database=storage;User Id=sa;Password=${PASSWORD}`, ...s3.env };
      const r = await runCli(['sync', '--json'], { cwd: project.root, env });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual((await s3.listAll()).map((o) => o.key), ['static/a.txt']);
    } finally {
      await s3.stop();
    }
  });

  it('connect timeout against a listener that never answers: one line with the timeout, and the socket is let go', async () => {
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    const port = (listener.address() as net.AddressInfo).port;
    const env = { STORAGE_SYNC_MSSQL: `Server=127.0.0.1,${port};Database=storage;User Id=sa;Password=${PASSWORD};Connect Timeout=1` };
    const r = await runCli(['creds', 'get', 'AWS_ACCESS_KEY_ID'], { cwd: project.root, env });
    assertOneLineNoSecret(r);
    assert.match(r.stderr, new RegExp(`cannot reach SQL Server 127\\.0\\.0\\.1:${port} database storage: no answer within 1 s \\(Connect Timeout in STORAGE_SYNC_MSSQL\\)`));
    assert.ok(silent.length >= 1, 'the client did connect');
    await Promise.all(closed);
  });

  it('host not found', async () => {
    const env = { STORAGE_SYNC_MSSQL: `Server=no-such-host.invalid;Database=storage;User Id=sa;Password=${PASSWORD}` };
    const r = await runCli(['creds', 'list'], { cwd: project.root, env });
    assertOneLineNoSecret(r);
    assert.match(r.stderr, /host "no-such-host\.invalid" not found/);
  });

  it('the config file\'s credentials.mssql is used, and STORAGE_SYNC_MSSQL wins over it', async () => {
    const [cfgPort, envPort] = [await closedPort(), await closedPort()];
    fs.writeFileSync(
      path.join(project.root, 'storage-sync.config.json'),
      JSON.stringify({ credentials: { mssql: `Server=127.0.0.1,${cfgPort};Database=fromconfig;User Id=sa;Password=${PASSWORD}` } }),
    );
    try {
      const fromConfig = await runCli(['creds', 'list'], { cwd: project.root, env: {} });
      assertOneLineNoSecret(fromConfig);
      assert.match(fromConfig.stderr, new RegExp(`127\\.0\\.0\\.1:${cfgPort} database fromconfig`));
      const env = { STORAGE_SYNC_MSSQL: `Server=127.0.0.1,${envPort};Database=fromenv;User Id=sa;Password=${PASSWORD}` };
      const fromEnv = await runCli(['creds', 'list'], { cwd: project.root, env });
      assertOneLineNoSecret(fromEnv);
      assert.match(fromEnv.stderr, new RegExp(`127\\.0\\.0\\.1:${envPort} database fromenv`));
    } finally {
      fs.rmSync(path.join(project.root, 'storage-sync.config.json'));
    }
  });

  it('no connection string at all: creds says where to put one; usage mistakes come before any connection', async () => {
    const none = await runCli(['creds', 'list'], { cwd: project.root, env: {} });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /set STORAGE_SYNC_MSSQL/);
    const port = await closedPort();
    const env = { STORAGE_SYNC_MSSQL: `Server=127.0.0.1,${port};Password=${PASSWORD}` };
    const unknown = await runCli(['creds', 'set', 'AWS_SESSION_TOKEN', 'x'], { cwd: project.root, env });
    assertOneLineNoSecret(unknown);
    assert.match(unknown.stderr, /unknown credential "AWS_SESSION_TOKEN": use one of AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY/);
    const noName = await runCli(['creds', 'get'], { cwd: project.root, env });
    assertOneLineNoSecret(noName);
    assert.match(noName.stderr, /needs a NAME/);
    const badAction = await runCli(['creds', 'wipe'], { cwd: project.root, env });
    assert.equal(badAction.code, 2);
    // runCli gives no stdin: set without a value cannot read one
    const noValue = await runCli(['creds', 'set', 'AWS_SECRET_ACCESS_KEY'], { cwd: project.root, env });
    assertOneLineNoSecret(noValue);
    assert.match(noValue.stderr, /give a VALUE, or pipe it on stdin/);
    const longProfile = await runCli(['creds', 'list', '--profile', 'p'.repeat(129)], { cwd: project.root, env });
    assertOneLineNoSecret(longProfile);
    assert.match(longProfile.stderr, /profile name must be 1 to 128 characters/);
    const longValue = await runCli(['creds', 'set', 'AWS_S3_REGION_NAME', 'r'.repeat(4001)], { cwd: project.root, env });
    assertOneLineNoSecret(longValue);
    assert.match(longValue.stderr, /at most 4000 characters/);
    const badEndpoint = await runCli(['creds', 'set', 'AWS_S3_ENDPOINT_URL', 'r2.example.com'], { cwd: project.root, env });
    assert.equal(badEndpoint.code, 2);
    assert.match(badEndpoint.stderr, /must be an http\(s\) URL/);
  });

  it('closing a store that never connected is harmless', async () => {
    const store = new MssqlStore({ connectionString: 'Server=127.0.0.1,1;Password=x', origin: 'STORAGE_SYNC_MSSQL' });
    await store.close();
    assert.deepEqual(store.secrets, ['x']);
  });
});
