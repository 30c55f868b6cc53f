// Gather lists a large mapping in parallel ranges cut at last run's keys (or, on a first run, at
// the local paths), and still sees exactly what is in the bucket: objects added since, objects
// gone since, and nothing from a neighbouring prefix.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gather } from '../../src/engine/gather.js';
import { EventStream, type SyncEvent } from '../../src/engine/events.js';
import { resolveSettings } from '../../src/engine/settings.js';
import { Hasher } from '../../src/local/hasher.js';
import { Manifest } from '../../src/manifest/manifest.js';
import { createS3Client } from '../../src/remote/client.js';
import { PARALLEL_LIST_MIN, S3Store } from '../../src/remote/s3-store.js';
import { md5 } from '../support/harness.js';
import { startS3Server, storeConfig, type TestS3 } from '../support/s3-server.js';

const N = PARALLEL_LIST_MIN + 300;
const rel = (i: number) => `d${String(Math.floor(i / 50)).padStart(3, '0')}/f${i}.txt`;

async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>) {
  const queue = items[Symbol.iterator]();
  const worker = async () => {
    for (let next = queue.next(); !next.done; next = queue.next()) await fn(next.value);
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

describe('gather: ranged listing of a large mapping', () => {
  let s3: TestS3;
  let root: string;
  const startAfters: string[] = [];
  let store: S3Store;

  before(async () => {
    s3 = await startS3Server();
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'ssync-gather-list-'));
    const old = new Date(Date.now() - 60_000);
    for (let i = 0; i < N; i++) {
      const abs = path.join(root, 'media', rel(i));
      if (i % 50 === 0) fs.mkdirSync(path.dirname(abs), { recursive: true });
      fs.writeFileSync(abs, `file ${i}`);
      fs.utimesSync(abs, old, old);
    }
    await eachLimited(Array.from({ length: N }, (_, i) => i), 32, (i) => s3.putRaw(`media/${rel(i)}`, `file ${i}`));
    // A neighbour whose keys share the prefix's first characters but not the prefix.
    await s3.putRaw('media-old/x.txt', 'not media/');
    const client = createS3Client(storeConfig(s3));
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { StartAfter?: string };
        if (context.commandName === 'ListObjectsV2Command' && input.StartAfter !== undefined) startAfters.push(input.StartAfter);
        return next(args);
      },
      { step: 'initialize', name: 'watchStartAfter' },
    );
    store = new S3Store(storeConfig(s3), client);
  });
  after(async () => {
    store.close();
    await s3.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  const run = async (manifest: Manifest) => {
    startAfters.length = 0;
    const settings = resolveSettings({ root }, root);
    const events = new EventStream();
    const notes: SyncEvent[] = [];
    events.on((e) => void (e.event === 'note' && notes.push(e)));
    const hasher = new Hasher();
    try {
      const g = await gather({ settings, store, manifest, hasher, events, signal: new AbortController().signal, useBase: true });
      assert.deepEqual(notes, []);
      return g;
    } finally {
      await hasher.close();
    }
  };

  it('splits at the local paths on a first run and sees every object', async () => {
    const manifest = Manifest.open(path.join(root, 'manifests', 'first.lmdb'), { readOnly: true });
    const g = await run(manifest);
    assert.ok(startAfters.length >= 1, 'ranges after the first start after a local path mapped to its key');
    assert.ok(startAfters.every((k) => k.startsWith('media/d')));
    assert.equal(g.remoteCount[1], N);
    assert.equal(g.states.filter((s) => s.remote && s.local).length, N);
    assert.equal(g.states.find((s) => s.path === `media/${rel(7)}`)?.remote?.etag, md5('file 7'));
    await manifest.close();
  });

  it('splits at last run\'s keys and sees objects added and removed since', async () => {
    const file = path.join(root, 'manifests', 'second.lmdb');
    const manifest = Manifest.open(file, { readOnly: false });
    const gone = [0, 1, 2, Math.floor(N / 2), N - 1];
    for (let i = 0; i < N; i++) {
      const m = md5(`file ${i}`);
      manifest.put(`media/${rel(i)}`, {
        key: `media/${rel(i)}`,
        local: { size: 1, mtimeNs: '1', ino: 1, md5: m, xxh64: '0000000000000000' },
        remote: { etag: m, size: 1, lastModified: 1, md5: m },
        recordedAtNs: '1',
      });
    }
    await manifest.flush();
    const added = ['media/0-before-everything.txt', `media/${rel(Math.floor(N / 2))}.new`, 'media/zz-after-everything.txt'];
    try {
      for (const k of gone) await s3.deleteRaw(`media/${rel(k)}`);
      for (const k of added) await s3.putRaw(k, k);
      const g = await run(manifest);
      assert.ok(startAfters.length >= 1);
      // Splits come from the manifest: a key deleted since may be one, and still nothing is lost.
      const byPath = new Map(g.states.map((s) => [s.path, s]));
      assert.equal(g.remoteCount[1], N - gone.length + added.length);
      for (const k of gone) assert.equal(byPath.get(`media/${rel(k)}`)?.remote, undefined, `${rel(k)} is gone remotely`);
      for (const k of added) assert.equal(byPath.get(k)?.remote?.etag, md5(k), `${k} is listed`);
      assert.ok(![...byPath.keys()].some((p) => p.startsWith('media-old')));
    } finally {
      for (const k of gone) await s3.putRaw(`media/${rel(k)}`, `file ${k}`);
      for (const k of added) await s3.deleteRaw(k);
      await manifest.close();
    }
  });
});
