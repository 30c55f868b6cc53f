// `diff PATH`: a unified diff (remote → local) for text up to 1 MiB on both sides, fetched into
// memory; for anything else, the two sides' size, MD5/ETag and times side by side.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { createTwoFilesPatch } from 'diff';
import type { PathState } from '../core/types.js';
import type { S3Store } from '../remote/s3-store.js';
import { formatBytes } from '../render/format.js';
import type { Paint } from './paint.js';

export const TEXT_LIMIT = 1024 * 1024;

export interface DiffDeps {
  root: string;
  state: PathState;
  store: S3Store;
  signal: AbortSignal;
  paint: Paint;
  say: (line: string) => void;
  /** Most diff lines printed. */
  limit: number;
}

interface Side {
  size: number;
  md5?: string;
  etag?: string;
  time?: string;
  bytes?: Buffer;
}

export async function diffCommand(d: DiffDeps): Promise<void> {
  const { state, paint, say } = d;
  const abs = path.join(d.root, state.path);
  const local = await readLocal(abs, state.local?.md5);
  const remote = state.remote ? await readRemote(d) : undefined;
  if (local?.bytes && remote?.bytes && local.bytes.equals(remote.bytes)) {
    say(paint.green(`same content on both sides (${formatBytes(local.size)})`));
    return;
  }
  const lt = local?.bytes && asText(local.bytes);
  const rt = remote?.bytes && asText(remote.bytes);
  if (lt !== undefined && rt !== undefined && lt !== false && rt !== false) {
    const patch = createTwoFilesPatch(`remote/${state.key}`, `local/${state.path}`, rt, lt, remote?.time, local?.time, { context: 3, timeout: 3000 });
    if (patch !== undefined) {
      const lines = patch.split('\n').filter((l) => !l.startsWith('====='));
      while (lines.length && lines[lines.length - 1] === '') lines.pop();
      for (const l of lines.slice(0, d.limit)) say(colour(visible(l), paint));
      if (lines.length > d.limit) say(paint.yellow(`… ${lines.length - d.limit} more lines (diff PATH --limit N|all)`));
      return;
    }
  }
  const why = !local ? 'only the remote object exists' : !remote ? 'only the local file exists' : local.size > TEXT_LIMIT || remote.size > TEXT_LIMIT ? 'larger than 1 MiB' : lt === false || rt === false ? 'not text' : 'too different to diff quickly';
  say(paint.dim(`(${why}: comparing metadata)`));
  const md5 = local && !local.md5 ? await md5File(abs, d.signal) : local?.md5;
  const rows: [string, string, string][] = [
    ['', 'local', 'remote'],
    ['size', local ? `${formatBytes(local.size)} (${local.size} B)` : 'absent', remote ? `${formatBytes(remote.size)} (${remote.size} B)` : 'absent'],
    ['MD5 / ETag', local ? `MD5 ${md5 ?? '?'}` : '-', remote ? `ETag ${remote.etag}${remote.md5 ? ` (MD5 ${remote.md5})` : ''}` : '-'],
    ['modified', local?.time ?? '-', remote?.time ?? '-'],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  for (const [a, b, c] of rows) say(`  ${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`);
  const plainEtag = remote?.etag && /^[0-9a-f]{32}$/.test(remote.etag) ? remote.etag : remote?.md5;
  if (md5 && plainEtag) say(md5 === plainEtag ? paint.green('  same content (MD5 matches)') : paint.yellow('  different content (MD5 differs)'));
}

async function readLocal(abs: string, knownMd5: string | undefined): Promise<Side | undefined> {
  const st = await fs.promises.lstat(abs).catch(() => undefined);
  if (!st?.isFile()) return undefined;
  const side: Side = { size: st.size, time: st.mtime.toISOString() };
  if (st.size <= TEXT_LIMIT) {
    side.bytes = await fs.promises.readFile(abs);
    side.md5 = crypto.createHash('md5').update(side.bytes).digest('hex');
  } else if (knownMd5) side.md5 = knownMd5;
  return side;
}

async function readRemote(d: DiffDeps): Promise<Side | undefined> {
  const r = d.state.remote!;
  const side: Side = { size: r.size, etag: r.etag, time: new Date(r.lastModified).toISOString(), ...(r.md5 ? { md5: r.md5 } : {}) };
  if (r.size > TEXT_LIMIT) return side;
  const got = await d.store.get(d.state.key, { signal: d.signal });
  const bytes = await readCapped(got.body, TEXT_LIMIT);
  // The object may have changed since the scan: show what is there now.
  side.etag = got.etag;
  side.size = bytes?.length ?? got.size;
  side.time = new Date(got.lastModified).toISOString();
  if (bytes) side.bytes = bytes;
  return side;
}

async function readCapped(body: Readable, max: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += (c as Buffer).length;
    if (n > max) {
      body.destroy();
      return undefined;
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** UTF-8 without NUL bytes counts as text; false otherwise. */
function asText(b: Buffer): string | false {
  if (b.includes(0)) return false;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch {
    return false;
  }
}

/**
 * Control characters of a file (ESC above all) are shown, not sent: an object in the bucket must
 * not be able to drive the user's terminal (retitle it, write the clipboard, hide lines).
 */
function visible(line: string): string {
  // eslint-disable-next-line no-control-regex
  return line.replace(/[\x00-\x08\x0b-\x1f\x7f\x9b]/g, (c) => (c === '\x7f' ? '^?' : c === '\x9b' ? '\\x9b' : '^' + String.fromCharCode(c.charCodeAt(0) + 64)));
}

function colour(line: string, paint: Paint): string {
  if (line.startsWith('+++') || line.startsWith('---')) return paint.bold(line);
  if (line.startsWith('+')) return paint.green(line);
  if (line.startsWith('-')) return paint.red(line);
  if (line.startsWith('@@')) return paint.cyan(line);
  return line;
}

async function md5File(abs: string, signal: AbortSignal): Promise<string | undefined> {
  const h = crypto.createHash('md5');
  try {
    for await (const c of fs.createReadStream(abs, { signal })) h.update(c as Buffer);
    return h.digest('hex');
  } catch {
    return undefined;
  }
}
