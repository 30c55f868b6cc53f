// The streamed single PUT (files above 1 MiB and below the multipart threshold): what goes on the
// wire, and that a file which no longer matches what was planned is never stored.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { ItemError } from '../../src/core/errors.js';
import { getXxh64 } from '../../src/local/xxh.js';
import { MiB } from '../../src/remote/etag.js';
import { S3Store, type UploadSource } from '../../src/remote/s3-store.js';
import { startS3Server, storeConfig, type TestS3 } from '../support/s3-server.js';
import { startS3rver, type S3rverHandle } from '../support/s3rver.js';

const hex = (data: Buffer) => createHash('md5').update(data).digest('hex');

describe('streamed single PUT', () => {
  let s3: TestS3;
  let store: S3Store;
  let dir: string;
  let n = 0;
  const fileWith = async (data: Buffer): Promise<UploadSource> => {
    const filePath = join(dir, `f${n++}`);
    writeFileSync(filePath, data);
    return { filePath, size: data.length, md5: hex(data), xxh64: (await getXxh64()).hex(data) };
  };

  before(async () => {
    s3 = await startS3Server();
    store = new S3Store(storeConfig(s3, { multipartThreshold: 64 * MiB }));
    dir = await mkdtemp(join(tmpdir(), 'stream-upload-'));
  });
  after(async () => {
    store.close();
    await s3.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('sends the file as one plain body: Content-Length, the planned Content-MD5, UNSIGNED-PAYLOAD, no aws-chunked', async () => {
    const data = randomBytes(3 * MiB + 17);
    const seen: { method?: string; headers: IncomingHttpHeaders; body: Buffer }[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        seen.push({ method: req.method, headers: req.headers, body });
        res.writeHead(200, { ETag: `"${hex(body)}"` }).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const recording = new S3Store({
      ...storeConfig(s3, { multipartThreshold: 64 * MiB }),
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    });
    try {
      let reported = 0;
      const res = await recording.upload('wire/movie.mp4', await fileWith(data), { onBytes: (b) => (reported += b) });
      assert.deepEqual(res, { etag: hex(data), size: data.length, multipart: false });
      assert.equal(reported, data.length);
      assert.equal(seen.length, 1);
      const [put] = seen;
      assert.equal(put!.method, 'PUT');
      assert.ok(put!.body.equals(data), 'the body is the file, byte for byte');
      assert.equal(put!.headers['content-length'], String(data.length));
      assert.equal(put!.headers['content-md5'], Buffer.from(hex(data), 'hex').toString('base64'));
      assert.equal(put!.headers['x-amz-content-sha256'], 'UNSIGNED-PAYLOAD');
      assert.equal(put!.headers['content-encoding'], undefined);
      assert.equal(put!.headers['transfer-encoding'], undefined);
      assert.equal(put!.headers['x-amz-decoded-content-length'], undefined);
      assert.equal(put!.headers['content-type'], 'video/mp4');
      assert.match(String(put!.headers['authorization']), /SignedHeaders=[^,]*content-md5/);
    } finally {
      recording.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('uploads into the test server with a plain-MD5 ETag and md5 metadata', async () => {
    const data = randomBytes(5 * MiB);
    const res = await store.upload('stream/ok.bin', await fileWith(data));
    assert.deepEqual(res, { etag: hex(data), size: data.length, multipart: false });
    assert.ok((await s3.getBuffer('stream/ok.bin')).equals(data));
    assert.equal((await store.head('stream/ok.bin'))?.md5, hex(data));
  });

  it('a file rewritten since it was hashed (same size) is refused before its body completes: nothing stored', async () => {
    const src = await fileWith(randomBytes(4 * MiB));
    writeFileSync(src.filePath, randomBytes(4 * MiB));
    await assert.rejects(store.upload('stream/rewritten.bin', src), { name: 'ItemError', message: 'file changed while uploading' });
    assert.deepEqual(await s3.listAll('stream/rewritten'), []);
  });

  it('a file that grew or shrank since it was hashed is refused: nothing stored', async () => {
    const grown = await fileWith(randomBytes(2 * MiB));
    appendFileSync(grown.filePath, 'more');
    await assert.rejects(store.upload('stream/grown.bin', grown), { name: 'ItemError', message: 'file changed while uploading' });
    const shrunk = await fileWith(randomBytes(2 * MiB));
    writeFileSync(shrunk.filePath, randomBytes(MiB));
    await assert.rejects(store.upload('stream/shrunk.bin', shrunk), { name: 'ItemError', message: 'file changed while uploading' });
    assert.ok(!(await s3.listAll('stream/')).some((o) => /grown|shrunk/.test(o.key)));
  });

  it('without an xxh64 the stream is checked against the MD5', async () => {
    const data = randomBytes(2 * MiB);
    const src = await fileWith(data);
    const { xxh64: _unused, ...md5Only } = src;
    assert.equal((await store.upload('stream/md5-only.bin', md5Only)).etag, hex(data));
    await assert.rejects(store.upload('stream/md5-wrong.bin', { ...md5Only, md5: hex(Buffer.from('other')) }), {
      name: 'ItemError',
      message: 'file changed while uploading',
    });
    assert.ok(!(await s3.listAll('stream/')).some((o) => o.key === 'stream/md5-wrong.bin'));
  });

  it('a small file is checked by its xxh64 before anything is sent', async () => {
    const src = await fileWith(Buffer.from('then'));
    writeFileSync(src.filePath, 'now!');
    await assert.rejects(store.upload('small/changed.txt', src), (err: unknown) => err instanceof ItemError && err.message === 'file changed since it was hashed');
    assert.deepEqual(await s3.listAll('small/'), []);
  });

  it('stops when the signal aborts, with the abort reason, storing nothing', async () => {
    const src = await fileWith(randomBytes(8 * MiB));
    const controller = new AbortController();
    const reason = new Error('stop now');
    const upload = store.upload('stream/aborted.bin', src, { signal: controller.signal, onBytes: () => controller.abort(reason) });
    await assert.rejects(upload, (err: unknown) => err === reason);
    assert.ok(!(await s3.listAll('stream/')).some((o) => o.key === 'stream/aborted.bin'));
  });
});

describe('against a server that checks signatures (s3rver)', () => {
  let server: S3rverHandle;
  let dir: string;
  before(async () => {
    server = await startS3rver('unsigned');
    dir = await mkdtemp(join(tmpdir(), 'stream-upload-signed-'));
  });
  after(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('accepts PUTs and parts signed UNSIGNED-PAYLOAD: a small file, a streamed one, a multipart one', async () => {
    const e = server.env;
    const store = new S3Store({
      endpoint: e.AWS_S3_ENDPOINT_URL!, bucket: e.AWS_STORAGE_BUCKET_NAME!, accessKeyId: e.AWS_ACCESS_KEY_ID!,
      secretAccessKey: e.AWS_SECRET_ACCESS_KEY!, forcePathStyle: true, concurrency: 2, multipartThreshold: 6 * MiB, partSize: 5 * MiB,
    });
    try {
      for (const [name, size] of [['small.txt', 1000], ['streamed.bin', 2 * MiB], ['parts.bin', 11 * MiB]] as const) {
        const data = randomBytes(size);
        const filePath = join(dir, name);
        writeFileSync(filePath, data);
        const src = { filePath, size, md5: hex(data), xxh64: (await getXxh64()).hex(data) };
        const res = await store.upload(`signed/${name}`, src);
        assert.equal(res.size, size);
        const got = await store.get(`signed/${name}`);
        assert.equal(hex(await buffer(got.body)), hex(data), `${name} stored whole`);
      }
    } finally {
      store.close();
    }
  });
});
