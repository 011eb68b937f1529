/**
 * Data kept as the buffers it arrived in (a WRITE's immediate data and its Data-Out PDUs),
 * so a large write is copied once, into the chunk cache, instead of being joined first.
 */
export type Parts = readonly Buffer[];

/** Bytes in a buffer or in parts. */
export function partsLength(data: Buffer | Parts): number {
  if (Buffer.isBuffer(data)) return data.length;
  let n = 0;
  for (const p of data) n += p.length;
  return n;
}

/** The parts as one buffer: the only part itself, else a copy. */
export function joinParts(parts: Parts): Buffer {
  if (parts.length === 1) return parts[0];
  return Buffer.concat(parts as Buffer[], partsLength(parts));
}

/** The first `n` bytes of the parts, as parts (views, no copy). */
export function takeParts(parts: Parts, n: number): Buffer[] {
  const out: Buffer[] = [];
  let left = n;
  for (const p of parts) {
    if (left <= 0) break;
    out.push(p.length <= left ? p : p.subarray(0, left));
    left -= p.length;
  }
  return out;
}

/** Copies `length` bytes from position `from` of `src` to `dst` at `at`. */
export function copyFrom(src: Buffer | Parts, from: number, dst: Buffer, at: number, length: number): void {
  if (Buffer.isBuffer(src)) {
    src.copy(dst, at, from, from + length);
    return;
  }
  // Without sliceParts' views: this runs for every write.
  let out = at;
  eachSlice(src, from, length, (p, start, end) => {
    p.copy(dst, out, start, end);
    out += end - start;
  });
}

/** `length` bytes from position `from` of `src`, as views (no copy). */
export function sliceParts(src: Buffer | Parts, from: number, length: number): Buffer[] {
  if (Buffer.isBuffer(src)) return [src.subarray(from, from + length)];
  const out: Buffer[] = [];
  eachSlice(src, from, length, (p, start, end) => out.push(p.subarray(start, end)));
  return out;
}

/** Calls `fn` with each part of `src` that bytes [from, from + length) touch, and the range of it they cover. */
function eachSlice(src: Parts, from: number, length: number, fn: (p: Buffer, start: number, end: number) => void): void {
  let skip = from;
  let left = length;
  for (const p of src) {
    if (left === 0) break;
    if (skip >= p.length) {
      skip -= p.length;
      continue;
    }
    const n = Math.min(p.length - skip, left);
    fn(p, skip, skip + n);
    left -= n;
    skip = 0;
  }
}
