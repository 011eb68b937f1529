/**
 * Storage failures collapse to a few prescriptive kinds (SlateDB's ErrorKind), each with one
 * SCSI meaning chosen by the command set:
 * - unavailable: transient (S3 down, throttled, timed out after retries, writes suspended
 *   while the lease is unrenewed) — retry later (NOT READY 04/01);
 * - data: what is stored is wrong (checksum mismatch, unreadable record) — a medium error;
 * - invalid: the request or configuration is wrong (403, missing volume) — fail fast;
 * - fenced: this process lost the LUN's single-writer lease and must not write;
 * - internal: our own bug.
 * The code is stable and more precise than the kind (tests assert on it).
 */
export type StorageErrorKind = 'unavailable' | 'data' | 'invalid' | 'fenced' | 'internal' | 'not-found' | 'precondition';

export type StorageErrorCode =
  | 'STORE_ERR_UNAVAILABLE'
  /** One attempt got no complete answer within its time limit (headers and body). */
  | 'STORE_ERR_TIMEOUT'
  /** No slot of the I/O pool freed up before the operation's deadline. */
  | 'STORE_ERR_POOL_TIMEOUT'
  /** The write gate is shut for now: the lease is not renewed (retryable). */
  | 'STORE_ERR_SUSPENDED'
  /** The volume is closing or closed: no more store mutations. */
  | 'STORE_ERR_CLOSED'
  | 'STORE_ERR_CHECKSUM'
  /** A record read back from the store (volume.json, lease, reservations, mode pages) is malformed. */
  | 'STORE_ERR_RECORD'
  | 'STORE_ERR_INVALID'
  | 'STORE_ERR_NOT_FOUND'
  | 'STORE_ERR_PRECONDITION'
  /** A write or fsync of the local journal failed: its segment's tail is unknown (retryable). */
  | 'STORE_ERR_JOURNAL_IO'
  /** The journal had no room within the wait allowed (retryable: uploads free it). */
  | 'STORE_ERR_JOURNAL_FULL'
  /** The journal directory is missing, not writable, or locked by another process. */
  | 'STORE_ERR_JOURNAL_DIR'
  /** A journal record that was acknowledged does not verify: replay stops there. */
  | 'STORE_ERR_JOURNAL_CORRUPT'
  /** A LUN's journal records could not be replayed (another server may have written it since): quarantined. */
  | 'STORE_ERR_JOURNAL_SUPERSEDED'
  /** A LUN has quarantined journal records the operator has not dealt with yet. */
  | 'STORE_ERR_JOURNAL_QUARANTINED'
  /** A snapshot operation was refused (bad or duplicate name, unknown snapshot, a served LUN). */
  | 'STORE_ERR_SNAPSHOT'
  /**
   * A journal write could be neither replicated to the peer nodes nor declared local-only in
   * the LUN's lease (retryable; docs/ha.md, "Journal replication").
   */
  | 'STORE_ERR_REPLICATION'
  /** A LUN's encryption keys do not match what its chunks were sealed with (records/encryption.json). */
  | 'STORE_ERR_KEY'
  | 'STORE_ERR_FENCED'
  | 'STORE_ERR_INTERNAL';

const CODES: Record<StorageErrorKind, StorageErrorCode> = {
  unavailable: 'STORE_ERR_UNAVAILABLE',
  data: 'STORE_ERR_CHECKSUM',
  invalid: 'STORE_ERR_INVALID',
  'not-found': 'STORE_ERR_NOT_FOUND',
  precondition: 'STORE_ERR_PRECONDITION',
  fenced: 'STORE_ERR_FENCED',
  internal: 'STORE_ERR_INTERNAL',
};

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  constructor(
    readonly kind: StorageErrorKind,
    message: string,
    options?: { cause?: unknown; code?: StorageErrorCode },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StorageError';
    this.code = options?.code ?? CODES[kind];
  }
}

export const isStorageError = (e: unknown, kind?: StorageErrorKind): e is StorageError =>
  e instanceof StorageError && (kind === undefined || e.kind === kind);
