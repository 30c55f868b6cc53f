// Scale check without S3 transfers: a manifest of N entries in LMDB, a local listing and a remote
// listing of the same N paths (synthetic, as the scan and ListObjectsV2 would hand them over),
// joined into path states and planned by the pure planner. Each size is planned in a fresh
// process so that its peak RSS is its own.
//   node dist/bench/scale.js build DIR N     grow the manifest in DIR to N entries
//   node dist/bench/scale.js plan DIR N      plan N unchanged paths; prints one JSON line
import path from 'node:path';
import { Manifest, type StoredEntry } from '../src/manifest/manifest.js';
import { buildPlan } from '../src/core/plan.js';
import type { ListedObject } from '../src/remote/s3-store.js';
import type { LocalFile } from '../src/core/types.js';
import { joinMapping, Shortcut, type Gathered } from '../src/engine/gather.js';
import { CAP_FROM, capHeapGrowth } from '../src/engine/heap-growth.js';

const FOLDER = 'media';
const BASE_MTIME_NS = 1_700_000_000_000_000_000n;

function rel(i: number): string {
  const folder = Math.floor(i / 20);
  return `s${String(folder % 64).padStart(2, '0')}/d${String(folder).padStart(6, '0')}/f${i}.bin`;
}
const md5Of = (i: number): string => (i.toString(16).padStart(8, '0') + 'c0ffee00').repeat(2);
const sizeOf = (i: number): number => 1000 + ((i * 7919) % 20000);
const mtimeOf = (i: number): string => (BASE_MTIME_NS + BigInt(i) * 1_000_000n).toString();
const inoOf = (i: number): number => 1_000_000 + i;

function entry(i: number): StoredEntry {
  const md5 = md5Of(i);
  return {
    key: `${FOLDER}/${rel(i)}`,
    local: { size: sizeOf(i), mtimeNs: mtimeOf(i), ino: inoOf(i), md5, xxh64: md5.slice(0, 16) },
    remote: { etag: md5, size: sizeOf(i), lastModified: 1_700_000_000_000, md5 },
    // Recorded well after the mtime: not racy, so the stat alone decides.
    recordedAtNs: (BASE_MTIME_NS + 10n ** 13n).toString(),
  };
}

async function build(dir: string, n: number): Promise<void> {
  const m = Manifest.open(path.join(dir, 'manifest.lmdb'), { readOnly: false });
  const have = m.count();
  for (let i = have; i < n; i++) {
    m.put(`${FOLDER}/${rel(i)}`, entry(i));
    if (i % 50_000 === 49_999) await m.flush();
  }
  await m.close();
}

async function plan(dir: string, n: number): Promise<void> {
  const t0 = process.hrtime.bigint();
  // As a sync run does (engine/gather.ts): the walk's records first, then the listing, whose
  // objects are checked against the walk and the manifest as they arrive (Shortcut) and kept only
  // if they need a decision; then the join. Every path here is unchanged on both sides.
  if (n >= CAP_FROM) capHeapGrowth();
  const mapping = { local: FOLDER, remote: `${FOLDER}/` };
  const m = Manifest.open(path.join(dir, 'manifest.lmdb'), { readOnly: true });
  const local = new Map<string, LocalFile>();
  for (let i = 0; i < n; i++) local.set(rel(i), { size: sizeOf(i), mtimeNs: mtimeOf(i), ino: inoOf(i) });
  const shortcut = new Shortcut(mapping, m);
  shortcut.walked(local);
  const remote: ListedObject[] = [];
  for (let i = 0; i < n; i++) {
    const o: ListedObject = { key: `${FOLDER}/${rel(i)}`, etag: md5Of(i), size: sizeOf(i), lastModified: 1_700_000_000_000 };
    if (shortcut.keep(o)) remote.push(o);
  }
  const t1 = process.hrtime.bigint();
  const g: Gathered = { states: [], problems: [], tracked: [], unchanged: [], localCount: [], remoteCount: [], hashed: 0, temps: [] };
  joinMapping(mapping, 0, local, remote, m, () => true, g, true, shortcut);
  const t2 = process.hrtime.bigint();
  const p = buildPlan(g.states, { mode: 'two-way', conflict: 'remote', delete: false, now: new Date() });
  const t3 = process.hrtime.bigint();
  await m.close();
  const tracked = g.tracked[0];
  const unchanged = g.unchanged[0]! + p.items.filter((it) => it.action === 'nothing').length;
  if (tracked !== n || unchanged !== n) throw new Error(`scale: ${n} paths, ${tracked} in the manifest, ${unchanged} planned unchanged`);
  const ms = (a: bigint, b: bigint): number => Number(b - a) / 1e6;
  process.stdout.write(
    JSON.stringify({
      n,
      listingsMs: ms(t0, t1),
      joinMs: ms(t1, t2),
      planMs: ms(t2, t3),
      totalMs: ms(t0, t3),
      peakRssMB: process.resourceUsage().maxRSS / 1024,
      heapUsedMB: process.memoryUsage().heapUsed / 1048576,
    }) + '\n',
  );
}

const [cmd, dir, count] = process.argv.slice(2);
const n = Number(count);
if (!dir || !Number.isInteger(n) || n < 1 || (cmd !== 'build' && cmd !== 'plan')) {
  process.stderr.write('usage: scale.js build|plan DIR N\n');
  process.exit(2);
}
await (cmd === 'build' ? build(dir, n) : plan(dir, n));
