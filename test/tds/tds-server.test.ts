// The SQL Server stand-in, driven by the real mssql/tedious client over TCP on loopback.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import sql from 'mssql';
import { startTdsServer, type TdsServer } from '../support/tds/server.js';

const CREATE_TABLE =
  "IF OBJECT_ID(N'dbo.storage_credentials', N'U') IS NULL CREATE TABLE dbo.storage_credentials (profile NVARCHAR(128) NOT NULL, name NVARCHAR(128) NOT NULL, value NVARCHAR(4000) NOT NULL, updated_at DATETIME2 NOT NULL CONSTRAINT DF_storage_credentials_updated_at DEFAULT SYSUTCDATETIME(), CONSTRAINT PK_storage_credentials PRIMARY KEY (profile, name));";
const INSERT =
  'INSERT INTO dbo.storage_credentials (profile, name, value, updated_at) VALUES (@profile, @name, @value, SYSUTCDATETIME())';
const SELECT_PROFILE = 'SELECT name, value, updated_at FROM dbo.storage_credentials WHERE profile = @profile ORDER BY name';
const SELECT_ONE = 'SELECT value, updated_at FROM dbo.storage_credentials WHERE profile = @profile AND name = @name';
const UPDATE =
  'UPDATE dbo.storage_credentials SET value = @value, updated_at = SYSUTCDATETIME() WHERE profile = @profile AND name = @name';
const DELETE = 'DELETE FROM dbo.storage_credentials WHERE profile = @profile AND name = @name';

/** Errors reach the test in well under these; they only bound a broken server. */
function config(server: Pick<TdsServer, 'connectionString'>, extra: Partial<sql.config> = {}): sql.config {
  return {
    ...sql.ConnectionPool.parseConnectionString(server.connectionString),
    connectionTimeout: 5000,
    requestTimeout: 5000,
    ...extra,
  };
}

/** Connects and reports every ERROR/INFO token number the server sent during login. */
async function connectCollecting(cfg: sql.config): Promise<{ pool?: sql.ConnectionPool; error?: sql.ConnectionError; numbers: number[] }> {
  const numbers: number[] = [];
  const pool = new sql.ConnectionPool({
    ...cfg,
    beforeConnect: (conn) => {
      conn.on('errorMessage', (m: { number: number }) => numbers.push(m.number));
    },
  });
  try {
    await pool.connect();
    return { pool, numbers };
  } catch (err) {
    return { error: err as sql.ConnectionError, numbers };
  }
}

let server: TdsServer;
let pool: sql.ConnectionPool;

before(async () => {
  server = await startTdsServer();
  pool = await new sql.ConnectionPool(config(server)).connect();
  await pool.request().batch(CREATE_TABLE);
});
after(async () => {
  await pool?.close();
  await server?.close();
});

function req(): sql.Request {
  return pool.request();
}

async function put(profile: string, name: string, value: string): Promise<sql.IResult<unknown>> {
  return req().input('profile', sql.NVarChar(128), profile).input('name', sql.NVarChar(128), name).input('value', sql.NVarChar(4000), value).query(INSERT);
}

describe('queries', () => {
  test('connect and SELECT, with the column types SQL Server reports', async () => {
    const r = await req().query('SELECT 1 AS ok');
    assert.deepEqual(r.recordset, [{ ok: 1 }]);
    assert.equal(r.recordset.columns.ok?.type, sql.Int);
    assert.deepEqual(r.rowsAffected, [1]);
    // Unaliased expressions are unnamed, as on SQL Server.
    const v = await req().query("SELECT @@VERSION, 'a' AS 'quoted alias'");
    assert.deepEqual(Object.keys(v.recordset[0]), ['', 'quoted alias']);
    assert.match(v.recordset[0][''], /^Microsoft SQL Server/);
  });

  test('the create-if-missing statement is idempotent and makes a real table', async () => {
    await req().batch(CREATE_TABLE);
    await req().batch(CREATE_TABLE);
    const row = server.db.prepare("SELECT sql FROM sqlite_master WHERE name = 'storage_credentials'").get() as { sql: string };
    assert.match(row.sql, /PK_storage_credentials PRIMARY KEY \(profile, name\)/);
  });

  test('sp_executesql parameters round-trip literally: quotes, semicolons, Unicode, 4,000 characters', async () => {
    const profile = `p'; DROP TABLE dbo.storage_credentials; --"[x]`;
    const values: Record<string, string> = {
      AWS_ACCESS_KEY_ID: "it's; a 'key' -- /* not a comment */",
      AWS_SECRET_ACCESS_KEY: 'Zürich 東京 😀 \u0000 nul and\nnewline',
      AWS_S3_ENDPOINT_URL: 'x'.repeat(3999) + '€',
      AWS_STORAGE_BUCKET_NAME: '',
    };
    for (const [name, value] of Object.entries(values)) {
      const r = await put(profile, name, value);
      assert.deepEqual(r.rowsAffected, [1]);
    }
    const r = await req().input('profile', sql.NVarChar(128), profile).query(SELECT_PROFILE);
    assert.deepEqual(
      r.recordset.map((row: { name: string; value: string }) => [row.name, row.value]),
      Object.entries(values).sort(([a], [b]) => (a < b ? -1 : 1)),
    );
    assert.equal(r.recordset.columns.value?.type, sql.NVarChar);
    // In bytes, as SQL Server reports NVARCHAR(4000).
    assert.equal(r.recordset.columns.value?.length, 8000);
    // The server saw the secret only as a typed parameter, never in statement text.
    const seen = server.requests().filter((q) => q.params.some((p) => p.value === values.AWS_SECRET_ACCESS_KEY));
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.kind, 'rpc');
    assert.equal(seen[0]!.sql, INSERT);
    assert.deepEqual(seen[0]!.params.map((p) => [p.name, p.type]), [['@profile', 'nvarchar'], ['@name', 'nvarchar'], ['@value', 'nvarchar']]);
    assert.ok(server.requests().every((q) => !q.sql.includes(values.AWS_SECRET_ACCESS_KEY!)));
    // The values are in SQLite as data, and the table survived the profile name.
    const stored = server.db.prepare('SELECT value FROM storage_credentials WHERE profile = ? AND name = ?').get(profile, 'AWS_SECRET_ACCESS_KEY') as { value: string };
    assert.equal(stored.value, values.AWS_SECRET_ACCESS_KEY);
  });

  test('updated_at comes back as a Date from DATETIME2, stored as an ISO string', async () => {
    const before = Date.now();
    await put('dates', 'K', 'v');
    const r = await req().input('profile', sql.NVarChar(128), 'dates').input('name', sql.NVarChar(128), 'K').query(SELECT_ONE);
    const at = r.recordset[0].updated_at as Date;
    assert.ok(at instanceof Date);
    assert.equal(r.recordset.columns.updated_at?.type, sql.DateTime2);
    assert.ok(Math.abs(at.getTime() - before) < 60_000, `${at.toISOString()} is now`);
    const raw = server.db.prepare("SELECT updated_at FROM storage_credentials WHERE profile = 'dates'").get() as { updated_at: string };
    assert.match(raw.updated_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$/);
    assert.equal(new Date(raw.updated_at.replace(/(\.\d{3})\d{4}Z$/, '$1Z')).getTime(), at.getTime());
  });

  test('UPDATE and DELETE report rows affected; WHERE compares case-insensitively like the default collation', async () => {
    await put('upd', 'A', '1');
    await put('upd', 'B', '2');
    const u = await req().input('profile', sql.NVarChar(128), 'UPD').input('name', sql.NVarChar(128), 'a').input('value', sql.NVarChar(4000), 'new').query(UPDATE);
    assert.deepEqual(u.rowsAffected, [1]);
    const none = await req().input('profile', sql.NVarChar(128), 'upd').input('name', sql.NVarChar(128), 'missing').input('value', sql.NVarChar(4000), 'x').query(UPDATE);
    assert.deepEqual(none.rowsAffected, [0]);
    const d = await req().input('profile', sql.NVarChar(128), 'upd').input('name', sql.NVarChar(128), 'B').query(DELETE);
    assert.deepEqual(d.rowsAffected, [1]);
    const left = await req().input('profile', sql.NVarChar(128), 'upd').query(SELECT_PROFILE);
    assert.deepEqual(left.recordset.map((r: { name: string; value: string }) => [r.name, r.value]), [['A', 'new']]);
  });

  test('typed parameters decode: INT, BIT, VARCHAR, DATETIME2, DateTime, NULL, BIGINT', async () => {
    const when = new Date(Date.UTC(2024, 1, 29, 23, 59, 58, 123));
    const r = await req()
      .input('i', sql.Int, -42)
      .input('b', sql.Bit, true)
      .input('v', sql.VarChar(50), 'café')
      .input('d2', sql.DateTime2(7), when)
      .input('n', sql.NVarChar(10), null)
      .input('big', sql.BigInt, '9007199254740993')
      .query('SELECT @i AS i, @b AS b, @v AS v, @d2 AS d2, @n AS n, @big AS big');
    const row = r.recordset[0];
    assert.equal(row.i, -42);
    assert.equal(row.b, 1);
    assert.equal(row.v, 'café');
    assert.ok(row.d2 instanceof Date);
    assert.equal(row.d2.getTime(), when.getTime());
    assert.equal(row.n, null);
    assert.equal(row.big, '9007199254740993');
    // Inferred types (number → Int, boolean → Bit, Date → DateTime) decode too.
    // DATETIME keeps 1/300 s, so .123 is stored as .1233333 (as SQL Server converts it to DATETIME2).
    const inferred = await req().input('x', 7).input('t', false).input('w', when).query('SELECT @x + 1 AS x, @t AS t, @w AS w');
    assert.deepEqual(inferred.recordset[0], { x: 8, t: 0, w: when });
    await req().input('w', when).query("INSERT INTO dbo.storage_credentials (profile, name, value, updated_at) VALUES ('dt', 'K', 'v', @w)");
    const raw = server.db.prepare("SELECT updated_at FROM storage_credentials WHERE profile = 'dt'").get() as { updated_at: string };
    assert.equal(raw.updated_at, '2024-02-29T23:59:58.1233333Z');
  });

  test('a value larger than one packet, both ways (NVARCHAR(MAX) as PLP)', async () => {
    const big = '0123456789abcdef€'.repeat(12_000); // ~400 KB as UCS-2, ~100 packets
    const r = await req().input('v', sql.NVarChar(sql.MAX), big).query('SELECT @v AS v, LEN(@v) AS n');
    assert.equal(r.recordset[0].v, big);
    assert.equal(r.recordset[0].n, big.length);
  });

  test('SET NOCOUNT ON drops row counts: for the session in a batch, until return in sp_executesql', async () => {
    await put('nocount', 'A', '1');
    const p = await new sql.ConnectionPool(config(server, { pool: { max: 1 } })).connect();
    try {
      const update = "UPDATE dbo.storage_credentials SET value = 'x' WHERE profile = 'nocount'";
      const inProc = await p.request().query(`SET NOCOUNT ON; ${update}`);
      assert.deepEqual(inProc.rowsAffected, []);
      assert.deepEqual((await p.request().query(update)).rowsAffected, [1]);
      assert.deepEqual((await p.request().batch(`SET NOCOUNT ON; ${update}`)).rowsAffected, []);
      assert.deepEqual((await p.request().batch(update)).rowsAffected, []);
    } finally {
      await p.close();
    }
  });
});

describe('errors carry SQL Server numbers', () => {
  test('PK violation is 2627 and names the constraint', async () => {
    await put('dup', 'K', 'v');
    const err = await put('dup', 'K', 'other').then(
      () => assert.fail('duplicate accepted'),
      (e: sql.RequestError) => e,
    );
    assert.equal(err.number, 2627);
    assert.equal(
      err.message,
      "Violation of PRIMARY KEY constraint 'PK_storage_credentials'. Cannot insert duplicate key in object 'dbo.storage_credentials'. The duplicate key value is (dup, K).",
    );
  });

  test('missing table is 208 with the name as written; dropping it twice is 3701', async () => {
    const s = await startTdsServer();
    const p = await new sql.ConnectionPool(config(s)).connect();
    try {
      await p.request().batch(CREATE_TABLE);
      await p.request().batch('DROP TABLE dbo.storage_credentials');
      const err = await p.request().input('profile', sql.NVarChar(128), 'x').query(SELECT_PROFILE).then(
        () => assert.fail('query on a dropped table succeeded'),
        (e: sql.RequestError) => e,
      );
      assert.equal(err.number, 208);
      assert.equal(err.message, "Invalid object name 'dbo.storage_credentials'.");
      const drop = await p.request().batch('DROP TABLE dbo.storage_credentials').then(
        () => assert.fail('dropped a missing table'),
        (e: sql.RequestError) => e,
      );
      assert.equal(drop.number, 3701);
    } finally {
      await p.close();
      await s.close();
    }
  });

  test('syntax errors are 102/156; unknown variable 137; a value longer than its parameter 8016, than its column 8152', async () => {
    const syntax = await req().query('SELECT 1 +').catch((e: sql.RequestError) => e);
    assert.equal((syntax as sql.RequestError).number, 102);
    assert.equal((syntax as sql.RequestError).message, "Incorrect syntax near '+'.");
    const keyword = await req().query('SELECT * FROM').catch((e: sql.RequestError) => e);
    assert.equal((keyword as sql.RequestError).number, 156);
    const implicitExec = await req().query('SELEC 1').catch((e: sql.RequestError) => e);
    assert.equal((implicitExec as sql.RequestError).number, 2812);
    const variable = await req().query('SELECT @nope AS x').catch((e: sql.RequestError) => e);
    assert.equal((variable as sql.RequestError).number, 137);
    const overParam = await put('long', 'K', 'x'.repeat(4001)).catch((e: sql.RequestError) => e);
    assert.equal((overParam as sql.RequestError).number, 8016);
    assert.match((overParam as sql.RequestError).message, /Parameter 5 \("@value"\)/);
    const overColumn = await req()
      .input('profile', sql.NVarChar(128), 'long')
      .input('name', sql.NVarChar(128), 'K')
      .input('value', sql.NVarChar(sql.MAX), 'x'.repeat(4001))
      .query(INSERT)
      .catch((e: sql.RequestError) => e);
    assert.equal((overColumn as sql.RequestError).number, 8152);
  });

  test('wrong password: login error 18456, connection closed, password not echoed', async () => {
    const bad = { ...config(server), password: 'not-the-password' };
    const r = await connectCollecting(bad);
    assert.ok(r.error, 'login with a wrong password succeeded');
    assert.equal(r.error.code, 'ELOGIN');
    assert.equal(r.error.message, "Login failed for user 'sa'.");
    assert.deepEqual(r.numbers, [18456]);
    assert.doesNotMatch(r.error.message, /not-the-password/);
    const wrongUser = await connectCollecting({ ...config(server), user: 'nobody' });
    assert.equal(wrongUser.error?.message, "Login failed for user 'nobody'.");
  });

  test('wrong database: 4060 then 18456, as SQL Server sends them', async () => {
    const r = await connectCollecting({ ...config(server), database: 'elsewhere' });
    assert.ok(r.error);
    assert.equal(r.error.code, 'ELOGIN');
    assert.deepEqual(r.numbers, [4060, 18456]);
  });

  test('a cancelled request (request timeout) is acknowledged and the connection stays usable', async () => {
    const p = await new sql.ConnectionPool(config(server, { pool: { max: 1 }, requestTimeout: 200 })).connect();
    try {
      const err = await p.request().query("WAITFOR DELAY '00:01:00'").then(
        () => assert.fail('the wait finished'),
        (e: sql.RequestError) => e,
      );
      assert.equal(err.code, 'ETIMEOUT');
      const next = await p.request().query('SELECT 2 AS two');
      assert.deepEqual(next.recordset, [{ two: 2 }]);
    } finally {
      await p.close();
    }
  });
});

describe('connections', () => {
  test('a pool of several connections used concurrently, all closed at the end', async () => {
    const s = await startTdsServer();
    const p = await new sql.ConnectionPool(config(s, { pool: { max: 4, min: 0 } })).connect();
    await p.request().batch(CREATE_TABLE);
    const work = Array.from({ length: 12 }, async (_, i) => {
      // The wait keeps every connection busy, so the pool has to open more of them.
      await p.request().query("WAITFOR DELAY '00:00:00.100'");
      await p.request().input('profile', sql.NVarChar(128), 'c').input('name', sql.NVarChar(128), `K${i}`).input('value', sql.NVarChar(4000), `v${i}`).query(INSERT);
      const r = await p.request().input('profile', sql.NVarChar(128), 'c').input('name', sql.NVarChar(128), `K${i}`).query(SELECT_ONE);
      return r.recordset[0].value as string;
    });
    assert.deepEqual(await Promise.all(work), Array.from({ length: 12 }, (_, i) => `v${i}`));
    assert.equal(s.connections(), 4);
    await p.close();
    await s.idle();
    assert.equal(s.connections(), 0);
    await s.close();
  });

  test('server down: connecting fails with a socket error, not a hang', async () => {
    const s = await startTdsServer();
    const cfg = config(s);
    await s.close();
    const r = await connectCollecting(cfg);
    assert.ok(r.error, 'connected to a closed server');
    assert.equal(r.error.code, 'ESOCKET');
  });

  test('server closed under an open pool: the next query fails with a connection error', async () => {
    const s = await startTdsServer();
    const ended: Promise<unknown>[] = [];
    const p = new sql.ConnectionPool({
      ...config(s),
      beforeConnect: (conn) => {
        ended.push(new Promise((resolve) => conn.once('end', resolve)));
      },
    });
    // tedious reports the dropped connection as a pool 'error' event; without a listener that
    // would be an uncaught exception (worth knowing for real servers that restart too).
    const poolErrors: Error[] = [];
    p.on('error', (e: Error) => poolErrors.push(e));
    await p.connect();
    await p.request().query('SELECT 1 AS ok');
    await s.close();
    await Promise.all(ended);
    const err = await p.request().query('SELECT 1 AS ok').then(
      () => assert.fail('query after the server closed succeeded'),
      (e: Error & { code?: string }) => e,
    );
    assert.equal(err.code, 'ESOCKET');
    await p.close();
  });

  test('a client requiring encryption fails at once with a socket error (the stand-in has no TLS)', async () => {
    const r = await connectCollecting({ ...config(server), options: { encrypt: true, trustServerCertificate: true } });
    assert.ok(r.error, 'encrypted connection succeeded');
    assert.equal(r.error.code, 'ESOCKET');
  });
});
