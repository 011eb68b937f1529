import type { ScsiTarget } from '../scsi/target';
import type { LoginTarget } from './login/login-machine';

/** An address advertised in SendTargets (RFC 7143 §13.8, TargetAddress). */
export interface PortalAddress {
  readonly host: string;
  readonly port: number;
}

/** One iSCSI target: its name, portal group, access rules and the SCSI device behind it. */
export interface IscsiTargetEntry extends LoginTarget {
  readonly scsi: ScsiTarget;
  /** Whether SendTargets shows this target to an initiator (the same ACL as login). */
  visibleTo(initiatorName: string, address: string): boolean;
}

/** What the portal knows: its targets, addresses and discovery policy. */
export interface TargetDirectory {
  find(iqn: string): IscsiTargetEntry | undefined;
  list(): readonly IscsiTargetEntry[];
  readonly portals: readonly PortalAddress[];
  /**
   * Portal groups of the other nodes of a cluster, which present the same targets
   * (docs/ha.md): SendTargets lists them too, so one discovery address finds every path.
   */
  readonly otherPortalGroups?: ReadonlyArray<{ readonly portals: readonly PortalAddress[]; readonly tpgt: number }>;
}

/** RFC 7143 §13.8: TargetAddress=host:port,tpgt; IPv6 hosts go in brackets. */
export function formatTargetAddress(p: PortalAddress, tpgt: number): string {
  const host = p.host.includes(':') ? `[${p.host}]` : p.host;
  return `${host}:${p.port},${tpgt}`;
}
