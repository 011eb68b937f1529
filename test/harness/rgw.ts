import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { S3ObjectStore, type S3StoreOptions } from '../../src/storage/s3-store';
import { mustRun, run } from './exec';
import { freePort } from './target';

const SCRIPT = path.resolve(__dirname, '../../../test/rgw/rgw.sh');
const START_ATTEMPTS = 2;
const START_TIMEOUT_S = 90;

/**
 * A real S3 server for a test file: a fresh single-node Ceph cluster with a RADOS Gateway on
 * loopback (test/rgw/rgw.sh), started in a few seconds and removed afterwards.
 */
export class Rgw {
  readonly accessKeyId = 's3tgt-test';
  readonly secretAccessKey = 's3tgt-test-secret';
  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /**
   * Starts a gateway; a start that fails or hangs (rgw.sh gives up after START_TIMEOUT and
   * prints its logs) is retried once from scratch with fresh ports: Ceph's start-up is not what
   * the tests examine, and one hung monitor start failed a whole CI run (2026-12-04).
   */
  static async start(): Promise<Rgw> {
    const failures: string[] = [];
    for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
      const dir = mkdtempSync(path.join(os.tmpdir(), 's3tgt-rgw-'));
      const rgw = new Rgw(dir, await freePort());
      const mon = await freePort();
      const r = await run(SCRIPT, ['start', dir, String(rgw.port), String(mon)], {
        timeoutMs: (START_TIMEOUT_S + 15) * 1000,
        env: { ACCESS_KEY: rgw.accessKeyId, SECRET_KEY: rgw.secretAccessKey, START_TIMEOUT: String(START_TIMEOUT_S) },
      });
      if (r.code === 0) return rgw;
      failures.push(`attempt ${attempt}: rgw.sh start exited ${r.code}\n${r.stderr}`);
      process.stderr.write(`RGW start failed (attempt ${attempt} of ${START_ATTEMPTS}):\n${r.stderr}\n`);
      await rgw.stop().catch(() => undefined);
    }
    throw new Error(`RGW did not start:\n${failures.join('\n')}`);
  }

  /** Environment for an s3tgt process: credentials through the SDK default chain. */
  env(): NodeJS.ProcessEnv {
    return { AWS_ACCESS_KEY_ID: this.accessKeyId, AWS_SECRET_ACCESS_KEY: this.secretAccessKey, AWS_REGION: 'us-east-1' };
  }

  /** A raw SDK client of this gateway (the caller destroys it): what s3tgt's store does not expose. */
  client(): S3Client {
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    return new S3Client({
      endpoint: this.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: this.accessKeyId, secretAccessKey: this.secretAccessKey },
    });
  }

  async createBucket(name: string): Promise<void> {
    const c = this.client();
    try {
      await c.send(new CreateBucketCommand({ Bucket: name }));
    } finally {
      c.destroy();
    }
  }

  store(bucket: string, over: Partial<S3StoreOptions> = {}): S3ObjectStore {
    return new S3ObjectStore({
      endpoint: this.endpoint,
      region: 'us-east-1',
      bucket,
      pathStyle: true,
      maxSockets: 64,
      contentMd5: true,
      credentials: { accessKeyId: this.accessKeyId, secretAccessKey: this.secretAccessKey },
      ...over,
    });
  }

  async stop(): Promise<void> {
    await mustRun(SCRIPT, ['stop', this.dir], { timeoutMs: 60_000 });
  }
}
