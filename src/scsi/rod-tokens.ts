import type { ByteRange } from '../storage/volume';
import type { Clock } from '../util/clock';
import { invariant } from '../util/invariant';
import type { LogicalUnit } from './logical-unit';
import type { SenseReason } from './sense';

/** Why a ROD token cannot be used: each is its own INVALID TOKEN OPERATION sense (sense.ts). */
export type TokenFault = Extract<SenseReason, 'TokenUnknown' | 'TokenExpired' | 'TokenCancelled' | 'TokenDeleted'>;

/**
 * A ROD token made by POPULATE TOKEN: the bytes it was handed out as, and the data it stands
 * for (byte ranges of one logical unit, in order). Once it is no longer valid it stays as a
 * tombstone for a while, so a late WRITE USING TOKEN learns why.
 */
export class RodToken {
  fault: TokenFault | undefined;
  /** WRITE USING TOKEN commands using it now: a token in use does not expire. */
  users = 0;

  constructor(
    readonly bytes: Buffer,
    readonly lu: LogicalUnit,
    readonly ranges: readonly ByteRange[],
    /** NUMBER OF BYTES REPRESENTED: the sum of `ranges`. */
    readonly length: number,
    readonly timeoutMs: number,
    /** Last time a command used it, or when it became invalid. */
    public lastUse: number,
  ) {}

  get valid(): boolean {
    return this.fault === undefined;
  }
}

/** At most this many tokens are kept, live or not: the oldest go first, tombstones before live ones. */
export const MAX_TOKENS = 1024;

/**
 * The ROD tokens of one SCSI target device. WRITE USING TOKEN may be sent to any LU of the
 * target (a copy between two disks), so the table is the target's, found by all 512 bytes.
 *
 * A token is "point in time, change vulnerable" (spc4r37 ROD types): it refers to the data
 * rather than copying it, so any change to that data cancels it. The table learns of changes
 * from each source LU's WriteWatch (every write path of the SCSI layer goes through it). A
 * token also expires after its inactivity timeout without use (re-armed by each use), is
 * deleted by WRITE USING TOKEN with DEL_TKN, and is dropped with its LU. I_T nexus loss and
 * resets do not touch tokens: they belong to no nexus.
 */
export class RodTokens {
  private readonly byBytes = new Map<string, RodToken>();
  /** Live tokens per source LU, and how to stop watching that LU once it has none. */
  private readonly byLu = new Map<LogicalUnit, { readonly tokens: Set<RodToken>; readonly unwatch: () => void }>();

  constructor(private readonly clock: Clock) {}

  /** Keeps a new token; from now on a change to `ranges` of `lu` cancels it. */
  add(bytes: Buffer, lu: LogicalUnit, ranges: readonly ByteRange[], timeoutMs: number): RodToken {
    const key = keyOf(bytes);
    invariant(!this.byBytes.has(key), () => 'a new ROD token equals a kept one');
    this.sweep();
    const length = ranges.reduce((n, r) => n + r.length, 0);
    const token = new RodToken(Buffer.from(bytes), lu, ranges, length, timeoutMs, this.clock.now());
    this.byBytes.set(key, token);
    let watched = this.byLu.get(lu);
    if (!watched) {
      watched = { tokens: new Set(), unwatch: lu.writes.watch((r) => this.changed(lu, r)) };
      this.byLu.set(lu, watched);
    }
    watched.tokens.add(token);
    return token;
  }

  /** The token with exactly these 512 bytes, or why it cannot be used. */
  find(bytes: Buffer): RodToken | TokenFault {
    const token = this.byBytes.get(keyOf(bytes));
    if (!token) return 'TokenUnknown';
    this.expireIfIdle(token);
    return token.fault ?? token;
  }

  /** A command starts using a valid token: it cannot expire meanwhile. */
  use(token: RodToken): void {
    invariant(token.valid, () => 'using a ROD token that is no longer valid');
    token.users++;
    token.lastUse = this.clock.now();
  }

  /** The command is done with it; the inactivity timeout starts again. */
  release(token: RodToken): void {
    invariant(token.users > 0, () => 'releasing a ROD token nobody uses');
    token.users--;
    token.lastUse = this.clock.now();
  }

  /** WRITE USING TOKEN with DEL_TKN. */
  delete(token: RodToken): void {
    if (token.valid) this.invalidate(token, 'TokenDeleted');
  }

  /**
   * The LU is gone: its tokens stand for nothing any more. A later use finds them unknown; a
   * WRITE USING TOKEN copying from one now stops at its next check.
   */
  dropLu(lu: LogicalUnit): void {
    for (const [key, t] of this.byBytes) {
      if (t.lu !== lu) continue;
      if (t.valid) this.invalidate(t, 'TokenUnknown');
      this.byBytes.delete(key);
    }
  }

  /** Tokens kept, live or not (for tests and metrics). */
  get size(): number {
    return this.byBytes.size;
  }

  /** `range` of `lu` changes: every token standing for any of it is cancelled. */
  private changed(lu: LogicalUnit, range: ByteRange): void {
    const watched = this.byLu.get(lu);
    if (!watched) return;
    for (const t of watched.tokens) {
      // One that had already expired says so, not "cancelled".
      this.expireIfIdle(t);
      if (t.valid && t.ranges.some((r) => r.offset < range.offset + range.length && range.offset < r.offset + r.length)) {
        this.invalidate(t, 'TokenCancelled');
      }
    }
  }

  private expireIfIdle(t: RodToken): void {
    if (t.valid && t.users === 0 && this.clock.now() - t.lastUse > t.timeoutMs) this.invalidate(t, 'TokenExpired');
  }

  private invalidate(t: RodToken, fault: TokenFault): void {
    t.fault = fault;
    t.lastUse = this.clock.now();
    const watched = this.byLu.get(t.lu);
    if (!watched) return;
    watched.tokens.delete(t);
    if (watched.tokens.size === 0) {
      watched.unwatch();
      this.byLu.delete(t.lu);
    }
  }

  /**
   * Bounds the table before a token is added: idle tokens past their timeout become
   * tombstones, a tombstone goes once its own timeout has passed again, and if the table is
   * still full the oldest entries go, tombstones first (a dropped live token is then unknown).
   */
  private sweep(): void {
    const now = this.clock.now();
    for (const [key, t] of this.byBytes) {
      this.expireIfIdle(t);
      if (!t.valid && now - t.lastUse > t.timeoutMs) this.byBytes.delete(key);
    }
    for (const onlyDead of [true, false]) {
      for (const [key, t] of this.byBytes) {
        if (this.byBytes.size < MAX_TOKENS) return;
        if (t.users > 0 || (onlyDead && t.valid)) continue;
        if (t.valid) this.invalidate(t, 'TokenUnknown');
        this.byBytes.delete(key);
      }
    }
  }
}

/** Map key holding all 512 bytes: one character per byte. */
function keyOf(bytes: Buffer): string {
  return bytes.toString('latin1');
}
