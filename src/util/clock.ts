import { performance } from 'node:perf_hooks';

/** A pending timer; `cancel` is idempotent. */
export interface Timer {
  cancel(): void;
}

/**
 * Time as the storage core sees it. Everything that waits or measures (leases, write gates,
 * retries, request time limits, the flusher, back-pressure) takes a Clock, so tests and the
 * simulation (test/sim) run it on virtual time, deterministically.
 */
export interface Clock {
  /**
   * Milliseconds on a monotonic clock. The system clock is CLOCK_MONOTONIC (performance.now):
   * it never steps with NTP and keeps counting while the process is stopped (SIGSTOP), which
   * is what lease validity needs (docs/architecture.md, "Fencing").
   */
  now(): number;
  /**
   * Runs `fn` once after `ms` (at once for `ms` ≤ 0). A background timer (the flusher, lease renewals, a gate's
   * expiry) does not keep the process alive; one that something waits for does.
   */
  after(ms: number, fn: () => void, background?: boolean): Timer;
  /** Resolves after `ms` (at once for `ms` ≤ 0); rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Runs `fn` every `ms` in the background (the next run is scheduled after this one returned). */
export function every(clock: Clock, ms: number, fn: () => void): Timer {
  let t: Timer | undefined;
  let stopped = false;
  const tick = (): void => {
    if (stopped) return;
    fn();
    if (!stopped) t = clock.after(ms, tick, true);
  };
  t = clock.after(ms, tick, true);
  return {
    cancel: () => {
      stopped = true;
      t?.cancel();
    },
  };
}

/** The reason an aborted signal carries, as an Error. */
export function abortReason(signal: AbortSignal): Error {
  return reasonError(signal.reason);
}

/** An abort reason as an Error (a reason may be any value). */
export function reasonError(r: unknown): Error {
  return r instanceof Error ? r : new Error(String(r ?? 'aborted'));
}

export const systemClock: Clock = {
  now: () => performance.now(),
  after(ms, fn, background = false) {
    const t = setTimeout(fn, Math.max(0, ms));
    if (background) t.unref();
    return { cancel: () => clearTimeout(t) };
  },
  sleep(ms, signal) {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(abortReason(signal));
        return;
      }
      const onAbort = (): void => {
        clearTimeout(t);
        reject(abortReason(signal as AbortSignal));
      };
      const t = setTimeout(
        () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        Math.max(0, ms),
      );
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  },
};
