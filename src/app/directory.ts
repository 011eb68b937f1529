import type { TargetConfig } from '../config/config';
import { NONE_AUTH } from '../iscsi/login/security';
import type { IscsiTargetEntry, PortalAddress, TargetDirectory } from '../iscsi/target-entry';
import type { ScsiTarget } from '../scsi/target';

/** Builds the iSCSI view of a configured target. */
export function targetEntry(t: TargetConfig, scsi: ScsiTarget): IscsiTargetEntry {
  return {
    iqn: t.iqn,
    ...(t.alias ? { alias: t.alias } : {}),
    portalGroupTag: t.portalGroupTag,
    scsi,
    auth: NONE_AUTH,
    authorize: () => true,
    visibleTo: () => true,
  };
}

/** A directory of targets that can change at run time (SIGHUP reload adds LUNs and ACLs). */
export class MutableDirectory implements TargetDirectory {
  private readonly targets = new Map<string, IscsiTargetEntry>();
  constructor(readonly portals: readonly PortalAddress[]) {}
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
