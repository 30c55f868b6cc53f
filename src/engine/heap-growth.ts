// How far V8 lets the old generation grow between full GCs, for the phases of a run that make
// garbage fast while little of it lives: hashing a whole tree (every result crosses from the
// workers) and transfers (the SDK builds every request anew). V8 judges full GCs cheap there and
// lets the heap grow to about 4x what survived the last one; on a first upload of 100k files
// that headroom was most of the peak RSS. A fixed growth between full GCs keeps the heap near its
// live size, for more (short) full GCs.
import v8 from 'node:v8';

/** Files to hash or transfer from which a phase is capped: below it the heap stays small anyway. */
export const CAP_FROM = 10_000;

/** Percent of growth over the live size between full GCs while capped. */
export const CAPPED_HEAP_GROWTH_PERCENT = 50;

// A value the user chose on the command line is left alone.
const userChose = process.execArgv.some((a) => /^--heap[-_]growing[-_]percent/.test(a));

/**
 * V8 reads the flag whenever it sets a new limit, i.e. after the next full GC: the cap must be in
 * place before a phase's heap grows, not when it peaks.
 */
export function capHeapGrowth(): void {
  if (!userChose) v8.setFlagsFromString(`--heap-growing-percent=${CAPPED_HEAP_GROWTH_PERCENT}`);
}

/** V8's default (0: the dynamic factor). */
export function restoreHeapGrowth(): void {
  if (!userChose) v8.setFlagsFromString('--heap-growing-percent=0');
}
