// S3 client settings for R2 and other S3-compatible stores (see shared/design/s3-r2-facts.md).

import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { NodeHttpHandler, S3Client } from './sdk.js';
import type { StoreConfig } from './s3-store.js';
import { unsignedPayload } from './upload.js';

// The SDK prints a seven-line Node 20 notice on the first client otherwise; our output is ours.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

export const CONNECT_TIMEOUT_MS = 10_000;
// An idle-socket limit rather than a whole-request deadline: a part upload on a slow link can
// legitimately take minutes, a socket that moves no byte for this long is dead.
const SOCKET_IDLE_TIMEOUT_MS = 120_000;

/** STORAGE_SYNC_SOCKET_TIMEOUT_MS shortens the idle limit: fault tests stall sockets on purpose. */
export function socketTimeout(cfg: StoreConfig): number {
  if (cfg.socketTimeoutMs !== undefined) return cfg.socketTimeoutMs;
  const env = Number(process.env.STORAGE_SYNC_SOCKET_TIMEOUT_MS);
  return Number.isInteger(env) && env > 0 ? env : SOCKET_IDLE_TIMEOUT_MS;
}

const silent = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/** Keep-alive sockets for one pool (the SDK's, and the raw requests'). */
export function agentOptions(cfg: StoreConfig): { keepAlive: true; maxSockets: number } {
  // Every transfer slot may run a multipart upload with several parts in flight, plus listing
  // and HEADs alongside; sockets beyond this queue in the agent instead of failing.
  return { keepAlive: true, maxSockets: cfg.concurrency * 2 + 4 };
}

export function createS3Client(cfg: StoreConfig): S3Client {
  const client = new S3Client({
    region: cfg.region ?? 'auto',
    endpoint: cfg.endpoint,
    forcePathStyle: cfg.forcePathStyle ?? false,
    credentials: { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey },
    // The SDK's default CRC32 checksums (and aws-chunked stream bodies) are rejected by R2 and
    // several S3-compatible servers; integrity comes from Content-MD5 and ETags instead.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: cfg.maxAttempts ?? 5,
    retryMode: 'standard',
    // No `logger` here: the SDK's default is a NoOpLogger, and only that class makes its logger
    // middleware skip building a filtered copy of every request's input and output to log
    // (with a logger of our own that was about 4% of the main thread in a first upload).
    requestHandler: new NodeHttpHandler({
      connectionTimeout: CONNECT_TIMEOUT_MS,
      socketTimeout: socketTimeout(cfg),
      httpAgent: new HttpAgent(agentOptions(cfg)),
      httpsAgent: new HttpsAgent(agentOptions(cfg)),
      logger: silent,
    }),
  });
  client.middlewareStack.add(unsignedPayload, { step: 'build', name: 'storageSyncUnsignedPayload' });
  return client;
}
