import { invariant } from '../util/invariant';
import type { ListEntry, ObjectMeta } from './object-store';

/**
 * User metadata naming the PUT that stored a chunk object in conditional mode:
 * `<writer id of the ChunkMap>.<sequence number>`. S3 has no idempotency token: a conditional
 * PUT that landed but whose answer was lost meets itself when the retry layer repeats it (412),
 * and only this tells that from another server's write (lease.ts does the same with the holder
 * and generation in the lease record).
 */
export const WRITER_META_KEY = 's3tgt-writer';

/** A chunk object as this process saw it. */
export interface SeenObject {
  /** Unquoted, as If-Match takes it (RGW compares the bare value). */
  readonly etag: string;
  /** A zero-length hole marker: the chunk reads as zeros. */
  readonly hole: boolean;
  /** The WRITER_META_KEY of the PUT that stored it, when known (a listing does not say). */
  readonly writer: string | undefined;
}

/** What is known of a chunk's object once nothing is uncertain about it. */
export type SettledTag = { readonly kind: 'none' } | ({ readonly kind: 'object' } & SeenObject);

/**
 * What this process knows of the object of one chunk, for conditional PUTs:
 * - unknown: nothing yet (the listing has not reached it, or everything was forgotten): a HEAD
 *   tells before the next PUT;
 * - none: no object: the next PUT is If-None-Match: *;
 * - object: this object: the next PUT is If-Match on its ETag;
 * - pending: a PUT conditioned on `prior` and signed `writer` was sent and its outcome is unknown
 *   (an answer lost, a time limit, an abort): the object is `prior` or that PUT's (or a later
 *   one of ours), and a HEAD tells which before the next PUT.
 */
export type ChunkTag = { readonly kind: 'unknown' } | SettledTag | { readonly kind: 'pending'; readonly prior: SettledTag; readonly writer: string };

/** The precondition of a chunk PUT (PutOptions). */
export type Condition = { readonly ifMatch: string } | { readonly ifNoneMatch: '*' };

const UNKNOWN = 0;
const NONE = 1;
const DATA = 2;
const HOLE = 3;
const PENDING = 4;

/**
 * The ETag ChunkMap last saw for each chunk object (conditional mode, issue 17: fencing that
 * does not rest on timing alone): from the listing, from GETs and HEADs, and from its own PUTs.
 * Only ChunkMap changes it, next to the chunk's state (ChunkStates).
 *
 * One byte per chunk, plus the ETag of each data object and what is known of each hole marker
 * and uncertain PUT (about 100 bytes per stored chunk: 100 MB for a fully written 1 TiB LUN).
 * Writers are kept for hole markers only: S3 and RGW tag a single-part PUT with the MD5 of its
 * body, so every hole marker has the same ETag and only its writer tells a rival's hole marker
 * (written over one of ours) from ours. A data chunk's ETag changes with its bytes; that a
 * rival stores byte for byte the chunk we last saw is the ABA case If-Match cannot see.
 */
export class ChunkTags {
  private codes: Uint8Array;
  private readonly etags = new Map<number, string>();
  private readonly holes = new Map<number, SeenObject>();
  private readonly pendings = new Map<number, { readonly prior: SettledTag; readonly writer: string }>();
  private writes = 0;

  /** `writerId`: random per ChunkMap (hence per server and per opening of the LUN). */
  constructor(
    private count: number,
    readonly writerId: string,
  ) {
    invariant(/^[0-9a-z]+$/.test(writerId), () => `writer id "${writerId}"`);
    this.codes = new Uint8Array(count);
  }

  get chunks(): number {
    return this.count;
  }

  get(i: number): ChunkTag {
    invariant(i >= 0 && i < this.count, () => `chunk ${i} outside 0..${this.count - 1}`);
    switch (this.codes[i]) {
      case UNKNOWN:
        return { kind: 'unknown' };
      case NONE:
        return { kind: 'none' };
      case DATA:
        return { kind: 'object', etag: this.etags.get(i) as string, hole: false, writer: undefined };
      case HOLE:
        return { kind: 'object', ...(this.holes.get(i) as SeenObject) };
      case PENDING: {
        const p = this.pendings.get(i);
        invariant(p, () => `chunk ${i}: pending without its PUT`);
        return { kind: 'pending', ...p };
      }
      default:
        throw new Error(`chunk ${i}: tag code ${this.codes[i]}`);
    }
  }

  /**
   * Whether a HEAD must come before the next PUT: the object is unknown or uncertain, or it is
   * a hole marker, whose ETag alone does not tell it from another server's (see the class).
   */
  needsHead(i: number): boolean {
    const c = this.codes[i];
    return c === UNKNOWN || c === PENDING || c === HOLE;
  }

  /** The precondition of the next PUT, once the tag is settled (after `settle` when `needsHead`). */
  conditionOf(i: number): Condition {
    const t = this.get(i);
    invariant(t.kind === 'none' || t.kind === 'object', () => `chunk ${i}: a PUT decided on a tag that is ${t.kind}`);
    return t.kind === 'none' ? { ifNoneMatch: '*' } : { ifMatch: t.etag };
  }

  /** A fresh writer id for one PUT. */
  newWriter(): string {
    return `${this.writerId}.${(++this.writes).toString(36)}`;
  }

  /** Whether an object was stored by a PUT of this ChunkMap (any of them). */
  isOwn(meta: ObjectMeta): boolean {
    return meta.metadata[WRITER_META_KEY]?.startsWith(`${this.writerId}.`) ?? false;
  }

  /** A PUT of chunk i signed `writer` is about to leave, conditioned on the settled tag. */
  sent(i: number, writer: string): void {
    const prior = this.get(i);
    invariant(prior.kind === 'none' || prior.kind === 'object', () => `chunk ${i}: a PUT sent on a tag that is ${prior.kind}`);
    this.clear(i);
    this.pendings.set(i, { prior, writer });
    this.codes[i] = PENDING;
  }

  /** The PUT signed `seen.writer` stored this object (its answer, or a HEAD that found it). */
  stored(i: number, seen: SeenObject): void {
    const p = this.pendings.get(i);
    invariant(this.codes[i] === PENDING && p?.writer === seen.writer, () => `chunk ${i}: stored by ${seen.writer}, not the PUT in flight`);
    this.set(i, seen);
  }

  /**
   * What a HEAD (or a current GET) found: taken as the chunk's object if it is consistent with
   * what we knew (the same object, or no object where we knew none), if it is one of ours (a
   * PUT that landed although its answer was lost, or landed late), or if we knew nothing.
   * Otherwise another server changed the chunk: false, and the tag stays as it was.
   */
  settle(i: number, found: ObjectMeta | null): boolean {
    const t = this.get(i);
    const ok = t.kind === 'unknown' || (found !== null && this.isOwn(found)) || matches(t.kind === 'pending' ? t.prior : t, found);
    if (ok) this.set(i, found === null ? null : seenOf(found));
    return ok;
  }

  /**
   * A deposed predecessor's PUT landed after this holder took the LUN (the lease says so):
   * its object becomes what the next PUT is conditioned on.
   */
  adopt(i: number, found: ObjectMeta | null): void {
    this.set(i, found === null ? null : seenOf(found));
  }

  /** The listing saw `entry` at chunk i's key (undefined: no object). Fills only what is unknown. */
  listed(i: number, entry: ListEntry | undefined): void {
    if (i >= this.count || this.codes[i] !== UNKNOWN) return;
    // A backend that lists no ETags leaves the chunk unknown: the next PUT HEADs it.
    if (entry && !entry.etag) return;
    this.set(i, entry ? { etag: entry.etag as string, hole: entry.size === 0, writer: undefined } : null);
  }

  /** A grown LUN: the new chunks have no object (the resizer deleted any stale one first). */
  grow(chunks: number): void {
    invariant(chunks >= this.count, () => `a LUN never shrinks (${this.count} -> ${chunks} chunks)`);
    const next = new Uint8Array(chunks);
    next.set(this.codes);
    next.fill(NONE, this.count);
    this.codes = next;
    this.count = chunks;
  }

  /** The one place a tag becomes settled. */
  private set(i: number, seen: SeenObject | null): void {
    invariant(seen === null || seen.etag.length > 0, () => `chunk ${i}: an object without an ETag`);
    this.clear(i);
    if (seen === null) this.codes[i] = NONE;
    else if (seen.hole) {
      this.holes.set(i, seen);
      this.codes[i] = HOLE;
    } else {
      this.etags.set(i, seen.etag);
      this.codes[i] = DATA;
    }
  }

  private clear(i: number): void {
    invariant(i >= 0 && i < this.count, () => `chunk ${i} outside 0..${this.count - 1}`);
    this.etags.delete(i);
    this.holes.delete(i);
    this.pendings.delete(i);
  }
}

/** A HEAD's answer as a tag. */
export function seenOf(meta: ObjectMeta): SeenObject {
  return { etag: meta.etag, hole: meta.size === 0, writer: meta.metadata[WRITER_META_KEY] };
}

/** Whether `found` is the object `known` describes (for a hole marker, the same writer too). */
function matches(known: SettledTag, found: ObjectMeta | null): boolean {
  if (known.kind === 'none') return found === null;
  if (found === null || found.etag !== known.etag) return false;
  return !known.hole || known.writer === undefined || found.metadata[WRITER_META_KEY] === known.writer;
}
