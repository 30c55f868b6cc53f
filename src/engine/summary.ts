import type { Action, Plan } from '../core/types.js';
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

/** What a dry run would do, counted the way a real run counts what it did. */
export function summarizeDryRun(plan: Plan, s: Summary): void {
  for (const it of plan.items) {
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
        if (it.keepBoth) {
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
}
