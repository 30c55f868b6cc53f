// The listing's own XML reader (src/remote/list-xml.ts) against the SDK's: pages generated with
// the hostile parts of real listings (escaped and astral keys, control characters as character
// references, blank keys, CRLF, fractions of a second, extra elements) are served by a canned
// HTTP server and read both ways. Wherever the reader takes a page, it must read exactly what the
// SDK reads; where it declines, S3Store must still list what the SDK lists.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { parseListPage } from '../../src/remote/list-xml.js';
import { normalizeEtag } from '../../src/remote/etag.js';
import { S3Store } from '../../src/remote/s3-store.js';
import { startS3Server, storeConfig, type TestS3 } from '../support/s3-server.js';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

interface Obj { key: string; lastModified: string; etag: string; size: string; extra: string; charRefs: boolean }

function pageXml(objs: Obj[], truncated: boolean, token: string | undefined, crlf: boolean, keyCount: boolean): string {
  const nl = crlf ? '\r\n' : '\n';
  const keyText = (o: Obj) =>
    o.charRefs ? [...o.key].map((c) => (c.charCodeAt(0) < 0x20 || c === '&' || c === '<' ? `&#${c.charCodeAt(0)};` : c)).join('') : esc(o.key);
  const contents = objs
    .map((o) => `  <Contents>${nl}    <Key>${keyText(o)}</Key>${nl}    <LastModified>${o.lastModified}</LastModified>${nl}    <ETag>${o.etag}</ETag>${o.extra}${nl}    <Size>${o.size}</Size>${nl}  </Contents>${nl}`)
    .join('');
  return (
    `<?xml version="1.0" encoding="UTF-8"?>${nl}<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${nl}` +
    `  <Name>b</Name>${nl}  <Prefix></Prefix>${nl}` +
    (keyCount ? `  <KeyCount>${objs.length}</KeyCount>${nl}` : '') +
    `  <MaxKeys>1000</MaxKeys>${nl}  <IsTruncated>${String(truncated)}</IsTruncated>${nl}` +
    contents +
    (token !== undefined ? `  <NextContinuationToken>${esc(token)}</NextContinuationToken>${nl}` : '') +
    `</ListBucketResult>${nl}`
  );
}

const keyChar = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('a', 'b', 'z', '0', '/', '.', '-', '_', ' ') },
  { weight: 2, arbitrary: fc.constantFrom('&', '<', '>', '"', "'", '%', '+', '#', '?', '\t', '\n', '\r', '\u0001', '\u007f') },
  { weight: 2, arbitrary: fc.constantFrom('é', 'ß', '日', '\u00a0', '\u2028', '\ufeff', '\ufffd', '😀', '𝄞') },
);
const obj: fc.Arbitrary<Obj> = fc.record({
  key: fc.oneof({ weight: 8, arbitrary: fc.array(keyChar, { minLength: 1, maxLength: 12 }).map((a) => a.join('')) }, fc.constantFrom('\n', ' \n ', '\r\n', '')),
  lastModified: fc.tuple(
    fc.integer({ min: 1999, max: 2099 }), fc.integer({ min: 1, max: 12 }), fc.oneof({ weight: 10, arbitrary: fc.integer({ min: 1, max: 28 }) }, fc.integer({ min: 29, max: 31 })),
    fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }), fc.oneof({ weight: 20, arbitrary: fc.integer({ min: 0, max: 59 }) }, fc.constant(60)),
    fc.constantFrom('', '.000', '.291', '.5', '.999', '.123456', '.9999', '.0001'), fc.oneof({ weight: 20, arbitrary: fc.constantFrom('Z', 'z') }, fc.constant('+01:00')),
  ).map(([y, mo, d, h, mi, s, f, z]) => `${y}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}T${String(h).padStart(2, '0')}:${String(mi).padStart(2, '0')}:${String(s).padStart(2, '0')}${f}${z}`),
  etag: fc.constantFrom('&quot;d41d8cd98f00b204e9800998ecf8427e&quot;', '"0CC175B9C0F1B6A831C399E269772661"', '&#34;abc-3&#34;', '"x"'),
  size: fc.oneof({ weight: 20, arbitrary: fc.constantFrom('0', '1', '8192', '5368709120') }, fc.constantFrom('007', '-1', '1e3')),
  extra: fc.constantFrom('', '<StorageClass>STANDARD</StorageClass>', '<Owner><ID>x</ID><DisplayName>y</DisplayName></Owner>', '<ChecksumAlgorithm>CRC32</ChecksumAlgorithm>'),
  charRefs: fc.boolean(),
});

describe('the listing XML reader reads what the SDK reads', () => {
  let body = '';
  let endpoint = '';
  let close: () => Promise<unknown> = async () => undefined;
  let client: S3Client;
  let store: S3Store;
  before(async () => {
    const server = createServer((req, res) => req.resume().on('end', () => res.writeHead(200, { 'content-type': 'application/xml' }).end(body)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = () => new Promise((resolve) => server.close(resolve));
    const cfg = { endpoint, bucket: 'b', accessKeyId: 'k', secretAccessKey: 's', forcePathStyle: true, concurrency: 2, multipartThreshold: 1 << 30, partSize: 1 << 24, maxAttempts: 1 };
    client = new S3Client({ region: 'auto', endpoint, forcePathStyle: true, credentials: { accessKeyId: 'k', secretAccessKey: 's' }, maxAttempts: 1 });
    store = new S3Store(cfg);
  });
  after(async () => {
    client.destroy();
    store.close();
    await close();
  });

  it('property: generated pages', async () => {
    let taken = 0;
    let declined = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(obj, { maxLength: 6 }), fc.boolean(), fc.option(fc.array(keyChar, { minLength: 1, maxLength: 8 }).map((a) => a.join('')), { nil: undefined }), fc.boolean(), fc.boolean(), async (objs, truncated, token, crlf, keyCount) => {
        body = pageXml(objs, truncated, token, crlf, keyCount);
        const sdk = await client.send(new ListObjectsV2Command({ Bucket: 'b' })).then((p) => ({ ok: true as const, p }), (err: unknown) => ({ ok: false as const, err }));
        const ours = parseListPage(body);
        if (ours === undefined) {
          declined++;
          return;
        }
        taken++;
        assert.ok(sdk.ok, `we read a page the SDK refused: ${String(!sdk.ok && sdk.err)}\n${body}`);
        const want = (sdk.p.Contents ?? []).map((o) => ({ key: o.Key ?? '', etag: normalizeEtag(o.ETag ?? ''), size: o.Size ?? 0, lastModified: o.LastModified?.getTime() ?? 0 }));
        assert.deepEqual(ours.objects, want, body);
        assert.equal(ours.isTruncated, sdk.p.IsTruncated === true, body);
        assert.equal(ours.nextToken, sdk.p.NextContinuationToken, body);
        // And through the store, with the reader in the SDK's middleware stack.
        // (A truncated page would be asked for again and again: this server has only the one.)
        if (!truncated) assert.deepEqual(await store.listAll(''), want);
      }),
      { numRuns: 300 },
    );
    assert.ok(taken > 100, `the reader took only ${taken} of ${taken + declined} pages`);
  });

  it('pages it declines are listed by the SDK instead: CDATA, comments, attributes, miscounts', async () => {
    const one = (inner: string, top = '') =>
      `<?xml version="1.0"?><ListBucketResult>${top}<IsTruncated>false</IsTruncated><Contents>${inner}</Contents></ListBucketResult>`;
    const base = '<LastModified>2026-01-02T03:04:05.000Z</LastModified><ETag>"e"</ETag><Size>3</Size>';
    const cases = [
      one(`<Key><![CDATA[a&b]]></Key>${base}`),
      one(`<Key>a<!-- c -->b</Key>${base}`),
      one(`<Key>a</Key>${base}`, '<KeyCount>2</KeyCount>'),
      one(`<Key>a</Key><Key>b</Key>${base}`),
      `<ListBucketResult><IsTruncated>false</IsTruncated><Contents xmlns="">` + `<Key>a</Key>${base}</Contents></ListBucketResult>`,
    ];
    for (const xml of cases) assert.equal(parseListPage(xml), undefined, xml);
    body = one(`<Key><![CDATA[a&b]]></Key>${base}`);
    assert.deepEqual(await store.listAll(''), [{ key: 'a&b', etag: 'e', size: 3, lastModified: Date.UTC(2026, 0, 2, 3, 4, 5) }]);
    // An S3 error with status 200 is not a page either.
    assert.equal(parseListPage('<Error><Code>InternalError</Code></Error>'), undefined);
  });

  it('declines a page whose shape it does not read as the SDK does: a self-closing Contents, anything before the root, unbalanced tags', async () => {
    const base = '<LastModified>2026-01-02T03:04:05.000Z</LastModified><ETag>"e"</ETag><Size>3</Size>';
    const page = `<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a</Key>${base}</Contents></ListBucketResult>`;
    const sdkList = async () => {
      const p = await client.send(new ListObjectsV2Command({ Bucket: 'b' }));
      return (p.Contents ?? []).map((o) => ({ key: o.Key ?? '', etag: normalizeEtag(o.ETag ?? ''), size: o.Size ?? 0, lastModified: o.LastModified?.getTime() ?? 0 }));
    };
    // The SDK reads <Contents/> as one more object (a blank key, which the sync reports as invalid):
    // the reader must not drop it silently, whatever its spelling.
    for (const empty of ['<Contents/>', '<Contents\t/>', '<Contents\n/>']) {
      body = page.replace('<Contents>', `${empty}<Contents>`);
      assert.equal(parseListPage(body), undefined, body);
      const want = await sdkList();
      assert.equal(want.length, 2);
      assert.deepEqual(await store.listAll(''), want);
    }
    // The SDK refuses a page with a byte-order mark or text before the root, and reads another
    // root element as the result: the reader must not read such a page its own way.
    for (const before of ['\ufeff', 'x', '<?xml version="1.0"?>\ufeff']) {
      body = before + page;
      assert.equal(parseListPage(body), undefined, JSON.stringify(before));
      await assert.rejects(sdkList());
      await assert.rejects(store.listAll(''));
    }
    for (const xml of [`<Other/>${page}`, `<Wrapper>${page}</Wrapper>`]) {
      body = xml;
      assert.equal(parseListPage(body), undefined, body);
      assert.deepEqual(await store.listAll(''), await sdkList());
    }
    // Tags that do not nest (a byte flipped in a tag name, a page cut and joined): the SDK refuses
    // the page or reads it otherwise, even where the reader's fields look intact.
    const good = `<Contents><Key>k</Key>${base}</Contents>`;
    for (const xml of [
      `<ListBucketResult><KeyCount><IsTruncated>false</IsTruncated></LastModified>${good}</ListBucketResult>`,
      `<ListBucketResult><IsTruncated>false</IsTruncated>${good.replace('<Size>', '<Owner><ID>x</Idd></Owner><Size>')}</ListBucketResult>`,
      `<ListBucketResult><IsTruncated>${good}false</IsTruncated></ListBucketResult>`,
      `<ListBucketResult><IsTruncated>false</IsTruncated><Name>${good}</Name></ListBucketResult>`,
      `<ListBucketResult><IsTruncated>false</IsTruncated>${good}</ListBucketResult><ListBucketResult>${good}</ListBucketResult>`,
      `<ListBucketResult><IsTruncated>false</IsTruncated>${good}<Name>b</Nam></ListBucketResult>`,
    ]) {
      body = xml;
      assert.equal(parseListPage(body), undefined, body);
      const sdk = await sdkList().then((v) => ({ v }), (e: unknown) => ({ e }));
      if ('v' in sdk) assert.deepEqual(await store.listAll(''), sdk.v, body);
      else await assert.rejects(store.listAll(''), body);
    }
    // The prolog real servers send is still read by the reader.
    assert.equal(parseListPage(`<?xml version="1.0" encoding="UTF-8"?>\n${page}`)?.objects.length, 1);
  });
});

describe('listing fauxqs goes through the reader and agrees with the SDK', () => {
  let s3: TestS3;
  before(async () => {
    s3 = await startS3Server();
  });
  after(async () => {
    await s3.stop();
  });

  /** The SDK's own listing of a prefix, and the raw XML of each page. */
  async function sdkListing(prefix: string) {
    const raw: string[] = [];
    const objects: { key: string; etag: string; size: number; lastModified: number }[] = [];
    let token: string | undefined;
    do {
      const cmd = new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix, ContinuationToken: token });
      cmd.middlewareStack.add(
        ((next: (a: unknown) => Promise<{ response: { body: NodeJS.ReadableStream } }>) => async (a: unknown) => {
          const r = await next(a);
          const chunks: Buffer[] = [];
          for await (const c of r.response.body) chunks.push(c as Buffer);
          const b = Buffer.concat(chunks);
          raw.push(b.toString('utf8'));
          (r.response as { body: unknown }).body = b;
          return r;
        }) as never,
        { step: 'deserialize', name: 'capture', priority: 'low' },
      );
      const page = await s3.client.send(cmd);
      for (const o of page.Contents ?? []) objects.push({ key: o.Key!, etag: normalizeEtag(o.ETag!), size: o.Size!, lastModified: o.LastModified!.getTime() });
      token = page.NextContinuationToken;
    } while (token);
    return { raw, objects };
  }

  it('keys with escapes and Unicode, and a listing of several pages', async () => {
    // Escapes and Unicode in a one-page prefix, plain names over several pages: fauxqs orders
    // a listing's first page with localeCompare and the next by code unit, so a key like these
    // in a longer listing comes twice, whoever reads its XML.
    const odd = ['q/a&b<c>"d\'e', 'q/日本 語.txt', 'q/é/x', 'q/ space ', 'q/%2F+#?', 'q/😀', 'q/tab\there'];
    const plain = Array.from({ length: 1100 }, (_, i) => `p/n/${String(i).padStart(5, '0')}`);
    const all = [...odd, ...plain];
    for (let i = 0; i < all.length; i += 50) await Promise.all(all.slice(i, i + 50).map((k) => s3.putRaw(k, k)));
    const store = new S3Store(storeConfig(s3));
    try {
      for (const [prefix, keys] of [['q/', odd], ['p/', plain]] as const) {
        const sdk = await sdkListing(prefix);
        // The pages as the server sends them are read by the reader, not left to the SDK.
        for (const xml of sdk.raw) assert.ok(parseListPage(xml), `declined: ${xml.slice(0, 300)}`);
        assert.equal(sdk.raw.length, prefix === 'p/' ? 2 : 1);
        assert.deepEqual(sdk.objects.map((o) => o.key).sort(), [...keys].sort());
        assert.deepEqual(await store.listAll(prefix), sdk.objects);
      }
    } finally {
      store.close();
    }
  });
});
