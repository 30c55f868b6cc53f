// Sending one file: a single PutObject with Content-MD5 below the threshold, a fixed-part-size
// multipart upload above it. Either way the bytes sent are hashed as they go, and a file that no
// longer matches the MD5 it was planned with is not stored.
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { Transform } from 'node:stream';
import { CreateMultipartUploadCommand, PutObjectCommand, Upload, type S3Client } from './sdk.js';
import { ItemError, oneLine } from '../core/errors.js';
import { EtagHasher, etagPartCount, normalizeEtag, partSizeFor } from './etag.js';
import { remoteChanged, statusOf, type Failure } from './failure.js';

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
  /**
   * Multipart only: called with the UploadId once the upload is created, and awaited before any
   * part is sent (the journal records it, so a killed run's parts can be aborted).
   */
  onMultipartStart?: (uploadId: string) => Promise<void>;
}

export interface UploadResult {
  etag: string;
  size: number;
  multipart: boolean;
}

/** What the upload paths need from the store. */
export interface UploadContext {
  client: S3Client;
  bucket: string;
  partSize: number;
  fail: Failure;
  head(key: string, signal?: AbortSignal): Promise<{ etag: string } | undefined>;
}

const CONTENT_TYPES: Record<string, string> = {
  css: 'text/css', js: 'text/javascript', html: 'text/html', json: 'application/json',
  png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', svg: 'image/svg+xml',
  webp: 'image/webp', woff2: 'font/woff2', txt: 'text/plain', pdf: 'application/pdf',
  mp4: 'video/mp4', mp3: 'audio/mpeg',
};

export function contentTypeFor(key: string): string {
  return CONTENT_TYPES[extname(key).slice(1).toLowerCase()] ?? 'application/octet-stream';
}

const SYNC_READ_MAX = 1024 * 1024;

const quote = (etag: string): string => `"${normalizeEtag(etag)}"`;

/**
 * The server stored other bytes than were sent (damaged on the way to a server that skips the
 * Content-MD5 check, or a part, which carries none): the object now holds `stored`.
 */
export class StoredEtagMismatch extends ItemError {
  constructor(op: string, key: string, readonly stored: string, expected: string) {
    super(`S3 ${op} ${key}: stored ETag ${stored} does not match the content sent (${expected})`);
  }
}

function etagOf(op: string, key: string, etag: string | undefined): string {
  if (!etag) throw new ItemError(`S3 ${op} ${key}: response has no ETag`);
  return normalizeEtag(etag);
}

export async function putSingle(ctx: UploadContext, key: string, src: UploadSource, opts: UploadOptions): Promise<UploadResult> {
  let data: Buffer;
  try {
    // A small file is read synchronously: the promise API's open/stat/read/close round trips cost
    // the main thread more than the read itself (a third of its time on 8 KiB uploads).
    data = src.size <= SYNC_READ_MAX ? readFileSync(src.filePath) : await readFile(src.filePath, { signal: opts.signal });
  } catch (err) {
    throw opts.signal?.aborted ? opts.signal.reason : new ItemError(oneLine(err), { cause: err });
  }
  const md5 = createHash('md5').update(data).digest();
  if (data.length !== src.size || md5.toString('hex') !== src.md5) throw new ItemError('file changed since it was hashed');
  const put = (conditional: boolean) =>
    new PutObjectCommand({
      Bucket: ctx.bucket,
      Key: key,
      Body: data,
      ContentLength: data.length,
      ContentMD5: md5.toString('base64'),
      ContentType: contentTypeFor(key),
      Metadata: { md5: src.md5 },
      ...(!conditional ? {} : opts.expect === 'absent' ? { IfNoneMatch: '*' } : opts.expect ? { IfMatch: quote(opts.expect.etag) } : {}),
    });
  let res;
  try {
    res = await ctx.client.send(put(opts.expect !== undefined), { abortSignal: opts.signal });
  } catch (err) {
    const status = statusOf(err);
    // Under a condition: 412 it failed, 409 a concurrent write won, 404 the object went away.
    if (opts.expect && (status === 412 || status === 409 || (status === 404 && opts.expect !== 'absent'))) throw remoteChanged(err);
    if (!opts.expect || status !== 501) throw ctx.fail.of('PutObject', key, err, opts.signal);
    // A server that does not implement conditional writes: a HEAD narrows the window instead.
    await checkExpected(ctx, key, opts);
    res = await ctx.client.send(put(false), { abortSignal: opts.signal }).catch((e: unknown) => {
      throw ctx.fail.of('PutObject', key, e, opts.signal);
    });
  }
  opts.onBytes?.(data.length);
  const etag = etagOf('PutObject', key, res.ETag);
  // A plain-MD5 ETag that is not ours: the server kept damaged bytes (it did not check Content-MD5).
  if (/^[0-9a-f]{32}$/.test(etag) && etag !== src.md5) throw new StoredEtagMismatch('PutObject', key, etag, src.md5);
  return { etag, size: data.length, multipart: false };
}

async function checkExpected(ctx: UploadContext, key: string, opts: UploadOptions): Promise<void> {
  if (!opts.expect) return;
  const now = await ctx.head(key, opts.signal);
  if (opts.expect === 'absent' ? now !== undefined : now?.etag !== normalizeEtag(opts.expect.etag)) throw remoteChanged();
}

export async function putMultipart(ctx: UploadContext, key: string, src: UploadSource, opts: UploadOptions): Promise<UploadResult> {
  // lib-storage cannot make CompleteMultipartUpload conditional: a HEAD narrows the window.
  await checkExpected(ctx, key, opts);
  const partSize = partSizeFor(src.size, ctx.partSize);
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
    client: opts.onMultipartStart ? announcingCreate(ctx.client, opts.onMultipartStart) : ctx.client,
    partSize,
    queueSize: 4,
    leavePartsOnError: false,
    params: {
      Bucket: ctx.bucket,
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
      throw ctx.fail.of('Upload', key, err, opts.signal);
    });
    const etag = etagOf('CompleteMultipartUpload', key, res.ETag);
    // Parts carry no Content-MD5, so the ETag is the only proof the server stored these bytes.
    // A file smaller than one part went up as a single PutObject: its ETag is the plain MD5.
    const multipart = etagPartCount(etag) !== undefined;
    const expected = multipart ? sent.multipartEtag : src.md5;
    if (etag !== expected) throw new StoredEtagMismatch('Upload', key, etag, expected);
    return { etag, size: src.size, multipart };
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    // Unblocks part readers still waiting on the stream after a failure or an abort, so that
    // lib-storage gets to send AbortMultipartUpload.
    file.destroy();
    verified.destroy();
  }
}

/**
 * lib-storage keeps the UploadId to itself until it is done (`uploadId` is set but no event
 * says so): the client it is given hands the CreateMultipartUpload answer to `onStart` first.
 */
function announcingCreate(client: S3Client, onStart: (uploadId: string) => Promise<void>): S3Client {
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (prop !== 'send') return Reflect.get(target, prop, receiver) as unknown;
      return async (...args: Parameters<S3Client['send']>) => {
        const res = (await (target.send as (...a: unknown[]) => Promise<unknown>)(...args)) as { UploadId?: string };
        if (args[0] instanceof CreateMultipartUploadCommand && res.UploadId) await onStart(res.UploadId);
        return res;
      };
    },
  });
}
