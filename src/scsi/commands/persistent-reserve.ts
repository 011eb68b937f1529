import { be, checkControlByte, truncate } from '../cdb';
import { type Command, defineCommand } from '../command';
import { invalidCdbField, invalidParamField, ScsiError, ScsiStatusError } from '../errors';
import type { LogicalUnit } from '../logical-unit';
import type { ITNexus } from '../nexus';
import { isAllRegistrants, type Reservations, VALID_PR_TYPES } from '../reservations/reservations';
import { ScsiStatus } from '../status';

const conflict = (): ScsiStatusError => new ScsiStatusError(ScsiStatus.ReservationConflict);

/** SPC-5 §6.17.1: PERSISTENT RESERVE IN service actions. */
const PrIn = { ReadKeys: 0, ReadReservation: 1, ReportCapabilities: 2, ReadFullStatus: 3 } as const;
/** SPC-5 §6.18.1: PERSISTENT RESERVE OUT service actions. */
const PrOut = { Register: 0, Reserve: 1, Release: 2, Clear: 3, Preempt: 4, PreemptAndAbort: 5, RegisterAndIgnore: 6 } as const;

function withHeader(generation: number, body: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE(generation >>> 0, 0);
  h.writeUInt32BE(body.length, 4);
  return Buffer.concat([h, body]);
}

/** SPC-5 §6.17: PERSISTENT RESERVE IN. */
export const PERSISTENT_RESERVE_IN: Command<LogicalUnit> = defineCommand({
  name: 'PERSISTENT RESERVE IN',
  opcode: 0x5e,
  cdbLength: 10,
  usage: [0x5e, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, 0x00],
  reservation: 'allowed',
  // SPC-5 r20 §5.16.2.4.4: PERSISTENT RESERVE IN works through a standby port. There the
  // state is read from the store, where the active node writes every change (docs/ha.md).
  inStandby: true,
  decode(cdb) {
    checkControlByte(cdb.subarray(0, 10));
    const action = cdb[1] & 0x1f;
    if (action > PrIn.ReadFullStatus) throw invalidCdbField(1, 4);
    const allocationLength = be.u16(cdb, 7);
    return { action, allocationLength, dataOutLength: 0, transferLength: allocationLength };
  },
  async execute({ lu }, r) {
    const pr = lu.reservations;
    if (lu.alua && lu.alua.localState !== 'active-optimized') await pr.load();
    let data: Buffer;
    switch (r.action) {
      case PrIn.ReadKeys: {
        const keys = [...pr.registrations.values()];
        const body = Buffer.alloc(8 * keys.length);
        keys.forEach((k, i) => {
          body.writeBigUInt64BE(k.key, 8 * i);
        });
        data = withHeader(pr.generation, body);
        break;
      }
      case PrIn.ReadReservation: {
        const res = pr.reservation;
        let body = Buffer.alloc(0);
        if (res) {
          body = Buffer.alloc(16);
          // For all-registrants types the key reported is zero (SPC-5 §6.17.3).
          const key = isAllRegistrants(res.type) ? 0n : (pr.registrations.get(res.holder)?.key ?? 0n);
          body.writeBigUInt64BE(key, 0);
          body[13] = res.type & 0x0f;
        }
        data = withHeader(pr.generation, body);
        break;
      }
      case PrIn.ReportCapabilities: {
        data = Buffer.alloc(8);
        data.writeUInt16BE(8, 0);
        data[2] = 0x10 | 0x04 | 0x01; // CRH, ATP_C, PTPL_C
        data[3] = 0x80 | (pr.aptpl ? 0x01 : 0); // TMV, PTPL_A
        data[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02; // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX
        data[5] = 0x01; // EX_AC_AR
        break;
      }
      default: {
        const descs = [...pr.registrations.values()].map((reg) => {
          const d = Buffer.alloc(24 + reg.transportId.length);
          d.writeBigUInt64BE(reg.key, 0);
          d[12] = (reg.allTargetPorts ? 0x02 : 0) | (pr.isHolder(reg.nexusId) ? 0x01 : 0);
          if (pr.isHolder(reg.nexusId) && pr.reservation) d[13] = pr.reservation.type & 0x0f;
          d.writeUInt16BE(reg.relativeTargetPortId, 18);
          d.writeUInt32BE(reg.transportId.length, 20);
          reg.transportId.copy(d, 24);
          return d;
        });
        data = withHeader(pr.generation, Buffer.concat(descs));
      }
    }
    return truncate(data, r.allocationLength);
  },
});

interface PrOutRequest {
  readonly action: number;
  readonly scope: number;
  readonly type: number;
  readonly dataOutLength: number;
  readonly transferLength: number;
}

/**
 * SPC-5 §6.18: PERSISTENT RESERVE OUT. Every change bumps PRgeneration (except RESERVE and
 * RELEASE) and is saved to the store before status is returned.
 */
export const PERSISTENT_RESERVE_OUT: Command<LogicalUnit> = defineCommand({
  name: 'PERSISTENT RESERVE OUT',
  opcode: 0x5f,
  cdbLength: 10,
  usage: [0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x00],
  reservation: 'allowed',
  timeout: 30,
  decode(cdb): PrOutRequest {
    checkControlByte(cdb.subarray(0, 10));
    const action = cdb[1] & 0x1f;
    if (action > PrOut.RegisterAndIgnore) throw invalidCdbField(1, 4); // REGISTER AND MOVE not offered
    const len = be.u32(cdb, 5);
    // §6.18.3: every service action we offer takes exactly 24 bytes (no SPEC_I_PT).
    if (len !== 24) throw new ScsiError('ParameterListLengthError');
    return { action, scope: cdb[2] >> 4, type: cdb[2] & 0x0f, dataOutLength: len, transferLength: len };
  },
  async execute({ lu, nexus, dataOut }, r) {
    const p = dataOut.subarray(0, 24);
    const key = be.u64(p, 0);
    const saKey = be.u64(p, 8);
    const flags = p[20];
    if (flags & 0x08) throw invalidParamField(20, 3); // SPEC_I_PT: SIP_C = 0
    const pr = lu.reservations;
    const reg = pr.registrations.get(nexus.id);
    const needsScopeType =
      r.action === PrOut.Reserve || r.action === PrOut.Release || r.action === PrOut.Preempt || r.action === PrOut.PreemptAndAbort;
    if (needsScopeType) {
      if (r.scope !== 0) throw invalidCdbField(2, 7); // LU_SCOPE only
      if (!VALID_PR_TYPES.has(r.type)) throw invalidCdbField(2, 3);
    }
    switch (r.action) {
      case PrOut.Register:
      case PrOut.RegisterAndIgnore: {
        // §5.13.7: a registered nexus must quote its key, an unregistered one zero.
        if (r.action === PrOut.Register && (reg ? reg.key !== key : key !== 0n)) throw conflict();
        if (saKey === 0n) {
          if (reg) unregister(pr, nexus.id);
        } else if (reg) {
          reg.key = saKey;
        } else {
          pr.registrations.set(nexus.id, {
            nexusId: nexus.id,
            key: saKey,
            initiatorPort: nexus.initiatorPort,
            transportId: nexus.transportId,
            relativeTargetPortId: nexus.relativeTargetPortId,
            allTargetPorts: (flags & 0x04) !== 0,
          });
        }
        pr.aptpl = (flags & 0x01) !== 0;
        pr.generation++;
        break;
      }
      case PrOut.Reserve: {
        if (!reg || reg.key !== key) throw conflict();
        const res = pr.reservation;
        if (res) {
          // Reserving again with the same type is a no-op for the holder, a conflict otherwise.
          if (pr.isHolder(nexus.id) && res.type === r.type) return undefined;
          throw conflict();
        }
        pr.reservation = { holder: nexus.id, type: r.type };
        break;
      }
      case PrOut.Release: {
        if (!reg || reg.key !== key) throw conflict();
        const res = pr.reservation;
        if (!res || !pr.isHolder(nexus.id)) return undefined;
        if (res.type !== r.type) throw new ScsiError('InvalidReleaseOfPersistentReservation');
        pr.reservation = undefined;
        // §5.13.11.2.2: registrants-only and all-registrants releases tell the other registrants.
        if (res.type >= 5) for (const id of pr.registrations.keys()) if (id !== nexus.id) lu.ua.establishFor(id, 'ReservationsReleased');
        break;
      }
      case PrOut.Clear: {
        if (!reg || reg.key !== key) throw conflict();
        for (const id of pr.registrations.keys()) if (id !== nexus.id) lu.ua.establishFor(id, 'ReservationsPreempted');
        pr.registrations.clear();
        pr.reservation = undefined;
        pr.generation++;
        break;
      }
      case PrOut.Preempt:
      case PrOut.PreemptAndAbort: {
        if (!reg || reg.key !== key) throw conflict();
        const removed = preempt(pr, nexus, saKey, r.type);
        if (r.action === PrOut.PreemptAndAbort) {
          // §5.13.11.2.6: the preempted nexuses' tasks are aborted.
          const tasks = lu.tasks.tasks((t) => removed.includes(t.nexus.id));
          for (const t of tasks) t.markAborted();
          await Promise.all(tasks.map((t) => t.finished));
        }
        pr.generation++;
        break;
      }
      default:
        throw invalidCdbField(1, 4);
    }
    await pr.save();
    return undefined;
  },
});

function unregister(pr: Reservations, nexusId: string): void {
  pr.registrations.delete(nexusId);
  const res = pr.reservation;
  if (!res) return;
  if (isAllRegistrants(res.type)) {
    // The reservation lasts while any registrant is left (SPC-5 §5.13.11.2.3).
    if (pr.registrations.size === 0) pr.reservation = undefined;
    return;
  }
  if (res.holder === nexusId) {
    pr.reservation = undefined;
    if (res.type >= 5) for (const id of pr.registrations.keys()) pr.lu.ua.establishFor(id, 'ReservationsReleased');
  }
}

/** SPC-5 §5.13.11.4: PREEMPT; returns the nexuses whose registrations were removed. */
function preempt(pr: Reservations, nexus: ITNexus, saKey: bigint, type: number): string[] {
  const res = pr.reservation;
  const removeKey = (k: bigint): string[] => {
    const ids = [...pr.registrations.values()].filter((g) => g.key === k && g.nexusId !== nexus.id).map((g) => g.nexusId);
    for (const id of ids) {
      pr.registrations.delete(id);
      pr.lu.ua.establishFor(id, 'RegistrationsPreempted');
    }
    return ids;
  };
  if (res && isAllRegistrants(res.type) && saKey === 0n) {
    // Everyone else loses their registration; the preempting nexus takes a new reservation.
    const ids = [...pr.registrations.keys()].filter((id) => id !== nexus.id);
    for (const id of ids) {
      pr.registrations.delete(id);
      pr.lu.ua.establishFor(id, 'RegistrationsPreempted');
    }
    pr.reservation = { holder: nexus.id, type };
    return ids;
  }
  if (saKey === 0n) throw invalidParamField(8);
  const holderKey = res && !isAllRegistrants(res.type) ? pr.registrations.get(res.holder)?.key : undefined;
  const removed = removeKey(saKey);
  if (res && holderKey === saKey) {
    // Preempting the holder moves the reservation (possibly with a new type).
    pr.reservation = { holder: nexus.id, type };
    if (res.type !== type) for (const id of pr.registrations.keys()) if (id !== nexus.id) pr.lu.ua.establishFor(id, 'ReservationsReleased');
  } else if (removed.length === 0) {
    throw conflict();
  }
  return removed;
}
