// `apply` runs a plan made earlier: any item whose local stat or remote ETag moved since then is
// dropped and reported, because the decision it carries was made on a state that is gone.
import type { Plan, PathState } from '../core/types.js';
import type { EventStream, Summary } from './events.js';
import type { Gathered } from './gather.js';
import { sameStat } from './records.js';
import { isReported } from './summary.js';

function sameRemote(a: PathState['remote'], b: PathState['remote']): boolean {
  if (!a || !b) return a === b;
  return a.etag === b.etag && a.size === b.size;
}

/** A racily-clean file keeps its stat through a rewrite; this run's hash (when it read one) tells. */
function sameContent(a: PathState['local'], b: PathState['local']): boolean {
  return a?.xxh64 === undefined || b?.xxh64 === undefined || a.xxh64 === b.xxh64;
}

export function dropDrifted(plan: Plan, g: Gathered, events: EventStream, summary: Summary): Plan {
  const now = new Map(g.states.map((s) => [s.path, s]));
  const items = plan.items.filter((it) => {
    const cur = now.get(it.path);
    if (sameStat(cur?.local, it.local) && sameContent(cur?.local, it.local) && sameRemote(cur?.remote, it.remote)) return true;
    if (isReported(it.action) && it.action !== 'skip') {
      summary.skipped++;
      events.emit({ event: 'file', path: it.path, key: it.key, action: it.action, status: 'skipped', bytes: it.bytes, error: 'changed since the plan was made; run `storage-sync plan` again' });
    }
    return false;
  });
  return { ...plan, items };
}
