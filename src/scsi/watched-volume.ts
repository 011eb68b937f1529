import type { AllocationExtent, ByteRange, CacheMode, CopyRemainder, ReadView, Volume, VolumeInfo, WriteOptions } from '../storage/volume';
import { type Parts, partsLength } from '../util/parts';

/** A change to every byte of the medium (a forced snapshot restore replaces its contents). */
export const WHOLE_MEDIUM: ByteRange = { offset: 0, length: Number.MAX_SAFE_INTEGER };

/**
 * Who must know that a logical unit's medium changes. ODX's ROD tokens (rod-tokens.ts) stand
 * for their data only by reference, so a change to that data has to cancel them (spc4r37 ROD
 * type 00800001h, "point in time copy - change vulnerable").
 * Listeners run synchronously, once before the change can be seen and once after it is done,
 * so a copy that reads the data meanwhile learns of it either way.
 */
export class WriteWatch {
  private readonly listeners = new Set<(range: ByteRange) => void>();

  /** Adds a listener; returns the function that removes it. */
  watch(fn: (range: ByteRange) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  changed(range: ByteRange): void {
    for (const fn of this.listeners) fn(range);
  }
}

/**
 * The volume as the SCSI layer sees it: every call goes to the backing volume, and every call
 * that can change the medium (write, update, discard, writeSame, copyFrom) is reported to the
 * logical unit's WriteWatch. LogicalUnit builds one, so no command path can change a LUN
 * without the watch knowing, whichever command it is (WRITE, WRITE SAME, UNMAP, COMPARE AND
 * WRITE, ORWRITE, WRITE AND VERIFY, or EXTENDED COPY and WRITE USING TOKEN as destination).
 */
export class WatchedVolume implements Volume {
  /** Present exactly when the backing volume can copy server-side (copy-engine.ts checks it). */
  readonly copyFrom?: (source: Volume, sourceOffset: number, offset: number, length: number) => Promise<readonly CopyRemainder[]>;

  constructor(
    readonly backing: Volume,
    private readonly writes: WriteWatch,
  ) {
    const copyFrom = backing.copyFrom?.bind(backing);
    if (copyFrom) {
      // The backing volume recognizes its own kind of source (a ChunkVolume of the same
      // bucket): hand it the source's backing volume, not our wrapper of it.
      this.copyFrom = (source, sourceOffset, offset, length) =>
        this.changing([{ offset, length }], () => copyFrom(backingOf(source), sourceOffset, offset, length));
    }
  }

  get info(): VolumeInfo {
    return this.backing.info;
  }

  get readOnly(): boolean {
    return this.backing.readOnly;
  }

  get cacheMode(): CacheMode {
    return this.backing.cacheMode;
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.backing.read(offset, length);
  }

  readView(offset: number, length: number): Promise<ReadView> {
    return this.backing.readView(offset, length);
  }

  write(offset: number, data: Buffer | Parts, opts?: WriteOptions): Promise<void> {
    return this.changing([{ offset, length: partsLength(data) }], () => this.backing.write(offset, data, opts));
  }

  async update(offset: number, length: number, fn: (current: Buffer) => Buffer | null, opts?: WriteOptions): Promise<void> {
    const range = { offset, length };
    let wrote = false;
    try {
      // Only an update that writes changes the medium (a COMPARE AND WRITE that miscompares
      // does not); `fn` runs under the volume's range lock, before the new bytes are visible.
      await this.backing.update(
        offset,
        length,
        (current) => {
          const next = fn(current);
          if (next) {
            wrote = true;
            this.writes.changed(range);
          }
          return next;
        },
        opts,
      );
    } finally {
      if (wrote) this.writes.changed(range);
    }
  }

  flush(range?: ByteRange): Promise<void> {
    return this.backing.flush(range);
  }

  discard(ranges: readonly ByteRange[], opts?: WriteOptions): Promise<void> {
    return this.changing(ranges, () => this.backing.discard(ranges, opts));
  }

  writeSame(range: ByteRange, block: Buffer, opts?: WriteOptions & { readonly unmap?: boolean }): Promise<void> {
    return this.changing([range], () => this.backing.writeSame(range, block, opts));
  }

  allocation(range: ByteRange): Promise<AllocationExtent[]> {
    return this.backing.allocation(range);
  }

  prefetch(range: ByteRange): Promise<void> {
    return this.backing.prefetch(range);
  }

  setCacheMode(mode: CacheMode): Promise<void> {
    return this.backing.setCacheMode(mode);
  }

  loadRecord(name: string): Promise<Buffer | null> {
    return this.backing.loadRecord(name);
  }

  saveRecord(name: string, data: Buffer): Promise<void> {
    return this.backing.saveRecord(name, data);
  }

  close(): Promise<void> {
    return this.backing.close();
  }

  /** Runs `op`, reporting `ranges` before it starts and after it ends (done or failed). */
  private async changing<T>(ranges: readonly ByteRange[], op: () => Promise<T>): Promise<T> {
    for (const r of ranges) this.writes.changed(r);
    try {
      return await op();
    } finally {
      for (const r of ranges) this.writes.changed(r);
    }
  }
}

function backingOf(v: Volume): Volume {
  return v instanceof WatchedVolume ? v.backing : v;
}
