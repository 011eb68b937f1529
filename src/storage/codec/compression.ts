import * as lz4 from 'lz4-napi';
import * as zstd from 'zstd-napi';
import { StorageError } from '../errors';

export type Compression = 'zstd' | 'lz4' | 'off';
export type Compressor = Exclude<Compression, 'off'>;

interface Codec {
  compress(plain: Buffer): Buffer;
  /** The frame's own statement of its decompressed size, read before anything is allocated. */
  declaredSize(packed: Buffer): number | undefined;
  decompress(packed: Buffer): Buffer;
}

/**
 * zstd at level 1 (its fastest regular level: about 5 ms per incompressible MiB here, after
 * which the chunk is stored raw; BENCH_ONLY=codec measures both) and LZ4 (lz4-napi's size-prefixed block: cheaper, compresses less). Both native
 * (N-API: one binary for Node 20, 22 and 24); Node's own zlib has zstd from 22.15/23.8 only. A
 * frame whose declared size is not the chunk's is refused before decompression, so an object
 * crafted to expand (a "bomb") costs nothing.
 */
const CODECS: Record<Compressor, Codec> = {
  zstd: {
    compress: (plain) => zstd.compress(plain, { compressionLevel: 1, contentSizeFlag: true, checksumFlag: false }),
    declaredSize: zstdContentSize,
    decompress: (packed) => zstd.decompress(packed),
  },
  lz4: {
    compress: (plain) => lz4.compressSync(plain),
    declaredSize: (packed) => (packed.length >= 4 ? packed.readUInt32LE(0) : undefined),
    decompress: (packed) => lz4.uncompressSync(packed),
  },
};

export const COMPRESSORS = Object.keys(CODECS) as Compressor[];

/** `plain` compressed, or undefined when that does not save at least 1/64 of it (stored raw). */
export function compress(c: Compressor, plain: Buffer): Buffer | undefined {
  const packed = CODECS[c].compress(plain);
  return packed.length <= plain.length - (plain.length >> 6) ? packed : undefined;
}

/** Decompresses a chunk of exactly `size` bytes; anything else is a `data` error. */
export function decompress(c: Compressor, packed: Buffer, size: number, key: string): Buffer {
  const declared = CODECS[c].declaredSize(packed);
  if (declared !== size) throw new StorageError('data', `${key}: ${c} frame declares ${declared ?? 'no'} bytes, the chunk is ${size}`);
  let out: Buffer;
  try {
    out = CODECS[c].decompress(packed);
  } catch (e) {
    throw new StorageError('data', `${key}: ${c} frame does not decompress (${String(e)})`);
  }
  if (out.length !== size) throw new StorageError('data', `${key}: ${c} frame gave ${out.length} bytes, the chunk is ${size}`);
  return out;
}

/**
 * The Frame_Content_Size of a zstd frame (RFC 8878 §3.1.1.1), or undefined when the frame does
 * not state it: magic, then the Frame_Header_Descriptor (FCS flag bits 7-6, single segment bit
 * 5, Dictionary_ID flag bits 1-0), the Window_Descriptor unless single segment, the dictionary
 * id, then the size in 0/1/2/4/8 bytes (2 bytes are offset by 256).
 */
function zstdContentSize(b: Buffer): number | undefined {
  if (b.length < 6 || b.readUInt32LE(0) !== 0xfd2fb528) return undefined;
  const fhd = b[4];
  const fcsFlag = fhd >> 6;
  const single = (fhd >> 5) & 1;
  const dictBytes = [0, 1, 2, 4][fhd & 3];
  const fcsBytes = [single ? 1 : 0, 2, 4, 8][fcsFlag];
  const at = 5 + (single ? 0 : 1) + dictBytes;
  if (fcsBytes === 0 || b.length < at + fcsBytes) return undefined;
  switch (fcsBytes) {
    case 1:
      return b[at];
    case 2:
      return b.readUInt16LE(at) + 256;
    case 4:
      return b.readUInt32LE(at);
    default: {
      const n = b.readBigUInt64LE(at);
      return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : undefined;
    }
  }
}
