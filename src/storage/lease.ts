import { randomUUID } from 'node:crypto';
import * as os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { log } from '../util/log';
import { isStorageError } from './errors';
import type { GetResult, ObjectStore } from './object-store';

export interface LeaseTiming {
  /** A lease nobody renewed for this long (as a newcomer observes it) may be taken over. */
  readonly ttlMs: number;
  readonly renewEveryMs: number;
  /** Extra wait beyond the TTL before a takeover, against clock drift and slow requests. */
  readonly marginMs: number;
}

/**
 * Defaults: renew every 3 s; a holder that has not renewed for TTL/2 (10 s) stops writing to
 * S3; a newcomer takes over a lease it has seen unchanged for TTL + margin (25 s). The 15 s
 * between the two is what keeps a holder cut off from S3 from writing after a takeover.
 */
export const DEFAULT_LEASE_TIMING: LeaseTiming = { ttlMs: 20_000, renewEveryMs: 3_000, marginMs: 5_000 };

export interface LeaseRecord {
  readonly holder: string;
  readonly purpose: string;
  readonly host: string;
  readonly pid: number;
  readonly acquiredAt: string;
  readonly renewedAt: string;
  readonly ttlMs: number;
  readonly generation: number;
}

export class LeaseError extends Error {
  readonly code = 'LEASE_ERR_HELD';
  constructor(message: string) {
    super(message);
    this.name = 'LeaseError';
  }
}

export type LeaseState = 'held' | 'suspended' | 'lost' | 'released';

export interface LeaseEvents {
  /** Renewals failed for TTL/2: stop writing to the store until `resumed`. */
  suspended(reason: string): void;
  resumed(): void;
  /** Someone else holds the lease now: never write again. */
  lost(reason: string): void;
}

function describe(rec: LeaseRecord | undefined): string {
  return rec ? `${rec.purpose} by ${rec.host} pid ${rec.pid} (holder ${rec.holder.slice(0, 8)}, renewed ${rec.renewedAt})` : 'someone';
}

/**
 * The single-writer lease of a LUN, kept in the store with conditional writes: created with
 * If-None-Match: *, renewed with If-Match (RGW compares the unquoted ETag). Only time as each
 * process measures it with its own clock is used, never a comparison of clocks.
 */
export class Lease {
  state: LeaseState = 'held';
  private timer: NodeJS.Timeout | undefined;
  private lastRenewal = Date.now();
  private generation = 0;
  private renewing = false;

  private constructor(
    private readonly store: ObjectStore,
    readonly key: string,
    private readonly record: Omit<LeaseRecord, 'renewedAt' | 'generation'>,
    private etag: string,
    private readonly timing: LeaseTiming,
    private readonly events: LeaseEvents,
  ) {}

  get holder(): string {
    return this.record.holder;
  }

  /**
   * Takes the lease. An existing one is watched for TTL + margin: if it changes its holder is
   * alive and this fails with a LeaseError; if it stays the same it is taken over.
   */
  static async acquire(
    store: ObjectStore,
    key: string,
    purpose: string,
    events: LeaseEvents,
    timing: LeaseTiming = DEFAULT_LEASE_TIMING,
  ): Promise<Lease> {
    const now = new Date().toISOString();
    const record = { holder: randomUUID(), purpose, host: os.hostname(), pid: process.pid, acquiredAt: now, ttlMs: timing.ttlMs };
    const body = (gen: number): Buffer => Buffer.from(JSON.stringify({ ...record, renewedAt: new Date().toISOString(), generation: gen }));
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const { etag } = await store.put(key, body(0), { ifNoneMatch: '*' });
        return Lease.start(store, key, record, etag, timing, events);
      } catch (e) {
        if (!isStorageError(e, 'precondition')) throw e;
      }
      const seen = await store.get(key);
      if (!seen) continue; // released meanwhile: try to create it again
      // Our own create, whose answer was lost and which the retry repeated (see `landed`).
      if (isOurs(seen, record.holder, 0)) return Lease.start(store, key, record, seen.meta.etag, timing, events);
      const current = parse(seen.body);
      log.info('LUN lease is held; watching it before any takeover', { key, held: describe(current), waitMs: timing.ttlMs + timing.marginMs });
      const deadline = Date.now() + timing.ttlMs + timing.marginMs;
      let changed = false;
      while (Date.now() < deadline) {
        await sleep(Math.min(timing.renewEveryMs / 2, deadline - Date.now()));
        const now2 = await store.head(key);
        if (!now2 || now2.etag !== seen.meta.etag) {
          changed = true;
          break;
        }
      }
      if (changed) {
        const latest = await store.get(key);
        if (!latest) continue;
        throw new LeaseError(`LUN is in use: its lease is held and being renewed (${describe(parse(latest.body))})`);
      }
      try {
        const { etag } = await store.put(key, body(0), { ifMatch: seen.meta.etag });
        log.warn('took over an expired LUN lease', { key, previous: describe(current) });
        return Lease.start(store, key, record, etag, timing, events);
      } catch (e) {
        if (!isStorageError(e, 'precondition')) throw e;
        const mine = await landed(store, key, record.holder, 0);
        if (mine) return Lease.start(store, key, record, mine, timing, events);
        throw new LeaseError('LUN is in use: another process took its expired lease first');
      }
    }
    throw new LeaseError('could not take the LUN lease');
  }

  private static start(
    store: ObjectStore,
    key: string,
    record: Omit<LeaseRecord, 'renewedAt' | 'generation'>,
    etag: string,
    timing: LeaseTiming,
    events: LeaseEvents,
  ): Lease {
    const l = new Lease(store, key, record, etag, timing, events);
    l.timer = setInterval(() => void l.renew(), timing.renewEveryMs);
    l.timer.unref();
    return l;
  }

  /** One renewal; lost on a precondition failure, suspended after TTL/2 without success. */
  async renew(): Promise<void> {
    if (this.renewing || this.state === 'lost' || this.state === 'released') return;
    this.renewing = true;
    try {
      const next = this.generation + 1;
      const body = Buffer.from(JSON.stringify({ ...this.record, renewedAt: new Date().toISOString(), generation: next }));
      let etag: string;
      try {
        ({ etag } = await this.store.put(this.key, body, { ifMatch: this.etag }));
      } catch (e) {
        const mine = isStorageError(e, 'precondition') ? await landed(this.store, this.key, this.record.holder, next) : null;
        if (mine === null) throw e;
        etag = mine;
      }
      this.etag = etag;
      this.generation = next;
      this.lastRenewal = Date.now();
      if (this.state === 'suspended') {
        this.state = 'held';
        log.warn('LUN lease renewed again: resuming writes', { key: this.key });
        this.events.resumed();
      }
    } catch (e) {
      if (isStorageError(e, 'precondition')) {
        this.lose('the lease was taken over by another process');
        return;
      }
      const silentFor = Date.now() - this.lastRenewal;
      if (this.state === 'held' && silentFor >= this.timing.ttlMs / 2) {
        this.state = 'suspended';
        const reason = `lease not renewed for ${silentFor} ms (${(e as Error).message})`;
        log.error('suspending writes: the LUN lease cannot be renewed', { key: this.key, reason });
        this.events.suspended(reason);
      }
    } finally {
      this.renewing = false;
    }
  }

  /**
   * A suspended holder that must flush (a graceful stop right after an S3 outage) renews now
   * rather than at the next tick, until `deadlineMs` passes. True when the lease is held.
   */
  async regain(deadlineMs: number): Promise<boolean> {
    const deadline = Date.now() + deadlineMs;
    while (this.state === 'suspended' && Date.now() < deadline) {
      await this.renew();
      if (this.state === 'suspended') await sleep(Math.min(this.timing.renewEveryMs / 4, Math.max(0, deadline - Date.now())));
    }
    return this.state === 'held';
  }

  private lose(reason: string): void {
    if (this.state === 'lost') return;
    this.state = 'lost';
    if (this.timer) clearInterval(this.timer);
    log.error('LUN lease lost: this process will not write to the LUN again', { key: this.key, reason });
    this.events.lost(reason);
  }

  /** Gives the lease up (after the final flush), so a successor need not wait for expiry. */
  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.state === 'lost' || this.state === 'released') return;
    this.state = 'released';
    try {
      const cur = await this.store.head(this.key);
      if (cur?.etag === this.etag) await this.store.delete(this.key);
    } catch (e) {
      log.warn('could not release the LUN lease; it will expire', { key: this.key, error: (e as Error).message });
    }
  }
}

/** The lease object as it is now (for `s3tgt lun info`), or null when nobody holds it. */
export async function readLease(store: ObjectStore, key: string): Promise<LeaseRecord | null> {
  const got = await store.get(key);
  return got ? (parse(got.body) ?? null) : null;
}

/**
 * After a precondition failure: whether the object is our own write of `generation`, and its
 * ETag if so. S3 has no idempotency token, so a conditional PUT whose answer was lost (a reset,
 * a timeout) and that the retrying store repeats meets its own first attempt and fails the
 * precondition; the holder id and generation in the body tell that write from a rival's.
 */
async function landed(store: ObjectStore, key: string, holder: string, generation: number): Promise<string | null> {
  const cur = await store.get(key);
  return cur && isOurs(cur, holder, generation) ? cur.meta.etag : null;
}

function isOurs(obj: GetResult, holder: string, generation: number): boolean {
  const rec = parse(obj.body);
  return rec?.holder === holder && rec.generation === generation;
}

function parse(body: Buffer): LeaseRecord | undefined {
  try {
    return JSON.parse(body.toString('utf8')) as LeaseRecord;
  } catch {
    return undefined;
  }
}
