// `manifest ls [GLOB] | show PATH | export`: read-only views of the base.
// `manifest verify [--deep]` and `manifest rebuild [--force]`: the base against both sides.
import picomatch from 'picomatch';
import { InterruptedError, UsageError } from '../core/errors.js';
import { Manifest, profilePaths } from '../manifest/manifest.js';
import type { Settings } from '../engine/settings.js';
import { EventStream } from '../engine/events.js';
import { isConsistent, verifyManifest, type VerifyProblem } from '../engine/verify.js';
import { rebuildManifest } from '../engine/rebuild.js';
import { Hasher } from '../local/hasher.js';
import { S3Store } from '../remote/s3-store.js';
import type { Credentials } from '../credentials/source.js';
import { formatBytes } from '../render/format.js';
import type { CliIO } from './main.js';
import { REMOTE_ACTIONS } from './parse.js';

/** The actions that look at the bucket, and so need credentials. */

export interface ManifestOptions {
  credentials?: Credentials;
  json?: boolean;
  deep?: boolean;
  redact?: (s: string) => string;
}

export async function manifestCommand(s: Settings, action: string, arg: string | undefined, io: CliIO, opts: ManifestOptions = {}): Promise<number> {
  if (REMOTE_ACTIONS.has(action)) {
    if (arg !== undefined) throw new UsageError(`manifest ${action} takes no PATH (use --include to narrow it)`);
    if (!opts.credentials) throw new UsageError(`manifest ${action} needs credentials`);
    return remoteAction(s, action, io, { ...opts, credentials: opts.credentials });
  }
  const manifest = Manifest.open(profilePaths(s.manifestDir, s.profile).manifest, { readOnly: true });
  try {
    switch (action) {
      case 'ls': {
        const match = arg ? picomatch(arg, { dot: true }) : () => true;
        for (const [p, e] of manifest.all()) {
          if (match(p)) io.stdout.write(`${formatBytes(e.local.size).padStart(10)}  ${e.local.md5}  ${p}\n`);
        }
        return 0;
      }
      case 'show': {
        if (!arg) throw new UsageError('manifest show needs a PATH');
        const e = manifest.get(arg);
        if (!e) throw new UsageError(`manifest show: ${arg} is not tracked`);
        io.stdout.write(JSON.stringify({ path: arg, ...e }, null, 2) + '\n');
        return 0;
      }
      case 'export':
        for (const [p, e] of manifest.all()) io.stdout.write(JSON.stringify({ path: p, ...e }) + '\n');
        return 0;
      default:
        throw new UsageError(`unknown manifest action "${action}"`);
    }
  } finally {
    await manifest.close();
  }
}

async function remoteAction(s: Settings, action: string, io: CliIO, opts: ManifestOptions & { credentials: Credentials }): Promise<number> {
  const c = opts.credentials;
  const redact = opts.redact ?? ((t: string) => t);
  const json = opts.json === true;
  const out = (line: string): void => {
    io.stdout.write(redact(line) + '\n');
  };
  const event = (e: Record<string, unknown>): void => out(JSON.stringify(e));
  const store = new S3Store({
    endpoint: c.endpoint, bucket: c.bucket, accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey,
    region: c.region, forcePathStyle: c.forcePathStyle, concurrency: s.concurrency,
    multipartThreshold: s.multipartThreshold, partSize: s.partSize,
  });
  const hasher = new Hasher();
  const identity = { endpoint: c.endpoint, bucket: c.bucket };
  const started = Date.now();
  try {
    await store.checkBucket();
    if (action === 'verify') {
      const r = await verifyManifest({ settings: s, store, identity, hasher, signal: io.signal, deep: opts.deep === true });
      const count = (k: VerifyProblem['kind']): number => r.problems.filter((p) => p.kind === k).length;
      const summary = {
        command: 'manifest verify', manifest: r.manifest, exists: r.exists, deep: opts.deep === true, entries: r.entries, checked: r.checked,
        hashed: r.hashed, inconsistent: count('inconsistent'), failed: count('failed'), pending: count('pending'),
        untrackedLocal: r.untrackedLocal, untrackedRemote: r.untrackedRemote, durationMs: Date.now() - started,
      };
      const consistent = isConsistent(r);
      if (json) {
        for (const p of r.problems) event({ event: 'verify', ...p });
        event({ event: 'summary', ...summary, consistent });
      } else {
        for (const p of r.problems) out(`${p.kind.padEnd(12)} ${p.path ?? p.key ?? '(manifest)'}: ${p.message} [${p.problem}]`);
        if (!r.exists) out(`no manifest at ${r.manifest}: nothing to verify (the next sync is a first run; \`manifest rebuild\` recreates it)`);
        else {
          out(
            `verified ${r.checked} of ${r.entries} entries${summary.deep ? `, ${r.hashed} files rehashed` : ''}: ` +
              `${summary.inconsistent} inconsistent, ${summary.failed} not checked, ${summary.pending} pending; ` +
              `not tracked yet: ${r.untrackedLocal} local, ${r.untrackedRemote} remote`,
          );
          const pending = summary.pending > 0 ? ` (${summary.pending} pending change${summary.pending === 1 ? '' : 's'} for the next sync)` : '';
          out(consistent ? `manifest is consistent with both sides${pending}` : 'manifest is NOT consistent: fix the cause, or run `storage-sync manifest rebuild`');
        }
      }
      return consistent ? 0 : 1;
    }

    const events = new EventStream();
    events.on((e) => {
      if (e.event !== 'warning') return;
      if (json) event({ ...e });
      else io.stderr.write(redact(`warning: ${e.path ?? e.key ?? ''}: ${e.message}`) + '\n');
    });
    const r = await rebuildManifest({ settings: s, store, identity, hasher, events, signal: io.signal });
    const summary = {
      command: 'manifest rebuild', dryRun: r.dryRun, manifest: r.manifest, ...(r.oldManifest ? { oldManifest: r.oldManifest } : {}),
      recorded: r.counts.recorded, differing: r.counts.differs, localOnly: r.counts['local-only'], remoteOnly: r.counts['remote-only'],
      failed: r.failed.length, hashed: r.hashed, ...(r.carried ? { carried: r.carried } : {}), generation: r.generation, durationMs: Date.now() - started,
    };
    if (json) {
      for (const p of r.paths) event({ event: 'rebuild', ...p });
      for (const f of r.failed) event({ event: 'file', ...(f.path ? { path: f.path } : {}), key: f.key, action: 'invalid', status: 'failed', bytes: 0, error: f.error });
      event({ event: 'summary', ...summary });
    } else {
      for (const f of r.failed) out(`failed       ${f.path ?? f.key}: ${f.error}`);
      const differing = r.paths.filter((p) => p.outcome === 'differs');
      for (const p of differing.slice(0, SHOW)) out(`differs      ${p.path}`);
      if (differing.length > SHOW) out(`             … and ${differing.length - SHOW} more`);
      out(
        `${r.dryRun ? 'would rebuild' : 'rebuilt'} ${r.manifest}: ${summary.recorded} recorded (same content on both sides), ` +
          `${summary.differing} differing, ${summary.localOnly} local-only, ${summary.remoteOnly} remote-only` +
          `${summary.failed ? `, ${summary.failed} failed` : ''}; ${r.hashed} files hashed`,
      );
      if (summary.differing > 0) out(`the next two-way sync treats differing paths as conflicts (--conflict ${s.conflict}; a replaced local file is kept in trash)`);
      if (r.carried) out(`${r.carried} entr${r.carried === 1 ? 'y' : 'ies'} outside --include/--exclude kept from the old manifest`);
      if (r.oldManifest) out(`the old manifest is kept as ${r.oldManifest}`);
    }
    return r.failed.length > 0 ? 1 : 0;
  } catch (err) {
    // Whatever a stopped listing or hash pool threw, a stop is a stop: 130 or 143.
    if (io.signal.aborted && !(err instanceof InterruptedError)) throw new InterruptedError(io.signal.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT');
    throw err;
  } finally {
    await hasher.close();
    store.close();
  }
}

const SHOW = 20;
