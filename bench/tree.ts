// The benchmark's trees and the changes applied to them, all reproducible from a seed, and the
// expected content (path -> size + MD5) that every tool's result is checked against.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** xorshift32: the same numbers for the same seed on every machine. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

/** A seed per (base seed, label): the same change is chosen for every tool. */
export function subSeed(seed: number, label: string): number {
  return createHash('md5').update(`${seed}:${label}`).digest().readUInt32LE(0) || 1;
}

export interface Entry {
  size: number;
  md5: string;
}
/** Relative path (POSIX) -> expected content. */
export type Expected = Map<string, Entry>;

export interface TreeSpec {
  name: 'A' | 'B';
  /** Tree A: number of files. */
  files: number;
  /** Tree B: total bytes. */
  bytes: number;
  seed: number;
}

const BLOCK = 4 * 1024 * 1024;

function randomBlock(r: () => number): Buffer {
  const block = Buffer.alloc(BLOCK);
  for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((r() * 4294967296) >>> 0, i);
  return block;
}

/** Tree A: sizes exponential around 8 KiB (capped at 256 KiB), 20 files a folder, two levels deep. */
function smallSize(r: () => number): number {
  return Math.min(256 * 1024, Math.floor(-Math.log(1 - r()) * 8192));
}

/**
 * Tree B: sizes log-uniform from 5 MB to 200 MB; a small tree (--quick, tests) keeps at least
 * about four files by lowering the top to a quarter of the total.
 */
function largeSize(r: () => number, total: number): number {
  const top = Math.min(200e6, Math.max(10e6, total / 4));
  return Math.floor(5e6 * Math.exp(r() * Math.log(top / 5e6)));
}

function smallPath(i: number): string {
  const folder = Math.floor(i / 20);
  return `s${String(folder % 64).padStart(2, '0')}/d${String(folder).padStart(5, '0')}/f${i}.bin`;
}

/**
 * Writes one file's content: a label, then slices of the random block at offsets drawn from `r`;
 * every 1 MiB chunk starts with its own label so no two files (or chunks) share content.
 */
function writeContent(abs: string, label: string, size: number, block: Buffer, r: () => number): Entry {
  const md5 = createHash('md5');
  const fd = fs.openSync(abs, 'w');
  try {
    let written = 0;
    let chunk = 0;
    while (written < size) {
      const n = Math.min(1024 * 1024, size - written);
      const head = Buffer.from(`${label}#${chunk++}:`);
      const off = Math.floor(r() * (BLOCK - n));
      const buf = Buffer.concat([head, block.subarray(off, off + n)]).subarray(0, n);
      fs.writeSync(fd, buf);
      md5.update(buf);
      written += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return { size, md5: md5.digest('hex') };
}

/** Generates the tree under `dir` (created) and returns its expected content. */
export function generate(dir: string, spec: TreeSpec, progress: (done: number, total: number) => void): Expected {
  const r = rng(subSeed(spec.seed, `tree-${spec.name}`));
  const block = randomBlock(r);
  const out: Expected = new Map();
  fs.mkdirSync(dir, { recursive: true });
  if (spec.name === 'A') {
    for (let i = 0; i < spec.files; i++) {
      const rel = smallPath(i);
      if (i % 20 === 0) fs.mkdirSync(path.join(dir, path.dirname(rel)), { recursive: true });
      // At least the label's bytes: a zero-byte file is a legal but separate case, not this tree's.
      out.set(rel, writeContent(path.join(dir, rel), `A${i}`, Math.max(8, smallSize(r)), block, r));
      if (i % 5000 === 4999) progress(i + 1, spec.files);
    }
  } else {
    let total = 0;
    for (let i = 0; total < spec.bytes; i++) {
      const size = Math.min(largeSize(r, spec.bytes), Math.max(5e6, spec.bytes - total));
      const rel = `media/v${String(i % 4)}/clip${String(i).padStart(4, '0')}.mp4`;
      fs.mkdirSync(path.join(dir, path.dirname(rel)), { recursive: true });
      out.set(rel, writeContent(path.join(dir, rel), `B${i}`, size, block, r));
      total += size;
      progress(total, spec.bytes);
    }
  }
  // Files as they would be after a while: an mtime an hour back, with nanoseconds.
  const base = Date.now() / 1000 - 3600;
  let k = 0;
  for (const rel of out.keys()) {
    const t = base + (k++ % 1000) / 1000 + 0.000123;
    fs.utimesSync(path.join(dir, rel), t, t);
  }
  return out;
}

export type Change = 'touch' | 'modify' | 'add-delete';

/** What a change did: for the record and to check the tool's transfer counts against. */
export interface Applied {
  touched: number;
  modified: number;
  added: number;
  deleted: number;
}

function pick(keys: string[], count: number, r: () => number): string[] {
  const a = [...keys];
  const n = Math.min(count, a.length);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(r() * (a.length - i));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a.slice(0, n);
}

function md5File(abs: string): string {
  const h = createHash('md5');
  const fd = fs.openSync(abs, 'r');
  try {
    const buf = Buffer.alloc(1024 * 1024);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/**
 * Applies a seeded change to the tree under `dir` and to `expected` (the same files are chosen for
 * every tool, because the choice depends only on the seed, the label and the sorted expected paths):
 * - touch: 10% of files get a new mtime (now), content unchanged;
 * - modify: 1% of files get a few bytes flipped in place (same size, new mtime);
 * - add-delete: 1% deleted, as many new files added (sizes from the tree's distribution).
 */
export function applyChange(dir: string, expected: Expected, tree: 'A' | 'B', change: Change, seed: number, label: string): Applied {
  const r = rng(subSeed(seed, `${change}-${label}`));
  const keys = [...expected.keys()].sort();
  const applied: Applied = { touched: 0, modified: 0, added: 0, deleted: 0 };
  const count = (frac: number): number => Math.max(1, Math.round(keys.length * frac));
  if (change === 'touch') {
    const now = Date.now() / 1000;
    for (const rel of pick(keys, count(0.1), r)) {
      fs.utimesSync(path.join(dir, rel), now, now);
      applied.touched++;
    }
  } else if (change === 'modify') {
    for (const rel of pick(keys, count(0.01), r)) {
      const abs = path.join(dir, rel);
      const size = expected.get(rel)!.size;
      const n = Math.min(16, size);
      const off = Math.floor(r() * (size - n + 1));
      const fd = fs.openSync(abs, 'r+');
      try {
        const buf = Buffer.alloc(n);
        fs.readSync(fd, buf, 0, n, off);
        // XOR with a non-zero byte: the content is certain to differ, the size stays.
        for (let i = 0; i < n; i++) buf[i] = buf[i]! ^ (1 + Math.floor(r() * 255));
        fs.writeSync(fd, buf, 0, n, off);
      } finally {
        fs.closeSync(fd);
      }
      expected.set(rel, { size, md5: md5File(abs) });
      applied.modified++;
    }
  } else {
    const n = count(0.01);
    for (const rel of pick(keys, n, r)) {
      fs.rmSync(path.join(dir, rel));
      expected.delete(rel);
      applied.deleted++;
    }
    const block = randomBlock(r);
    for (let i = 0; i < n; i++) {
      const rel = tree === 'A' ? `s00/new-${label}/n${i}.bin` : `media/new-${label}/clip${i}.mp4`;
      fs.mkdirSync(path.join(dir, path.dirname(rel)), { recursive: true });
      const size = tree === 'A' ? Math.max(8, smallSize(r)) : largeSize(r, totalBytes(expected));
      expected.set(rel, writeContent(path.join(dir, rel), `${tree}-${label}-${i}`, size, block, r));
      applied.added++;
    }
  }
  return applied;
}

export function totalBytes(expected: Expected): number {
  let n = 0;
  for (const e of expected.values()) n += e.size;
  return n;
}
