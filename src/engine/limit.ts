/**
 * Runs `fn` over `items` with at most `limit` in flight: `limit` workers pull from one shared
 * iterator (the lib-storage pattern), so no queue library is needed. Stops pulling once `signal`
 * is aborted; items already started finish (or abort through their own signal).
 */
export async function mapLimit<T>(
  items: Iterable<T>,
  limit: number,
  fn: (item: T) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  const it = items[Symbol.iterator]();
  const worker = async (): Promise<void> => {
    for (;;) {
      if (signal?.aborted) return;
      const next = it.next();
      if (next.done) return;
      await fn(next.value);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker));
}
