import { randomUUID } from 'node:crypto';
import { type Clock, every, systemClock, type Timer } from '../util/clock';
import { log } from '../util/log';
import { isStorageError, StorageError } from './errors';
import { describeHolder, type HostIdentity, type LeaseRecord, parseLeaseRecord, provablyDead, systemIdentity } from './lease-record';
import type { GetResult, ObjectStore, PutOptions, RequestOptions, WriteGuard } from './object-store';
import { WriteGate } from './write-gate';

export type { LeaseRecord } from './lease-record';

export interface LeaseTiming {
  /** A lease nobody renewed for this long (as a newcomer observes it) may be taken over. */
  readonly ttlMs: number;
  readonly renewEveryMs: number;
  /** Extra wait beyond the TTL before a takeover, against clock drift and slow requests. */
  readonly marginMs: number;
}

/**
 * Defaults: renew every 3 s; a holder whose last successful renewal was SENT more than TTL/2
 * (10 s) ago writes nothing; a newcomer takes over a lease it has seen unchanged for TTL +
 * margin (25 s). docs/architecture.md ("Fencing") has the arithmetic.
 */
export const DEFAULT_LEASE_TIMING: LeaseTiming = { ttlMs: 20_000, renewEveryMs: 3_000, marginMs: 5_000 };

export interface LeaseEnv {
  readonly clock: Clock;
  readonly identity: HostIdentity;
}

const SYSTEM_ENV: LeaseEnv = { clock: systemClock, identity: systemIdentity };

export class LeaseError extends Error {
  readonly code = 'LEASE_ERR_HELD';
  constructor(message: string) {
    super(message);
    this.name = 'LeaseError';
  }
}

export type LeaseState = 'held' | 'suspended' | 'lost' | 'released';

/**
 * The lease object is where the write gate's validity comes from, so its own conditional
 * writes (If-None-Match: * to create, If-Match to renew) pass no gate: the condition is their
 * fence.
 */
const LEASE_OBJECT: WriteGuard = { admit: () => new AbortController().signal };

type Base = Omit<LeaseRecord, 'renewedAt' | 'generation' | 'vouches' | 'handoverTo' | 'replication' | 'covered'> & {
  vouches?: readonly string[];
  replication?: 'local-only';
  covered?: readonly string[];
};

/** How many covered holders a lease carries forward (older ones: their copies are quarantined instead). */
const COVERED_KEPT = 32;

/** What a cluster standby saw of a lease before it decided to take it (docs/ha.md). */
export interface SeenLease {
  readonly etag: string;
  readonly record: LeaseRecord | undefined;
}

const CONTROL = { lane: 'control' } as const;

/**
 * The single-writer lease of a LUN, kept in the store with conditional writes: created with
 * If-None-Match: *, renewed with If-Match (RGW compares the unquoted ETag). Only durations as
 * each process measures them on its own monotonic clock are used, never a comparison of clocks.
 * It drives the LUN's WriteGate: every successful renewal extends the gate to its send time
 * plus TTL/2; a takeover by another process fences it.
 */
export class Lease {
  private timer: Timer | undefined;
  private generation = 0;
  /**
   * When the first renewal to `generation + 1` was sent. A renewal whose answer was lost may
   * have landed; a later one that finds it (412, then its own record) knows only that it landed
   * after this time, so the gate is extended from here, not from the later send.
   */
  private firstSend: { readonly generation: number; readonly at: number } | undefined;
  private renewing: Promise<void> | undefined;
  private released = false;
  readonly gate: WriteGate;

  private constructor(
    private readonly store: ObjectStore,
    readonly key: string,
    private readonly base: Base,
    private etag: string,
    private readonly timing: LeaseTiming,
    private readonly env: LeaseEnv,
    sentAt: number,
    /** The lease record this one took over; undefined when it created the lease. */
    readonly previous: LeaseRecord | undefined,
  ) {
    this.gate = new WriteGate(env.clock, key.replace(/\/lease\.json$/, ''), sentAt + timing.ttlMs / 2);
    this.gate.holderCheck = () => this.stillOurs();
  }

  /** Whether the lease object in the store names this holder now (a GET; throws if it cannot tell). */
  private async stillOurs(): Promise<boolean> {
    if (this.released || this.gate.state === 'fenced') return false;
    const cur = await this.store.get(this.key, undefined, requestBounds(this.timing));
    if (!cur) return false;
    try {
      const rec = parseLeaseRecord(cur.body, this.key);
      return rec.holder === this.base.holder && rec.handoverTo === undefined;
    } catch {
      return false;
    }
  }

  get holder(): string {
    return this.base.holder;
  }

  get state(): LeaseState {
    if (this.released) return 'released';
    const g = this.gate.state;
    return g === 'fenced' ? 'lost' : g === 'suspended' ? 'suspended' : 'held';
  }

  /**
   * Takes the lease. An existing one is watched for TTL + margin: if it changes its holder is
   * alive and this fails with a LeaseError; if it stays the same it is taken over. A holder
   * that is provably a dead process of this machine (same boot, pid gone) is taken over at once.
   */
  static async acquire(
    store: ObjectStore,
    key: string,
    purpose: string,
    timing: LeaseTiming = DEFAULT_LEASE_TIMING,
    env: LeaseEnv = SYSTEM_ENV,
    /**
     * The earlier holders this holder vouches for (the journal's replay chain,
     * docs/journal.md), given the record about to be taken over; they go into the same PUT.
     * Called again before every attempt, with undefined before an attempt to create the lease.
     * `previous` on the Lease is the record its final, successful attempt took over.
     */
    vouch: (previous: LeaseRecord | undefined) => readonly string[] = () => [],
    /** The cluster node taking it, recorded for the other nodes' ALUA states. */
    node?: string,
  ): Promise<Lease> {
    const { clock, identity: me } = env;
    const base = newBase(purpose, timing, me, node);
    let previous: LeaseRecord | undefined;
    const start = (etag: string, sentAt: number): Lease => new Lease(store, key, base, etag, timing, env, sentAt, previous).startRenewing();
    const withVouches = (prev: LeaseRecord | undefined): void => {
      previous = prev;
      const v = vouch(prev);
      base.vouches = v.length > 0 ? [...v] : undefined;
    };
    // Taking the lease retries under the backend's usual policy (a transient failure at start
    // is retried); only renewals run on the tighter bounds below.
    const put = (opts: PutOptions) => store.put(key, body(base, 0), { ...opts, lane: 'control', guard: LEASE_OBJECT });
    for (let attempt = 0; attempt < 5; attempt++) {
      withVouches(undefined);
      let sentAt = clock.now();
      try {
        return start((await put({ ifNoneMatch: '*' })).etag, sentAt);
      } catch (e) {
        if (!isStorageError(e, 'precondition')) throw e;
      }
      const seen = await store.get(key, undefined, CONTROL);
      if (!seen) continue; // released meanwhile: try to create it again
      // Our own create, whose answer was lost and which the retry repeated (see `landed`).
      if (isOurs(seen, key, base.holder, 0)) return start(seen.meta.etag, sentAt);
      const current = readable(seen, key);
      if (current && provablyDead(current, me)) {
        log.warn('the LUN lease is held by a process of this machine that no longer runs: taking it over now', {
          key,
          previous: describeHolder(current),
        });
      } else if (await changesWithin(store, key, seen.meta.etag, timing, clock, current)) {
        const latest = await store.get(key, undefined, CONTROL);
        if (!latest) continue;
        throw new LeaseError(`LUN is in use: its lease is held and being renewed (${describeHolder(readable(latest, key))})`);
      }
      withVouches(current);
      sentAt = clock.now();
      try {
        const { etag } = await put({ ifMatch: seen.meta.etag });
        log.warn('took over the LUN lease', { key, previous: describeHolder(current) });
        return start(etag, sentAt);
      } catch (e) {
        if (!isStorageError(e, 'precondition')) throw e;
        const mine = await landed(store, key, base.holder, 0, CONTROL);
        if (mine) return start(mine, sentAt);
        throw new LeaseError('LUN is in use: another process took its expired lease first');
      }
    }
    throw new LeaseError('could not take the LUN lease');
  }

  /**
   * A cluster standby takes a lease it has decided on (docs/ha.md): absent (`seen` null),
   * expired (unchanged for TTL + margin as the standby watched it on its own clock) or handed
   * over to this node. One conditional PUT, which fails with a LeaseError if anyone changed
   * the lease since `seen` (its holder renewed it, or another node was faster).
   */
  static async claim(
    store: ObjectStore,
    key: string,
    seen: SeenLease | null,
    node: string,
    timing: LeaseTiming,
    vouch: (previous: LeaseRecord | undefined) => readonly string[],
    env: LeaseEnv = SYSTEM_ENV,
    /** Holders whose records this takeover applies from a replica (added to those the chain carries). */
    covers: readonly string[] = [],
  ): Promise<Lease> {
    const base = newBase('serve', timing, env.identity, node);
    const v = vouch(seen?.record);
    if (v.length > 0) base.vouches = [...v];
    const covered = [...new Set([...(seen?.record?.covered ?? []), ...covers])].slice(-COVERED_KEPT);
    if (covered.length > 0) base.covered = covered;
    const sentAt = env.clock.now();
    const start = (etag: string): Lease => new Lease(store, key, base, etag, timing, env, sentAt, seen?.record).startRenewing();
    try {
      const { etag } = await store.put(key, body(base, 0), {
        ...(seen ? { ifMatch: seen.etag } : { ifNoneMatch: '*' as const }),
        lane: 'control',
        guard: LEASE_OBJECT,
      });
      if (seen) log.warn('took over the LUN lease', { key, previous: describeHolder(seen.record) });
      return start(etag);
    } catch (e) {
      if (!isStorageError(e, 'precondition')) throw e;
      const mine = await landed(store, key, base.holder, 0, CONTROL);
      if (mine) return start(mine);
      throw new LeaseError('the LUN lease changed before it could be taken (its holder renewed it, or another node took it)');
    }
  }

  private startRenewing(): this {
    this.timer = every(this.env.clock, this.timing.renewEveryMs, () => void this.renew());
    // Taking it took longer than TTL/2 (retries): validate before any write.
    try {
      this.gate.check('lease start');
    } catch {
      void this.renew();
    }
    return this;
  }

  /** One renewal (skipped while one is in flight): extends the gate, or fences it on a takeover. */
  renew(): Promise<void> {
    if (this.renewing || this.released || this.gate.state === 'fenced') return this.renewing ?? Promise.resolve();
    this.renewing = this.renewOnce().finally(() => {
      this.renewing = undefined;
    });
    return this.renewing;
  }

  private async renewOnce(): Promise<void> {
    const next = this.generation + 1;
    const sentAt = this.env.clock.now();
    const first = this.firstSend?.generation === next ? this.firstSend : { generation: next, at: sentAt };
    this.firstSend = first;
    try {
      let etag: string;
      let landedAfter = sentAt;
      try {
        ({ etag } = await this.store.put(this.key, body(this.base, next), {
          ifMatch: this.etag,
          ...requestBounds(this.timing),
          guard: LEASE_OBJECT,
        }));
      } catch (e) {
        // A renewal whose answer was lost meets itself: a retry of this one, or an earlier
        // renewal to the same generation that landed unanswered.
        const mine = isStorageError(e, 'precondition')
          ? await landed(this.store, this.key, this.base.holder, next, requestBounds(this.timing))
          : null;
        if (mine === null) throw e;
        etag = mine;
        landedAfter = first.at;
      }
      this.etag = etag;
      this.generation = next;
      this.gate.extend(landedAfter + this.timing.ttlMs / 2);
    } catch (e) {
      if (isStorageError(e, 'precondition')) {
        this.timer?.cancel();
        this.gate.fence('the lease was taken over by another process');
        return;
      }
      log.warn('LUN lease renewal failed; will retry', { key: this.key, error: (e as Error).message, gate: this.gate.state });
    }
  }

  /** Whether the record says the holder acknowledges journal writes no peer holds. */
  get localOnly(): boolean {
    return this.base.replication === 'local-only';
  }

  /**
   * Sets or clears `replication: local-only` (docs/ha.md, "Journal replication") and resolves
   * once a renewal carrying it has landed; throws if none did (a bounded renewal failed).
   */
  async markLocalOnly(on: boolean): Promise<void> {
    if (on) this.base.replication = 'local-only';
    else delete this.base.replication;
    await this.renewing;
    const before = this.generation;
    await this.renew();
    if (this.generation <= before || this.state !== 'held') {
      throw new StorageError(
        'unavailable',
        `${this.key}: the lease could not be rewritten to say the journal is ${on ? 'local-only' : 'replicated'}`,
        {
          code: 'STORE_ERR_REPLICATION',
        },
      );
    }
  }

  /**
   * A suspended holder that must flush (a graceful stop right after an S3 outage) renews now
   * rather than at the next tick, until `deadlineMs` passes. True when the lease is held.
   */
  async regain(deadlineMs: number): Promise<boolean> {
    const { clock } = this.env;
    const deadline = clock.now() + deadlineMs;
    while (this.state === 'suspended' && clock.now() < deadline) {
      await this.renew();
      if (this.state === 'suspended') await clock.sleep(Math.min(this.timing.renewEveryMs / 4, deadline - clock.now()));
    }
    return this.state === 'held';
  }

  /**
   * Gives the lease up (after the final flush), so a successor need not wait for expiry.
   * `handoverTo` (a cluster's `lun move`): instead of deleting the lease, its last write names
   * the node that may take it at once; the other nodes keep waiting for it to expire.
   */
  async release(handoverTo?: string): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.timer?.cancel();
    this.gate.close('the lease was released');
    await this.renewing;
    if (this.gate.state === 'fenced') return;
    try {
      if (handoverTo) {
        await this.store.put(this.key, body(this.base, this.generation + 1, handoverTo), {
          ifMatch: this.etag,
          ...requestBounds(this.timing),
          guard: LEASE_OBJECT,
        });
        return;
      }
      const cur = await this.store.head(this.key, requestBounds(this.timing));
      if (cur?.etag === this.etag) await this.store.delete(this.key, { ...requestBounds(this.timing), guard: LEASE_OBJECT });
    } catch (e) {
      log.warn('could not release the LUN lease; it will expire', { key: this.key, error: (e as Error).message });
    }
  }
}

/**
 * Lease requests are bounded below TTL/2: a renewal attempt that hangs is given up after TTL/4
 * and tried again, so one lost request does not let the gate's validity end; a slow S3 (a
 * renewal answered in up to TTL/4, 5 s by default) does not make it either.
 */
function requestBounds(t: LeaseTiming): { lane: 'control'; attemptTimeoutMs: number; retryDeadlineMs: number } {
  return { lane: 'control', attemptTimeoutMs: Math.max(250, Math.round(t.ttlMs / 4)), retryDeadlineMs: Math.round(t.ttlMs / 3) };
}

function newBase(purpose: string, timing: LeaseTiming, me: HostIdentity, node: string | undefined): Base {
  return {
    holder: randomUUID(),
    purpose,
    host: me.host,
    ...(me.bootId ? { bootId: me.bootId } : {}),
    pid: me.pid,
    ...(me.pidStart ? { pidStart: me.pidStart } : {}),
    acquiredAt: new Date().toISOString(),
    ttlMs: timing.ttlMs,
    ...(node ? { node } : {}),
  };
}

function body(base: Base, generation: number, handoverTo?: string): Buffer {
  return Buffer.from(JSON.stringify({ ...base, renewedAt: new Date().toISOString(), generation, ...(handoverTo ? { handoverTo } : {}) }));
}

/** Watches the lease for TTL + margin; true as soon as its ETag changes (its holder renews). */
async function changesWithin(
  store: ObjectStore,
  key: string,
  etag: string,
  timing: LeaseTiming,
  clock: Clock,
  current: LeaseRecord | undefined,
): Promise<boolean> {
  const waitMs = timing.ttlMs + timing.marginMs;
  log.info('LUN lease is held; watching it before any takeover', { key, held: describeHolder(current), waitMs });
  const deadline = clock.now() + waitMs;
  while (clock.now() < deadline) {
    await clock.sleep(Math.min(timing.renewEveryMs / 2, deadline - clock.now()));
    const now = await store.head(key, CONTROL);
    if (!now || now.etag !== etag) return true;
  }
  return false;
}

/** The lease object as it is now (for `s3tgt lun info`), or null when nobody holds it. */
export async function readLease(store: ObjectStore, key: string): Promise<LeaseRecord | null> {
  const got = await store.get(key);
  return got ? parseLeaseRecord(got.body, key) : null;
}

/** A lease object that does not parse is held by someone unknown: it is watched like any other. */
function readable(obj: GetResult, key: string): LeaseRecord | undefined {
  try {
    return parseLeaseRecord(obj.body, key);
  } catch (e) {
    log.warn('unreadable LUN lease object; treating it as held by an unknown process', { key, error: (e as Error).message });
    return undefined;
  }
}

/**
 * After a precondition failure: whether the object is our own write of `generation`, and its
 * ETag if so. S3 has no idempotency token, so a conditional PUT whose answer was lost (a reset,
 * a timeout) and that the retrying store repeats meets its own first attempt and fails the
 * precondition; the holder id and generation in the body tell that write from a rival's.
 */
async function landed(store: ObjectStore, key: string, holder: string, generation: number, bounds?: RequestOptions): Promise<string | null> {
  const cur = await store.get(key, undefined, bounds);
  return cur && isOurs(cur, key, holder, generation) ? cur.meta.etag : null;
}

function isOurs(obj: GetResult, key: string, holder: string, generation: number): boolean {
  try {
    const rec = parseLeaseRecord(obj.body, key);
    return rec.holder === holder && rec.generation === generation;
  } catch {
    return false;
  }
}
