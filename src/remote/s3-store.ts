// The remote side: list, head, get, upload and delete objects in one bucket.
// Error contract: every failure is one line that never contains the secret key. Per-object
// failures are ItemError, a failed listing is SyncError, an unusable bucket or endpoint is
// CredentialsError. When the caller's signal aborts, its `reason` is thrown unchanged.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { STATUS_CODES } from 'node:http';
import { extname } from 'node:path';
import { Readable, Transform } from 'node:stream';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type HeadObjectCommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { CredentialsError, ItemError, SyncError, oneLine } from '../core/errors.js';
import { createS3Client } from './client.js';
import { EtagHasher, etagPartCount, normalizeEtag, partSizeFor } from './etag.js';

export interface StoreConfig {
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  region?: string;
  forcePathStyle?: boolean;
  concurrency: number;
  multipartThreshold: number;
  partSize: number;
  maxAttempts?: number;
}

export interface ListedObject {
  key: string;
  /** Unquoted, lowercase. */
  etag: string;
  size: number;
  /** ms since the epoch (listings carry ms; HEAD and GET only whole seconds). */
  lastModified: number;
}

export interface HeadResult extends ListedObject {
  /** Hex MD5 from x-amz-meta-md5, written by our uploads. */
  md5?: string;
  partsCount?: number;
}

export interface GetResult {
  body: Readable;
  etag: string;
  size: number;
  lastModified: number;
  md5?: string;
}

export interface UploadSource {
  filePath: string;
  size: number;
  /** Hex MD5 the hasher computed; the upload fails rather than store other content. */
  md5: string;
}

export interface UploadOptions {
  signal?: AbortSignal;
  /**
   * What the key must hold for the write to go ahead: the ETag planned against, or 'absent'.
   * A single PUT sends it as If-Match / If-None-Match (R2 and S3 answer 412 otherwise); a
   * multipart upload, which lib-storage cannot make conditional, checks it with a HEAD first.
   */
  expect?: { etag: string } | 'absent';
  /** Called with each increment of bytes sent (not a running total). */
  onBytes?: (n: number) => void;
}

const CONTENT_TYPES: Record<string, string> = {
  css: 'text/css', js: 'text/javascript', html: 'text/html', json: 'application/json',
  png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', svg: 'image/svg+xml',
  webp: 'image/webp', woff2: 'font/woff2', txt: 'text/plain', pdf: 'application/pdf',
  mp4: 'video/mp4', mp3: 'audio/mpeg',
};
const AUTH_ERRORS = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'Forbidden']);
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'ETIMEDOUT']);

interface SdkError { name?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number } }
const statusOf = (err: unknown) => (err as SdkError | undefined)?.$metadata?.httpStatusCode;
const quote = (etag: string) => `"${normalizeEtag(etag)}"`;
const remoteChanged = (cause?: unknown) => new ItemError('remote object changed since it was listed', { cause });
const md5Of = (meta: Record<string, string> | undefined) =>
  meta?.md5 && /^[0-9a-f]{32}$/i.test(meta.md5) ? meta.md5.toLowerCase() : undefined;

export function contentTypeFor(key: string): string {
  return CONTENT_TYPES[extname(key).slice(1).toLowerCase()] ?? 'application/octet-stream';
}

export class S3Store {
  private readonly client: S3Client;

  constructor(private readonly cfg: StoreConfig, client?: S3Client) {
    this.client = client ?? createS3Client(cfg);
  }

  async *list(prefix: string, signal?: AbortSignal): AsyncGenerator<ListedObject[]> {
    let token: string | undefined;
    do {
      const cmd = new ListObjectsV2Command({ Bucket: this.cfg.bucket, Prefix: prefix, MaxKeys: 1000, ContinuationToken: token });
      const page = await this.client.send(cmd, { abortSignal: signal }).catch((err: unknown) => {
        throw this.fail('ListObjectsV2', prefix || '(bucket root)', err, signal, SyncError);
      });
      yield (page.Contents ?? []).map((o) => ({
        key: o.Key ?? '',
        etag: normalizeEtag(o.ETag ?? ''),
        size: o.Size ?? 0,
        lastModified: o.LastModified?.getTime() ?? 0,
      }));
      // A truncated page without a token would end the listing early, and every object not
      // listed would look deleted remotely.
      if (page.IsTruncated && !page.NextContinuationToken) {
        throw new SyncError(`S3 ListObjectsV2 ${prefix}: truncated page without a continuation token`);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async head(key: string, signal?: AbortSignal): Promise<HeadResult | undefined> {
    const res = await this.headObject(key, undefined, signal);
    if (!res) return undefined;
    const etag = normalizeEtag(res.ETag ?? '');
    return {
      key,
      etag,
      size: res.ContentLength ?? 0,
      lastModified: res.LastModified?.getTime() ?? 0,
      md5: md5Of(res.Metadata),
      partsCount: res.PartsCount ?? etagPartCount(etag),
    };
  }

  /** The part size of a multipart object, when the server reports it (R2 and AWS do). */
  async headPart1(key: string, signal?: AbortSignal): Promise<{ partSize: number; partsCount: number } | undefined> {
    const res = await this.headObject(key, 1, signal);
    if (!res?.PartsCount || res.ContentLength === undefined) return undefined;
    return { partSize: res.ContentLength, partsCount: res.PartsCount };
  }

  async get(key: string, opts: { ifMatch?: string; signal?: AbortSignal } = {}): Promise<GetResult> {
    const cmd = new GetObjectCommand({ Bucket: this.cfg.bucket, Key: key, IfMatch: opts.ifMatch && quote(opts.ifMatch) });
    const res = await this.client.send(cmd, { abortSignal: opts.signal }).catch((err: unknown) => {
      if (statusOf(err) === 412) throw remoteChanged(err);
      throw this.fail('GetObject', key, err, opts.signal);
    });
    const body = res.Body;
    if (!(body instanceof Readable)) throw new ItemError(`S3 GetObject ${key}: response has no body stream`);
    const etag = normalizeEtag(res.ETag ?? '');
    // Servers that ignore If-Match would hand over whatever is there now.
    if (opts.ifMatch !== undefined && etag !== normalizeEtag(opts.ifMatch)) {
      body.destroy();
      throw new ItemError('remote object changed since it was listed');
    }
    const lastModified = res.LastModified?.getTime() ?? 0;
    return { body, etag, size: res.ContentLength ?? 0, lastModified, md5: md5Of(res.Metadata) };
  }

  async upload(key: string, src: UploadSource, opts: UploadOptions = {}): Promise<{ etag: string; size: number; multipart: boolean }> {
    if (opts.signal?.aborted) throw opts.signal.reason;
    const want = { ...src, md5: src.md5.toLowerCase() };
    return src.size < this.cfg.multipartThreshold ? this.putSingle(key, want, opts) : this.putMultipart(key, want, opts);
  }

  async deleteMany(keys: string[], signal?: AbortSignal): Promise<{ deleted: string[]; failed: { key: string; error: string }[] }> {
    const deleted: string[] = [];
    const failed: { key: string; error: string }[] = [];
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      const cmd = new DeleteObjectsCommand({
        Bucket: this.cfg.bucket,
        Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
      });
      try {
        const res = await this.client.send(cmd, { abortSignal: signal });
        const errors = new Map((res.Errors ?? []).map((e) => [e.Key, this.redact(`${e.Code ?? 'Error'}: ${e.Message ?? ''}`)]));
        for (const key of batch) {
          const error = errors.get(key);
          if (error === undefined) deleted.push(key);
          else failed.push({ key, error });
        }
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        const error = oneLine(this.fail('DeleteObjects', `${batch.length} keys`, err, undefined));
        for (const key of batch) failed.push({ key, error });
      }
    }
    return { deleted, failed };
  }

  async checkBucket(): Promise<void> {
    const { bucket, endpoint } = this.cfg;
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: bucket }));
    } catch (err) {
      const e = err as SdkError;
      const status = statusOf(err);
      if (status === 404) throw new CredentialsError(this.redact(`bucket "${bucket}" not found at ${endpoint}`), { cause: err });
      if (status === 401 || status === 403 || AUTH_ERRORS.has(e.name ?? '')) {
        throw new CredentialsError(this.redact(`credentials rejected by ${endpoint}`), { cause: err });
      }
      if (UNREACHABLE.has(e.code ?? '') || e.name === 'TimeoutError') {
        throw new CredentialsError(this.redact(`cannot reach ${endpoint}: ${this.describe(err)}`), { cause: err });
      }
      throw this.fail('HeadBucket', bucket, err, undefined, SyncError);
    }
  }

  close(): void {
    this.client.destroy();
  }

  private async headObject(key: string, partNumber: number | undefined, signal?: AbortSignal): Promise<HeadObjectCommandOutput | undefined> {
    const cmd = new HeadObjectCommand({ Bucket: this.cfg.bucket, Key: key, PartNumber: partNumber });
    return this.client.send(cmd, { abortSignal: signal }).catch((err: unknown) => {
      if (statusOf(err) === 404) return undefined;
      throw this.fail('HeadObject', key, err, signal);
    });
  }

  private async putSingle(key: string, src: UploadSource, opts: UploadOptions) {
    const data = await readFile(src.filePath, { signal: opts.signal }).catch((err: unknown) => {
      throw opts.signal?.aborted ? opts.signal.reason : new ItemError(oneLine(err), { cause: err });
    });
    const md5 = createHash('md5').update(data).digest();
    if (data.length !== src.size || md5.toString('hex') !== src.md5) throw new ItemError('file changed since it was hashed');
    const cmd = new PutObjectCommand({
      Bucket: this.cfg.bucket,
      Key: key,
      Body: data,
      ContentLength: data.length,
      ContentMD5: md5.toString('base64'),
      ContentType: contentTypeFor(key),
      Metadata: { md5: src.md5 },
      ...(opts.expect === 'absent' ? { IfNoneMatch: '*' } : opts.expect ? { IfMatch: quote(opts.expect.etag) } : {}),
    });
    const res = await this.client.send(cmd, { abortSignal: opts.signal }).catch((err: unknown) => {
      if (statusOf(err) === 412) throw remoteChanged(err);
      throw this.fail('PutObject', key, err, opts.signal);
    });
    opts.onBytes?.(data.length);
    return { etag: this.etagOf('PutObject', key, res.ETag), size: data.length, multipart: false };
  }

  private async putMultipart(key: string, src: UploadSource, opts: UploadOptions) {
    if (opts.expect) {
      const now = await this.head(key, opts.signal);
      if (opts.expect === 'absent' ? now !== undefined : now?.etag !== normalizeEtag(opts.expect.etag)) throw remoteChanged();
    }
    const partSize = partSizeFor(src.size, this.cfg.partSize);
    const hasher = new EtagHasher(partSize);
    let sent = { md5: '', multipartEtag: '' };
    const changed = () => new ItemError('file changed while uploading');
    // Failing the stream (rather than checking afterwards) makes lib-storage abort the multipart
    // upload: the last part is only handed over once the stream has ended cleanly.
    const verified = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hasher.update(chunk);
        done(hasher.bytes > src.size ? changed() : null, chunk);
      },
      flush(done) {
        sent = hasher.digest();
        done(hasher.bytes !== src.size || sent.md5 !== src.md5 ? changed() : null);
      },
    });
    const file = createReadStream(src.filePath);
    file.on('error', (err) => verified.destroy(new ItemError(oneLine(err), { cause: err })));
    file.pipe(verified);
    const upload = new Upload({
      client: this.client,
      partSize,
      queueSize: 4,
      leavePartsOnError: false,
      params: {
        Bucket: this.cfg.bucket,
        Key: key,
        Body: verified,
        ContentLength: src.size,
        ContentType: contentTypeFor(key),
        Metadata: { md5: src.md5 },
      },
    });
    let reported = 0;
    upload.on('httpUploadProgress', ({ loaded = 0 }) => {
      if (loaded > reported) opts.onBytes?.(loaded - reported);
      reported = Math.max(reported, loaded);
    });
    const onAbort = () => void upload.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const res = await upload.done().catch((err: unknown) => {
        throw this.fail('Upload', key, err, opts.signal);
      });
      const etag = this.etagOf('CompleteMultipartUpload', key, res.ETag);
      // Parts carry no Content-MD5, so the ETag is the only proof the server stored these bytes.
      // A file smaller than one part went up as a single PutObject: its ETag is the plain MD5.
      const multipart = etagPartCount(etag) !== undefined;
      const expected = multipart ? sent.multipartEtag : src.md5;
      if (etag !== expected) throw new ItemError(`S3 Upload ${key}: stored ETag ${etag} does not match the content sent (${expected})`);
      return { etag, size: src.size, multipart };
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      // Unblocks part readers still waiting on the stream after a failure or an abort, so that
      // lib-storage gets to send AbortMultipartUpload.
      file.destroy();
      verified.destroy();
    }
  }

  private etagOf(op: string, key: string, etag: string | undefined): string {
    if (!etag) throw new ItemError(`S3 ${op} ${key}: response has no ETag`);
    return normalizeEtag(etag);
  }

  /** The error to throw for a failed call: the abort reason, our own errors as they are, else one line. */
  private fail(op: string, target: string, err: unknown, signal: AbortSignal | undefined, Kind = ItemError): unknown {
    if (signal?.aborted) return signal.reason;
    if (err instanceof SyncError) return err;
    return new Kind(this.redact(`S3 ${op} ${target}: ${this.describe(err)}`), { cause: err });
  }

  /** `503 SlowDown: Please reduce your request rate.`, `connect ECONNREFUSED 127.0.0.1:9`, … */
  private describe(err: unknown): string {
    const e = (err ?? {}) as SdkError;
    const status = statusOf(err);
    const generic = !e.name || ['Error', 'UnknownError', 'AggregateError'].includes(e.name);
    const name = generic ? status && STATUS_CODES[status] : e.name;
    // A body the SDK could not parse (a proxy's HTML page, a JSON 413) leaves a long note instead
    // of a message; Node 20 reports a refused dual-stack connect with an empty message.
    const junk = !e.message || e.message === 'UnknownError' || e.message === name || e.message.includes('Deserialization error');
    const message = junk ? (status ? undefined : e.code) : e.message;
    const head = [status, name].filter(Boolean).join(' ');
    return oneLine([head, message].filter(Boolean).join(': ') || String(err)).slice(0, 300);
  }

  private redact(text: string): string {
    const secret = this.cfg.secretAccessKey;
    return secret ? text.split(secret).join('***') : text;
  }
}
