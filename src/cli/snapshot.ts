import { Backends } from '../app/stores';
import type { Config } from '../config/config';
import { formatSize } from '../config/units';
import { uuidHex } from '../storage/journal/record';
import type { Snapshot } from '../storage/snapshots/catalog';
import { createSnapshot, deleteSnapshot, listSnapshots, restoreSnapshot } from '../storage/snapshots/operations';
import { adminPost } from './admin-client';
import { CliError } from './errors';
import { journalStatus } from './journal';
import { findLun, withLun } from './offline';

/**
 * `s3tgt snapshot create|list|delete|restore LUN NAME`: through the running server's admin
 * endpoint when it serves the LUN (create and delete at a barrier; restore is refused there),
 * otherwise offline under the LUN's lease. docs/architecture.md has the design.
 */

/** A snapshot barrier uploads what was written since the last flush: bounded by the cache. */
const ONLINE_TIMEOUT_MS = 600_000;

async function online(config: Config, lun: string, op: string, name: string, force = false): Promise<Record<string, unknown> | undefined> {
  const query = `op=${op}&snapshot=${encodeURIComponent(name)}${force ? '&force=1' : ''}`;
  const r = await adminPost(config, `/admin/snapshot/${encodeURIComponent(lun)}?${query}`, ONLINE_TIMEOUT_MS);
  if (!r || r.status === 404) return undefined;
  if (r.status !== 200) throw new CliError(r.status === 400 || r.status === 409 ? 'CLI_ERR_USAGE' : 'CLI_ERR_IO', r.body.error ?? `HTTP ${r.status}`);
  return r.body;
}

const LEASE_PURPOSE = 'snapshot';

/**
 * A journal that still holds acknowledged writes of this LUN (not yet in S3) would replay them
 * after the snapshot was taken, and the snapshot would miss writes acknowledged before it.
 */
async function refuseWithJournalRecords(config: Config, name: string, uuid: string): Promise<void> {
  if (!config.journal) return;
  const pending = (await journalStatus(config)).pendingByLun[uuidHex(uuid)] ?? 0;
  if (pending > 0) {
    throw new CliError(
      'CLI_ERR_USAGE',
      `the journal ${config.journal.dir} holds ${pending} records of LUN "${name}" that are not in S3 yet: start the server once (it replays them) before taking a snapshot`,
    );
  }
}

export async function snapshotCreate(config: Config, lun: string, name: string): Promise<Snapshot & { online: boolean }> {
  findLun(config, lun);
  const served = await online(config, lun, 'create', name);
  if (served) return { ...(served as unknown as Snapshot), online: true };
  const s = await withLun(config, lun, LEASE_PURPOSE, async (l) => {
    if (!l.info) throw new CliError('CLI_ERR_NO_LUN', `LUN "${lun}" does not exist in the store`);
    await refuseWithJournalRecords(config, lun, l.info.uuid);
    return createSnapshot(l.store, l.layout, l.info, name);
  });
  return { ...s, online: false };
}

/** Read only: no lease, so it works on a served LUN too. */
export async function snapshotList(config: Config, lun: string): Promise<Awaited<ReturnType<typeof listSnapshots>>> {
  const backends = new Backends(config);
  await backends.open();
  try {
    const { backend, layout } = backends.for(findLun(config, lun));
    return await listSnapshots(backend.store, layout);
  } finally {
    await backends.close();
  }
}

export async function snapshotDelete(config: Config, lun: string, name: string): Promise<{ handedOver: number; deleted: number }> {
  findLun(config, lun);
  const served = await online(config, lun, 'delete', name);
  if (served) return { handedOver: Number(served.handedOver), deleted: Number(served.deleted) };
  return withLun(config, lun, LEASE_PURPOSE, (l) => deleteSnapshot(l.store, l.layout, name));
}

/**
 * A served LUN is restored only when forced, by its server at a barrier; otherwise the server
 * refuses with its reason. A LUN nobody serves is restored offline under its lease.
 */
export async function snapshotRestore(
  config: Config,
  lun: string,
  name: string,
  force = false,
): Promise<{ restored: number; deleted: number; online: boolean }> {
  findLun(config, lun);
  const served = await online(config, lun, 'restore', name, force);
  if (served) return { restored: Number(served.restored), deleted: Number(served.deleted), online: true };
  const r = await withLun(config, lun, LEASE_PURPOSE, async (l) => {
    if (!l.info) throw new CliError('CLI_ERR_NO_LUN', `LUN "${lun}" does not exist in the store`);
    await refuseWithJournalRecords(config, lun, l.info.uuid);
    return restoreSnapshot(l.store, l.layout, l.info, name);
  });
  return { ...r, online: false };
}

export function formatSnapshots(rows: Awaited<ReturnType<typeof listSnapshots>>): string {
  if (rows.length === 0) return 'no snapshots';
  return rows
    .map((s) => `${s.name}\t${s.created}\t${formatSize(s.sizeBytes)}\tpreserved ${s.preservedChunks} chunks (${formatSize(s.preservedBytes)})`)
    .join('\n');
}
