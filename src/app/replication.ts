import type { ClusterConfig } from '../config/cluster';
import type { Journal } from '../storage/journal/journal';
import { uuidHex } from '../storage/journal/record';
import { ReplicaServer } from '../storage/journal/replication/replica-server';
import type { ReplicaStore } from '../storage/journal/replication/replica-store';
import { Replicator } from '../storage/journal/replication/replicator';
import { ReplicationStats } from '../storage/journal/replication/stats';
import type { Mirror } from '../storage/journal/segment-writer';
import type { Lease } from '../storage/lease';
import type { ReplicaSet } from './cluster-lun';

/** What the service tells replication about its LUNs. */
export interface ReplicationHost {
  /** The leases of the LUNs this node serves, by UUID (32 hex digits). */
  served(): Iterable<{ readonly uuid: string; readonly lease: Lease | undefined }>;
  /** Whether this node refuses other nodes' records of the LUN of this UUID (ClusterLun.refusesReplicas). */
  taken(uuid: string): boolean;
}

/**
 * A cluster node's journal replication (docs/ha.md, "Journal replication"): the Replicator
 * that sends this node's commit groups to every peer, and the ReplicaServer that keeps the
 * peers' groups for a takeover. Only a node with a journal in a cluster with a secret has one.
 */
export class ClusterReplication implements ReplicaSet {
  readonly stats = new ReplicationStats();
  readonly replicator: Replicator;
  private server: ReplicaServer | undefined;
  private readonly peers: readonly string[];

  private constructor(
    private readonly cluster: ClusterConfig,
    private readonly secret: string,
    private readonly host: ReplicationHost,
  ) {
    const others = cluster.nodes.filter((n) => n !== cluster.self && n.replication);
    this.peers = others.map((n) => n.name);
    this.replicator = new Replicator({
      self: cluster.self.name,
      peers: others.map((n) => ({ name: n.name, host: n.replication?.host ?? '', port: n.replication?.port ?? 0 })),
      secret,
      stats: this.stats,
      leaseOf: (lun) => {
        for (const s of host.served()) if (uuidHex(s.uuid) === lun) return s.lease;
        return undefined;
      },
      leases: () => [...host.served()].flatMap((s) => (s.lease ? [s.lease] : [])),
    });
  }

  static create(cluster: ClusterConfig | undefined, journal: boolean, host: ReplicationHost): ClusterReplication | undefined {
    if (!cluster?.secret || !journal || !cluster.self.replication) return undefined;
    return new ClusterReplication(cluster, cluster.secret, host);
  }

  get mirror(): Mirror {
    return this.replicator.mirror;
  }

  /** Listens for the peers' records, then connects to theirs. */
  async start(journal: Journal): Promise<void> {
    const at = this.cluster.self.replication;
    if (!at) throw new Error('no replication portal');
    this.server = await ReplicaServer.start({
      host: at.host,
      port: at.port,
      self: this.cluster.self.name,
      peers: this.peers,
      secret: this.secret,
      journalDir: journal.dir,
      accepts: (lun) => !this.host.taken(lun),
      stats: this.stats,
    });
    this.replicator.start(journal);
  }

  store(node: string): ReplicaStore | undefined {
    return this.server?.store(node);
  }

  stores(): Iterable<ReplicaStore> {
    return this.peers.flatMap((p) => {
      const s = this.store(p);
      return s ? [s] : [];
    });
  }

  /** Per peer: is its link from here up, is its link to here up. */
  links(): ReadonlyArray<{ readonly peer: string; readonly sending: boolean; readonly receiving: boolean; readonly complete: boolean }> {
    const out = this.replicator.connected;
    return this.peers.map((p) => ({
      peer: p,
      sending: out.find((l) => l.peer === p)?.up ?? false,
      receiving: this.server?.connected(p) ?? false,
      complete: this.store(p)?.complete ?? false,
    }));
  }

  async close(): Promise<void> {
    this.replicator.close();
    await this.server?.close();
  }
}
