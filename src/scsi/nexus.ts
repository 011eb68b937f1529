/**
 * An I_T nexus (SAM-5 §4.7): one initiator port talking to one target port. The transport
 * builds it; the command set keys unit attentions, reservations and task sets by `id`.
 */
export interface ITNexus {
  /** Stable key: initiator port name + target port name. */
  readonly id: string;
  /** SPC-5 §7.6.4.6 iSCSI initiator port name ("iqn...,i,0x<ISID>"). */
  readonly initiatorPort: string;
  /** The initiator device name (iSCSI name), shared by all its ports. */
  readonly initiatorName: string;
  /** SPC-5 §7.6.4.6 target port name ("iqn...,t,0x<TPGT>"). */
  readonly targetPort: string;
  /** RELATIVE TARGET PORT IDENTIFIER reported in VPD 83h and PR full status. */
  readonly relativeTargetPortId: number;
  /** The initiator's TransportID (SPC-5 §7.6.4.6, format 01b), used by PR READ FULL STATUS. */
  readonly transportId: Buffer;
}
