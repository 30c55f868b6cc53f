// The stand-in's wire handling below the driver, its T-SQL rewriting, and `npm run tds-server`.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import sql from 'mssql';
import tedious from 'tedious';
import { PKT, PacketReader, framePackets, parseLogin7, type IncomingMessage } from '../support/tds/protocol.js';
import { startTdsServer } from '../support/tds/server.js';
import { parseBatch } from '../support/tds/tsql.js';

const require = createRequire(import.meta.url);
// tedious's own LOGIN7 builder, so the password scrambling is checked against the real client.
const Login7Payload = require('tedious/lib/login7-payload.js') as new (o: Record<string, number>) => {
  hostname?: string;
  userName?: string;
  password?: string;
  database?: string;
  toBuffer(): Buffer;
};

const SCRIPT = fileURLToPath(new URL('../../scripts/tds-server.js', import.meta.url));

describe('packets', () => {
  test('a multi-packet message fed one byte at a time is reassembled; ATTENTION comes out of band', () => {
    const payload = Buffer.from(Array.from({ length: 10_000 }, (_, i) => i % 251));
    const packets = framePackets(PKT.SQL_BATCH, payload, 512);
    assert.equal(packets.length, Math.ceil(10_000 / 504));
    // The reset bit travels on the first packet of a request.
    packets[0]![1] = packets[0]![1]! | 0x08;
    const attention = Buffer.from([PKT.ATTENTION, 0x01, 0x00, 0x08, 0, 0, 1, 0]);
    const wire = Buffer.concat([...packets.slice(0, 3), attention, ...packets.slice(3)]);
    const messages: IncomingMessage[] = [];
    let attentions = 0;
    const reader = new PacketReader(
      (m) => messages.push(m),
      () => attentions++,
    );
    for (let i = 0; i < wire.length; i++) reader.push(wire.subarray(i, i + 1));
    assert.equal(attentions, 1);
    assert.equal(messages.length, 1);
    assert.equal(messages[0]!.type, PKT.SQL_BATCH);
    assert.equal(messages[0]!.resetConnection, true);
    assert.deepEqual(messages[0]!.data, payload);
  });

  test("LOGIN7 from tedious's own builder: scrambled password and names decode", () => {
    const p = new Login7Payload({ tdsVersion: 0x74000004, packetSize: 4096, clientProgVer: 0, clientPid: 1, connectionId: 0, clientTimeZone: 0, clientLcid: 0x409 });
    p.hostname = 'test-host';
    p.userName = 'sa';
    p.password = 'pä;ss"w=rd {x} 😀';
    p.database = 'storage';
    const l = parseLogin7(p.toBuffer());
    assert.equal(l.hostName, 'test-host');
    assert.equal(l.userName, 'sa');
    assert.equal(l.password, 'pä;ss"w=rd {x} 😀');
    assert.equal(l.database, 'storage');
    assert.equal(l.packetSize, 4096);
    assert.ok(l.features.has(0x0a), 'UTF-8 support feature');
  });

  test('malformed packets drop that connection only', async () => {
    const s = await startTdsServer();
    try {
      const sock = net.connect(s.port, s.host);
      await new Promise((r) => sock.once('connect', r));
      const closed = new Promise((r) => sock.once('close', r));
      sock.on('error', () => {});
      sock.write(Buffer.from([PKT.PRELOGIN, 0x01, 0x00, 0x04, 0, 0, 0, 0])); // length 4 < header
      await closed;
      const pool = await new sql.ConnectionPool(s.connectionString).connect();
      assert.deepEqual((await pool.request().query('SELECT 1 AS ok')).recordset, [{ ok: 1 }]);
      await pool.close();
    } finally {
      await s.close();
    }
  });
});

describe('T-SQL rewriting', () => {
  test('parameters stay parameters; literals, brackets and dbo qualifiers are rewritten', () => {
    const [stmt] = parseBatch(
      "INSERT INTO [dbo].[storage_credentials] (profile, name, value, updated_at) VALUES (@Profile, N'it''s', @value, SYSUTCDATETIME())",
      'storage',
    );
    assert.ok(stmt && stmt.kind === 'sql');
    assert.equal(
      stmt.rw.sql,
      "INSERT INTO \"storage_credentials\" (profile, name, value, updated_at) VALUES (@profile, 'it''s', @value, (strftime('%Y-%m-%dT%H:%M:%f0000Z','now')))",
    );
    assert.deepEqual(stmt.rw.params, ['profile', 'value']);
    assert.equal(stmt.rw.names.get('storage_credentials'), '[dbo].[storage_credentials]');
  });

  test("tedious's newline-separated SET options are separate no-op statements", () => {
    const stmts = parseBatch('set textsize 2147483647\nset quoted_identifier on\nset nocount on\nset transaction isolation level read committed', 'storage');
    assert.deepEqual(stmts, [{ kind: 'set' }, { kind: 'set' }, { kind: 'set', nocount: true }, { kind: 'set' }]);
  });
});

describe('server', () => {
  test('a password with separators and non-ASCII characters works through the connection string', async () => {
    const s = await startTdsServer({ password: 'pä;ss"w=rd {x}', user: 'app user' });
    try {
      const pool = await new sql.ConnectionPool(s.connectionString).connect();
      assert.deepEqual((await pool.request().query('SELECT 1 AS ok')).recordset, [{ ok: 1 }]);
      await pool.close();
      const wrongCase = new sql.ConnectionPool({ ...sql.ConnectionPool.parseConnectionString(s.connectionString), password: 'PÄ;SS"W=RD {X}' });
      await assert.rejects(wrongCase.connect(), { code: 'ELOGIN' });
    } finally {
      await s.close();
    }
  });

  test('a SQLite file keeps the data across restarts; the default fills updated_at', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tds-test-'));
    const file = path.join(dir, 'creds.sqlite');
    try {
      const a = await startTdsServer({ file, password: 'one' });
      const p1 = await new sql.ConnectionPool(a.connectionString).connect();
      await p1.request().batch('CREATE TABLE dbo.t (k NVARCHAR(10) NOT NULL, at DATETIME2 NOT NULL DEFAULT SYSUTCDATETIME(), CONSTRAINT PK_t PRIMARY KEY (k))');
      await p1.request().input('k', sql.NVarChar(10), 'kept').query('INSERT INTO dbo.t (k) VALUES (@k)');
      await p1.close();
      await a.close();
      const b = await startTdsServer({ file, password: 'two' });
      const p2 = await new sql.ConnectionPool(b.connectionString).connect();
      const r = await p2.request().query('SELECT k, at FROM dbo.t');
      assert.equal(r.recordset[0].k, 'kept');
      assert.ok(r.recordset[0].at instanceof Date);
      assert.equal(r.recordset.columns.k?.nullable, false);
      await p2.close();
      await b.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('transactions: commit, rollback, @@TRANCOUNT, and other sessions wait for the end', async () => {
    const s = await startTdsServer();
    try {
      const pool = await new sql.ConnectionPool({ ...sql.ConnectionPool.parseConnectionString(s.connectionString), pool: { max: 3 } }).connect();
      await pool.request().batch('CREATE TABLE dbo.t (k NVARCHAR(10) NOT NULL PRIMARY KEY)');
      const count = async (): Promise<number> => (await pool.request().query('SELECT COUNT(*) AS n FROM dbo.t')).recordset[0].n as number;

      const rolledBack = new sql.Transaction(pool);
      await rolledBack.begin();
      await new sql.Request(rolledBack).input('k', sql.NVarChar(10), 'gone').query('INSERT INTO dbo.t (k) VALUES (@k)');
      // Another session asks while the transaction is open: it must not see the uncommitted row.
      const meanwhile = count();
      await rolledBack.rollback();
      assert.equal(await meanwhile, 0);

      // A request that waits for the transaction can still be cancelled (here by its timeout).
      const blocker = new sql.Transaction(pool);
      await blocker.begin();
      const impatient = await new sql.ConnectionPool({ ...sql.ConnectionPool.parseConnectionString(s.connectionString), requestTimeout: 200, validateConnection: false }).connect();
      assert.deepEqual((await impatient.request().query('SELECT 1 AS ok')).recordset, [{ ok: 1 }], 'no table, no wait');
      const timedOut = await impatient.request().query('SELECT COUNT(*) AS n FROM dbo.t').catch((e: sql.RequestError) => e);
      assert.equal((timedOut as sql.RequestError).code, 'ETIMEOUT');
      await blocker.commit();
      assert.deepEqual((await impatient.request().query('SELECT COUNT(*) AS n FROM dbo.t')).recordset, [{ n: 0 }]);
      await impatient.close();

      const committed = new sql.Transaction(pool);
      await committed.begin();
      await new sql.Request(committed).input('k', sql.NVarChar(10), 'kept').query('INSERT INTO dbo.t (k) VALUES (@k)');
      const depth = await new sql.Request(committed).query('SELECT @@TRANCOUNT AS n');
      assert.equal(depth.recordset[0].n, 1);
      await committed.commit();
      assert.equal(await count(), 1);

      const t = await pool.request().batch("BEGIN TRAN; INSERT INTO dbo.t (k) VALUES ('b'); SELECT @@TRANCOUNT AS n; ROLLBACK TRAN");
      assert.equal(t.recordset[0].n, 1);
      assert.equal(await count(), 1);
      const stray = await pool.request().batch('COMMIT').catch((e: sql.RequestError) => e);
      assert.equal((stray as sql.RequestError).number, 3902);
      await pool.close();

      // A connection that closes with its transaction open is rolled back.
      const one = await new sql.ConnectionPool({ ...sql.ConnectionPool.parseConnectionString(s.connectionString), pool: { max: 1 } }).connect();
      await one.request().batch("BEGIN TRANSACTION; INSERT INTO dbo.t (k) VALUES ('orphan')");
      await one.close();
      await s.idle();
      assert.equal((s.db.prepare('SELECT COUNT(*) AS n FROM t').get() as { n: number }).n, 1);
      assert.equal(s.db.inTransaction, false);
    } finally {
      await s.close();
    }
  });

  test('RESETCONNECTION (tedious reset()): options back to defaults, open transaction rolled back', async () => {
    const s = await startTdsServer();
    const conn = new tedious.Connection({
      server: s.host,
      options: { port: s.port, database: s.database, encrypt: false, connectTimeout: 5000, requestTimeout: 5000 },
      authentication: { type: 'default', options: { userName: s.user, password: s.password } },
    });
    try {
      await new Promise<void>((resolve, reject) => {
        conn.on('connect', (err) => (err ? reject(err) : resolve()));
        conn.connect();
      });
      const batch = (text: string): Promise<number> =>
        new Promise((resolve, reject) => conn.execSqlBatch(new tedious.Request(text, (err, rowCount) => (err ? reject(err) : resolve(rowCount ?? 0)))));
      await batch('CREATE TABLE dbo.t (k INT NOT NULL PRIMARY KEY)');
      await batch('SET NOCOUNT ON; BEGIN TRAN; INSERT INTO dbo.t (k) VALUES (1)');
      assert.equal(s.db.inTransaction, true);
      let resets = 0;
      conn.on('resetConnection', () => resets++);
      await new Promise<void>((resolve, reject) => conn.reset((err) => (err ? reject(err) : resolve())));
      assert.equal(resets, 1);
      assert.equal(s.db.inTransaction, false);
      // NOCOUNT is off again, so the row count comes back.
      assert.equal(await batch('INSERT INTO dbo.t (k) VALUES (2)'), 1);
      assert.deepEqual(s.db.prepare('SELECT k FROM t').pluck().all(), [2]);
    } finally {
      conn.close();
      await s.close();
    }
  });

  test('npm run tds-server: connection string on the first line, stops cleanly on SIGINT', async () => {
    const child = spawn(process.execPath, [SCRIPT, '--port', '0', '--password', 'Trial-pass1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const lines = readline.createInterface({ input: child.stdout });
    const it = lines[Symbol.asyncIterator]();
    const first = (await it.next()).value as string;
    const second = (await it.next()).value as string;
    assert.match(first, /^Server=127\.0\.0\.1,\d+;Database=storage;User Id=sa;Password=Trial-pass1;Encrypt=false$/);
    assert.match(second, /^# /);
    const pool = await new sql.ConnectionPool(first).connect();
    assert.deepEqual((await pool.request().query('SELECT 1 AS ok')).recordset, [{ ok: 1 }]);
    await pool.close();
    child.kill('SIGINT');
    assert.equal(await exited, 0);
    assert.equal(stderr, '');
  });
});
