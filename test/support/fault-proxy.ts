// A fault-injecting HTTP proxy on loopback, in front of the test S3 server (path-style URLs).
//
// Each request is classified (GetObject, PutObject, ListObjectsV2, HeadObject, DeleteObjects, …)
// and matched against the rules; a matching rule fires with its rate and sabotages the request:
//   error500     500 InternalError (S3 XML body), the server never sees the request
//   slowdown503  503 SlowDown (S3 XML body), the server never sees the request
//   reset        TCP reset before any byte of a response; the server never sees the request
//   reset-mid    the server handles the request; the client gets the headers and half the body,
//                then a TCP reset (a PUT that landed but whose answer was lost, for empty bodies)
//   stall        no byte ever; the client's socket timeout has to notice
//   stall-mid    the headers and half the body, then nothing
//   truncate     the right Content-Length, half the body, then a clean close (FIN)
//   corrupt      the whole body, same length, one byte flipped in the middle (in XML, the first
//                tag opener from the middle on, so the document no longer parses)
//   corrupt-request  the request body reaches the server with one byte flipped (a PUT or a part
//                damaged on the way; servers that skip the Content-MD5 check store it)
//   reset-request  a TCP reset once about half the request body has come in, while the client is
//                still sending it; the server never sees the request. Decided before the body is
//                read, so a rule with it holds no other fault.
//   key-error    DeleteObjects only: the matching keys are not deleted and come back as per-key
//                <Error> entries (AccessDenied), the others are deleted as asked
//   echo         500 whose message carries the `echo` text (a server that leaks what it got)
//   inject-keys  ListObjectsV2 only: the listing comes back with the rule's `inject` keys added,
//                written into the XML as raw bytes (so invalid UTF-8 can be served)
//
// Decisions are seeded and reproducible whatever order concurrent requests arrive in: the dice
// for the n-th request of an (op, key) pair are a hash of (seed, op, key, n).
import { createHash } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Op =
  | 'ListObjectsV2'
  | 'GetObject'
  | 'HeadObject'
  | 'HeadBucket'
  | 'PutObject'
  | 'UploadPart'
  | 'CreateMultipartUpload'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'DeleteObjects'
  | 'DeleteObject'
  | 'Other';

export type Fault =
  | 'error500'
  | 'slowdown503'
  | 'reset'
  | 'reset-mid'
  | 'stall'
  | 'stall-mid'
  | 'truncate'
  | 'corrupt'
  | 'corrupt-request'
  | 'reset-request'
  | 'key-error'
  | 'echo'
  | 'inject-keys';

export const TRANSIENT_FAULTS: Fault[] = ['error500', 'slowdown503', 'reset', 'reset-mid', 'stall', 'stall-mid', 'truncate', 'corrupt'];

export interface FaultRule {
  ops?: Op[];
  /** The object key (the prefix for a listing); a string matches exactly. */
  key?: string | RegExp | ((key: string) => boolean);
  /** Extra condition on the query string (e.g. only listing pages with a continuation token). */
  query?: (q: URLSearchParams) => boolean;
  /** One is picked (by the dice) each time the rule fires. */
  faults: Fault[];
  /** Probability that a matching request is sabotaged; default 1. */
  rate?: number;
  /** Sabotage at most this many requests per (op, key); default unlimited. */
  times?: number;
  /** Text for `echo` (and the per-key message of `key-error`). */
  echo?: string;
  /** Keys for `inject-keys`: a string is XML-escaped, a Buffer goes into the XML verbatim. */
  inject?: (string | Buffer)[];
}

export interface Served {
  seq: number;
  op: Op;
  key: string;
  /** Set when the request was sabotaged. */
  fault?: Fault;
  /** DeleteObjects: the keys in the request body, and those refused with key-error. */
  deleteKeys?: string[];
  keyErrors?: string[];
}

export interface FaultProxy {
  endpoint: string;
  /** The AWS_* variables of `env`, pointed at the proxy. */
  env(env: Record<string, string>): Record<string, string>;
  rules: FaultRule[];
  /** Every request seen, in arrival order. */
  log: Served[];
  /**
   * Answer conditional PUTs (If-Match / If-None-Match: *) as R2 and S3 do, with 412, which the
   * test servers do not: the proxy looks the key up first.
   */
  conditionalWrites: boolean;
  /** Replaces the rules and clears the log. */
  set(rules: FaultRule[], seed?: number): void;
  faulted(): Served[];
  /**
   * Keys whose last request of one of `ops` was sabotaged: for a client that retries until a
   * success or its budget runs out, exactly the keys that ended in failure.
   */
  lastFaulted(ops: Op[]): Set<string>;
  stop(): Promise<void>;
}

const XML_ERRORS: Record<string, [number, string, string]> = {
  error500: [500, 'InternalError', 'We encountered an internal error. Please try again.'],
  slowdown503: [503, 'SlowDown', 'Please reduce your request rate.'],
};

function errorXml(code: string, message: string, resource: string): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${code}</Code><Message>${esc(message)}</Message><Resource>${esc(resource)}</Resource><RequestId>FAULTPROXY</RequestId></Error>`
  );
}

function classify(method: string, url: URL): { op: Op; key: string } {
  const q = url.searchParams;
  // Path-style: /bucket/key…; the key keeps its slashes.
  const rest = url.pathname.split('/').slice(2).join('/');
  let key: string;
  try {
    key = decodeURIComponent(rest);
  } catch {
    key = rest;
  }
  const hasKey = rest !== '';
  if (method === 'GET') {
    if (!hasKey) return { op: q.has('list-type') || q.has('prefix') ? 'ListObjectsV2' : 'Other', key: q.get('prefix') ?? '' };
    return { op: 'GetObject', key };
  }
  if (method === 'HEAD') return { op: hasKey ? 'HeadObject' : 'HeadBucket', key };
  if (method === 'PUT' && hasKey) return { op: q.has('partNumber') ? 'UploadPart' : 'PutObject', key };
  if (method === 'POST') {
    if (q.has('delete')) return { op: 'DeleteObjects', key: '' };
    if (q.has('uploads')) return { op: 'CreateMultipartUpload', key };
    if (q.has('uploadId')) return { op: 'CompleteMultipartUpload', key };
  }
  if (method === 'DELETE' && hasKey) return { op: q.has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject', key };
  return { op: 'Other', key };
}

function keyMatches(rule: FaultRule, key: string): boolean {
  if (rule.key === undefined) return true;
  if (typeof rule.key === 'string') return rule.key === key;
  if (rule.key instanceof RegExp) return rule.key.test(key);
  return rule.key(key);
}

const decodeXml = (s: string) =>
  s.replace(/&(lt|gt|quot|apos|amp|#x?[0-9a-fA-F]+);/g, (_, e: string) =>
    e === 'lt' ? '<' : e === 'gt' ? '>' : e === 'quot' ? '"' : e === 'apos' ? "'" : e === 'amp' ? '&' : String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10)),
  );
const encodeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export async function startFaultProxy(upstream: string, opts: { seed?: number } = {}): Promise<FaultProxy> {
  const target = new URL(upstream);
  const agent = new http.Agent({ keepAlive: true });
  let seed = opts.seed ?? 1;
  const counts = new Map<string, number>();
  const fired = new Map<string, number>();
  const sockets = new Set<Socket>();
  let seq = 0;

  const dice = (op: Op, key: string, n: number, salt: string): number =>
    createHash('sha256').update(`${seed}\0${op}\0${key}\0${n}\0${salt}`).digest().readUInt32BE(0) / 2 ** 32;

  /** The rule that fires for this request, and the fault it picked. */
  function decide(op: Op, key: string, q: URLSearchParams, n: number, only?: Fault): { rule: FaultRule; fault: Fault } | undefined {
    for (const [i, rule] of proxy.rules.entries()) {
      if (rule.ops && !rule.ops.includes(op)) continue;
      if (only ? !rule.faults.includes(only) : rule.faults.every((f) => f === 'key-error' || f === 'reset-request')) continue;
      if (!keyMatches(rule, key) || (rule.query && !rule.query(q))) continue;
      const firedKey = `${i}\0${op}\0${key}`;
      if (rule.times !== undefined && (fired.get(firedKey) ?? 0) >= rule.times) continue;
      if (dice(op, key, n, `rate${i}`) >= (rule.rate ?? 1)) continue;
      fired.set(firedKey, (fired.get(firedKey) ?? 0) + 1);
      const choice = only ? [only] : rule.faults.filter((f) => f !== 'key-error');
      const fault = choice[Math.floor(dice(op, key, n, `pick${i}`) * choice.length)]!;
      return { rule, fault };
    }
    return undefined;
  }

  function forward(req: IncomingMessage, body: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
    const headers = { ...req.headers, host: target.host };
    delete headers.connection;
    headers['content-length'] = String(body.length);
    delete headers['transfer-encoding'];
    return new Promise((resolve, reject) => {
      const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      up.on('error', reject);
      up.end(body);
    });
  }

  function upstreamEtag(pathname: string): Promise<string | undefined> {
    return new Promise((resolve, reject) => {
      const up = http.request({ host: target.hostname, port: target.port, method: 'HEAD', path: pathname, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200 ? String(res.headers.etag ?? '').replace(/"/g, '') : undefined));
      });
      up.on('error', reject);
      up.end();
    });
  }

  /** The 412 (or 404) a conditional PUT gets from R2 and S3, or undefined when it may go ahead. */
  async function precondition(req: IncomingMessage, op: Op, url: URL): Promise<[number, string] | undefined> {
    if (!proxy.conditionalWrites || op !== 'PutObject') return undefined;
    const ifNoneMatch = req.headers['if-none-match'];
    const ifMatch = req.headers['if-match'];
    if (ifNoneMatch === undefined && ifMatch === undefined) return undefined;
    const now = await upstreamEtag(url.pathname);
    if (ifNoneMatch === '*' && now !== undefined) return [412, 'PreconditionFailed'];
    if (ifMatch !== undefined) {
      if (now === undefined) return [404, 'NoSuchKey'];
      if (String(ifMatch).replace(/"/g, '') !== now) return [412, 'PreconditionFailed'];
    }
    return undefined;
  }

  function sendWhole(res: ServerResponse, status: number, headers: http.IncomingHttpHeaders, body: Buffer, head: boolean): void {
    const h = { ...headers };
    delete h.connection;
    delete h['keep-alive'];
    delete h['transfer-encoding'];
    if (!head) h['content-length'] = String(body.length);
    res.writeHead(status, h);
    res.end(head ? undefined : body);
  }

  /** DeleteObjects with some keys refused per key: only the others reach the server. */
  async function partialDelete(req: IncomingMessage, res: ServerResponse, body: Buffer, refused: string[], all: string[], message: string): Promise<void> {
    const keep = all.filter((k) => !refused.includes(k));
    const quiet = /<Quiet>true<\/Quiet>/.test(body.toString());
    let upstreamBody = '';
    if (keep.length > 0) {
      const xml =
        '<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
        keep.map((k) => `<Object><Key>${encodeXml(k)}</Key></Object>`).join('') +
        (quiet ? '<Quiet>true</Quiet>' : '') +
        '</Delete>';
      const buf = Buffer.from(xml);
      for (const h of Object.keys(req.headers)) if (h.startsWith('x-amz-checksum') || h === 'x-amz-sdk-checksum-algorithm') delete req.headers[h];
      req.headers['content-md5'] = createHash('md5').update(buf).digest('base64');
      const got = await forward(req, buf);
      upstreamBody = got.body.toString();
    }
    const inner = (upstreamBody.match(/<DeleteResult[^>]*>([\s\S]*)<\/DeleteResult>/)?.[1] ?? '').trim();
    const errors = refused.map((k) => `<Error><Key>${encodeXml(k)}</Key><Code>AccessDenied</Code><Message>${encodeXml(message)}</Message></Error>`).join('');
    const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${inner}${errors}</DeleteResult>`;
    sendWhole(res, 200, { 'content-type': 'application/xml' }, Buffer.from(xml), false);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const { op, key } = classify(req.method ?? 'GET', url);
    const countKey = `${op}\0${key}`;
    const n = (counts.get(countKey) ?? 0) + 1;
    counts.set(countKey, n);
    const entry: Served = { seq: ++seq, op, key };
    proxy.log.push(entry);
    if (decide(op, key, url.searchParams, n, 'reset-request')) {
      entry.fault = 'reset-request';
      const half = Number(req.headers['content-length'] ?? 0) / 2;
      await new Promise<void>((resolve) => {
        let got = 0;
        req.on('data', (c: Buffer) => {
          got += c.length;
          if (got >= half) resolve();
        });
        req.on('end', resolve);
        req.on('error', () => resolve());
      });
      req.socket.resetAndDestroy();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const head = req.method === 'HEAD';

    if (op === 'DeleteObjects') {
      const all = [...body.toString().matchAll(/<Key>([\s\S]*?)<\/Key>/g)].map((m) => decodeXml(m[1]!));
      entry.deleteKeys = all;
      let message: string | undefined;
      const refused = all.filter((k) => {
        const hit = decide('DeleteObjects', k, url.searchParams, n, 'key-error');
        if (hit?.fault === 'key-error') message ??= hit.rule.echo;
        return hit?.fault === 'key-error';
      });
      if (refused.length > 0) {
        entry.keyErrors = refused;
        entry.fault = 'key-error';
        await partialDelete(req, res, body, refused, all, message ?? 'Access Denied');
        return;
      }
    }
    const d = decide(op, key, url.searchParams, n);
    const fault = d?.fault;
    if (fault) entry.fault = fault;
    const socket = req.socket;

    switch (fault) {
      case 'error500':
      case 'slowdown503': {
        const [status, code, message] = XML_ERRORS[fault]!;
        sendWhole(res, status, { 'content-type': 'application/xml' }, Buffer.from(errorXml(code, message, url.pathname)), head);
        return;
      }
      case 'echo':
        sendWhole(res, 500, { 'content-type': 'application/xml' }, Buffer.from(errorXml('InternalError', `server says: ${d!.rule.echo ?? ''}`, url.pathname)), head);
        return;
      case 'reset':
        socket.resetAndDestroy();
        return;
      case 'stall':
        return; // the socket stays open and silent until the client gives up (or stop())
      default:
        break;
    }

    const refusedBy = await precondition(req, op, url);
    if (refusedBy) {
      const [status, code] = refusedBy;
      sendWhole(res, status, { 'content-type': 'application/xml' }, Buffer.from(errorXml(code, 'At least one of the pre-conditions you specified did not hold', url.pathname)), head);
      return;
    }
    let sent = body;
    if (fault === 'corrupt-request') {
      if (body.length === 0) delete entry.fault;
      else {
        sent = Buffer.from(body);
        const at = Math.floor(sent.length / 2);
        sent[at] = sent[at]! ^ 0xff;
      }
    }
    const got = await forward(req, sent);
    if (fault === 'inject-keys') {
      const contents = (d!.rule.inject ?? []).map((k) =>
        Buffer.concat([
          Buffer.from('<Contents><Key>'),
          typeof k === 'string' ? Buffer.from(encodeXml(k)) : k,
          Buffer.from(`</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>&quot;${createHash('md5').update('x').digest('hex')}&quot;</ETag><Size>1</Size><StorageClass>STANDARD</StorageClass></Contents>`),
        ]),
      );
      const text = got.body.toString('latin1');
      const at = text.lastIndexOf('</ListBucketResult>');
      const xml = Buffer.concat([got.body.subarray(0, at), ...contents, got.body.subarray(at)]);
      sendWhole(res, got.status, got.headers, xml, head);
      return;
    }
    if (fault === 'corrupt' && (got.body.length === 0 || head)) delete entry.fault; // nothing to corrupt
    if (!entry.fault || fault === 'corrupt-request') {
      sendWhole(res, got.status, got.headers, got.body, head);
      return;
    }
    const h = { ...got.headers };
    delete h.connection;
    delete h['keep-alive'];
    delete h['transfer-encoding'];
    if (!head) h['content-length'] = String(got.body.length);
    if (fault === 'corrupt') {
      const bad = Buffer.from(got.body);
      // In an XML document, a tag opener from the middle on: the damage always breaks the syntax
      // (a flipped digit in an ETag would be a different, quieter fault).
      const middle = Math.floor(bad.length / 2);
      const tag = /xml/.test(String(got.headers['content-type'])) ? bad.indexOf('<', middle) : -1;
      const at = tag >= 0 ? tag : middle;
      bad[at] = bad[at]! ^ 0xff;
      res.writeHead(got.status, h);
      res.end(head ? undefined : bad);
      return;
    }
    const half = got.body.subarray(0, Math.floor(got.body.length / 2));
    if (got.body.length === 0 || head) {
      // Nothing to cut: the server did the work, the answer is lost.
      if (fault === 'stall-mid') return;
      socket.resetAndDestroy();
      return;
    }
    res.writeHead(got.status, h);
    res.write(half);
    // Let the headers and the half body reach the client before the cut.
    await new Promise((r) => setTimeout(r, 20));
    if (fault === 'reset-mid') socket.resetAndDestroy();
    else if (fault === 'truncate') socket.end();
    // stall-mid: nothing more, ever
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendWhole(res, 502, {}, Buffer.from('proxy error'), false);
      else req.socket.destroy();
    });
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const proxy: FaultProxy = {
    endpoint: `http://127.0.0.1:${port}`,
    env: (env) => ({ ...env, AWS_S3_ENDPOINT_URL: `http://127.0.0.1:${port}` }),
    rules: [],
    log: [],
    conditionalWrites: false,
    set(rules, newSeed) {
      proxy.rules = rules;
      proxy.log = [];
      counts.clear();
      fired.clear();
      proxy.conditionalWrites = false;
      if (newSeed !== undefined) seed = newSeed;
    },
    faulted: () => proxy.log.filter((e) => e.fault),
    lastFaulted(ops) {
      const last = new Map<string, Served>();
      for (const e of proxy.log) if (ops.includes(e.op)) last.set(e.key, e);
      return new Set([...last].filter(([, e]) => e.fault).map(([k]) => k));
    },
    async stop() {
      for (const s of sockets) s.destroy();
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return proxy;
}
