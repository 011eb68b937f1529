/**
 * Why logins fail, as counted (connection.ts maps the login status): every one is exported from
 * the start at 0, so a dashboard's rate() has a series before the first failure.
 */
export const LOGIN_FAILURE_REASONS = ['authentication', 'authorization', 'target_not_found', 'unavailable', 'protocol', 'timeout'] as const;

/** Transport counters, read by the metrics module. */
export class IscsiStats {
  connectionsOpened = 0;
  connectionsClosed = 0;
  loginsSucceeded = 0;
  readonly loginFailures = new Map<string, number>(LOGIN_FAILURE_REASONS.map((r) => [r, 0]));
  rejectsSent = 0;
  digestErrors = 0;
  pingTimeouts = 0;

  loginFailed(reason: string): void {
    this.loginFailures.set(reason, (this.loginFailures.get(reason) ?? 0) + 1);
  }
}
