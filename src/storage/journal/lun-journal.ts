import type { Parts } from '../../util/parts';
import type { Journal, Placed } from './journal';
import type { JournalRecord } from './record';

/**
 * One LUN's view of the server's journal, as the Writeback uses it: its records carry the
 * LUN's UUID and the lease holder they are written under (docs/journal.md).
 */
export class LunJournal {
  constructor(
    private readonly journal: Journal,
    readonly lun: string,
    readonly holder: string,
  ) {}

  /** See Journal.place: `placed` runs synchronously with the record's sequence number. */
  placeWrite(chunk: number, offset: number, data: Parts, length: number, placed: (sequence: number) => void): Promise<Placed> {
    return this.journal.place({ kind: 'write', lun: this.lun, holder: this.holder, chunk, offset, length, data }, placed);
  }

  /** A whole-chunk discard, journaled before its DELETE (a replay must not bring back older writes). */
  async discard(chunk: number, length: number): Promise<number> {
    const p = await this.journal.place({ kind: 'discard', lun: this.lun, holder: this.holder, chunk, offset: 0, length, data: Buffer.alloc(0) });
    await p.durable;
    return p.sequence;
  }

  /**
   * An upload covered the chunk's records up to `upTo`. Once the LUN has nothing pending, a
   * checkpoint (in the background, one at a time) spares a restart the replay of what is
   * already in S3, and a successor's restart a needless quarantine.
   */
  retire(chunk: number, upTo: number): void {
    this.journal.retire(this.lun, chunk, upTo);
    if (this.checkpointing || !this.journal.isClean(this.lun)) return;
    this.checkpointing = this.journal
      .checkpoint(this.lun, this.holder)
      .catch(() => false)
      .finally(() => {
        this.checkpointing = undefined;
      });
  }

  private checkpointing: Promise<boolean> | undefined;

  hasPending(chunk: number): boolean {
    return this.journal.hasPending(this.lun, chunk);
  }

  pendingSince(chunk: number): number | undefined {
    return this.journal.pendingSince(this.lun, chunk);
  }

  pendingChunks(): IterableIterator<number> {
    return this.journal.pendingChunks(this.lun);
  }

  pendingRecords(chunk: number): Promise<JournalRecord[]> {
    return this.journal.pendingRecords(this.lun, chunk);
  }

  get uploadDelayMs(): number {
    return this.journal.uploadDelayMs;
  }

  /** More than half the journal is in use: uploads of its oldest records come first. */
  pressure(): boolean {
    return this.journal.usedBytes * 2 > this.journal.capacityBytes;
  }

  get durableThrough(): number {
    return this.journal.durableThrough;
  }

  sync(): Promise<void> {
    return this.journal.sync();
  }

  /** After the last upload (close): waits for a background checkpoint first. */
  async checkpoint(): Promise<void> {
    await this.checkpointing;
    await this.journal.checkpoint(this.lun, this.holder);
  }
}
