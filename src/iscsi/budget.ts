/**
 * A byte budget shared by the commands of one connection: a command that would take it over
 * the limit waits until earlier ones give their bytes back (one command alone may always
 * proceed). It bounds the memory a single initiator can make the target hold.
 */
export class ByteBudget {
  private used = 0;
  private readonly waiters: Array<{ bytes: number; go: () => void }> = [];

  constructor(readonly limit: number) {}

  get inUse(): number {
    return this.used;
  }

  async acquire(bytes: number): Promise<void> {
    if (this.waiters.length === 0 && (this.used === 0 || this.used + bytes <= this.limit)) {
      this.used += bytes;
      return;
    }
    await new Promise<void>((go) => this.waiters.push({ bytes, go }));
  }

  release(bytes: number): void {
    this.used -= bytes;
    while (this.waiters.length > 0) {
      const w = this.waiters[0];
      if (this.used !== 0 && this.used + w.bytes > this.limit) break;
      this.waiters.shift();
      this.used += w.bytes;
      w.go();
    }
  }
}
