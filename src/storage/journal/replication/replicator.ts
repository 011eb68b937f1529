import { log } from '../../../util/log';
import { StorageError } from '../../errors';
import type { Lease } from '../../lease';
import { HEADER_SIZE } from '../record';
import type { Mirror } from '../segment-writer';
import { ReplicaLink } from './replica-link';
import type { ReplicationStats } from './stats';

export interface ReplicatorOptions {
  readonly self: string;
  readonly peers: ReadonlyArray<{ readonly name: string; readonly host: string; readonly port: number }>;
  readonly secret: string;
  readonly stats: ReplicationStats;
  /** Bounds a connection attempt and each wait for an ACK (default 5 s). */
  readonly timeoutMs?: number;
  /** The lease of a LUN (32 hex digits) this node serves, if it does. */
  leaseOf(lun: string): Lease | undefined;
  /** Every lease this node holds. */
  leases(): Iterable<Lease>;
}

/** What the journal tells the replicator: where the next stream starts, what is in S3. */
export interface JournalPosition {
  readonly nextSequence: number;
  readonly uploadedBelow: number;
}

/**
 * Synchronous replication of the journal to every peer node (docs/ha.md, "Journal
 * replication"): each commit group goes to every peer while it is fsynced locally, and its
 * records are acknowledged when all have it. A peer that is unreachable does not stop writes:
 * the journal goes local-only, but only after the lease of every LUN concerned says so
 * (`replication: local-only`), so a successor knows its replica is incomplete. The mark is
 * cleared once every link is back and every record not yet in S3 is in every peer's stream.
 * Marks and clears are serialized, so a clear never overtakes a local-only write.
 */
export class Replicator {
  private readonly links: ReplicaLink[];
  private journal: JournalPosition | undefined;
  private marks: Promise<void> = Promise.resolve();
  private ticker: NodeJS.Timeout | undefined;

  constructor(private readonly o: ReplicatorOptions) {
    this.links = o.peers.map(
      (p) =>
        new ReplicaLink({
          self: o.self,
          peer: p.name,
          host: p.host,
          port: p.port,
          secret: o.secret,
          timeoutMs: o.timeoutMs ?? 5000,
          retryMs: 1000,
          onUp: () => this.journal?.nextSequence ?? 1,
        }),
    );
  }

  /** Starts the links once the journal is open (their streams start at its next sequence). */
  start(journal: JournalPosition): void {
    this.journal = journal;
    for (const l of this.links) l.open();
    this.ticker = setInterval(() => this.tick(), 1000);
    this.ticker.unref();
  }

  /** Per peer: whether its link is up. */
  get connected(): ReadonlyArray<{ readonly peer: string; readonly up: boolean }> {
    return this.links.map((l) => ({ peer: l.peer, up: l.connected }));
  }

  /** True while a lease this node holds says local-only. */
  get degraded(): boolean {
    for (const l of this.o.leases()) if (l.localOnly) return true;
    return false;
  }

  readonly mirror: Mirror = async (parts, bytes) => {
    const t0 = Date.now();
    let answers: Array<'acked' | 'down'>;
    try {
      answers = await Promise.all(this.links.map((l) => l.send(parts, bytes)));
    } catch (e) {
      this.o.stats.refusedByPeer++;
      throw e;
    }
    if (answers.every((a) => a === 'acked')) {
      this.o.stats.sentBatches++;
      this.o.stats.sentBytes += bytes;
      this.o.stats.lastAckSeconds = (Date.now() - t0) / 1000;
      return;
    }
    await this.serialized(() => this.markLocalOnly(lunsOf(parts)));
    this.o.stats.localOnlyBatches++;
  };

  private serialized(step: () => Promise<void>): Promise<void> {
    const t = this.marks.then(step);
    this.marks = t.catch(() => undefined);
    return t;
  }

  private async markLocalOnly(luns: ReadonlySet<string>): Promise<void> {
    for (const lun of luns) {
      const lease = this.o.leaseOf(lun);
      if (!lease || lease.localOnly) continue;
      log.error('replication: a peer is unreachable; the LUN journals local-only until it is back (a takeover meanwhile would lose those writes)', {
        lease: lease.key,
      });
      try {
        await lease.markLocalOnly(true);
      } catch (e) {
        throw new StorageError('unavailable', `journal replication: no peer has the write and ${(e as Error).message}`, {
          code: 'STORE_ERR_REPLICATION',
          cause: e,
        });
      }
    }
  }

  private tick(): void {
    const j = this.journal;
    if (!j) return;
    const w = j.uploadedBelow;
    for (const l of this.links) l.watermark(w);
    if (!this.degraded) return;
    const complete = (): boolean => this.links.every((l) => l.streamStart !== undefined && j.uploadedBelow >= l.streamStart);
    if (!complete()) return;
    void this.serialized(async () => {
      if (!complete()) return;
      for (const lease of this.o.leases()) {
        if (!lease.localOnly) continue;
        await lease.markLocalOnly(false);
        log.warn('replication: every peer holds the journal again; the LUN is protected', { lease: lease.key });
      }
    }).catch((e: unknown) => log.warn('replication: clearing the local-only mark failed; will retry', { error: (e as Error).message }));
  }

  close(): void {
    if (this.ticker) clearInterval(this.ticker);
    for (const l of this.links) l.close();
  }
}

/** The LUNs (32 hex digits) of a commit group's records, read from their headers. */
function lunsOf(parts: readonly Buffer[]): Set<string> {
  const luns = new Set<string>();
  let k = 0;
  while (k < parts.length) {
    const h = parts[k++];
    if (h.length !== HEADER_SIZE) break;
    luns.add(h.subarray(16, 32).toString('hex'));
    let data = h.readUInt32LE(8) - HEADER_SIZE;
    while (data > 0 && k < parts.length) data -= parts[k++].length;
  }
  return luns;
}
