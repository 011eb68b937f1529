import { isDeepStrictEqual } from 'node:util';
import type { Config, LunConfig, TargetConfig } from '../config/config';

/** What a new configuration changes in a running service (SIGHUP). */
export interface ReloadPlan {
  /** LUNs to open and export. */
  readonly newLuns: ReadonlyArray<{ readonly target: string; readonly lun: LunConfig }>;
  /** Served LUNs whose configured size grew. */
  readonly grown: ReadonlyArray<{ readonly name: string; readonly sizeBytes: number }>;
  /** Targets to (re)publish: new ones, and ones whose CHAP, ACL, alias, TPGT or LUN list changed. */
  readonly changedTargets: readonly TargetConfig[];
  /** Changes a reload does not apply (they need a restart), in words. */
  readonly needsRestart: readonly string[];
}

const same = (a: unknown, b: unknown): boolean => isDeepStrictEqual(a, b);

/**
 * Compares the running configuration with a new one. Only additions and changes that cannot
 * disturb a logged-in session are applied; removals and changes of what a session already
 * uses (portals, negotiation limits, a LUN's store, block size or number) wait for a restart.
 */
export function planReload(old: Config, next: Config, servedSize: (name: string) => number | undefined): ReloadPlan {
  const needsRestart: string[] = [];
  const newLuns: Array<{ target: string; lun: LunConfig }> = [];
  const grown: Array<{ name: string; sizeBytes: number }> = [];
  const changedTargets: TargetConfig[] = [];

  for (const key of ['portals', 'iscsi', 'metrics', 'lease', 'dataDir', 'journal'] as const) {
    if (!same(old[key], next[key])) needsRestart.push(`${key} changed`);
  }
  // A first S3 section can be added (the backend opens on demand); changing one cannot.
  if (old.s3 && !same(old.s3, next.s3)) needsRestart.push('s3 changed');

  const oldTargets = new Map(old.targets.map((t) => [t.iqn, t]));
  const oldLuns = new Map(old.targets.flatMap((t) => t.luns.map((l) => [l.name, { target: t.iqn, lun: l }] as const)));
  for (const t of next.targets) {
    const before = oldTargets.get(t.iqn);
    let changed = !before || !same({ ...before, luns: [] }, { ...t, luns: [] });
    for (const l of t.luns) {
      const was = oldLuns.get(l.name);
      if (!was) {
        if (before?.luns.some((x) => x.lun === l.lun)) {
          needsRestart.push(`${t.iqn} LUN ${l.lun} now names "${l.name}"`);
          continue;
        }
        newLuns.push({ target: t.iqn, lun: l });
        changed = true;
        continue;
      }
      if (was.target !== t.iqn || was.lun.lun !== l.lun) {
        needsRestart.push(`LUN "${l.name}" moved to ${t.iqn} LUN ${l.lun}`);
        continue;
      }
      // A snapshot LUN has its snapshot's size.
      const size = l.snapshotOf ? l.sizeBytes : (servedSize(l.name) ?? was.lun.sizeBytes);
      if (l.sizeBytes > size) grown.push({ name: l.name, sizeBytes: l.sizeBytes });
      else if (l.sizeBytes < size) needsRestart.push(`LUN "${l.name}" smaller than it is (LUNs never shrink)`);
      const rest = (x: LunConfig): LunConfig => ({ ...x, sizeBytes: 0 });
      if (!same(rest(was.lun), rest(l))) needsRestart.push(`LUN "${l.name}" settings changed`);
    }
    for (const l of before?.luns ?? []) {
      if (!t.luns.some((x) => x.name === l.name)) needsRestart.push(`LUN "${l.name}" removed from ${t.iqn}`);
    }
    if (changed) changedTargets.push(t);
  }
  for (const t of old.targets) {
    if (!next.targets.some((x) => x.iqn === t.iqn)) needsRestart.push(`target ${t.iqn} removed`);
  }
  return { newLuns, grown, changedTargets, needsRestart };
}

export function describeReload(p: ReloadPlan): string {
  const parts = [
    ...p.newLuns.map((n) => `+LUN ${n.lun.name} (${n.target} LUN ${n.lun.lun})`),
    ...p.grown.map((g) => `LUN ${g.name} grown to ${g.sizeBytes} bytes`),
    ...p.changedTargets.map((t) => `target ${t.iqn} republished`),
    ...p.needsRestart.map((r) => `not applied: ${r}`),
  ];
  return parts.length > 0 ? parts.join('; ') : 'nothing changed';
}
