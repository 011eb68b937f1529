import { ChunkVolume, type ChunkVolumeOptions } from '../../src/storage/chunk-volume';
import { SEGMENT_SIZE } from '../../src/storage/integrity';
import { LunLayout } from '../../src/storage/layout';
import { Lease, LeaseError, type LeaseTiming } from '../../src/storage/lease';
import { type HostIdentity, parseLeaseRecord } from '../../src/storage/lease-record';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import { storeStack } from '../../src/storage/stack';
import { createVolume, readVolumeInfo } from '../../src/storage/volume-meta';
import type { Rng } from '../fuzz/rng';
import { FailingStore } from '../lib/failing-store';
import { type VirtualClock, VirtualScheduler } from '../lib/virtual-clock';

export const MiB = 1024 * 1024;
export const LAYOUT = new LunLayout('sim', 'lun');
export const TIMING: LeaseTiming = { ttlMs: 6_000, renewEveryMs: 1_000, marginMs: 1_500 };
/** Store bounds of the simulated server (short, so virtual time moves on). */
export const BOUNDS = { requestTimeoutMs: 2_000, retryDeadlineMs: 4_000 };
/** Requests of a killed process still in the kernel's buffers land within this. */
const LINGER_MS = 50;

/** One s3tgt process: its clock, its network to S3 (faults), its store stack, lease and volume. */
export interface SimProcess {
  readonly name: string;
  readonly pid: number;
  readonly clock: VirtualClock;
  readonly net: FailingStore;
  readonly store: ReturnType<typeof storeStack>['store'];
  lease?: Lease;
  volume?: ChunkVolume;
  killedAt?: number;
}

/**
 * The simulated world: virtual time, one S3 (a memory store) that every process reaches
 * through its own failing network, and the fencing oracle: every mutation that lands must come
 * from the process the lease object names at that moment.
 */
export class World {
  readonly sched = new VirtualScheduler();
  readonly s3 = new MemoryObjectStore();
  private readonly storeClock = this.sched.clock('s3');
  readonly violations: string[] = [];
  private readonly dead = new Set<number>();
  private pids = 100;

  /** `conditional`: volumes write chunks conditionally (a cluster's fencing, docs/ha.md). */
  constructor(
    readonly rng: Rng,
    readonly conditional = false,
    /** The LUN's checksum segment (volume.json). */
    readonly segmentSize = SEGMENT_SIZE,
  ) {}

  identity(pid: number): HostIdentity {
    return { host: 'sim-host', bootId: 'sim-boot', pid, pidStart: String(pid), isGone: (p) => this.dead.has(p) };
  }

  spawn(): SimProcess {
    const pid = this.pids++;
    const clock = this.sched.clock(`p${pid}`);
    const rng = this.rng;
    const proc: SimProcess = {
      name: `p${pid}`,
      pid,
      clock,
      net: undefined as unknown as FailingStore,
      store: undefined as unknown as SimProcess['store'],
    };
    const net = new FailingStore(this.s3, {
      clock,
      storeClock: this.storeClock,
      random: () => rng.u32() / 0x100000000,
      latencyMs: () => 1 + rng.int(20),
      onLand: (op, key) => this.check(proc, op, key),
    });
    const { store } = storeStack(net, { concurrency: 16, ...BOUNDS, clock, random: () => rng.u32() / 0x100000000 });
    Object.assign(proc, { net, store });
    return proc;
  }

  /** The oracle, at the moment a mutation lands. False: it does not land (a dead process's late bytes). */
  private check(p: SimProcess, op: string, key: string): boolean {
    if (p.killedAt !== undefined && this.sched.now > p.killedAt + LINGER_MS) return false;
    if (key.endsWith('/lease.json')) return true;
    const raw = this.s3.peek(LAYOUT.leaseKey);
    const holder = raw ? parseLeaseRecord(raw, LAYOUT.leaseKey).holder : undefined;
    if (!p.lease || holder !== p.lease.holder) {
      this.violations.push(
        `t=${this.sched.now}: ${p.name} landed ${op} ${key} while the lease is ${holder ? `held by ${holder.slice(0, 8)}` : 'free'}`,
      );
    }
    return true;
  }

  /** Opens the LUN in a new process, as `serve` does: lease, volume.json, volume. */
  async open(p: SimProcess, sizeBytes: number, options: ChunkVolumeOptions, limitMs = 120_000): Promise<void> {
    let lease: Lease | undefined;
    // A renewal that was in flight when the old holder stopped lands while we watch and looks
    // like a live holder: like an operator, try again (a few times).
    for (let attempt = 0; !lease; attempt++) {
      try {
        lease = await this.run(Lease.acquire(p.store, LAYOUT.leaseKey, 'serve', TIMING, { clock: p.clock, identity: this.identity(p.pid) }), limitMs);
      } catch (e) {
        if (!(e instanceof LeaseError) || attempt >= 3) throw e;
      }
    }
    p.lease = lease;
    const gated = lease.gate.bind(p.store);
    const info = (await this.run(readVolumeInfo(p.store, LAYOUT))) ?? (await this.run(createVolume(gated, LAYOUT, sizeBytes, 512, this.segmentSize)));
    p.volume = new ChunkVolume(p.store, LAYOUT, info, options, { clock: p.clock, gate: lease.gate, conditionalWrites: this.conditional });
  }

  /** kill -9: its timers never run again; requests already sent land only within LINGER_MS. */
  kill(p: SimProcess): void {
    p.clock.kill();
    p.killedAt = this.sched.now;
    this.dead.add(p.pid);
  }

  /** Runs virtual time until `p` settles; a rejection is thrown, a hang is a failure. */
  async run<T>(p: Promise<T>, limitMs = 120_000): Promise<T> {
    const r = await this.sched.settle(p, limitMs);
    if (r === 'pending') throw new SimFailure(`hang: still pending after ${limitMs} ms of virtual time`);
    if (!r.ok) throw r.error;
    return r.value;
  }
}

/** A property of the storage core does not hold. */
export class SimFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SimFailure';
  }
}
