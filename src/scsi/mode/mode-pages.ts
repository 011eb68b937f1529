import type { LogicalUnit } from '../logical-unit';

/** Mode parameters of a logical unit (SPC-5 §7.5). Filled out by the command-set issue. */
export class ModePages {
  descriptorSense = false;
  constructor(private readonly lu: LogicalUnit) {}
  get writeCacheEnabled(): boolean {
    return this.lu.volume.cacheMode === 'write-back';
  }
  async load(): Promise<void> {}
}
