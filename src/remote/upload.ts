// Sending one file: a single PutObject with Content-MD5 below the threshold (from one Buffer up to
// 1 MiB, streamed from the file above), a fixed-part-size multipart upload above it. Either way the
// bytes sent are checked as they go against the hashes they were planned with (xxh64, the cheap
// one, when given), and a file that no longer matches them is not stored. The server's ETag then
// proves what it stored: the planned MD5, or the multipart ETag of the part MD5s computed here.
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import type { PutObjectCommandInput, PutObjectCommandOutput } from '@aws-sdk/client-s3';
import type { BuildMiddleware, DeserializeMiddleware, MetadataBearer } from '@smithy/types';
import { CreateMultipartUploadCommand, PutObjectCommand, Upload, type S3Client } from './sdk.js';
import { ItemError, oneLine } from '../core/errors.js';
import { EtagHasher, etagPartCount, normalizeEtag, partSizeFor } from './etag.js';
import { getXxh64 } from '../local/xxh.js';
import { remoteChanged, statusOf, type Failure } from './failure.js';
import type { RawRequests } from './raw-requests.js';

export interface UploadSource {
  filePath: string;
  size: number;
  /** Hex MD5 the hasher computed; the upload fails rather than store other content. */
  md5: string;
  /**
   * Hex xxh64 from the same hashing pass. When given, the bytes read for sending are checked
   * against it (about 9× cheaper than MD5) rather than hashed with MD5 once more: the server
   * checks the MD5 (Content-MD5, part and whole ETags).
   */
  xxh64?: string;
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
  /** When given, a single PUT from one Buffer goes through it rather than the SDK (raw-requests.ts). */
  raw?: RawRequests;
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
// Read size of a streamed body. On a 600 MB tree, 64 KiB, 256 KiB and 1 MiB reads cost the same
// CPU within noise; each file in flight holds about three of them (the read, the held-back one,
// the socket's), so the smaller keeps RSS down (about 30 MB less at 8 files than 1 MiB).
const STREAM_CHUNK = 256 * 1024;

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

/** Tells whether bytes read now are the planned content: by xxh64 when planned, else by MD5. */
interface ContentCheck {
  update(chunk: Buffer): void;
  matches(): boolean;
}

async function contentCheck(src: UploadSource): Promise<() => ContentCheck> {
  const want = src.xxh64;
  if (want) {
    const xxh = await getXxh64();
    return () => {
      const state = xxh.create();
      return { update: (chunk) => state.update(chunk), matches: () => state.digestHex() === want };
    };
  }
  return () => {
    const hash = createHash('md5');
    return { update: (chunk) => void hash.update(chunk), matches: () => hash.digest('hex') === src.md5 };
  };
}

/**
 * Added once to the client (src/remote/client.ts): PutObject and UploadPart are signed
 * UNSIGNED-PAYLOAD. The SDK otherwise reads every Buffer body (a small file, a multipart part)
 * once more for the SigV4 payload SHA-256. A PUT's signed Content-MD5 header binds its body to
 * the signature and the server checks it (S3, R2); parts are proved by the multipart ETag; and
 * every upload's ETag is checked against the content planned. A stream body is sent
 * UNSIGNED-PAYLOAD by the SDK anyway.
 */
export const unsignedPayload: BuildMiddleware<object, MetadataBearer> = (next, context) => async (args) => {
  const request = args.request as { headers?: Record<string, string> };
  if (request.headers && (context.commandName === 'PutObjectCommand' || context.commandName === 'UploadPartCommand')) {
    request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
  }
  return next(args);
};

/**
 * A body read from the file on each attempt. The command carries no body of its own, so the
 * SDK's retry (which gives up on a stream body, since it cannot rewind one) retries it like any
 * other request, and each try sends a fresh stream. It sits after signing, in the deserialize
 * step: the request it fills in is that attempt's own signed copy.
 */
function freshBodyEachAttempt(open: () => { body: Readable; close(): void }): DeserializeMiddleware<PutObjectCommandInput, PutObjectCommandOutput> {
  return (next) => async (args) => {
    const request = args.request as { body?: unknown };
    const attempt = open();
    request.body = attempt.body;
    try {
      return await next(args);
    } finally {
      request.body = undefined;
      attempt.close();
    }
  };
}

const changedWhileUploading = () => new ItemError('file changed while uploading');

/**
 * One PutObject. Its Content-MD5 is the planned MD5, so a server that checks it (S3, R2) refuses
 * other bytes, and the plain-MD5 ETag it answers proves what it stored. Small files go from one
 * Buffer checked before sending (through ctx.raw when given: the same request without the SDK,
 * whose per-request CPU was five times that of a plain signed PUT of 8 KiB, see
 * raw-requests.ts); larger ones stream from the file through the SDK, checked as they pass, the last
 * chunk held back until the whole file matched: a file changed since it was hashed fails its
 * request before the body is complete, so no server (checking or not) can store it.
 */
export async function putSingle(ctx: UploadContext, key: string, src: UploadSource, opts: UploadOptions): Promise<UploadResult> {
  const newCheck = await contentCheck(src);
  let data: Buffer | undefined;
  if (src.size <= SYNC_READ_MAX) {
    try {
      // Read synchronously: the promise API's open/stat/read/close round trips cost the main
      // thread more than the read itself (a third of its time on 8 KiB uploads).
      data = readFileSync(src.filePath);
    } catch (err) {
      throw opts.signal?.aborted ? opts.signal.reason : new ItemError(oneLine(err), { cause: err });
    }
    const check = newCheck();
    check.update(data);
    if (data.length !== src.size || !check.matches()) throw new ItemError('file changed since it was hashed');
  }
  // Streamed: a failed check (or read) ends the request through this signal.
  const stop = data ? undefined : new AbortController();
  let failure: unknown;
  const fail = (err: unknown) => {
    failure ??= err;
    stop?.abort(err);
  };
  let reported = 0;
  const open = () => {
    const check = newCheck();
    let bytes = 0;
    let held: Buffer | undefined;
    const file = createReadStream(src.filePath, { highWaterMark: STREAM_CHUNK });
    const body = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        bytes += chunk.length;
        if (bytes > src.size) return done(changedWhileUploading());
        check.update(chunk);
        const out = held;
        held = chunk;
        if (out) {
          // Progress over retries: only bytes beyond the furthest any try got count again.
          const sent = bytes - chunk.length;
          if (sent > reported) opts.onBytes?.(sent - reported);
          reported = Math.max(reported, sent);
        }
        done(null, out);
      },
      flush(done) {
        if (bytes !== src.size || !check.matches()) return done(changedWhileUploading());
        done(null, held);
      },
    });
    body.on('error', fail);
    file.on('error', (err) => body.destroy(new ItemError(oneLine(err), { cause: err })));
    file.pipe(body);
    return { body, close: () => void (file.destroy(), body.destroy()) };
  };
  // The caller's abort reaches the request through `stop` too (a listener removed afterwards,
  // where AbortSignal.any would tie one more signal to the run's long-lived one per upload).
  const forward = () => stop?.abort(opts.signal?.reason);
  if (stop) {
    opts.signal?.addEventListener('abort', forward, { once: true });
    if (opts.signal?.aborted) forward();
  }
  const signal = stop ? stop.signal : opts.signal;
  const contentMd5 = Buffer.from(src.md5, 'hex').toString('base64');
  const put = (conditional: boolean) => {
    const cmd = new PutObjectCommand({
      Bucket: ctx.bucket,
      Key: key,
      Body: data,
      ContentLength: src.size,
      ContentMD5: contentMd5,
      ContentType: contentTypeFor(key),
      Metadata: { md5: src.md5 },
      ...(!conditional ? {} : opts.expect === 'absent' ? { IfNoneMatch: '*' } : opts.expect ? { IfMatch: quote(opts.expect.etag) } : {}),
    });
    if (!data) cmd.middlewareStack.add(freshBodyEachAttempt(open), { step: 'deserialize', priority: 'low', name: 'storageSyncStreamBody' });
    return cmd;
  };
  const send = (conditional: boolean): Promise<{ ETag?: string }> => {
    // The same request without the SDK's per-request cost (raw-requests.ts); a whole Buffer is
    // simply sent again on a retry.
    if (data && ctx.raw) return putRaw(ctx.raw, key, src.md5, contentMd5, data, conditional ? opts.expect : undefined, signal);
    return ctx.client.send(put(conditional), { abortSignal: signal }).catch((err: unknown) => {
      if (failure !== undefined && !opts.signal?.aborted) throw failure;
      throw err;
    });
  };
  const sent = { ours: (err: unknown) => failure !== undefined && err === failure, reported: () => reported };
  try {
    return await sendPut(ctx, key, src, opts, send, sent);
  } finally {
    opts.signal?.removeEventListener('abort', forward);
  }
}

async function sendPut(
  ctx: UploadContext,
  key: string,
  src: UploadSource,
  opts: UploadOptions,
  send: (conditional: boolean) => Promise<{ ETag?: string }>,
  sent: { ours(err: unknown): boolean; reported(): number },
): Promise<UploadResult> {
  let res;
  try {
    res = await send(opts.expect !== undefined);
  } catch (err) {
    if (sent.ours(err)) throw err;
    const status = statusOf(err);
    // Under a condition: 412 it failed, 409 a concurrent write won, 404 the object went away.
    if (opts.expect && (status === 412 || status === 409 || (status === 404 && opts.expect !== 'absent'))) throw remoteChanged(err);
    if (!opts.expect || status !== 501) throw ctx.fail.of('PutObject', key, err, opts.signal);
    // A server that does not implement conditional writes: a HEAD narrows the window instead.
    await checkExpected(ctx, key, opts);
    res = await send(false).catch((e: unknown) => {
      throw sent.ours(e) ? e : ctx.fail.of('PutObject', key, e, opts.signal);
    });
  }
  if (src.size > sent.reported()) opts.onBytes?.(src.size - sent.reported());
  const etag = etagOf('PutObject', key, res.ETag);
  // A plain-MD5 ETag that is not ours: the server kept damaged bytes (it did not check Content-MD5).
  if (/^[0-9a-f]{32}$/.test(etag) && etag !== src.md5) throw new StoredEtagMismatch('PutObject', key, etag, src.md5);
  return { etag, size: src.size, multipart: false };
}

/** The headers the SDK sends for putSingle's PutObject (signed by RawRequests as it signs them). */
async function putRaw(
  raw: RawRequests,
  key: string,
  md5: string,
  contentMd5: string,
  body: Buffer,
  expect: UploadOptions['expect'],
  signal: AbortSignal | undefined,
): Promise<{ ETag?: string }> {
  const headers: Record<string, string> = { 'content-md5': contentMd5, 'content-type': contentTypeFor(key), 'x-amz-meta-md5': md5 };
  if (expect === 'absent') headers['if-none-match'] = '*';
  else if (expect) headers['if-match'] = quote(expect.etag);
  const etag = (await raw.put(key, headers, body, signal)).etag;
  return { ETag: Array.isArray(etag) ? etag[0] : etag };
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
  // The part MD5s are needed for the ETag check (parts carry no Content-MD5); the file's identity
  // with the planned content is checked by xxh64 when there is one, not by a second whole MD5.
  const identity = (await contentCheck(src))();
  const hasher = new EtagHasher(partSize, { whole: false });
  let multipartEtag = '';
  // Failing the stream (rather than checking afterwards) makes lib-storage abort the multipart
  // upload: the last part is only handed over once the stream has ended cleanly.
  const verified = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hasher.update(chunk);
      identity.update(chunk);
      done(hasher.bytes > src.size ? changedWhileUploading() : null, chunk);
    },
    flush(done) {
      multipartEtag = hasher.digest().multipartEtag;
      done(hasher.bytes !== src.size || !identity.matches() ? changedWhileUploading() : null);
    },
  });
  const file = createReadStream(src.filePath, { highWaterMark: STREAM_CHUNK });
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
    const expected = multipart ? multipartEtag : src.md5;
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
