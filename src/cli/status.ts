// `status`: no network, no hashing. What the manifest tracks, the last run, and what a stat walk
// says moved since (content is only compared by a real run).
import { Manifest, profilePaths } from '../manifest/manifest.js';
import { statEqual } from '../core/compare.js';
import { joinLocal } from '../core/paths.js';
import { scanMapping } from '../local/scan.js';
import { makeFilter } from '../local/filter.js';
import type { Settings } from '../engine/settings.js';
import { formatBytes } from '../render/format.js';
import type { CliIO } from './main.js';

export interface MappingStatus {
  local: string;
  remote: string;
  tracked: number;
  trackedBytes: number;
  localFiles: number;
  statChanged: string[];
  untracked: string[];
  missing: string[];
}

const SHOW = 20;

export async function statusCommand(s: Settings, io: CliIO, json: boolean): Promise<number> {
  const paths = profilePaths(s.manifestDir, s.profile);
  const manifest = Manifest.open(paths.manifest, { readOnly: true });
  try {
    const filter = makeFilter(s.include, s.exclude);
    const mappings: MappingStatus[] = s.mappings.map((m) => {
      const scan = scanMapping(s.root, m.local, filter);
      const st: MappingStatus = { local: m.local, remote: m.remote, tracked: 0, trackedBytes: 0, localFiles: scan.files.size, statChanged: [], untracked: [], missing: [] };
      const seen = new Set<string>();
      for (const [p, entry] of manifest.under(m.local)) {
        const rel = p.slice(m.local.length + 1);
        st.tracked++;
        st.trackedBytes += entry.local.size;
        seen.add(rel);
        const l = scan.files.get(rel);
        if (!l) st.missing.push(p);
        else if (!statEqual(l, entry)) st.statChanged.push(p);
      }
      for (const rel of scan.files.keys()) if (!seen.has(rel)) st.untracked.push(joinLocal(m.local, rel));
      return st;
    });
    const lastRun = manifest.lastRun();
    if (json) {
      io.stdout.write(JSON.stringify({ event: 'status', profile: s.profile, manifest: paths.manifest, mappings, lastRun: lastRun ?? null }) + '\n');
      return 0;
    }
    const w = (t: string): boolean => io.stdout.write(t + '\n');
    w(`profile ${s.profile}, manifest ${paths.manifest}${manifest.count() === 0 ? ' (empty: nothing synced yet)' : ''}`);
    for (const m of mappings) {
      w(`${m.local}/ ↔ ${m.remote || '(bucket root)'}: ${m.tracked} tracked (${formatBytes(m.trackedBytes)}), ${m.localFiles} local files`);
      const list = (label: string, items: string[]): void => {
        if (items.length === 0) return;
        w(`  ${label}: ${items.length}`);
        for (const p of items.slice(0, SHOW)) w(`    ${p}`);
        if (items.length > SHOW) w(`    … and ${items.length - SHOW} more`);
      };
      list('stat changed since last sync', m.statChanged);
      list('not yet synced', m.untracked);
      list('missing locally', m.missing);
    }
    if (lastRun) w(`last run ${lastRun.runId} (${lastRun.mode}) finished ${lastRun.finishedAt}, exit ${lastRun.exitCode}`);
    return 0;
  } finally {
    await manifest.close();
  }
}
