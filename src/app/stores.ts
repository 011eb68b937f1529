import type { Config, LunConfig } from '../config/config';
import { FileObjectStore } from '../storage/file-store';
import { InstrumentedStore } from '../storage/instrumented-store';
import { IoPool } from '../storage/io-pool';
import { LunLayout } from '../storage/layout';
import type { ObjectStore } from '../storage/object-store';
import { PooledStore } from '../storage/pooled-store';
import { DEFAULT_RETRY, RetryingStore } from '../storage/retrying-store';
import { S3ObjectStore } from '../storage/s3-store';
import { StoreStats } from '../storage/store-stats';

/** One configured backend with its decorators, pool and counters. */
export interface Backend {
  readonly kind: 'file' | 's3';
  readonly store: ObjectStore;
  readonly pool: IoPool;
  readonly stats: StoreStats;
  readonly prefix: string;
  close(): Promise<void>;
}

/**
 * Stacks the decorators (SlateDB style): retries outside the pool (a backoff does not hold a
 * slot), the bounded pool with its lanes, then instrumentation right at the wire.
 */
function stack(kind: 'file' | 's3', raw: ObjectStore, concurrency: number, deadlineMs: number, prefix: string): Backend {
  const stats = new StoreStats();
  const pool = new IoPool({ concurrency, flushShare: 0.6, backgroundShare: 0.2 });
  const store = new RetryingStore(new PooledStore(new InstrumentedStore(raw, stats), pool), { ...DEFAULT_RETRY, deadlineMs }, stats);
  return { kind, store, pool, stats, prefix, close: () => store.close() };
}

export class Backends {
  private file: Backend | undefined;
  private s3: Backend | undefined;

  constructor(private readonly config: Config) {}

  /**
   * Opens the S3 backend if any LUN needs it and checks the bucket (fail fast, clear message).
   * A reload passes the new configuration: a first S3 LUN opens the backend then.
   */
  async open(config: Config = this.config): Promise<void> {
    const c = config.s3;
    if (!this.s3 && c && config.targets.some((t) => t.luns.some((l) => l.store === 's3'))) {
      const raw = new S3ObjectStore({
        endpoint: c.endpoint,
        region: c.region,
        bucket: c.bucket,
        pathStyle: c.pathStyle,
        maxSockets: c.concurrency,
        requestTimeoutMs: c.requestTimeoutMs,
        contentMd5: c.contentMd5,
      });
      await raw.checkBucket();
      this.s3 = stack('s3', raw, c.concurrency, c.retryDeadlineMs, c.prefix);
    }
  }

  for(lun: LunConfig): { backend: Backend; layout: LunLayout } {
    if (lun.store === 's3') {
      if (!this.s3) throw new Error('S3 backend not open');
      return { backend: this.s3, layout: new LunLayout(this.s3.prefix, lun.name) };
    }
    this.file ??= stack('file', new FileObjectStore(this.config.dataDir), 32, DEFAULT_RETRY.deadlineMs, '');
    return { backend: this.file, layout: new LunLayout('', lun.name) };
  }

  all(): Backend[] {
    return [this.file, this.s3].filter((b): b is Backend => b !== undefined);
  }

  async close(): Promise<void> {
    await Promise.all(this.all().map((b) => b.close()));
  }
}
