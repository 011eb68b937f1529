import type { CopyOptions, GetResult, ListEntry, ListPage, ObjectMeta, ObjectStore, PutOptions, RequestOptions } from './object-store';

/**
 * A view of a store whose mutations (put, copy, delete, deleteMany) get their options from `scope`:
 * how a LUN's write gate rides along with every write made through `WriteGate.bind`.
 */
export function scopedStore(inner: ObjectStore, scope: (opts: RequestOptions | undefined, what: string) => RequestOptions): ObjectStore {
  return {
    description: inner.description,
    get: (key: string, range?: { offset: number; length: number }, opts?: RequestOptions): Promise<GetResult | null> => inner.get(key, range, opts),
    head: (key: string, opts?: RequestOptions): Promise<ObjectMeta | null> => inner.head(key, opts),
    put: async (key: string, body: Buffer, opts?: PutOptions): Promise<{ etag: string }> =>
      inner.put(key, body, { ...opts, ...scope(opts, `PUT ${key}`) }),
    copy: async (from: string, to: string, opts?: CopyOptions): Promise<{ etag: string } | null> =>
      inner.copy(from, to, { ...opts, ...scope(opts, `COPY ${from} to ${to}`) }),
    delete: async (key: string, opts?: RequestOptions): Promise<void> => inner.delete(key, scope(opts, `DELETE ${key}`)),
    deleteMany: async (keys: readonly string[], opts?: RequestOptions): Promise<void> =>
      inner.deleteMany(keys, scope(opts, `DELETE ${keys.length} keys`)),
    listPage: (prefix: string, token: string | undefined, opts?: RequestOptions): Promise<ListPage> => inner.listPage(prefix, token, opts),
    listLeftovers: (prefix: string): Promise<ListEntry[]> => inner.listLeftovers?.(prefix) ?? Promise.resolve([]),
    // A view: the backend it looks into is closed by its owner.
    close: async (): Promise<void> => undefined,
  };
}
