import type { Clock } from './clock';

/**
 * Waiters for room (a cache slot, journal space): each waits until `wake` or until its time
 * is up, whichever comes first; the caller then checks again. Bounded by construction: no
 * wait outlives its timer.
 */
export class WakeList {
  private waiters: Array<() => void> = [];

  constructor(private readonly clock: Clock) {}

  /** Resolves at the next `wake`, or after `ms`. */
  wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const woken = (): void => {
        t.cancel();
        resolve();
      };
      const t = this.clock.after(ms, () => {
        const at = this.waiters.indexOf(woken);
        if (at >= 0) this.waiters.splice(at, 1);
        resolve();
      });
      this.waiters.push(woken);
    });
  }

  wake(): void {
    const w = this.waiters;
    if (w.length === 0) return;
    this.waiters = [];
    for (const r of w) r();
  }
}
