import { StoredRecord } from '../../storage/record';
import { log } from '../../util/log';
import type { CommandDef, Decoded } from '../command';
import { ScsiStatusError } from '../errors';
import type { LogicalUnit } from '../logical-unit';
import type { ITNexus } from '../nexus';
import { ScsiStatus } from '../status';

/** A reservation key as saved: up to 16 hex digits (SPC-5 §6.16.3: 8 bytes). */
function reservationKey(f: StoredRecord): bigint {
  const hex = f.hex(true);
  if (hex.length === 0 || hex.length > 16) f.fail('not a reservation key (1 to 16 hex digits)');
  return BigInt(`0x${hex}`);
}

/** SPC-5 §6.17.3 Table 174: persistent reservation types. */
export const PrType = {
  WriteExclusive: 1,
  ExclusiveAccess: 3,
  WriteExclusiveRegistrantsOnly: 5,
  ExclusiveAccessRegistrantsOnly: 6,
  WriteExclusiveAllRegistrants: 7,
  ExclusiveAccessAllRegistrants: 8,
} as const;
export const VALID_PR_TYPES: ReadonlySet<number> = new Set(Object.values(PrType));

export const isAllRegistrants = (t: number): boolean => t === PrType.WriteExclusiveAllRegistrants || t === PrType.ExclusiveAccessAllRegistrants;
const isRegistrantsOnly = (t: number): boolean => t === PrType.WriteExclusiveRegistrantsOnly || t === PrType.ExclusiveAccessRegistrantsOnly;
const isExclusiveAccess = (t: number): boolean =>
  t === PrType.ExclusiveAccess || t === PrType.ExclusiveAccessRegistrantsOnly || t === PrType.ExclusiveAccessAllRegistrants;

export interface Registration {
  readonly nexusId: string;
  key: bigint;
  readonly initiatorPort: string;
  readonly transportId: Buffer;
  readonly relativeTargetPortId: number;
  readonly allTargetPorts: boolean;
}

export interface PersistentReservation {
  /** The I_T nexus that holds it (for all-registrants types: the one that reserved). */
  readonly holder: string;
  readonly type: number;
}

interface PrRecord {
  readonly version: 1;
  readonly generation: number;
  readonly aptpl: boolean;
  readonly registrations: Array<{
    nexusId: string;
    key: string;
    initiatorPort: string;
    transportId: string;
    relativeTargetPortId: number;
    allTargetPorts: boolean;
  }>;
  readonly reservation: PersistentReservation | null;
}

/**
 * Reservations of a logical unit: the SPC-2 RESERVE/RELEASE kind (lost on reset and nexus
 * loss) and persistent reservations (SPC-5 §5.13), whose state is saved in the LUN's store on
 * every change so it survives a restart when APTPL was set (Windows Failover Clustering and
 * VMware depend on this).
 */
export class Reservations {
  /** SPC-2: the nexus holding a RESERVE(6)/(10), if any. */
  spc2Holder: string | undefined;
  generation = 0;
  aptpl = false;
  readonly registrations = new Map<string, Registration>();
  reservation: PersistentReservation | undefined;

  constructor(readonly lu: LogicalUnit) {}

  /**
   * SPC-5 §5.13.1 / SPC-2 §5.5.1: throws RESERVATION CONFLICT when `nexus` may not run `cmd`.
   * PERSISTENT RESERVE IN/OUT do their own checks.
   */
  check(nexus: ITNexus, cmd: Pick<CommandDef<LogicalUnit, Decoded>, 'reservation' | 'spc2Allowed'>): void {
    if (this.spc2Holder !== undefined && this.spc2Holder !== nexus.id && !cmd.spc2Allowed) {
      throw new ScsiStatusError(ScsiStatus.ReservationConflict);
    }
    const r = this.reservation;
    if (!r || cmd.reservation === 'allowed' || this.isHolder(nexus.id)) return;
    const registered = this.registrations.has(nexus.id);
    // Registrants-only and all-registrants types grant access to every registrant.
    if ((isRegistrantsOnly(r.type) || isAllRegistrants(r.type)) && registered) return;
    if (cmd.reservation === 'write' || isExclusiveAccess(r.type)) throw new ScsiStatusError(ScsiStatus.ReservationConflict);
  }

  isHolder(nexusId: string): boolean {
    const r = this.reservation;
    if (!r) return false;
    if (isAllRegistrants(r.type)) return this.registrations.has(nexusId);
    return r.holder === nexusId;
  }

  /** SAM-5 §6.3: LOGICAL UNIT RESET and target resets drop SPC-2 reservations (not persistent ones). */
  reset(): void {
    this.spc2Holder = undefined;
  }

  /** An I_T nexus is gone (session ended): its SPC-2 reservation goes with it. */
  nexusLost(nexus: ITNexus): void {
    if (this.spc2Holder === nexus.id) this.spc2Holder = undefined;
  }

  /** Saves the persistent state (every PR OUT that changes it calls this before returning). */
  async save(): Promise<void> {
    const rec: PrRecord = {
      version: 1,
      generation: this.generation,
      aptpl: this.aptpl,
      registrations: [...this.registrations.values()].map((r) => ({
        nexusId: r.nexusId,
        key: r.key.toString(16),
        initiatorPort: r.initiatorPort,
        transportId: r.transportId.toString('hex'),
        relativeTargetPortId: r.relativeTargetPortId,
        allTargetPorts: r.allTargetPorts,
      })),
      reservation: this.reservation ?? null,
    };
    await this.lu.volume.saveRecord('persistent-reservations', Buffer.from(JSON.stringify(rec)));
  }

  /**
   * SPC-5 §5.13.5.4: registrations and the reservation survive a restart only with APTPL. A
   * record that does not read back as one is refused with an error naming it: starting
   * without a cluster's reservations would let every node write the disk.
   */
  async load(): Promise<void> {
    const name = 'persistent-reservations';
    // A cluster node taking the LUN over starts from the store's state (docs/ha.md); SPC-2
    // reservations belonged to the nexuses of the node that had it.
    const shared = this.lu.alua !== undefined;
    this.spc2Holder = undefined;
    this.registrations.clear();
    this.reservation = undefined;
    this.aptpl = false;
    this.generation = 0;
    const raw = await this.lu.volume.loadRecord(name);
    if (!raw) return;
    const rec = StoredRecord.parse(raw, `records/${name}.json`);
    rec.get('version').oneOf([1]);
    // Checked, not restored: a start is a power on, and SPC-5 §6.16.2 (READ KEYS) says
    // "Regardless of the APTPL bit value the PRgeneration value shall be set to zero by a power on."
    // A cluster's takeover is not one: the LU goes on, on another node.
    const generation = rec.get('generation').int(0, 0xffffffff);
    const aptpl = rec.get('aptpl').bool();
    const registrations: Registration[] = rec
      .get('registrations')
      .array()
      .map((r) => ({
        nexusId: r.get('nexusId').str(),
        key: reservationKey(r.get('key')),
        initiatorPort: r.get('initiatorPort').str(),
        transportId: Buffer.from(r.get('transportId').hex(), 'hex'),
        relativeTargetPortId: r.get('relativeTargetPortId').int(0, 0xffff),
        allTargetPorts: r.get('allTargetPorts').bool(),
      }));
    const res = rec.get('reservation');
    const reservation = res.isNull ? undefined : { holder: res.get('holder').str(), type: res.get('type').oneOf([...VALID_PR_TYPES]) };
    // In a cluster the state always lives in the store (a takeover must keep a Failover
    // Cluster's reservation, APTPL or not); alone, only with APTPL (SPC-5 §5.13.5.4).
    if (!aptpl && !shared) return;
    this.aptpl = aptpl;
    if (shared) this.generation = generation;
    for (const r of registrations) this.registrations.set(r.nexusId, r);
    this.reservation = reservation;
    log.info(`persistent reservations restored (${shared ? 'cluster' : 'APTPL'})`, {
      lun: this.lu.lun,
      registrations: this.registrations.size,
      reserved: !!this.reservation,
    });
  }
}
