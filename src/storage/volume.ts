import type { Parts } from '../util/parts';

/** What a volume is: fixed when it is created and kept in its `volume.json`. */
export interface VolumeInfo {
  readonly name: string;
  readonly sizeBytes: number;
  readonly logicalBlockSize: 512 | 4096;
  readonly chunkSize: number;
  /** The checksum segment of its chunks (integrity.ts); absent: SEGMENT_SIZE (64 KiB). */
  readonly segmentSize?: number;
  /** Per-LUN UUID: the source of the VPD 83h designators, stable across restarts. */
  readonly uuid: string;
  readonly created: string;
  /** A clone: the snapshot whose chunks it reads where it has none of its own. */
  readonly parent?: CloneParent;
}

/** The snapshot a clone was made from (`s3tgt lun clone LUN@SNAPSHOT NEW`). */
export interface CloneParent {
  readonly lun: string;
  readonly snapshot: string;
  readonly snapshotId: number;
  /** The snapshot's size: chunks past it have nothing to inherit. */
  readonly sizeBytes: number;
}

export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

export interface WriteOptions {
  /** Force Unit Access (SBC-4 §4.15): return only once the data is in the backing store. */
  readonly fua?: boolean;
}

export interface AllocationExtent extends ByteRange {
  readonly mapped: boolean;
}

/** A part of a server-side copy the volume left to its caller (`Volume.copyFrom`). */
export interface CopyRemainder extends ByteRange {
  readonly sourceOffset: number;
}

/** Write cache behaviour, reported by the Caching mode page's WCE bit (SBC-4 §6.5.5). */
export type CacheMode = 'write-back' | 'write-through';

/** Bytes read from a volume, and how the reader says it is done with them (`Volume.readView`). */
export interface ReadView {
  readonly data: Buffer;
  release(): void;
}

/**
 * The backend contract the SCSI command set uses (LIO's execute_rw / sync_cache / write_same /
 * unmap). Offsets and lengths are bytes, aligned to the logical block size and already range
 * checked by the caller. Every method is safe under concurrency: overlapping operations are
 * ordered, non-overlapping ones run in parallel.
 */
export interface Volume {
  readonly info: VolumeInfo;
  readonly readOnly: boolean;
  readonly cacheMode: CacheMode;
  /** The bytes of a range. The buffer may share memory with the cache: never modify it. */
  read(offset: number, length: number): Promise<Buffer>;
  /**
   * Like `read`, for a caller that says when it is done with the bytes (a READ, once its
   * Data-In left): until `release`, a write to the chunk copies it; after, it writes in place.
   */
  readView(offset: number, length: number): Promise<ReadView>;
  /** `data` as one buffer or as the buffers it arrived in (copied once, into the cache). */
  write(offset: number, data: Buffer | Parts, opts?: WriteOptions): Promise<void>;
  /**
   * Read-modify-write of a range as one atomic step: `fn` sees the current bytes and returns
   * the bytes to write (same length) or null to write nothing. No other write to the range
   * can land in between and no reader sees a half-done update. COMPARE AND WRITE (SBC-4 §5.3)
   * and ORWRITE are built on it.
   */
  update(offset: number, length: number, fn: (current: Buffer) => Buffer | null, opts?: WriteOptions): Promise<void>;
  /** Makes every acknowledged write durable in the backing store (SYNCHRONIZE CACHE). */
  flush(range?: ByteRange): Promise<void>;
  /**
   * Deallocates ranges: afterwards they read as zeros (LBPRZ=1). Whole chunks become deletions,
   * partial chunks are zeroed in place.
   */
  discard(ranges: readonly ByteRange[], opts?: WriteOptions): Promise<void>;
  /** Writes `block` repeatedly over the range (WRITE SAME); an all-zero block may deallocate. */
  writeSame(range: ByteRange, block: Buffer, opts?: WriteOptions & { readonly unmap?: boolean }): Promise<void>;
  /** Which parts of the range are mapped (backed by a stored chunk), at chunk granularity. */
  allocation(range: ByteRange): Promise<AllocationExtent[]>;
  /**
   * Server-side copy (EXTENDED COPY, ODX): makes `[offset, offset + length)` hold what
   * `source` holds at `sourceOffset`, for the parts the store can copy without the data
   * passing through the target (whole chunks of one bucket). Returns the parts it did not
   * copy, for the caller to read and write. Ranges do not overlap on the same volume.
   */
  copyFrom?(source: Volume, sourceOffset: number, offset: number, length: number): Promise<readonly CopyRemainder[]>;
  /** Hints that the range will be read soon (PRE-FETCH). */
  prefetch(range: ByteRange): Promise<void>;
  /** Switches write-back vs write-through at run time (MODE SELECT of WCE). */
  setCacheMode(mode: CacheMode): Promise<void>;
  /** Small named records kept with the volume (persistent reservations, saved mode pages). */
  loadRecord(name: string): Promise<Buffer | null>;
  saveRecord(name: string, data: Buffer): Promise<void>;
  close(): Promise<void>;
}
