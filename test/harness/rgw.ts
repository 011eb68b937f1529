import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { S3ObjectStore, type S3StoreOptions } from '../../src/storage/s3-store';
import { mustRun } from './exec';
import { freePort } from './target';

const SCRIPT = path.resolve(__dirname, '../../../test/rgw/rgw.sh');

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

  static async start(): Promise<Rgw> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 's3tgt-rgw-'));
    const port = await freePort();
    const mon = await freePort();
    const rgw = new Rgw(dir, port);
    await mustRun(SCRIPT, ['start', dir, String(port), String(mon)], {
      timeoutMs: 120_000,
      env: { ACCESS_KEY: rgw.accessKeyId, SECRET_KEY: rgw.secretAccessKey },
    });
    return rgw;
  }

  /** Environment for an s3tgt process: credentials through the SDK default chain. */
  env(): NodeJS.ProcessEnv {
    return { AWS_ACCESS_KEY_ID: this.accessKeyId, AWS_SECRET_ACCESS_KEY: this.secretAccessKey, AWS_REGION: 'us-east-1' };
  }

  async createBucket(name: string): Promise<void> {
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    const c = new S3Client({
      endpoint: this.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: this.accessKeyId, secretAccessKey: this.secretAccessKey },
    });
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
