// A ListObjectsV2 page read straight from its XML. The SDK's reading of a 1,000-key page (its
// XML parser builds every text char by char, then a schema walk turns each field into a typed
// value) cost ~25 ms of CPU: at 20k keys that was most of an unchanged run, more than the walk,
// the manifest and the plan together. This reads the four fields we use, with the SDK's exact
// rules for text (entities, the "\r\n" and whitespace rules, the timestamp arithmetic), and gives
// up on anything it was not written for (CDATA, comments, attributes, a field missing or
// repeated, a count that does not add up): the page then goes to the SDK's parser unchanged.
// A test holds it to the SDK's output on generated pages.

import { normalizeEtag } from '../core/compare.js';

export interface ListedObject {
  key: string;
  /** Unquoted, lowercase. */
  etag: string;
  size: number;
  /** ms since the epoch (listings carry ms; HEAD and GET only whole seconds). */
  lastModified: number;
}

export interface ListPage {
  objects: ListedObject[];
  isTruncated: boolean;
  nextToken: string | undefined;
}

const ENTITY = /&(?:#x([0-9a-fA-F]{1,6})|#(\d{1,7})|([a-zA-Z][a-zA-Z0-9]{0,30}));/g;
const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** The SDK's text rule: entities decoded (fromCharCode, unknown names dropped), blank-with-newline is "". */
function text(raw: string): string {
  const s = raw.includes('&')
    ? raw.replace(ENTITY, (_m, hex: string | undefined, dec: string | undefined, named: string) => {
        if (hex) return String.fromCharCode(parseInt(hex, 16));
        if (dec) return String.fromCharCode(parseInt(dec, 10));
        return Object.hasOwn(NAMED, named) ? NAMED[named]! : '';
      })
    : raw;
  return s.includes('\n') && s.trim() === '' ? '' : s;
}

/** The raw text of the one `<name>` element in x[from, to); undefined if absent, repeated or not plain text. */
function field(x: string, name: string, from: number, to: number): string | undefined {
  const open = `<${name}>`;
  const at = x.indexOf(open, from);
  if (at < 0 || at >= to) return undefined;
  const start = at + open.length;
  const end = x.indexOf(`</${name}>`, start);
  if (end < 0 || end > to) return undefined;
  const again = x.indexOf(open, end);
  if (again >= 0 && again < to) return undefined;
  const raw = x.slice(start, end);
  return raw.includes('<') ? undefined : raw;
}

/**
 * Whether the tags in x[from, to) nest, as the SDK's parser requires (it refuses a page whose
 * closing tag does not match, and its result ends where the root closes), with the fields read at
 * the depth the SDK reads them. The fields are found by searching for them, which alone would read
 * a page broken elsewhere (a byte flipped in a tag name, a page cut and joined) that the SDK
 * refuses or reads otherwise. ~0.5 ms for 1,000 keys, against ~3 ms for the rest.
 */
function wellFormed(x: string, from: number, to: number): boolean {
  const open: string[] = [];
  const TAG = /<(\/?)([^ \t\n>/]*)([^>]*)>/g;
  TAG.lastIndex = from;
  for (let m = TAG.exec(x); m && m.index < to; m = TAG.exec(x)) {
    const [whole, close, name, rest] = m as unknown as [string, string, string, string];
    if (name === '') return false;
    if (close) {
      if (rest.trim() !== '' || open.pop() !== name) return false;
      // The root closed: nothing but its end may follow.
      if (open.length === 0) return m.index + whole.length === to;
      continue;
    }
    // Each field read is where the SDK reads it: in the root, or in a <Contents> in the root.
    const depth = READ_AT.get(name);
    if (depth !== undefined && (open.length !== depth || (depth === 2 && open[1] !== 'Contents'))) return false;
    if (!rest.endsWith('/')) open.push(name);
  }
  return false;
}
const READ_AT = new Map(Object.entries({
  ListBucketResult: 0, Contents: 1, IsTruncated: 1, NextContinuationToken: 1, KeyCount: 1, Key: 2, LastModified: 2, ETag: 2, Size: 2,
}));

const RFC3339 = /^(\d{4})-(\d\d)-(\d\d)[tT](\d\d):(\d\d):(\d\d)(?:\.(\d+))?[zZ]$/;

/**
 * As the SDK's XML reader computes it (_parseRfc3339DateTimeWithOffset: the fraction rounded to
 * whole ms), or undefined for what it treats specially (a leap second, 31 February, early years).
 */
function timestamp(s: string): number | undefined {
  const m = RFC3339.exec(s);
  if (!m) return undefined;
  const [y, mo, d, h, mi, sec] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (y < 1000 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59) return undefined;
  const frac = m[7];
  const ms = frac !== undefined && Number(frac) ? Math.round(parseFloat(`0.${frac}`) * 1000) : 0;
  const t = Date.UTC(y, mo - 1, d, h, mi, sec, ms);
  return new Date(t).getUTCDate() === d ? t : undefined;
}

/** The page, or undefined when the SDK must read it. */
export function parseListPage(body: string): ListPage | undefined {
  const x = body.includes('\r') ? body.replace(/\r\n?/g, '\n') : body;
  const root = x.indexOf('<ListBucketResult');
  const rootEnd = x.lastIndexOf('</ListBucketResult>');
  if (root < 0 || rootEnd < root) return undefined;
  // Only the XML declaration may come first: the SDK refuses a byte-order mark or text there, and
  // takes an element there for the whole result.
  if (root > 0 && !/^[ \t\n]*(?:<\?xml[^<>]*\?>[ \t\n]*)?$/.test(x.slice(0, root))) return undefined;
  // Markup the reader below does not handle: CDATA, comments, instructions inside the root,
  // attributes on the elements it reads.
  if (x.includes('<![CDATA[', root) || x.includes('<!--', root) || x.includes('<?', root) || x.includes('<Contents ', root)) return undefined;
  if (!wellFormed(x, root, rootEnd + '</ListBucketResult>'.length)) return undefined;

  const objects: ListedObject[] = [];
  let blocks = 0;
  let outside = '';
  let pos = root;
  for (;;) {
    const at = x.indexOf('<Contents>', pos);
    if (at < 0 || at > rootEnd) break;
    const end = x.indexOf('</Contents>', at);
    if (end < 0 || end > rootEnd) return undefined;
    outside += x.slice(pos, at);
    blocks++;
    const key = field(x, 'Key', at, end);
    const modified = field(x, 'LastModified', at, end);
    const etag = field(x, 'ETag', at, end);
    const size = field(x, 'Size', at, end);
    if (key === undefined || modified === undefined || etag === undefined || size === undefined) return undefined;
    const lastModified = timestamp(text(modified));
    const sizeText = text(size);
    if (lastModified === undefined || !/^(0|[1-9][0-9]{0,14})$/.test(sizeText)) return undefined;
    objects.push({ key: text(key), etag: normalizeEtag(text(etag)), size: Number(sizeText), lastModified });
    pos = end + '</Contents>'.length;
  }
  outside += x.slice(pos, rootEnd);
  // Every <Contents> opened was read, and the top-level fields are read outside them only. One
  // spelled otherwise (`<Contents/>`, a tab before the `>`) is an object to the SDK: never dropped.
  if (blocks !== objects.length || outside.includes('</Contents>') || outside.includes('<Contents')) return undefined;
  const truncated = field(outside, 'IsTruncated', 0, outside.length);
  if (truncated === undefined || (text(truncated) !== 'true' && text(truncated) !== 'false')) return undefined;
  const token = field(outside, 'NextContinuationToken', 0, outside.length);
  if (token === undefined && outside.includes('<NextContinuationToken')) return undefined;
  // The server's own count, when it sends one, must agree (it also counts common prefixes).
  const keyCount = field(outside, 'KeyCount', 0, outside.length);
  if (keyCount !== undefined && !outside.includes('<CommonPrefixes') && Number(text(keyCount)) !== objects.length) return undefined;
  return { objects, isTruncated: text(truncated) === 'true', nextToken: token === undefined ? undefined : text(token) };
}
