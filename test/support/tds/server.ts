// A SQL Server stand-in for tests: a real TDS 7.4 endpoint on loopback that the unmodified
// mssql/tedious driver talks to, executing statements on SQLite (better-sqlite3). See README.md
// in this folder for what it accepts and how it differs from SQL Server.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import Database from 'better-sqlite3';
import {
  COLLATION,
  DONE,
  ENCRYPT,
  PKT,
  PacketReader,
  ProtocolError,
  TDS_7_4,
  TOKEN,
  TokenWriter,
  UnsupportedTypeError,
  framePackets,
  parseDateTimeText,
  parseLogin7,
  parsePrelogin,
  parseRpc,
  parseSqlBatch,
  parseTransactionManager,
  preloginResponse,
  TM,
  type ColumnKind,
  type IncomingMessage,
  type ParamValue,
  type ResultColumn,
  type ServerMessage,
} from './protocol.js';
import { TRANCOUNT_PARAM, TsqlError, mapSqliteError, parseBatch, type InsertShape, type Rewritten, type Statement } from './tsql.js';

export interface TdsServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
  /** Default 'sa'. */
  user?: string;
  /** Default: random. */
  password?: string;
  /** Default 'storage'. */
  database?: string;
  /** SQLite file; default in-memory. */
  file?: string;
}

export interface TdsServer {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** ADO-style, accepted by mssql: `Server=127.0.0.1,PORT;Database=storage;User Id=sa;Password=...;Encrypt=false` */
  connectionString: string;
  /** the SQLite database, for tests to inspect */
  db: import('better-sqlite3').Database;
  /** number of currently open client connections (to prove the pool is closed at the end) */
  connections(): number;
  /** Resolves once no client connection is open (a closed pool's sockets close asynchronously). */
  idle(): Promise<void>;
  /** Every SQL batch and RPC received so far, in order: to check values came as parameters. */
  requests(): ReceivedRequest[];
  close(): Promise<void>;
}

export interface ReceivedRequest {
  kind: 'batch' | 'rpc';
  /** The batch text, or sp_executesql's @statement. */
  sql: string;
  /** sp_executesql's parameters after @statement and @params; `type` as declared on the wire. */
  params: { name: string; type: string; value: ParamValue }[];
}

const SERVER_NAME = 'tds-stand-in';
const PROG_NAME = 'Microsoft SQL Server';
const PROG_VERSION: [number, number, number, number] = [16, 0, 0x10, 0x00];
/** CurCmd values SQL Server puts in DONE tokens. */
const CUR_CMD: Record<string, number> = { SELECT: 0xc1, INSERT: 0xc3, DELETE: 0xc4, UPDATE: 0xc5, CREATE: 0xc6, DROP: 0xbf, WITH: 0xc1, SET: 0xb9 };
const SP_EXECUTESQL = 10;
/** Feature ids in LOGIN7's FeatureExt that tedious sends. */
const FEATURE_UTF8 = 0x0a;

interface Ctx {
  db: Database.Database;
  user: string;
  password: string;
  database: string;
  /**
   * The session with an open transaction. Every session shares one SQLite connection, so while
   * a transaction is open the others wait, as if it held a lock on the whole database.
   */
  txOwner: unknown;
  txWaiters: (() => void)[];
  received: ReceivedRequest[];
}

export async function startTdsServer(opts: TdsServerOptions = {}): Promise<TdsServer> {
  const host = opts.host ?? '127.0.0.1';
  const user = opts.user ?? 'sa';
  const password = opts.password ?? randomPassword();
  const database = opts.database ?? 'storage';
  const db = new Database(opts.file ?? ':memory:');
  if (opts.file) {
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
  }
  const ctx: Ctx = { db, user, password, database, txOwner: undefined, txWaiters: [], received: [] };
  const sockets = new Set<net.Socket>();
  let idleWaiters: (() => void)[] = [];
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => {
      sockets.delete(sock);
      if (sockets.size === 0) {
        const w = idleWaiters;
        idleWaiters = [];
        for (const f of w) f();
      }
    });
    new Session(sock, ctx);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  let closed: Promise<void> | undefined;
  return {
    host,
    port,
    user,
    password,
    database,
    connectionString: `Server=${host},${port};Database=${database};User Id=${connValue(user)};Password=${connValue(password)};Encrypt=false`,
    db,
    connections: () => sockets.size,
    idle: () => (sockets.size === 0 ? Promise.resolve() : new Promise<void>((r) => idleWaiters.push(r))),
    requests: () => ctx.received.map((r) => ({ ...r, params: r.params.map((p) => ({ ...p })) })),
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => {
          db.close();
          resolve();
        });
        for (const s of sockets) s.destroy();
      });
      return closed;
    },
  };
}

/** Letters and digits only, so it needs no quoting in a connection string or a shell. */
function randomPassword(): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
  return Array.from(randomBytes(24), (b) => alphabet[b % alphabet.length]).join('');
}

/** Quotes a connection-string value that contains separators (doubling the quote character). */
function connValue(v: string): string {
  return /[;="'\s{}]/.test(v) || v === '' ? `"${v.replace(/"/g, '""')}"` : v;
}

/** A request whose response is still being produced, so ATTENTION can stop it. */
interface Running {
  cancelled: boolean;
  wake?: () => void;
}

class Session {
  private state: 'prelogin' | 'login' | 'ready' | 'closed' = 'prelogin';
  private packetSize = 4096;
  private tdsVersion = TDS_7_4;
  private nocount = false;
  /** @@TRANCOUNT: nested BEGINs count, only the outermost COMMIT commits. */
  private tranDepth = 0;
  private txDescriptor = Buffer.alloc(8);
  private queue: IncomingMessage[] = [];
  private busy = false;
  private running: Running | undefined;
  private readonly reader: PacketReader;

  constructor(
    private readonly sock: net.Socket,
    private readonly ctx: Ctx,
  ) {
    sock.setNoDelay(true);
    this.reader = new PacketReader(
      (m) => this.enqueue(m),
      () => this.attention(),
    );
    sock.on('data', (chunk: Buffer) => {
      if (this.state === 'closed') return;
      try {
        this.reader.push(chunk);
      } catch {
        this.abort();
      }
    });
    // A client that vanishes mid-request is normal (pool shutdown, killed process).
    sock.on('error', () => {
      this.state = 'closed';
    });
    sock.on('close', () => {
      this.state = 'closed';
      if (this.running) {
        this.running.cancelled = true;
        this.running.wake?.();
      }
      // A connection that goes away rolls back its open transaction.
      if (this.tranDepth > 0) this.endTransaction('rollback');
    });
  }

  private send(type: number, payload: Buffer): void {
    if (this.state === 'closed' || this.sock.destroyed) return;
    for (const p of framePackets(type, payload, this.packetSize)) this.sock.write(p);
  }

  /** Malformed input: SQL Server drops such connections without a reply. */
  private abort(): void {
    this.state = 'closed';
    this.sock.destroy();
  }

  private enqueue(m: IncomingMessage): void {
    this.queue.push(m);
    if (!this.busy) void this.drain();
  }

  private async drain(): Promise<void> {
    this.busy = true;
    try {
      while (this.queue.length && this.state !== 'closed') {
        const m = this.queue.shift()!;
        try {
          await this.handle(m);
        } catch {
          this.abort();
        }
      }
    } finally {
      this.busy = false;
    }
  }

  /**
   * ATTENTION: stop the running request; its response ends, then the acknowledgement (DONE with
   * ATTN) follows as a message of its own, which is where tedious looks for it.
   */
  private attention(): void {
    if (this.state !== 'ready') return;
    if (this.running) {
      this.running.cancelled = true;
      this.running.wake?.();
      // handle() sends the acknowledgement after the request's own (cut short) response.
      return;
    }
    this.send(PKT.REPLY, new TokenWriter().done(TOKEN.DONE, DONE.ATTN, 0, 0).toBuffer());
  }

  private async handle(m: IncomingMessage): Promise<void> {
    switch (this.state) {
      case 'prelogin':
        if (m.type === PKT.PRELOGIN) return this.prelogin(m.data);
        if (m.type === PKT.LOGIN7) return this.login(m.data);
        throw new ProtocolError(`expected PRELOGIN, got 0x${m.type.toString(16)}`);
      case 'login':
        if (m.type === PKT.LOGIN7) return this.login(m.data);
        throw new ProtocolError(`expected LOGIN7, got 0x${m.type.toString(16)}`);
      case 'ready':
        return this.request(m);
      case 'closed':
        return;
    }
  }

  private prelogin(data: Buffer): void {
    const p = parsePrelogin(data);
    this.send(PKT.REPLY, preloginResponse());
    if (p.encryption === ENCRYPT.ON || p.encryption === ENCRYPT.REQ) {
      // Client requires encryption, server supports none: MS-TDS says the connection ends here.
      this.state = 'closed';
      this.sock.end();
      return;
    }
    this.state = 'login';
  }

  private login(data: Buffer): void {
    const l = parseLogin7(data);
    const w = new TokenWriter();
    const fail = (...errors: ServerMessage[]): void => {
      for (const e of errors) w.message('error', { serverName: SERVER_NAME, ...e });
      w.done(TOKEN.DONE, DONE.ERROR, 0, 0);
      this.send(PKT.REPLY, w.toBuffer());
      this.state = 'closed';
      this.sock.end();
    };
    const loginFailed: ServerMessage = { number: 18456, state: 1, class: 14, message: `Login failed for user '${l.userName}'.` };
    if (l.integratedSecurity || l.userName.toLowerCase() !== this.ctx.user.toLowerCase() || l.password !== this.ctx.password) {
      return fail(loginFailed);
    }
    if (l.database && l.database.toLowerCase() !== this.ctx.database.toLowerCase()) {
      // SQL Server sends both: the reason, then the generic login failure (which tedious reports).
      return fail({ number: 4060, state: 1, class: 11, message: `Cannot open database "${l.database}" requested by the login. The login failed.` }, loginFailed);
    }
    if (l.tdsVersion >= 0x73000000 && l.tdsVersion < TDS_7_4) this.tdsVersion = l.tdsVersion;
    this.packetSize = Math.min(Math.max(l.packetSize || 4096, 512), 32767);
    const db = this.ctx.database;
    w.envChange(1, db, 'master');
    w.message('info', { number: 5701, state: 2, class: 0, message: `Changed database context to '${db}'.`, serverName: SERVER_NAME });
    w.envChange(2, 'us_english', '');
    w.message('info', { number: 5703, state: 1, class: 0, message: 'Changed language setting to us_english.', serverName: SERVER_NAME });
    w.envChange(7, COLLATION, Buffer.alloc(0));
    w.loginAck(PROG_NAME, PROG_VERSION, this.tdsVersion);
    w.envChange(4, String(this.packetSize), String(this.packetSize));
    if (l.features.size) {
      // Acknowledge UTF-8 support as "no": the served collation is Latin1.
      const acks: [number, Buffer][] = [];
      if (l.features.has(FEATURE_UTF8)) acks.push([FEATURE_UTF8, Buffer.from([0])]);
      if (acks.length) w.featureExtAck(acks);
    }
    w.done(TOKEN.DONE, DONE.FINAL, 0, 0);
    this.send(PKT.REPLY, w.toBuffer());
    this.state = 'ready';
  }

  /** Waits while another session has a transaction open; false if cancelled meanwhile. */
  private async waitForDatabase(running: Running): Promise<boolean> {
    while (this.ctx.txOwner !== undefined && this.ctx.txOwner !== this) {
      await new Promise<void>((resolve) => {
        this.ctx.txWaiters.push(resolve);
        running.wake = resolve;
      });
      running.wake = undefined;
      if (running.cancelled) return false;
    }
    return true;
  }

  private beginTransaction(w: TokenWriter): void {
    if (this.tranDepth === 0) {
      this.ctx.db.exec('BEGIN');
      this.ctx.txOwner = this;
      this.txDescriptor = randomBytes(8);
    }
    this.tranDepth++;
    w.envChange(8, this.txDescriptor, Buffer.alloc(0));
  }

  /** COMMIT (outermost only) or ROLLBACK (all levels); writes the ENVCHANGE if `w` is given. */
  private endTransaction(op: 'commit' | 'rollback', w?: TokenWriter): void {
    if (op === 'commit' && this.tranDepth > 1) {
      this.tranDepth--;
      return;
    }
    if (this.ctx.db.inTransaction) this.ctx.db.exec(op === 'commit' ? 'COMMIT' : 'ROLLBACK');
    this.tranDepth = 0;
    w?.envChange(op === 'commit' ? 9 : 10, Buffer.alloc(0), this.txDescriptor);
    this.ctx.txOwner = undefined;
    const waiters = this.ctx.txWaiters;
    this.ctx.txWaiters = [];
    for (const f of waiters) f();
  }

  /** BEGIN/COMMIT/ROLLBACK from a TRANSACTION_MANAGER request or T-SQL. */
  private transaction(op: 'begin' | 'commit' | 'rollback', w: TokenWriter): ServerMessage | undefined {
    if (op === 'begin') {
      this.beginTransaction(w);
      return undefined;
    }
    if (this.tranDepth === 0) {
      const n = op === 'commit' ? 3902 : 3903;
      return { number: n, state: 1, class: 16, message: `The ${op.toUpperCase()} TRANSACTION request has no corresponding BEGIN TRANSACTION.` };
    }
    this.endTransaction(op, w);
    return undefined;
  }

  private async request(m: IncomingMessage): Promise<void> {
    const w = new TokenWriter();
    const running: Running = { cancelled: false };
    this.running = running;
    if (m.resetConnection) {
      // sp_reset_connection: session options back to their login values, and (unless told to
      // keep it) an open transaction rolled back.
      this.nocount = false;
      if (!m.resetSkipTran && this.tranDepth > 0) this.endTransaction('rollback', w);
      w.envChange(18, Buffer.alloc(0), Buffer.alloc(0));
    }
    if (m.ignore) {
      // The client gave up on this message while sending it; it expects an ordinary reply.
      this.running = undefined;
      w.done(TOKEN.DONE, DONE.FINAL, 0, 0);
      this.send(PKT.REPLY, w.toBuffer());
      return;
    }
    try {
      switch (m.type) {
        case PKT.SQL_BATCH: {
          const text = parseSqlBatch(m.data);
          this.ctx.received.push({ kind: 'batch', sql: text, params: [] });
          await this.runBatch(w, text, new Map(), false, running);
          break;
        }
        case PKT.RPC:
          await this.runRpc(w, m.data, running);
          break;
        case PKT.TRANSACTION_MANAGER: {
          const op = parseTransactionManager(m.data);
          const name = op === TM.BEGIN ? 'begin' : op === TM.COMMIT ? 'commit' : op === TM.ROLLBACK ? 'rollback' : undefined;
          if (name === 'begin' && !(await this.waitForDatabase(running))) {
            w.done(TOKEN.DONE, DONE.FINAL, 0, 0);
            break;
          }
          const err = name
            ? this.transaction(name, w)
            : { number: 50000, state: 1, class: 16, message: 'The TDS stand-in supports only BEGIN, COMMIT and ROLLBACK transaction requests.' };
          if (err) this.error(w, err);
          w.done(TOKEN.DONE, err ? DONE.ERROR : DONE.FINAL, 0, 0);
          break;
        }
        default:
          throw new ProtocolError(`unexpected message type 0x${m.type.toString(16)}`);
      }
    } finally {
      this.running = undefined;
    }
    this.send(PKT.REPLY, w.toBuffer());
    if (running.cancelled) this.send(PKT.REPLY, new TokenWriter().done(TOKEN.DONE, DONE.ATTN, 0, 0).toBuffer());
  }

  private error(w: TokenWriter, e: ServerMessage): void {
    w.message('error', { serverName: SERVER_NAME, lineNumber: 1, ...e });
  }

  private async runRpc(w: TokenWriter, data: Buffer, running: Running): Promise<void> {
    let rpc;
    try {
      rpc = parseRpc(data);
    } catch (err) {
      if (!(err instanceof UnsupportedTypeError)) throw err;
      this.error(w, {
        number: 8009,
        state: 1,
        class: 16,
        message: `The incoming tabular data stream (TDS) remote procedure call (RPC) protocol stream is incorrect. Data type 0x${err.typeId.toString(16).toUpperCase()} is unknown.`,
      });
      w.done(TOKEN.DONEPROC, DONE.ERROR, 0, 0);
      return;
    }
    const isExecSql = rpc.procId === SP_EXECUTESQL || rpc.procName?.toLowerCase().replace(/^(sys\.|dbo\.)/, '') === 'sp_executesql';
    if (!isExecSql) {
      const name = rpc.procName ?? `procedure id ${rpc.procId}`;
      this.error(w, { number: 2812, state: 62, class: 16, message: `Could not find stored procedure '${name}'.` });
      w.done(TOKEN.DONEPROC, DONE.ERROR, 0, 0);
      return;
    }
    const overlong = rpc.params.findIndex((p) => p.overlong);
    if (overlong >= 0) {
      // SQL Server checks each value against its declared length before running anything.
      const p = rpc.params[overlong]!;
      this.error(w, {
        number: 8016,
        state: 30,
        class: 16,
        message: `The incoming tabular data stream (TDS) remote procedure call (RPC) protocol stream is incorrect. Parameter ${overlong + 1} ("${p.name}"): Data type 0x${p.typeId.toString(16).toUpperCase()} has an invalid data length or metadata length.`,
      });
      w.done(TOKEN.DONEPROC, DONE.ERROR, 0, 0);
      return;
    }
    const [stmtParam, declParam, ...rest] = rpc.params;
    if (!stmtParam || typeof stmtParam.value !== 'string') {
      this.error(w, { number: 214, state: 2, class: 16, message: "Procedure expects parameter '@statement' of type 'ntext/nchar/nvarchar'." });
      w.done(TOKEN.DONEPROC, DONE.ERROR, 0, 0);
      return;
    }
    this.ctx.received.push({ kind: 'rpc', sql: stmtParam.value, params: rest.map((p) => ({ name: p.name, type: p.typeName, value: p.value })) });
    const declared = typeof declParam?.value === 'string' ? declaredNames(declParam.value) : new Set<string>();
    const params = new Map<string, ParamValue>();
    for (const p of rest) {
      const name = p.name.replace(/^@/, '').toLowerCase();
      if (!declared.has(name)) {
        this.error(w, { number: 8145, state: 2, class: 16, message: `@${name} is not a parameter for procedure sp_executesql.` });
        w.done(TOKEN.DONEPROC, DONE.ERROR, 0, 0);
        return;
      }
      params.set(name, p.value);
    }
    // SET options inside sp_executesql last until it returns, as for any procedure.
    const nocount = this.nocount;
    const ok = await this.runBatch(w, stmtParam.value, params, true, running);
    this.nocount = nocount;
    if (ok) w.returnStatus(0);
    w.done(TOKEN.DONEPROC, ok ? DONE.FINAL : DONE.ERROR, 0, 0);
  }

  /**
   * Runs each statement and writes its tokens. In an RPC the per-statement DONEs are DONEINPROC
   * and the caller ends the response with DONEPROC. Returns false if an error ended the batch.
   */
  private async runBatch(w: TokenWriter, text: string, params: Map<string, ParamValue>, inProc: boolean, running: Running): Promise<boolean> {
    const doneToken = inProc ? TOKEN.DONEINPROC : TOKEN.DONE;
    let stmts: Statement[];
    try {
      stmts = parseBatch(text, this.ctx.database);
    } catch (err) {
      if (!(err instanceof TsqlError)) throw err;
      this.error(w, err.info);
      w.done(doneToken, DONE.ERROR | (inProc ? DONE.MORE : 0), 0, 0);
      return false;
    }
    let ok = true;
    for (let i = 0; i < stmts.length; i++) {
      const more = inProc || i < stmts.length - 1 ? DONE.MORE : 0;
      const stmt = stmts[i]!;
      if (running.cancelled || (needsDatabase(stmt) && !(await this.waitForDatabase(running)))) {
        w.done(doneToken, DONE.FINAL | (inProc ? DONE.MORE : 0), 0, 0);
        return false;
      }
      const r = await this.runStatement(stmt, params, running);
      if (r.error) {
        this.error(w, r.error);
        if (r.terminated) w.message('info', { number: 3621, state: 0, class: 0, message: 'The statement has been terminated.', serverName: SERVER_NAME, lineNumber: 1 });
        ok = false;
        if (!r.terminated) {
          // A compile-time error ends the whole batch.
          w.done(doneToken, DONE.ERROR | (inProc ? DONE.MORE : 0), 0, 0);
          return false;
        }
        w.done(doneToken, DONE.ERROR | more, r.curCmd, 0);
        continue;
      }
      if (r.env) w.raw(r.env);
      if (r.columns) {
        w.colMetadata(r.columns);
        for (const row of r.rows ?? []) w.row(r.columns, row);
      }
      const counted = r.count !== undefined && !this.nocount;
      w.done(doneToken, more | (counted ? DONE.COUNT : 0), r.curCmd, counted ? r.count! : 0);
    }
    if (!stmts.length) w.done(doneToken, inProc ? DONE.MORE : DONE.FINAL, 0, 0);
    return ok;
  }

  private async runStatement(s: Statement, params: Map<string, ParamValue>, running: Running): Promise<StatementResult> {
    switch (s.kind) {
      case 'set':
        if (s.nocount !== undefined) this.nocount = s.nocount;
        return { curCmd: CUR_CMD.SET! };
      case 'tran': {
        const env = new TokenWriter();
        const error = this.transaction(s.op, env);
        return { curCmd: s.op === 'begin' ? 0xd4 : s.op === 'commit' ? 0xd5 : 0xd6, error, env: env.toBuffer() };
      }
      case 'waitfor':
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, s.ms);
          running.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        running.wake = undefined;
        return { curCmd: 0xbd };
      case 'if': {
        const cond = this.sqlite({ kind: 'sql', verb: 'SELECT', rw: { ...s.cond, sql: `SELECT CASE WHEN ${s.cond.sql} THEN 1 ELSE 0 END` } }, params);
        if (cond.error) return cond;
        const truth = cond.rows?.[0]?.[0];
        if (truth !== 1) return { curCmd: 0 };
        return this.runStatement(s.then, params, running);
      }
      case 'sql':
        return this.sqlite(s, params);
    }
  }

  /** The key columns' values an INSERT tried to write, as SQL Server quotes them in 2627. */
  private duplicateKey(s: { insert?: InsertShape }, table: string, bind: Record<string, unknown>): string | undefined {
    if (!s.insert) return undefined;
    try {
      const db = this.ctx.db;
      const pk = (db.prepare('SELECT name, pk FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk').all(table) as { name: string }[]).map((r) => r.name.toLowerCase());
      const cols = s.insert.columns.map((c) => c.toLowerCase());
      if (!pk.length || !pk.every((c) => cols.includes(c))) return undefined;
      const values = db.prepare(`SELECT ${s.insert.values.map((v) => v.sql).join(', ')}`).raw(true).get(bind) as unknown[];
      return pk.map((c) => {
        const v = values[cols.indexOf(c)];
        return v === null || v === undefined ? '<NULL>' : Buffer.isBuffer(v) ? `0x${v.toString('hex')}` : String(v);
      }).join(', ');
    } catch {
      return undefined;
    }
  }

  private sqlite(s: { kind: 'sql'; verb: string; rw: Rewritten; insert?: InsertShape }, params: Map<string, ParamValue>): StatementResult {
    const curCmd = CUR_CMD[s.verb] ?? 0;
    const bind: Record<string, unknown> = {};
    for (const p of s.rw.params) {
      if (p === TRANCOUNT_PARAM) {
        bind[p] = this.tranDepth;
        continue;
      }
      if (!params.has(p)) return { curCmd, error: { number: 137, state: 2, class: 15, message: `Must declare the scalar variable "@${p}".` } };
      bind[p] = toSqlite(params.get(p)!);
    }
    const db = this.ctx.db;
    let stmt: Database.Statement;
    try {
      stmt = db.prepare(s.rw.sql);
    } catch (err) {
      return { curCmd, error: mapSqliteError(err as Error, s, this.ctx.database, (t) => pkName(db, t)) };
    }
    try {
      if (stmt.reader) {
        stmt.safeIntegers(true);
        stmt.raw(true);
        const cols = stmt.columns();
        const rows = stmt.all(bind) as unknown[][];
        const columns = shapeColumns(cols, rows);
        columns.forEach((c, i) => {
          const src = cols[i]!;
          if (src.table && src.column) c.nullable = !notNull(db, src.table, src.column);
          // SQL Server leaves an expression without an alias unnamed (SQLite names it by its text).
          else if (!s.rw.aliases.has(c.name.toLowerCase())) c.name = '';
        });
        return { curCmd, columns, rows: rows.map((r) => r.map((v, i) => encodeValue(columns[i]!, v))), count: rows.length };
      }
      const info = stmt.run(bind);
      const counts = s.verb === 'INSERT' || s.verb === 'UPDATE' || s.verb === 'DELETE';
      return { curCmd, count: counts ? info.changes : undefined };
    } catch (err) {
      const e = mapSqliteError(err as Error, s, this.ctx.database, (t) => pkName(db, t), (t) => this.duplicateKey(s, t, bind));
      // Constraint violations end the statement only; the batch goes on, as in SQL Server.
      const terminated = /^SQLITE_CONSTRAINT/.test((err as { code?: string }).code ?? '');
      return { curCmd, error: e, terminated };
    }
  }
}

/**
 * Whether a statement touches the shared database, so has to wait while another session has a
 * transaction open. SET, WAITFOR and a SELECT without FROM (tedious's options, mssql's `SELECT 1`
 * validation) do not, as they take no locks on SQL Server either.
 */
function needsDatabase(s: Statement): boolean {
  switch (s.kind) {
    case 'set':
    case 'waitfor':
      return false;
    case 'tran':
      return s.op === 'begin';
    case 'if':
      return true;
    case 'sql':
      return !(s.verb === 'SELECT' && !/\bFROM\b/i.test(s.rw.sql));
  }
}

interface StatementResult {
  curCmd: number;
  columns?: ResultColumn[];
  rows?: unknown[][];
  count?: number;
  error?: ServerMessage;
  /** The error ended this statement only (SQL Server's "The statement has been terminated."). */
  terminated?: boolean;
  /** ENVCHANGE tokens (transaction begin/end) to send before the statement's DONE. */
  env?: Buffer;
}

/** `@a nvarchar(10), @b int OUTPUT` → {a, b}. */
function declaredNames(decl: string): Set<string> {
  const out = new Set<string>();
  for (const m of decl.matchAll(/@([\p{L}\p{N}_@#$]+)/gu)) out.add(m[1]!.toLowerCase());
  return out;
}

function toSqlite(v: ParamValue): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint' || Buffer.isBuffer(v)) return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return v.text;
}

function notNull(db: Database.Database, table: string, column: string): boolean {
  const cols = db.prepare('SELECT name, "notnull" AS nn FROM pragma_table_info(?)').all(table) as { name: string; nn: number }[];
  return cols.some((c) => c.name.toLowerCase() === column.toLowerCase() && c.nn === 1);
}

function pkName(db: Database.Database, table: string): string | undefined {
  const row = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE").get(table) as { sql?: string } | undefined;
  return row?.sql ? /CONSTRAINT\s+["[`]?(\w+)["\]`]?\s+PRIMARY\s+KEY/i.exec(row.sql)?.[1] : undefined;
}

/** The column's SQL Server type from the SQLite declared type, as SQL Server would report it. */
function declaredKind(type: string | null): ResultColumn | undefined {
  if (!type) return undefined;
  const t = type.toUpperCase();
  const len = /\((\d+)/.exec(t)?.[1];
  if (/CHAR|TEXT|CLOB|XML|SYSNAME|UNIQUEIDENTIFIER/.test(t)) {
    const n = len ? Number(len) : Infinity;
    return { name: '', kind: 'nvarchar', maxChars: n <= 4000 ? n : 'max' };
  }
  if (/BIGINT/.test(t)) return { name: '', kind: 'bigint', maxChars: 0 };
  if (/INT/.test(t)) return { name: '', kind: 'int', maxChars: 0 };
  if (/^BIT/.test(t)) return { name: '', kind: 'bit', maxChars: 0 };
  if (/DATETIME|SMALLDATETIME/.test(t)) return { name: '', kind: 'datetime2', maxChars: 0 };
  if (/REAL|FLOA|DOUB|DEC|NUMERIC|MONEY/.test(t)) return { name: '', kind: 'float', maxChars: 0 };
  if (/BINARY|BLOB|IMAGE/.test(t)) return { name: '', kind: 'varbinary', maxChars: 0 };
  return { name: '', kind: 'nvarchar', maxChars: 'max' };
}

function fits(kind: ColumnKind, v: unknown): boolean {
  if (v === null) return true;
  switch (kind) {
    case 'nvarchar':
      return typeof v === 'string' || typeof v === 'bigint' || typeof v === 'number';
    case 'int':
      return typeof v === 'bigint' && v >= -2147483648n && v <= 2147483647n;
    case 'bigint':
      return typeof v === 'bigint';
    case 'bit':
      return typeof v === 'bigint' || typeof v === 'number';
    case 'float':
      return typeof v === 'number' || typeof v === 'bigint';
    case 'datetime2':
      return typeof v === 'string' && parseDateTimeText(v) !== undefined;
    case 'varbinary':
      return Buffer.isBuffer(v);
  }
}

/** Column types: declared type first, else the values' JS type; text wide enough for the values. */
function shapeColumns(cols: { name: string; type: string | null }[], rows: unknown[][]): ResultColumn[] {
  return cols.map((c, i) => {
    const values = rows.map((r) => r[i]);
    let col = declaredKind(c.type);
    if (col && !values.every((v) => fits(col!.kind, v))) col = undefined;
    if (!col) {
      const v = values.find((x) => x !== null && x !== undefined);
      if (v === undefined) col = { name: '', kind: 'int', maxChars: 0 };
      // A DATETIME2 parameter or SYSUTCDATETIME() passed through an expression keeps its type.
      else if (values.every((x) => x === null || (typeof x === 'string' && CANONICAL_DATETIME.test(x)))) col = { name: '', kind: 'datetime2', maxChars: 0 };
      else if (typeof v === 'bigint') col = { name: '', kind: values.every((x) => fits('int', x)) ? 'int' : 'bigint', maxChars: 0 };
      else if (typeof v === 'number') col = { name: '', kind: 'float', maxChars: 0 };
      else if (Buffer.isBuffer(v) && values.every((x) => fits('varbinary', x))) col = { name: '', kind: 'varbinary', maxChars: 0 };
      else col = { name: '', kind: 'nvarchar', maxChars: 4000 };
      if (!values.every((x) => fits(col!.kind, x))) col = { name: '', kind: 'nvarchar', maxChars: 'max' };
    }
    if (col.kind === 'nvarchar' && col.maxChars !== 'max') {
      const longest = Math.max(0, ...values.map((v) => (v === null ? 0 : textOf(v).length)));
      if (longest > col.maxChars) col.maxChars = longest <= 4000 ? 4000 : 'max';
    }
    return { ...col, name: c.name };
  });
}

/** How datetimes are stored (see protocol.ts readTypedValue and tsql.ts NOW_SQL). */
const CANONICAL_DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$/;

function textOf(v: unknown): string {
  if (Buffer.isBuffer(v)) return `0x${v.toString('hex').toUpperCase()}`;
  return String(v);
}

function encodeValue(col: ResultColumn, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  switch (col.kind) {
    case 'nvarchar':
      return textOf(v);
    case 'int':
      return Number(v);
    case 'bigint':
      return BigInt(v as bigint);
    case 'bit':
      return Number(v) !== 0;
    case 'float':
      return Number(v);
    case 'datetime2':
      return parseDateTimeText(v as string);
    case 'varbinary':
      return v;
  }
}
