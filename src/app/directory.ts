import type { ChapConfig, TargetConfig } from '../config/config';
import { InitiatorAcl } from '../iscsi/acl';
import { chapPolicy } from '../iscsi/login/chap';
import { type AuthPolicy, NONE_AUTH } from '../iscsi/login/security';
import type { IscsiTargetEntry, PortalAddress, TargetDirectory } from '../iscsi/target-entry';
import type { ScsiTarget } from '../scsi/target';

/** The login policy of a CHAP setting: CHAP required, or AuthMethod None. */
export function authPolicy(chap: ChapConfig | undefined): AuthPolicy {
  return chap
    ? chapPolicy({ initiator: { username: chap.username, secret: chap.secret }, ...(chap.mutual ? { target: chap.mutual } : {}) })
    : NONE_AUTH;
}

/** Builds the iSCSI view of a configured target: its LUNs, CHAP policy and ACL. */
export function targetEntry(t: TargetConfig, scsi: ScsiTarget): IscsiTargetEntry {
  const acl = new InitiatorAcl(t.acl.initiators, t.acl.networks);
  return {
    iqn: t.iqn,
    ...(t.alias ? { alias: t.alias } : {}),
    portalGroupTag: t.portalGroupTag,
    scsi,
    auth: authPolicy(t.chap),
    authorize: (name, address) => acl.allows(name, address),
    // A disallowed initiator does not even learn that the target exists.
    visibleTo: (name, address) => acl.allows(name, address),
  };
}

/** A directory of targets that can change at run time (SIGHUP reload adds LUNs and ACLs). */
export class MutableDirectory implements TargetDirectory {
  private readonly targets = new Map<string, IscsiTargetEntry>();
  constructor(
    readonly portals: readonly PortalAddress[],
    readonly otherPortalGroups: ReadonlyArray<{ readonly portals: readonly PortalAddress[]; readonly tpgt: number }> = [],
  ) {}
  set(entry: IscsiTargetEntry): void {
    this.targets.set(entry.iqn, entry);
  }
  find(iqn: string): IscsiTargetEntry | undefined {
    return this.targets.get(iqn);
  }
  list(): readonly IscsiTargetEntry[] {
    return [...this.targets.values()];
  }
}
