import { setMaxListeners } from 'node:events';
import type { Clock, Timer } from '../util/clock';
import { log } from '../util/log';
import { StorageError } from './errors';
import type { Lane, ObjectStore, RequestOptions, WriteGuard } from './object-store';
import { scopedStore } from './scoped-store';

/**
 * - open: mutations may start (the lease is valid until `validUntil`);
 * - suspended: the lease was not renewed in time; mutations fail retryably until a renewal
 *   extends it again;
 * - fenced: another process holds the lease now; never again;
 * - closed: the volume is closed (or its lease released); never again.
 */
export type GateState = 'open' | 'suspended' | 'fenced' | 'closed';

/**
 * The one gate every store mutation of a LUN passes: chunk PUTs and DELETEs, records,
 * volume.json rewrites, defrag, grow, and the CLI's offline commands alike. It knows the lease:
 * the lease extends its validity after each renewal, to the renewal's SEND time plus TTL/2
 * (docs/architecture.md, "Fencing", has the arithmetic). Validity is checked against the clock
 * right before each attempt reaches the wire (GuardedStore), and a timer shuts the gate at the
 * end of validity even while a renewal hangs, aborting the mutations in flight. A process that
 * was stopped finds its validity over when it runs again and writes nothing until a renewal
 * sent after it resumed has succeeded.
 */
export class WriteGate implements WriteGuard {
  private stateValue: GateState = 'open';
  private controller = listenable(new AbortController());
  private validUntil: number;
  private expiry: Timer | undefined;
  private reasonValue: StorageError | undefined;
  /** Who waits for a suspended gate to open again (see `reopened`). */
  private readonly reopenWaiters = new Set<(open: boolean) => void>();

  /**
   * @param validUntil clock time until which mutations may start: the lease's first validity,
   *   or Infinity for a volume without a lease (tests, the memory-backed benchmark LUN).
   */
  constructor(
    private readonly clock: Clock,
    readonly name: string,
    validUntil: number,
  ) {
    this.validUntil = validUntil;
    this.arm();
  }

  /**
   * Set by the lease: whether the lease object still names this holder, read now from the
   * store. A conditional chunk PUT that meets another server's write asks it before fencing:
   * if we still hold the lease, the write was a deposed predecessor's, landing late
   * (docs/ha.md). Undefined (no lease): every foreign write fences.
   */
  holderCheck: (() => Promise<boolean>) | undefined;

  /** A gate that is valid until closed (no lease). */
  static unleased(clock: Clock, name: string): WriteGate {
    return new WriteGate(clock, name, Number.POSITIVE_INFINITY);
  }

  get state(): GateState {
    return this.stateValue;
  }

  /** Why the gate is not open (undefined when it is). */
  get reason(): StorageError | undefined {
    return this.reasonValue;
  }

  /** WriteGuard: throws the typed reason, or returns the signal that aborts the mutation. */
  admit(what: string): AbortSignal {
    if (this.stateValue === 'open' && this.clock.now() >= this.validUntil) this.expire();
    if (this.reasonValue) {
      throw new StorageError(this.reasonValue.kind, `${what}: ${this.reasonValue.message}`, { code: this.reasonValue.code });
    }
    return this.controller.signal;
  }

  /** Throws the reason when the gate is not open (checked before work that will mutate). */
  check(what: string): void {
    this.admit(what);
  }

  /**
   * Options for a store mutation through this gate, after checking that it may start at all
   * (GuardedStore checks again right before each attempt leaves).
   */
  options(lane: Lane, what = 'store write'): RequestOptions {
    const signal = this.admit(what);
    return { lane, guard: this, signal };
  }

  /** A view of `store` whose every mutation passes this gate. */
  bind(store: ObjectStore): ObjectStore {
    return scopedStore(store, (opts, what) => ({ ...opts, ...this.options(opts?.lane ?? 'foreground', what) }));
  }

  /**
   * The lease was renewed: mutations may start until `until` (the renewal's send time plus
   * TTL/2). A suspended gate opens again; one whose validity is already over stays shut.
   */
  extend(until: number): void {
    if (this.stateValue === 'fenced' || this.stateValue === 'closed') return;
    this.validUntil = until;
    if (this.clock.now() >= until) {
      if (this.stateValue === 'open') this.expire();
      return;
    }
    if (this.stateValue === 'suspended') {
      this.stateValue = 'open';
      this.reasonValue = undefined;
      this.controller = listenable(new AbortController());
      log.warn('LUN lease valid again: store writes resume', { lun: this.name });
      this.settleReopenWaiters(true);
    }
    this.arm();
  }

  /**
   * Waits at most `ms` for a suspended gate to open again (the lease's renewal loop extends it
   * once a renewal lands): true once open, false when it is fenced or closed meanwhile, or
   * still suspended at the end.
   */
  reopened(ms: number): Promise<boolean> {
    if (this.stateValue !== 'suspended') return Promise.resolve(this.stateValue === 'open');
    return new Promise<boolean>((resolve) => {
      const done = (open: boolean): void => {
        timer.cancel();
        this.reopenWaiters.delete(done);
        resolve(open);
      };
      const timer = this.clock.after(ms, () => done(false), true);
      this.reopenWaiters.add(done);
    });
  }

  private settleReopenWaiters(open: boolean): void {
    for (const done of [...this.reopenWaiters]) done(open);
  }

  /** Writes stop until `extend` (a failed renewal found the lease's validity over). */
  suspend(why: string): void {
    if (this.stateValue !== 'open') return;
    this.shut('suspended', new StorageError('unavailable', `writes suspended: ${why}`, { code: 'STORE_ERR_SUSPENDED' }));
    log.error('store writes suspended: the LUN lease is not renewed', { lun: this.name, reason: why });
  }

  /** Another process holds the lease: never write again. */
  fence(why: string): void {
    if (this.stateValue === 'fenced' || this.stateValue === 'closed') return;
    this.shut('fenced', new StorageError('fenced', `lease lost: ${why}`));
    log.error('LUN fenced: this process will not write to it again', { lun: this.name, reason: why });
  }

  /** The volume is closed or its lease released: no mutation after this. */
  close(why = 'the volume is closed'): void {
    if (this.stateValue === 'fenced' || this.stateValue === 'closed') return;
    this.shut('closed', new StorageError('unavailable', why, { code: 'STORE_ERR_CLOSED' }));
  }

  private expire(): void {
    this.suspend(`the lease was last renewed more than TTL/2 ago`);
  }

  private shut(state: GateState, reason: StorageError): void {
    this.stateValue = state;
    this.reasonValue = reason;
    this.expiry?.cancel();
    this.expiry = undefined;
    this.controller.abort(reason);
    if (state !== 'suspended') this.settleReopenWaiters(false);
  }

  private arm(): void {
    this.expiry?.cancel();
    this.expiry = undefined;
    if (this.validUntil === Number.POSITIVE_INFINITY) return;
    this.expiry = this.clock.after(
      this.validUntil - this.clock.now(),
      () => {
        this.expiry = undefined;
        if (this.stateValue === 'open' && this.clock.now() >= this.validUntil) this.expire();
        else if (this.stateValue === 'open') this.arm();
      },
      true,
    );
  }
}

/** Every mutation in flight listens to the gate's signal: no listener limit (and no warning). */
function listenable(c: AbortController): AbortController {
  setMaxListeners(0, c.signal);
  return c;
}
