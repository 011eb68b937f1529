import type { ITNexus } from '../scsi/nexus';

/**
 * RFC 7143 §10.1 / SPC-5 §7.6.4.6: an iSCSI I_T nexus is named by the initiator port
 * ("<initiator>,i,0x<ISID>") and the target port ("<target>,t,0x<TPGT>").
 */
export function buildNexus(initiatorName: string, isid: Buffer, targetIqn: string, tpgt: number): ITNexus {
  const initiatorPort = `${initiatorName},i,0x${isid.toString('hex')}`;
  const targetPort = `${targetIqn},t,0x${tpgt.toString(16).padStart(4, '0')}`;
  return {
    id: `${initiatorPort}|${targetPort}`,
    initiatorPort,
    initiatorName,
    targetPort,
    // One target port per portal group: its relative port id is the TPGT (VPD 83h agrees).
    relativeTargetPortId: tpgt,
    transportId: iscsiTransportId(initiatorName, isid),
  };
}

/** SPC-5 §7.6.4.6 Table 508: TransportID, FORMAT CODE 01b (initiator port name with ISID). */
export function iscsiTransportId(initiatorName: string, isid: Buffer): Buffer {
  const name = Buffer.from(`${initiatorName},i,0x${isid.toString('hex')}`, 'utf8');
  const len = (name.length + 1 + 3) & ~3;
  const t = Buffer.alloc(4 + len);
  t[0] = 0x40 | 0x05; // FORMAT CODE 01b, PROTOCOL IDENTIFIER 5h (iSCSI)
  t.writeUInt16BE(len, 2);
  name.copy(t, 4);
  return t;
}
