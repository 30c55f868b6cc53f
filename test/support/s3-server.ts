// The S3 server the tests talk to, behind one small interface so it can be swapped.
//
// Default: fauxqs in this process, on 127.0.0.1 and a random port, with a fresh random bucket.
// Real multipart `-N` ETags, keeps x-amz-meta-*, stores keys verbatim; no authentication (any
// key is accepted), `HeadObject` with PartNumber returns no PartsCount, no If-None-Match on PUT,
// request bodies up to 256 MiB (fauxqs' own limit, 11 MiB, is raised above the default multipart
// threshold).
//
// Real endpoint instead (e.g. an R2 bucket kept for tests): set all four of
//   STORAGE_SYNC_TEST_S3_ENDPOINT, STORAGE_SYNC_TEST_S3_BUCKET,
//   STORAGE_SYNC_TEST_S3_KEY, STORAGE_SYNC_TEST_S3_SECRET
// (and STORAGE_SYNC_TEST_S3_FORCE_PATH_STYLE=true if it needs path-style URLs).
// reset() empties the WHOLE bucket, so never point this at a bucket holding anything else.
//
// The helpers below use the raw SDK client, not S3Store, so they can check the store's work.
//
// Because fauxqs runs in this process, a test must not spawnSync/execSync a child that talks to
// it: the blocked event loop deadlocks both.

import { randomBytes } from 'node:crypto';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { buildApp } from 'fauxqs';
import { createS3Client } from '../../src/remote/client.js';
import type { StoreConfig } from '../../src/remote/s3-store.js';

const BODY_LIMIT = 256 * 1024 * 1024;

export interface TestS3 {
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  forcePathStyle: boolean;
  /** The AWS_* variables the CLI reads. */
  env: Record<string, string>;
  client: S3Client;
  putRaw(key: string, body: Buffer | string): Promise<string>;
  listAll(prefix?: string): Promise<{ key: string; etag: string; size: number }[]>;
  getBuffer(key: string): Promise<Buffer>;
  deleteRaw(key: string): Promise<void>;
  /** Empties the bucket. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

/** Store settings for this server; tests override sizes and attempts as they need. */
export function storeConfig(
  s3: Pick<TestS3, 'endpoint' | 'bucket' | 'accessKeyId' | 'secretAccessKey' | 'forcePathStyle'>,
  overrides: Partial<StoreConfig> = {},
): StoreConfig {
  return {
    endpoint: s3.endpoint,
    bucket: s3.bucket,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    forcePathStyle: s3.forcePathStyle,
    concurrency: 8,
    multipartThreshold: 8 * 1024 * 1024,
    partSize: 8 * 1024 * 1024,
    ...overrides,
  };
}

export async function startS3Server(): Promise<TestS3> {
  const real = process.env.STORAGE_SYNC_TEST_S3_ENDPOINT;
  if (real) {
    const need = (name: string) => {
      const value = process.env[name];
      if (!value) throw new Error(`STORAGE_SYNC_TEST_S3_ENDPOINT is set but ${name} is not`);
      return value;
    };
    return connect(
      real,
      need('STORAGE_SYNC_TEST_S3_BUCKET'),
      need('STORAGE_SYNC_TEST_S3_KEY'),
      need('STORAGE_SYNC_TEST_S3_SECRET'),
      process.env.STORAGE_SYNC_TEST_S3_FORCE_PATH_STYLE === 'true',
      async () => {},
    );
  }
  const app = buildApp({ logger: false, host: '127.0.0.1' });
  // fauxqs' S3 body parser has Fastify's 11 MiB limit; S3 and R2 take single PUTs up to 5 GiB,
  // and files below the default multipart threshold (200 MiB) go up in one. The same parser with
  // a limit above that replaces it (as in bench/s3-server.ts).
  app.removeContentTypeParser('*');
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: BODY_LIMIT }, (_req, body, done) => done(null, body));
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  const bucket = `test-${randomBytes(6).toString('hex')}`;
  const created = await fetch(`${address}/${bucket}`, { method: 'PUT' });
  if (!created.ok) throw new Error(`test S3 server: creating bucket ${bucket}: HTTP ${created.status}`);
  return connect(address, bucket, 'test-key', `test-secret-${randomBytes(12).toString('hex')}`, true, () => app.close());
}

function connect(
  endpoint: string,
  bucket: string,
  accessKeyId: string,
  secretAccessKey: string,
  forcePathStyle: boolean,
  stopServer: () => Promise<void>,
): TestS3 {
  const where = { endpoint, bucket, accessKeyId, secretAccessKey, forcePathStyle };
  const client = createS3Client(storeConfig(where));
  const listAll = async (prefix = '') => {
    const all: { key: string; etag: string; size: number }[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of page.Contents ?? []) all.push({ key: o.Key!, etag: unquote(o.ETag), size: o.Size ?? 0 });
      token = page.NextContinuationToken;
    } while (token);
    return all;
  };
  return {
    ...where,
    env: {
      AWS_ACCESS_KEY_ID: accessKeyId,
      AWS_SECRET_ACCESS_KEY: secretAccessKey,
      AWS_S3_ENDPOINT_URL: endpoint,
      AWS_STORAGE_BUCKET_NAME: bucket,
      AWS_S3_FORCE_PATH_STYLE: String(forcePathStyle),
    },
    client,
    async putRaw(key, body) {
      return unquote((await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }))).ETag);
    },
    listAll,
    async getBuffer(key) {
      const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return Buffer.from(await res.Body!.transformToByteArray());
    },
    async deleteRaw(key) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    },
    async reset() {
      const keys = (await listAll()).map((o) => o.key);
      for (let i = 0; i < keys.length; i += 1000) {
        const Objects = keys.slice(i, i + 1000).map((Key) => ({ Key }));
        await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects, Quiet: true } }));
      }
    },
    async stop() {
      client.destroy();
      await stopServer();
    },
  };
}

const unquote = (etag: string | undefined) => (etag ?? '').replace(/"/g, '');
