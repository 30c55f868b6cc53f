// The SQL Server connection: from a connection string to the mssql config, and from the driver's
// errors to one line a user can act on. Nothing here may print the password.
import sql from 'mssql';
import { CredentialsError, UsageError } from '../core/errors.js';
import type { MssqlOrigin } from './mssql-target.js';

export const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;

export { mssqlTarget, type MssqlOrigin, type MssqlTarget } from './mssql-target.js';

/**
 * The mssql config for a connection string, with safe defaults where the string is silent:
 * the connection-string grammar defaults Encrypt to false (ODBC heritage), and mssql's parser
 * passes that through, so an unset Encrypt must be turned into true here, not left to the driver.
 * One connection is all a run needs (a handful of small queries), so the pool holds one.
 */
export function mssqlConfig(connectionString: string): sql.config {
  let parsed: ReturnType<typeof sql.ConnectionPool.parseConnectionString>;
  try {
    parsed = sql.ConnectionPool.parseConnectionString(connectionString);
  } catch (err) {
    // The parser's messages can quote the string; say only what is wrong with it.
    throw new UsageError(`SQL Server connection string is not valid (${redactConnectionString(oneLineOf(err))})`, { cause: err });
  }
  if (!parsed.server) throw new UsageError('SQL Server connection string has no Server (e.g. Server=host,1433;Database=...;User Id=...;Password=...)');
  const options = parsed.options ?? {};
  const connectionTimeout = parsed.connectionTimeout && parsed.connectionTimeout > 0 ? parsed.connectionTimeout : DEFAULT_CONNECT_TIMEOUT_MS;
  return {
    ...parsed,
    connectionTimeout,
    requestTimeout: parsed.requestTimeout && parsed.requestTimeout > 0 ? parsed.requestTimeout : 15_000,
    options: {
      ...options,
      encrypt: typeof options.encrypt === 'boolean' ? options.encrypt : true,
      trustServerCertificate: typeof options.trustServerCertificate === 'boolean' ? options.trustServerCertificate : false,
      appName: 'storage-sync',
    },
    // A failed connect must fail the command now, not be retried behind its back.
    pool: { min: 0, max: 1, idleTimeoutMillis: 30_000, acquireTimeoutMillis: connectionTimeout + 5_000, createRetryIntervalMillis: 200 },
  };
}

/** The password of a connection string, for redaction; nothing when the string does not parse. */
export function mssqlSecrets(connectionString: string): string[] {
  try {
    const password = sql.ConnectionPool.parseConnectionString(connectionString).password;
    return password ? [password] : [];
  } catch {
    return [];
  }
}

/** Host, port and database for messages: enough to find the server, nothing secret. */
export function describeServer(cfg: sql.config): string {
  const instance = cfg.options?.instanceName ? `\\${cfg.options.instanceName}` : '';
  const port = cfg.port ?? 1433;
  return `${cfg.server}${instance}:${port}${cfg.database ? ` database ${cfg.database}` : ''}`;
}

/** Password=/Pwd= values (quoted or not) become ***, whatever the case of the key. */
export function redactConnectionString(s: string): string {
  return s.replace(/\b(password|pwd)(\s*=\s*)("(?:[^"]|"")*"|'(?:[^']|'')*'|\{(?:[^}]|\}\})*\}|[^;]*)/gi, '$1$2***');
}

function oneLineOf(err: unknown): string {
  const msg = err instanceof Error ? err.message || err.name : String(err);
  return msg.replace(/\s*\n\s*/g, ' ').trim();
}

/** Error numbers the server sent during login (tedious keeps only the last message). */
export interface LoginTrace {
  numbers: number[];
}

/** Code of our own refusal when the server will not encrypt but the string asks for it. */
export const NOT_ENCRYPTED = 'ENOTENCRYPTED';

function codeOf(err: unknown): string | undefined {
  const e = err as { code?: unknown; originalError?: { code?: unknown } } | undefined;
  if (typeof e?.code === 'string') return e.code;
  if (typeof e?.originalError?.code === 'string') return e.originalError.code;
  return undefined;
}

function numberOf(err: unknown): number | undefined {
  const e = err as { number?: unknown; originalError?: { number?: unknown; info?: { number?: unknown } } } | undefined;
  for (const n of [e?.number, e?.originalError?.number, e?.originalError?.info?.number]) if (typeof n === 'number') return n;
  return undefined;
}

/** Every code in the error's chain: the socket's ECONNREFUSED sits in an AggregateError's cause. */
function codesIn(err: unknown, depth = 0): string[] {
  if (typeof err !== 'object' || err === null || depth > 5) return [];
  const e = err as { code?: unknown; originalError?: unknown; cause?: unknown; errors?: unknown };
  const own = typeof e.code === 'string' ? [e.code] : [];
  const nested = [e.originalError, e.cause, ...(Array.isArray(e.errors) ? e.errors : [])].flatMap((x) => codesIn(x, depth + 1));
  return [...own, ...nested];
}

/**
 * The driver's error as one line (exit 2) that says what to do. `secrets` are removed from the
 * driver's own wording as well (a password could in theory be echoed back by a server).
 */
export function explainMssqlError(err: unknown, cfg: sql.config, origin: MssqlOrigin, trace: LoginTrace, secrets: string[]): CredentialsError {
  const where = describeServer(cfg);
  const code = codeOf(err);
  const number = numberOf(err);
  const raw = oneLineOf(err);
  const codes = codesIn(err);
  const clean = (s: string): string => {
    // SQL Server 2019+ quotes the start of a value too long for its column (error 2628): with
    // `creds set AWS_SECRET_ACCESS_KEY` into a narrower column than ours, that is the secret.
    let out = redactConnectionString(s).replace(/(Truncated value: )'(?:[^']|'')*'?/gi, "$1'***'");
    for (const secret of secrets) if (secret) out = out.split(secret).join('***');
    return out;
  };
  const make = (msg: string): CredentialsError => new CredentialsError(clean(msg), { cause: err });
  const seconds = Math.round((cfg.connectionTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS) / 100) / 10;

  if (code === NOT_ENCRYPTED) {
    return make(
      `SQL Server ${where} does not support encryption, and the connection string (${origin}) asks for it (Encrypt=true is the default): ` +
        'for a trusted local server only, add Encrypt=false',
    );
  }
  if (code === 'EENCRYPT') {
    return make(`SQL Server ${where} requires encryption: remove Encrypt=false from the connection string (${origin})`);
  }
  if (trace.numbers.includes(4060) || number === 4060) {
    return make(
      `SQL Server ${where}: cannot open the database (error 4060): create it or fix Database= in ${origin}, then run \`storage-sync creds init\``,
    );
  }
  if (trace.numbers.includes(18456) || number === 18456 || code === 'ELOGIN') {
    const user = cfg.user ? ` for user "${cfg.user}"` : '';
    return make(`SQL Server ${where}: login failed${user} (error 18456): check User Id and Password in ${origin}`);
  }
  if (number === 208) {
    return make(`SQL Server ${where} has no table dbo.storage_credentials: run \`storage-sync creds init\``);
  }
  if (code === 'ETIMEOUT' && /connect/i.test(raw)) {
    return make(`cannot reach SQL Server ${where}: no answer within ${seconds} s (Connect Timeout in ${origin}); is the host and port right and the port open?`);
  }
  if (codes.includes('ECONNREFUSED') || /ECONNREFUSED/.test(raw)) {
    return make(`cannot reach SQL Server ${where}: connection refused; is it running and listening on TCP port ${cfg.port ?? 1433}?`);
  }
  if (codes.some((c) => c === 'ENOTFOUND' || c === 'EAI_AGAIN') || /ENOTFOUND|EAI_AGAIN|getaddrinfo/.test(raw)) {
    return make(`cannot reach SQL Server ${where}: host "${cfg.server}" not found (DNS); check Server= in ${origin}`);
  }
  if (/certificate|self[- ]signed|CERT_|altnames/i.test(raw)) {
    return make(
      `SQL Server ${where}: its TLS certificate was not accepted (${raw}); install a certificate this machine trusts, ` +
        'or add TrustServerCertificate=true for a server you trust',
    );
  }
  if (codes.includes('EHOSTUNREACH') || codes.includes('ENETUNREACH')) {
    return make(`cannot reach SQL Server ${where}: no route to the host; check Server= in ${origin} and the network`);
  }
  if (code === 'ETIMEOUT') {
    return make(`SQL Server ${where}: no answer to a query within ${Math.round((cfg.requestTimeout ?? 15_000) / 1000)} s (${raw})`);
  }
  if (code === 'ESOCKET' || code === 'ECONNCLOSED') {
    // A server that cannot encrypt may just hang up on a client that asks for it.
    const hint = cfg.options?.encrypt === true ? '; if that server does not support encryption, add Encrypt=false (trusted local servers only)' : '';
    return make(`SQL Server ${where}: connection lost (${raw})${hint}`);
  }
  return make(`SQL Server ${where}: ${raw}${number !== undefined ? ` (error ${number})` : ''}`);
}
