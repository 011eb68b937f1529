import type { Parts } from '../util/parts';
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
  /**
   * `data` is a view of the volume's cache: the transport calls this once the Data-In has left
   * (or will never be sent), so later writes to the chunk need not copy it.
   */
  readonly release?: () => void;
}

export interface CommandContext<L> {
  readonly lu: L;
  readonly nexus: ITNexus;
  readonly cdb: Buffer;
  /** The Data-Out as one buffer (parameter lists; joined on first use). */
  readonly dataOut: Buffer;
  /** The Data-Out as the transport received it (WRITE copies from these, never joined). */
  readonly dataParts: Parts;
  /**
   * Whether task management aborted this command while it ran. SAM-5 §7.2 lets an aborted
   * command's effect be either way; a command that modifies the medium only after a slow read
   * (COMPARE AND WRITE) checks this at its commit point, so an abort answered while it waited
   * on S3 means "not applied" and the initiator's retry cannot miscompare against itself.
   */
  readonly aborted: () => boolean;
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
  /**
   * Allowed while another I_T nexus holds an SPC-2 RESERVE: only INQUIRY, REQUEST SENSE,
   * REPORT LUNS and RELEASE (SPC-2 §5.5.1); everything else conflicts.
   */
  readonly spc2Allowed?: boolean;
  /**
   * The Data-Out buffer must be exactly what the CDB describes (COMPARE AND WRITE: executing a
   * different test-and-set than the initiator meant would be worse than failing).
   */
  readonly exactDataOut?: { readonly byte: number };
  /** INQUIRY, REPORT LUNS and REQUEST SENSE run despite a pending unit attention (SPC-5 §5.14). */
  readonly skipsUnitAttention?: boolean;
  /** Runs on a LUN that does not exist (INQUIRY, REPORT LUNS, REQUEST SENSE). */
  readonly anyLun?: boolean;
  /**
   * Runs through a port in the standby or transitioning ALUA state (SPC-5 r20 §5.16.2.4.4):
   * commands that do not touch the medium nor change state kept by the active node.
   */
  readonly inStandby?: boolean;
  /** Nominal timeout in seconds for the timeouts descriptor (SPC-5 §6.35.4). */
  readonly timeout?: number;
  decode(cdb: Buffer, lu: L): D;
  /**
   * FCP-4 §9.4.2 a): when the initiator offers less Data-Out than the CDB describes, process
   * the command on what it offers. Returns the shortened request, or undefined when the
   * command cannot be shortened (it then fails with INVALID FIELD IN COMMAND INFORMATION UNIT).
   */
  shrink?(d: D, dataOutBytes: number, lu: L): D | undefined;
  execute(ctx: CommandContext<L>, d: D): Promise<HandlerResult> | HandlerResult;
}

/** A command definition with its decoded type erased, as kept in the opcode table. */
export interface Command<L> {
  readonly def: Omit<CommandDef<L, Decoded>, 'decode' | 'execute' | 'shrink'>;
  prepare(cdb: Buffer, lu: L): Prepared<L>;
}

export interface Prepared<L> extends Decoded {
  run(ctx: CommandContext<L>): Promise<HandlerResult>;
  /** See CommandDef.shrink. */
  shrink(dataOutBytes: number): Prepared<L> | undefined;
}

/** Wraps a typed definition so the table can hold commands with different decoded types. */
export function defineCommand<L, D extends Decoded>(def: CommandDef<L, D>): Command<L> {
  const prepared = (d: D, lu: L): Prepared<L> => ({
    dataOutLength: d.dataOutLength,
    transferLength: d.transferLength,
    run: async (ctx) => def.execute(ctx, d),
    shrink: (bytes) => {
      const s = def.shrink?.(d, bytes, lu);
      return s ? prepared(s, lu) : undefined;
    },
  });
  return { def, prepare: (cdb, lu) => prepared(def.decode(cdb, lu), lu) };
}
