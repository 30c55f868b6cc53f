import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { CredentialsError, ItemError } from '../../src/core/errors.js';
import { MiB, multipartEtag } from '../../src/remote/etag.js';
import { S3Store, type StoreConfig } from '../../src/remote/s3-store.js';
import { startS3Server, storeConfig, type TestS3 } from '../support/s3-server.js';

const md5 = (data: Buffer) => createHash('md5').update(data).digest();
const hex = (data: Buffer) => md5(data).toString('hex');

/** Runs `fn` over `items`, at most `limit` at a time. */
async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>) {
  const queue = items[Symbol.iterator]();
  const worker = async () => {
    for (let next = queue.next(); !next.done; next = queue.next()) await fn(next.value);
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

/** A server that answers every request the same way, to see what the store makes of it. */
async function cannedServer(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createHttpServer((req, res) => req.resume().on('end', () => handler(req, res)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { endpoint, close: () => new Promise((resolve) => server.close(resolve)) };
}

async function collect(store: S3Store, prefix: string) {
  const pages = [];
  for await (const page of store.list(prefix)) pages.push(page);
  return pages;
}

describe('S3Store against the test S3 server', () => {
  let s3: TestS3;
  let store: S3Store;
  let dir: string;
  let n = 0;
  const fileWith = async (data: Buffer) => {
    const filePath = join(dir, `f${n++}`);
    await writeFile(filePath, data);
    return { filePath, size: data.length, md5: hex(data) };
  };
  // Closed in after(), so a failed assertion leaves no keep-alive sockets holding the process.
  const opened: S3Store[] = [];
  const withStore = (overrides: Partial<StoreConfig>) => {
    const extra = new S3Store(storeConfig(s3, overrides));
    opened.push(extra);
    return extra;
  };

  before(async () => {
    s3 = await startS3Server();
    store = new S3Store(storeConfig(s3));
    dir = await mkdtemp(join(tmpdir(), 's3-store-'));
  });
  after(async () => {
    for (const extra of [store, ...opened]) extra.close();
    await s3.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('lists more than 1,000 keys under a prefix completely, page by page', async () => {
    const keys = Array.from({ length: 2105 }, (_, i) => `many/${String(i).padStart(5, '0')}.txt`);
    await eachLimited(keys, 32, (key) => s3.putRaw(key, key));
    await s3.putRaw('many-not/x.txt', 'outside the prefix');
    const pages = await collect(store, 'many/');
    assert.deepEqual(pages.map((p) => p.length), [1000, 1000, 105]);
    const listed = pages.flat();
    assert.deepEqual(listed.map((o) => o.key).sort(), keys);
    const first = listed.find((o) => o.key === keys[0])!;
    assert.equal(first.etag, hex(Buffer.from(keys[0]!)));
    assert.equal(first.size, keys[0]!.length);
    assert.ok(Math.abs(first.lastModified - Date.now()) < 60_000);
  });

  it('round-trips keys with spaces, Unicode, #, ?, %, + exactly', async () => {
    const names = ['with space.txt', 'ünïcödé/日本語.txt', 'hash#1.txt', 'q?x=1&y=2.txt', '100%.txt', 'a+b.txt', 'media/../x.txt'];
    const keys = names.map((name) => `odd/${name}`);
    for (const key of keys) await store.upload(key, await fileWith(Buffer.from(key)));
    assert.deepEqual((await collect(store, 'odd/')).flat().map((o) => o.key).sort(), [...keys].sort());
    for (const key of keys) {
      const got = await store.get(key);
      assert.equal((await buffer(got.body)).toString(), key);
      assert.equal((await store.head(key))?.md5, hex(Buffer.from(key)));
    }
  });

  it('uploads small files in one PUT whose ETag is the MD5, with md5 metadata and a content type', async () => {
    const data = randomBytes(10_000);
    let reported = 0;
    const res = await store.upload('single/app.css', await fileWith(data), { onBytes: (b) => (reported += b) });
    assert.deepEqual(res, { etag: hex(data), size: data.length, multipart: false });
    assert.equal(reported, data.length);
    const head = await store.head('single/app.css');
    assert.deepEqual({ ...head, lastModified: 0 }, {
      key: 'single/app.css', etag: hex(data), size: data.length, lastModified: 0, md5: hex(data), partsCount: undefined,
    });
    const got = await store.get('single/app.css');
    assert.ok(got.body.readable);
    got.body.resume();
    assert.equal(got.etag, hex(data));
  });

  it('refuses to upload a file whose MD5 differs from the one given, sending nothing', async () => {
    const src = await fileWith(Buffer.from('now'));
    await assert.rejects(store.upload('refused/a.txt', { ...src, md5: hex(Buffer.from('then')) }), (err: unknown) => {
      assert.ok(err instanceof ItemError);
      assert.equal(err.message, 'file changed since it was hashed');
      return true;
    });
    assert.deepEqual(await s3.listAll('refused/'), []);
  });

  it('uploads large files in fixed-size parts: a -3 ETag computed locally, md5 readable by head()', async () => {
    const big = withStore({ multipartThreshold: 5 * MiB, partSize: 5 * MiB });
    const data = randomBytes(12 * MiB);
    const parts = [0, 1, 2].map((i) => md5(data.subarray(i * 5 * MiB, (i + 1) * 5 * MiB)));
    let reported = 0;
    const res = await big.upload('multi/big.bin', await fileWith(data), { onBytes: (b) => (reported += b) });
    assert.deepEqual(res, { etag: multipartEtag(parts), size: data.length, multipart: true });
    assert.equal(reported, data.length);
    const head = await big.head('multi/big.bin');
    assert.equal(head?.etag, multipartEtag(parts));
    assert.equal(head?.md5, hex(data));
    assert.equal(head?.partsCount, 3);
    assert.ok((await s3.getBuffer('multi/big.bin')).equals(data));
  });

  it('aborts a multipart upload whose file no longer matches, storing nothing', async () => {
    const big = withStore({ multipartThreshold: 5 * MiB, partSize: 5 * MiB });
    const src = await fileWith(randomBytes(11 * MiB));
    const upload = big.upload('multi/changed.bin', { ...src, md5: hex(Buffer.from('other')) });
    await assert.rejects(upload, { name: 'ItemError', message: 'file changed while uploading' });
    assert.deepEqual(await s3.listAll('multi/changed'), []);
  });

  it('stops a multipart upload when the signal aborts, with the abort reason', async () => {
    const big = withStore({ multipartThreshold: 5 * MiB, partSize: 5 * MiB });
    const src = await fileWith(randomBytes(16 * MiB));
    const controller = new AbortController();
    const reason = new Error('stop now');
    const upload = big.upload('multi/aborted.bin', src, { signal: controller.signal, onBytes: () => controller.abort(reason) });
    await assert.rejects(upload, (err) => err === reason);
    await assert.rejects(big.upload('multi/aborted.bin', src, { signal: controller.signal }), (err) => err === reason);
    assert.deepEqual(await s3.listAll('multi/aborted'), []);
  });

  it('streams objects back and rejects one whose ETag changed since listing', async () => {
    const first = Buffer.from('first version');
    const oldEtag = await s3.putRaw('get/a.txt', first);
    const got = await store.get('get/a.txt', { ifMatch: oldEtag });
    assert.deepEqual({ ...got, body: null, lastModified: 0 }, { body: null, etag: hex(first), size: first.length, lastModified: 0, md5: undefined });
    assert.ok((await buffer(got.body)).equals(first));
    await s3.putRaw('get/a.txt', 'second version');
    await assert.rejects(store.get('get/a.txt', { ifMatch: oldEtag }), {
      name: 'ItemError',
      message: 'remote object changed since it was listed',
    });
  });

  it('reports a missing object as undefined from head() and as a one-line ItemError from get()', async () => {
    assert.equal(await store.head('nope/missing.txt'), undefined);
    assert.equal(await store.headPart1('nope/missing.txt'), undefined);
    await assert.rejects(store.get('nope/missing.txt'), (err: unknown) => {
      assert.ok(err instanceof ItemError);
      assert.match(err.message, /^S3 GetObject nope\/missing\.txt: 404 NoSuchKey/);
      assert.doesNotMatch(err.message, /\n/);
      return true;
    });
  });

  it('deletes 2,500 keys in batches of 1,000', async () => {
    const keys = Array.from({ length: 2500 }, (_, i) => `del/${i}.txt`);
    await eachLimited(keys, 32, (key) => s3.putRaw(key, 'x'));
    const res = await store.deleteMany(keys);
    assert.equal(res.deleted.length, 2500);
    assert.deepEqual(res.failed, []);
    assert.deepEqual(await s3.listAll('del/'), []);
  });

  it('checkBucket passes for the bucket and names a missing one, without the secret', async () => {
    await store.checkBucket();
    const missing = withStore({ bucket: 'no-such-bucket-here' });
    await assert.rejects(missing.checkBucket(), (err: unknown) => {
      assert.ok(err instanceof CredentialsError);
      assert.equal(err.message, `bucket "no-such-bucket-here" not found at ${s3.endpoint}`);
      assert.ok(!err.message.includes(s3.secretAccessKey));
      return true;
    });
  });

  it('reports per-key failures of a batch delete instead of throwing', async () => {
    const missing = withStore({ bucket: 'no-such-bucket-here' });
    const res = await missing.deleteMany(['a.txt', 'b.txt']);
    assert.deepEqual(res.deleted, []);
    assert.deepEqual(res.failed.map((f) => f.key), ['a.txt', 'b.txt']);
    assert.match(res.failed[0]!.error, /^S3 DeleteObjects 2 keys: 404 NoSuchBucket/);
  });

  it('makes a single PUT conditional on what was listed, and reads 412/409/404 as "changed"', async () => {
    const seen: Record<string, string | undefined>[] = [];
    let answer = 200;
    const server = await cannedServer((req, res) => {
      seen.push({ ifMatch: req.headers['if-match'] as string | undefined, ifNoneMatch: req.headers['if-none-match'] as string | undefined });
      if (answer === 200) return void res.writeHead(200, { etag: '"' + hex(Buffer.from('x')) + '"' }).end();
      res.writeHead(answer, { 'content-type': 'application/xml' }).end('<Error><Code>PreconditionFailed</Code><Message>no</Message></Error>');
    });
    const store = withStore({ endpoint: server.endpoint, maxAttempts: 1 });
    const src = await fileWith(Buffer.from('x'));
    await store.upload('media/a.txt', src, { expect: { etag: 'ab'.repeat(16) } });
    await store.upload('media/b.txt', src, { expect: 'absent' });
    await store.upload('media/c.txt', src);
    assert.deepEqual(seen, [
      { ifMatch: `"${'ab'.repeat(16)}"`, ifNoneMatch: undefined },
      { ifMatch: undefined, ifNoneMatch: '*' },
      { ifMatch: undefined, ifNoneMatch: undefined },
    ]);
    for (const status of [412, 409, 404]) {
      answer = status;
      await assert.rejects(store.upload('media/a.txt', src, { expect: { etag: 'ab'.repeat(16) } }), {
        name: 'ItemError',
        message: 'remote object changed since it was listed',
      });
    }
    await server.close();
  });

  it('falls back to a HEAD check where conditional PUT is not implemented (501)', async () => {
    const methods: string[] = [];
    const server = await cannedServer((req, res) => {
      methods.push(`${req.method} ${req.headers['if-match'] ? 'if-match' : 'plain'}`);
      if (req.method === 'HEAD') return void res.writeHead(200, { etag: '"' + 'ab'.repeat(16) + '"', 'content-length': '1' }).end();
      if (req.headers['if-match']) return void res.writeHead(501, { 'content-type': 'application/xml' }).end('<Error><Code>NotImplemented</Code><Message>no</Message></Error>');
      res.writeHead(200, { etag: '"' + hex(Buffer.from('x')) + '"' }).end();
    });
    const store = withStore({ endpoint: server.endpoint, maxAttempts: 1 });
    const res = await store.upload('media/a.txt', await fileWith(Buffer.from('x')), { expect: { etag: 'ab'.repeat(16) } });
    assert.equal(res.etag, hex(Buffer.from('x')));
    assert.deepEqual(methods, ['PUT if-match', 'HEAD plain', 'PUT plain']);
    await server.close();
  });

  it('checks a multipart upload\'s expectation with a HEAD first and stores nothing when it fails', async () => {
    const mp = withStore({ multipartThreshold: 5 * 1024 * 1024, partSize: 5 * 1024 * 1024 });
    const etag = await s3.putRaw('media/edited.bin', 'edited by someone else');
    const src = await fileWith(randomBytes(6 * 1024 * 1024));
    await assert.rejects(mp.upload('media/edited.bin', src, { expect: { etag: 'cd'.repeat(16) } }), { message: 'remote object changed since it was listed' });
    assert.equal((await s3.getBuffer('media/edited.bin')).toString(), 'edited by someone else');
    const ok = await mp.upload('media/edited.bin', src, { expect: { etag } });
    assert.match(ok.etag, /-2$/);
  });

  it('reads a multipart object\'s part size from HeadObject with partNumber=1, where the server tells', async () => {
    let query = '';
    const server = await cannedServer((req, res) => {
      query = req.url ?? '';
      res.writeHead(206, { etag: '"' + 'ef'.repeat(16) + '-3"', 'content-length': String(6 * 1024 * 1024), 'x-amz-mp-parts-count': '3' }).end();
    });
    const store = withStore({ endpoint: server.endpoint, maxAttempts: 1 });
    assert.deepEqual(await store.headPart1('media/foreign.mov'), { partSize: 6 * 1024 * 1024, partsCount: 3 });
    assert.match(query, /partNumber=1/);
    await server.close();
  });

  it('turns 403 into a CredentialsError and 503 into one line after the configured attempts', async () => {
    let requests = 0;
    const server = await cannedServer((req, res) => {
      requests++;
      if (req.method === 'HEAD') return void res.writeHead(403).end();
      res.writeHead(503, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0"?>\n<Error><Code>SlowDown</Code>\n<Message>Please reduce your request rate.</Message></Error>');
    });
    const flaky = withStore({ endpoint: server.endpoint, maxAttempts: 2 });
    await assert.rejects(flaky.checkBucket(), { name: 'CredentialsError', message: `credentials rejected by ${server.endpoint}` });
    requests = 0;
    const src = await fileWith(Buffer.from('x'));
    await assert.rejects(flaky.upload('media/a.jpg', src), {
      name: 'ItemError',
      message: 'S3 PutObject media/a.jpg: 503 SlowDown: Please reduce your request rate.',
    });
    assert.equal(requests, 2);
    await server.close();
  });

  it('fails fast with one line when the endpoint refuses connections', async () => {
    const server = await cannedServer(() => {});
    await server.close();
    const endpoint = server.endpoint;
    const dead = withStore({ endpoint, maxAttempts: 1 });
    const started = Date.now();
    await assert.rejects(dead.checkBucket(), (err: unknown) => {
      assert.ok(err instanceof CredentialsError);
      assert.match(err.message, new RegExp(`^cannot reach ${endpoint}: .*ECONNREFUSED`));
      return true;
    });
    await assert.rejects(dead.head('a.txt'), (err: unknown) => {
      assert.ok(err instanceof ItemError);
      assert.match(err.message, /^S3 HeadObject a\.txt: .*ECONNREFUSED[^\n]*$/);
      assert.ok(!err.message.includes(s3.secretAccessKey));
      return true;
    });
    assert.ok(Date.now() - started < 3000, 'no retries with maxAttempts 1');
  });
});
