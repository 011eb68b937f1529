import { linked } from '../util/signals';
import { StorageError } from './errors';
import type { CopyOptions, GetResult, ListEntry, ListPage, ObjectMeta, ObjectStore, PutOptions, RequestOptions } from './object-store';

/**
 * Decorator, right above the wire (below the I/O pool and the retry layer): every mutation
 * carries the LUN's write gate, which is asked again here, immediately before each attempt
 * leaves, and whose signal aborts the attempt when the gate shuts meanwhile. A mutation
 * without a gate is a bug, refused: nothing writes to the store around the lease.
 */
export class GuardedStore implements ObjectStore {
  readonly description: string;

  constructor(private readonly inner: ObjectStore) {
    this.description = inner.description;
  }

  /** Asks the gate, then runs the mutation with a signal that also aborts when the gate shuts. */
  private async admitted<T, O extends RequestOptions>(what: string, opts: O | undefined, fn: (o: O) => Promise<T>): Promise<T> {
    if (!opts?.guard) throw new StorageError('internal', `${what}: a store mutation without a write gate`);
    const gate = opts.guard.admit(what);
    if (!opts.signal || opts.signal === gate) return fn({ ...opts, signal: gate });
    const link = linked(opts.signal, gate);
    try {
      return await fn({ ...opts, signal: link.signal });
    } finally {
      link.unlink();
    }
  }

  get(key: string, range?: { offset: number; length: number }, opts?: RequestOptions): Promise<GetResult | null> {
    return this.inner.get(key, range, opts);
  }

  head(key: string, opts?: RequestOptions): Promise<ObjectMeta | null> {
    return this.inner.head(key, opts);
  }

  put(key: string, body: Buffer, opts?: PutOptions): Promise<{ etag: string }> {
    return this.admitted(`PUT ${key}`, opts, (o) => this.inner.put(key, body, o));
  }

  copy(from: string, to: string, opts?: CopyOptions): Promise<{ etag: string } | null> {
    return this.admitted(`COPY ${from} to ${to}`, opts, (o) => this.inner.copy(from, to, o));
  }

  delete(key: string, opts?: RequestOptions): Promise<void> {
    return this.admitted(`DELETE ${key}`, opts, (o) => this.inner.delete(key, o));
  }

  deleteMany(keys: readonly string[], opts?: RequestOptions): Promise<void> {
    return this.admitted(`DELETE ${keys.length} keys`, opts, (o) => this.inner.deleteMany(keys, o));
  }

  listPage(prefix: string, token: string | undefined, opts?: RequestOptions): Promise<ListPage> {
    return this.inner.listPage(prefix, token, opts);
  }

  listLeftovers(prefix: string): Promise<ListEntry[]> {
    return this.inner.listLeftovers?.(prefix) ?? Promise.resolve([]);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
