import type { TargetLimits } from './login/params';
import type { AuthPolicy } from './login/security';
import type { SessionTable } from './session';
import type { IscsiStats } from './stats';
import type { TargetDirectory } from './target-entry';

export interface PortalOptions {
  /** Commands a session may have outstanding: the CmdSN window. */
  readonly queueDepth: number;
  /** Idle time after which we ping the initiator with a NOP-In (RFC 7143 §11.19). */
  readonly nopIntervalMs: number;
  /** A ping unanswered for this long drops the connection. */
  readonly nopTimeoutMs: number;
  /** A login that has not completed by then is dropped (slow or idle peers). */
  readonly loginTimeoutMs: number;
  /** Bytes of Data-Out a connection may have solicited and not yet handed over. */
  readonly maxSolicitedBytes: number;
  /** Bytes of Data-In the reads running on a connection may hold. */
  readonly maxReadBytes: number;
}

export const DEFAULT_PORTAL_OPTIONS: PortalOptions = {
  queueDepth: 128,
  nopIntervalMs: 10_000,
  nopTimeoutMs: 30_000,
  loginTimeoutMs: 15_000,
  maxSolicitedBytes: 64 * 1024 * 1024,
  maxReadBytes: 128 * 1024 * 1024,
};

/** What every connection of a portal shares. */
export interface PortalContext {
  readonly directory: TargetDirectory;
  readonly sessions: SessionTable;
  readonly limits: TargetLimits;
  readonly stats: IscsiStats;
  readonly discoveryAuth: AuthPolicy;
  readonly options: PortalOptions;
  /** Set while shutting down: new logins are refused with "service unavailable". */
  readonly draining: boolean;
}
