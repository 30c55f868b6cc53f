// `creds init | set NAME [VALUE] | get NAME | list | delete NAME`: the bucket credentials kept in
// SQL Server, per profile. Values are masked on the way out unless --show-secret; `set` without a
// VALUE reads it from stdin or a hidden prompt, so a secret never has to be typed into the shell.
import { CredentialsError, InterruptedError, UsageError } from '../core/errors.js';
import type { Settings } from '../engine/settings.js';
import { describeServer, mssqlConfig, mssqlTarget } from '../credentials/mssql-config.js';
import { checkKeyName, checkProfile, KNOWN_KEYS, MssqlStore, TABLE, type StoredCredential } from '../credentials/mssql-store.js';
import { REQUIRED_KEYS, type CredentialKey } from '../credentials/source.js';
import type { CliIO } from './main.js';

export const CREDS_ACTIONS = ['init', 'set', 'get', 'list', 'delete'] as const;

/**
 * What may be shown of a value: nothing of the secret key, the last 4 characters of a long
 * access key id (enough to tell two apart), the rest in full (an endpoint or a bucket name is
 * not a secret, and seeing it is the point of `get`).
 */
export function maskValue(name: string, value: string): string {
  if (name === 'AWS_SECRET_ACCESS_KEY') return '********';
  if (name === 'AWS_ACCESS_KEY_ID') return value.length >= 12 ? `****${value.slice(-4)}` : '****';
  return value;
}

const isMasked = (name: string): boolean => name === 'AWS_SECRET_ACCESS_KEY' || name === 'AWS_ACCESS_KEY_ID';

function checkValue(name: CredentialKey, value: string): string {
  if (value === '') throw new UsageError(`creds set ${name}: the value is empty`);
  if (/[\r\n]/.test(value)) throw new UsageError(`creds set ${name}: the value spans several lines`);
  if (name === 'AWS_S3_ENDPOINT_URL' && !/^https?:\/\/[^\s/]+/i.test(value)) {
    throw new UsageError(`creds set ${name}: must be an http(s) URL, got "${value}"`);
  }
  return value;
}

export async function credsCommand(settings: Settings, a: Record<string, unknown>, io: CliIO, json: boolean): Promise<number> {
  const action = a['action'] as string;
  const nameArg = a['name'] as string | undefined;
  const valueArg = a['value'] as string | undefined;
  const showSecret = a['show-secret'] === true;
  const profile = checkProfile(settings.profile);
  const out = (line: string): void => void io.stdout.write(line + '\n');

  const needName = (): CredentialKey => {
    if (!nameArg) throw new UsageError(`creds ${action} needs a NAME (one of ${KNOWN_KEYS.join(', ')})`);
    return checkKeyName(nameArg);
  };
  if (action !== 'set' && valueArg !== undefined) throw new UsageError(`creds ${action}: unexpected argument "${valueArg}"`);
  if ((action === 'init' || action === 'list') && nameArg !== undefined) throw new UsageError(`creds ${action} takes no NAME`);
  // Checked before connecting: a usage mistake should not wait for a server.
  const name = action === 'set' || action === 'get' || action === 'delete' ? needName() : undefined;

  const target = mssqlTarget(io.env, settings.mssql);
  if (!target) {
    throw new UsageError('no SQL Server to keep credentials in: set STORAGE_SYNC_MSSQL to a connection string, or "credentials": {"mssql": ...} in the config');
  }
  const where = describeServer(mssqlConfig(target.connectionString));
  const store = new MssqlStore(target);
  try {
    switch (action) {
      case 'init': {
        await store.init();
        if (json) out(JSON.stringify({ event: 'creds-init', table: TABLE, ready: true }));
        else out(`${TABLE} is ready in SQL Server ${where}`);
        return 0;
      }
      case 'set': {
        const key = name!;
        if (valueArg !== undefined && key === 'AWS_SECRET_ACCESS_KEY') {
          io.stderr.write('storage-sync: note: a secret given on the command line stays in the shell history; leave VALUE out to be prompted\n');
        }
        const value = checkValue(key, valueArg ?? (await readValue(io, key)));
        await store.set(profile, key, value);
        if (json) out(JSON.stringify({ event: 'creds-set', profile, name: key }));
        else out(`${key} set for profile ${JSON.stringify(profile)}`);
        return 0;
      }
      case 'get': {
        const key = name!;
        const row = await store.get(profile, key);
        if (!row) throw new CredentialsError(`${key} is not set for profile ${JSON.stringify(profile)} in SQL Server ${where}`);
        if (json) out(JSON.stringify(rowJson(row, showSecret, profile)));
        else out(showSecret ? row.value : maskValue(key, row.value));
        return 0;
      }
      case 'list': {
        const rows = await store.list(profile);
        const missing = REQUIRED_KEYS.filter((k) => !rows.some((r) => r.name === k));
        if (json) {
          out(JSON.stringify({ event: 'creds-list', profile, credentials: rows.map((r) => rowJson(r, showSecret)), missing }));
          return 0;
        }
        if (rows.length === 0) out(`no credentials for profile ${JSON.stringify(profile)} in SQL Server ${where}`);
        const width = Math.max(...rows.map((r) => r.name.length), 4);
        const shown = rows.map((r) => (showSecret ? r.value : maskValue(r.name, r.value)));
        const vwidth = Math.max(...shown.map((v) => v.length), 5);
        rows.forEach((r, i) => out(`${r.name.padEnd(width)}  ${shown[i]!.padEnd(vwidth)}  ${iso(r.updatedAt)}`));
        if (missing.length > 0) out(`missing: ${missing.join(', ')}`);
        return 0;
      }
      case 'delete': {
        const key = name!;
        const deleted = await store.delete(profile, key);
        if (json) out(JSON.stringify({ event: 'creds-delete', profile, name: key, deleted }));
        else out(deleted ? `${key} deleted from profile ${JSON.stringify(profile)}` : `${key} was not set for profile ${JSON.stringify(profile)}`);
        return 0;
      }
      default:
        throw new UsageError(`unknown creds action "${action}" (use ${CREDS_ACTIONS.join(', ')})`);
    }
  } finally {
    await store.close();
  }
}

function iso(d: Date): string {
  return Number.isNaN(d.getTime()) ? String(d) : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function rowJson(r: StoredCredential, showSecret: boolean, profile?: string): Record<string, unknown> {
  return {
    ...(profile !== undefined ? { event: 'creds-get', profile } : {}),
    name: r.name,
    value: showSecret ? r.value : maskValue(r.name, r.value),
    masked: !showSecret && isMasked(r.name),
    updatedAt: iso(r.updatedAt),
  };
}

/** The value from a pipe (`... | storage-sync creds set NAME`), or typed at a hidden prompt. */
async function readValue(io: CliIO, name: string): Promise<string> {
  const stdin = io.stdin;
  if (!stdin) throw new UsageError(`creds set ${name}: give a VALUE, or pipe it on stdin`);
  if (stdin.isTTY && typeof stdin.setRawMode === 'function') return readHidden(io, stdin, name);
  let text = '';
  for await (const chunk of stdin as AsyncIterable<Buffer | string>) text += chunk.toString();
  // `echo secret | ...` and here-strings add one newline; it is never part of the value.
  return text.replace(/\r?\n$/, '');
}

/** Raw mode, no echo: what is typed is never written anywhere, not even as asterisks. */
function readHidden(io: CliIO, stdin: NonNullable<CliIO['stdin']>, name: string): Promise<string> {
  io.stderr.write(`${name} (input hidden): `);
  return new Promise<string>((resolve, reject) => {
    let value = '';
    const finish = (err: Error | undefined): void => {
      stdin.removeListener('data', onData);
      stdin.removeListener('end', onEnd);
      stdin.setRawMode!(false);
      (stdin as { pause?: () => void }).pause?.();
      io.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onEnd = (): void => finish(new UsageError(`creds set ${name}: no value typed`));
    // Arrow, Home and similar keys arrive as escape sequences (ESC [ ... final, ESC O x), a paste
    // in a terminal with bracketed paste as ESC [200~ ... ESC [201~: none of it is the value.
    let esc: 'none' | 'esc' | 'csi' | 'ss3' = 'none';
    const onData = (chunk: Buffer | string): void => {
      for (const ch of chunk.toString()) {
        if (esc !== 'none') {
          if (esc === 'esc') esc = ch === '[' ? 'csi' : ch === 'O' ? 'ss3' : 'none';
          else if (esc === 'ss3' || (ch >= '@' && ch <= '~')) esc = 'none';
          continue;
        }
        if (ch === '\u001b') {
          esc = 'esc';
          continue;
        }
        if (ch === '\r' || ch === '\n') return finish(undefined);
        if (ch === '\u0003') return finish(new InterruptedError('SIGINT'));
        if (ch === '\u0004') return value === '' ? finish(new UsageError(`creds set ${name}: no value typed`)) : finish(undefined);
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else if (ch >= ' ') value += ch;
      }
    };
    stdin.setRawMode!(true);
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    (stdin as { resume?: () => void }).resume?.();
  });
}
