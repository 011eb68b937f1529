import { invariant } from '../util/invariant';
import { log } from '../util/log';
import { PagedBytes } from '../util/paged-bytes';
import type { ChunkTags } from './chunk-tags';
import type { LunLayout } from './layout';
import { listAll, type ObjectStore } from './object-store';

/**
 * What the store holds for one chunk index, as far as this process knows:
 * - unlisted: not known yet (the listing has not reached it); a read must ask;
 * - absent: no object; the chunk reads as zeros without a request;
 * - stored: an object exists;
 * - may-exist: a PUT or DELETE was sent whose outcome is unknown (an answer lost, a time
 *   limit hit, the request aborted): it may have happened, so a read asks and a discard DELETEs.
 * - inherited: a clone's chunk with no object of its own: it reads the parent snapshot's (a
 *   read asks, the store answers from the parent), and a discard must hide the parent's
 *   (the clone's store writes a hole marker for the DELETE).
 */
export type ChunkState = 'unlisted' | 'absent' | 'stored' | 'may-exist' | 'inherited';

const CODE: Readonly<Record<ChunkState, number>> = { unlisted: 0, absent: 1, stored: 2, 'may-exist': 3, inherited: 4 };
const NAME: readonly ChunkState[] = ['unlisted', 'absent', 'stored', 'may-exist', 'inherited'];

/**
 * The state of every chunk index of a LUN, one byte each, in pages that exist only where the
 * states are mixed (PagedBytes: an empty 1 TiB LUN costs no per-chunk memory). Only ChunkMap
 * changes it. The listing, run once in the background (opening never waits for it), fills
 * only the indexes still unlisted: everything that happened meanwhile set its state explicitly.
 */
export class ChunkStates {
  private readonly codes: PagedBytes;
  private loading: Promise<void> | undefined;
  private loadedFlag = false;

  /**
   * `inheritedBelow`: a clone's parent snapshot has that many chunks (0: not a clone).
   * `tags`: conditional mode: the listing also fills in the ETags it sees (ChunkTags.listed).
   */
  constructor(
    private count: number,
    private readonly inheritedBelow = 0,
    private readonly tags?: ChunkTags,
  ) {
    this.codes = new PagedBytes(count, CODE.unlisted);
  }

  get chunks(): number {
    return this.count;
  }

  get loaded(): boolean {
    return this.loadedFlag;
  }

  get(i: number): ChunkState {
    invariant(i >= 0 && i < this.count, () => `chunk ${i} outside 0..${this.count - 1}`);
    return NAME[this.codes.get(i)];
  }

  set(i: number, s: ChunkState): void {
    invariant(i >= 0 && i < this.count, () => `chunk ${i} outside 0..${this.count - 1}`);
    this.codes.set(i, CODE[s]);
  }

  /** A grown LUN: the new chunks are absent (the caller deleted anything stored there first). */
  grow(chunks: number): void {
    invariant(chunks >= this.count, () => `a LUN never shrinks (${this.count} -> ${chunks} chunks)`);
    this.codes.grow(chunks, CODE.absent);
    this.count = chunks;
  }

  /** Starts (once) the background listing; resolves when every index has a state. */
  load(store: ObjectStore, layout: LunLayout): Promise<void> {
    if (!this.loading) {
      this.loading = this.list(store, layout).catch((e) => {
        this.loading = undefined;
        log.warn('chunk listing failed; will retry on demand', { lun: layout.name, error: (e as Error).message });
        throw e;
      });
    }
    return this.loading;
  }

  private async list(store: ObjectStore, layout: LunLayout): Promise<void> {
    // The LUN may grow while we list; the chunks added are known absent already.
    const n = this.count;
    // 0: no object; 1: an object; 2: a hole marker (a zero-length object: reads as zeros).
    const seen = new PagedBytes(n, 0);
    for await (const entry of listAll(store, layout.chunksPrefix, { lane: 'background' })) {
      const i = layout.chunkIndexOf(entry.key);
      if (i === undefined || i >= n) continue;
      seen.set(i, entry.size === 0 ? 2 : 1);
      // At once: a tag learned meanwhile (a HEAD, a PUT of ours) is newer and is kept.
      this.tags?.listed(i, entry);
    }
    this.settleUnlisted(n, seen, true);
    this.loadedFlag = true;
  }

  /**
   * Gives every unlisted index below `n` the state a listing says (`seen`: 0 no object, 1 an
   * object, 2 a hole marker), a uniform run at a time; with `tellTags`, tells ChunkTags of each
   * index with no object (a clone's chunk it inherits has none at its key either).
   */
  private settleUnlisted(n: number, seen: PagedBytes, tellTags: boolean): void {
    const tags = tellTags ? this.tags : undefined;
    for (let i = 0; i < n; ) {
      // [i, end): one code, one `seen` value, one side of inheritedBelow (ChunkTags: one index).
      let end = Math.min(n, this.codes.runEnd(i), seen.runEnd(i));
      if (i < this.inheritedBelow) end = Math.min(end, this.inheritedBelow);
      if (tags) end = i + 1;
      const s = seen.get(i);
      if (this.codes.get(i) === CODE.unlisted) this.codes.fill(i, end, this.listedCode(i, s));
      if (s === 0) tags?.listed(i, undefined);
      i = end;
    }
  }

  private inherits(i: number): boolean {
    return i < this.inheritedBelow;
  }

  /** What a listing says about chunk i (`seen`: 0 no object, 1 an object, 2 a hole marker). */
  private listedCode(i: number, seen: number): number {
    if (seen === 1) return CODE.stored;
    if (seen === 2) return CODE.absent;
    return this.inherits(i) ? CODE.inherited : CODE.absent;
  }

  /**
   * Folds in a fresh listing (defrag). Only evidence that an object exists is trusted: a page
   * may predate a PUT, so absence never turns a chunk absent here (a wrong "stored" costs one
   * GET, a wrong "absent" would read zeros).
   */
  reconcile(present: ReadonlySet<number>): void {
    for (const i of present) if (i < this.count && this.codes.get(i) !== CODE.absent) this.codes.set(i, CODE.stored);
    if (this.loadedFlag) return;
    const seen = new PagedBytes(this.count, 0);
    for (const i of present) if (i < this.count) seen.set(i, 1);
    this.settleUnlisted(this.count, seen, false);
    this.loadedFlag = true;
  }

  /** How many chunks are in each state (statistics, defrag, `lun info`). */
  census(): Record<ChunkState, number> {
    const c = [0, 0, 0, 0, 0];
    this.codes.forEachRun((from, to, v) => {
      c[v] += to - from;
    });
    return { unlisted: c[0], absent: c[1], stored: c[2], 'may-exist': c[3], inherited: c[4] };
  }
}
