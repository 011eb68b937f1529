import { ScsiError } from '../scsi/errors';
import type { LunLayout } from '../storage/layout';
import type { ObjectStore } from '../storage/object-store';
import type { AllocationExtent, ByteRange, CacheMode, ReadView, Volume, VolumeInfo } from '../storage/volume';

/**
 * What a cluster node's logical unit stands on while another node holds the LUN (docs/ha.md):
 * the LUN's geometry and identity from its volume.json, its records read from the store, and
 * no lease. The SCSI pipeline keeps media access away from it (02/04/0B); a command that got
 * past that check while the LU switched roles ends here in 02/04/0A, which initiators retry.
 */
export class StandbyVolume implements Volume {
  readonly readOnly: boolean;

  constructor(
    private readonly store: ObjectStore,
    private readonly layout: LunLayout,
    readonly info: VolumeInfo,
    readonly cacheMode: CacheMode,
    readOnly: boolean,
  ) {
    this.readOnly = readOnly;
  }

  private refuse(): never {
    throw new ScsiError('LunTransitioning');
  }

  read(): Promise<Buffer> {
    this.refuse();
  }
  readView(): Promise<ReadView> {
    this.refuse();
  }
  write(): Promise<void> {
    this.refuse();
  }
  update(): Promise<void> {
    this.refuse();
  }
  flush(): Promise<void> {
    this.refuse();
  }
  discard(): Promise<void> {
    this.refuse();
  }
  writeSame(): Promise<void> {
    this.refuse();
  }
  allocation(_range: ByteRange): Promise<AllocationExtent[]> {
    this.refuse();
  }
  prefetch(): Promise<void> {
    this.refuse();
  }
  /** The cache mode a MODE SELECT set is applied when the node takes the LUN (from the store). */
  async setCacheMode(): Promise<void> {}

  async loadRecord(name: string): Promise<Buffer | null> {
    return (await this.store.get(this.layout.recordKey(name), undefined, { lane: 'control' }))?.body ?? null;
  }

  saveRecord(): Promise<void> {
    throw new ScsiError('LunStandby');
  }

  async close(): Promise<void> {}
}
