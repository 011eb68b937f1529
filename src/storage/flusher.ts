import { type Clock, every, type Timer } from '../util/clock';
import { log } from '../util/log';
import type { ChunkEntry } from './chunk-entry';
import type { Lane } from './object-store';
import type { WriteGate } from './write-gate';

/** Uploads in flight at most, in the background and in a SYNCHRONIZE CACHE's drain (the I/O pool's flush lane bounds them again). */
export const FLUSH_PARALLEL = 16;
const TICK_MS = 50;

/** What the flusher sees of the Writeback: it picks entries, the Writeback changes them. */
export interface FlusherHost {
  entries(): Iterable<ChunkEntry>;
  dirty(): number;
  /** Makes the entry's current generation durable (Writeback.durable on `lane`). */
  durable(e: ChunkEntry, lane: Lane): Promise<void>;
  /** Chunks whose latest data is only in the journal (evicted from RAM before their upload). */
  spilled(): Iterable<number>;
  /** Brings a spilled chunk back into the cache if there is room now (`spill`: or by spilling another). */
  restore(i: number, spill: boolean): Promise<ChunkEntry | undefined>;
  /**
   * With a journal: the longest its writes wait for their upload (a full cache spills to the
   * journal instead of waiting for uploads); undefined without one.
   */
  journaled(): number | undefined;
  /** The journal is filling up (more than half): its oldest spilled chunks go to S3 first. */
  journalPressure(): boolean;
  /** When the oldest journal record of a chunk not yet in S3 was written (clock ms). */
  pendingSince(i: number): number | undefined;
  readonly name: string;
}

/**
 * The background flusher's policy: a dirty chunk is uploaded once it has not been written for
 * `flushDelay`, or at the latest 10 x `flushDelay` (at least 2 s) after it became dirty (a chunk
 * that never stops changing is still made durable); when half the cache is dirty, every
 * flushable chunk goes; a writer facing a full cache starts the oldest ones at once. With a
 * journal a full cache is no reason to upload (it spills to the journal): chunks are uploaded
 * when they settle, and spilled ones are brought back and uploaded while the cache has room,
 * or, once the journal is half full, in the journal's order even at the cost of a spill.
 */
export class Flusher {
  private inFlight = 0;
  private readonly timer: Timer;
  private readonly maxDirtyMs: number;

  constructor(
    private readonly host: FlusherHost,
    private readonly o: { readonly capacity: number; readonly flushDelayMs: number },
    private readonly clock: Clock,
    private readonly gate: WriteGate,
  ) {
    this.maxDirtyMs = Math.max(2_000, 10 * o.flushDelayMs);
    this.timer = every(clock, TICK_MS, () => this.tick());
  }

  stop(): void {
    this.timer.cancel();
  }

  /**
   * A writer found the cache full: start flushing the oldest dirty chunks now. Its command
   * waits on these uploads, so they are foreground I/O: the flush lane's reads-first limit
   * (IoPool) would otherwise hold a blocked writer back for as long as reads go on.
   */
  flushOldest(): void {
    if (this.gate.state !== 'open') return;
    const now = this.clock.now();
    let started = 0;
    for (const e of this.host.entries()) {
      if (started >= 8 || this.inFlight >= FLUSH_PARALLEL) break;
      if (this.flushable(e, now)) {
        this.background(e, 'foreground');
        started++;
      }
    }
  }

  private tick(): void {
    if (this.gate.state !== 'open') return;
    const journaled = this.host.journaled();
    const dirty = this.host.dirty();
    // An idle LUN costs nothing per tick (200 LUNs in one process).
    if (dirty === 0 && journaled === undefined) return;
    const now = this.clock.now();
    const maxDirty = journaled ?? this.maxDirtyMs;
    const full = dirty >= this.o.capacity / 2;
    for (const e of dirty === 0 ? [] : this.host.entries()) {
      if (this.inFlight >= FLUSH_PARALLEL) break;
      if (!this.flushable(e, now)) continue;
      if ((journaled !== undefined || !full) && now - e.lastWrite < this.o.flushDelayMs && now - e.dirtySince < maxDirty) continue;
      this.background(e, 'flush');
    }
    if (journaled === undefined) return;
    const pressure = this.host.journalPressure();
    for (const i of this.host.spilled()) {
      if (this.inFlight >= FLUSH_PARALLEL / 2) break;
      // Roughly oldest first: a chunk whose records wait longer than the longest a dirty chunk
      // may stay dirty goes to S3 even if that spills another (a bounded upload lag).
      const spill = pressure || now - (this.host.pendingSince(i) ?? now) >= maxDirty;
      if (full && !spill) break;
      this.inFlight++;
      this.host
        .restore(i, spill)
        // A filling journal stops writers when full: its uploads are theirs (foreground).
        .then((e) => (e ? this.host.durable(e, pressure ? 'foreground' : 'flush') : undefined))
        .catch((err: unknown) =>
          log.warn('background upload of a spilled chunk failed; will retry', { lun: this.host.name, chunk: i, error: (err as Error).message }),
        )
        .finally(() => {
          this.inFlight--;
        });
    }
  }

  private flushable(e: ChunkEntry, now: number): boolean {
    return e.state === 'dirty' && e.pins === 0 && (e.failures === 0 || now >= e.retryAt);
  }

  private background(e: ChunkEntry, lane: Lane): void {
    this.inFlight++;
    this.host
      .durable(e, lane)
      .catch((err: unknown) => {
        if (e.failures <= 1 || e.failures % 20 === 0) {
          log.warn('background flush failed; will retry', { lun: this.host.name, chunk: e.index, error: (err as Error).message });
        }
      })
      .finally(() => {
        this.inFlight--;
      });
  }
}
