/**
 * How the initiators our users run log in, from what they are documented to send. Sources are in
 * docs/initiator-personalities.md; each profile names the ones its values come from.
 */
export interface Profile {
  readonly name: string;
  /** RFC 7143 §11.12.5 ISID. */
  readonly isid: Buffer;
  readonly initiatorName: string;
  /** The operational-stage proposal, in the order the initiator sends it. */
  readonly operational: ReadonlyArray<readonly [string, string]>;
}

/**
 * Microsoft iSCSI Initiator (msiscsi): ISID type 01b (IANA enterprise number 311 = 0x137, a
 * per-session qualifier: Get-IscsiSession shows 4000013700xx) and the proposal the issue lists
 * (ErrorRecoveryLevel 2, FirstBurstLength 65536, MaxBurstLength 262144, MaxRecvDataSegmentLength
 * 65536, InitialR2T=No, ImmediateData=Yes): the per-miniport session defaults of
 * MSiSCSI_HBASessionConfig, whose values Microsoft does not publish.
 */
export function windows(host = 'node1', qualifier = 0): Profile {
  const isid = Buffer.from('400001370000', 'hex');
  isid.writeUInt16BE(qualifier, 4);
  return {
    name: 'Windows',
    isid,
    initiatorName: `iqn.1991-05.com.microsoft:${host}`,
    operational: [
      ['HeaderDigest', 'None'],
      ['DataDigest', 'None'],
      ['ErrorRecoveryLevel', '2'],
      ['InitialR2T', 'No'],
      ['ImmediateData', 'Yes'],
      ['MaxBurstLength', '262144'],
      ['FirstBurstLength', '65536'],
      ['MaxOutstandingR2T', '1'],
      ['MaxConnections', '1'],
      ['DataPDUInOrder', 'Yes'],
      ['DataSequenceInOrder', 'Yes'],
      ['DefaultTime2Wait', '0'],
      ['DefaultTime2Retain', '0'],
      ['MaxRecvDataSegmentLength', '65536'],
    ],
  };
}

/**
 * VMware ESXi software iSCSI adapter (iscsi_vmk): ISID 0x00023d00000n (type 00b with open-iscsi's
 * OUI prefix 00:02:3d, which ESXi's initiator inherited: spdk/spdk#405, VMware KB 1027963), and
 * the adapter parameters `esxcli iscsi adapter param get` lists as defaults:
 * MaxRecvDataSegLen 131072, FirstBurstLength 262144, MaxBurstLength 262144, MaxOutstandingR2T 1,
 * digests prohibited, ImmediateData Yes (settable), InitialR2T No, ErrorRecoveryLevel 0.
 */
export function esxi(host = 'esx1', o: { immediateData?: boolean; qualifier?: number } = {}): Profile {
  const isid = Buffer.from('00023d000001', 'hex');
  isid.writeUInt16BE(o.qualifier ?? 1, 4);
  return {
    name: 'ESXi',
    isid,
    initiatorName: `iqn.1998-01.com.vmware:${host}-5e8f1a2b`,
    operational: [
      ['HeaderDigest', 'None'],
      ['DataDigest', 'None'],
      ['MaxConnections', '1'],
      ['InitialR2T', 'No'],
      ['ImmediateData', o.immediateData === false ? 'No' : 'Yes'],
      ['MaxRecvDataSegmentLength', '131072'],
      ['MaxBurstLength', '262144'],
      ['FirstBurstLength', '262144'],
      ['DefaultTime2Wait', '2'],
      ['DefaultTime2Retain', '0'],
      ['MaxOutstandingR2T', '1'],
      ['DataPDUInOrder', 'Yes'],
      ['DataSequenceInOrder', 'Yes'],
      ['ErrorRecoveryLevel', '0'],
    ],
  };
}
