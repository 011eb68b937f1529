/**
 * The reference model of a simulated LUN: for every 512-byte sector, which values a read may
 * return now (`cur`) and which may survive a crash (`dur`), as sets of write ids (0 = zeros).
 * A value is a write id; `sectorBytes` derives the exact bytes, so a read is checked byte for
 * byte and tells which write each sector came from.
 *
 * The volume linearizes overlapping commands in submission order (FIFO range locks), so the
 * model applies each batch of commands in that order once their outcomes are known:
 * - an acknowledged write: cur = {v}; dur gains v (durable = {v} with FUA or write-through);
 * - a failed write: cur and dur gain v (each sector may hold the old or the new data);
 * - a completed flush: dur = cur;
 * - a crash (or a takeover): cur = dur;
 * - a read narrows cur to what it saw (a sector must not flip between two reads).
 */
export const SECTOR = 512;

/** Writes of one block repeated (WRITE SAME): the same bytes in every sector. */
const SAME = 0xffffffff;

export class Model {
  private cur: number[][];
  private dur: number[][];
  private readonly same = new Set<number>();
  private nextId = 1;

  constructor(bytes: number) {
    const n = bytes / SECTOR;
    this.cur = Array.from({ length: n }, () => [0]);
    this.dur = Array.from({ length: n }, () => [0]);
  }

  get sectors(): number {
    return this.cur.length;
  }

  /** A new write id (`same`: a WRITE SAME block). */
  newId(same = false): number {
    const id = this.nextId++;
    if (same) this.same.add(id);
    return id;
  }

  grow(bytes: number): void {
    while (this.cur.length < bytes / SECTOR) {
      this.cur.push([0]);
      this.dur.push([0]);
    }
  }

  /** The bytes of sector `s` written by `id`. */
  static fill(buf: Buffer, at: number, id: number, sector: number, same: boolean): void {
    if (id === 0) {
      buf.fill(0, at, at + SECTOR);
      return;
    }
    buf.writeUInt32LE(id, at);
    buf.writeUInt32LE(same ? SAME : sector, at + 4);
    buf.fill((id * 31 + (same ? 7 : sector)) & 0xff, at + 8, at + SECTOR);
  }

  /** Data of a write of `id` over sectors [first, first + count). */
  data(id: number, first: number, count: number): Buffer {
    const b = Buffer.allocUnsafe(count * SECTOR);
    for (let k = 0; k < count; k++) Model.fill(b, k * SECTOR, id, first + k, this.same.has(id));
    return b;
  }

  /** The one value of each sector, when the model is certain (C&W compares against it). */
  certain(first: number, count: number): number[] | undefined {
    const out: number[] = [];
    for (let s = first; s < first + count; s++) {
      if (this.cur[s].length !== 1) return undefined;
      out.push(this.cur[s][0]);
    }
    return out;
  }

  applyWrite(id: number, first: number, count: number, ok: boolean, durable: boolean): void {
    for (let s = first; s < first + count; s++) {
      if (ok) {
        this.cur[s] = [id];
        this.dur[s] = durable ? [id] : add(this.dur[s], id);
      } else {
        this.cur[s] = add(this.cur[s], id);
        this.dur[s] = add(this.dur[s], id);
      }
    }
  }

  flushed(): void {
    this.dur = this.cur.map((c) => [...c]);
  }

  crashed(): void {
    this.cur = this.dur.map((d) => [...d]);
  }

  /**
   * Checks a read of sectors [first, first + count) against `cur` and narrows it to what it
   * saw. Returns a description of the first mismatch, or undefined.
   */
  checkRead(data: Buffer, first: number, count: number): string | undefined {
    const expect = Buffer.allocUnsafe(SECTOR);
    for (let k = 0; k < count; k++) {
      const s = first + k;
      const at = k * SECTOR;
      const zero = data.readUInt32LE(at) === 0 && data.readUInt32LE(at + 4) === 0;
      const id = zero ? 0 : data.readUInt32LE(at);
      Model.fill(expect, 0, id, s, this.same.has(id));
      if (expect.compare(data, at, at + SECTOR) !== 0) {
        return `sector ${s}: bytes of no write (header id ${data.readUInt32LE(at)}, sector ${data.readUInt32LE(at + 4)}); allowed ${this.cur[s].join('/')}`;
      }
      if (!this.cur[s].includes(id)) return `sector ${s}: read write #${id}, allowed ${this.cur[s].join('/')} (durable ${this.dur[s].join('/')})`;
      this.cur[s] = [id];
    }
    return undefined;
  }
}

function add(set: number[], v: number): number[] {
  return set.includes(v) ? set : [...set, v];
}
