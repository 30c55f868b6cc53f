// Correctness after every measured run: the bucket prefix and the local folder against the
// expected content. Remote: keys, sizes and ETags (a plain ETag must be the MD5; a multipart one
// must be the MD5 of the part MD5s at a part size that gives its part count). Local: names, sizes
// and MD5s, rehashing only files whose stat moved since they were last hashed.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DeleteObjectsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { Expected } from './tree.js';

export interface Verdict {
  ok: boolean;
  /** The first few differences, for the record. */
  problems: string[];
}

const MiB = 1024 * 1024;
/** Part sizes the tools use (storage-sync 8 MiB, rclone 5 MiB, aws 8 MiB, s3cmd 15 MiB) and a few common ones. */
const PART_SIZES = [5, 6, 8, 10, 15, 16, 32, 64, 100, 128].map((n) => n * MiB);

interface StatKey {
  size: number;
  mtimeNs: bigint;
  ino: bigint;
}
const sameStat = (a: StatKey, b: StatKey): boolean => a.size === b.size && a.mtimeNs === b.mtimeNs && a.ino === b.ino;

export class Checker {
  private readonly hashes = new Map<string, StatKey & { md5: string }>();
  private readonly multipart = new Map<string, string>();

  constructor(
    readonly client: S3Client,
    readonly bucket: string,
  ) {}

  static connect(endpoint: string, bucket: string): Checker {
    const client = new S3Client({
      endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local-secret' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    return new Checker(client, bucket);
  }

  async list(prefix: string): Promise<{ key: string; size: number; etag: string }[]> {
    const all: { key: string; size: number; etag: string }[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of page.Contents ?? []) all.push({ key: o.Key!, size: o.Size ?? 0, etag: (o.ETag ?? '').replace(/"/g, '').toLowerCase() });
      token = page.NextContinuationToken;
    } while (token);
    return all;
  }

  async deletePrefix(prefix: string): Promise<void> {
    const keys = (await this.list(prefix)).map((o) => o.key);
    for (let i = 0; i < keys.length; i += 1000) {
      const Objects = keys.slice(i, i + 1000).map((Key) => ({ Key }));
      await this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects, Quiet: true } }));
    }
  }

  /** Walks `dir` and checks it holds exactly `expected`. */
  checkLocal(dir: string, expected: Expected): Verdict {
    const problems: string[] = [];
    const seen = walk(dir);
    const toHash: string[] = [];
    for (const [rel, st] of seen) {
      const want = expected.get(rel);
      if (!want) {
        problems.push(`local extra ${rel}`);
        continue;
      }
      if (want.size !== st.size) {
        problems.push(`local ${rel}: size ${st.size}, expected ${want.size}`);
        continue;
      }
      const abs = path.join(dir, rel);
      const known = this.hashes.get(abs);
      if (!known || !sameStat(known, st)) toHash.push(abs);
    }
    for (const rel of expected.keys()) if (!seen.has(rel)) problems.push(`local missing ${rel}`);
    for (const [abs, md5] of md5sum(toHash)) {
      const st = fs.statSync(abs, { bigint: true });
      this.hashes.set(abs, { size: Number(st.size), mtimeNs: st.mtimeNs, ino: st.ino, md5 });
    }
    for (const [rel, st] of seen) {
      const want = expected.get(rel);
      const known = this.hashes.get(path.join(dir, rel));
      if (want && want.size === st.size && known && known.md5 !== want.md5) problems.push(`local ${rel}: content differs`);
    }
    return { ok: problems.length === 0, problems: problems.slice(0, 10) };
  }

  /**
   * Checks the objects under `prefix` hold exactly `expected`. Multipart ETags are recomputed
   * from `source`, the folder whose content `checkLocal` has just confirmed.
   */
  async checkRemote(prefix: string, expected: Expected, source: string): Promise<Verdict> {
    const problems: string[] = [];
    const seen = new Set<string>();
    for (const o of await this.list(prefix)) {
      const rel = o.key.slice(prefix.length);
      // A zero-byte "folder/" marker is not content.
      if (rel.endsWith('/') && o.size === 0) continue;
      seen.add(rel);
      const want = expected.get(rel);
      if (!want) {
        problems.push(`remote extra ${o.key}`);
        continue;
      }
      if (want.size !== o.size) {
        problems.push(`remote ${o.key}: size ${o.size}, expected ${want.size}`);
        continue;
      }
      const m = /^([0-9a-f]{32})-(\d+)$/.exec(o.etag);
      if (!m) {
        if (o.etag !== want.md5) problems.push(`remote ${o.key}: ETag ${o.etag} is not the content's MD5`);
        continue;
      }
      if (!this.multipartMatches(path.join(source, rel), want.size, Number(m[2]), o.etag)) {
        problems.push(`remote ${o.key}: multipart ETag ${o.etag} matches no part size for the expected content`);
      }
    }
    for (const rel of expected.keys()) if (!seen.has(rel)) problems.push(`remote missing ${prefix}${rel}`);
    return { ok: problems.length === 0, problems: problems.slice(0, 10) };
  }

  private multipartMatches(abs: string, size: number, parts: number, etag: string): boolean {
    let st: fs.BigIntStats;
    try {
      st = fs.statSync(abs, { bigint: true });
    } catch {
      return false;
    }
    for (const partSize of PART_SIZES) {
      if (Math.ceil(size / partSize) !== parts) continue;
      const memo = `${abs}|${st.size}|${st.mtimeNs}|${st.ino}|${partSize}`;
      let computed = this.multipart.get(memo);
      if (computed === undefined) {
        computed = multipartEtag(abs, partSize);
        this.multipart.set(memo, computed);
      }
      if (computed === etag) return true;
    }
    return false;
  }
}

function multipartEtag(abs: string, partSize: number): string {
  const fd = fs.openSync(abs, 'r');
  const digests: Buffer[] = [];
  try {
    const buf = Buffer.alloc(partSize);
    for (;;) {
      let filled = 0;
      while (filled < partSize) {
        const n = fs.readSync(fd, buf, filled, partSize - filled, null);
        if (n === 0) break;
        filled += n;
      }
      if (filled === 0) break;
      digests.push(createHash('md5').update(buf.subarray(0, filled)).digest());
      if (filled < partSize) break;
    }
  } finally {
    fs.closeSync(fd);
  }
  return `${createHash('md5').update(Buffer.concat(digests)).digest('hex')}-${digests.length}`;
}

/** Every regular file under `dir`, by POSIX relative path. */
export function walk(dir: string): Map<string, StatKey> {
  const out = new Map<string, StatKey>();
  const visit = (abs: string, rel: string): void => {
    let names: fs.Dirent[];
    try {
      names = fs.readdirSync(abs, { withFileTypes: true });
    } catch {
      return;
    }
    for (const d of names) {
      const a = path.join(abs, d.name);
      const r = rel ? `${rel}/${d.name}` : d.name;
      if (d.isDirectory()) visit(a, r);
      else if (d.isFile()) {
        const st = fs.statSync(a, { bigint: true });
        out.set(r, { size: Number(st.size), mtimeNs: st.mtimeNs, ino: st.ino });
      }
    }
  };
  visit(dir, '');
  return out;
}

/** MD5s of many files, two md5sum processes at a time (the names here are plain ASCII). */
function md5sum(files: string[]): Map<string, string> {
  const out = new Map<string, string>();
  if (files.length === 0) return out;
  const r = spawnSync('xargs', ['-0', '-P2', '-n', '256', 'md5sum', '--'], {
    input: files.join('\0'),
    maxBuffer: 1 << 30,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`md5sum failed: ${r.stderr}`);
  for (const line of r.stdout.split('\n')) {
    if (line.length < 35) continue;
    out.set(line.slice(34), line.slice(0, 32));
  }
  return out;
}
