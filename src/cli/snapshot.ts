import type { Config } from '../config/config';
import { formatSize } from '../config/units';
import { uuidHex } from '../storage/journal/record';
import type { Snapshot } from '../storage/snapshots/catalog';
import { createSnapshot, deleteSnapshot, listSnapshots, restoreSnapshot } from '../storage/snapshots/operations';
import { CliError } from './errors';
import { journalStatus } from './journal';
import { withLun } from './offline';

/**
 * `s3tgt snapshot create|list|delete|restore LUN NAME`, offline: under the LUN's lease, so a
 * LUN a server is serving is refused (exit 5). docs/architecture.md has the design.
 */

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

export async function snapshotCreate(config: Config, lun: string, name: string): Promise<Snapshot> {
  return withLun(config, lun, LEASE_PURPOSE, async (l) => {
    if (!l.info) throw new CliError('CLI_ERR_NO_LUN', `LUN "${lun}" does not exist in the store`);
    await refuseWithJournalRecords(config, lun, l.info.uuid);
    return createSnapshot(l.store, l.layout, l.info, name);
  });
}

export async function snapshotList(config: Config, lun: string): Promise<Awaited<ReturnType<typeof listSnapshots>>> {
  return withLun(config, lun, LEASE_PURPOSE, (l) => listSnapshots(l.store, l.layout));
}

export async function snapshotDelete(config: Config, lun: string, name: string): Promise<{ handedOver: number; deleted: number }> {
  return withLun(config, lun, LEASE_PURPOSE, (l) => deleteSnapshot(l.store, l.layout, name));
}

export async function snapshotRestore(config: Config, lun: string, name: string): Promise<{ restored: number; deleted: number }> {
  return withLun(config, lun, LEASE_PURPOSE, async (l) => {
    if (!l.info) throw new CliError('CLI_ERR_NO_LUN', `LUN "${lun}" does not exist in the store`);
    await refuseWithJournalRecords(config, lun, l.info.uuid);
    return restoreSnapshot(l.store, l.layout, name);
  });
}

export function formatSnapshots(rows: Awaited<ReturnType<typeof listSnapshots>>): string {
  if (rows.length === 0) return 'no snapshots';
  return rows
    .map((s) => `${s.name}\t${s.created}\t${formatSize(s.sizeBytes)}\tpreserved ${s.preservedChunks} chunks (${formatSize(s.preservedBytes)})`)
    .join('\n');
}
