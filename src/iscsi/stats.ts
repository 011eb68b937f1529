/** Transport counters, read by the metrics module. */
export class IscsiStats {
  connectionsOpened = 0;
  connectionsClosed = 0;
  loginsSucceeded = 0;
  readonly loginFailures = new Map<string, number>();
  rejectsSent = 0;
  digestErrors = 0;
  pingTimeouts = 0;

  loginFailed(reason: string): void {
    this.loginFailures.set(reason, (this.loginFailures.get(reason) ?? 0) + 1);
  }
}
