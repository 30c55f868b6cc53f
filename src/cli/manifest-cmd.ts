// `manifest ls [GLOB] | show PATH | export`: read-only views of the base.
import picomatch from 'picomatch';
import { UsageError } from '../core/errors.js';
import { Manifest, profilePaths } from '../manifest/manifest.js';
import type { Settings } from '../engine/settings.js';
import { formatBytes } from '../render/format.js';
import type { CliIO } from './main.js';

export async function manifestCommand(s: Settings, action: string, arg: string | undefined, io: CliIO): Promise<number> {
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
