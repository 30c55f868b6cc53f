// The remote side: list, head, get, upload and delete objects in one bucket.
// Error contract: every failure is one line that never contains the secret key. Per-object
// failures are ItemError, a failed listing is SyncError, an unusable bucket or endpoint is
// CredentialsError. When the caller's signal aborts, its `reason` is thrown unchanged.

import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type HeadObjectCommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { CredentialsError, ItemError, SyncError, oneLine } from '../core/errors.js';
import { createS3Client } from './client.js';
import { AUTH_ERRORS, Failure, UNREACHABLE, describe, remoteChanged, statusOf, type SdkError } from './failure.js';
import { putMultipart, putSingle, type UploadContext, type UploadOptions, type UploadSource } from './upload.js';

export { contentTypeFor, type UploadOptions, type UploadSource } from './upload.js';
import { etagPartCount, normalizeEtag } from './etag.js';

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
  /** Idle-socket limit in ms (default 120 s, or STORAGE_SYNC_SOCKET_TIMEOUT_MS). */
  socketTimeoutMs?: number;
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




const quote = (etag: string) => `"${normalizeEtag(etag)}"`;
const md5Of = (meta: Record<string, string> | undefined) =>
  meta?.md5 && /^[0-9a-f]{32}$/i.test(meta.md5) ? meta.md5.toLowerCase() : undefined;


export class S3Store {
  private readonly client: S3Client;

  private readonly failure: Failure;

  constructor(private readonly cfg: StoreConfig, client?: S3Client) {
    this.client = client ?? createS3Client(cfg);
    this.failure = new Failure(cfg.secretAccessKey);
  }

  async *list(prefix: string, signal?: AbortSignal): AsyncGenerator<ListedObject[]> {
    let token: string | undefined;
    do {
      const cmd = new ListObjectsV2Command({ Bucket: this.cfg.bucket, Prefix: prefix, MaxKeys: 1000, ContinuationToken: token });
      const page = await this.client.send(cmd, { abortSignal: signal }).catch((err: unknown) => {
        throw this.failure.of('ListObjectsV2', prefix || '(bucket root)', err, signal, SyncError);
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
      throw this.failure.of('GetObject', key, err, opts.signal);
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
    const ctx: UploadContext = { client: this.client, bucket: this.cfg.bucket, partSize: this.cfg.partSize, fail: this.failure, head: (k, sig) => this.head(k, sig) };
    return src.size < this.cfg.multipartThreshold ? putSingle(ctx, key, want, opts) : putMultipart(ctx, key, want, opts);
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
        const errors = new Map((res.Errors ?? []).map((e) => [e.Key, this.failure.redact(`${e.Code ?? 'Error'}: ${e.Message ?? ''}`)]));
        for (const key of batch) {
          const error = errors.get(key);
          if (error === undefined) deleted.push(key);
          else failed.push({ key, error });
        }
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        const error = oneLine(this.failure.of('DeleteObjects', `${batch.length} keys`, err, undefined));
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
      if (status === 404) throw new CredentialsError(this.failure.redact(`bucket "${bucket}" not found at ${endpoint}`), { cause: err });
      if (status === 401 || status === 403 || AUTH_ERRORS.has(e.name ?? '')) {
        throw new CredentialsError(this.failure.redact(`credentials rejected by ${endpoint}`), { cause: err });
      }
      if (UNREACHABLE.has(e.code ?? '') || e.name === 'TimeoutError') {
        throw new CredentialsError(this.failure.redact(`cannot reach ${endpoint}: ${describe(err)}`), { cause: err });
      }
      throw this.failure.of('HeadBucket', bucket, err, undefined, SyncError);
    }
  }

  close(): void {
    this.client.destroy();
  }

  /** Drops an unfinished multipart upload and its parts; one already gone counts as done. */
  async abortMultipart(key: string, uploadId: string, signal?: AbortSignal): Promise<void> {
    const cmd = new AbortMultipartUploadCommand({ Bucket: this.cfg.bucket, Key: key, UploadId: uploadId });
    await this.client.send(cmd, { abortSignal: signal }).catch((err: unknown) => {
      if (statusOf(err) === 404 || (err as SdkError).name === 'NoSuchUpload') return;
      throw this.failure.of('AbortMultipartUpload', key, err, signal);
    });
  }

  /** Unfinished multipart uploads of exactly `key` (R2 and AWS list them; test servers may not). */
  async multipartUploads(key: string, signal?: AbortSignal): Promise<{ uploadId: string; initiated: number }[]> {
    const cmd = new ListMultipartUploadsCommand({ Bucket: this.cfg.bucket, Prefix: key });
    const res = await this.client.send(cmd, { abortSignal: signal }).catch((err: unknown) => {
      throw this.failure.of('ListMultipartUploads', key, err, signal);
    });
    return (res.Uploads ?? [])
      .filter((u) => u.Key === key && u.UploadId)
      .map((u) => ({ uploadId: u.UploadId!, initiated: u.Initiated?.getTime() ?? 0 }));
  }

  private async headObject(key: string, partNumber: number | undefined, signal?: AbortSignal): Promise<HeadObjectCommandOutput | undefined> {
    const cmd = new HeadObjectCommand({ Bucket: this.cfg.bucket, Key: key, PartNumber: partNumber });
    return this.client.send(cmd, { abortSignal: signal }).catch((err: unknown) => {
      if (statusOf(err) === 404) return undefined;
      throw this.failure.of('HeadObject', key, err, signal);
    });
  }


}
