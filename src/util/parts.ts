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
  let out = at;
  for (const p of sliceParts(src, from, length)) {
    p.copy(dst, out);
    out += p.length;
  }
}

/** `length` bytes from position `from` of `src`, as views (no copy). */
export function sliceParts(src: Buffer | Parts, from: number, length: number): Buffer[] {
  if (Buffer.isBuffer(src)) return [src.subarray(from, from + length)];
  const out: Buffer[] = [];
  let skip = from;
  let left = length;
  for (const p of src) {
    if (left === 0) break;
    if (skip >= p.length) {
      skip -= p.length;
      continue;
    }
    const n = Math.min(p.length - skip, left);
    out.push(p.subarray(skip, skip + n));
    left -= n;
    skip = 0;
  }
  return out;
}
