import { log } from '../util/log';
import type { LunLayout } from './layout';
import { listAll, type ObjectStore } from './object-store';

const UNKNOWN = 0;
const PRESENT = 1;
const HOLE = 2;

/**
 * Which chunks exist in the store. Built lazily by one background listing, so opening a LUN
 * never waits on it; every PUT and DELETE updates it as it happens, and the listing only fills
 * chunks nobody touched meanwhile. Once loaded, known holes cost no request.
 */
export class AllocationMap {
  private state: Uint8Array;
  private loading: Promise<void> | undefined;
  private loadedFlag = false;

  constructor(private count: number) {
    this.state = new Uint8Array(count);
  }

  get chunks(): number {
    return this.count;
  }

  /** A grown LUN: the new chunks are holes (the caller deleted anything stored there first). */
  grow(chunks: number): void {
    if (chunks <= this.count) return;
    const next = new Uint8Array(chunks);
    next.set(this.state);
    next.fill(HOLE, this.count);
    this.state = next;
    this.count = chunks;
  }

  get loaded(): boolean {
    return this.loadedFlag;
  }

  isHole(i: number): boolean {
    return this.state[i] === HOLE;
  }

  isPresent(i: number): boolean {
    return this.state[i] === PRESENT;
  }

  /** Present or not yet known: a request may find something. */
  mayExist(i: number): boolean {
    return this.state[i] !== HOLE;
  }

  set(i: number, present: boolean): void {
    if (i < this.chunks) this.state[i] = present ? PRESENT : HOLE;
  }

  /** Starts (once) the background listing; resolves when the map is complete. */
  load(store: ObjectStore, layout: LunLayout): Promise<void> {
    if (!this.loading) {
      this.loading = this.list(store, layout).catch((e) => {
        this.loading = undefined;
        log.warn('allocation map listing failed; will retry on demand', { lun: layout.name, error: (e as Error).message });
        throw e;
      });
    }
    return this.loading;
  }

  private async list(store: ObjectStore, layout: LunLayout): Promise<void> {
    // The map may grow while we list; the chunks added are already known holes.
    const n = this.count;
    const seen = new Uint8Array(n);
    for await (const entry of listAll(store, layout.chunksPrefix, { lane: 'background' })) {
      const i = layout.chunkIndexOf(entry.key);
      if (i !== undefined && i < n) seen[i] = 1;
    }
    for (let i = 0; i < n; i++) {
      if (this.state[i] === UNKNOWN) this.state[i] = seen[i] ? PRESENT : HOLE;
    }
    this.loadedFlag = true;
  }

  /**
   * Folds a fresh listing in (defrag rebuilds the map with it). Only evidence that an object
   * exists is trusted: a listing page may predate a PUT, so absence never turns a chunk into
   * a hole here (a wrong "present" costs one GET, a wrong "hole" would read zeros).
   */
  reconcile(present: ReadonlySet<number>): void {
    for (const i of present) if (i < this.chunks && this.state[i] !== HOLE) this.state[i] = PRESENT;
    if (!this.loadedFlag) {
      for (let i = 0; i < this.chunks; i++) if (this.state[i] === UNKNOWN) this.state[i] = present.has(i) ? PRESENT : HOLE;
      this.loadedFlag = true;
    }
  }

  /** Chunks currently known present (for statistics and defrag). */
  presentCount(): number {
    let n = 0;
    for (let i = 0; i < this.chunks; i++) if (this.state[i] === PRESENT) n++;
    return n;
  }
}
