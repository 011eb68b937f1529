import { setTimeout as sleep } from 'node:timers/promises';
import { log } from '../util/log';
import { isStorageError, StorageError } from './errors';
import type { GetResult, ListEntry, ListPage, ObjectMeta, ObjectStore, PutOptions, RequestOptions } from './object-store';

export interface RetryOptions {
  /** Give up on a request after this long, so a command still ends before initiator timeouts. */
  readonly deadlineMs: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { deadlineMs: 15_000, baseDelayMs: 50, maxDelayMs: 2_000 };

export interface RetryObserver {
  retried(op: string, error: StorageError): void;
}

/**
 * Decorator: transient failures (`unavailable`: 5xx, throttling, resets, timeouts, cut
 * bodies) are retried with exponential backoff and full jitter until a deadline; anything
 * else fails at once. Every operation here is idempotent (a conditional PUT that already
 * landed surfaces as a precondition failure, which the lease code handles).
 */
export class RetryingStore implements ObjectStore {
  readonly description: string;

  constructor(
    private readonly inner: ObjectStore,
    private readonly options: RetryOptions = DEFAULT_RETRY,
    private readonly observer?: RetryObserver,
  ) {
    this.description = inner.description;
  }

  private async retry<T>(op: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const deadline = Date.now() + this.options.deadlineMs;
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw new StorageError('fenced', `${op} aborted: ${String(signal.reason)}`);
      try {
        return await fn();
      } catch (e) {
        if (signal?.aborted) throw new StorageError('fenced', `${op} aborted: ${String(signal.reason)}`, { cause: e });
        if (!isStorageError(e, 'unavailable')) throw e;
        const cap = Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** attempt);
        const delay = Math.random() * cap;
        if (Date.now() + delay >= deadline) {
          throw new StorageError('unavailable', `${e.message} (gave up after ${attempt + 1} attempts in ${this.options.deadlineMs} ms)`, {
            cause: e,
          });
        }
        this.observer?.retried(op, e);
        if (attempt === 0) log.debug('retrying', { op, error: e.message });
        await sleep(delay, undefined, signal ? { signal } : undefined).catch(() => undefined);
      }
    }
  }

  get(key: string, range?: { offset: number; length: number }, opts?: RequestOptions): Promise<GetResult | null> {
    return this.retry('get', () => this.inner.get(key, range, opts), opts?.signal);
  }

  head(key: string, opts?: RequestOptions): Promise<ObjectMeta | null> {
    return this.retry('head', () => this.inner.head(key, opts), opts?.signal);
  }

  put(key: string, body: Buffer, opts?: PutOptions): Promise<{ etag: string }> {
    return this.retry('put', () => this.inner.put(key, body, opts), opts?.signal);
  }

  delete(key: string, opts?: RequestOptions): Promise<void> {
    return this.retry('delete', () => this.inner.delete(key, opts), opts?.signal);
  }

  deleteMany(keys: readonly string[], opts?: RequestOptions): Promise<void> {
    return this.retry('deleteMany', () => this.inner.deleteMany(keys, opts), opts?.signal);
  }

  listPage(prefix: string, token: string | undefined, opts?: RequestOptions): Promise<ListPage> {
    return this.retry('list', () => this.inner.listPage(prefix, token, opts), opts?.signal);
  }

  listLeftovers(prefix: string): Promise<ListEntry[]> {
    return this.inner.listLeftovers?.(prefix) ?? Promise.resolve([]);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
