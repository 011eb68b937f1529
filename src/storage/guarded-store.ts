import { StorageError } from './errors';
import type { GetResult, ListEntry, ListPage, ObjectMeta, ObjectStore, PutOptions, RequestOptions } from './object-store';

/** One signal that aborts when either does. */
export function eitherSignal(a: AbortSignal | undefined, b: AbortSignal | undefined): AbortSignal | undefined {
  if (!a) return b;
  if (!b || a === b) return a;
  return AbortSignal.any([a, b]);
}

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

  private admit<O extends RequestOptions>(what: string, opts: O | undefined): O {
    if (!opts?.guard) throw new StorageError('internal', `${what}: a store mutation without a write gate`);
    const gate = opts.guard.admit(what);
    return { ...opts, signal: eitherSignal(opts.signal, gate) };
  }

  get(key: string, range?: { offset: number; length: number }, opts?: RequestOptions): Promise<GetResult | null> {
    return this.inner.get(key, range, opts);
  }

  head(key: string, opts?: RequestOptions): Promise<ObjectMeta | null> {
    return this.inner.head(key, opts);
  }

  async put(key: string, body: Buffer, opts?: PutOptions): Promise<{ etag: string }> {
    return this.inner.put(key, body, this.admit(`PUT ${key}`, opts));
  }

  async delete(key: string, opts?: RequestOptions): Promise<void> {
    return this.inner.delete(key, this.admit(`DELETE ${key}`, opts));
  }

  async deleteMany(keys: readonly string[], opts?: RequestOptions): Promise<void> {
    return this.inner.deleteMany(keys, this.admit(`DELETE ${keys.length} keys`, opts));
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
