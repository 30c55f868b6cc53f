// ETag arithmetic. A single PutObject's ETag is the hex MD5 of the bytes; a multipart upload's is
// md5(concat(binary part MD5s)) + '-' + parts, so it can only be predicted from the part size.

import { createHash, type Hash } from 'node:crypto';

export const MiB = 1024 * 1024;
export const DEFAULT_PART_SIZE = 8 * MiB;
const MIN_PART_SIZE = 5 * MiB;
const MAX_PARTS = 10_000;

/**
 * The one part size used for every part of an upload (R2 rejects uploads whose parts, bar the
 * last, differ in size): `minPartSize`, raised to whole MiB only when the file would otherwise
 * need more than 10,000 parts.
 */
export function partSizeFor(size: number, minPartSize: number = DEFAULT_PART_SIZE): number {
  const floor = Math.max(minPartSize, MIN_PART_SIZE);
  if (Math.ceil(size / floor) <= MAX_PARTS) return floor;
  return Math.ceil(size / MAX_PARTS / MiB) * MiB;
}

/** The ETag S3 and R2 give a multipart upload whose parts have these binary MD5s. */
export function multipartEtag(partMd5s: Buffer[]): string {
  const digest = createHash('md5').update(Buffer.concat(partMd5s)).digest('hex');
  return `${digest}-${partMd5s.length}`;
}

export { normalizeEtag } from '../core/compare.js';

import { normalizeEtag } from '../core/compare.js';

/** The part count of a multipart ETag (`…-3` → 3); undefined for a plain MD5 ETag. */
export function etagPartCount(etag: string): number | undefined {
  const match = /-(\d+)$/.exec(normalizeEtag(etag));
  return match ? Number(match[1]) : undefined;
}

/**
 * Hashes a byte stream as it passes, both whole (the plain MD5) and cut into `partSize` parts
 * (the multipart ETag that content gets when uploaded with that part size).
 */
export class EtagHasher {
  bytes = 0;
  private readonly whole: Hash | undefined;
  private part = createHash('md5');
  private inPart = 0;
  private readonly partMd5s: Buffer[] = [];

  /** `whole: false` skips the plain MD5 (digest() then gives md5 ''): the parts' MD5s suffice. */
  constructor(private readonly partSize: number, opts: { whole?: boolean } = {}) {
    this.whole = opts.whole === false ? undefined : createHash('md5');
  }

  update(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.whole?.update(chunk);
    for (let offset = 0; offset < chunk.length; ) {
      const take = Math.min(chunk.length - offset, this.partSize - this.inPart);
      this.part.update(chunk.subarray(offset, offset + take));
      this.inPart += take;
      offset += take;
      if (this.inPart === this.partSize) this.endPart();
    }
  }

  /** Call once, after the last chunk. */
  digest(): { md5: string; multipartEtag: string } {
    if (this.inPart > 0 || this.partMd5s.length === 0) this.endPart();
    return { md5: this.whole?.digest('hex') ?? '', multipartEtag: multipartEtag(this.partMd5s) };
  }

  private endPart(): void {
    this.partMd5s.push(this.part.digest());
    this.part = createHash('md5');
    this.inPart = 0;
  }
}
