import type { SenseDetail, SenseReason } from './sense';
import type { ScsiStatus } from './status';

/** A command fails with CHECK CONDITION and the sense data of `reason` (SPC-5 §4.4). */
export class ScsiError extends Error {
  readonly code = 'SCSI_ERR_CHECK_CONDITION';
  constructor(
    readonly reason: SenseReason,
    readonly detail: SenseDetail = {},
  ) {
    super(reason);
    this.name = 'ScsiError';
  }
}

/** A command ends with a status that carries no sense (RESERVATION CONFLICT, BUSY, TASK SET FULL). */
export class ScsiStatusError extends Error {
  readonly code = 'SCSI_ERR_STATUS';
  constructor(readonly status: ScsiStatus) {
    super(`status 0x${status.toString(16)}`);
    this.name = 'ScsiStatusError';
  }
}

/** Shorthand for INVALID FIELD IN CDB with a field pointer (SPC-5 §4.4.2.4.2). */
export function invalidCdbField(byte: number, bit?: number): ScsiError {
  return new ScsiError('InvalidFieldInCdb', { field: bit === undefined ? { inCdb: true, byte } : { inCdb: true, byte, bit } });
}

export function invalidParamField(byte: number, bit?: number): ScsiError {
  return new ScsiError('InvalidFieldInParameterList', {
    field: bit === undefined ? { inCdb: false, byte } : { inCdb: false, byte, bit },
  });
}
