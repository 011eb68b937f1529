import { StorageError } from '../../src/storage/errors';
import type { StoreOp } from '../../src/storage/instrumented-store';
import type {
  CopyOptions,
  GetResult,
  ListEntry,
  ListPage,
  ObjectMeta,
  ObjectStore,
  PutOptions,
  RequestOptions,
} from '../../src/storage/object-store';
import { abortReason, type Clock, systemClock } from '../../src/util/clock';

/**
 * - error: a retryable failure (503) before the request reaches the store: nothing happens;
 * - cut: the request body is cut mid-way (a short write): fails, nothing is stored;
 * - lost-answer: the request lands, then its answer is lost (a reset after the write);
 * - black-hole: no answer ever (the server accepted the request and hangs); a mutation lands
 *   only if `lands` says so; the caller's abort (its time limit) is the only way out;
 * - delay: reaches the store `delayMs` later than usual (a slow request: its effect is late);
 * - slow-answer: applied at once, answered `delayMs` later (a GET returns what was there when
 *   it was served, however late it arrives).
 */
export type Fault = 'error' | 'cut' | 'lost-answer' | 'black-hole' | 'delay' | 'slow-answer';

export interface FaultRule {
  readonly fault: Fault;
  /** Operations it applies to (all by default). */
  readonly ops?: readonly StoreOp[];
  /** Keys it applies to (all by default). */
  readonly key?: RegExp;
  /** Chance per matching request (1 by default). */
  readonly probability?: number;
  /** How many requests it applies to (unlimited by default). */
  times?: number;
  readonly delayMs?: number;
  /** black-hole: whether a mutation lands before the silence (false by default). */
  readonly lands?: boolean;
}

export interface FailingEnv {
  /** The caller's clock: answers are delivered on it (a paused process gets them on resume). */
  readonly clock: Clock;
  /** The store's clock: requests land on it, whatever the caller does meanwhile. */
  readonly storeClock?: Clock;
  readonly random?: () => number;
  /** Usual time from a request to its effect, and from the effect to the answer. */
  readonly latencyMs?: () => number;
  /** Told of every mutation right before it lands (the simulation's fencing oracle); false: it does not land. */
  readonly onLand?: (op: StoreOp, key: string) => boolean;
}

const MUTATIONS: readonly StoreOp[] = ['put', 'copy', 'delete', 'deleteMany'];

/**
 * A store that fails the way S3 and networks do, on purpose (SlateDB's failing_object_store):
 * the decorated stack and the storage core are tested against it, in unit tests with a real
 * or virtual clock and in the simulation. Rules are matched in order; the first that applies
 * decides a request's fate. Every request is recorded in `log`.
 */
export class FailingStore implements ObjectStore {
  readonly description: string;
  rules: FaultRule[] = [];
  readonly log: Array<{ readonly op: StoreOp; readonly key: string; readonly fault: Fault | 'ok' }> = [];
  private readonly clock: Clock;
  private readonly storeClock: Clock;
  private readonly random: () => number;
  private readonly latency: () => number;
  private readonly onLand: ((op: StoreOp, key: string) => boolean) | undefined;
  /** Requests answered, failed or left hanging, by fault. */
  readonly counts: Record<Fault | 'ok', number> = { ok: 0, error: 0, cut: 0, 'lost-answer': 0, 'black-hole': 0, delay: 0, 'slow-answer': 0 };

  constructor(
    private readonly inner: ObjectStore,
    env: FailingEnv = { clock: systemClock },
  ) {
    this.description = `failing(${inner.description})`;
    this.clock = env.clock;
    this.storeClock = env.storeClock ?? env.clock;
    this.random = env.random ?? Math.random;
    this.latency = env.latencyMs ?? (() => 0);
    this.onLand = env.onLand;
  }

  add(rule: FaultRule): this {
    this.rules.push(rule);
    return this;
  }

  clear(): void {
    this.rules = [];
  }

  private fate(op: StoreOp, key: string): FaultRule | undefined {
    for (const r of this.rules) {
      if (r.ops && !r.ops.includes(op)) continue;
      if (r.key && !r.key.test(key)) continue;
      if ((r.times ?? 1) <= 0) continue;
      if (this.random() >= (r.probability ?? 1)) continue;
      if (r.times !== undefined) r.times--;
      return r;
    }
    return undefined;
  }

  /**
   * One request: `effect` runs on the store's clock when the request lands; the answer comes
   * on the caller's clock. An abort before the request landed means it never does.
   */
  private request<T>(op: StoreOp, key: string, signal: AbortSignal | undefined, effect: () => Promise<T>): Promise<T> {
    const rule = this.fate(op, key);
    const fault = rule?.fault ?? 'ok';
    this.log.push({ op, key, fault });
    this.counts[fault]++;
    const mutation = MUTATIONS.includes(op);
    const toLand = this.latency() + (fault === 'delay' ? (rule?.delayMs ?? 0) : 0);
    const toAnswer = this.latency() + (fault === 'lost-answer' || fault === 'slow-answer' ? (rule?.delayMs ?? 0) : 0);
    return new Promise<T>((resolve, reject) => {
      let answered = false;
      const answer = (f: () => void): void => {
        if (answered) return;
        answered = true;
        signal?.removeEventListener('abort', onAbort);
        f();
      };
      const onAbort = (): void => answer(() => reject(abortReason(signal as AbortSignal)));
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      const fail = (why: string): void => {
        this.clock.after(toAnswer, () => answer(() => reject(new StorageError('unavailable', `${op} ${key}: ${why} (injected)`))));
      };
      if (fault === 'error' || (fault === 'cut' && mutation)) return fail(fault === 'cut' ? 'body cut mid-way' : 'HTTP 503 SlowDown');
      const blackHole = fault === 'black-hole';
      if (blackHole && !(mutation && rule?.lands)) return;
      this.storeClock.after(toLand, () => {
        if (answered) return; // aborted before it reached the store
        if (mutation && this.onLand?.(op, key) === false) return;
        effect().then(
          (v) => {
            if (blackHole) return;
            if (fault === 'lost-answer') return fail('connection reset after the request was applied');
            this.clock.after(toAnswer, () => answer(() => resolve(v)));
          },
          (e: unknown) => this.clock.after(toAnswer, () => answer(() => reject(e))),
        );
      });
    });
  }

  get(key: string, range?: { offset: number; length: number }, opts?: RequestOptions): Promise<GetResult | null> {
    return this.request('get', key, opts?.signal, () => this.inner.get(key, range));
  }

  head(key: string, opts?: RequestOptions): Promise<ObjectMeta | null> {
    return this.request('head', key, opts?.signal, () => this.inner.head(key));
  }

  put(key: string, body: Buffer, opts: PutOptions = {}): Promise<{ etag: string }> {
    const { metadata, ifMatch, ifNoneMatch } = opts;
    return this.request('put', key, opts.signal, () => this.inner.put(key, body, { metadata, ifMatch, ifNoneMatch }));
  }

  /** A copy's fate is decided by its destination key (the object it mutates). */
  copy(from: string, to: string, opts: CopyOptions = {}): Promise<{ etag: string } | null> {
    return this.request('copy', to, opts.signal, () => this.inner.copy(from, to));
  }

  delete(key: string, opts?: RequestOptions): Promise<void> {
    return this.request('delete', key, opts?.signal, () => this.inner.delete(key));
  }

  deleteMany(keys: readonly string[], opts?: RequestOptions): Promise<void> {
    return this.request('deleteMany', keys[0] ?? '', opts?.signal, () => this.inner.deleteMany(keys));
  }

  listPage(prefix: string, token: string | undefined, opts?: RequestOptions): Promise<ListPage> {
    return this.request('list', prefix, opts?.signal, () => this.inner.listPage(prefix, token));
  }

  listLeftovers(prefix: string): Promise<ListEntry[]> {
    return this.inner.listLeftovers?.(prefix) ?? Promise.resolve([]);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** Requests of `op` on keys matching `key` so far. */
  seen(op: StoreOp, key?: RegExp): number {
    return this.log.filter((r) => r.op === op && (!key || key.test(r.key))).length;
  }
}
