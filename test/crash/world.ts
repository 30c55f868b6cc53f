// The kill tests' world: a project and a bucket that a seeded script of user edits changes between
// syncs, a model of what both sides must hold once a sync has converged, and a CLI run that is
// killed when its event stream reaches a chosen point.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createS3Client } from '../../src/remote/client.js';
import { Manifest, profilePaths } from '../../src/manifest/manifest.js';
import { md5, spawnCli, type CliResult, type Project } from '../support/harness.js';

export const MiB = 1024 * 1024;

// The benchmark's xorshift32: the same edits and kill points for the same seed on every machine.
export { rng } from '../../bench/tree.js';

/** The bucket through the raw SDK, for any server the CLI can be pointed at by its env. */
export class Bucket {
  readonly client: S3Client;
  readonly name: string;

  constructor(readonly env: Record<string, string>) {
    this.name = env['AWS_STORAGE_BUCKET_NAME']!;
    this.client = createS3Client({
      endpoint: env['AWS_S3_ENDPOINT_URL']!, bucket: this.name, accessKeyId: env['AWS_ACCESS_KEY_ID']!,
      secretAccessKey: env['AWS_SECRET_ACCESS_KEY']!, forcePathStyle: true, concurrency: 8, multipartThreshold: 8 * MiB, partSize: 8 * MiB,
    });
  }

  async put(key: string, body: Buffer): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.name, Key: key, Body: body }));
  }

  async del(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.name, Key: key }));
  }

  async list(): Promise<{ key: string; etag: string; size: number }[]> {
    const all: { key: string; etag: string; size: number }[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.name, ContinuationToken: token }));
      for (const o of page.Contents ?? []) all.push({ key: o.Key!, etag: (o.ETag ?? '').replace(/"/g, ''), size: o.Size ?? 0 });
      token = page.NextContinuationToken;
    } while (token);
    return all;
  }

  async get(key: string): Promise<Buffer> {
    const res = await this.client.send(new GetObjectCommand({ Bucket: this.name, Key: key }));
    return Buffer.from(await res.Body!.transformToByteArray());
  }

  close(): void {
    this.client.destroy();
  }
}

const MAPPINGS: [string, string][] = [['media/', 'media/'], ['staticfiles/', 'static/']];
export const keyOf = (p: string): string => {
  for (const [l, r] of MAPPINGS) if (p.startsWith(l)) return r + p.slice(l.length);
  throw new Error(`unmapped ${p}`);
};
export const pathOf = (k: string): string => {
  for (const [l, r] of MAPPINGS) if (k.startsWith(r)) return l + k.slice(r.length);
  throw new Error(`unmapped ${k}`);
};

export const TEMP = /\.ssync-.+\.tmp$/;

/** Where a kill lands: after the nth `file` event (as a fraction of the items), or at a phase. */
export type KillPoint =
  | { at: 'files'; fraction: number }
  | { at: 'scan-local' }
  | { at: 'scan-remote' }
  | { at: 'first-delete' };

export interface Killed {
  result: CliResult;
  /** Whether the signal was sent before the run ended by itself. */
  sent: boolean;
  files: number;
  items: number;
}

/** Runs the CLI and sends `signal` when its NDJSON stream reaches `point`. */
export async function killAt(args: string[], cwd: string, env: Record<string, string>, point: KillPoint, signal: NodeJS.Signals, onPoint?: (child: ChildProcess) => Promise<void>): Promise<Killed> {
  let buf = '';
  let items = 0;
  let files = 0;
  let sent = false;
  const fire = (child: ChildProcess): void => {
    if (sent) return;
    sent = true;
    if (onPoint) void onPoint(child).finally(() => child.kill(signal));
    else child.kill(signal);
  };
  const result = await spawnCli(args, {
    cwd,
    env,
    onStdout: (chunk, child) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (sent || !line.startsWith('{')) continue;
        const e = JSON.parse(line) as Record<string, unknown>;
        if (e['event'] === 'item') items++;
        if (e['event'] === 'file') files++;
        const hit =
          (point.at === 'scan-local' && e['event'] === 'scan' && e['phase'] === 'local') ||
          (point.at === 'scan-remote' && e['event'] === 'scan' && e['phase'] === 'remote') ||
          (point.at === 'first-delete' && e['event'] === 'file' && String(e['action']).startsWith('delete-')) ||
          (point.at === 'files' && e['event'] === 'file' && files >= Math.max(1, Math.ceil(point.fraction * items)));
        if (hit) fire(child);
      }
    },
  });
  return { result, sent, files, items };
}

/** Every file under the root (manifests included) that is one of our temp files. */
export function tempsUnder(root: string): string[] {
  return fs.readdirSync(root, { recursive: true }).map(String).filter((f) => TEMP.test(path.basename(f)));
}

/** The user's files in the mapped folders: rel path → md5. */
export function localFiles(p: Project): Map<string, string> {
  return new Map(Object.entries(p.files()).filter(([f]) => MAPPINGS.some(([l]) => f.startsWith(l))));
}

/** Multipart ETags already read back (an ETag with a part count names one content on fauxqs). */
const readBack = new Map<string, string>();

export async function remoteFiles(b: Bucket, trustEtags: boolean): Promise<Map<string, { md5: string; etag: string }>> {
  const out = new Map<string, { md5: string; etag: string }>();
  for (const o of await b.list()) {
    // A multipart ETag is no MD5: read the bytes once. s3rver's ETag can also lie about a torn
    // object (it keeps the old one's): there, always read the bytes.
    let sum = trustEtags ? (/^[0-9a-f]{32}$/.test(o.etag) ? o.etag : readBack.get(`${o.etag}/${o.size}`)) : undefined;
    if (sum === undefined) {
      sum = md5(await b.get(o.key));
      if (trustEtags) readBack.set(`${o.etag}/${o.size}`, sum);
    }
    out.set(pathOf(o.key), { md5: sum, etag: o.etag });
  }
  return out;
}

/**
 * After a clean rerun: both sides hold exactly the model, no temp file is left anywhere, the
 * manifest describes both sides, and no journal record is left.
 */
export async function checkConverged(p: Project, b: Bucket, model: Map<string, string>, trustEtags: boolean, label: string): Promise<void> {
  const local = localFiles(p);
  const remote = await remoteFiles(b, trustEtags);
  const want = [...model].sort();
  assert.deepEqual([...local].sort(), want, `${label}: local side`);
  assert.deepEqual([...remote].map(([k, v]) => [k, v.md5]).sort(), want, `${label}: remote side`);
  assert.deepEqual(tempsUnder(p.root), [], `${label}: temp files left`);
  const m = Manifest.open(profilePaths(path.join(p.root, 'manifests'), 'default').manifest, { readOnly: true });
  try {
    const entries = [...m.all()];
    assert.deepEqual(entries.map(([k]) => k).sort(), [...model.keys()].sort(), `${label}: manifest paths`);
    for (const [k, e] of entries) {
      assert.equal(e.local.md5, model.get(k), `${label}: manifest local md5 of ${k}`);
      assert.equal(e.remote.etag, remote.get(k)?.etag, `${label}: manifest ETag of ${k}`);
      assert.equal(e.key, keyOf(k));
    }
    assert.equal(m.journal?.count() ?? 0, 0, `${label}: journal records left`);
  } finally {
    await m.close();
  }
}

/**
 * Right after a kill, before any rerun: every user path holds a whole version that one side had
 * before the run (or nothing), never a partial file.
 */
export function checkNoPartial(p: Project, before: { local: Map<string, string>; remote: Map<string, string> }, label: string): void {
  for (const [f, sum] of localFiles(p)) {
    if (TEMP.test(path.basename(f))) continue;
    assert.ok(sum === before.local.get(f) || sum === before.remote.get(f), `${label}: ${f} holds bytes neither side had`);
  }
}

export { md5 };
