// The SDK-free GetObject (raw-requests.ts): the same path and SigV4 signature the SDK would send (the
// test servers accept any signature, so it is checked here against the SDK's own signer), retries
// of transient answers only, and the abort and idle-socket limits.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../../src/remote/client.js';
import { RawRequests } from '../../src/remote/raw-requests.js';
import type { StoreConfig } from '../../src/remote/s3-store.js';
import { sdkSigner, signingDateOf } from '../support/sigv4.js';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

/** Answers each request with the next scripted reply (the last one repeats); 'stall' never answers. */
let script: (number | 'stall')[] = [200];
const seen: Seen[] = [];
const stalled: http.ServerResponse[] = [];
const server = http.createServer((req, res) => {
  seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
  const next = script.length > 1 ? script.shift()! : script[0]!;
  if (next === 'stall') return void stalled.push(res);
  if (next === 200) return void res.writeHead(200, { etag: '"abc"', 'content-length': '5' }).end('hello');
  const code = { 403: 'AccessDenied', 500: 'InternalError', 503: 'SlowDown' }[next] ?? 'Other';
  res.writeHead(next, { 'content-type': 'application/xml' }).end(`<?xml version="1.0"?><Error><Code>${code}</Code><Message>says &lt;${code}&gt;</Message></Error>`);
});
let endpoint = '';
const closers: (() => void)[] = [];

before(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  for (const c of closers) c();
  for (const res of stalled) res.destroy();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

function config(over: Partial<StoreConfig> = {}): StoreConfig {
  return { endpoint, bucket: 'bkt', accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret/KEY+example', region: 'auto', forcePathStyle: true, concurrency: 2, multipartThreshold: 1 << 30, partSize: 8 << 20, maxAttempts: 5, ...over };
}

function getter(over: Partial<StoreConfig> = {}): { raw: RawRequests; cfg: StoreConfig } {
  const cfg = config(over);
  const client = createS3Client(cfg);
  const raw = new RawRequests(cfg, client);
  closers.push(() => raw.close(), () => client.destroy());
  return { raw, cfg };
}

const read = async (body: AsyncIterable<Buffer>): Promise<string> => {
  let s = '';
  for await (const c of body) s += c.toString();
  return s;
};

test('sends the path the SDK sends and a signature the SDK signer agrees with, odd keys included', async () => {
  script = [200];
  const { raw, cfg } = getter();
  const client = createS3Client(cfg);
  closers.push(() => client.destroy());
  const signer = sdkSigner(cfg);
  for (const key of ["a b/ü日本#?%+!'()*~.txt", 'media/../x.txt', 'plain/key.bin']) {
    seen.length = 0;
    const res = await raw.get(key, '"etag-1"', undefined);
    assert.equal(await read(res), 'hello');
    const mine = seen[0]!;
    const sdk = await client.send(new GetObjectCommand({ Bucket: cfg.bucket, Key: key, IfMatch: '"etag-1"' }));
    await read(sdk.Body as AsyncIterable<Buffer>);
    // The SDK adds ?x-id=GetObject, a marker servers ignore.
    assert.equal(mine.url, seen[1]!.url.replace(/\?x-id=GetObject$/, ''), `path of ${key}`);
    const signingDate = signingDateOf(String(mine.headers['x-amz-date']));
    const signed = await signer.sign(
      {
        method: 'GET',
        protocol: 'http:',
        hostname: '127.0.0.1',
        path: mine.url,
        query: {},
        headers: { host: String(mine.headers.host), 'if-match': '"etag-1"', 'x-amz-content-sha256': String(mine.headers['x-amz-content-sha256']) },
      },
      { signingDate },
    );
    assert.equal(mine.headers.authorization, signed.headers['authorization'], `signature for ${key}`);
    assert.ok(!JSON.stringify(mine.headers).includes(cfg.secretAccessKey), 'the secret is never sent');
  }
});

test('transient answers (5xx) are retried; a 403 is not, and fails SDK-shaped', async () => {
  const { raw } = getter();
  script = [500, 500, 200];
  seen.length = 0;
  assert.equal(await read(await raw.get('k/a.txt', undefined, undefined)), 'hello');
  assert.equal(seen.length, 3);

  script = [403];
  seen.length = 0;
  await assert.rejects(raw.get('k/a.txt', undefined, undefined), (err: unknown) => {
    const e = err as { name: string; message: string; $metadata: { httpStatusCode: number } };
    assert.deepEqual([e.name, e.message, e.$metadata.httpStatusCode], ['AccessDenied', 'says <AccessDenied>', 403]);
    return true;
  });
  assert.equal(seen.length, 1);

  script = [500];
  seen.length = 0;
  const few = getter({ maxAttempts: 2 }).raw;
  await assert.rejects(few.get('k/a.txt', undefined, undefined), { name: 'InternalError' });
  assert.equal(seen.length, 2, 'maxAttempts bounds the tries');
});

test('an abort ends a request the server never answers, with the abort reason', async () => {
  const { raw } = getter();
  script = ['stall'];
  const ac = new AbortController();
  const reason = new Error('stop now');
  setTimeout(() => ac.abort(reason), 50);
  await assert.rejects(raw.get('k/stalled.txt', undefined, ac.signal), (err) => err === reason);
});

test('a socket idle past the limit is dropped and the GET tried again', async () => {
  const { raw } = getter({ socketTimeoutMs: 150 });
  script = ['stall', 200];
  seen.length = 0;
  assert.equal(await read(await raw.get('k/slow.txt', undefined, undefined)), 'hello');
  assert.equal(seen.length, 2);
});
