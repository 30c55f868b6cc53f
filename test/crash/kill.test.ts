// The real CLI killed (SIGKILL) or stopped (SIGINT) at many points of many runs, in two-way and
// one-way modes, against the default in-process server; after each, a clean rerun must converge:
// both sides equal to the model of the user's edits, no temp file anywhere, the manifest
// describing both sides, the journal empty. Right after each kill, no user path may hold a partial
// file. Seeded: STORAGE_SYNC_KILL_POINTS (default 24) rounds, STORAGE_SYNC_KILL_SEED (default 7).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startS3Server } from '../support/s3-server.js';
import { makeProject, spawnCli } from '../support/harness.js';
import { Manifest, profilePaths } from '../../src/manifest/manifest.js';
import { Bucket, MiB, checkConverged, checkNoPartial, keyOf, killAt, localFiles, md5, remoteFiles, rng, tempsUnder, type KillPoint } from './world.js';

const ROUNDS = Number(process.env.STORAGE_SYNC_KILL_POINTS ?? 24);
const SEED = Number(process.env.STORAGE_SYNC_KILL_SEED ?? 7);

type Mode = 'two-way' | 'upload' | 'download';
const MODE_ARGS: Record<Mode, string[]> = { 'two-way': [], upload: ['--upload-only', '--delete'], download: ['--download-only', '--delete'] };

test(`SIGKILL/SIGINT at ${ROUNDS} points (seed ${SEED}): every rerun converges, nothing lost, nothing partial`, { timeout: 600_000 }, async (t) => {
  const s3 = await startS3Server();
  const b = new Bucket(s3.env);
  const p = makeProject();
  const r = rng(SEED);
  const block = Buffer.alloc(MiB);
  for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((r() * 4294967296) >>> 0, i);
  let version = 0;
  const body = (size: number): Buffer => {
    const head = Buffer.from(`v${++version}:`);
    const parts = [head];
    for (let left = size; left > 0; left -= MiB) {
      const off = Math.floor(r() * 1000);
      parts.push(block.subarray(off, off + Math.min(left, MiB - 1000)));
    }
    return Buffer.concat(parts);
  };
  const smallSize = (): number => (r() < 0.1 ? 100_000 + Math.floor(r() * 400_000) : Math.floor(r() * 40_000));
  const folders = ['media', 'media/photos', 'media/docs/2026', 'staticfiles/css', 'staticfiles/js'];
  let serial = 0;
  const newPath = (): string => `${folders[Math.floor(r() * folders.length)]}/f${String(serial++).padStart(4, '0')} ${serial % 3 === 0 ? 'é' : 'x'}.bin`;
  const BIG = ['media/big/a.bin', 'media/big/b.bin', 'staticfiles/big/c.bin'];

  // The model: what both sides hold once a sync has converged.
  const model = new Map<string, string>();
  const remote = new Map<string, string>();
  const writeLocal = (f: string, data: Buffer): void => p.write(f, data, { ageMs: 2000 });
  const putRemote = async (f: string, data: Buffer): Promise<void> => {
    await b.put(keyOf(f), data);
    remote.set(f, md5(data));
  };
  const delRemote = async (f: string): Promise<void> => {
    await b.del(keyOf(f));
    remote.delete(f);
  };

  try {
    fs.writeFileSync(path.join(p.root, 'storage-sync.config.json'), JSON.stringify({ multipartThreshold: 5 * MiB, partSize: 5 * MiB }));
    // Round 0's world: 240 local files, 80 remote ones, 3 over the multipart threshold.
    for (let i = 0; i < 240; i++) writeLocal(newPath(), body(smallSize()));
    for (const f of BIG) writeLocal(f, body(5 * MiB + 100_000 + Math.floor(r() * 500_000)));
    for (let i = 0; i < 80; i++) await putRemote(newPath(), body(smallSize()));
    const localStart = localFiles(p);
    for (const [f, sum] of localStart) model.set(f, sum);
    for (const [f, sum] of remote) model.set(f, sum);

    const kinds: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const mode: Mode = round % 6 === 4 ? 'upload' : round % 6 === 5 ? 'download' : 'two-way';
      if (round > 0) await edit(mode);
      const point: KillPoint =
        round === 1 ? { at: 'scan-local' } : round === 2 ? { at: 'scan-remote' } : round % 4 === 3 ? { at: 'first-delete' } : { at: 'files', fraction: (round + r()) / ROUNDS };
      const signal: NodeJS.Signals = round % 5 === 4 ? 'SIGINT' : 'SIGKILL';
      const label = `round ${round} (${mode}, ${signal} at ${point.at}${point.at === 'files' ? ` ${point.fraction.toFixed(2)}` : ''})`;
      const before = { local: localFiles(p), remote: new Map(remote) };
      const t0 = Date.now();
      // Once, a second run is started while the first is frozen holding the lock: refused with
      // exit 3, naming the holder; the frozen one is then killed and its stale lock taken over.
      const lockCheck = round === 2
        ? async (child: import('node:child_process').ChildProcess): Promise<void> => {
            child.kill('SIGSTOP');
            const second = await spawnCli(['sync', '--json'], { cwd: p.root, env: s3.env });
            assert.equal(second.code, 3, `${label}: a second run while the lock is held`);
            assert.match(second.stdout + second.stderr, new RegExp(`pid ${child.pid}`));
          }
        : undefined;
      const killed = await killAt(['sync', '--json', '--concurrency', '4', ...MODE_ARGS[mode]], p.root, s3.env, point, signal, lockCheck);
      kinds.push(`${label}: ${killed.sent ? `stopped after ${killed.files}/${killed.items} file events` : 'finished first'}; ${Date.now() - t0} ms`);
      if (signal === 'SIGINT' && killed.sent) {
        assert.ok(killed.result.code === 130 || killed.result.code === 0, `${label}: exit ${killed.result.code} ${killed.result.stderr}`);
        if (killed.result.code === 130) assert.deepEqual(tempsUnder(p.root), [], `${label}: a SIGINT leaves no temp file`);
      }
      checkNoPartial(p, before, label);
      const left = { temps: tempsUnder(p.root).length, records: journalRecords(p.root) };

      const again = await spawnCli(['sync', '--json', ...MODE_ARGS[mode]], { cwd: p.root, env: s3.env });
      const said = (re: RegExp): number => again.events.filter((e) => e['event'] === 'warning' && re.test(String(e['message']))).length;
      kinds[kinds.length - 1] += `; left ${left.records} journal records, ${left.temps} temp files; the rerun recorded ${said(/uploaded by the interrupted run/)} finished uploads, ` +
        `finished ${said(/download finished/)} downloads from their temp files, found ${said(/torn object/)} torn objects`;
      assert.equal(again.code, 0, `${label}: rerun exit ${again.code}: ${again.stderr}${again.stdout.slice(-2000)}`);
      assert.equal(again.summary?.['conflicts'], 0, `${label}: the rerun saw a conflict`);
      if (mode === 'upload') {
        // Upload-only never changes the local side: it is the model.
        model.clear();
        for (const [f, sum] of before.local) model.set(f, sum);
      } else if (mode === 'download') {
        model.clear();
        for (const [f, sum] of before.remote) model.set(f, sum);
      }
      await checkConverged(p, b, model, true, label);
      remote.clear();
      for (const [f, v] of await remoteFiles(b, true)) remote.set(f, v.md5);
    }
    t.diagnostic(kinds.join('\n'));
  } finally {
    b.close();
    await s3.stop();
    p.cleanup();
  }

  /** One round of user edits, on the sides the mode syncs from; disjoint paths, so no conflict. */
  async function edit(mode: Mode): Promise<void> {
    const paths = [...model.keys()].filter((f) => !BIG.includes(f));
    const n = 6 + Math.floor(r() * 24);
    const touched = new Set<string>();
    const pick = (): string | undefined => {
      for (let tries = 0; tries < 20; tries++) {
        const f = paths[Math.floor(r() * paths.length)]!;
        if (!touched.has(f)) {
          touched.add(f);
          return f;
        }
      }
      return undefined;
    };
    const localSide = mode !== 'download';
    const remoteSide = mode !== 'upload';
    let deletes = 0;
    for (let i = 0; i < n; i++) {
      const f = pick();
      if (!f) continue;
      const op = r();
      const del = op < 0.2 && deletes++ < 4;
      const onLocal = localSide && (!remoteSide || r() < 0.5);
      if (onLocal) {
        if (del) p.remove(f);
        else writeLocal(f, body(smallSize()));
        if (del) model.delete(f);
        else model.set(f, md5(fs.readFileSync(path.join(p.root, f))));
      } else {
        if (del) await delRemote(f);
        else await putRemote(f, body(smallSize()));
        if (del) model.delete(f);
        else model.set(f, remote.get(f)!);
      }
    }
    for (let i = 0; i < 3; i++) {
      const f = newPath();
      if (localSide && (!remoteSide || i % 2 === 0)) {
        writeLocal(f, body(smallSize()));
        model.set(f, md5(fs.readFileSync(path.join(p.root, f))));
      } else {
        await putRemote(f, body(smallSize()));
        model.set(f, remote.get(f)!);
      }
    }
    // One file over the multipart threshold changes every round, so kills land inside multipart
    // uploads too (and large downloads).
    const big = BIG[Math.floor(r() * BIG.length)]!;
    const data = body(5 * MiB + 100_000 + Math.floor(r() * 500_000));
    if (localSide) writeLocal(big, data);
    else await putRemote(big, data);
    model.set(big, md5(data));
  }
});

function journalRecords(root: string): number {
  const file = profilePaths(path.join(root, 'manifests'), 'default').manifest;
  if (!fs.existsSync(file)) return 0;
  const m = Manifest.open(file, { readOnly: true });
  try {
    return m.journal?.count() ?? 0;
  } finally {
    void m.close();
  }
}
