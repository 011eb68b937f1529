import type { Config, LunConfig } from '../config/config';
import { FileObjectStore } from '../storage/file-store';
import type { IoPool } from '../storage/io-pool';
import { LunLayout } from '../storage/layout';
import type { ObjectStore } from '../storage/object-store';
import { DEFAULT_RETRY, withRetry } from '../storage/retrying-store';
import { S3ObjectStore } from '../storage/s3-store';
import { storeStack } from '../storage/stack';
import type { StoreStats } from '../storage/store-stats';
import { withTimeLimit } from '../storage/time-limited-store';
import { systemClock } from '../util/clock';

/** One configured backend with its decorators, pool and counters. */
export interface Backend {
  readonly kind: 'file' | 's3';
  readonly store: ObjectStore;
  readonly pool: IoPool;
  readonly stats: StoreStats;
  readonly prefix: string;
  close(): Promise<void>;
}

/** Local disk operations get the same bounds as S3 requests (a hung NFS mount, a dying disk). */
const FILE_BOUNDS = { requestTimeoutMs: 10_000, retryDeadlineMs: DEFAULT_RETRY.deadlineMs };

function backend(
  kind: 'file' | 's3',
  raw: ObjectStore,
  concurrency: number,
  bounds: typeof FILE_BOUNDS,
  prefix: string,
  uploadsWhileReading?: number,
): Backend {
  const { store, pool, stats } = storeStack(raw, { concurrency, ...bounds, ...(uploadsWhileReading ? { uploadsWhileReading } : {}) });
  return { kind, store, pool, stats, prefix, close: () => store.close() };
}

export class Backends {
  private file: Backend | undefined;
  private s3: Backend | undefined;

  constructor(private readonly config: Config) {}

  /**
   * Opens the S3 backend if any LUN needs it and checks the bucket under the usual retry policy:
   * a transient failure is retried, a missing bucket or a refused key fails at once, and an S3
   * that stays unreachable fails after `s3.retryDeadline` with a message saying so. A reload
   * passes the new configuration: a first S3 LUN opens the backend then.
   */
  async open(config: Config = this.config): Promise<void> {
    const c = config.s3;
    if (!this.s3 && c && config.targets.some((t) => t.luns.some((l) => l.store === 's3'))) {
      const raw = new S3ObjectStore({
        endpoint: c.endpoint,
        region: c.region,
        bucket: c.bucket,
        pathStyle: c.pathStyle,
        // Above the pool's limit: the lease's control requests never wait for a socket behind data I/O.
        maxSockets: c.concurrency + 16,
        contentMd5: c.contentMd5,
        ...(c.serverSideEncryption ? { sse: c.serverSideEncryption } : {}),
      });
      const bounds = { requestTimeoutMs: c.requestTimeoutMs, retryDeadlineMs: c.retryDeadlineMs };
      try {
        await withRetry(
          'bucket check',
          () => withTimeLimit(systemClock, bounds.requestTimeoutMs, `bucket ${c.bucket}`, undefined, (signal) => raw.checkBucket({ signal })),
          { ...DEFAULT_RETRY, deadlineMs: bounds.retryDeadlineMs },
        );
      } catch (e) {
        await raw.close();
        throw new Error(`S3 bucket "${c.bucket}" at ${c.endpoint ?? 'AWS'}: ${(e as Error).message}`, { cause: e });
      }
      this.s3 = backend('s3', raw, c.concurrency, bounds, c.prefix, c.uploadsWhileReading);
    }
  }

  for(lun: LunConfig): { backend: Backend; layout: LunLayout } {
    if (lun.store === 's3') {
      if (!this.s3) throw new Error('S3 backend not open');
      return { backend: this.s3, layout: new LunLayout(this.s3.prefix, lun.snapshotOf?.lun ?? lun.name) };
    }
    this.file ??= backend('file', new FileObjectStore(this.config.dataDir), 32, FILE_BOUNDS, '');
    // A snapshot LUN reads the keys of the LUN it was taken of.
    return { backend: this.file, layout: new LunLayout('', lun.snapshotOf?.lun ?? lun.name) };
  }

  all(): Backend[] {
    return [this.file, this.s3].filter((b): b is Backend => b !== undefined);
  }

  async close(): Promise<void> {
    await Promise.all(this.all().map((b) => b.close()));
  }
}
