/**
 * A one-line progress bar on a terminal (stderr), redrawn at most ten times a second;
 * nothing at all when stderr is not a terminal (logs and pipes stay clean).
 */
export class ProgressBar {
  private last = 0;
  private readonly tty: boolean;

  constructor(
    private readonly label: string,
    private readonly unit: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = stream.isTTY === true;
  }

  update(done: number, total: number, force = false): void {
    if (!this.tty) return;
    const now = Date.now();
    if (!force && now - this.last < 100 && done < total) return;
    this.last = now;
    const width = Math.max(10, Math.min(40, (this.stream.columns ?? 80) - 40));
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const fill = Math.round(frac * width);
    const bar = `${'='.repeat(Math.max(0, fill - 1))}${fill > 0 ? (frac < 1 ? '>' : '=') : ''}${' '.repeat(width - fill)}`;
    this.stream.write(`\r${this.label} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${done}/${total} ${this.unit}`);
  }

  done(): void {
    if (this.tty) this.stream.write('\n');
  }
}
