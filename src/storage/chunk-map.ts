import { invariant } from '../util/invariant';
import { forEachParallel } from '../util/parallel';
import { type ChunkState, ChunkStates } from './chunk-states';
import { isStorageError, StorageError } from './errors';
import { CRC_META_KEY, segmentCrcs, verifySegments } from './integrity';
import type { LunLayout } from './layout';
import type { Lane, ObjectStore } from './object-store';
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

/**
 * The one place that turns a chunk index into an object and a missing object into a meaning
 * (ChunkStates). It orders the store operations of each chunk (a PUT and a later DELETE land
 * in the order they were decided), decides when a DELETE is needed (an all-zero chunk, a
 * discard: only where an object may exist), shares whole-chunk GETs, verifies what it reads
 * (size, CRC32C per 64 KiB segment), and tells whether what a GET returned is still current.
 * Every mutation passes the LUN's write gate.
 */
export class ChunkMap {
  private states: ChunkStates;
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
  onWholeFetched: ((i: number, f: Fetched) => void) | undefined;

  constructor(
    private readonly store: ObjectStore,
    readonly layout: LunLayout,
    chunks: number,
    private readonly chunkSize: number,
    private readonly gate: WriteGate,
    private readonly stats: VolumeStats,
    /** A clone: its first `inheritedBelow` chunks read the parent snapshot's where it has none. */
    private readonly inheritedBelow = 0,
  ) {
    this.states = new ChunkStates(chunks, inheritedBelow);
  }

  /**
   * The store's chunks were replaced behind us (an online restore, under a barrier): every
   * state is unknown again (a listing starts), and no GET sent before this call is current,
   * so nothing it returns is cached.
   */
  forgetAll(): void {
    invariant(this.inFlight.size === 0, () => `${this.layout.name}: chunks forgotten with mutations in flight`);
    this.states = new ChunkStates(this.states.chunks, this.inheritedBelow);
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
  }

  // ---------------------------------------------------------------- reads

  /**
   * GETs a chunk whole, shared: a caller that arrives while a GET of the chunk runs joins it,
   * unless a mutation was registered since that GET was asked for (its result could be older
   * than data this caller must see): then it sends its own.
   */
  fetchWhole(i: number, lane: Lane): Promise<Fetched> {
    const running = this.shared.get(i);
    if (running && this.unchanged(i, running.created)) return running.promise;
    const created = this.mark(i);
    const promise = this.fetchOnce(i, undefined, lane)
      .then((f) => {
        this.onWholeFetched?.(i, f);
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

  private async fetchOnce(i: number, range: ByteRange | undefined, lane: Lane, ask = false): Promise<Fetched> {
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
      const fetched = await this.store.get(key, whole ? undefined : range, { lane });
      const current = clean && this.unchanged(i, mark);
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
        verifySegments(key, got.body, offset, got.meta.metadata[CRC_META_KEY]);
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
      await this.store.put(key, content, { ...opts, metadata: { [CRC_META_KEY]: segmentCrcs(content) } });
      this.states.set(i, 'stored');
      this.stats.chunksUploaded++;
      this.stats.bytesUploaded += content.length;
    });
  }

  /** Deletes whole chunks (a discard): only those where an object may exist, 1000 per request. */
  discard(indexes: readonly number[], lane: Lane): Promise<void> {
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
