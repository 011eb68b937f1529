import type { ITNexus } from './nexus';
import type { ScsiStatus } from './status';

/** What decoding a CDB tells the transport before any data moves. */
export interface Decoded {
  /** Bytes the device server needs from the Data-Out buffer (0 for none). */
  readonly dataOutLength: number;
  /**
   * The transfer length the CDB describes in bytes (the SPDTL used for residuals, RFC 7143
   * §11.4.5.1), for whichever direction the command moves data.
   */
  readonly transferLength: number;
}

export const NO_DATA: Decoded = { dataOutLength: 0, transferLength: 0 };

/** SPC-5 §5.9.1 Table 63 style classes: how a command interacts with reservations. */
export type ReservationClass =
  /** Always allowed (INQUIRY, REPORT LUNS, REQUEST SENSE, PR IN/OUT, ...). */
  | 'allowed'
  /** Reads the medium: conflicts under Exclusive Access for non-holders. */
  | 'read'
  /** Changes the medium or device state: conflicts under Write Exclusive / Exclusive Access. */
  | 'write';

export interface Outcome {
  readonly status: ScsiStatus;
  readonly sense?: Buffer;
  /** Data-In, already truncated to the allocation length; the transport truncates to its buffer. */
  readonly data?: Buffer;
}

export interface CommandContext<L> {
  readonly lu: L;
  readonly nexus: ITNexus;
  readonly cdb: Buffer;
  readonly dataOut: Buffer;
}

/** The result of a handler: Data-In, or nothing (GOOD). Failures are thrown ScsiErrors. */
export type HandlerResult = Buffer | undefined | Outcome;

export interface CommandDef<L, D extends Decoded> {
  readonly name: string;
  readonly opcode: number;
  /** Service action for opcodes that multiplex (SPC-5 §4.2.5.2). */
  readonly serviceAction?: number;
  readonly cdbLength: number;
  /**
   * CDB USAGE DATA for REPORT SUPPORTED OPERATION CODES (SPC-5 §6.35.3): for each CDB byte, the
   * bits a device server looks at.
   */
  readonly usage: readonly number[];
  readonly reservation: ReservationClass;
  /** INQUIRY, REPORT LUNS and REQUEST SENSE run despite a pending unit attention (SPC-5 §5.14). */
  readonly skipsUnitAttention?: boolean;
  /** Runs on a LUN that does not exist (INQUIRY, REPORT LUNS, REQUEST SENSE). */
  readonly anyLun?: boolean;
  /** Nominal timeout in seconds for the timeouts descriptor (SPC-5 §6.35.4). */
  readonly timeout?: number;
  decode(cdb: Buffer, lu: L): D;
  execute(ctx: CommandContext<L>, d: D): Promise<HandlerResult> | HandlerResult;
}

/** A command definition with its decoded type erased, as kept in the opcode table. */
export interface Command<L> {
  readonly def: Omit<CommandDef<L, Decoded>, 'decode' | 'execute'>;
  prepare(cdb: Buffer, lu: L): Prepared<L>;
}

export interface Prepared<L> extends Decoded {
  run(ctx: CommandContext<L>): Promise<HandlerResult>;
}

/** Wraps a typed definition so the table can hold commands with different decoded types. */
export function defineCommand<L, D extends Decoded>(def: CommandDef<L, D>): Command<L> {
  return {
    def,
    prepare(cdb, lu) {
      const d = def.decode(cdb, lu);
      return {
        dataOutLength: d.dataOutLength,
        transferLength: d.transferLength,
        run: async (ctx) => def.execute(ctx, d),
      };
    },
  };
}
