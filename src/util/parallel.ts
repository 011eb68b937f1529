/**
 * Runs `work(i)` for every i in [0, n), at most `limit` at once, started in order of i (a
 * bounded pool of workers taking the next index). Rejects with the first failure.
 */
export async function forEachParallel(n: number, limit: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
}
