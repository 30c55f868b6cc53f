// Ranged listing: the key space cut at hinted keys and listed by parallel chains of pages must give
// exactly what one serial chain gives, whatever the hints are, and must fall back to one serial
// chain on a server that does not list in byte order.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { SyncError } from '../../src/core/errors.js';
import { createS3Client } from '../../src/remote/client.js';
import { compareKeys, S3Store, splitPoints, type ListedObject, type ListOptions, type StoreConfig } from '../../src/remote/s3-store.js';
import { startS3Server, storeConfig, type TestS3 } from '../support/s3-server.js';

/** Runs `fn` over `items`, at most `limit` at a time. */
async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>) {
  const queue = items[Symbol.iterator]();
  const worker = async () => {
    for (let next = queue.next(); !next.done; next = queue.next()) await fn(next.value);
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

/** What the ListObjectsV2 requests of a client looked like: how many, how many at once, from where. */
function watchLists(client: S3Client) {
  const seen = { calls: 0, inFlight: 0, maxInFlight: 0, startAfters: [] as string[] };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'ListObjectsV2Command') return next(args);
      const input = args.input as { StartAfter?: string };
      seen.calls++;
      if (input.StartAfter !== undefined) seen.startAfters.push(input.StartAfter);
      seen.maxInFlight = Math.max(seen.maxInFlight, ++seen.inFlight);
      try {
        return await next(args);
      } finally {
        seen.inFlight--;
      }
    },
    { step: 'initialize', name: 'watchLists' },
  );
  return seen;
}

async function serial(store: S3Store, prefix: string): Promise<ListedObject[]> {
  const out: ListedObject[] = [];
  for await (const page of store.list(prefix)) out.push(...page);
  return out;
}

const key = (i: number) => `media/d${String(Math.floor(i / 20)).padStart(4, '0')}/f${i}.bin`;
// Small ranges so that a few thousand keys make many ranges of several pages each.
const SPLIT: ListOptions['split'] = { minKeys: 100, rangeKeys: 1500 };

describe('ranged listing against the test S3 server', () => {
  let s3: TestS3;
  let store: S3Store;
  let seen: ReturnType<typeof watchLists>;
  const keys = Array.from({ length: 4200 }, (_, i) => key(i)).sort(compareKeys);

  before(async () => {
    s3 = await startS3Server();
    const client = createS3Client(storeConfig(s3));
    seen = watchLists(client);
    store = new S3Store(storeConfig(s3), client);
    await eachLimited(keys, 32, (k) => s3.putRaw(k, k));
    // Neighbours of the prefix, which no range may pick up.
    await s3.putRaw('media', 'not under media/');
    await s3.putRaw('media-other/x', 'not under media/');
    await s3.putRaw('a/before', 'before media/');
  });
  after(async () => {
    store.close();
    await s3.stop();
  });

  const ranged = async (hints: string[], chains = 4) => {
    seen.calls = 0;
    seen.maxInFlight = 0;
    seen.startAfters = [];
    let note: string | undefined;
    const got = await store.listAll('media/', { hints, chains, split: SPLIT, onNote: (m) => (note = m) });
    assert.equal(note, undefined, 'no serial fallback on a server that lists in byte order');
    return got;
  };

  it('gives exactly the serial listing, in byte order, with chains in parallel', async () => {
    const want = await serial(store, 'media/');
    assert.equal(want.length, keys.length);
    const got = await ranged(keys);
    assert.deepEqual(got, want);
    assert.deepEqual(got.map((o) => o.key), keys);
    // Three ranges of 1,400 keys: each chain starts after the previous range's last key.
    assert.equal(seen.startAfters.length, 2);
    assert.ok(seen.startAfters.every((k) => keys.includes(k)), 'splits are hinted keys');
    assert.ok(seen.maxInFlight > 1, `chains ran in parallel (max in flight ${seen.maxInFlight})`);
    // Ranges that end on a known key stop without reading a page beyond it.
    assert.equal(seen.calls, 6);
  });

  it('covers every key when the hints are stale: gone, never there, and keys added around them', async () => {
    // ASCII only: fauxqs sorts with localeCompare, which is not byte order beyond it (the stub
    // server below covers Unicode order).
    const added = ['media/', 'media/0first', 'media/d0000/f0.bin0', 'media/d0100/f2000.bin-new', 'media/zz/last'];
    const gone = [keys[0]!, keys[1400]!, keys[1399]!, keys[2800]!, keys[keys.length - 1]!];
    for (const k of added) await s3.putRaw(k, k);
    for (const k of gone) await s3.deleteRaw(k);
    try {
      const want = await serial(store, 'media/');
      assert.equal(want.length, keys.length + added.length - gone.length);
      // The old key set as hints: several splits fall exactly on deleted keys.
      assert.deepEqual(await ranged(keys), want);
      // Hints that name nothing in the bucket (another tree entirely, unsorted) still cover it.
      const phantom = Array.from({ length: 3000 }, (_, i) => `media/q${(i * 7919) % 3000}`);
      assert.deepEqual(await ranged(phantom), want);
      // Hints in walk order, many of them outside the prefix.
      const walk = [...keys].reverse().map((k, i) => (i % 3 === 0 ? `other/${k}` : k));
      assert.deepEqual(await ranged(walk, 8), want);
      assert.ok(seen.maxInFlight > 1);
    } finally {
      for (const k of added) await s3.deleteRaw(k);
      for (const k of gone) await s3.putRaw(k, k);
    }
  });

  it('lists serially when too few keys are hinted', async () => {
    const got = await ranged(keys.slice(0, 50));
    assert.deepEqual(got.map((o) => o.key), keys);
    assert.equal(seen.maxInFlight, 1);
    assert.equal(seen.startAfters.length, 0);
  });

  it('splits only at strictly ascending byte-order points inside the prefix', () => {
    const hints = ['p/\uFFFD', 'p/\u{1F600}', 'p/a', 'p/b', 'q/x', 'p/a', 'p/c', 'p/d'];
    const splits = splitPoints('p/', hints, 8, { minKeys: 2, rangeKeys: 1 });
    assert.ok(splits.length > 0);
    for (let i = 1; i < splits.length; i++) assert.ok(compareKeys(splits[i - 1]!, splits[i]!) < 0, splits.join(' '));
    assert.ok(splits.every((k) => k.startsWith('p/')));
    // UTF-8 byte order: U+1F600 (F0 9F…) sorts after U+FFFD (EF BF BD), unlike UTF-16 order.
    assert.ok(compareKeys('\u{1F600}', '\uFFFD') > 0);
    assert.ok(compareKeys('a', 'ab') < 0 && compareKeys('b', 'ab') > 0 && compareKeys('x', 'x') === 0);
  });
});

/**
 * A minimal ListObjectsV2 endpoint over a fixed key list, in the order given (s3rver lists in
 * directory order): StartAfter filters by key, continuation tokens are positions.
 */
async function stubLister(order: string[], opts: { tokenless?: boolean; failAfter?: string } = {}) {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const q = url.searchParams;
    if (opts.failAfter !== undefined && q.get('start-after') === opts.failAfter) {
      res.writeHead(500, { 'content-type': 'application/xml' });
      res.end('<Error><Code>InternalError</Code><Message>boom</Message></Error>');
      return;
    }
    const prefix = q.get('prefix') ?? '';
    const startAfter = q.get('start-after') ?? '';
    const from = Number(q.get('continuation-token') ?? '0');
    const max = Number(q.get('max-keys') ?? '1000');
    const matching = order.filter((k) => k.startsWith(prefix) && (startAfter === '' || compareKeys(k, startAfter) > 0));
    const page = matching.slice(from, from + max);
    const truncated = from + max < matching.length;
    const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
    res.writeHead(200, { 'content-type': 'application/xml' });
    res.end(
      '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
        `<Name>b</Name><Prefix>${esc(prefix)}</Prefix><KeyCount>${page.length}</KeyCount><MaxKeys>${max}</MaxKeys>` +
        `<IsTruncated>${truncated}</IsTruncated>` +
        (truncated && !opts.tokenless ? `<NextContinuationToken>${from + max}</NextContinuationToken>` : '') +
        page.map((k) => `<Contents><Key>${esc(k)}</Key><Size>${k.length}</Size><ETag>"0123456789abcdef0123456789abcdef"</ETag><LastModified>2026-01-01T00:00:00.000Z</LastModified></Contents>`).join('') +
        '</ListBucketResult>',
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const cfg: StoreConfig = {
    endpoint, bucket: 'b', accessKeyId: 'k', secretAccessKey: 'secret-not-shown', forcePathStyle: true,
    concurrency: 4, multipartThreshold: 1 << 23, partSize: 1 << 23, maxAttempts: 1,
  };
  const store = new S3Store(cfg);
  return {
    cfg,
    store,
    close: async () => {
      store.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('ranged listing against servers it cannot trust', () => {
  const keys = Array.from({ length: 3000 }, (_, i) => key(i)).sort(compareKeys);

  it('orders keys by their UTF-8 bytes, as S3 does, across ranges', async () => {
    const unicode = [...keys, 'media/\u{1F600}.bin', 'media/\uFFFDx', 'media/\u00e9t\u00e9', 'media/Zed', 'media/~tilde'].sort(compareKeys);
    const stub = await stubLister(unicode);
    try {
      const notes: string[] = [];
      const got = await stub.store.listAll('media/', { hints: unicode, chains: 4, split: { minKeys: 100, rangeKeys: 500 }, onNote: (m) => notes.push(m) });
      assert.deepEqual(notes, []);
      assert.deepEqual(got.map((o) => o.key), unicode);
      assert.equal(got.at(-1)!.key, 'media/\u{1F600}.bin');
    } finally {
      await stub.close();
    }
  });

  it('falls back to one serial listing, with a note, when keys come out of byte order', async () => {
    // Directory order: folders in creation order, names inside each folder shuffled.
    const order = [...keys].sort((a, b) => (a.slice(0, 12) === b.slice(0, 12) ? (a.length * 7 + a.charCodeAt(a.length - 5)) % 5 - (b.length * 7 + b.charCodeAt(b.length - 5)) % 5 || compareKeys(b, a) : compareKeys(a, b)));
    assert.notDeepEqual(order, keys);
    const stub = await stubLister(order);
    try {
      const notes: string[] = [];
      const got = await stub.store.listAll('media/', { hints: keys, chains: 4, split: SPLIT, onNote: (m) => notes.push(m) });
      assert.deepEqual(got.map((o) => o.key), order, 'the serial listing, in the server order');
      assert.equal(notes.length, 1);
      assert.match(notes[0]!, /not in byte order.*serial/);
    } finally {
      await stub.close();
    }
  });

  it('falls back when the server ignores StartAfter', async () => {
    const stub = await stubLister(keys);
    // The same stub, seen through a client that drops StartAfter from every request.
    const client = createS3Client(stub.cfg);
    client.middlewareStack.add(
      (next) => async (args) => {
        delete (args.input as { StartAfter?: string }).StartAfter;
        return next(args);
      },
      { step: 'initialize', name: 'dropStartAfter' },
    );
    const ignoring = new S3Store(stub.cfg, client);
    try {
      const notes: string[] = [];
      const got = await ignoring.listAll('media/', { hints: keys, chains: 4, split: SPLIT, onNote: (m) => notes.push(m) });
      assert.deepEqual(got.map((o) => o.key), keys);
      assert.equal(notes.length, 1);
    } finally {
      ignoring.close();
      await stub.close();
    }
  });

  it('still refuses a truncated page without a continuation token, serial or ranged', async () => {
    const stub = await stubLister(keys, { tokenless: true });
    try {
      await assert.rejects(stub.store.listAll('media/', { hints: keys, chains: 4, split: SPLIT }), (err: unknown) => {
        assert.ok(err instanceof SyncError);
        assert.match(err.message, /truncated page without a continuation token/);
        return true;
      });
      await assert.rejects(stub.store.listAll('media/'), /truncated page without a continuation token/);
    } finally {
      await stub.close();
    }
  });

  it('fails the whole listing, in one line without the secret, when one chain fails', async () => {
    const splits = splitPoints('media/', keys, 4, SPLIT);
    const stub = await stubLister(keys, { failAfter: splits[0]! });
    try {
      await assert.rejects(stub.store.listAll('media/', { hints: keys, chains: 4, split: SPLIT }), (err: unknown) => {
        assert.ok(err instanceof SyncError);
        assert.doesNotMatch(err.message, /secret-not-shown|\n/);
        return true;
      });
    } finally {
      await stub.close();
    }
  });
});
