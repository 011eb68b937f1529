import { collectDefaultMetrics, Registry } from 'prom-client';
import type { IscsiStats } from '../iscsi/stats';
import type { CommandStats } from '../scsi/command-stats';
import type { IoPoolStats } from '../storage/io-pool';
import type { JournalStats } from '../storage/journal/journal-stats';
import type { ReplicationStats } from '../storage/journal/replication/stats';
import { type LunCosts, S3_REQUESTS } from '../storage/lun-costs';
import type { StoreStats } from '../storage/store-stats';
import type { VolumeStats } from '../storage/volume-stats';
import type { LatencyHistogram } from '../util/histogram';
import { pulledCounter, pulledGauge, pulledHistogram } from './exported';

/** What the metrics read at scrape time; serve.ts provides it. */
export interface MetricsSources {
  readonly iscsi: { readonly stats: IscsiStats; sessions(): number; connections(): number };
  luns(): Iterable<LunSource>;
  backends(): Iterable<BackendSource>;
  /** The server's journal, if it has one. */
  journal?(): JournalSource | undefined;
  /** In a cluster: every LUN with its role on this node (docs/ha.md). */
  cluster?(): Iterable<ClusterLunSource>;
  /** In a cluster with journal LUNs: journal replication to and from every peer. */
  replication?(): ReplicationSource | undefined;
}

export interface ReplicationSource {
  readonly stats: ReplicationStats;
  /** Per peer: link to it up, link from it up, its replica here complete. */
  readonly peers: ReadonlyArray<{ readonly peer: string; readonly sending: boolean; readonly receiving: boolean; readonly complete: boolean }>;
  /** LUNs whose lease says local-only (acknowledged writes no peer holds). */
  readonly localOnlyLuns: number;
}

export interface ClusterLunSource {
  readonly name: string;
  /** ALUA state of this node's port group for the LUN. */
  readonly state: 'active-optimized' | 'standby' | 'transitioning';
  readonly takeovers: number;
  readonly handoversIn: number;
  readonly handoversOut: number;
  readonly fenced: number;
  readonly lastActivationSeconds: number;
  readonly lastDeactivationSeconds: number;
}

export interface JournalSource {
  readonly usedBytes: number;
  readonly capacityBytes: number;
  readonly backlogBytes: number;
  readonly oldestRecordMs: number;
  readonly stats: JournalStats;
}

export interface LunSource {
  readonly target: string;
  readonly lun: number;
  /** The LUN's name in the configuration (its prefix in the store). */
  readonly name: string;
  readonly commands: CommandStats;
  readonly volume: VolumeStats;
  readonly dirtyBytes: number;
  readonly cachedBytes: number;
  /** How long replaying the journal took when the LUN opened (0: nothing to replay). */
  readonly replaySeconds: number;
  /** Chunks this process copied into the LUN's newest snapshot before overwriting them. */
  readonly snapshotPreservedChunks: number;
  /** Bytes of those copies (hole markers hold none). */
  readonly snapshotPreservedBytes: number;
  /** Snapshots the LUN has. */
  readonly snapshots: number;
  /** Its object store requests by billed class, and their bytes. */
  readonly costs: LunCosts;
  /** Chunks allocated in the store times the chunk size (ChunkMap's states). */
  readonly allocatedBytes: number;
  /** A month at this size and request rate, from the price table (S3 LUNs only). */
  readonly monthlyCost: { readonly storage: number; readonly requests: number } | undefined;
}

export interface BackendSource {
  readonly kind: string;
  readonly stats: StoreStats;
  readonly pool: IoPoolStats;
}

type Row<V> = [Record<string, string | number>, V];

/**
 * The Prometheus registry of a running target (docs/metrics in README; dashboard in
 * config/grafana-dashboard.json). Names follow Prometheus conventions: s3tgt_ prefix, _total
 * counters, _seconds and _bytes units.
 */
export function buildRegistry(src: MetricsSources): Registry {
  const r = new Registry();
  collectDefaultMetrics({ register: r, prefix: 's3tgt_' });
  const lunRows = function* <V>(pick: (l: LunSource) => Iterable<Row<V>>): Iterable<Row<V>> {
    for (const l of src.luns()) {
      for (const [labels, v] of pick(l)) yield [{ target: l.target, lun: l.lun, name: l.name, ...labels }, v];
    }
  };
  const lun =
    (v: (l: LunSource) => number): (() => Iterable<Row<number>>) =>
    () =>
      lunRows((l) => [[{}, v(l)]]);
  const LUN = ['target', 'lun', 'name'];

  // iSCSI transport
  const is = src.iscsi.stats;
  pulledGauge(r, 's3tgt_iscsi_sessions', 'iSCSI sessions logged in', [], () => [[{}, src.iscsi.sessions()]]);
  pulledGauge(r, 's3tgt_iscsi_connections', 'TCP connections to the portals', [], () => [[{}, src.iscsi.connections()]]);
  pulledCounter(r, 's3tgt_iscsi_logins_total', 'Successful logins', [], () => [[{}, is.loginsSucceeded]]);
  pulledCounter(r, 's3tgt_login_failures_total', 'Failed logins by reason (authentication, authorization, ...)', ['reason'], () =>
    [...is.loginFailures].map(([reason, n]) => [{ reason }, n]),
  );
  pulledCounter(r, 's3tgt_iscsi_rejects_total', 'Reject PDUs sent', [], () => [[{}, is.rejectsSent]]);
  pulledCounter(r, 's3tgt_iscsi_digest_errors_total', 'PDUs received with a bad CRC32C digest', [], () => [[{}, is.digestErrors]]);
  pulledCounter(r, 's3tgt_iscsi_ping_timeouts_total', 'Connections closed because NOP-In pings went unanswered', [], () => [[{}, is.pingTimeouts]]);

  // SCSI, per LUN
  pulledCounter(r, 's3tgt_scsi_commands_total', 'SCSI commands completed, by command and status', [...LUN, 'command', 'status'], () =>
    lunRows((l) =>
      [...l.commands.outcomes].map(([k, n]): Row<number> => {
        const cut = k.lastIndexOf(' ');
        return [{ command: k.slice(0, cut), status: k.slice(cut + 1) }, n];
      }),
    ),
  );
  pulledHistogram(r, 's3tgt_scsi_command_seconds', 'SCSI command latency from arrival to status', [...LUN, 'command'], () =>
    lunRows((l) => [...l.commands.latency.map].map(([command, h]): Row<LatencyHistogram> => [{ command }, h])),
  );
  pulledCounter(
    r,
    's3tgt_scsi_aborted_total',
    'SCSI commands ended by task management',
    LUN,
    lun((l) => l.commands.aborted),
  );
  pulledCounter(
    r,
    's3tgt_lun_read_bytes_total',
    'Bytes read by initiators',
    LUN,
    lun((l) => l.volume.bytesRead),
  );
  pulledCounter(
    r,
    's3tgt_lun_written_bytes_total',
    'Bytes written by initiators',
    LUN,
    lun((l) => l.volume.bytesWritten),
  );
  pulledCounter(
    r,
    's3tgt_lun_discarded_bytes_total',
    'Bytes unmapped or zeroed by UNMAP / WRITE SAME',
    LUN,
    lun((l) => l.volume.bytesDiscarded),
  );

  // Chunk cache and flusher, per LUN
  pulledCounter(
    r,
    's3tgt_cache_hits_total',
    'Chunk reads served from the cache',
    LUN,
    lun((l) => l.volume.cacheHits),
  );
  pulledCounter(
    r,
    's3tgt_cache_misses_total',
    'Chunk reads that went to the store',
    LUN,
    lun((l) => l.volume.cacheMisses),
  );
  pulledCounter(
    r,
    's3tgt_hole_reads_total',
    'Chunk reads answered with zeros (chunk absent)',
    LUN,
    lun((l) => l.volume.holeReads),
  );
  pulledGauge(
    r,
    's3tgt_cache_dirty_bytes',
    'Bytes written but not yet in the store',
    LUN,
    lun((l) => l.dirtyBytes),
  );
  pulledGauge(
    r,
    's3tgt_cache_bytes',
    'Bytes held by the chunk cache',
    LUN,
    lun((l) => l.cachedBytes),
  );
  pulledCounter(
    r,
    's3tgt_chunks_uploaded_total',
    'Chunks written to the store',
    LUN,
    lun((l) => l.volume.chunksUploaded),
  );
  pulledCounter(
    r,
    's3tgt_chunks_deleted_total',
    'Chunks deleted (all-zero or unmapped)',
    LUN,
    lun((l) => l.volume.chunksDeleted),
  );
  pulledCounter(
    r,
    's3tgt_chunk_conditional_heads_total',
    'HEADs conditional chunk writes (a cluster) needed to learn or check the ETag a PUT is conditioned on',
    LUN,
    lun((l) => l.volume.conditionalHeads),
  );
  pulledCounter(
    r,
    's3tgt_chunk_write_conflicts_total',
    'Conditional chunk PUTs that found the chunk written by another server (each fences the LUN)',
    LUN,
    lun((l) => l.volume.writeConflicts),
  );
  pulledCounter(
    r,
    's3tgt_chunk_late_foreign_writes_total',
    'Chunks a deposed server wrote after this one took the LUN over (found by a conditional PUT, written over)',
    LUN,
    lun((l) => l.volume.lateForeignWrites),
  );
  pulledCounter(
    r,
    's3tgt_copy_offloaded_bytes_total',
    'Bytes EXTENDED COPY and ODX copied into the LUN server-side (S3 CopyObject), without passing through s3tgt',
    LUN,
    lun((l) => l.volume.bytesCopiedServerSide),
  );
  pulledCounter(
    r,
    's3tgt_flush_errors_total',
    'Chunk uploads that failed after retries',
    LUN,
    lun((l) => l.volume.flushErrors),
  );
  pulledCounter(
    r,
    's3tgt_checksum_errors_total',
    'Chunks that failed their CRC32C check on read',
    LUN,
    lun((l) => l.volume.checksumErrors),
  );
  pulledCounter(
    r,
    's3tgt_backpressure_waits_total',
    'Writes that waited for the flusher (cache full of dirty data)',
    LUN,
    lun((l) => l.volume.backPressureWaits),
  );
  pulledHistogram(r, 's3tgt_flush_seconds', 'Time to upload one dirty chunk', LUN, () => lunRows((l) => [[{}, l.volume.flushLatency]]));

  // The local journal (docs/journal.md)
  const j =
    (v: (x: JournalSource) => number): (() => Iterable<Row<number>>) =>
    () => {
      const x = src.journal?.();
      return x ? [[{}, v(x)]] : [];
    };
  pulledGauge(
    r,
    's3tgt_journal_used_bytes',
    'Bytes of journal segment files',
    [],
    j((x) => x.usedBytes),
  );
  pulledGauge(
    r,
    's3tgt_journal_capacity_bytes',
    'Configured journal size',
    [],
    j((x) => x.capacityBytes),
  );
  pulledGauge(
    r,
    's3tgt_journal_backlog_bytes',
    'Journal records not yet uploaded to S3 (bytes)',
    [],
    j((x) => x.backlogBytes),
  );
  pulledGauge(
    r,
    's3tgt_journal_oldest_record_age_seconds',
    'Age of the oldest journal record not yet in S3',
    [],
    j((x) => x.oldestRecordMs / 1000),
  );
  pulledCounter(
    r,
    's3tgt_journal_commits_total',
    'Journal group commits (one write and one fdatasync each)',
    [],
    j((x) => x.stats.commits),
  );
  pulledCounter(
    r,
    's3tgt_journal_records_total',
    'Journal records committed (records / commits = group size)',
    [],
    j((x) => x.stats.records),
  );
  pulledCounter(
    r,
    's3tgt_journal_committed_bytes_total',
    'Bytes committed to the journal',
    [],
    j((x) => x.stats.bytes),
  );
  pulledHistogram(r, 's3tgt_journal_fsync_seconds', 'Journal fdatasync latency per commit group', [], () => {
    const x = src.journal?.();
    return x ? [[{}, x.stats.fsyncLatency]] : [];
  });
  pulledGauge(
    r,
    's3tgt_journal_replay_seconds',
    'Time replaying the journal when the LUN opened',
    LUN,
    lun((l) => l.replaySeconds),
  );
  pulledGauge(
    r,
    's3tgt_snapshots',
    'Snapshots the LUN has',
    LUN,
    lun((l) => l.snapshots),
  );
  pulledCounter(
    r,
    's3tgt_snapshot_preserved_chunks_total',
    'Chunks copied into the newest snapshot (server-side) before their first overwrite',
    LUN,
    lun((l) => l.snapshotPreservedChunks),
  );
  pulledCounter(
    r,
    's3tgt_snapshot_preserved_bytes_total',
    'Bytes copied into the newest snapshot (server-side) before their first overwrite',
    LUN,
    lun((l) => l.snapshotPreservedBytes),
  );
  pulledCounter(
    r,
    's3tgt_journal_spills_total',
    'Dirty chunks evicted from RAM to the journal',
    LUN,
    lun((l) => l.volume.journalSpills),
  );
  pulledCounter(
    r,
    's3tgt_journal_restores_total',
    'Spilled chunks read back from the journal',
    LUN,
    lun((l) => l.volume.journalRestores),
  );

  // What each LUN costs in its object store (docs/data-at-rest.md)
  pulledCounter(
    r,
    's3tgt_lun_store_requests_total',
    'Object store requests of the LUN by billed class (PUT, GET, HEAD, LIST, COPY, DELETE)',
    [...LUN, 'request'],
    () => lunRows((l) => S3_REQUESTS.map((request): Row<number> => [{ request }, l.costs.requests[request]])),
  );
  pulledCounter(
    r,
    's3tgt_lun_store_received_bytes_total',
    'Bytes the LUN received from the object store (as stored: compressed, sealed)',
    LUN,
    lun((l) => l.costs.bytesIn),
  );
  pulledCounter(
    r,
    's3tgt_lun_store_sent_bytes_total',
    'Bytes the LUN sent to the object store (as stored: compressed, sealed)',
    LUN,
    lun((l) => l.costs.bytesOut),
  );
  pulledGauge(
    r,
    's3tgt_lun_allocated_bytes',
    'Chunks the LUN has in the store, times 1 MiB',
    LUN,
    lun((l) => l.allocatedBytes),
  );
  pulledGauge(
    r,
    's3tgt_lun_estimated_monthly_cost_dollars',
    'A month of the LUN at its size and request rate, from s3.prices',
    [...LUN, 'component'],
    () =>
      lunRows((l) =>
        l.monthlyCost
          ? [[{ component: 'storage' }, l.monthlyCost.storage] as Row<number>, [{ component: 'requests' }, l.monthlyCost.requests] as Row<number>]
          : [],
      ),
  );

  // Backends: object store requests and the bounded pool
  const backendRows = function* <V>(pick: (b: BackendSource) => Iterable<Row<V>>): Iterable<Row<V>> {
    for (const b of src.backends()) for (const [labels, v] of pick(b)) yield [{ backend: b.kind, ...labels }, v];
  };
  pulledCounter(r, 's3tgt_store_requests_total', 'Object store requests by operation and outcome', ['backend', 'op', 'outcome'], () =>
    backendRows((b) =>
      [...b.stats.requests].map(([k, n]): Row<number> => {
        const [op, outcome] = k.split(' ');
        return [{ op, outcome }, n];
      }),
    ),
  );
  pulledHistogram(r, 's3tgt_store_request_seconds', 'Object store request latency by operation', ['backend', 'op'], () =>
    backendRows((b) => [...b.stats.latency.map].map(([op, h]): Row<LatencyHistogram> => [{ op }, h])),
  );
  pulledCounter(r, 's3tgt_store_retries_total', 'Object store requests retried after a transient failure', ['backend', 'op'], () =>
    backendRows((b) => [...b.stats.retries].map(([op, n]): Row<number> => [{ op }, n])),
  );
  pulledCounter(r, 's3tgt_store_received_bytes_total', 'Bytes received from the object store', ['backend'], () =>
    backendRows((b) => [[{}, b.stats.bytesIn]]),
  );
  pulledCounter(r, 's3tgt_store_sent_bytes_total', 'Bytes sent to the object store', ['backend'], () => backendRows((b) => [[{}, b.stats.bytesOut]]));
  pulledGauge(r, 's3tgt_pool_in_flight', 'Object store requests in flight, by lane', ['backend', 'lane'], () =>
    backendRows((b) => Object.entries(b.pool.inFlight).map(([lane, n]): Row<number> => [{ lane }, n])),
  );
  pulledGauge(r, 's3tgt_pool_queued', 'Object store requests waiting for a pool slot, by lane', ['backend', 'lane'], () =>
    backendRows((b) => Object.entries(b.pool.queued).map(([lane, n]): Row<number> => [{ lane }, n])),
  );
  // HA cluster (docs/ha.md)
  const cl = (v: (c: ClusterLunSource) => number) => () => [...(src.cluster?.() ?? [])].map((c): Row<number> => [{ name: c.name }, v(c)]);
  pulledGauge(r, 's3tgt_alua_state', "This node's ALUA state for the LUN: 1 on the state it is in", ['name', 'state'], () =>
    [...(src.cluster?.() ?? [])].flatMap((c): Row<number>[] =>
      (['active-optimized', 'standby', 'transitioning'] as const).map((st) => [{ name: c.name, state: st }, c.state === st ? 1 : 0]),
    ),
  );
  pulledCounter(
    r,
    's3tgt_cluster_takeovers_total',
    'LUN leases this node took because they were absent or expired (a node died)',
    ['name'],
    cl((c) => c.takeovers),
  );
  pulledCounter(r, 's3tgt_cluster_handovers_total', 'Graceful hand-overs (lun move, shutdown) by direction', ['name', 'direction'], () =>
    [...(src.cluster?.() ?? [])].flatMap((c): Row<number>[] => [
      [{ name: c.name, direction: 'in' }, c.handoversIn],
      [{ name: c.name, direction: 'out' }, c.handoversOut],
    ]),
  );
  pulledCounter(
    r,
    's3tgt_cluster_fenced_total',
    'Times another node took the LUN from this one while it was active',
    ['name'],
    cl((c) => c.fenced),
  );
  pulledGauge(
    r,
    's3tgt_cluster_activation_seconds',
    'How long the last transition to active took on this node (lease to serving, journal replay included)',
    ['name'],
    cl((c) => c.lastActivationSeconds),
  );
  pulledGauge(
    r,
    's3tgt_cluster_handover_seconds',
    'How long the last step-down took on this node (barrier, flush, lease released)',
    ['name'],
    cl((c) => c.lastDeactivationSeconds),
  );
  // Journal replication (docs/ha.md, "Journal replication")
  const repl =
    <V>(pick: (x: ReplicationSource) => Row<V>[]) =>
    (): Row<V>[] => {
      const x = src.replication?.();
      return x ? pick(x) : [];
    };
  pulledGauge(
    r,
    's3tgt_journal_replication_connected',
    'Replication links, 1 while up, by peer and direction',
    ['peer', 'direction'],
    repl((x) =>
      x.peers.flatMap((p): Row<number>[] => [
        [{ peer: p.peer, direction: 'to' }, p.sending ? 1 : 0],
        [{ peer: p.peer, direction: 'from' }, p.receiving ? 1 : 0],
      ]),
    ),
  );
  pulledGauge(
    r,
    's3tgt_journal_replica_complete',
    "1 while this node holds every record of the peer's journal not yet in S3",
    ['peer'],
    repl((x) => x.peers.map((p): Row<number> => [{ peer: p.peer }, p.complete ? 1 : 0])),
  );
  pulledGauge(
    r,
    's3tgt_journal_replication_local_only_luns',
    'LUNs journaling local-only (their lease says so; a takeover would lose those writes): alert on > 0',
    [],
    repl((x) => [[{}, x.localOnlyLuns]]),
  );
  pulledGauge(
    r,
    's3tgt_journal_replication_lag_seconds',
    'Send to acknowledgement of the last commit group replicated',
    [],
    repl((x) => [[{}, x.stats.lastAckSeconds]]),
  );
  pulledCounter(
    r,
    's3tgt_journal_replication_groups_total',
    'Commit groups by outcome: acked by every peer, local-only, refused by a peer that took the LUN',
    ['outcome'],
    repl((x) => [
      [{ outcome: 'acked' }, x.stats.sentBatches],
      [{ outcome: 'local-only' }, x.stats.localOnlyBatches],
      [{ outcome: 'refused' }, x.stats.refusedByPeer],
    ]),
  );
  pulledCounter(
    r,
    's3tgt_journal_replication_sent_bytes_total',
    'Journal bytes the peers acknowledged',
    [],
    repl((x) => [[{}, x.stats.sentBytes]]),
  );
  pulledCounter(
    r,
    's3tgt_journal_replication_received_bytes_total',
    "Bytes of the peers' journals kept here",
    [],
    repl((x) => [[{}, x.stats.receivedBytes]]),
  );
  pulledCounter(
    r,
    's3tgt_journal_replication_auth_failures_total',
    'Replication connections that failed authentication',
    [],
    repl((x) => [[{}, x.stats.authFailures]]),
  );
  pulledCounter(
    r,
    's3tgt_journal_replication_replayed_records_total',
    "Records applied from a peer's replica at takeovers",
    [],
    repl((x) => [[{}, x.stats.replayedRecords]]),
  );
  pulledCounter(
    r,
    's3tgt_cluster_unprotected_takeovers_total',
    "Takeovers without the predecessor's journal (its replica incomplete or local-only)",
    [],
    repl((x) => [[{}, x.stats.unprotectedTakeovers]]),
  );
  return r;
}
