import type { AluaStates } from '../../src/scsi/alua';
import type { Outcome } from '../../src/scsi/command';
import { LogicalUnit } from '../../src/scsi/logical-unit';
import { encodeLun } from '../../src/scsi/lun-address';
import type { ITNexus } from '../../src/scsi/nexus';
import { senseCodeOf } from '../../src/scsi/sense';
import { TaskAttribute } from '../../src/scsi/status';
import { ScsiTarget } from '../../src/scsi/target';
import { ChunkVolume } from '../../src/storage/chunk-volume';
import { LunLayout } from '../../src/storage/layout';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import type { ObjectStore } from '../../src/storage/object-store';

export const MiB = 1024 * 1024;

export function nexus(name: string): ITNexus {
  return {
    id: `iqn.2026-11.test:${name},i,0x000000000001|iqn.2026-11.test:t,t,0x0001`,
    initiatorPort: `iqn.2026-11.test:${name},i,0x000000000001`,
    initiatorName: `iqn.2026-11.test:${name}`,
    targetPort: 'iqn.2026-11.test:t,t,0x0001',
    relativeTargetPortId: 1,
    transportId: Buffer.from(`iqn.2026-11.test:${name}`),
  };
}

/** A target with one LUN over an in-memory store, driven like a transport drives it. */
export class ScsiFixture {
  readonly store = new MemoryObjectStore();
  readonly target: ScsiTarget;
  readonly volume: ChunkVolume;
  readonly lu: LogicalUnit;
  private tag = 1;

  /** `backing`: the store the volume uses (default `store`; e.g. a FailingStore over it). */
  /** `cluster`: the LU as a cluster node presents it (its ALUA states, its port's id). */
  constructor(sizeBytes = 64 * MiB, blockSize: 512 | 4096 = 512, backing?: ObjectStore, cluster?: { alua: AluaStates; relativePortId: number }) {
    this.target = new ScsiTarget('iqn.2026-11.test:t', undefined, cluster?.relativePortId);
    this.volume = new ChunkVolume(backing ?? this.store, new LunLayout('', 'fx'), {
      name: 'fx',
      sizeBytes,
      logicalBlockSize: blockSize,
      chunkSize: MiB,
      uuid: '12345678-1234-1234-1234-123456789abc',
      created: '',
    });
    this.lu = new LogicalUnit(
      0,
      this.volume,
      { vendor: 'S3TGT', product: 'test', revision: '0001', uuid: '12345678-1234-1234-1234-123456789abc' },
      this.target,
      cluster?.alua,
    );
    this.target.addLun(this.lu);
  }

  /** Runs a CDB to completion; Data-Out defaults to exactly what the CDB asks for. */
  async run(
    n: ITNexus,
    cdb: number[] | Buffer,
    opts: { dataOut?: Buffer; edtl?: number; lun?: number; attribute?: TaskAttribute } = {},
  ): Promise<Outcome & { dataOutLength: number; transferLength: number }> {
    const c = Buffer.isBuffer(cdb) ? cdb : Buffer.from(cdb);
    const task = this.target.submit({
      nexus: n,
      lun: encodeLun(opts.lun ?? 0),
      cdb: c,
      tag: this.tag++,
      attribute: opts.attribute ?? TaskAttribute.Simple,
      dataOutBufferSize: opts.edtl ?? opts.dataOut?.length ?? 1 << 30,
    });
    const data = opts.dataOut ?? Buffer.alloc(task.dataOutLength);
    // Delivered in two pieces, as a transport may (immediate data, then Data-Out).
    const d = data.subarray(0, task.dataOutLength);
    const cut = Math.floor(d.length / 3);
    const out = await task.execute(d.length > 1 ? [d.subarray(0, cut), d.subarray(cut)] : [d]);
    if (!out) throw new Error('task was aborted');
    return { ...out, dataOutLength: task.dataOutLength, transferLength: task.transferLength };
  }

  /** Like run, after clearing the power-on unit attention of this nexus. */
  async ready(n: ITNexus): Promise<void> {
    await this.run(n, [0, 0, 0, 0, 0, 0]);
  }

  close(): Promise<void> {
    return this.volume.close();
  }
}

export function sense(o: Outcome): string {
  if (!o.sense) return `status ${o.status}`;
  const c = senseCodeOf(o.sense);
  return `${c.key.toString(16)}/${c.asc.toString(16).padStart(2, '0')}/${c.ascq.toString(16).padStart(2, '0')}`;
}

export function cdb16(op: number, lba: bigint, blocks: number, byte1 = 0): Buffer {
  const c = Buffer.alloc(16);
  c[0] = op;
  c[1] = byte1;
  c.writeBigUInt64BE(lba, 2);
  c.writeUInt32BE(blocks, 10);
  return c;
}

export function cdb10(op: number, lba: number, blocks: number, byte1 = 0): Buffer {
  const c = Buffer.alloc(10);
  c[0] = op;
  c[1] = byte1;
  c.writeUInt32BE(lba >>> 0, 2);
  c.writeUInt16BE(blocks, 7);
  return c;
}
