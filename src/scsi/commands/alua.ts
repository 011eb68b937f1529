import { ACCESS_STATE_CODE, type AccessState } from '../alua';
import { be, checkControlByte, truncate } from '../cdb';
import { type Command, defineCommand } from '../command';
import type { LogicalUnit } from '../logical-unit';

/**
 * SPC-5 r20 §6.37 Table 274: supported states of every group: T_SUP (transitioning), S_SUP
 * (standby) and AO_SUP (active/optimized); no active/non-optimized, unavailable, offline or
 * LBA-dependent state is ever reported.
 */
const SUPPORTED_STATES = 0x80 | 0x04 | 0x01;

/** Seconds an initiator should allow an implicit transition (a takeover waits out the lease). */
export const IMPLICIT_TRANSITION_SECONDS = 30;

interface RtpgRequest {
  readonly extended: boolean;
  readonly allocationLength: number;
  readonly dataOutLength: 0;
  readonly transferLength: number;
}

/**
 * REPORT TARGET PORT GROUPS (MAINTENANCE IN, A3h/0Ah; SPC-5 r20 §6.37): every group of the
 * LUN and its state, from any port (multipath reads it on every path). Without a cluster the
 * target has one group (0) with one port, always active/optimized, as LIO's default group.
 */
export const REPORT_TARGET_PORT_GROUPS: Command<LogicalUnit> = defineCommand({
  name: 'REPORT TARGET PORT GROUPS',
  opcode: 0xa3,
  serviceAction: 0x0a,
  cdbLength: 12,
  usage: [0xa3, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x00],
  reservation: 'allowed',
  inStandby: true,
  skipsUnitAttention: false,
  decode(cdb): RtpgRequest {
    checkControlByte(cdb.subarray(0, 12));
    const allocationLength = be.u32(cdb, 6);
    // PARAMETER DATA FORMAT (byte 1 bits 7-5): 000b length only, 001b extended header.
    return { extended: (cdb[1] & 0xe0) === 0x20, allocationLength, dataOutLength: 0, transferLength: allocationLength };
  },
  execute({ lu }, r) {
    const alua = lu.alua;
    const groups = alua
      ? alua.groups.map((g) => {
          const state = alua.stateOf(g);
          // PREF (SPC-5 r20 §6.36) only while the preferred group is the active one: Linux's alua
          // prioritizer adds 80 to a preferred port that is not active/optimized, so a preferred
          // node back as standby after a takeover would outrank the active path and dm-multipath
          // would fail back to it every few seconds, only to be refused with 02/04/0B.
          return descriptor(g.id, state, g === alua.preferred && state === 'active-optimized', g.id);
        })
      : [descriptor(0, 'active-optimized', false, lu.target.relativePortId)];
    const body = Buffer.concat(groups);
    const head = Buffer.alloc(r.extended ? 8 : 4);
    head.writeUInt32BE(body.length + head.length - 4, 0);
    if (r.extended) {
      head[4] = 0x10; // FORMAT TYPE 001b
      head[5] = IMPLICIT_TRANSITION_SECONDS;
    }
    return truncate(Buffer.concat([head, body]), r.allocationLength);
  },
});

/** One target port group descriptor with its one target port (SPC-5 r20 Table 274/275). */
function descriptor(group: number, state: AccessState, preferred: boolean, relativePortId: number): Buffer {
  const d = Buffer.alloc(12);
  d[0] = (preferred ? 0x80 : 0) | ACCESS_STATE_CODE[state];
  d[1] = SUPPORTED_STATES;
  d.writeUInt16BE(group, 2);
  d[5] = 0x02; // STATUS CODE: changed by an implicit transition (or none yet: 02h is what LIO sends)
  d[7] = 1; // TARGET PORT COUNT
  d.writeUInt16BE(relativePortId, 10);
  return d;
}
