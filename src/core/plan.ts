// A plan is every path's decision, in S3 listing order so that plans, logs and `explain` output
// line up with what the bucket shows.

import { decide } from './decide.js';
import type { Plan, PathState, PlanOptions } from './types.js';

export function buildPlan(states: Iterable<PathState>, opts: PlanOptions): Plan {
  const items = Array.from(states, (state) => decide(state, opts));
  items.sort((a, b) => compareUtf8(a.path, b.path));
  return { items, mode: opts.mode, conflict: opts.conflict };
}

/**
 * S3 lists keys in UTF-8 byte order, which is code point order. JavaScript compares UTF-16
 * code units, which puts astral characters (surrogates, U+D800–DFFF) before U+E000–FFFF;
 * shifting the two ranges past each other restores code point order without encoding paths.
 */
function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}
