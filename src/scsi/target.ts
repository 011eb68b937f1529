import { StorageError } from '../storage/errors';
import { type Clock, systemClock } from '../util/clock';
import { log } from '../util/log';
import { joinParts, type Parts } from '../util/parts';
import { unreachable } from '../util/unreachable';
import type { Command, CommandContext, HandlerResult, Outcome, Prepared } from './command';
import { hasServiceActions, lookupCommand } from './command-table';
import { absentLunOutcome } from './commands/absent-lun';
import { invalidCdbField, ScsiError, ScsiStatusError } from './errors';
import type { LogicalUnit, TargetPortInfo } from './logical-unit';
import { decodeLun } from './lun-address';
import type { ITNexus } from './nexus';
import { RodTokens } from './rod-tokens';
import { buildSense, type SenseDetail, type SenseReason } from './sense';
import { ScsiStatus, statusName, type TaskAttribute } from './status';
import type { Task } from './task-set';

/** A command as the transport hands it over (SAM-5 §5.1 Execute Command arguments). */
export interface CommandRequest {
  readonly nexus: ITNexus;
  /** The raw 8-byte LUN field. */
  readonly lun: bigint;
  readonly cdb: Buffer;
  readonly tag: number;
  readonly attribute: TaskAttribute;
  /** Data-Out Buffer Size: what the initiator offers to send (iSCSI EDTL for writes). */
  readonly dataOutBufferSize: number;
}

/** The transport's handle on one command. */
export interface ScsiTask {
  /** Bytes to collect from the initiator before `execute`. */
  readonly dataOutLength: number;
  /** SPDTL in bytes: what the CDB asks to move (for residual counts). */
  readonly transferLength: number;
  /** Called when a task management function aborts this task. */
  onAbort(hook: () => void): void;
  /**
   * Runs the command with the Data-Out in the buffers it arrived in; resolves to null when the
   * task was aborted (no response is sent).
   */
  execute(dataOut?: Parts): Promise<Outcome | null>;
  /** Ends the task with a sense reason found by the transport (e.g. a data digest error). */
  fail(reason: SenseReason): Promise<Outcome | null>;
  /** The transport drops the task without a response (connection gone). */
  cancel(): void;
}

export type TmfResult = 'complete' | 'no-task' | 'no-lun' | 'not-supported' | 'succeeded';

export type TmfFunction =
  | 'abort-task'
  | 'abort-task-set'
  | 'clear-task-set'
  | 'lun-reset'
  | 'target-warm-reset'
  | 'target-cold-reset'
  | 'it-nexus-reset'
  | 'query-task'
  | 'query-task-set';

/**
 * The SCSI target device (SAM-5 §4.5): its logical units and the one pipeline every command
 * goes through — decode, task ordering, unit attention, reservation check, execute, and the
 * mapping of every failure to a status and sense.
 */
export class ScsiTarget implements TargetPortInfo {
  private readonly luns = new Map<number, LogicalUnit>();
  readonly rodTokens: RodTokens;

  /** `clock` times ROD token inactivity (tests run it on virtual time). */
  constructor(
    readonly iqn: string,
    clock: Clock = systemClock,
    /** The port's RELATIVE TARGET PORT IDENTIFIER: its TPGT (a cluster node's tpg). */
    readonly relativePortId = 1,
  ) {
    this.rodTokens = new RodTokens(clock);
  }

  addLun(lu: LogicalUnit): void {
    const replaced = this.luns.get(lu.lun);
    if (replaced && replaced !== lu) this.rodTokens.dropLu(replaced);
    this.luns.set(lu.lun, lu);
    for (const other of this.luns.values()) if (other !== lu) other.ua.establish('ReportedLunsDataChanged');
  }

  removeLun(lun: number): void {
    const lu = this.luns.get(lun);
    if (!lu) return;
    this.luns.delete(lun);
    this.rodTokens.dropLu(lu);
    for (const other of this.luns.values()) other.ua.establish('ReportedLunsDataChanged');
  }

  lunNumbers(): number[] {
    return [...this.luns.keys()].sort((a, b) => a - b);
  }

  logicalUnits(): LogicalUnit[] {
    return [...this.luns.values()];
  }

  submit(req: CommandRequest): ScsiTask {
    const lunNumber = decodeLun(req.lun);
    const lu = lunNumber === undefined ? undefined : this.luns.get(lunNumber);
    if (!lu) return new AbsentLunTask(this, req, lunNumber);
    lu.ua.see(req.nexus.id);
    const task = lu.tasks.add(req.nexus, req.tag, req.attribute);
    const command = lookupCommand(req.cdb);
    let prepared: Prepared<LogicalUnit> | undefined;
    let decodeError: unknown;
    if (!command) {
      // SPC-5 §4.2.5.2: an unknown service action of a known opcode is a field error.
      decodeError = hasServiceActions(req.cdb[0]) ? invalidCdbField(1, 4) : new ScsiError('InvalidOpcode');
    } else {
      try {
        prepared = command.prepare(req.cdb, lu);
        const exact = command.def.exactDataOut;
        if (exact && prepared.dataOutLength !== req.dataOutBufferSize) throw invalidCdbField(exact.byte);
        // FCP-4 §9.4.2 / RFC 7143 §11.4.5.1: less Data-Out than the CDB describes. Writes
        // go on with what was offered (the residual reports the rest); other commands fail
        // with INVALID FIELD IN COMMAND INFORMATION UNIT and nothing changes.
        if (prepared.dataOutLength > req.dataOutBufferSize) {
          const shorter = prepared.shrink(req.dataOutBufferSize);
          if (shorter) prepared = shorter;
          else decodeError = new ScsiError('InvalidFieldInInformationUnit');
        }
      } catch (e) {
        decodeError = e;
      }
    }
    return new LuTask(lu, req, task, command, prepared, decodeError);
  }

  /** Task management (SAM-5 §7). Resolves once every affected task has really ended. */
  async manage(fn: TmfFunction, nexus: ITNexus, lun: bigint, tag: number): Promise<TmfResult> {
    const lunNumber = decodeLun(lun);
    const lu = lunNumber === undefined ? undefined : this.luns.get(lunNumber);
    const wait = (tasks: Task[]): Promise<unknown> => {
      for (const t of tasks) t.markAborted();
      return Promise.all(tasks.map((t) => t.finished));
    };
    switch (fn) {
      case 'abort-task': {
        if (!lu) return 'no-lun';
        const t = lu.tasks.find(nexus.id, tag);
        if (!t) return 'no-task';
        await wait([t]);
        return 'complete';
      }
      case 'query-task': {
        if (!lu) return 'no-lun';
        return lu.tasks.find(nexus.id, tag) ? 'succeeded' : 'complete';
      }
      case 'query-task-set': {
        if (!lu) return 'no-lun';
        return lu.tasks.tasks((t) => t.nexus.id === nexus.id && t.tag !== tag).length > 0 ? 'succeeded' : 'complete';
      }
      case 'abort-task-set': {
        if (!lu) return 'no-lun';
        await wait(lu.tasks.tasks((t) => t.nexus.id === nexus.id && t.tag !== tag));
        return 'complete';
      }
      case 'clear-task-set': {
        if (!lu) return 'no-lun';
        const tasks = lu.tasks.tasks((t) => t.tag !== tag || t.nexus.id !== nexus.id);
        // SAM-5 §7.4 with TAS=0: other nexuses learn their tasks were cleared through a UA.
        for (const id of new Set(tasks.map((t) => t.nexus.id))) {
          if (id !== nexus.id) lu.ua.establishFor(id, 'CommandsClearedByAnotherInitiator');
        }
        await wait(tasks);
        return 'complete';
      }
      case 'lun-reset': {
        if (!lu) return 'no-lun';
        await this.resetLu(lu, nexus, tag);
        return 'complete';
      }
      case 'target-warm-reset':
      case 'target-cold-reset': {
        await Promise.all([...this.luns.values()].map((l) => this.resetLu(l, nexus, tag)));
        return 'complete';
      }
      case 'it-nexus-reset': {
        await Promise.all([...this.luns.values()].map((l) => wait(l.tasks.tasks((t) => t.nexus.id === nexus.id && t.tag !== tag))));
        this.nexusLost(nexus);
        return 'complete';
      }
      default:
        return unreachable(fn);
    }
  }

  /** SAM-5 §7.7 LOGICAL UNIT RESET: abort every task, drop SPC-2 reservations, tell everyone. */
  private async resetLu(lu: LogicalUnit, nexus: ITNexus, tag: number): Promise<void> {
    const tasks = lu.tasks.tasks((t) => !(t.nexus.id === nexus.id && t.tag === tag));
    for (const t of tasks) t.markAborted();
    lu.reservations.reset();
    lu.ua.establish('BusDeviceResetOccurred');
    await Promise.all(tasks.map((t) => t.finished));
  }

  /** The transport lost an I_T nexus (session closed or failed). */
  nexusLost(nexus: ITNexus): void {
    for (const lu of this.luns.values()) {
      for (const t of lu.tasks.tasks((x) => x.nexus.id === nexus.id)) t.markAborted();
      lu.reservations.nexusLost(nexus);
    }
  }
}

/** Maps anything a handler throws to a status and sense (the one place that does). */
export function outcomeOfError(e: unknown, descriptorSense: boolean, context: string): Outcome {
  if (e instanceof ScsiError) return checkCondition(e.reason, descriptorSense, e.detail);
  if (e instanceof ScsiStatusError) return { status: e.status };
  if (e instanceof StorageError) {
    switch (e.kind) {
      case 'unavailable':
        log.warn('backend unavailable', { context, error: e.message });
        return checkCondition('BackendUnavailable', descriptorSense);
      case 'data':
        log.error('stored data failed its checksum', { context, error: e.message });
        return checkCondition('UnrecoveredReadError', descriptorSense);
      case 'fenced':
        log.error('lease lost: refusing I/O', { context, error: e.message });
        return checkCondition('LeaseLost', descriptorSense);
      default:
        log.error('storage failure', { context, kind: e.kind, error: e.message });
        return checkCondition('InternalTargetFailure', descriptorSense);
    }
  }
  log.error('internal error while executing a command', { context, error: e instanceof Error ? e.stack : String(e) });
  return checkCondition('InternalTargetFailure', descriptorSense);
}

export function checkCondition(reason: SenseReason, descriptor: boolean, detail?: SenseDetail): Outcome {
  return { status: ScsiStatus.CheckCondition, sense: buildSense(reason, descriptor, detail) };
}

function toOutcome(r: HandlerResult): Outcome {
  if (r === undefined) return { status: ScsiStatus.Good };
  if (Buffer.isBuffer(r)) return { status: ScsiStatus.Good, data: r };
  return r;
}

class LuTask implements ScsiTask {
  readonly dataOutLength: number;
  readonly transferLength: number;
  /** Arrival time, for the command latency metric (from arrival to status, data phases included). */
  private readonly arrived = performance.now();

  constructor(
    private readonly lu: LogicalUnit,
    private readonly req: CommandRequest,
    private readonly task: Task,
    private readonly command: Command<LogicalUnit> | undefined,
    private readonly prepared: Prepared<LogicalUnit> | undefined,
    private readonly decodeError: unknown,
  ) {
    this.dataOutLength = decodeError || !prepared ? 0 : prepared.dataOutLength;
    this.transferLength = prepared?.transferLength ?? 0;
  }

  onAbort(hook: () => void): void {
    this.task.onAbort(hook);
  }

  execute(dataOut?: Parts): Promise<Outcome | null> {
    return this.runOrdered(() => this.run(dataOut ?? NO_PARTS));
  }

  fail(reason: SenseReason): Promise<Outcome | null> {
    return this.runOrdered(async () => checkCondition(reason, this.lu.descriptorSense));
  }

  cancel(): void {
    this.task.markAborted();
    if (!this.task.running) this.task.end();
  }

  private get commandName(): string {
    return this.command?.def.name ?? `opcode 0x${this.req.cdb[0].toString(16).padStart(2, '0')}`;
  }

  private async runOrdered(body: () => Promise<Outcome>): Promise<Outcome | null> {
    const t = this.task;
    if (t.blocker) await t.blocker;
    if (t.aborted) {
      t.end();
      return null;
    }
    t.running = true;
    let outcome: Outcome;
    try {
      outcome = await body();
    } catch (e) {
      // In a cluster a LUN whose lease another node took is standby here: 04/0B sends the
      // initiator's multipath to the node that has it (LeaseLost, 04/03, would stall it). So
      // is one whose lease is not known to be held (a suspended gate: ClusterLun presents it
      // as standby at its next look); 04/01 would hold the initiator on this path for minutes.
      outcome =
        this.lu.alua && e instanceof StorageError && (e.kind === 'fenced' || e.code === 'STORE_ERR_SUSPENDED')
          ? checkCondition('LunStandby', this.lu.descriptorSense)
          : outcomeOfError(e, this.lu.descriptorSense, this.commandName);
    }
    t.end();
    if (t.aborted) {
      outcome.release?.();
      this.lu.stats.aborted++;
      return null;
    }
    this.lu.stats.record(this.commandName, statusName(outcome.status), (performance.now() - this.arrived) / 1000);
    return outcome;
  }

  /** SPC-5 §5.14 / LIO order: unit attention, then CDB errors, then reservations, then the handler. */
  private async run(dataParts: Parts): Promise<Outcome> {
    const lu = this.lu;
    const nexus = this.req.nexus;
    if (!this.command?.def.skipsUnitAttention) {
      const ua = lu.ua.take(nexus.id);
      if (ua) return checkCondition(ua, lu.descriptorSense);
    }
    if (this.decodeError !== undefined) throw this.decodeError;
    if (!this.command || !this.prepared) throw new ScsiError('InvalidOpcode');
    // SPC-5 r20 §5.16.2.4: only commands that leave the medium alone run through a port that
    // is not active for the LUN (LIO checks this before reservations too).
    if (lu.alua && !this.command.def.inStandby) {
      const state = lu.alua.localState;
      if (state === 'standby') throw new ScsiError('LunStandby');
      if (state === 'transitioning') throw new ScsiError('LunTransitioning');
    }
    lu.reservations.check(nexus, this.command.def);
    let joined: Buffer | undefined;
    const ctx: CommandContext<LogicalUnit> = {
      lu,
      nexus,
      cdb: this.req.cdb,
      dataParts,
      aborted: () => this.task.aborted,
      get dataOut(): Buffer {
        joined ??= dataParts.length === 0 ? EMPTY : joinParts(dataParts);
        return joined;
      },
    };
    return toOutcome(await this.prepared.run(ctx));
  }
}

const EMPTY = Buffer.alloc(0);
const NO_PARTS: Parts = [];

/** A command addressed to a LUN the target does not have (SPC-5 §6.7.2, §6.33). */
class AbsentLunTask implements ScsiTask {
  readonly dataOutLength = 0;
  readonly transferLength = 0;
  constructor(
    private readonly target: ScsiTarget,
    private readonly req: CommandRequest,
    private readonly lunNumber: number | undefined,
  ) {}
  onAbort(): void {}
  async execute(): Promise<Outcome> {
    try {
      return absentLunOutcome(this.req.cdb, this.target, this.lunNumber);
    } catch (e) {
      return outcomeOfError(e, false, 'absent LUN');
    }
  }
  async fail(reason: SenseReason): Promise<Outcome> {
    return checkCondition(reason, false);
  }
  cancel(): void {}
}
