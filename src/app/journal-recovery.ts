import type { ChunkVolume } from '../storage/chunk-volume';
import { StorageError } from '../storage/errors';
import type { Journal } from '../storage/journal/journal';
import { listQuarantine, quarantine } from '../storage/journal/quarantine';
import { uuidHex } from '../storage/journal/record';
import { type ReplayResult, replayInto } from '../storage/journal/replay';
import { replayDecision } from '../storage/journal/replay-policy';
import type { LeaseRecord } from '../storage/lease-record';
import { log } from '../util/log';

/**
 * What a LUN left in the journal, dealt with at open, under its lease and before it serves
 * (docs/journal.md, "Replay"): quarantined records stop it until the operator has looked;
 * records the lease chain vouches for are taken over by a journal LUN (pending uploads, served
 * from the journal) or, for a LUN that no longer journals, replayed through the volume, made
 * durable in S3 and checkpointed; any other records are quarantined and the LUN refuses to start.
 */
export async function recoverLun(
  volume: ChunkVolume,
  journal: Journal,
  lease: { readonly holder: string; readonly previous: LeaseRecord | undefined },
  name: string,
  /** The LUN journals (it will be attached): its records are taken over, not replayed. */
  adopt: boolean,
  /** In a cluster: this node (lease vouches are read as its own, docs/ha.md). */
  node?: string,
): Promise<ReplayResult | undefined> {
  const uuid = volume.info.uuid;
  const held = (await listQuarantine(journal.dir)).filter((q) => q.lun === uuidHex(uuid));
  if (held.length > 0) {
    throw new StorageError(
      'invalid',
      `LUN ${name} has quarantined journal records (${held.map((q) => q.file).join(', ')}: ${held[0].why}); ` +
        `inspect them with "s3tgt journal status", save them with "s3tgt journal export ${name} FILE", ` +
        `then "s3tgt journal discard ${name}" serves the LUN from what S3 holds`,
      { code: 'STORE_ERR_JOURNAL_QUARANTINED' },
    );
  }
  let records = journal.recoveredFor(uuid);
  if (records.length === 0) return undefined;
  const d = replayDecision(records, lease.previous, node);
  if (d.replay && d.drop.length > 0) {
    dropCovered(journal, uuid, name, d.drop);
    records = journal.recoveredFor(uuid);
    if (records.length === 0) return undefined;
  }
  if (!d.replay) {
    const q = await quarantine(journal.dir, uuid, journal.recoveredChunks(uuid), d.why);
    journal.retireRecovered(uuid);
    throw new StorageError(
      'invalid',
      `LUN ${name}: refusing to replay ${records.length} journal records: ${d.why}. They are quarantined in ${q.file}; ` +
        `nothing of them was written. "s3tgt journal status|export|discard" deal with them`,
      { code: 'STORE_ERR_JOURNAL_SUPERSEDED' },
    );
  }
  const started = Date.now();
  log.info('journal: replaying the records this LUN left', { lun: name, records: records.length, holders: d.vouches, adopt });
  if (adopt) {
    // A journal LUN serves them from the journal at once (reads merge them, as for a chunk
    // spilled from RAM) and uploads them first: its start does not wait for S3.
    journal.adoptRecovered(uuid);
    const written = records.filter((x) => x.kind === 'write');
    const r = {
      records: records.length,
      bytesWritten: written.reduce((n, x) => n + x.length, 0),
      bytesDiscarded: records.filter((x) => x.kind === 'discard').reduce((n, x) => n + x.length, 0),
      seconds: (Date.now() - started) / 1000,
    };
    log.info("journal: replay done (the records are the LUN's pending uploads)", { lun: name, ...r });
    return r;
  }
  const r = await replayInto(volume, journal.recoveredChunks(uuid));
  journal.retireRecovered(uuid);
  await journal.checkpoint(uuid, lease.holder);
  const seconds = (Date.now() - started) / 1000;
  log.info('journal: replay done', { lun: name, records: r.records, bytesWritten: r.bytesWritten, bytesDiscarded: r.bytesDiscarded, seconds });
  return { ...r, seconds };
}

/**
 * A cluster standby sees the LUN's lease held by another node (docs/ha.md, "Journal
 * replication"): what this node's journal still holds of the LUN from before (it was killed)
 * can never be replayed by it over that node's writes. Records the holder's takeover applied
 * from its replica (covered) are dropped; any others (the takeover did without them) are
 * quarantined for the operator. Either way they stop holding the journal back: its
 * watermark, and with it every peer's replica of this node, moves on.
 */
export async function settleTakenLun(journal: Journal, uuid: string, name: string, holder: LeaseRecord, node: string): Promise<void> {
  const records = journal.recoveredFor(uuid);
  if (records.length === 0 || holder.node === undefined || holder.node === node) return;
  const d = replayDecision(records, holder, node);
  if (d.replay) {
    if (d.drop.length > 0) dropCovered(journal, uuid, name, d.drop);
    return;
  }
  const q = await quarantine(journal.dir, uuid, journal.recoveredChunks(uuid), d.why);
  journal.retireRecovered(uuid);
  log.error("journal: node took the LUN over without this node's records (its replica was incomplete); they are quarantined", {
    lun: name,
    records: records.length,
    file: q.file,
    node: holder.node,
  });
}

/** Another node's takeover applied these holders' records from its replica: this node's copy is superseded. */
function dropCovered(journal: Journal, uuid: string, name: string, holders: readonly string[]): void {
  const n = journal.dropRecovered(uuid, new Set(holders));
  log.warn('journal: dropped records a takeover by another node applied already', { lun: name, records: n, holders });
}

/** Records of LUNs this server does not serve would pin the journal: they are quarantined. */
export async function quarantineUnserved(journal: Journal, served: ReadonlySet<string>): Promise<void> {
  for (const lun of journal.recoveredLuns) {
    if (served.has(uuidHex(lun))) continue;
    const records = journal.recoveredFor(lun);
    const q = await quarantine(journal.dir, lun, journal.recoveredChunks(lun), 'the LUN is not in the configuration this server started with');
    journal.retireRecovered(lun);
    log.warn('journal: records of a LUN this server does not serve were quarantined', { lun, records: records.length, file: q.file });
  }
}
