// Seed and run counts of the model-based tests: fixed and small in CI, larger on demand:
//   STORAGE_SYNC_MODEL_RUNS=500 STORAGE_SYNC_MODEL_SEED=123 node --test dist/test/model/
// A failure names the seed, the fast-check path and the shrunk counterexample, and the command
// that replays it.
import fc from 'fast-check';

const envInt = (name: string): number | undefined => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new Error(`${name} must be an integer, got ${JSON.stringify(raw)}`);
  return n;
};

export const SEED = envInt('STORAGE_SYNC_MODEL_SEED') ?? 20261127;
/** End-to-end cases (each a few syncs against the local S3 server). */
export const RUNS = envInt('STORAGE_SYNC_MODEL_RUNS');
/** fast-check's replay path of a failure, to re-run only the shrunk case. */
const PATH = process.env.STORAGE_SYNC_MODEL_PATH;

export async function check<T>(name: string, property: fc.IAsyncProperty<T> | fc.IProperty<T>, numRuns: number): Promise<void> {
  const params: fc.Parameters<T> = { seed: SEED, numRuns, includeErrorInReport: true };
  if (PATH) params.path = PATH;
  try {
    await fc.assert(property as fc.IAsyncProperty<T>, params);
  } catch (err) {
    const replay = `STORAGE_SYNC_MODEL_SEED=${SEED} STORAGE_SYNC_MODEL_RUNS=${numRuns} (add STORAGE_SYNC_MODEL_PATH=<path above> to replay only the counterexample)`;
    (err as Error).message = `${name}: model-based test failed with seed ${SEED}; replay with ${replay}\n${(err as Error).message}`;
    throw err;
  }
}
