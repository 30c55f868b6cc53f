import type { Action, Plan, PlanItem } from '../core/types.js';
import type { Summary } from './events.js';

/** Actions that the executor carries out (everything but `nothing` and `skip`). */
export const ACTIONS_WITH_EFFECT: ReadonlySet<string> = new Set<Action>([
  'upload',
  'download',
  'delete-remote',
  'delete-local',
  'record',
  'conflict-upload',
  'conflict-download',
  'forget',
  'refresh',
]);

/** Actions a user is told about item by item (the rest are bookkeeping). */
export function isReported(action: Action): boolean {
  return action !== 'nothing' && action !== 'refresh' && action !== 'forget';
}

/** Counts one item as carried out. A dry run counts every planned item this way. */
export function tally(it: PlanItem, s: Summary): void {
  switch (it.action) {
    case 'upload':
    case 'conflict-upload':
      s.uploaded++;
      s.bytesUp += it.local?.size ?? 0;
      break;
    case 'download':
    case 'conflict-download':
      s.downloaded++;
      s.bytesDown += it.remote?.size ?? 0;
      // keep-both sends the renamed local copy up too, except in download-only mode.
      if (it.keepBoth && s.mode !== 'download') {
        s.uploaded++;
        s.bytesUp += it.local?.size ?? 0;
      }
      break;
    case 'delete-remote':
      s.deletedRemote++;
      break;
    case 'delete-local':
      s.deletedLocal++;
      break;
    case 'record':
      s.recorded++;
      break;
    case 'skip':
      s.skipped++;
      break;
    case 'nothing':
    case 'refresh':
      s.unchanged++;
      break;
    case 'forget':
      break;
  }
  if (it.action === 'conflict-upload' || it.action === 'conflict-download') s.conflicts++;
}

export function summarizeDryRun(plan: Plan, s: Summary): void {
  for (const it of plan.items) tally(it, s);
}
