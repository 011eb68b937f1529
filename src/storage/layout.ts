/**
 * The one module that knows object keys (SlateDB's paths.rs). A LUN named `name` under
 * `prefix` is:
 *   <prefix>/<name>/volume.json              format version, size, block size, chunk size, UUID
 *   <prefix>/<name>/chunks/<16 hex digits>   chunk i: bytes [i MiB, (i+1) MiB) of the LUN
 *   <prefix>/<name>/lease.json               single-writer lease
 *   <prefix>/<name>/records/<record>.json    persistent reservations, saved mode pages,
 *                                             the snapshot catalog (snapshots.json)
 *   <prefix>/<name>/snapshots/<id>/chunks/<16 hex digits>
 *                                             chunk i as it was when snapshot <id> was taken,
 *                                             copied there before its first overwrite (an
 *                                             empty object: the chunk did not exist then)
 *   <prefix>/<name>/snapshots/<id>/deleting   the snapshot is being deleted (clone handshake)
 *   <prefix>/<name>/clones/<clone>.json       a clone of one of this LUN's snapshots exists
 *                                             (written and removed by the clone's lease holder)
 * A clone's own chunks/<i> holds what it wrote; a chunk it never wrote reads through to the
 * parent snapshot (volume.json names it), and a zero-length chunk object hides the parent's.
 */
export const CHUNK_SIZE = 1024 * 1024;
export const FORMAT_VERSION = 1;

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export function validLunName(name: string): boolean {
  return NAME_RE.test(name);
}

/** The chunk index a key names under `prefix` (16 hex digits), or undefined. */
function indexUnder(prefix: string, key: string): number | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const hex = key.slice(prefix.length);
  if (!/^[0-9a-f]{16}$/.test(hex)) return undefined;
  const n = Number.parseInt(hex, 16);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** A LUN's live or snapshot chunk key: `<root>/chunks/<i>` or `<root>/snapshots/<id>/chunks/<i>`. */
const ANY_CHUNK_KEY = /^(.*?)\/(?:snapshots\/[0-9]+\/)?chunks\/([0-9a-f]{16})$/;

/**
 * The LUN root and chunk index of any LUN's live or snapshot chunk key, or undefined for any
 * other key (a store that serves several LUNs' chunks: a clone's parents, a LUN's snapshots).
 */
export function chunkKeyPlace(key: string): { root: string; index: number } | undefined {
  const m = ANY_CHUNK_KEY.exec(key);
  if (!m) return undefined;
  const index = Number.parseInt(m[2], 16);
  return Number.isSafeInteger(index) ? { root: m[1], index } : undefined;
}

export class LunLayout {
  readonly root: string;
  private readonly prefix: string;

  constructor(
    prefix: string,
    readonly name: string,
  ) {
    if (!validLunName(name)) throw new Error(`invalid LUN name "${name}"`);
    this.prefix = prefix.replace(/^\/+|\/+$/g, '');
    this.root = this.prefix ? `${this.prefix}/${name}` : name;
  }

  /** Another LUN under the same prefix (a clone's parent). */
  sibling(name: string): LunLayout {
    return new LunLayout(this.prefix, name);
  }

  /** Where a clone made of one of this LUN's snapshots is recorded (so the snapshot is kept). */
  cloneMarkerKey(clone: string): string {
    if (!validLunName(clone)) throw new Error(`invalid LUN name "${clone}"`);
    return `${this.clonesPrefix}${clone}.json`;
  }

  get clonesPrefix(): string {
    return `${this.root}/clones/`;
  }

  /** The clone a key under clonesPrefix records, or undefined for anything else. */
  cloneNameOf(key: string): string | undefined {
    if (!key.startsWith(this.clonesPrefix) || !key.endsWith('.json')) return undefined;
    const name = key.slice(this.clonesPrefix.length, -'.json'.length);
    return validLunName(name) ? name : undefined;
  }

  /** Written while snapshot `id` is being deleted: a clone made meanwhile sees it and backs off. */
  snapshotDeletingKey(id: number): string {
    return `${this.root}/snapshots/${id}/deleting`;
  }

  get volumeKey(): string {
    return `${this.root}/volume.json`;
  }

  get leaseKey(): string {
    return `${this.root}/lease.json`;
  }

  get chunksPrefix(): string {
    return `${this.root}/chunks/`;
  }

  chunkKey(index: number): string {
    return `${this.chunksPrefix}${index.toString(16).padStart(16, '0')}`;
  }

  /** The chunk index of a key under chunksPrefix, or undefined for anything else. */
  chunkIndexOf(key: string): number | undefined {
    return indexUnder(this.chunksPrefix, key);
  }

  /** Where snapshot `id` keeps the chunks it preserved. */
  snapshotChunksPrefix(id: number): string {
    if (!Number.isSafeInteger(id) || id < 1) throw new Error(`invalid snapshot id ${id}`);
    return `${this.root}/snapshots/${id}/chunks/`;
  }

  snapshotChunkKey(id: number, index: number): string {
    return `${this.snapshotChunksPrefix(id)}${index.toString(16).padStart(16, '0')}`;
  }

  /** The chunk index of a key under a snapshot's chunk prefix, or undefined. */
  snapshotChunkIndexOf(id: number, key: string): number | undefined {
    return indexUnder(this.snapshotChunksPrefix(id), key);
  }

  recordKey(name: string): string {
    if (!/^[a-z0-9-]{1,32}$/.test(name)) throw new Error(`invalid record name "${name}"`);
    return `${this.root}/records/${name}.json`;
  }
}
