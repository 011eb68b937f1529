import { abortReason, type Clock, systemClock } from '../util/clock';
import { log } from '../util/log';
import { isStorageError, StorageError } from './errors';
import type { CopyOptions, GetResult, ListEntry, ListPage, ObjectMeta, ObjectStore, PutOptions, RequestOptions } from './object-store';

export interface RetryOptions {
  /** Give up on an operation after this long, so a command still ends before initiator timeouts. */
  readonly deadlineMs: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { deadlineMs: 15_000, baseDelayMs: 50, maxDelayMs: 2_000 };

export interface RetryObserver {
  retried(op: string, error: StorageError): void;
}

export interface RetryEnv {
  readonly clock: Clock;
  /** Uniform in [0, 1): the jitter (the simulation seeds it). */
  readonly random: () => number;
  readonly observer?: RetryObserver;
}

const SYSTEM_ENV: RetryEnv = { clock: systemClock, random: Math.random };

/**
 * The retry policy, for store requests and for any other call to S3 (the bucket check at
 * start): transient failures (`unavailable`: 5xx, throttling, resets, attempt time limits, cut
 * bodies) are retried with exponential backoff and full jitter until the deadline; anything
 * else fails at once. An aborted signal ends it with `signal.reason`, unchanged: the caller
 * says why (a write gate's typed reason), this layer knows nothing of leases.
 */
export async function withRetry<T>(
  op: string,
  fn: (deadline: number) => Promise<T>,
  policy: RetryOptions,
  env: RetryEnv = SYSTEM_ENV,
  signal?: AbortSignal,
): Promise<T> {
  const { clock } = env;
  const deadline = clock.now() + policy.deadlineMs;
  for (let attempt = 0; ; attempt++) {
    if (signal?.aborted) throw abortReason(signal);
    try {
      return await fn(deadline);
    } catch (e) {
      if (signal?.aborted) throw abortReason(signal);
      if (!isStorageError(e, 'unavailable')) throw e;
      const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
      const delay = env.random() * cap;
      if (clock.now() + delay >= deadline) {
        throw new StorageError('unavailable', `${e.message} (gave up after ${attempt + 1} attempts in ${policy.deadlineMs} ms)`, {
          cause: e,
          code: e.code,
        });
      }
      env.observer?.retried(op, e);
      if (attempt === 0) log.debug('retrying', { op, error: e.message });
      await clock.sleep(delay, signal).catch(() => undefined);
    }
  }
}

/**
 * Decorator: every operation of the wrapped store under the retry policy. Every operation
 * here is idempotent (a conditional PUT that already landed surfaces as a precondition
 * failure, which the lease code recognises as its own). The deadline is passed down so that
 * waiting for a pool slot is bounded by it too.
 */
export class RetryingStore implements ObjectStore {
  readonly description: string;

  constructor(
    private readonly inner: ObjectStore,
    private readonly options: RetryOptions = DEFAULT_RETRY,
    private readonly env: RetryEnv = SYSTEM_ENV,
  ) {
    this.description = inner.description;
  }

  private retry<T, O extends RequestOptions>(op: string, opts: O | undefined, fn: (o: O) => Promise<T>): Promise<T> {
    const policy = opts?.retryDeadlineMs === undefined ? this.options : { ...this.options, deadlineMs: opts.retryDeadlineMs };
    return withRetry(op, (deadline) => fn({ ...(opts as O), deadline }), policy, this.env, opts?.signal);
  }

  get(key: string, range?: { offset: number; length: number }, opts?: RequestOptions): Promise<GetResult | null> {
    return this.retry('get', opts, (o) => this.inner.get(key, range, o));
  }

  head(key: string, opts?: RequestOptions): Promise<ObjectMeta | null> {
    return this.retry('head', opts, (o) => this.inner.head(key, o));
  }

  put(key: string, body: Buffer, opts?: PutOptions): Promise<{ etag: string }> {
    return this.retry('put', opts, (o) => this.inner.put(key, body, o));
  }

  /** Idempotent: copying the same source version again writes the same object. */
  copy(from: string, to: string, opts?: CopyOptions): Promise<{ etag: string } | null> {
    return this.retry('copy', opts, (o) => this.inner.copy(from, to, o));
  }

  delete(key: string, opts?: RequestOptions): Promise<void> {
    return this.retry('delete', opts, (o) => this.inner.delete(key, o));
  }

  deleteMany(keys: readonly string[], opts?: RequestOptions): Promise<void> {
    return this.retry('deleteMany', opts, (o) => this.inner.deleteMany(keys, o));
  }

  listPage(prefix: string, token: string | undefined, opts?: RequestOptions): Promise<ListPage> {
    return this.retry('list', opts, (o) => this.inner.listPage(prefix, token, o));
  }

  listLeftovers(prefix: string): Promise<ListEntry[]> {
    return this.inner.listLeftovers?.(prefix) ?? Promise.resolve([]);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
