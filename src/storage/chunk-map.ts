import { randomBytes } from 'node:crypto';
import { invariant } from '../util/invariant';
import { log } from '../util/log';
import { forEachParallel } from '../util/parallel';
import { type ChunkState, ChunkStates } from './chunk-states';
import { type ChunkTag, ChunkTags, WRITER_META_KEY } from './chunk-tags';
import { isStorageError, StorageError } from './errors';
import { CRC_META_KEY, SEGMENT_SIZE, segmentCrcs, verifySegments } from './integrity';
import type { LunLayout } from './layout';
import type { Lane, ObjectMeta, ObjectStore } from './object-store';
import { HOLE_METADATA } from './snapshots/holes';
import type { ByteRange } from './volume';
import type { VolumeStats } from './volume-stats';
import type { WriteGate } from './write-gate';

/** A point in a chunk's history: nothing changed since iff the mark still equals `mark(i)`. */
interface Mark {
  readonly stamp: number;
  readonly epoch: number;
}

export interface Fetched {
  /** The bytes read (the chunk, or the range), or null: no object, the chunk reads as zeros. */
  readonly body: Buffer | null;
  /** Offset of body[0] in the chunk. */
  readonly offset: number;
  /**
   * No mutation of the chunk was in flight when the GET was sent or registered while it ran:
   * the bytes are the store's current content and may be cached (see `stillCurrent`).
   */
  readonly current: boolean;
  readonly mark: Mark;
}

const settle = (): undefined => undefined;

/** Server-side copies one copyIn sends at once (each is one CopyObject request). */
const COPY_PARALLEL = 8;

/** Hole-marker PUTs one discard sends at once in conditional mode (there is no batch PUT). */
const HOLES_PARALLEL = 8;

/**
 * Conditional mode: how many times one chunk PUT is decided again after a 412 that was an
 * earlier PUT of ours landing late (each such PUT was sent once and can land only once).
 */
/** Writes landing late (ours, or a deposed predecessor's) one PUT decides again on, at most. */
const MAX_CONFLICTS = 4;

/** The body of a hole marker: a zero-length chunk object reads as zeros (fetchOnce, ChunkStates). */
const HOLE_BODY = Buffer.alloc(0);

/**
 * The one place that turns a chunk index into an object and a missing object into a meaning
 * (ChunkStates). It orders the store operations of each chunk (a PUT and a later DELETE land
 * in the order they were decided), decides when a DELETE is needed (an all-zero chunk, a
 * discard: only where an object may exist), shares whole-chunk GETs, verifies what it reads
 * (size, CRC32C per 64 KiB segment), and tells whether what a GET returned is still current.
 * Every mutation passes the LUN's write gate.
 *
 * Conditional mode (a cluster, issue 17: fencing that does not rest on timing alone): every
 * chunk PUT is conditional on the object this process last saw (ChunkTags: If-Match on its
 * ETag, If-None-Match: * where it saw none), so a deposed server's late PUT fails with 412
 * instead of overwriting its successor's data, and a 412 that is not our own PUT fences the
 * LUN. S3 has no conditional DELETE (RGW ignores If-Match on one): no chunk is deleted, a
 * deallocated chunk is stored as a hole marker (a zero-length PUT, conditional like any other).
 * Server-side copies are refused: CopyObject takes no condition on its destination.
 */
export class ChunkMap {
  private states: ChunkStates;
  /** Conditional mode: the ETag last seen per chunk (undefined: unconditional writes). */
  private tags: ChunkTags | undefined;
  /** Tail of each chunk's chain of mutations (never rejects). */
  private readonly chains = new Map<number, Promise<void>>();
  /** Mutations registered and not settled, per chunk. */
  private readonly inFlight = new Map<number, number>();
  /** Last change stamp per chunk; forgotten (epoch + 1) when nothing is being fetched. */
  private readonly changed = new Map<number, number>();
  private stamp = 0;
  private epoch = 0;
  private fetching = 0;
  private readonly shared = new Map<number, { readonly promise: Promise<Fetched>; readonly created: Mark }>();
  /**
   * Called once with each whole-chunk GET's result, before anyone who waits for it: the cache
   * decides there whether to keep the buffer (Writeback.adopt), so every reader then knows
   * whether the bytes it holds are the cache's (counted views) or its own.
   */
  onWholeFetched: ((i: number, f: Fetched, stream: boolean) => void) | undefined;
  /**
   * Where a whole chunk's GET puts its body (RequestOptions.bodyBuffer): a recycled cache
   * buffer. `stream`: the GET serves a sequential reader (see Writeback's streamed chunks).
   */
  bodyBuffer: ((size: number, stream: boolean) => Buffer | undefined) | undefined;

  constructor(
    private readonly store: ObjectStore,
    readonly layout: LunLayout,
    chunks: number,
    private readonly chunkSize: number,
    private readonly gate: WriteGate,
    private readonly stats: VolumeStats,
    /** A clone: its first `inheritedBelow` chunks read the parent snapshot's where it has none. */
    private readonly inheritedBelow = 0,
    /** Conditional chunk writes (see the class): a cluster's fencing by ETag. */
    conditional = false,
    /** The LUN's checksum segment (volume.json, integrity.ts). */
    readonly segmentSize = SEGMENT_SIZE,
  ) {
    // The writer id signs this map's PUTs (WRITER_META_KEY): 48 random bits per opening.
    this.tags = conditional ? new ChunkTags(chunks, randomBytes(6).toString('hex')) : undefined;
    this.states = new ChunkStates(chunks, inheritedBelow, this.tags);
  }

  /** Whether chunk PUTs are conditional (a cluster) and nothing is deleted or copied server-side. */
  get conditional(): boolean {
    return this.tags !== undefined;
  }

  /** Conditional mode: what is known of chunk i's object (tests, diagnostics). */
  tag(i: number): ChunkTag | undefined {
    return this.tags?.get(i);
  }

  /**
   * The store's chunks were replaced behind us (an online restore, under a barrier): every
   * state is unknown again (a listing starts), and no GET sent before this call is current,
   * so nothing it returns is cached.
   */
  forgetAll(): void {
    invariant(this.inFlight.size === 0, () => `${this.layout.name}: chunks forgotten with mutations in flight`);
    // Fresh objects: a listing still running fills the ones it was given, not these.
    this.tags = this.tags ? new ChunkTags(this.states.chunks, this.tags.writerId) : undefined;
    this.states = new ChunkStates(this.states.chunks, this.inheritedBelow, this.tags);
    this.changed.clear();
    this.epoch++;
  }

  get chunks(): number {
    return this.states.chunks;
  }

  state(i: number): ChunkState {
    return this.states.get(i);
  }

  /** Known to have no object: reads as zeros, costs no request. */
  isAbsent(i: number): boolean {
    return this.states.get(i) === 'absent';
  }

  /** Starts the background listing (once); resolves when every chunk has a known state. */
  load(): Promise<void> {
    return this.states.load(this.store, this.layout);
  }

  census(): Record<ChunkState, number> {
    return this.states.census();
  }

  reconcile(present: ReadonlySet<number>): void {
    this.states.reconcile(present);
  }

  /** A grown LUN: the new chunks are absent (the caller deleted any stale object there). */
  grow(chunks: number): void {
    this.states.grow(chunks);
    this.tags?.grow(chunks);
  }

  // ---------------------------------------------------------------- reads

  /**
   * GETs a chunk whole, shared: a caller that arrives while a GET of the chunk runs joins it,
   * unless a mutation was registered since that GET was asked for (its result could be older
   * than data this caller must see): then it sends its own. `stream`: for a sequential reader
   * (read-ahead, or a reader in a sequential run).
   */
  fetchWhole(i: number, lane: Lane, stream = false): Promise<Fetched> {
    const running = this.shared.get(i);
    if (running && this.unchanged(i, running.created)) return running.promise;
    const created = this.mark(i);
    const promise = this.fetchOnce(i, undefined, lane, false, stream)
      .then((f) => {
        this.onWholeFetched?.(i, f, stream);
        return f;
      })
      .finally(() => {
        if (this.shared.get(i)?.promise === promise) this.shared.delete(i);
      });
    this.shared.set(i, { promise, created });
    return promise;
  }

  /** GETs a segment-aligned range of a chunk (not shared). */
  fetchRange(i: number, range: ByteRange, lane: Lane): Promise<Fetched> {
    return this.fetchOnce(i, range, lane);
  }

  /** GETs a chunk whole even where it is known absent (defrag verifies what the store has). */
  fetchListed(i: number, lane: Lane): Promise<Fetched> {
    return this.fetchOnce(i, undefined, lane, true);
  }

  /** Whether a fetched result is still the store's content now (nothing registered since). */
  stillCurrent(i: number, f: Fetched): boolean {
    return f.current && this.unchanged(i, f.mark);
  }

  private async fetchOnce(i: number, range: ByteRange | undefined, lane: Lane, ask = false, stream = false): Promise<Fetched> {
    const key = this.layout.chunkKey(i);
    const offset = range?.offset ?? 0;
    this.fetching++;
    try {
      // After every mutation of the chunk decided before this read.
      await this.chains.get(i);
      const mark = this.mark(i);
      const clean = !this.inFlight.has(i);
      if (clean && !ask && this.isAbsent(i)) return { body: null, offset, current: true, mark };
      const whole = !range || (range.offset === 0 && range.length === this.chunkSize);
      const source = whole ? this.bodyBuffer : undefined;
      const bodyBuffer = source ? (size: number) => source(size, stream) : undefined;
      const fetched = await this.store.get(key, whole ? undefined : range, { lane, ...(bodyBuffer ? { bodyBuffer } : {}) }).catch((e: unknown) => {
        // What the store found wrong with the object (an encoded chunk that does not decode).
        if (isStorageError(e, 'data')) this.stats.checksumErrors++;
        throw e;
      });
      const current = clean && this.unchanged(i, mark);
      // Conditional mode learns the object's ETag from a current read (where it knew none, or
      // to settle an uncertain PUT). Not for a chunk a clone may inherit: the CloneStore answers
      // it from the parent, and its own hole marker as no object. Not from the empty answer to
      // a ranged GET of a hole marker (no ETag). A read never fences: another server's object
      // found here fails the next PUT's precondition, which does.
      if (current && this.tags && i >= this.inheritedBelow && fetched?.meta.etag !== '') {
        this.tags.settle(i, fetched?.meta ?? null);
      }
      // A zero-length chunk object is a hole marker (a clone's deallocated chunk, or one an
      // interrupted hydration left): zeros, like no object.
      const got = fetched && fetched.meta.size > 0 ? fetched : null;
      if (!got) {
        if (current) this.states.set(i, 'absent');
        return { body: null, offset, current, mark };
      }
      if (got.meta.size !== this.chunkSize) {
        this.stats.checksumErrors++;
        throw new StorageError('data', `${key}: object is ${got.meta.size} bytes, expected ${this.chunkSize}`);
      }
      try {
        verifySegments(key, got.body, offset, got.meta.metadata[CRC_META_KEY], this.chunkSize);
      } catch (e) {
        if (isStorageError(e, 'data')) this.stats.checksumErrors++;
        throw e;
      }
      // An inherited chunk read the parent's object: still none of its own.
      if (current && this.states.get(i) !== 'inherited') this.states.set(i, 'stored');
      return { body: got.body, offset, current, mark };
    } finally {
      this.fetching--;
      if (this.fetching === 0 && this.changed.size > 1024) {
        this.changed.clear();
        this.epoch++;
      }
    }
  }

  private mark(i: number): Mark {
    return { stamp: this.changed.get(i) ?? 0, epoch: this.epoch };
  }

  private unchanged(i: number, m: Mark): boolean {
    return m.epoch === this.epoch && (this.changed.get(i) ?? 0) === m.stamp;
  }

  // ---------------------------------------------------------------- mutations

  /**
   * Makes the store hold `content` for chunk i: a PUT, or for an all-zero chunk a DELETE when
   * an object may exist (nothing at all when it is known absent). Decided when its turn in the
   * chunk's order comes.
   */
  write(i: number, content: Buffer, lane: Lane, zero: boolean): Promise<void> {
    invariant(content.length === this.chunkSize, () => `chunk ${i}: ${content.length} bytes to store`);
    // From now on a PUT may land: a read asks the store, a later discard DELETEs.
    if (!zero) this.states.set(i, 'may-exist');
    if (this.tags) {
      // An all-zero chunk is a hole marker, where an object may exist (see the class).
      return this.mutate([i], async () => {
        if (!zero || this.states.get(i) !== 'absent') await this.putConditional(i, zero ? HOLE_BODY : content, lane);
      });
    }
    return this.mutate([i], async () => {
      const key = this.layout.chunkKey(i);
      if (zero) {
        if (this.states.get(i) === 'absent') return;
        const opts = this.gate.options(lane, `DELETE ${key}`);
        this.states.set(i, 'may-exist');
        await this.store.delete(key, opts);
        this.states.set(i, 'absent');
        this.stats.chunksDeleted++;
        return;
      }
      const opts = this.gate.options(lane, `PUT ${key}`);
      this.states.set(i, 'may-exist');
      await this.store.put(key, content, { ...opts, metadata: { [CRC_META_KEY]: segmentCrcs(content, this.segmentSize) } });
      this.states.set(i, 'stored');
      this.stats.chunksUploaded++;
      this.stats.bytesUploaded += content.length;
    });
  }

  /** Deletes whole chunks (a discard): only those where an object may exist, 1000 per request. */
  discard(indexes: readonly number[], lane: Lane): Promise<void> {
    if (this.tags) {
      // Conditional mode: a hole marker per chunk where an object may exist, a few at a time.
      // Every PUT started is waited for, even after one failed: the mutation is settled only
      // when none of its requests is in flight any more.
      return this.mutate(indexes, async () => {
        const doomed = indexes.filter((i) => this.states.get(i) !== 'absent');
        let failed: { readonly error: unknown } | undefined;
        await forEachParallel(doomed.length, HOLES_PARALLEL, async (k) => {
          if (failed) return;
          await this.putConditional(doomed[k], HOLE_BODY, lane).catch((error: unknown) => {
            failed ??= { error };
          });
        });
        if (failed) throw failed.error;
      });
    }
    return this.mutate(indexes, async () => {
      const doomed = indexes.filter((i) => this.states.get(i) !== 'absent');
      for (let k = 0; k < doomed.length; k += 1000) {
        const batch = doomed.slice(k, k + 1000);
        const opts = this.gate.options(lane, `DELETE ${batch.length} chunks`);
        for (const i of batch) this.states.set(i, 'may-exist');
        await this.store.deleteMany(
          batch.map((i) => this.layout.chunkKey(i)),
          opts,
        );
        for (const i of batch) this.states.set(i, 'absent');
        this.stats.chunksDeleted += batch.length;
      }
    });
  }

  /**
   * Server-side copies (EXTENDED COPY, ODX): chunk `index` becomes a copy of the object at
   * `from` (S3 CopyObject: the bytes and their CRC metadata, no data through us); where `from`
   * has no object the chunk is deleted instead, as a missing source chunk reads as zeros.
   * A few copies at a time; each through the gate like every mutation.
   */
  copyIn(pairs: readonly { readonly index: number; readonly from: string }[], lane: Lane): Promise<void> {
    // CopyObject has no condition on its destination: a deposed server's copy would land.
    invariant(!this.tags, () => `${this.layout.name}: a server-side copy with conditional chunk writes`);
    return this.mutate(
      pairs.map((p) => p.index),
      async () => {
        const one = async (p: { readonly index: number; readonly from: string }): Promise<void> => {
          const key = this.layout.chunkKey(p.index);
          this.states.set(p.index, 'may-exist');
          const copied = await this.store.copy(p.from, key, this.gate.options(lane, `COPY ${p.from} to ${key}`));
          if (copied) {
            this.states.set(p.index, 'stored');
            this.stats.chunksCopied++;
            return;
          }
          await this.store.delete(key, this.gate.options(lane, `DELETE ${key}`));
          this.states.set(p.index, 'absent');
          this.stats.chunksDeleted++;
        };
        await forEachParallel(pairs.length, COPY_PARALLEL, (k) => one(pairs[k]));
      },
    );
  }

  /**
   * Conditional mode: makes the store hold `body` (a chunk, or HOLE_BODY) for chunk i with a
   * PUT conditioned on the object last seen, signed with a fresh writer id. Where the object is
   * unknown or uncertain, or a hole marker (all hole markers share one ETag on S3: only the
   * writer tells ours from a rival's), a HEAD first settles it. A 412 is then looked up
   * (HEAD): our own PUT found there landed although its answer was lost (the retry layer
   * repeated it: success); an earlier PUT of ours that landed late is overwritten (decided
   * again on its ETag); anything else is another server's write: the LUN is fenced.
   */
  private async putConditional(i: number, body: Buffer, lane: Lane): Promise<void> {
    const tags = this.tags as ChunkTags;
    const key = this.layout.chunkKey(i);
    const hole = body.length === 0;
    const metadata = hole ? HOLE_METADATA : { [CRC_META_KEY]: segmentCrcs(body, this.segmentSize) };
    for (let attempt = 1; ; attempt++) {
      if (attempt > MAX_CONFLICTS) throw new StorageError('unavailable', `PUT ${key}: met ${MAX_CONFLICTS} writes landing late; try again`);
      if (tags.needsHead(i)) {
        const seen = await this.headChunk(i, lane);
        if (!tags.settle(i, seen)) {
          await this.foreign(i, seen, 'found by the HEAD before a conditional PUT');
          continue;
        }
      }
      const writer = tags.newWriter();
      const opts = this.gate.options(lane, `PUT ${key}`);
      const condition = tags.conditionOf(i);
      this.states.set(i, 'may-exist');
      tags.sent(i, writer);
      let etag: string;
      try {
        ({ etag } = await this.store.put(key, body, { ...opts, ...condition, metadata: { ...metadata, [WRITER_META_KEY]: writer } }));
      } catch (e) {
        if (!isStorageError(e, 'precondition')) throw e;
        const found = await this.headChunk(i, lane);
        if (found?.metadata[WRITER_META_KEY] !== writer) {
          if (found && tags.isOwn(found)) tags.settle(i, found);
          else await this.foreign(i, found, '412 on a conditional PUT');
          continue;
        }
        this.stats.conditionalRepeats++;
        etag = found.etag;
      }
      // An answer without an ETag (none of our backends) leaves the tag pending: the next PUT HEADs.
      if (etag !== '') tags.stored(i, { etag, hole, writer });
      this.states.set(i, hole ? 'absent' : 'stored');
      if (hole) {
        this.stats.chunksDeleted++;
      } else {
        this.stats.chunksUploaded++;
        this.stats.bytesUploaded += body.length;
      }
      return;
    }
  }

  /**
   * The object at chunk i's own key (a clone's CloneStore would answer an inherited chunk with
   * its parent's). Part of a mutation: the gate is asked first and its shutting aborts it.
   */
  private headChunk(i: number, lane: Lane): Promise<ObjectMeta | null> {
    const key = this.layout.chunkKey(i);
    const opts = this.gate.options(lane, `HEAD ${key}`);
    this.stats.conditionalHeads++;
    return this.store.head(key, { ...opts, exactKey: true });
  }

  /**
   * Chunk i holds another server's object. If the lease object still names us, that server is
   * a deposed predecessor whose PUT, sent before it lost the LUN, landed late: write over it
   * (it was never acknowledged as ours to keep: a write-through or journal write is
   * acknowledged only after its PUT). Otherwise we are the deposed one: fenced.
   */
  private async foreign(i: number, found: ObjectMeta | null, how: string): Promise<void> {
    const check = this.gate.holderCheck;
    if (check && (await check())) {
      this.stats.lateForeignWrites++;
      log.warn('a chunk was written by a server that no longer holds the LUN; writing over it', { key: this.layout.chunkKey(i), how });
      (this.tags as ChunkTags).adopt(i, found);
      return;
    }
    throw this.rival(i, how);
  }

  /** Another server wrote chunk i: this one lost the LUN (its successor holds the lease). */
  private rival(i: number, how: string): StorageError {
    const why = `chunk ${this.layout.chunkKey(i)} was written by another server (${how})`;
    this.stats.writeConflicts++;
    this.gate.fence(why);
    return new StorageError('fenced', `${this.layout.name}: ${why}`);
  }

  /**
   * Runs `fn` after every mutation of the same chunks decided earlier. The mutation counts as
   * a change of its chunks from this call on (synchronously: a GET that completes after this
   * call is not current) until it has settled.
   */
  private mutate(indexes: readonly number[], fn: () => Promise<void>): Promise<void> {
    const prior = indexes.map((i) => this.chains.get(i)).filter((p): p is Promise<void> => p !== undefined);
    for (const i of indexes) {
      this.inFlight.set(i, (this.inFlight.get(i) ?? 0) + 1);
      this.changed.set(i, ++this.stamp);
    }
    const run = (prior.length > 0 ? Promise.all(prior) : Promise.resolve()).then(fn).finally(() => {
      for (const i of indexes) {
        const n = this.inFlight.get(i) ?? 0;
        invariant(n > 0, () => `chunk ${i}: a mutation settled that was never registered`);
        if (n === 1) this.inFlight.delete(i);
        else this.inFlight.set(i, n - 1);
        this.changed.set(i, ++this.stamp);
        if (this.chains.get(i) === tail) this.chains.delete(i);
      }
    });
    const tail = run.then(settle, settle);
    for (const i of indexes) this.chains.set(i, tail);
    return run;
  }
}
