/**
 * I/O lanes of the bounded request pool: foreground reads are never queued behind flushes or
 * background work (see io-pool.ts). The control lane (the lease: one small request per LUN
 * every few seconds) never waits for a slot: data I/O must not starve the renewal that keeps
 * it allowed.
 */
export type Lane = 'foreground' | 'flush' | 'background' | 'control';

/**
 * What a store mutation must pass right before it reaches the wire (storage/write-gate.ts).
 * `admit` throws the typed reason when no mutation may start now, and otherwise returns the
 * signal that aborts the mutation once the gate shuts.
 */
export interface WriteGuard {
  admit(what: string): AbortSignal;
}

export interface RequestOptions {
  readonly lane?: Lane;
  /**
   * Aborts the request and any retry of it; the retry layer rethrows `signal.reason` as it is
   * (a write gate aborts with a typed StorageError saying why).
   */
  readonly signal?: AbortSignal;
  /** Required on put/delete/deleteMany in the serving stack: the LUN's write gate. */
  readonly guard?: WriteGuard;
  /** One attempt's time limit, headers and body, instead of the backend's (lease renewals). */
  readonly attemptTimeoutMs?: number;
  /** How long transient failures are retried, instead of the backend's retry deadline. */
  readonly retryDeadlineMs?: number;
  /** Set by the retry layer: the clock time after which waiting for an I/O pool slot gives up. */
  readonly deadline?: number;
  /**
   * get/head: only the object stored at this very key. A clone's store (CloneStore) otherwise
   * answers a chunk the clone inherits with its parent snapshot's object, and its own hole
   * marker as no object; a conditional chunk PUT needs the object its precondition is checked
   * against (ChunkMap). Every other store ignores it.
   */
  readonly exactKey?: boolean;
  /**
   * get: where to put a body of `size` bytes (a recycled chunk buffer whose pages are already
   * mapped: a fresh 1 MiB buffer costs 256 page faults on first touch); undefined lets the
   * store allocate. A request that fails abandons the buffer: the caller never reuses it.
   */
  readonly bodyBuffer?: (size: number) => Buffer | undefined;
}

export interface ObjectMeta {
  readonly size: number;
  /** Entity tag without quotes (RGW compares If-Match against the unquoted form). */
  readonly etag: string;
  /** User metadata (x-amz-meta-*), lower-case keys. */
  readonly metadata: Readonly<Record<string, string>>;
}

export interface GetResult {
  /** The whole object, or the requested range of it. */
  readonly body: Buffer;
  readonly meta: ObjectMeta;
}

export interface PutOptions extends RequestOptions {
  readonly metadata?: Readonly<Record<string, string>>;
  /** Create only: fails with a `precondition` StorageError if the key exists (If-None-Match: *). */
  readonly ifNoneMatch?: '*';
  /** Replace only this version: fails with `precondition` otherwise (If-Match). */
  readonly ifMatch?: string;
}

/**
 * Options of a server-side copy. No source condition: RGW ignores x-amz-copy-source-if-match
 * (quoted or not), so nothing may rely on it; the LUN's lease keeps its source chunks still.
 */
export type CopyOptions = RequestOptions;

export interface ListEntry {
  readonly key: string;
  readonly size: number;
  /**
   * The object's entity tag, unquoted as in ObjectMeta, where the backend lists it (S3
   * ListObjectsV2 does; the local and memory stores give what their put returned). Conditional
   * chunk writes start from it (ChunkTags).
   */
  readonly etag?: string;
}

/** One page of a listing; `next` continues it (S3 ListObjectsV2 continuation token). */
export interface ListPage {
  readonly entries: readonly ListEntry[];
  readonly next?: string;
}

/**
 * The object store contract every backend implements (local directory, S3, memory) and the
 * conformance suite in test/ checks: a put is atomic (a reader sees the old or the new object,
 * never a mix), a missing object is `null`, not an error, and every failure is a StorageError.
 */
export interface ObjectStore {
  readonly description: string;
  /** The object or a byte range of it; null when the key does not exist. */
  get(key: string, range?: { offset: number; length: number }, opts?: RequestOptions): Promise<GetResult | null>;
  head(key: string, opts?: RequestOptions): Promise<ObjectMeta | null>;
  put(key: string, body: Buffer, opts?: PutOptions): Promise<{ etag: string }>;
  /**
   * Server-side copy of `from` to `to`, metadata included: no data passes through us (S3
   * CopyObject). Null when `from` does not exist. A mutation of `to`: it needs the write gate.
   */
  copy(from: string, to: string, opts?: CopyOptions): Promise<{ etag: string } | null>;
  /** Deleting a missing key succeeds. */
  delete(key: string, opts?: RequestOptions): Promise<void>;
  /** Deletes many keys, batched by the backend (S3 DeleteObjects takes 1000). */
  deleteMany(keys: readonly string[], opts?: RequestOptions): Promise<void>;
  /** One page of the keys under a prefix, in lexicographic order (use `listAll` to walk them). */
  listPage(prefix: string, token: string | undefined, opts?: RequestOptions): Promise<ListPage>;
  /**
   * Leftovers of interrupted operations a backend may keep outside the listing (the local
   * store's temporary files); deletable with `delete`. Optional.
   */
  listLeftovers?(prefix: string): Promise<ListEntry[]>;
  close(): Promise<void>;
}

/** Every key under a prefix, page by page. */
export async function* listAll(store: ObjectStore, prefix: string, opts?: RequestOptions): AsyncIterable<ListEntry> {
  let token: string | undefined;
  do {
    const page = await store.listPage(prefix, token, opts);
    yield* page.entries;
    token = page.next;
  } while (token !== undefined);
}
