// The remote side: list, head, get, upload and delete objects in one bucket.
// Error contract: every failure is one line that never contains the secret key. Per-object
// failures are ItemError, a failed listing is SyncError, an unusable bucket or endpoint is
// CredentialsError. When the caller's signal aborts, its `reason` is thrown unchanged.

import { Readable } from 'node:stream';
import type { HeadObjectCommandOutput, _Object } from '@aws-sdk/client-s3';
import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type S3Client,
} from './sdk.js';
import { CredentialsError, ItemError, SyncError, oneLine } from '../core/errors.js';
import { createS3Client } from './client.js';
import { RawRequests } from './raw-requests.js';
import { AUTH_ERRORS, Failure, UNREACHABLE, describe, remoteChanged, statusOf, type SdkError } from './failure.js';
import { putMultipart, putSingle, type UploadContext, type UploadOptions, type UploadSource } from './upload.js';

export { contentTypeFor, type UploadOptions, type UploadSource } from './upload.js';
import { etagPartCount, normalizeEtag } from './etag.js';
import { parseListPage, type ListPage, type ListedObject } from './list-xml.js';

export type { ListedObject } from './list-xml.js';

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




export interface ListOptions {
  signal?: AbortSignal;
  /**
   * Keys believed to be under the prefix, in any order (a sorted input is cheaper): where the key
   * space is split for parallel listing. Hints only: a wrong or stale hint never loses a key.
   */
  hints?: readonly string[];
  /** Chains of pages in flight at once (default LIST_CHAINS). */
  chains?: number;
  /** Told when the server's order forced a serial listing. */
  onNote?: (message: string) => void;
  /** Tuning (tests use small buckets): hinted keys needed to split, and keys per range. */
  split?: { minKeys: number; rangeKeys: number };
  /**
   * Sees each object as its page arrives; one it returns false for is left out of the result
   * (the caller has dealt with it), so a large listing need not be held whole. It may see a key
   * twice: a ranged listing that falls back to a serial one lists everything again.
   */
  keep?: (o: ListedObject) => boolean;
}

/** Below this many hinted keys one chain of pages is about as fast, and costs fewer requests. */
export const PARALLEL_LIST_MIN = 5000;
/** Known keys per range: four full pages, so the page that ends a range is rarely a short one. */
const RANGE_KEYS = 4000;
export const LIST_CHAINS = 8;

const listed = (o: _Object): ListedObject => ({
  key: o.Key ?? '',
  etag: normalizeEtag(o.ETag ?? ''),
  size: o.Size ?? 0,
  lastModified: o.LastModified?.getTime() ?? 0,
});

/**
 * Reads a 200 listing's XML before the SDK does (innermost in its deserialize step, so retries,
 * signing and every error response stay the SDK's): when list-xml.ts can read the page, the SDK
 * is handed a stub of the page without its keys, and `take` gets the keys.
 */
function fastListing(take: (page: ListPage | undefined) => void) {
  return (next: (args: unknown) => Promise<{ response: unknown }>) =>
    async (args: unknown): Promise<{ response: unknown }> => {
      take(undefined);
      const result = await next(args);
      const res = result.response as { statusCode?: number; body?: unknown };
      if (res.statusCode !== 200 || !(res.body instanceof Readable)) return result;
      const chunks: Buffer[] = [];
      for await (const c of res.body) chunks.push(c as Buffer);
      const raw = Buffer.concat(chunks);
      const page = parseListPage(raw.toString('utf8'));
      take(page);
      res.body = page ? Buffer.from(`<ListBucketResult><IsTruncated>${String(page.isTruncated)}</IsTruncated></ListBucketResult>`) : raw;
      return result;
    };
}
const FAST_LISTING = { step: 'deserialize', name: 'storageSyncListXml', priority: 'low' } as const;

/**
 * Byte order of the UTF-8 encodings (S3's listing order) without encoding: UTF-16 code-unit order
 * agrees with it except that surrogates (U+10000 and up) sort below U+E000–U+FFFF.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

/**
 * Split points for ranged listing: quantiles of the hinted keys, strictly ascending in byte order.
 * None (a serial listing) when too few keys are known for parallel chains to pay.
 */
export function splitPoints(
  prefix: string,
  hints: readonly string[],
  chains: number,
  { minKeys, rangeKeys } = { minKeys: PARALLEL_LIST_MIN, rangeKeys: RANGE_KEYS },
): string[] {
  if (chains < 2 || hints.length < Math.max(2, minKeys)) return [];
  let sorted = true;
  for (let i = 1; i < hints.length && sorted; i++) sorted = compareKeys(hints[i - 1]!, hints[i]!) < 0;
  // Code-unit order is close enough to pick quantiles; the picks themselves are sorted exactly.
  const keys = sorted ? hints : [...hints].sort();
  const ranges = Math.min(Math.ceil(keys.length / rangeKeys), chains * 4);
  const picks: string[] = [];
  for (let i = 1; i < ranges; i++) {
    const k = keys[Math.floor((i * keys.length) / ranges) - 1]!;
    if (k.startsWith(prefix)) picks.push(k);
  }
  picks.sort(compareKeys);
  return picks.filter((k, i) => i === 0 || k !== picks[i - 1]);
}

const quote = (etag: string) => `"${normalizeEtag(etag)}"`;
const md5Of = (meta: Record<string, string> | undefined) =>
  meta?.md5 && /^[0-9a-f]{32}$/i.test(meta.md5) ? meta.md5.toLowerCase() : undefined;


export class S3Store {
  private readonly client: S3Client;

  private readonly failure: Failure;

  private readonly raw: RawRequests;

  constructor(private readonly cfg: StoreConfig, client?: S3Client) {
    this.client = client ?? createS3Client(cfg);
    this.failure = new Failure(cfg.secretAccessKey);
    this.raw = new RawRequests(cfg, this.client);
  }

  async *list(prefix: string, signal?: AbortSignal): AsyncGenerator<ListedObject[]> {
    let token: string | undefined;
    do {
      const page = await this.listPage(prefix, token, undefined, signal);
      yield page.objects;
      token = page.nextToken;
    } while (token);
  }

  /** One page of up to 1,000 keys: after `token`, or from just after `startAfter`. */
  private async listPage(prefix: string, token: string | undefined, startAfter: string | undefined, signal?: AbortSignal): Promise<ListPage> {
    const cmd = new ListObjectsV2Command({
      Bucket: this.cfg.bucket, Prefix: prefix, MaxKeys: 1000, ContinuationToken: token, StartAfter: token ? undefined : startAfter,
    });
    let fast: ListPage | undefined;
    cmd.middlewareStack.add(fastListing((p) => (fast = p)) as never, FAST_LISTING);
    const page = await this.client.send(cmd, { abortSignal: signal }).catch((err: unknown) => {
      throw this.failure.of('ListObjectsV2', prefix || '(bucket root)', err, signal, SyncError);
    });
    const out: ListPage = fast ?? { objects: (page.Contents ?? []).map(listed), isTruncated: page.IsTruncated === true, nextToken: page.NextContinuationToken };
    // A truncated page without a token would end the listing early, and every object not
    // listed would look deleted remotely.
    if (out.isTruncated && !out.nextToken) {
      throw new SyncError(`S3 ListObjectsV2 ${prefix}: truncated page without a continuation token`);
    }
    if (!out.isTruncated) out.nextToken = undefined;
    return out;
  }

  /**
   * Every object under `prefix`. With `hints` (keys believed to exist: the manifest's from the
   * last run, or the local paths mapped to keys) a large key space is cut into ranges that are
   * listed by parallel chains of pages instead of one serial chain (see listRanges).
   */
  async listAll(prefix: string, opts: ListOptions = {}): Promise<ListedObject[]> {
    const splits = splitPoints(prefix, opts.hints ?? [], opts.chains ?? LIST_CHAINS, opts.split);
    if (splits.length > 0) {
      const ranged = await this.listRanges(prefix, splits, opts);
      if (ranged) return ranged;
    }
    const out: ListedObject[] = [];
    for await (const page of this.list(prefix, opts.signal)) for (const o of page) if (!opts.keep || opts.keep(o)) out.push(o);
    return out;
  }

  /**
   * Range i is (splits[i-1], splits[i]]: its chain starts with StartAfter = splits[i-1] and stops
   * at the first key past splits[i]. The ranges tile the whole key space whatever the splits are,
   * so stale splits (deleted keys, new keys between them) cost balance, never completeness. That
   * holds only if the server lists in byte order and honours StartAfter, which each chain checks
   * on every key it is sent; on the first violation all chains stop and the caller lists
   * serially (undefined is returned).
   */
  private async listRanges(prefix: string, splits: string[], opts: ListOptions): Promise<ListedObject[] | undefined> {
    const ranges = Array.from({ length: splits.length + 1 }, (_, i) => ({ after: splits[i - 1], last: splits[i] }));
    const stop = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
    const results = new Array<ListedObject[]>(ranges.length);
    let disorder: string | undefined;
    let failed: { err: unknown } | undefined;
    let next = 0;
    const chain = async (): Promise<void> => {
      while (next < ranges.length && !stop.signal.aborted) {
        const i = next++;
        try {
          const r = await this.listRange(prefix, ranges[i]!.after, ranges[i]!.last, signal, opts.keep);
          if (typeof r === 'string') disorder ??= r;
          else results[i] = r;
        } catch (err) {
          failed ??= { err };
        }
        // The first failure or disorder ends every chain: their pages would be thrown away.
        if (disorder !== undefined || failed) stop.abort(new Error('listing stopped'));
      }
    };
    await Promise.all(Array.from({ length: Math.min(ranges.length, opts.chains ?? LIST_CHAINS) }, chain));
    opts.signal?.throwIfAborted();
    if (disorder !== undefined) {
      opts.onNote?.(`listing ${prefix || '(bucket root)'}: ${disorder}; listed again in one serial chain`);
      return undefined;
    }
    if (failed) throw failed.err;
    const out: ListedObject[] = [];
    for (const r of results) for (const o of r) out.push(o);
    return out;
  }

  /** One chain of pages over (after, last]; a string says why the server's order cannot be trusted. */
  private async listRange(prefix: string, after: string | undefined, last: string | undefined, signal: AbortSignal, keep?: (o: ListedObject) => boolean): Promise<ListedObject[] | string> {
    const out: ListedObject[] = [];
    let prev = after;
    let token: string | undefined;
    for (;;) {
      const page = await this.listPage(prefix, token, after, signal);
      let done = false;
      // The whole page is checked, also past the range's end: a server out of byte order must
      // show it before a key beyond `last` is taken to mean nothing else in range follows.
      for (const o of page.objects) {
        const key = o.key;
        if (prev !== undefined && compareKeys(key, prev) <= 0) {
          return `keys not in byte order (${JSON.stringify(key)} after ${JSON.stringify(prev)})`;
        }
        if (!key.startsWith(prefix)) return `key ${JSON.stringify(key)} outside the prefix`;
        prev = key;
        if (last !== undefined && compareKeys(key, last) > 0) done = true;
        else if (!keep || keep(o)) out.push(o);
      }
      if (done || !page.isTruncated || (last !== undefined && prev === last)) return out;
      token = page.nextToken;
    }
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
    // Through RawRequests, not the SDK: see raw-requests.ts for why and what it keeps.
    const res = await this.raw.get(key, opts.ifMatch && quote(opts.ifMatch), opts.signal).catch((err: unknown) => {
      if (statusOf(err) === 412) throw remoteChanged(err);
      throw this.failure.of('GetObject', key, err, opts.signal);
    });
    const header = (name: string): string | undefined => {
      const v = res.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const etag = normalizeEtag(header('etag') ?? '');
    // Servers that ignore If-Match would hand over whatever is there now.
    if (opts.ifMatch !== undefined && etag !== normalizeEtag(opts.ifMatch)) {
      res.destroy();
      throw new ItemError('remote object changed since it was listed');
    }
    const lastModified = Date.parse(header('last-modified') ?? '') || 0;
    const size = Number(header('content-length') ?? 0);
    const md5 = header('x-amz-meta-md5');
    return { body: res, etag, size, lastModified, md5: md5Of(md5 === undefined ? undefined : { md5 }) };
  }

  async upload(key: string, src: UploadSource, opts: UploadOptions = {}): Promise<{ etag: string; size: number; multipart: boolean }> {
    if (opts.signal?.aborted) throw opts.signal.reason;
    const want = { ...src, md5: src.md5.toLowerCase() };
    const ctx: UploadContext = { client: this.client, bucket: this.cfg.bucket, partSize: this.cfg.partSize, fail: this.failure, head: (k, sig) => this.head(k, sig), raw: this.raw };
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
    this.raw.close();
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
