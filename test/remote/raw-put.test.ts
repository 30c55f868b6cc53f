// The SDK-free PutObject of a small file (putSingle's Buffer path through raw-requests.ts): the
// same path, headers and body the SDK path sends, a signature the SDK's own signer agrees with
// (the test servers accept any signature), and the SDK path's outcomes: conditional answers read
// as "changed", 501 falling back to a HEAD, transient answers retried, the ETag checked, aborts.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ItemError } from '../../src/core/errors.js';
import { createS3Client } from '../../src/remote/client.js';
import { Failure } from '../../src/remote/failure.js';
import { RawRequests } from '../../src/remote/raw-requests.js';
import { S3Store, type StoreConfig } from '../../src/remote/s3-store.js';
import { StoredEtagMismatch, putSingle, type UploadContext, type UploadOptions, type UploadSource } from '../../src/remote/upload.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { startS3Server, storeConfig, type TestS3 } from '../support/s3-server.js';
import { sdkSigner, signingDateOf } from '../support/sigv4.js';

const hex = (data: Buffer) => createHash('md5').update(data).digest('hex');

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * Answers each request with the next scripted reply (the last one repeats): a status (200 with
 * the body's MD5 as ETag, or an S3 error document), 'stall' (never answers), 'reset' (drops the
 * connection once the request is in), 'bad-etag' (200 with another MD5), 'error-200' (200 with an
 * S3 error document, which the SDK reads as a 503).
 */
type Reply = number | 'stall' | 'reset' | 'bad-etag' | 'error-200';
let script: Reply[] = [200];
const seen: Seen[] = [];
const stalled: http.ServerResponse[] = [];
const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
    const next = script.length > 1 ? script.shift()! : script[0]!;
    if (next === 'stall') return void stalled.push(res);
    if (next === 'reset') return void req.socket.resetAndDestroy();
    if (next === 'error-200') return void res.writeHead(200).end('<Error><Code>InternalError</Code><Message>in a 200</Message></Error>');
    if (req.method === 'HEAD') return void res.writeHead(200, { etag: `"${'ab'.repeat(16)}"`, 'content-length': '1' }).end();
    if (next === 200 || next === 'bad-etag') return void res.writeHead(200, { etag: `"${hex(next === 200 ? body : Buffer.from('other'))}"` }).end();
    const code = { 409: 'OperationAborted', 412: 'PreconditionFailed', 404: 'NoSuchKey', 500: 'InternalError', 501: 'NotImplemented', 503: 'SlowDown', 403: 'AccessDenied' }[next] ?? 'Other';
    res.writeHead(next, { 'content-type': 'application/xml' }).end(`<?xml version="1.0"?><Error><Code>${code}</Code><Message>says ${code}</Message></Error>`);
  });
});
let endpoint = '';
let dir = '';
const closers: (() => void)[] = [];
let n = 0;

before(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  dir = await mkdtemp(join(tmpdir(), 'raw-put-'));
});
after(async () => {
  for (const c of closers) c();
  for (const res of stalled) res.destroy();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

function config(over: Partial<StoreConfig> = {}): StoreConfig {
  return { endpoint, bucket: 'bkt', accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret/KEY+example', region: 'auto', forcePathStyle: true, concurrency: 2, multipartThreshold: 1 << 30, partSize: 8 << 20, maxAttempts: 5, ...over };
}

/** What putSingle is given by S3Store; `raw: false` leaves the PUT to the SDK, as before. */
function context(over: Partial<StoreConfig> & { raw?: boolean } = {}): { ctx: UploadContext; cfg: StoreConfig; heads: string[] } {
  const cfg = config(over);
  const client = createS3Client(cfg);
  const raw = over.raw === false ? undefined : new RawRequests(cfg, client);
  closers.push(() => raw?.close(), () => client.destroy());
  const heads: string[] = [];
  const head = async (key: string) => {
    heads.push(key);
    return { etag: 'ab'.repeat(16) };
  };
  return { ctx: { client, bucket: cfg.bucket, partSize: cfg.partSize, fail: new Failure(cfg.secretAccessKey), head, raw }, cfg, heads };
}

async function fileWith(data: Buffer | string): Promise<UploadSource> {
  const bytes = Buffer.from(data);
  const filePath = join(dir, `f${n++}`);
  await writeFile(filePath, bytes);
  return { filePath, size: bytes.length, md5: hex(bytes) };
}

/** Headers that say which client sent the request or when, not what it asks for. */
const BOOKKEEPING = ['authorization', 'x-amz-date', 'user-agent', 'x-amz-user-agent', 'amz-sdk-invocation-id', 'amz-sdk-request', 'connection'];
const meaning = (h: http.IncomingHttpHeaders) => Object.fromEntries(Object.entries(h).filter(([k]) => !BOOKKEEPING.includes(k)).sort(([a], [b]) => (a < b ? -1 : 1)));

const ODD_KEYS = ["a b/ü日本#?%+!'()*~.txt", 'media/100% off+more~ x.json', 'media/../x.txt', 'plain/key.bin'];

describe('raw PutObject', () => {
  it('sends the path, headers and body the SDK path sends, for every kind of condition', async () => {
    script = [200];
    const sdk = context({ raw: false }).ctx;
    const raw = context().ctx;
    const src = await fileWith('hello, small file\n');
    const conditions: UploadOptions['expect'][] = [undefined, 'absent', { etag: 'cd'.repeat(16) }];
    for (const key of ODD_KEYS) {
      for (const expect of conditions) {
        seen.length = 0;
        const viaSdk = await putSingle(sdk, key, src, { expect });
        const viaRaw = await putSingle(raw, key, src, { expect });
        assert.deepEqual(viaRaw, viaSdk);
        assert.equal(seen.length, 2);
        const [theirs, mine] = [seen[0]!, seen[1]!];
        assert.equal(mine.method, 'PUT');
        // The SDK adds ?x-id=PutObject, a marker servers ignore.
        assert.equal(mine.url, theirs.url.replace(/\?x-id=PutObject$/, ''), `path of ${key}`);
        assert.deepEqual(meaning(mine.headers), meaning(theirs.headers), `headers for ${key} ${JSON.stringify(expect)}`);
        assert.deepEqual(mine.body, theirs.body);
      }
    }
    // Spelled out, so that the comparison above is not two equal mistakes.
    const last = meaning(seen[1]!.headers);
    assert.deepEqual(last, {
      'content-length': String(src.size),
      'content-md5': Buffer.from(src.md5, 'hex').toString('base64'),
      'content-type': 'application/octet-stream',
      host: new URL(endpoint).host,
      'if-match': `"${'cd'.repeat(16)}"`,
      'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
      'x-amz-meta-md5': src.md5,
    });
  });

  it('signs the PUT as the SDK signer does, odd keys included, and never sends the secret', async () => {
    script = [200];
    const { ctx, cfg } = context();
    const signer = sdkSigner(cfg);
    const src = await fileWith(Buffer.from([0, 1, 2, 255]));
    for (const key of ODD_KEYS) {
      for (const expect of [undefined, 'absent', { etag: 'ef'.repeat(16) }] as UploadOptions['expect'][]) {
        seen.length = 0;
        await putSingle(ctx, key, src, { expect });
        const mine = seen[0]!;
        // Every header sent but the connection's own is signed.
        const headers = Object.fromEntries(Object.entries(mine.headers).filter(([k]) => k !== 'authorization' && k !== 'connection').map(([k, v]) => [k, String(v)]));
        const signed = await signer.sign(
          { method: 'PUT', protocol: 'http:', hostname: '127.0.0.1', path: mine.url, query: {}, headers, body: mine.body },
          { signingDate: signingDateOf(String(mine.headers['x-amz-date'])) },
        );
        assert.equal(mine.headers.authorization, signed.headers['authorization'], `signature for ${key} ${JSON.stringify(expect)}`);
        assert.match(String(mine.headers.authorization), /SignedHeaders=content-length;content-md5;content-type;host;(if-match;|if-none-match;)?x-amz-content-sha256;x-amz-date;x-amz-meta-md5,/);
        assert.ok(!JSON.stringify(mine.headers).includes(cfg.secretAccessKey), 'the secret is never sent');
      }
    }
  });

  it('reads 412 and 409 (and 404 under If-Match) to a conditional PUT as "changed", without a retry', async () => {
    const { ctx } = context();
    const src = await fileWith('x');
    for (const [status, expect] of [[412, 'absent'], [412, { etag: 'ab'.repeat(16) }], [409, 'absent'], [404, { etag: 'ab'.repeat(16) }]] as const) {
      script = [status];
      seen.length = 0;
      await assert.rejects(putSingle(ctx, 'media/a.txt', src, { expect }), (err: unknown) => {
        assert.ok(err instanceof ItemError);
        assert.equal(err.message, 'remote object changed since it was listed');
        return true;
      });
      assert.equal(seen.length, 1, `${status}: one try`);
    }
    // Without a condition a 404 is a failure like any other, worded as the SDK path words it.
    script = [404];
    await assert.rejects(putSingle(ctx, 'media/a.txt', src, {}), { name: 'ItemError', message: 'S3 PutObject media/a.txt: 404 NoSuchKey: says NoSuchKey' });
  });

  it('falls back to a HEAD and an unconditional PUT on 501, which is not retried', async () => {
    const { ctx, heads } = context();
    script = [501, 200];
    seen.length = 0;
    const src = await fileWith('x');
    const res = await putSingle(ctx, 'media/a.txt', src, { expect: { etag: 'ab'.repeat(16) } });
    assert.equal(res.etag, src.md5);
    assert.deepEqual(seen.map((s) => `${s.method} ${s.headers['if-match'] ? 'if-match' : 'plain'}`), ['PUT if-match', 'PUT plain']);
    assert.deepEqual(heads, ['media/a.txt']);
  });

  it('sends the same body again after a 500, a 503, a reset or an error in a 200, and gives up after maxAttempts', async () => {
    const { ctx } = context();
    const src = await fileWith('retried body');
    script = [500, 503, 'reset', 'error-200', 200];
    seen.length = 0;
    const res = await putSingle(ctx, 'media/r.txt', src, {});
    assert.equal(res.etag, src.md5);
    assert.equal(seen.length, 5);
    for (const s of seen) assert.equal(s.body.toString(), 'retried body');

    const few = context({ maxAttempts: 2 }).ctx;
    script = [500];
    seen.length = 0;
    await assert.rejects(putSingle(few, 'media/r.txt', src, {}), { name: 'ItemError', message: 'S3 PutObject media/r.txt: 500 InternalError: says InternalError' });
    assert.equal(seen.length, 2);

    // A 403 is not transient.
    script = [403];
    seen.length = 0;
    await assert.rejects(putSingle(ctx, 'media/r.txt', src, {}), { message: 'S3 PutObject media/r.txt: 403 AccessDenied: says AccessDenied' });
    assert.equal(seen.length, 1);
  });

  it('refuses an ETag that is not the planned MD5', async () => {
    const { ctx } = context();
    script = ['bad-etag'];
    const src = await fileWith('mine');
    await assert.rejects(putSingle(ctx, 'media/e.txt', src, {}), (err: unknown) => err instanceof StoredEtagMismatch && err.stored === hex(Buffer.from('other')));
  });

  it('ends a PUT the server never answers with the caller\'s abort reason', async () => {
    const { ctx } = context();
    script = ['stall'];
    const src = await fileWith('stalled');
    const ac = new AbortController();
    const reason = new Error('stop now');
    setTimeout(() => ac.abort(reason), 50);
    await assert.rejects(putSingle(ctx, 'media/s.txt', src, { signal: ac.signal }), (err) => err === reason);
  });

  it('drops a socket idle past the limit and sends the PUT again', async () => {
    const { ctx } = context({ socketTimeoutMs: 150 });
    script = ['stall', 200];
    seen.length = 0;
    const src = await fileWith('slow');
    assert.equal((await putSingle(ctx, 'media/slow.txt', src, {})).etag, src.md5);
    assert.equal(seen.length, 2);
  });
});

describe('raw PutObject against the test S3 server', () => {
  let s3: TestS3;
  let proxy: FaultProxy;
  let store: S3Store;

  before(async () => {
    s3 = await startS3Server();
    proxy = await startFaultProxy(s3.endpoint, { seed: 3 });
    store = new S3Store({ ...storeConfig(s3), endpoint: proxy.endpoint, forcePathStyle: true });
  });
  after(async () => {
    store.close();
    await proxy.stop();
    await s3.stop();
  });

  it('stores the bytes and the md5 metadata, and a conditional PUT that loses (R2-style 412) stores nothing', async () => {
    proxy.set([]);
    const first = await fileWith('first version');
    const key = 'media/ü b+%~.txt';
    assert.equal((await store.upload(key, first, { expect: 'absent' })).etag, first.md5);
    assert.equal((await s3.getBuffer(key)).toString(), 'first version');
    assert.equal((await store.head(key))?.md5, first.md5);
    assert.ok(proxy.log.some((e) => e.op === 'PutObject' && e.key === key));

    proxy.conditionalWrites = true;
    const second = await fileWith('second version');
    await assert.rejects(store.upload(key, second, { expect: 'absent' }), { name: 'ItemError', message: 'remote object changed since it was listed' });
    await assert.rejects(store.upload(key, second, { expect: { etag: 'ab'.repeat(16) } }), { message: 'remote object changed since it was listed' });
    assert.equal((await s3.getBuffer(key)).toString(), 'first version');
    const ok = await store.upload(key, second, { expect: { etag: first.md5 } });
    assert.equal(ok.etag, second.md5);
    assert.equal((await s3.getBuffer(key)).toString(), 'second version');
  });
});
