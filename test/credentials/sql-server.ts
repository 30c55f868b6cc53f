// The SQL Server the credential tests talk to: the TDS stand-in (test/support/tds) on loopback, or
// a real server when STORAGE_SYNC_TEST_MSSQL holds a connection string. The tests are the same for
// both; they drop and recreate dbo.storage_credentials, so point that variable at a database used
// for nothing else.
import sql from 'mssql';
import { mssqlConfig } from '../../src/credentials/mssql-config.js';
import { MssqlStore } from '../../src/credentials/mssql-store.js';
import { startTdsServer, type ReceivedRequest, type TdsServer } from '../support/tds/server.js';

export interface TestSql {
  /** True against a real SQL Server. */
  real: boolean;
  connectionString: string;
  /** The SQL password: must never appear in any output. */
  password: string;
  user: string;
  /** The same string with another password / database. */
  withPassword(password: string): string;
  withDatabase(database: string): string;
  /** Without any Encrypt= (so the safe default applies). */
  withoutEncrypt(): string;
  dropTable(): Promise<void>;
  /** What the stand-in received (SQL text and typed parameters); a real server does not tell. */
  requests?: () => ReceivedRequest[];
  /** Connections storage-sync holds open, once the closing ones have closed (bounded wait). */
  openConnections(): Promise<number>;
  close(): Promise<void>;
}

/** Replaces (or adds) one key of a connection string; values with ; or quotes are quoted. */
export function setKey(cs: string, key: string, value: string | undefined): string {
  const aliases: Record<string, string[]> = {
    password: ['password', 'pwd'],
    database: ['database', 'initial catalog'],
    encrypt: ['encrypt'],
  };
  const names = aliases[key.toLowerCase()] ?? [key.toLowerCase()];
  const parts = splitConnectionString(cs).filter((p) => !names.includes(p.slice(0, p.indexOf('=')).trim().toLowerCase()));
  if (value !== undefined) parts.push(`${key}=${/[;"'{}=]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value}`);
  return parts.join(';');
}

function splitConnectionString(cs: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let quote: string | undefined;
  for (let i = 0; i < cs.length; i++) {
    const ch = cs[i]!;
    if (quote) {
      cur += ch;
      if (ch === quote) {
        if (cs[i + 1] === quote) cur += cs[++i];
        else quote = undefined;
      }
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      cur += ch;
    } else if (ch === ';') {
      if (cur.trim()) parts.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) parts.push(cur.trim());
  return parts;
}

async function waitFor(check: () => Promise<number>, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = await check();
    if (n === 0 || Date.now() > deadline) return n;
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startSql(): Promise<TestSql> {
  const realString = process.env['STORAGE_SYNC_TEST_MSSQL'];
  let tds: TdsServer | undefined;
  let connectionString: string;
  if (realString) connectionString = realString;
  else {
    tds = await startTdsServer({ password: `Sql-Pw-${Math.random().toString(36).slice(2, 10)}` });
    connectionString = tds.connectionString;
  }
  const cfg = mssqlConfig(connectionString);
  // The tests' own connection is named differently, so counting storage-sync's leaves it out.
  let admin: sql.ConnectionPool | undefined;
  const adminPool = async (): Promise<sql.ConnectionPool> => {
    if (!admin) {
      admin = new sql.ConnectionPool({ ...cfg, options: { ...cfg.options, appName: 'storage-sync-tests' } });
      admin.on('error', () => {});
      await admin.connect();
    }
    return admin;
  };
  return {
    real: tds === undefined,
    connectionString,
    password: cfg.password ?? '',
    user: cfg.user ?? '',
    withPassword: (p) => setKey(connectionString, 'Password', p),
    withDatabase: (d) => setKey(connectionString, 'Database', d),
    withoutEncrypt: () => setKey(connectionString, 'Encrypt', undefined),
    ...(tds ? { requests: tds.requests } : {}),
    async dropTable() {
      const store = new MssqlStore({ connectionString, origin: 'STORAGE_SYNC_MSSQL' });
      try {
        await store.init(); // DROP TABLE has no IF EXISTS on older servers (or on the stand-in)
      } finally {
        await store.close();
      }
      const pool = new sql.ConnectionPool({ ...cfg, options: { ...cfg.options, appName: 'storage-sync-tests' } });
      pool.on('error', () => {});
      try {
        await pool.connect();
        await pool.request().query('DROP TABLE dbo.storage_credentials');
      } finally {
        await pool.close();
      }
    },
    async openConnections() {
      if (tds) {
        const server = tds;
        // no connection of the tests' own stays open against the stand-in: every one is ours
        return waitFor(async () => server.connections(), 10_000);
      }
      const pool = await adminPool();
      return waitFor(async () => {
        const r = await pool.request().query<{ n: number }>("SELECT COUNT(*) AS n FROM sys.dm_exec_sessions WHERE program_name = N'storage-sync'");
        return r.recordset[0]?.n ?? 0;
      }, 10_000);
    },
    async close() {
      await admin?.close();
      await tds?.close();
    },
  };
}
