// The few T-SQL constructs the credential store sends, rewritten for SQLite. Anything not listed
// in README.md passes through unchanged and SQLite decides; its errors are mapped to the numbers
// SQL Server uses for the same mistakes.
import type { ServerMessage } from './protocol.js';

export class TsqlError extends Error {
  constructor(readonly info: ServerMessage) {
    super(info.message);
  }
}

type TokKind = 'ws' | 'comment' | 'str' | 'qid' | 'word' | 'param' | 'sysvar' | 'num' | 'punct';
interface Tok {
  t: TokKind;
  text: string;
  /** Unquoted content for str and qid; name without @ for param and sysvar. */
  value: string;
}

/** Reserved words SQL Server names with error 156 ("near the keyword") instead of 102. */
const KEYWORDS = new Set(
  ('ADD ALL ALTER AND ANY AS ASC BEGIN BETWEEN BY CASE CHECK COLLATE COLUMN COMMIT CONSTRAINT CREATE CROSS DEFAULT DELETE DESC ' +
    'DISTINCT DROP ELSE END EXEC EXECUTE EXISTS FOREIGN FROM FULL GROUP HAVING IF IN INDEX INNER INSERT INTO IS JOIN KEY LEFT ' +
    'LIKE NOT NULL ON OR ORDER OUTER PRIMARY REFERENCES RIGHT ROLLBACK SELECT SET TABLE THEN TOP UNION UNIQUE UPDATE VALUES ' +
    'VIEW WHEN WHERE WITH').split(' '),
);

function syntaxError(near: string): TsqlError {
  if (KEYWORDS.has(near.toUpperCase())) {
    return new TsqlError({ number: 156, state: 1, class: 15, message: `Incorrect syntax near the keyword '${near}'.` });
  }
  return new TsqlError({ number: 102, state: 1, class: 15, message: `Incorrect syntax near '${near}'.` });
}

export function tokenize(sql: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const ch = sql[i]!;
    const start = i;
    if (/\s/.test(ch)) {
      while (i < n && /\s/.test(sql[i]!)) i++;
      out.push({ t: 'ws', text: sql.slice(start, i), value: '' });
    } else if (ch === '-' && sql[i + 1] === '-') {
      while (i < n && sql[i] !== '\n') i++;
      out.push({ t: 'comment', text: sql.slice(start, i), value: '' });
    } else if (ch === '/' && sql[i + 1] === '*') {
      // T-SQL block comments nest.
      let depth = 0;
      do {
        if (sql.startsWith('/*', i)) {
          depth++;
          i += 2;
        } else if (sql.startsWith('*/', i)) {
          depth--;
          i += 2;
        } else i++;
      } while (depth > 0 && i < n);
      if (depth > 0) throw new TsqlError({ number: 113, state: 1, class: 15, message: "Missing end comment mark '*/'." });
      out.push({ t: 'comment', text: sql.slice(start, i), value: '' });
    } else if (ch === "'" || ((ch === 'N' || ch === 'n') && sql[i + 1] === "'")) {
      i += ch === "'" ? 1 : 2;
      let v = '';
      for (;;) {
        if (i >= n) {
          const frag = v.length > 20 ? v.slice(0, 20) : v;
          throw new TsqlError({ number: 105, state: 1, class: 15, message: `Unclosed quotation mark after the character string '${frag}'.` });
        }
        if (sql[i] === "'") {
          if (sql[i + 1] === "'") {
            v += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += sql[i];
        i++;
      }
      out.push({ t: 'str', text: sql.slice(start, i), value: v });
    } else if (ch === '[' || ch === '"') {
      const close = ch === '[' ? ']' : '"';
      i++;
      let v = '';
      for (;;) {
        if (i >= n) throw new TsqlError({ number: 105, state: 1, class: 15, message: `Unclosed quotation mark after the character string '${v}'.` });
        if (sql[i] === close) {
          if (sql[i + 1] === close) {
            v += close;
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += sql[i];
        i++;
      }
      out.push({ t: 'qid', text: sql.slice(start, i), value: v });
    } else if (ch === '@') {
      const sys = sql[i + 1] === '@';
      i += sys ? 2 : 1;
      while (i < n && /[\p{L}\p{N}_@#$]/u.test(sql[i]!)) i++;
      const name = sql.slice(start + (sys ? 2 : 1), i);
      if (!name) throw syntaxError('@');
      out.push({ t: sys ? 'sysvar' : 'param', text: sql.slice(start, i), value: name });
    } else if (/[0-9]/.test(ch) || (ch === '.' && /[0-9]/.test(sql[i + 1] ?? ''))) {
      while (i < n && /[0-9.eE]/.test(sql[i]!)) i++;
      out.push({ t: 'num', text: sql.slice(start, i), value: '' });
    } else if (/[\p{L}_#]/u.test(ch)) {
      while (i < n && /[\p{L}\p{N}_#$@]/u.test(sql[i]!)) i++;
      out.push({ t: 'word', text: sql.slice(start, i), value: sql.slice(start, i) });
    } else {
      const two = sql.slice(i, i + 2);
      if (['<>', '!=', '<=', '>=', '!<', '!>'].includes(two)) i += 2;
      else i++;
      out.push({ t: 'punct', text: sql.slice(start, i), value: '' });
    }
  }
  return out;
}

const isBlank = (t: Tok): boolean => t.t === 'ws' || t.t === 'comment';
const kw = (t: Tok | undefined, ...words: string[]): boolean =>
  t !== undefined && t.t === 'word' && words.includes(t.text.toUpperCase());

/** The SQLite value SYSUTCDATETIME() and friends become: fixed-width ISO 8601, UTC, 100 ns digits. */
export const NOW_SQL = "(strftime('%Y-%m-%dT%H:%M:%f0000Z','now'))";
const NOW_FUNCS = ['SYSUTCDATETIME', 'SYSDATETIME', 'GETUTCDATE', 'GETDATE', 'SYSDATETIMEOFFSET'];
const STRING_TYPES = ['NVARCHAR', 'VARCHAR', 'NCHAR', 'CHAR', 'NTEXT', 'TEXT', 'SYSNAME'];
/** Words that start a statement; used to split SET lists and find where IF's condition ends. */
const STATEMENT_WORDS = ['SET', 'SELECT', 'INSERT', 'UPDATE', 'DELETE', 'CREATE', 'DROP', 'IF', 'WAITFOR', 'DECLARE', 'EXEC', 'EXECUTE', 'PRINT', 'BEGIN', 'COMMIT', 'ROLLBACK', 'ALTER', 'TRUNCATE', 'MERGE', 'WITH'];

export interface Rewritten {
  /** The statement as SQLite runs it. */
  sql: string;
  /** Parameter names it references, lower-cased, without @ (bound under these names). */
  params: string[];
  /** Table names as SQLite sees them (lower-cased) → as the client wrote them, for messages. */
  names: Map<string, string>;
  /** The client's text of this statement. */
  text: string;
  /** Names given with AS, lower-cased: result columns without one are unnamed on SQL Server. */
  aliases: Set<string>;
}

export type Statement =
  | { kind: 'set'; nocount?: boolean }
  | { kind: 'tran'; op: 'begin' | 'commit' | 'rollback' }
  | { kind: 'waitfor'; ms: number }
  | { kind: 'if'; cond: Rewritten; then: Statement }
  | { kind: 'sql'; verb: string; rw: Rewritten; insert?: InsertShape };

/** `INSERT [INTO] t (c1, c2) VALUES (e1, e2)`: the columns and each value expression for SQLite. */
export interface InsertShape {
  columns: string[];
  values: Rewritten[];
}

/** Splits a batch into statements at top-level semicolons (a run of SET statements may omit them). */
export function parseBatch(sql: string, database: string): Statement[] {
  const toks = tokenize(sql);
  const chunks: Tok[][] = [];
  let cur: Tok[] = [];
  let depth = 0;
  for (const t of toks) {
    if (t.t === 'punct' && t.text === '(') depth++;
    if (t.t === 'punct' && t.text === ')') depth--;
    if (depth === 0 && t.t === 'punct' && t.text === ';') {
      chunks.push(cur);
      cur = [];
    } else cur.push(t);
  }
  chunks.push(cur);
  const out: Statement[] = [];
  for (const raw of chunks) {
    const c = trim(raw);
    if (!c.length) continue;
    if (kw(c[0], 'SET')) {
      // tedious's connection options arrive as newline-separated SETs without semicolons.
      for (const part of splitAtStatementWords(c)) out.push(parseStatement(part, database));
    } else out.push(parseStatement(c, database));
  }
  return out;
}

function trim(ts: Tok[]): Tok[] {
  let a = 0;
  let b = ts.length;
  while (a < b && isBlank(ts[a]!)) a++;
  while (b > a && isBlank(ts[b - 1]!)) b--;
  return ts.slice(a, b);
}

function splitAtStatementWords(ts: Tok[]): Tok[][] {
  const parts: Tok[][] = [];
  let cur: Tok[] = [];
  let depth = 0;
  ts.forEach((t, i) => {
    if (t.t === 'punct' && t.text === '(') depth++;
    if (t.t === 'punct' && t.text === ')') depth--;
    if (i > 0 && depth === 0 && kw(t, ...STATEMENT_WORDS) && cur.length) {
      parts.push(trim(cur));
      cur = [];
    }
    cur.push(t);
  });
  if (cur.length) parts.push(trim(cur));
  return parts.filter((p) => p.length);
}

function textOf(ts: Tok[]): string {
  return ts.map((t) => t.text).join('');
}

function parseStatement(ts: Tok[], database: string): Statement {
  const first = ts[0]!;
  const verb = first.t === 'word' ? first.text.toUpperCase() : '';
  const sig = ts.filter((t) => !isBlank(t));
  switch (verb) {
    case 'SET': {
      if (kw(sig[1], 'NOCOUNT') && kw(sig[2], 'ON', 'OFF')) return { kind: 'set', nocount: kw(sig[2], 'ON') };
      // Session options (ANSI_NULLS, DATEFORMAT, TEXTSIZE, isolation level ...) have no SQLite
      // counterpart; accepting them is what lets tedious finish its login.
      if (sig[1]?.t === 'param') throw unsupported('SET @variable');
      return { kind: 'set' };
    }
    case 'WAITFOR': {
      if (!kw(sig[1], 'DELAY') || sig[2]?.t !== 'str') throw syntaxError(sig[1]?.text ?? 'WAITFOR');
      const m = /^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/.exec(sig[2].value);
      if (!m) throw new TsqlError({ number: 148, state: 1, class: 15, message: `Incorrect time syntax in time string '${sig[2].value}' used with WAITFOR.` });
      const ms = ((Number(m[1]) * 60 + Number(m[2])) * 60 + Number(m[3] ?? 0)) * 1000 + Number((m[4] ?? '0').padEnd(3, '0'));
      return { kind: 'waitfor', ms };
    }
    case 'BEGIN':
    case 'COMMIT':
    case 'ROLLBACK': {
      // BEGIN TRAN[SACTION] [name]; COMMIT|ROLLBACK [TRAN[SACTION] | WORK] [name]
      const op = verb === 'BEGIN' ? 'begin' : verb === 'COMMIT' ? 'commit' : 'rollback';
      const second = sig[1];
      const hasTranWord = kw(second, 'TRAN', 'TRANSACTION', 'WORK');
      if (op === 'begin' && !kw(second, 'TRAN', 'TRANSACTION')) throw unsupported('BEGIN ... END blocks');
      const rest = sig.slice(hasTranWord ? 2 : 1);
      if (rest.length > 1 || (rest[0] && rest[0].t !== 'word' && rest[0].t !== 'qid')) throw syntaxError(rest[0]!.text);
      return { kind: 'tran', op };
    }
    case 'IF': {
      let depth = 0;
      let at = -1;
      for (let i = 1; i < ts.length; i++) {
        const t = ts[i]!;
        if (t.t === 'punct' && t.text === '(') depth++;
        if (t.t === 'punct' && t.text === ')') depth--;
        if (depth === 0 && kw(t, ...STATEMENT_WORDS)) {
          at = i;
          break;
        }
      }
      if (at < 0) throw syntaxError(textOf(ts.slice(-1)));
      const cond = trim(ts.slice(1, at));
      if (!cond.length) throw syntaxError(ts[at]!.text);
      const rest = trim(ts.slice(at));
      if (kw(rest[0], 'BEGIN')) throw unsupported('IF ... BEGIN ... END');
      if (rest.some((t) => kw(t, 'ELSE'))) throw unsupported('IF ... ELSE');
      return { kind: 'if', cond: rewrite(cond, database, false), then: parseStatement(rest, database) };
    }
    case 'SELECT':
    case 'INSERT':
    case 'UPDATE':
    case 'DELETE':
    case 'CREATE':
    case 'DROP':
    case 'ALTER':
    case 'WITH':
      return { kind: 'sql', verb, rw: rewrite(ts, database, verb === 'CREATE' || verb === 'ALTER'), insert: verb === 'INSERT' ? insertShape(sig, database) : undefined };
    case 'EXEC':
    case 'EXECUTE': {
      const proc = sig[1]?.t === 'word' || sig[1]?.t === 'qid' ? sig[1].value : '';
      throw new TsqlError({ number: 2812, state: 62, class: 16, message: `Could not find stored procedure '${proc}'.` });
    }
    default:
      if (!verb) throw syntaxError(first.text);
      // A statement starting with a name is an implicit EXEC on SQL Server.
      if (!KEYWORDS.has(verb) && !STATEMENT_WORDS.includes(verb)) {
        throw new TsqlError({ number: 2812, state: 62, class: 16, message: `Could not find stored procedure '${first.text}'.` });
      }
      throw unsupported(verb);
  }
}

/** The columns and values of a single-row INSERT, to quote the key of a duplicate (2627). */
function insertShape(sig: Tok[], database: string): InsertShape | undefined {
  let i = 1;
  if (kw(sig[i], 'INTO')) i++;
  i = readName(sig, i).end;
  const list = (at: number): { items: Tok[][]; end: number } | undefined => {
    if (sig[at]?.text !== '(') return undefined;
    const items: Tok[][] = [[]];
    let depth = 0;
    for (let j = at + 1; j < sig.length; j++) {
      const t = sig[j]!;
      if (t.text === '(') depth++;
      if (t.text === ')') {
        if (depth === 0) return { items, end: j + 1 };
        depth--;
      }
      if (depth === 0 && t.text === ',') items.push([]);
      else items[items.length - 1]!.push(t);
    }
    return undefined;
  };
  const cols = list(i);
  if (!cols || !kw(sig[cols.end], 'VALUES')) return undefined;
  const vals = list(cols.end + 1);
  if (!vals || vals.end !== sig.length || vals.items.length !== cols.items.length) return undefined;
  const columns = cols.items.map((c) => (c.length === 1 ? c[0]!.value : ''));
  if (columns.includes('')) return undefined;
  // Blanks were dropped from `sig`; put single spaces back between tokens for SQLite.
  const spaced = (ts: Tok[]): Tok[] => ts.flatMap((t, k) => (k ? [{ t: 'ws' as const, text: ' ', value: '' }, t] : [t]));
  return { columns, values: vals.items.map((v) => rewrite(spaced(v), database, false)) };
}

function unsupported(what: string): TsqlError {
  // 50000 is the number SQL Server gives user-raised errors; nothing real uses it for syntax.
  return new TsqlError({ number: 50000, state: 1, class: 16, message: `The TDS stand-in does not support ${what} (see test/support/tds/README.md).` });
}

/** Multi-part name at ts[i] (word/qid separated by dots): its parts and the index after it. */
function readName(ts: Tok[], i: number): { parts: Tok[]; end: number } {
  const parts: Tok[] = [ts[i]!];
  let j = i + 1;
  while (ts[j]?.t === 'punct' && ts[j]!.text === '.' && (ts[j + 1]?.t === 'word' || ts[j + 1]?.t === 'qid')) {
    parts.push(ts[j + 1]!);
    j += 2;
  }
  return { parts, end: j };
}

function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}
function quoteString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** Drops a `dbo.` (or `<served db>.dbo.`) qualifier from an object name given as text. */
function stripSchemaText(name: string, database: string): string {
  const parts = name.split('.').map((p) => p.replace(/^\[(.*)\]$/, '$1'));
  if (parts.length >= 2 && parts[parts.length - 2]!.toLowerCase() === 'dbo') {
    if (parts.length === 2 || (parts.length === 3 && parts[0]!.toLowerCase() === database.toLowerCase())) return parts[parts.length - 1]!;
  }
  return parts.join('.');
}

/** In `(..., name TYPE` or `, name TYPE` the column name before the type at ts[i]. */
function columnNameBefore(ts: Tok[], i: number): string | undefined {
  let j = i - 1;
  while (j >= 0 && isBlank(ts[j]!)) j--;
  const name = ts[j];
  if (!name || (name.t !== 'word' && name.t !== 'qid')) return undefined;
  j--;
  while (j >= 0 && isBlank(ts[j]!)) j--;
  const before = ts[j];
  if (!before || (before.text !== '(' && before.text !== ',')) return undefined;
  return name.value;
}

function prevSig(ts: Tok[], i: number): number {
  let j = i - 1;
  while (j >= 0 && isBlank(ts[j]!)) j--;
  return j;
}

function nextSig(ts: Tok[], i: number): number {
  let j = i;
  while (j < ts.length && isBlank(ts[j]!)) j++;
  return j;
}

export function rewrite(ts: Tok[], database: string, ddl: boolean): Rewritten {
  let sql = '';
  const params: string[] = [];
  const names = new Map<string, string>();
  const aliases = new Set<string>();
  let limit: string | undefined;
  let i = 0;
  while (i < ts.length) {
    const t = ts[i]!;
    if (t.t === 'comment') {
      sql += ' ';
      i++;
    } else if (t.t === 'str') {
      // `AS 'alias'` names a column in T-SQL; in SQLite it would be a string.
      const prev = ts[prevSig(ts, i)];
      if (kw(prev, 'AS')) {
        aliases.add(t.value.toLowerCase());
        sql += quoteIdent(t.value);
      } else sql += quoteString(t.value);
      i++;
    } else if (t.t === 'param') {
      const p = t.value.toLowerCase();
      if (!params.includes(p)) params.push(p);
      sql += `@${p}`;
      i++;
    } else if (t.t === 'sysvar') {
      const v = t.value.toUpperCase();
      if (v === 'VERSION') sql += quoteString(VERSION_TEXT);
      else if (v === 'TRANCOUNT') {
        sql += `@${TRANCOUNT_PARAM}`;
        if (!params.includes(TRANCOUNT_PARAM)) params.push(TRANCOUNT_PARAM);
      }
      else if (v === 'SERVERNAME') sql += quoteString('tds-stand-in');
      else throw new TsqlError({ number: 137, state: 2, class: 15, message: `Must declare the scalar variable "@@${t.value}".` });
      i++;
    } else if (t.t === 'word' || t.t === 'qid') {
      const { parts, end } = readName(ts, i);
      const upper = t.t === 'word' ? t.text.toUpperCase() : '';
      if (parts.length === 1 && kw(ts[prevSig(ts, i)], 'AS')) aliases.add(t.value.toLowerCase());
      const afterName = nextSig(ts, end);
      const isCall = parts.length === 1 && ts[afterName]?.t === 'punct' && ts[afterName]!.text === '(';
      if (isCall && NOW_FUNCS.includes(upper)) {
        const close = nextSig(ts, afterName + 1);
        if (ts[close]?.text !== ')') throw syntaxError(ts[close]?.text ?? upper);
        sql += NOW_SQL;
        i = close + 1;
      } else if (parts.length === 1 && upper === 'CURRENT_TIMESTAMP') {
        sql += NOW_SQL;
        i = end;
      } else if (isCall && upper === 'OBJECT_ID') {
        const r = objectIdCall(ts, afterName, database);
        sql += r.sql;
        i = r.end;
      } else if (isCall && upper === 'ISNULL') {
        sql += 'IFNULL';
        i = end;
      } else if (isCall && upper === 'LEN') {
        sql += 'LENGTH';
        i = end;
      } else if (parts.length === 1 && upper === 'TOP') {
        // TOP n / TOP (n) → LIMIT n at the end of the statement.
        let j = nextSig(ts, end);
        const paren = ts[j]?.text === '(';
        if (paren) j = nextSig(ts, j + 1);
        const n = ts[j];
        if (!n || (n.t !== 'num' && n.t !== 'param')) throw syntaxError(n?.text ?? 'TOP');
        limit = n.t === 'param' ? `@${n.value.toLowerCase()}` : n.text;
        if (n.t === 'param' && !params.includes(n.value.toLowerCase())) params.push(n.value.toLowerCase());
        j++;
        if (paren) {
          j = nextSig(ts, j);
          if (ts[j]?.text !== ')') throw syntaxError(ts[j]?.text ?? 'TOP');
          j++;
        }
        i = j;
      } else if (ddl && parts.length === 1 && STRING_TYPES.includes(upper) && columnNameBefore(ts, i) !== undefined) {
        // A text column: keep the declared type (COLMETADATA comes from it), make `(MAX)`
        // something SQLite parses, and compare case-insensitively as the default collation does.
        let j = nextSig(ts, end);
        let typeText = t.text;
        if (ts[j]?.text === '(') {
          const k = nextSig(ts, j + 1);
          const arg = ts[k];
          const close = nextSig(ts, k + 1);
          if (!arg || ts[close]?.text !== ')') throw syntaxError(arg?.text ?? t.text);
          if (kw(arg, 'MAX')) typeText += '(2147483647)';
          else if (arg.t === 'num') typeText += `(${arg.text})`;
          else throw syntaxError(arg.text);
          j = close + 1;
        } else j = end;
        sql += typeText;
        if (!kw(ts[nextSig(ts, j)], 'COLLATE')) sql += ' COLLATE NOCASE';
        // SQLite ignores declared lengths; SQL Server refuses longer values (error 8152).
        const col = columnNameBefore(ts, i);
        const len = /\((\d+)\)$/.exec(typeText)?.[1];
        if (col && len && Number(len) < 2147483647) {
          sql += ` CONSTRAINT ${quoteIdent(`tds_len_${col}`)} CHECK (length(${quoteIdent(col)}) <= ${len})`;
        }
        i = j;
      } else if (parts.length === 1 && upper === 'COLLATE') {
        const j = nextSig(ts, end);
        const coll = ts[j];
        if (!coll || (coll.t !== 'word' && coll.t !== 'qid')) throw syntaxError('COLLATE');
        sql += `COLLATE ${/_CI(_|$)/i.test(coll.value) ? 'NOCASE' : 'BINARY'}`;
        i = j + 1;
      } else if (ddl && parts.length === 1 && (upper === 'CLUSTERED' || upper === 'NONCLUSTERED')) {
        i = end;
      } else {
        // Object and column names: a dbo (or <db>.dbo) qualifier goes; SQLite has one schema.
        let kept = parts;
        if (parts.length >= 2) {
          const schema = parts[parts.length - 2]!.value.toLowerCase();
          const dbOk = parts.length === 2 || (parts.length === 3 && parts[0]!.value.toLowerCase() === database.toLowerCase());
          if (schema === 'dbo' && dbOk && parts.length <= 3) kept = parts.slice(-1);
        }
        const written = textOf(ts.slice(i, end));
        const last = kept[kept.length - 1]!;
        if (!names.has(last.value.toLowerCase()) || parts.length > 1) names.set(last.value.toLowerCase(), written);
        sql += kept.map((p) => (p.t === 'qid' ? quoteIdent(p.value) : p.text)).join('.');
        i = end;
      }
    } else {
      sql += t.text;
      i++;
    }
  }
  if (limit !== undefined) sql += ` LIMIT ${limit}`;
  return { sql, params, names, text: textOf(ts), aliases };
}

/** Bound by the server to the session's transaction depth. */
export const TRANCOUNT_PARAM = 'tds_trancount';

export const VERSION_TEXT = 'Microsoft SQL Server 2022 (TDS stand-in for storage-sync tests, executing on SQLite)';

/** OBJECT_ID(N'dbo.t' [, N'U']) → the table's rowid in sqlite_master, or NULL. */
function objectIdCall(ts: Tok[], open: number, database: string): { sql: string; end: number } {
  const args: Tok[] = [];
  let j = nextSig(ts, open + 1);
  for (;;) {
    const a = ts[j];
    if (!a || a.t !== 'str') throw unsupported('OBJECT_ID with anything but string literals');
    args.push(a);
    j = nextSig(ts, j + 1);
    if (ts[j]?.text === ',') {
      j = nextSig(ts, j + 1);
      continue;
    }
    if (ts[j]?.text === ')') break;
    throw syntaxError(ts[j]?.text ?? 'OBJECT_ID');
  }
  const name = stripSchemaText(args[0]!.value, database);
  const type = (args[1]?.value ?? '').trim().toUpperCase();
  const types = type === 'U' ? "('table')" : type === 'V' ? "('view')" : "('table','view','index','trigger')";
  return {
    sql: `(SELECT rowid FROM sqlite_master WHERE type IN ${types} AND name = ${quoteString(name)} COLLATE NOCASE)`,
    end: j + 1,
  };
}

interface SqliteLikeError {
  code?: string;
  message: string;
}

/**
 * SQLite's error for a statement → the SQL Server error for the same mistake. `pkName` looks up
 * a table's primary key constraint name from its schema text.
 */
export function mapSqliteError(
  err: SqliteLikeError,
  stmt: { verb: string; rw: Rewritten },
  database: string,
  pkName: (table: string) => string | undefined,
  duplicateKey?: (table: string) => string | undefined,
): ServerMessage {
  const msg = err.message;
  const code = err.code ?? '';
  const original = (name: string): string => stmt.rw.names.get(name.toLowerCase()) ?? name;
  let m: RegExpExecArray | null;
  if ((m = /^no such table: (?:main\.)?(.+)$/.exec(msg)) || (m = /^unknown database (.+)$/.exec(msg))) {
    const name = original(m[1]!);
    if (stmt.verb === 'DROP') {
      return { number: 3701, state: 5, class: 11, message: `Cannot drop the table '${name}', because it does not exist or you do not have permission.` };
    }
    return { number: 208, state: 1, class: 16, message: `Invalid object name '${name}'.` };
  }
  if ((m = /^table (.+) already exists$/.exec(msg))) {
    return { number: 2714, state: 6, class: 16, message: `There is already an object named '${original(m[1]!.replace(/^"|"$/g, ''))}' in the database.` };
  }
  if ((m = /^no such column: (.+)$/.exec(msg))) {
    return { number: 207, state: 1, class: 16, message: `Invalid column name '${m[1]!.split('.').pop()}'.` };
  }
  if ((m = /^no such function: (.+)$/.exec(msg))) {
    return { number: 195, state: 10, class: 15, message: `'${m[1]}' is not a recognized built-in function name.` };
  }
  if ((m = /^near "(.*)": syntax error$/s.exec(msg))) return syntaxError(m[1]!).info;
  if (/incomplete input/.test(msg)) return syntaxError(lastWord(stmt.rw.text)).info;
  if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE') {
    m = /constraint failed: ([^.]+)\./.exec(msg);
    const table = m?.[1] ?? '';
    const pk = code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
    const cname = (pk ? pkName(table) : undefined) ?? `${pk ? 'PK' : 'UQ'}__${table}`;
    const key = pk ? duplicateKey?.(table) : undefined;
    return {
      number: pk ? 2627 : 2601,
      state: 1,
      class: 14,
      message: pk
        ? `Violation of PRIMARY KEY constraint '${cname}'. Cannot insert duplicate key in object 'dbo.${table}'.${key === undefined ? '' : ` The duplicate key value is (${key}).`}`
        : `Cannot insert duplicate key row in object 'dbo.${table}' with unique index.`,
    };
  }
  if (code === 'SQLITE_CONSTRAINT_NOTNULL' && (m = /NOT NULL constraint failed: ([^.]+)\.(.+)$/.exec(msg))) {
    const op = stmt.verb === 'UPDATE' ? 'UPDATE' : 'INSERT';
    return {
      number: 515,
      state: 2,
      class: 16,
      message: `Cannot insert the value NULL into column '${m[2]}', table '${database}.dbo.${m[1]}'; column does not allow nulls. ${op} fails.`,
    };
  }
  if (code === 'SQLITE_CONSTRAINT_CHECK' && /tds_len_/.test(msg)) {
    // Old wording on purpose: 2628's newer text quotes the value, which may be a secret.
    return { number: 8152, state: 13, class: 16, message: 'String or binary data would be truncated.' };
  }
  return { number: 50000, state: 1, class: 16, message: `SQLite: ${msg}` };
}

function lastWord(s: string): string {
  const m = /(\S+)\s*$/.exec(s);
  return m?.[1] ?? '';
}
