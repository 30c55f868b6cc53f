// The SDK's own SigV4 signer, set up as the S3 client sets it up: the test servers accept any
// signature, so the SDK-free requests (src/remote/raw-requests.ts) are checked against it.
import { createHash, createHmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';

const bytes = (d: string | ArrayBuffer | ArrayBufferView): string | Uint8Array =>
  typeof d === 'string' ? d : d instanceof ArrayBuffer ? new Uint8Array(d) : new Uint8Array(d.buffer, d.byteOffset, d.byteLength);

/** node:crypto as the SDK signer's hash constructor. */
class Sha256 {
  private readonly h;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(d: string | ArrayBuffer | ArrayBufferView): void {
    this.h.update(bytes(d));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
}

export function sdkSigner(cfg: { accessKeyId: string; secretAccessKey: string }, region = 'auto'): SignatureV4 {
  return new SignatureV4({ credentials: { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey }, region, service: 's3', sha256: Sha256, uriEscapePath: false });
}

/** The Date of an x-amz-date header (20261127T192301Z), to sign at the same instant. */
export function signingDateOf(amzDate: string): Date {
  const d = amzDate;
  return new Date(`${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T${d.slice(9, 11)}:${d.slice(11, 13)}:${d.slice(13, 15)}Z`);
}
