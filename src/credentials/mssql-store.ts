// The credential table in SQL Server: dbo.storage_credentials(profile, name, value, updated_at),
// primary key (profile, name). Every value travels as a typed parameter (sp_executesql); nothing a
// user typed is ever part of the SQL text. One pooled connection, opened on first use.
import sql from 'mssql';
import { UsageError } from '../core/errors.js';
import { describeServer, explainMssqlError, mssqlConfig, NOT_ENCRYPTED, type LoginTrace, type MssqlTarget } from './mssql-config.js';
import { OPTIONAL_KEYS, REQUIRED_KEYS, type CredentialKey, type CredentialSource } from './source.js';

export const TABLE = 'dbo.storage_credentials';

const SQL_INIT =
  "IF OBJECT_ID(N'dbo.storage_credentials', N'U') IS NULL CREATE TABLE dbo.storage_credentials (profile NVARCHAR(128) NOT NULL, name NVARCHAR(128) NOT NULL, value NVARCHAR(4000) NOT NULL, updated_at DATETIME2 NOT NULL CONSTRAINT DF_storage_credentials_updated_at DEFAULT SYSUTCDATETIME(), CONSTRAINT PK_storage_credentials PRIMARY KEY (profile, name));";
const SQL_LIST = 'SELECT name, value, updated_at FROM dbo.storage_credentials WHERE profile = @profile ORDER BY name';
const SQL_GET = 'SELECT value, updated_at FROM dbo.storage_credentials WHERE profile = @profile AND name = @name';
const SQL_UPDATE = 'UPDATE dbo.storage_credentials SET value = @value, updated_at = SYSUTCDATETIME() WHERE profile = @profile AND name = @name';
const SQL_INSERT = 'INSERT INTO dbo.storage_credentials (profile, name, value, updated_at) VALUES (@profile, @name, @value, SYSUTCDATETIME())';
const SQL_DELETE = 'DELETE FROM dbo.storage_credentials WHERE profile = @profile AND name = @name';

const PK_VIOLATION = 2627;
export const MAX_PROFILE = 128;
export const MAX_VALUE = 4000;

export const KNOWN_KEYS: readonly CredentialKey[] = [...REQUIRED_KEYS, ...OPTIONAL_KEYS];

export function checkKeyName(name: string): CredentialKey {
  if (!(KNOWN_KEYS as readonly string[]).includes(name)) throw new UsageError(`unknown credential "${name}": use one of ${KNOWN_KEYS.join(', ')}`);
  return name as CredentialKey;
}

export function checkProfile(profile: string): string {
  if (profile === '' || profile.length > MAX_PROFILE) throw new UsageError(`profile name must be 1 to ${MAX_PROFILE} characters`);
  return profile;
}

export interface StoredCredential {
  name: string;
  value: string;
  updatedAt: Date;
}

type Params = Record<string, { type: sql.ISqlType | (() => sql.ISqlType); value: string }>;

export class MssqlStore {
  private readonly cfg: sql.config;
  private readonly trace: LoginTrace = { numbers: [] };
  private pool: sql.ConnectionPool | undefined;
  private connecting: Promise<sql.ConnectionPool> | undefined;

  constructor(private readonly target: MssqlTarget) {
    this.cfg = mssqlConfig(target.connectionString);
  }

  /** Host, port and database: where the credentials were looked for. */
  get where(): string {
    return describeServer(this.cfg);
  }

  /** The SQL password, for callers that redact output. */
  get secrets(): string[] {
    return this.cfg.password ? [this.cfg.password] : [];
  }

  private explain(err: unknown): Error {
    return explainMssqlError(err, this.cfg, this.target.origin, this.trace, this.secrets);
  }

  private connect(): Promise<sql.ConnectionPool> {
    this.connecting ??= this.open();
    return this.connecting;
  }

  private async open(): Promise<sql.ConnectionPool> {
    const wantEncrypt = this.cfg.options?.encrypt === true;
    const trace = this.trace;
    const pool = new sql.ConnectionPool({
      ...this.cfg,
      beforeConnect: (conn) => {
        const c = conn as unknown as TediousInternals;
        c.on('errorMessage', (t: { number?: number }) => {
          if (typeof t.number === 'number') trace.numbers.push(t.number);
        });
        // tedious goes on without TLS when the server's prelogin answer is "not supported" (or
        // "off"), and would then send the login, password included, in the clear. Refuse as soon
        // as that answer is read, before any login is sent.
        const readPrelogin = c.readPreloginResponse;
        if (wantEncrypt && typeof readPrelogin === 'function') {
          c.readPreloginResponse = async function (this: TediousInternals, ...args: unknown[]) {
            const payload = await readPrelogin.apply(this, args);
            const answer = (payload as { encryptionString?: unknown } | undefined)?.encryptionString;
            if (answer !== 'ON' && answer !== 'REQ') {
              throw Object.assign(new Error(`the server does not support encryption (prelogin: ${String(answer)})`), { code: NOT_ENCRYPTED });
            }
            return payload;
          };
        }
      },
    });
    // Errors arrive through the promises; an unheard 'error' event would crash the process.
    pool.on('error', () => {});
    this.pool = pool;
    try {
      await pool.connect();
    } catch (err) {
      this.connecting = undefined;
      this.pool = undefined;
      await pool.close().catch(() => {});
      throw this.explain(err);
    }
    return pool;
  }

  private async query<T>(text: string, params: Params): Promise<sql.IResult<T>> {
    const pool = await this.connect();
    const req = pool.request();
    for (const [k, p] of Object.entries(params)) req.input(k, p.type, p.value);
    try {
      return await req.query<T>(text);
    } catch (err) {
      throw Object.assign(this.explain(err), { number: (err as { number?: number }).number });
    }
  }

  async init(): Promise<void> {
    await this.query(SQL_INIT, {});
  }

  async list(profile: string): Promise<StoredCredential[]> {
    const r = await this.query<{ name: string; value: string; updated_at: Date }>(SQL_LIST, { profile: { type: sql.NVarChar(MAX_PROFILE), value: profile } });
    return r.recordset.map((row) => ({ name: row.name, value: row.value, updatedAt: row.updated_at }));
  }

  async get(profile: string, name: string): Promise<StoredCredential | undefined> {
    const r = await this.query<{ value: string; updated_at: Date }>(SQL_GET, {
      profile: { type: sql.NVarChar(MAX_PROFILE), value: profile },
      name: { type: sql.NVarChar(128), value: name },
    });
    const row = r.recordset[0];
    return row ? { name, value: row.value, updatedAt: row.updated_at } : undefined;
  }

  async set(profile: string, name: string, value: string): Promise<void> {
    if (value.length > MAX_VALUE) throw new UsageError(`a credential value is at most ${MAX_VALUE} characters`);
    const params: Params = {
      profile: { type: sql.NVarChar(MAX_PROFILE), value: profile },
      name: { type: sql.NVarChar(128), value: name },
      value: { type: sql.NVarChar(MAX_VALUE), value },
    };
    const update = async (): Promise<boolean> => ((await this.query(SQL_UPDATE, params)).rowsAffected[0] ?? 0) > 0;
    if (await update()) return;
    try {
      await this.query(SQL_INSERT, params);
    } catch (err) {
      // Another writer inserted the same row between our UPDATE and INSERT: ours is the later value.
      if ((err as { number?: number }).number === PK_VIOLATION && (await update())) return;
      throw err;
    }
  }

  /** True when a row was removed. */
  async delete(profile: string, name: string): Promise<boolean> {
    const r = await this.query(SQL_DELETE, {
      profile: { type: sql.NVarChar(MAX_PROFILE), value: profile },
      name: { type: sql.NVarChar(128), value: name },
    });
    return (r.rowsAffected[0] ?? 0) > 0;
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    this.connecting = undefined;
    if (pool) await pool.close();
  }
}

/** The store as a credential source: one query per run, for the whole profile. */
export class MssqlSource implements CredentialSource {
  readonly name: string;
  constructor(readonly store: MssqlStore) {
    this.name = `SQL Server ${TABLE} at ${store.where}`;
  }

  async lookup(profile: string, keys: readonly CredentialKey[]): Promise<Partial<Record<CredentialKey, string>>> {
    const out: Partial<Record<CredentialKey, string>> = {};
    for (const row of await this.store.list(profile)) {
      if ((keys as readonly string[]).includes(row.name) && row.value !== '') out[row.name as CredentialKey] = row.value;
    }
    return out;
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

interface TediousInternals {
  on(event: string, listener: (...a: never[]) => void): unknown;
  readPreloginResponse?: (...args: unknown[]) => Promise<unknown>;
}
