import { StorageError } from '../errors';
import type { LunLayout } from '../layout';
import type { ObjectStore } from '../object-store';
import { StoredRecord } from '../record';
import type { ChunkCodec } from './chunk-codec';
import { KEY_ID_RE, type KeyRing, keyVerifier } from './keys';

/** `records/encryption.json`: the keys a LUN's chunks were sealed with, as verifiers (keys.ts). */
export const ENCRYPTION_RECORD = 'encryption';

interface EncryptionJson {
  readonly version: 1;
  /** key id -> verifier */
  readonly keys: Readonly<Record<string, string>>;
  /** The LUN held chunks in clear when encryption was turned on: they stay readable. */
  readonly plaintext: boolean;
}

const keyError = (message: string): StorageError => new StorageError('invalid', message, { code: 'STORE_ERR_KEY' });

/**
 * Checks the LUN's configured keys against its record before anything is read or written, and
 * records the current key on its first use. Refused, with a message naming the key: a key whose
 * verifier differs (a wrong key would make every chunk a MEDIUM ERROR, or with a recorded
 * plaintext LUN silently mix), a recorded key that is not configured, encryption configured
 * off for a LUN that has a record. `isNew`: the LUN was created just now (no chunk in clear can
 * exist). `store` carries the write gate where the record may be written; `readOnly` only checks.
 */
export async function checkKeys(
  store: ObjectStore,
  layout: LunLayout,
  uuid: string,
  codec: ChunkCodec,
  isNew: boolean,
  readOnly = false,
): Promise<void> {
  const key = layout.recordKey(ENCRYPTION_RECORD);
  const got = await store.get(key);
  const rec = got ? parse(got.body, key) : undefined;
  const ring = codec.settings.keys;
  if (!ring) {
    if (rec) throw keyError(`LUN ${layout.name} is encrypted (keys ${Object.keys(rec.keys).join(', ')} in ${key}): configure its "encryption"`);
    return;
  }
  const recorded = rec?.keys ?? {};
  verifyRecorded(recorded, ring, uuid, `LUN ${layout.name}`);
  codec.plainAllowed = rec ? rec.plaintext : !isNew;
  if (recorded[ring.current.id] !== undefined || readOnly) return;
  const next: EncryptionJson = {
    version: 1,
    keys: { ...recorded, [ring.current.id]: keyVerifier(ring.current, uuid) },
    plaintext: codec.plainAllowed,
  };
  await store.put(key, Buffer.from(`${JSON.stringify(next, null, 2)}\n`), got ? { ifMatch: got.meta.etag } : { ifNoneMatch: '*' });
}

/**
 * A clone reads the chunks it inherits with its own keys (chunk-codec.ts: a parent's chunks
 * stay sealed by the parent): each key its parent recorded must be configured for the clone,
 * and be the same key. Checked when the clone opens, read only, so that a missing or wrong key
 * is a refusal to start naming the key, not a MEDIUM ERROR on every inherited chunk.
 */
export async function checkInheritedKeys(store: ObjectStore, parent: LunLayout, uuid: string, codec: ChunkCodec, clone: string): Promise<void> {
  const key = parent.recordKey(ENCRYPTION_RECORD);
  const got = await store.get(key);
  if (!got) return;
  const rec = parse(got.body, key);
  const ring = codec.settings.keys;
  const of = `clone ${clone}: its parent "${parent.name}"`;
  if (!ring) throw keyError(`${of} is encrypted (keys ${Object.keys(rec.keys).join(', ')} in ${key}): configure the clone's "encryption" with them`);
  verifyRecorded(rec.keys, ring, uuid, of);
}

/** Each recorded key is configured, and is the key recorded (its verifier under `uuid`). */
function verifyRecorded(recorded: Readonly<Record<string, string>>, ring: KeyRing, uuid: string, who: string): void {
  for (const [id, verifier] of Object.entries(recorded)) {
    const k = ring.find(id);
    if (!k) throw keyError(`${who} has chunks sealed with key "${id}": give it under encryption.previous`);
    if (keyVerifier(k, uuid) !== verifier) throw keyError(`${who}: key "${id}" is not the key its chunks were sealed with`);
  }
}

function parse(body: Buffer, key: string): EncryptionJson {
  const r = StoredRecord.parse(body, key);
  r.get('version').oneOf([1]);
  const keysR = r.get('keys');
  const keys: Record<string, string> = {};
  for (const id of keysR.keys()) {
    if (!KEY_ID_RE.test(id)) keysR.fail(`"${id}" is not a key id`);
    keys[id] = keysR.get(id).hex();
  }
  return { version: 1, keys, plaintext: r.get('plaintext').bool() };
}

/**
 * After `defrag --rekey` sealed every chunk (live and snapshots) with the current key: the
 * record keeps that key only, and no chunk in clear is accepted from then on. The older keys
 * can then leave the configuration.
 */
export async function forgetOldKeys(store: ObjectStore, layout: LunLayout, uuid: string, codec: ChunkCodec): Promise<string[]> {
  const ring = codec.settings.keys;
  if (!ring) throw keyError(`LUN ${layout.name} has no "encryption" configured: nothing to rekey`);
  const key = layout.recordKey(ENCRYPTION_RECORD);
  const got = await store.get(key);
  const old = got ? Object.keys(parse(got.body, key).keys).filter((id) => id !== ring.current.id) : [];
  const next: EncryptionJson = { version: 1, keys: { [ring.current.id]: keyVerifier(ring.current, uuid) }, plaintext: false };
  await store.put(key, Buffer.from(`${JSON.stringify(next, null, 2)}\n`), got ? { ifMatch: got.meta.etag } : { ifNoneMatch: '*' });
  codec.plainAllowed = false;
  return old;
}
