/**
 * Storage failures collapse to a few prescriptive kinds (SlateDB's ErrorKind), each with one
 * SCSI meaning chosen by the command set:
 * - unavailable: transient (S3 down, throttled, timed out after retries) — retry later;
 * - data: what is stored is wrong (checksum mismatch) — a medium error, never silent;
 * - invalid: the request or configuration is wrong (403, missing volume) — fail fast;
 * - fenced: this process lost the LUN's single-writer lease and must not write;
 * - internal: our own bug.
 */
export type StorageErrorKind = 'unavailable' | 'data' | 'invalid' | 'fenced' | 'internal' | 'not-found' | 'precondition';

export type StorageErrorCode =
  | 'STORE_ERR_UNAVAILABLE'
  | 'STORE_ERR_CHECKSUM'
  | 'STORE_ERR_INVALID'
  | 'STORE_ERR_NOT_FOUND'
  | 'STORE_ERR_PRECONDITION'
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
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StorageError';
    this.code = CODES[kind];
  }
}

export const isStorageError = (e: unknown, kind?: StorageErrorKind): e is StorageError =>
  e instanceof StorageError && (kind === undefined || e.kind === kind);
