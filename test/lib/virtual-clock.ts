import { abortReason, type Clock, type Timer } from '../../src/util/clock';

interface Event {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
  readonly owner: VirtualClock | undefined;
  cancelled: boolean;
}

/** Lets every promise continuation that is ready run (microtasks drain before setImmediate). */
export const drain = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * Virtual time for the storage core (FoundationDB-style simulation): one queue of timers,
 * run in (time, submission) order, with every ready promise continuation run between two of
 * them. Nothing waits for real time, so a test of a 25 s lease takes milliseconds and a seed
 * replays exactly. Each simulated process has its own clock view, which can be paused (SIGSTOP:
 * its timers and the answers it is sent wait until it resumes) or killed (they never run).
 */
export class VirtualScheduler {
  private nowValue = 0;
  private seq = 0;
  private readonly heap: Event[] = [];
  /** Events run so far (a measure of simulated work). */
  events = 0;

  get now(): number {
    return this.nowValue;
  }

  /** A clock for one simulated process (or the store itself, when `name` is omitted). */
  clock(name = 'process'): VirtualClock {
    return new VirtualClock(this, name);
  }

  schedule(at: number, fn: () => void, owner: VirtualClock | undefined): Event {
    const e: Event = { at: Math.max(at, this.nowValue), seq: this.seq++, fn, owner, cancelled: false };
    this.push(e);
    return e;
  }

  /** Runs every event due up to `until`, then sets the time to `until`. */
  async runUntil(until: number): Promise<void> {
    for (;;) {
      await drain();
      const e = this.heap[0];
      if (!e || e.at > until) break;
      this.pop();
      if (e.cancelled) continue;
      this.nowValue = e.at;
      if (e.owner?.killed) continue;
      if (e.owner?.paused) {
        e.owner.deferred.push(e);
        continue;
      }
      this.events++;
      e.fn();
    }
    this.nowValue = Math.max(this.nowValue, until);
    await drain();
  }

  advance(ms: number): Promise<void> {
    return this.runUntil(this.nowValue + ms);
  }

  /**
   * Runs until `p` settles or `limitMs` of virtual time pass; resolves with its outcome, or
   * 'pending' (a hang: nothing in the storage core may wait forever).
   */
  async settle<T>(p: Promise<T>, limitMs: number, stepMs = 10): Promise<{ ok: true; value: T } | { ok: false; error: unknown } | 'pending'> {
    let out: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
    p.then(
      (value) => {
        out = { ok: true, value };
      },
      (error: unknown) => {
        out = { ok: false, error };
      },
    );
    const end = this.nowValue + limitMs;
    await drain();
    while (!out && this.nowValue < end) {
      const next = this.heap[0]?.at ?? end;
      await this.runUntil(Math.min(end, Math.max(next, this.nowValue + stepMs)));
    }
    return out ?? 'pending';
  }

  private push(e: Event): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (before(h[p], e)) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = e;
  }

  private pop(): Event | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const r = l + 1;
        const c = r < h.length && before(h[r], h[l]) ? r : l;
        if (before(last, h[c])) break;
        h[i] = h[c];
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}

const before = (a: Event, b: Event): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq);

/** One process's view of virtual time. */
export class VirtualClock implements Clock {
  paused = false;
  killed = false;
  readonly deferred: Event[] = [];

  constructor(
    readonly scheduler: VirtualScheduler,
    readonly name: string,
  ) {}

  now(): number {
    return this.scheduler.now;
  }

  after(ms: number, fn: () => void, _background?: boolean): Timer {
    const e = this.scheduler.schedule(this.scheduler.now + Math.max(0, ms), fn, this);
    return {
      cancel: () => {
        e.cancelled = true;
      },
    };
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(abortReason(signal));
        return;
      }
      const onAbort = (): void => {
        t.cancel();
        reject(abortReason(signal as AbortSignal));
      };
      const t = this.after(ms, () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** SIGSTOP: nothing of this process runs until `resume` (time goes on). */
  pause(): void {
    this.paused = true;
  }

  /** SIGCONT: what came due meanwhile runs now, in order. */
  resume(): void {
    this.paused = false;
    const due = this.deferred.splice(0);
    for (const e of due) if (!e.cancelled) this.scheduler.schedule(this.scheduler.now, e.fn, this);
  }

  /** kill -9: nothing of this process ever runs again. */
  kill(): void {
    this.killed = true;
    this.deferred.length = 0;
  }
}
