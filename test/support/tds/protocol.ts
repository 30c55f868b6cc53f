// MS-TDS 7.4 wire format for the stand-in server: packet framing, the client messages it reads
// (PRELOGIN, LOGIN7, SQL batch, RPC with typed parameters) and the tokens it writes.
// Layouts follow [MS-TDS] and what tedious 19 (node_modules/tedious/lib) sends and parses.

export const PKT = {
  SQL_BATCH: 0x01,
  RPC: 0x03,
  REPLY: 0x04,
  ATTENTION: 0x06,
  BULK_LOAD: 0x07,
  TRANSACTION_MANAGER: 0x0e,
  LOGIN7: 0x10,
  PRELOGIN: 0x12,
} as const;

const STATUS_EOM = 0x01;
const STATUS_IGNORE = 0x02;
const STATUS_RESET = 0x08;
const STATUS_RESET_SKIPTRAN = 0x10;
const HEADER = 8;

export const TDS_7_4 = 0x74000004;

export interface IncomingMessage {
  type: number;
  data: Buffer;
  /** The client asked for sp_reset_connection semantics before this request. */
  resetConnection: boolean;
  /** ... keeping an open transaction (RESETCONNECTIONSKIPTRAN). */
  resetSkipTran: boolean;
  /** The client abandoned the message part way (IGNORE bit on its last packet). */
  ignore: boolean;
}

/**
 * Reassembles packets into messages. ATTENTION is reported on its own as soon as its packet is
 * complete, because it arrives while a request may still be running.
 */
export class PacketReader {
  private buf: Buffer = Buffer.alloc(0);
  private parts: Buffer[] = [];
  private partsBytes = 0;
  private firstStatus = -1;
  private msgType = -1;

  constructor(
    private readonly onMessage: (m: IncomingMessage) => void,
    private readonly onAttention: () => void,
    private readonly maxMessageBytes = 64 * 1024 * 1024,
  ) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= HEADER) {
      const len = this.buf.readUInt16BE(2);
      if (len < HEADER) throw new ProtocolError(`packet length ${len} is shorter than its header`);
      if (this.buf.length < len) break;
      const type = this.buf[0]!;
      const status = this.buf[1]!;
      const payload = this.buf.subarray(HEADER, len);
      this.buf = this.buf.subarray(len);
      if (type === PKT.ATTENTION) {
        this.onAttention();
        continue;
      }
      if (this.msgType === -1) {
        this.msgType = type;
        this.firstStatus = status;
      } else if (type !== this.msgType) {
        throw new ProtocolError(`packet of type 0x${type.toString(16)} inside a 0x${this.msgType.toString(16)} message`);
      }
      this.parts.push(Buffer.from(payload));
      this.partsBytes += payload.length;
      if (this.partsBytes > this.maxMessageBytes) throw new ProtocolError('message too large');
      if (status & STATUS_EOM) {
        const msg: IncomingMessage = {
          type: this.msgType,
          data: Buffer.concat(this.parts),
          resetConnection: (this.firstStatus & (STATUS_RESET | STATUS_RESET_SKIPTRAN)) !== 0,
          resetSkipTran: (this.firstStatus & STATUS_RESET_SKIPTRAN) !== 0,
          ignore: (status & STATUS_IGNORE) !== 0,
        };
        this.parts = [];
        this.partsBytes = 0;
        this.msgType = -1;
        this.firstStatus = -1;
        this.onMessage(msg);
      }
    }
  }
}

export class ProtocolError extends Error {}

/** Splits one message into packets of at most `packetSize` bytes (header included). */
export function framePackets(type: number, payload: Buffer, packetSize: number): Buffer[] {
  const room = packetSize - HEADER;
  const out: Buffer[] = [];
  let id = 1;
  let off = 0;
  do {
    const n = Math.min(room, payload.length - off);
    const last = off + n >= payload.length;
    const p = Buffer.alloc(HEADER + n);
    p[0] = type;
    p[1] = last ? STATUS_EOM : 0;
    p.writeUInt16BE(HEADER + n, 2);
    p.writeUInt16BE(0, 4); // SPID
    p[6] = id % 256;
    p[7] = 0;
    payload.copy(p, HEADER, off, off + n);
    out.push(p);
    off += n;
    id++;
  } while (off < payload.length);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading client messages

/** A bounds-checked little-endian cursor; running off the end is a protocol error. */
export class Cursor {
  constructor(
    readonly buf: Buffer,
    public pos = 0,
  ) {}
  need(n: number): void {
    if (this.pos + n > this.buf.length) throw new ProtocolError('message ends early');
  }
  get remaining(): number {
    return this.buf.length - this.pos;
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  i32(): number {
    this.need(4);
    const v = this.buf.readInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  ucs2(chars: number): string {
    return this.bytes(chars * 2).toString('utf16le');
  }
  bVarChar(): string {
    return this.ucs2(this.u8());
  }
}

export interface Prelogin {
  encryption: number | undefined;
}

export const ENCRYPT = { OFF: 0, ON: 1, NOT_SUP: 2, REQ: 3 } as const;

export function parsePrelogin(data: Buffer): Prelogin {
  let encryption: number | undefined;
  let off = 0;
  while (off < data.length && data[off] !== 0xff) {
    if (off + 5 > data.length) throw new ProtocolError('PRELOGIN option list ends early');
    const token = data[off]!;
    const at = data.readUInt16BE(off + 1);
    const len = data.readUInt16BE(off + 3);
    if (at + len > data.length) throw new ProtocolError('PRELOGIN option points past the end');
    if (token === 0x01 && len >= 1) encryption = data[at];
    off += 5;
  }
  return { encryption };
}

/** The server's PRELOGIN answer: its version, ENCRYPT_NOT_SUP, no instance, no MARS. */
export function preloginResponse(): Buffer {
  const options: [number, Buffer][] = [
    [0x00, Buffer.from([16, 0, 0x10, 0x00, 0, 0])], // VERSION 16.0.4096.0
    [0x01, Buffer.from([ENCRYPT.NOT_SUP])],
    [0x02, Buffer.from([0])], // INSTOPT
    [0x03, Buffer.alloc(0)], // THREADID (servers send it empty)
    [0x04, Buffer.from([0])], // MARS off
  ];
  const head = Buffer.alloc(options.length * 5 + 1);
  let dataOff = head.length;
  options.forEach(([token, data], i) => {
    head[i * 5] = token;
    head.writeUInt16BE(dataOff, i * 5 + 1);
    head.writeUInt16BE(data.length, i * 5 + 3);
    dataOff += data.length;
  });
  head[head.length - 1] = 0xff;
  return Buffer.concat([head, ...options.map(([, d]) => d)]);
}

export interface Login7 {
  tdsVersion: number;
  packetSize: number;
  hostName: string;
  userName: string;
  password: string;
  appName: string;
  serverName: string;
  libraryName: string;
  language: string;
  database: string;
  /** FeatureExt blocks by feature id (TDS 7.4). */
  features: Map<number, Buffer>;
  integratedSecurity: boolean;
}

/** LOGIN7's password is UCS-2 with each byte's nibbles swapped and then XORed with 0xA5. */
export function unscramblePassword(b: Buffer): string {
  const out = Buffer.alloc(b.length);
  for (let i = 0; i < b.length; i++) {
    const x = b[i]! ^ 0xa5;
    out[i] = ((x & 0x0f) << 4) | (x >> 4);
  }
  return out.toString('utf16le');
}

export function parseLogin7(data: Buffer): Login7 {
  if (data.length < 94) throw new ProtocolError('LOGIN7 is shorter than its fixed part');
  const c = new Cursor(data);
  const length = c.u32();
  if (length > data.length) throw new ProtocolError('LOGIN7 length is larger than the message');
  const tdsVersion = data.readUInt32LE(4);
  const packetSize = data.readUInt32LE(8);
  const optionFlags2 = data[25]!;
  const optionFlags3 = data[27]!;
  const field = (at: number): [number, number] => [data.readUInt16LE(at), data.readUInt16LE(at + 2)];
  // `strict` for the fields the login depends on; informational ones that point nowhere (tedious
  // writes an offset as the length of an unset host name) read as empty.
  const str = (at: number, strict = false): string => {
    const [off, cch] = field(at);
    if (cch === 0) return '';
    if (off + cch * 2 > data.length) {
      if (strict) throw new ProtocolError('LOGIN7 field points past the end');
      return '';
    }
    return data.toString('utf16le', off, off + cch * 2);
  };
  const [pwOff, pwLen] = field(44);
  if (pwOff + pwLen * 2 > data.length) throw new ProtocolError('LOGIN7 password points past the end');
  const password = unscramblePassword(data.subarray(pwOff, pwOff + pwLen * 2));
  const features = new Map<number, Buffer>();
  const [extOff, extLen] = field(56);
  if (optionFlags3 & 0x10 && extLen >= 4) {
    // ibExtension points at a DWORD holding the offset of the FeatureExt block.
    const featOff = data.readUInt32LE(extOff);
    const f = new Cursor(data, featOff);
    for (;;) {
      const id = f.u8();
      if (id === 0xff) break;
      const len = f.u32();
      features.set(id, Buffer.from(f.bytes(len)));
    }
  }
  return {
    tdsVersion,
    packetSize,
    hostName: str(36),
    userName: str(40, true),
    password,
    appName: str(48),
    serverName: str(52),
    libraryName: str(60),
    language: str(64),
    database: str(68, true),
    features,
    integratedSecurity: (optionFlags2 & 0x80) !== 0,
  };
}

/** SQL batches and RPCs start with ALL_HEADERS (transaction descriptor etc.); skip it. */
function skipAllHeaders(c: Cursor): void {
  if (c.remaining < 4) return;
  const total = c.buf.readUInt32LE(c.pos);
  // A batch without headers starts with UCS-2 text, whose first DWORD is never a small length
  // that fits the message and is at least 4; tedious (TDS 7.2+) always sends the headers.
  if (total >= 4 && total <= c.remaining) c.pos += total;
}

export const TM = { BEGIN: 5, COMMIT: 7, ROLLBACK: 8, SAVE: 9 } as const;

/** TRANSACTION_MANAGER request: which operation (the name and flags that follow are unused). */
export function parseTransactionManager(data: Buffer): number {
  const c = new Cursor(data);
  skipAllHeaders(c);
  return c.u16();
}

export function parseSqlBatch(data: Buffer): string {
  const c = new Cursor(data);
  skipAllHeaders(c);
  if (c.remaining % 2) throw new ProtocolError('SQL batch text is not UCS-2');
  return c.buf.toString('utf16le', c.pos);
}

/** A parameter value as decoded from the wire, before it is bound to SQLite. */
export type ParamValue = string | number | bigint | boolean | Buffer | TdsDate | null;

/** Dates and times keep their wire meaning: SQL Server types carry no time zone except OFFSET. */
export interface TdsDate {
  kind: 'datetime' | 'date' | 'time' | 'datetimeoffset';
  /** Canonical text: `YYYY-MM-DDTHH:MM:SS.fffffffZ`, `YYYY-MM-DD` or `HH:MM:SS.fffffff`. */
  text: string;
}

export interface RpcParam {
  name: string;
  output: boolean;
  typeName: string;
  value: ParamValue;
  /** TYPE_INFO id, and set when the value is longer than the declared maximum (SQL Server: 8016). */
  typeId: number;
  overlong?: boolean;
}

export interface RpcRequest {
  procName: string | undefined;
  procId: number | undefined;
  params: RpcParam[];
}

export function parseRpc(data: Buffer): RpcRequest {
  const c = new Cursor(data);
  skipAllHeaders(c);
  const nameLen = c.u16();
  let procName: string | undefined;
  let procId: number | undefined;
  if (nameLen === 0xffff) procId = c.u16();
  else procName = c.ucs2(nameLen);
  c.u16(); // option flags (recompile, no metadata)
  const params: RpcParam[] = [];
  while (c.remaining > 0) {
    const b = c.buf[c.pos]!;
    // 0x80 / 0xFF separate batched RPCs; tedious sends one RPC per message.
    if (b === 0x80 || b === 0xff) break;
    const name = c.bVarChar();
    const status = c.u8();
    const typeId = c.buf[c.pos] ?? 0;
    const { typeName, value, overlong } = readTypedValue(c);
    params.push({ name, output: (status & 0x01) !== 0, typeName, value, typeId, overlong });
  }
  return { procName, procId, params };
}

export class UnsupportedTypeError extends ProtocolError {
  constructor(readonly typeId: number) {
    super(`data type 0x${typeId.toString(16).toUpperCase()} is not supported`);
  }
}

const DAY_MS = 86_400_000;
/** Days from 0001-01-01 to 1970-01-01 (DATE/DATETIME2 count from year 1). */
const EPOCH_DAYS_0001 = 719_162;
/** Days from 1900-01-01 to 1970-01-01 (DATETIME counts from 1900). */
const EPOCH_DAYS_1900 = 25_567;

function pad(n: number | bigint, w: number): string {
  return String(n).padStart(w, '0');
}

function dateText(daysSince1970: number): string {
  const d = new Date(daysSince1970 * DAY_MS);
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}`;
}

/** 100-ns ticks since midnight → `HH:MM:SS.fffffff`. */
function timeText(ticks: bigint): string {
  const secs = ticks / 10_000_000n;
  const frac = ticks % 10_000_000n;
  return `${pad(secs / 3600n, 2)}:${pad((secs / 60n) % 60n, 2)}:${pad(secs % 60n, 2)}.${pad(frac, 7)}`;
}

function readUIntLE(b: Buffer): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  return v;
}

function scaledTicks(raw: bigint, scale: number): bigint {
  return raw * 10n ** BigInt(7 - scale);
}

/** Reads TYPE_INFO and then the value (MS-TDS 2.2.5.4-2.2.5.6) of one RPC parameter. */
export function readTypedValue(c: Cursor): { typeName: string; value: ParamValue; overlong?: boolean } {
  const id = c.u8();
  switch (id) {
    case 0x1f:
      return { typeName: 'null', value: null };
    case 0x30:
      return { typeName: 'tinyint', value: c.u8() };
    case 0x32:
      return { typeName: 'bit', value: c.u8() !== 0 };
    case 0x34: {
      const v = c.bytes(2).readInt16LE(0);
      return { typeName: 'smallint', value: v };
    }
    case 0x38:
      return { typeName: 'int', value: c.i32() };
    case 0x7f:
      return { typeName: 'bigint', value: bigOrNumber(c.bytes(8).readBigInt64LE(0)) };
    case 0x3b:
      return { typeName: 'real', value: c.bytes(4).readFloatLE(0) };
    case 0x3e:
      return { typeName: 'float', value: c.bytes(8).readDoubleLE(0) };
    case 0x3d:
      return { typeName: 'datetime', value: readDateTime(c.bytes(8)) };
    case 0x3a:
      return { typeName: 'smalldatetime', value: readSmallDateTime(c.bytes(4)) };
    case 0x26: {
      // INTN
      c.u8();
      const len = c.u8();
      if (len === 0) return { typeName: 'int', value: null };
      const b = c.bytes(len);
      const v = len === 1 ? b[0]! : len === 2 ? b.readInt16LE(0) : len === 4 ? b.readInt32LE(0) : len === 8 ? bigOrNumber(b.readBigInt64LE(0)) : badLen(id, len);
      return { typeName: len === 8 ? 'bigint' : 'int', value: v };
    }
    case 0x68: {
      c.u8();
      const len = c.u8();
      return { typeName: 'bit', value: len === 0 ? null : c.bytes(len)[0] !== 0 };
    }
    case 0x6d: {
      c.u8();
      const len = c.u8();
      if (len === 0) return { typeName: 'float', value: null };
      const b = c.bytes(len);
      return { typeName: 'float', value: len === 4 ? b.readFloatLE(0) : len === 8 ? b.readDoubleLE(0) : badLen(id, len) };
    }
    case 0x6e: {
      // MONEYN
      c.u8();
      const len = c.u8();
      if (len === 0) return { typeName: 'money', value: null };
      const b = c.bytes(len);
      const raw = len === 4 ? BigInt(b.readInt32LE(0)) : (BigInt(b.readInt32LE(0)) << 32n) | BigInt(b.readUInt32LE(4));
      return { typeName: 'money', value: Number(raw) / 10_000 };
    }
    case 0x6f: {
      c.u8();
      const len = c.u8();
      if (len === 0) return { typeName: 'datetime', value: null };
      const b = c.bytes(len);
      return { typeName: 'datetime', value: len === 8 ? readDateTime(b) : len === 4 ? readSmallDateTime(b) : badLen(id, len) };
    }
    case 0x24: {
      c.u8();
      const len = c.u8();
      if (len === 0) return { typeName: 'uniqueidentifier', value: null };
      return { typeName: 'uniqueidentifier', value: guidText(c.bytes(len)) };
    }
    case 0x6a:
    case 0x6c: {
      // DECIMALN / NUMERICN: max length, precision, scale; value sign byte + LE magnitude.
      c.u8();
      c.u8();
      const scale = c.u8();
      const len = c.u8();
      if (len === 0) return { typeName: 'decimal', value: null };
      const b = c.bytes(len);
      const mag = readUIntLE(b.subarray(1));
      const n = Number(mag) / 10 ** scale;
      return { typeName: 'decimal', value: b[0] === 1 ? n : -n };
    }
    case 0x28: {
      // DATEN
      const len = c.u8();
      if (len === 0) return { typeName: 'date', value: null };
      const days = readUIntLE(c.bytes(3));
      return { typeName: 'date', value: { kind: 'date', text: dateText(Number(days) - EPOCH_DAYS_0001) } };
    }
    case 0x29: {
      // TIMEN
      const scale = c.u8();
      const len = c.u8();
      if (len === 0) return { typeName: 'time', value: null };
      const ticks = scaledTicks(readUIntLE(c.bytes(len)), scale);
      return { typeName: 'time', value: { kind: 'time', text: timeText(ticks) } };
    }
    case 0x2a: {
      // DATETIME2N: time (3-5 bytes by scale) then 3-byte day count, both UTC as sent.
      const scale = c.u8();
      const len = c.u8();
      if (len === 0) return { typeName: 'datetime2', value: null };
      const b = c.bytes(len);
      const ticks = scaledTicks(readUIntLE(b.subarray(0, len - 3)), scale);
      const days = Number(readUIntLE(b.subarray(len - 3)));
      return { typeName: 'datetime2', value: { kind: 'datetime', text: `${dateText(days - EPOCH_DAYS_0001)}T${timeText(ticks)}Z` } };
    }
    case 0x2b: {
      // DATETIMEOFFSETN: UTC time, date, then the offset in minutes; stored as the UTC instant.
      const scale = c.u8();
      const len = c.u8();
      if (len === 0) return { typeName: 'datetimeoffset', value: null };
      const b = c.bytes(len);
      const ticks = scaledTicks(readUIntLE(b.subarray(0, len - 5)), scale);
      const days = Number(readUIntLE(b.subarray(len - 5, len - 2)));
      return { typeName: 'datetimeoffset', value: { kind: 'datetime', text: `${dateText(days - EPOCH_DAYS_0001)}T${timeText(ticks)}Z` } };
    }
    case 0xe7:
    case 0xef:
    case 0xa7:
    case 0xaf: {
      // NVARCHAR / NCHAR / VARCHAR / CHAR: max length, 5-byte collation, then the value.
      const maxLen = c.u16();
      c.bytes(5);
      const unicode = id === 0xe7 || id === 0xef;
      const typeName = id === 0xe7 ? 'nvarchar' : id === 0xef ? 'nchar' : id === 0xa7 ? 'varchar' : 'char';
      const raw = maxLen === 0xffff ? readPlp(c) : readUsLenBytes(c);
      if (raw === null) return { typeName, value: null };
      if (unicode && raw.length % 2) throw new ProtocolError('odd byte count in a UCS-2 value');
      const overlong = maxLen !== 0xffff && raw.length > maxLen;
      return { typeName, value: unicode ? raw.toString('utf16le') : cp1252.decode(raw), overlong };
    }
    case 0xa5:
    case 0xad: {
      const maxLen = c.u16();
      const raw = maxLen === 0xffff ? readPlp(c) : readUsLenBytes(c);
      const overlong = raw !== null && maxLen !== 0xffff && raw.length > maxLen;
      return { typeName: id === 0xa5 ? 'varbinary' : 'binary', value: raw === null ? null : Buffer.from(raw), overlong };
    }
    default:
      throw new UnsupportedTypeError(id);
  }
}

// VARCHAR values arrive in the collation's code page; the served collation is Latin1 (CP1252).
const cp1252 = new TextDecoder('windows-1252');

function badLen(id: number, len: number): never {
  throw new ProtocolError(`length ${len} is not valid for type 0x${id.toString(16)}`);
}

function bigOrNumber(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function readUsLenBytes(c: Cursor): Buffer | null {
  const len = c.u16();
  if (len === 0xffff) return null;
  return c.bytes(len);
}

/** Partially length-prefixed bytes: total (or unknown) length, then chunks up to a 0 chunk. */
function readPlp(c: Cursor): Buffer | null {
  const total = c.u64();
  if (total === 0xffffffffffffffffn) return null;
  const chunks: Buffer[] = [];
  for (;;) {
    const n = c.u32();
    if (n === 0) break;
    chunks.push(c.bytes(n));
  }
  return Buffer.concat(chunks);
}

/** DATETIME: days since 1900-01-01 and 1/300 s ticks since midnight. */
function readDateTime(b: Buffer): TdsDate {
  const days = b.readInt32LE(0);
  const ticks300 = b.readUInt32LE(4);
  const ticks = (BigInt(ticks300) * 10_000_000n + 150n) / 300n; // to 100 ns, rounded
  return { kind: 'datetime', text: `${dateText(days - EPOCH_DAYS_1900)}T${timeText(ticks)}Z` };
}

function readSmallDateTime(b: Buffer): TdsDate {
  const days = b.readUInt16LE(0);
  const mins = b.readUInt16LE(2);
  return { kind: 'datetime', text: `${dateText(days - EPOCH_DAYS_1900)}T${timeText(BigInt(mins) * 600_000_000n)}Z` };
}

function guidText(b: Buffer): string {
  const h = (from: number, to: number, rev: boolean): string => {
    const part = Buffer.from(b.subarray(from, to));
    if (rev) part.reverse();
    return part.toString('hex');
  };
  return `${h(0, 4, true)}-${h(4, 6, true)}-${h(6, 8, true)}-${h(8, 10, false)}-${h(10, 16, false)}`.toUpperCase();
}

// ---------------------------------------------------------------------------------------------
// Writing tokens

/** SQL_Latin1_General_CP1_CI_AS, as SQL Server sends it in ENVCHANGE and TYPE_INFO. */
export const COLLATION = Buffer.from([0x09, 0x04, 0xd0, 0x00, 0x34]);

export const DONE = { FINAL: 0x00, MORE: 0x01, ERROR: 0x02, COUNT: 0x10, ATTN: 0x20, SRVERROR: 0x100 } as const;
export const TOKEN = {
  COLMETADATA: 0x81,
  ERROR: 0xaa,
  INFO: 0xab,
  LOGINACK: 0xad,
  FEATUREEXTACK: 0xae,
  ROW: 0xd1,
  ENVCHANGE: 0xe3,
  RETURNSTATUS: 0x79,
  DONE: 0xfd,
  DONEPROC: 0xfe,
  DONEINPROC: 0xff,
} as const;

/** Appends tokens to one response message. */
export class TokenWriter {
  private parts: Buffer[] = [];
  private size = 0;

  get length(): number {
    return this.size;
  }

  raw(b: Buffer): this {
    this.parts.push(b);
    this.size += b.length;
    return this;
  }
  u8(v: number): this {
    return this.raw(Buffer.from([v & 0xff]));
  }
  u16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(v);
    return this.raw(b);
  }
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    return this.raw(b);
  }
  i32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    return this.raw(b);
  }
  u64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(v);
    return this.raw(b);
  }
  bVarChar(s: string): this {
    const b = Buffer.from(s, 'utf16le');
    return this.u8(b.length / 2).raw(b);
  }
  usVarChar(s: string): this {
    const b = Buffer.from(s, 'utf16le');
    return this.u16(b.length / 2).raw(b);
  }

  /** A token whose body starts with a USHORT length of the rest. */
  private sized(token: number, body: TokenWriter): this {
    this.u8(token).u16(body.length);
    for (const p of body.parts) this.raw(p);
    return this;
  }

  envChange(type: number, newValue: string | Buffer, oldValue: string | Buffer): this {
    const body = new TokenWriter().u8(type);
    for (const v of [newValue, oldValue]) {
      if (typeof v === 'string') body.bVarChar(v);
      else body.u8(v.length).raw(v);
    }
    return this.sized(TOKEN.ENVCHANGE, body);
  }

  message(kind: 'error' | 'info', m: ServerMessage): this {
    const body = new TokenWriter()
      .i32(m.number)
      .u8(m.state)
      .u8(m.class)
      .usVarChar(m.message)
      .bVarChar(m.serverName ?? '')
      .bVarChar(m.procName ?? '')
      .i32(m.lineNumber ?? 1);
    return this.sized(kind === 'error' ? TOKEN.ERROR : TOKEN.INFO, body);
  }

  loginAck(progName: string, version: [number, number, number, number], tdsVersion: number): this {
    const body = new TokenWriter().u8(1); // interface: SQL_TSQL
    const v = Buffer.alloc(4);
    v.writeUInt32BE(tdsVersion);
    body.raw(v).bVarChar(progName).raw(Buffer.from(version));
    return this.sized(TOKEN.LOGINACK, body);
  }

  featureExtAck(features: [number, Buffer][]): this {
    this.u8(TOKEN.FEATUREEXTACK);
    for (const [id, data] of features) this.u8(id).u32(data.length).raw(data);
    return this.u8(0xff);
  }

  done(token: number, status: number, curCmd: number, rowCount: number | bigint): this {
    return this.u8(token).u16(status).u16(curCmd).u64(BigInt(rowCount));
  }

  returnStatus(v: number): this {
    return this.u8(TOKEN.RETURNSTATUS).i32(v);
  }

  colMetadata(cols: ResultColumn[]): this {
    this.u8(TOKEN.COLMETADATA).u16(cols.length);
    for (const col of cols) {
      this.u32(0); // user type
      this.u16((col.nullable === false ? 0 : 0x0001) | 0x0008); // nullable; updateability unknown
      switch (col.kind) {
        case 'nvarchar':
          this.u8(0xe7).u16(col.maxChars === 'max' ? 0xffff : col.maxChars * 2).raw(COLLATION);
          break;
        case 'int':
          this.u8(0x26).u8(4);
          break;
        case 'bigint':
          this.u8(0x26).u8(8);
          break;
        case 'bit':
          this.u8(0x68).u8(1);
          break;
        case 'float':
          this.u8(0x6d).u8(8);
          break;
        case 'datetime2':
          this.u8(0x2a).u8(7);
          break;
        case 'varbinary':
          this.u8(0xa5).u16(0xffff);
          break;
      }
      this.bVarChar(col.name);
    }
    return this;
  }

  /** One ROW; values must already match each column's kind (see server coercion). */
  row(cols: ResultColumn[], values: unknown[]): this {
    this.u8(TOKEN.ROW);
    cols.forEach((col, i) => {
      const v = values[i];
      switch (col.kind) {
        case 'nvarchar': {
          if (col.maxChars === 'max') {
            if (v === null) this.u64(0xffffffffffffffffn);
            else {
              const b = Buffer.from(v as string, 'utf16le');
              this.u64(BigInt(b.length));
              if (b.length) this.u32(b.length).raw(b);
              this.u32(0);
            }
          } else if (v === null) this.u16(0xffff);
          else {
            const b = Buffer.from(v as string, 'utf16le');
            this.u16(b.length).raw(b);
          }
          break;
        }
        case 'int':
          if (v === null) this.u8(0);
          else this.u8(4).i32(v as number);
          break;
        case 'bigint': {
          if (v === null) this.u8(0);
          else {
            const b = Buffer.alloc(8);
            b.writeBigInt64LE(BigInt(v as number | bigint));
            this.u8(8).raw(b);
          }
          break;
        }
        case 'bit':
          if (v === null) this.u8(0);
          else this.u8(1).u8(v ? 1 : 0);
          break;
        case 'float': {
          if (v === null) this.u8(0);
          else {
            const b = Buffer.alloc(8);
            b.writeDoubleLE(v as number);
            this.u8(8).raw(b);
          }
          break;
        }
        case 'datetime2': {
          if (v === null) this.u8(0);
          else {
            const { days, ticks } = v as { days: number; ticks: bigint };
            const b = Buffer.alloc(8);
            for (let k = 0; k < 5; k++) b[k] = Number((ticks >> BigInt(8 * k)) & 0xffn);
            b.writeUIntLE(days, 5, 3);
            this.u8(8).raw(b);
          }
          break;
        }
        case 'varbinary': {
          if (v === null) this.u64(0xffffffffffffffffn);
          else {
            const b = v as Buffer;
            this.u64(BigInt(b.length));
            if (b.length) this.u32(b.length).raw(b);
            this.u32(0);
          }
          break;
        }
      }
    });
    return this;
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.parts, this.size);
  }
}

export interface ServerMessage {
  number: number;
  state: number;
  class: number;
  message: string;
  serverName?: string;
  procName?: string;
  lineNumber?: number;
}

export type ColumnKind = 'nvarchar' | 'int' | 'bigint' | 'bit' | 'float' | 'datetime2' | 'varbinary';

export interface ResultColumn {
  name: string;
  kind: ColumnKind;
  /** For nvarchar: declared length in characters, or 'max' (sent as PLP). */
  maxChars: number | 'max';
  /** False for a table column declared NOT NULL. */
  nullable?: boolean;
}

/** Canonical datetime text → DATETIME2(7) wire parts. Accepts `YYYY-MM-DD[T ]HH:MM:SS[.f{1,7}][Z]`. */
export function parseDateTimeText(s: string): { days: number; ticks: bigint } | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?)?(Z|[+-]00:?00)?$/.exec(s.trim());
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', sec = '0', frac = ''] = m;
  const date = new Date(Date.UTC(2000, Number(mo) - 1, Number(d)));
  date.setUTCFullYear(Number(y)); // Date.UTC would map years 0-99 to 1900-1999
  if (Number.isNaN(date.getTime()) || date.getUTCDate() !== Number(d)) return undefined;
  const days = Math.round(date.getTime() / DAY_MS) + EPOCH_DAYS_0001;
  if (days < 0) return undefined;
  const ticks =
    (BigInt(Number(h)) * 3600n + BigInt(Number(mi)) * 60n + BigInt(Number(sec))) * 10_000_000n + BigInt(frac.padEnd(7, '0') || '0');
  if (Number(h) > 23 || Number(mi) > 59 || Number(sec) > 59) return undefined;
  return { days, ticks };
}
