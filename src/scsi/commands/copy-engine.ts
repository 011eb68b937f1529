import type { Volume } from '../../storage/volume';
import { MAX_TRANSFER_BYTES } from './rw-decode';

/**
 * The copy manager's data mover, shared by EXTENDED COPY (spc4r37 §6.4) and ODX's WRITE USING
 * TOKEN (sbc3r35 §5.45): a range of one volume copied to a range of another (or the same).
 * Where the destination volume can copy server-side (`Volume.copyFrom`: whole chunks of one
 * bucket become S3 CopyObject requests) no data passes through the target; anything else is
 * read and written in pieces of at most MAX_TRANSFER_BYTES.
 */
export interface CopyRange {
  readonly source: Volume;
  readonly destination: Volume;
  readonly sourceOffset: number;
  readonly destinationOffset: number;
  readonly length: number;
}

/**
 * Copy buffers of MAX_TRANSFER_BYTES in flight at once, over every copy of the process: a
 * copy waits for a slot rather than allocate, so memory stays bounded however many run.
 */
export const MAX_PIECES_IN_FLIGHT = 4;

class PieceSlots {
  private free = MAX_PIECES_IN_FLIGHT;
  private readonly waiting: (() => void)[] = [];

  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Hands the slot straight to the next waiter, if any. */
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

const slots = new PieceSlots();

/**
 * Copies `r` in pieces of at most MAX_TRANSFER_BYTES, calling `progress` with the bytes of
 * each piece once it is written. When the destination overlaps the source from above on the
 * same volume the pieces go last to first, so no piece is read after it has been overwritten
 * (the result is as if the whole source was read first).
 */
export async function copyRange(r: CopyRange, progress: (bytes: number) => void): Promise<void> {
  const pieces = Math.ceil(r.length / MAX_TRANSFER_BYTES);
  const backwards = r.source === r.destination && r.destinationOffset > r.sourceOffset && r.destinationOffset < r.sourceOffset + r.length;
  for (let i = 0; i < pieces; i++) {
    const at = (backwards ? pieces - 1 - i : i) * MAX_TRANSFER_BYTES;
    const length = Math.min(MAX_TRANSFER_BYTES, r.length - at);
    await copyPiece(r, r.sourceOffset + at, r.destinationOffset + at, length);
    progress(length);
  }
}

async function copyPiece(r: CopyRange, from: number, to: number, length: number): Promise<void> {
  // Server-side when the destination can; it copies what it can and returns the rest.
  if (r.destination.copyFrom && !(r.source === r.destination && overlaps(from, to, length))) {
    const rest = await r.destination.copyFrom(r.source, from, to, length);
    for (const p of rest) await moveThroughTarget(r, p.sourceOffset, p.offset, p.length);
    return;
  }
  await moveThroughTarget(r, from, to, length);
}

function overlaps(from: number, to: number, length: number): boolean {
  return from < to + length && to < from + length;
}

async function moveThroughTarget(r: CopyRange, from: number, to: number, length: number): Promise<void> {
  await slots.acquire();
  try {
    const data = await r.source.read(from, length);
    await r.destination.write(to, data);
  } finally {
    slots.release();
  }
}
