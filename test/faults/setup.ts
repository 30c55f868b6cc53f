// One S3 server and one fault proxy in front of it per test file; a fresh project per test.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, beforeEach } from 'node:test';
import { startS3Server, type TestS3 } from '../support/s3-server.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { filesUnder, makeProject, md5, runCli, type CliResult, type Project } from '../support/harness.js';
import { Manifest, profilePaths } from '../../src/manifest/manifest.js';

// A stalled socket is given up after a second instead of two minutes (read by src/remote/client.ts).
process.env.STORAGE_SYNC_SOCKET_TIMEOUT_MS = '1000';

export interface Ctx {
  s3: TestS3;
  proxy: FaultProxy;
  p: Project;
}

export function useFaultFixture(): Ctx {
  const ctx = {} as Ctx;
  const projects: Project[] = [];
  before(async () => {
    ctx.s3 = await startS3Server();
    ctx.proxy = await startFaultProxy(ctx.s3.endpoint, { seed: 7 });
  });
  after(async () => {
    for (const p of projects) p.cleanup();
    await ctx.proxy.stop();
    await ctx.s3.stop();
  });
  beforeEach(async () => {
    ctx.proxy.set([]);
    await ctx.s3.reset();
    ctx.p = makeProject();
    projects.push(ctx.p);
  });
  return ctx;
}

/** A sync through the proxy, with the faults as set (always the proxy: the manifest binds the endpoint). */
export function sync(ctx: Ctx, opts: { args?: string[]; p?: Project } = {}): Promise<CliResult> {
  const env = ctx.proxy.env(ctx.s3.env);
  return runCli(['sync', '--json', ...(opts.args ?? [])], { cwd: (opts.p ?? ctx.p).root, env });
}

export function fileEvents(r: CliResult, status?: string): Record<string, unknown>[] {
  return r.events.filter((e) => e['event'] === 'file' && (status === undefined || e['status'] === status));
}

/** Both sides hold the same files with the same bytes (default mappings: staticfiles/ ↔ static/, media/ ↔ media/). */
export async function assertConverged(ctx: Ctx, p: Project = ctx.p): Promise<void> {
  const local = p.files();
  const remote: Record<string, string> = {};
  for (const o of await ctx.s3.listAll()) remote[o.key.replace(/^static\//, 'staticfiles/')] = md5(await ctx.s3.getBuffer(o.key));
  assert.deepEqual(local, remote);
}

export function tempsUnder(root: string): string[] {
  return Object.keys(filesUnder(root)).filter((f) => /\.ssync-.*\.tmp$/.test(f));
}

/** The paths the manifest tracks, with the ETag it recorded. */
export function tracked(p: Project): Record<string, string> {
  const file = profilePaths(path.join(p.root, 'manifests'), 'default').manifest;
  if (!fs.existsSync(file)) return {};
  const m = Manifest.open(file, { readOnly: true });
  const out: Record<string, string> = {};
  for (const [k, e] of m.all()) out[k] = e.remote.etag;
  void m.close();
  return out;
}
