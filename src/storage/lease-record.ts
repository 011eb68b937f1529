import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import { StoredRecord } from './record';

/** `lease.json`: who holds a LUN's single-writer lease. */
export interface LeaseRecord {
  /** A random id per acquisition: tells our own writes from anyone else's. */
  readonly holder: string;
  readonly purpose: string;
  readonly host: string;
  /** /proc/sys/kernel/random/boot_id of the holder's machine, when it has one. */
  readonly bootId?: string;
  readonly pid: number;
  /** The holder process's start time (/proc/PID/stat field 22), against pid reuse. */
  readonly pidStart?: string;
  readonly acquiredAt: string;
  readonly renewedAt: string;
  readonly ttlMs: number;
  readonly generation: number;
  /**
   * Earlier holders whose journal records this holder accepted (it took the lease over from
   * them, directly or through a chain of such holders): their records may still be replayed.
   */
  readonly vouches?: readonly string[];
  /** The cluster node of the holder (docs/ha.md): its target port group is the active one. */
  readonly node?: string;
  /**
   * Set by a holder that handed the LUN over (`lun move`) in its last write: the node named
   * may take the lease at once; anyone else waits for it to expire as usual.
   */
  readonly handoverTo?: string;
  /**
   * Set while the holder acknowledges journal writes that no peer node holds (its replication
   * link is down: docs/ha.md, "Journal replication"), before the first such write: a successor
   * then knows its replica of the holder's journal is incomplete.
   */
  readonly replication?: 'local-only';
  /**
   * Holders whose journal records a takeover applied from a replica (this holder or one before
   * it): their own node's copies of those records are superseded and are dropped, not replayed.
   */
  readonly covered?: readonly string[];
}

/** Parses and checks a lease object, like volume.json: a clear error naming the key and field. */
export function parseLeaseRecord(body: Buffer, key: string): LeaseRecord {
  const r = StoredRecord.parse(body, key);
  const opt = (name: string): string | undefined => (r.get(name).present ? r.get(name).str() : undefined);
  return {
    holder: r.get('holder').str(),
    purpose: r.get('purpose').str(),
    host: r.get('host').str(),
    bootId: opt('bootId'),
    pid: r.get('pid').int(),
    pidStart: opt('pidStart'),
    acquiredAt: r.get('acquiredAt').str(),
    renewedAt: r.get('renewedAt').str(),
    ttlMs: r.get('ttlMs').int(),
    generation: r.get('generation').int(),
    ...(r.get('node').present ? { node: r.get('node').str() } : {}),
    ...(r.get('handoverTo').present ? { handoverTo: r.get('handoverTo').str() } : {}),
    ...(r.get('replication').present ? { replication: r.get('replication').oneOf(['local-only'] as const) } : {}),
    ...(r.get('covered').present
      ? {
          covered: r
            .get('covered')
            .array()
            .map((v) => v.str()),
        }
      : {}),
    ...(r.get('vouches').present
      ? {
          vouches: r
            .get('vouches')
            .array()
            .map((v) => v.str()),
        }
      : {}),
  };
}

export function describeHolder(rec: LeaseRecord | undefined): string {
  return rec ? `${rec.purpose} by ${rec.host} pid ${rec.pid} (holder ${rec.holder.slice(0, 8)}, renewed ${rec.renewedAt})` : 'an unreadable lease';
}

/**
 * This process and what it can prove about another process of the same machine. Injected,
 * so the simulation has processes of its own.
 */
export interface HostIdentity {
  readonly host: string;
  readonly bootId: string | undefined;
  readonly pid: number;
  readonly pidStart: string | undefined;
  /**
   * True only when it is certain that the process `pid` started at `pidStart` on this boot
   * no longer runs: /proc has no such pid, or the pid now belongs to a later process. False
   * whenever that cannot be proven.
   */
  isGone(pid: number, pidStart: string): boolean;
}

function readProc(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/PID/stat: start time in clock ticks since boot (after the "(comm)" field). */
function startTimeOf(pid: number | 'self'): string | undefined {
  const stat = readProc(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19];
}

export const systemIdentity: HostIdentity = {
  host: os.hostname(),
  bootId: readProc('/proc/sys/kernel/random/boot_id')?.trim() || undefined,
  pid: process.pid,
  pidStart: startTimeOf('self'),
  isGone(pid, pidStart) {
    // Without our own /proc entry nothing about others can be proven.
    if (startTimeOf('self') === undefined) return false;
    const now = startTimeOf(pid);
    return now === undefined || now !== pidStart;
  },
};

/**
 * Whether the holder is provably a dead process of this very machine and boot (a crash or
 * kill -9 right before this restart): then its lease need not be waited out. Every other case,
 * another host, another boot, an old record without boot id or start time, or a process that
 * may still run, waits for the full TTL.
 */
export function provablyDead(rec: Pick<LeaseRecord, 'host' | 'bootId' | 'pid' | 'pidStart'>, me: HostIdentity): boolean {
  if (rec.host !== me.host || !rec.bootId || rec.bootId !== me.bootId || !rec.pidStart) return false;
  if (rec.pid === me.pid && rec.pidStart === me.pidStart) return false;
  return me.isGone(rec.pid, rec.pidStart);
}
