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

/**
 * Per sector, a set of write ids: one Uint32Array holds the sets of one value (nearly all of
 * them), a map the few with more (after failed writes, or what may survive a crash).
 */
class SectorSets {
  private one: Uint32Array;
  private readonly many = new Map<number, number[]>();

  constructor(n: number) {
    this.one = new Uint32Array(n);
  }

  get length(): number {
    return this.one.length;
  }

  grow(n: number): void {
    const next = new Uint32Array(n);
    next.set(this.one);
    this.one = next;
  }

  values(s: number): readonly number[] {
    return this.many.get(s) ?? [this.one[s]];
  }

  has(s: number, v: number): boolean {
    const m = this.many.get(s);
    return m ? m.includes(v) : this.one[s] === v;
  }

  set(s: number, v: number): void {
    this.one[s] = v;
    this.many.delete(s);
  }

  add(s: number, v: number): void {
    if (this.has(s, v)) return;
    this.many.set(s, [...this.values(s), v]);
  }

  copyFrom(o: SectorSets): void {
    this.one = Uint32Array.from(o.one);
    this.many.clear();
    for (const [k, v] of o.many) this.many.set(k, [...v]);
  }
}

export class Model {
  private readonly cur: SectorSets;
  private readonly dur: SectorSets;
  private readonly same = new Set<number>();
  private nextId = 1;

  constructor(bytes: number) {
    this.cur = new SectorSets(bytes / SECTOR);
    this.dur = new SectorSets(bytes / SECTOR);
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
    if (bytes / SECTOR <= this.cur.length) return;
    this.cur.grow(bytes / SECTOR);
    this.dur.grow(bytes / SECTOR);
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
      const v = this.cur.values(s);
      if (v.length !== 1) return undefined;
      out.push(v[0]);
    }
    return out;
  }

  applyWrite(id: number, first: number, count: number, ok: boolean, durable: boolean): void {
    for (let s = first; s < first + count; s++) {
      if (ok) {
        this.cur.set(s, id);
        if (durable) this.dur.set(s, id);
        else this.dur.add(s, id);
      } else {
        this.cur.add(s, id);
        this.dur.add(s, id);
      }
    }
  }

  flushed(): void {
    this.dur.copyFrom(this.cur);
  }

  crashed(): void {
    this.cur.copyFrom(this.dur);
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
      const id = data.readUInt32LE(at);
      Model.fill(expect, 0, id, s, this.same.has(id));
      if (expect.compare(data, at, at + SECTOR) !== 0) {
        return `sector ${s}: bytes of no write (header id ${id}, sector ${data.readUInt32LE(at + 4)}); allowed ${this.cur.values(s).join('/')}`;
      }
      if (!this.cur.has(s, id))
        return `sector ${s}: read write #${id}, allowed ${this.cur.values(s).join('/')} (durable ${this.dur.values(s).join('/')})`;
      this.cur.set(s, id);
    }
    return undefined;
  }
}
