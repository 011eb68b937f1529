import { StorageError } from './errors';
import type { CopyOptions, GetResult, ListEntry, ListPage, ObjectMeta, ObjectStore, PutOptions, RequestOptions } from './object-store';

export type StoreOp = 'get' | 'head' | 'put' | 'copy' | 'delete' | 'deleteMany' | 'list';
export const STORE_OPS: readonly StoreOp[] = ['get', 'head', 'put', 'copy', 'delete', 'deleteMany', 'list'];

/** Where request outcomes go (the metrics module implements it with prom-client). */
export interface StoreObserver {
  /** `key`: the object (a copy's destination, a batch's first key, a listing's prefix). */
  request(op: StoreOp, outcome: string, seconds: number, bytes: number, key?: string): void;
}

/** Decorator: every request's operation, outcome (ok or the error kind), latency and bytes. */
export class InstrumentedStore implements ObjectStore {
  readonly description: string;

  constructor(
    private readonly inner: ObjectStore,
    private readonly observer: StoreObserver,
  ) {
    this.description = inner.description;
  }

  private async observe<T>(op: StoreOp, key: string | undefined, fn: () => Promise<T>, bytesOf: (r: T) => number): Promise<T> {
    const t0 = process.hrtime.bigint();
    try {
      const r = await fn();
      this.observer.request(op, 'ok', Number(process.hrtime.bigint() - t0) / 1e9, bytesOf(r), key);
      return r;
    } catch (e) {
      this.observer.request(op, e instanceof StorageError ? e.kind : 'internal', Number(process.hrtime.bigint() - t0) / 1e9, 0, key);
      throw e;
    }
  }

  get(key: string, range?: { offset: number; length: number }, opts?: RequestOptions): Promise<GetResult | null> {
    return this.observe(
      'get',
      key,
      () => this.inner.get(key, range, opts),
      (r) => r?.body.length ?? 0,
    );
  }

  head(key: string, opts?: RequestOptions): Promise<ObjectMeta | null> {
    return this.observe(
      'head',
      key,
      () => this.inner.head(key, opts),
      () => 0,
    );
  }

  put(key: string, body: Buffer, opts?: PutOptions): Promise<{ etag: string }> {
    return this.observe(
      'put',
      key,
      () => this.inner.put(key, body, opts),
      () => body.length,
    );
  }

  /** Bytes: none pass through us (the server copies). */
  copy(from: string, to: string, opts?: CopyOptions): Promise<{ etag: string } | null> {
    return this.observe(
      'copy',
      to,
      () => this.inner.copy(from, to, opts),
      () => 0,
    );
  }

  delete(key: string, opts?: RequestOptions): Promise<void> {
    return this.observe(
      'delete',
      key,
      () => this.inner.delete(key, opts),
      () => 0,
    );
  }

  deleteMany(keys: readonly string[], opts?: RequestOptions): Promise<void> {
    return this.observe(
      'deleteMany',
      keys[0],
      () => this.inner.deleteMany(keys, opts),
      () => 0,
    );
  }

  listPage(prefix: string, token: string | undefined, opts?: RequestOptions): Promise<ListPage> {
    return this.observe(
      'list',
      prefix,
      () => this.inner.listPage(prefix, token, opts),
      () => 0,
    );
  }

  listLeftovers(prefix: string): Promise<ListEntry[]> {
    return this.inner.listLeftovers?.(prefix) ?? Promise.resolve([]);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
