import type { Volume } from '../storage/volume';
import type { AluaStates } from './alua';
import { CommandStats } from './command-stats';
import type { LuIdentity } from './identity';
import { ModePages } from './mode/mode-pages';
import { Reservations } from './reservations/reservations';
import type { RodTokens } from './rod-tokens';
import { TaskSet } from './task-set';
import { UnitAttentions } from './unit-attention';
import { WatchedVolume, WriteWatch } from './watched-volume';

/** The target-wide facts a logical unit reports (REPORT LUNS, device identification). */
export interface TargetPortInfo {
  readonly iqn: string;
  /** Every LUN number the target exposes, for REPORT LUNS. */
  lunNumbers(): number[];
  /** The logical units of the target (EXTENDED COPY finds copy targets among them). */
  logicalUnits(): LogicalUnit[];
  /** ODX's ROD tokens: one made on a LU of the target may be used on any other. */
  readonly rodTokens: RodTokens;
  /** RELATIVE TARGET PORT IDENTIFIER of the port (this node's TPGT; VPD 83h, RTPG). */
  readonly relativePortId: number;
}

/**
 * A logical unit (SAM-5 §4.6): one volume plus the state SCSI keeps about it — its task set,
 * unit attentions, mode parameters and reservations.
 */
export class LogicalUnit {
  readonly tasks = new TaskSet();
  readonly ua = new UnitAttentions();
  readonly mode: ModePages;
  readonly reservations: Reservations;
  readonly stats = new CommandStats();
  /** Told of every change to the medium, whichever command makes it (ODX cancels tokens). */
  readonly writes = new WriteWatch();
  private current: WatchedVolume;

  constructor(
    readonly lun: number,
    backing: Volume,
    readonly identity: LuIdentity,
    readonly target: TargetPortInfo,
    /** In a cluster: the LU's asymmetric access states (undefined: TPGS 00b, one port). */
    readonly alua?: AluaStates,
  ) {
    this.current = new WatchedVolume(backing, this.writes);
    this.mode = new ModePages(this);
    this.reservations = new Reservations(this);
  }

  /**
   * The volume every command uses: the backing volume, with each change reported to
   * `writes`. A command keeps the volume it started with.
   */
  get volume(): WatchedVolume {
    return this.current;
  }

  /**
   * A cluster node switches the LU between the LUN's volume (active) and a stand-in that
   * holds no lease (standby, docs/ha.md); commands that were running keep the old one.
   */
  attach(backing: Volume): void {
    this.current = new WatchedVolume(backing, this.writes);
  }

  get blockSize(): number {
    return this.volume.info.logicalBlockSize;
  }

  get capacityBlocks(): bigint {
    return BigInt(this.volume.info.sizeBytes / this.volume.info.logicalBlockSize);
  }

  /** D_SENSE in the Control mode page picks descriptor-format sense (SPC-5 §7.5.8). */
  get descriptorSense(): boolean {
    return this.mode.descriptorSense;
  }

  /** Restores state kept with the volume (saved mode pages, persistent reservations). */
  async load(): Promise<void> {
    await this.mode.load();
    await this.reservations.load();
  }
}
