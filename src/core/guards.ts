// Refuse plans that look like a mistake rather than an intent: mass deletes, or deletes driven by
// one side being empty (an unmounted disk, a wrong bucket or prefix) while the base says otherwise.

import { SafetyError, UsageError } from './errors.js';
import type { GuardOptions, Mapping, Plan } from './types.js';

export type MaxDelete = { kind: 'percent'; value: number } | { kind: 'count'; value: number };

export function parseMaxDelete(s: string): MaxDelete {
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(s);
  if (percent?.[1] !== undefined && Number(percent[1]) <= 100) {
    return { kind: 'percent', value: Number(percent[1]) };
  }
  if (/^\d+$/.test(s)) return { kind: 'count', value: Number(s) };
  throw new UsageError(
    `invalid --max-delete ${JSON.stringify(s)}: expected a percentage up to 100% (e.g. 50%) ` +
      'or a file count (e.g. 100)',
  );
}

export function checkGuards(
  plan: Plan,
  mappings: Mapping[],
  tracked: number[],
  sides: { localCount: number[]; remoteCount: number[] },
  guard: GuardOptions,
): void {
  if (guard.force) return;
  const limit = parseMaxDelete(guard.maxDelete);
  const deletes = new Array<number>(mappings.length).fill(0);
  for (const item of plan.items) {
    if (item.action === 'delete-remote' || item.action === 'delete-local') {
      deletes[item.mapping] = (deletes[item.mapping] ?? 0) + 1;
    }
  }
  mappings.forEach((mapping, i) => {
    const base = tracked[i] ?? 0;
    const count = deletes[i] ?? 0;
    // With no base there is nothing the plan could be wrong about deleting.
    if (base === 0 || count === 0) return;
    const emptySide =
      sides.localCount[i] === 0
        ? `the local folder '${mapping.local}' is empty`
        : sides.remoteCount[i] === 0
          ? `the remote listing of '${mapping.remote}' is empty`
          : undefined;
    if (emptySide !== undefined) {
      throw new SafetyError(
        `${emptySide} but the base tracks ${base} files; refusing to delete ${count} of them ` +
          '(wrong folder, bucket or prefix?); rerun with --force if this is intended',
      );
    }
    if (exceeds(count, base, limit)) {
      throw new SafetyError(
        `refusing to delete ${count} of ${base} tracked files in mapping ` +
          `'${mapping.local}' → '${mapping.remote}' (max-delete ${guard.maxDelete}); ` +
          'rerun with --force',
      );
    }
  });
}

/** Strictly more than the limit; the percentage is compared multiplied out to avoid rounding. */
function exceeds(count: number, tracked: number, limit: MaxDelete): boolean {
  return limit.kind === 'percent' ? count * 100 > tracked * limit.value : count > limit.value;
}
