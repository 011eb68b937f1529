import { createHash } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import { Readable } from 'node:stream';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { abortReason } from '../util/clock';
import { StorageError } from './errors';
import type { CopyOptions, GetResult, ListPage, ObjectMeta, ObjectStore, PutOptions, RequestOptions } from './object-store';
import { type ServerSideEncryption, sseForCopySource, sseForRead, sseForWrite } from './s3-sse';

export interface S3StoreOptions {
  /** Omit for AWS; set for RGW, MinIO and friends. */
  readonly endpoint?: string;
  readonly region: string;
  readonly bucket: string;
  readonly pathStyle: boolean;
  /** Keep-alive sockets to the endpoint (at least the I/O pool's concurrency). */
  readonly maxSockets: number;
  /**
   * Also send Content-MD5 with every PUT. Not needed with SigV4 signed payloads (the default),
   * whose x-amz-content-sha256 the server checks: RGW answers XAmzContentSHA256Mismatch to a
   * body damaged on the way. Useful for servers that accept unsigned payloads.
   */
  readonly contentMd5: boolean;
  /** Static credentials (tests); otherwise the AWS SDK default chain (env, profile, IMDS). */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** Server-side encryption of every object (s3-sse.ts); none by default. */
  readonly sse?: ServerSideEncryption;
}

/** The SDK's per-call options: an abort signal cancels the HTTP request itself. */
function sendOptions(ro?: RequestOptions): { abortSignal?: AbortSignal } {
  return ro?.signal ? { abortSignal: ro.signal } : {};
}

/** Unquoted ETag: RGW compares If-Match on PUT against the bare value. */
const etagOf = (v: string | undefined): string => (v ?? '').replace(/^"|"$/g, '');

function statusOf(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

function nameOf(e: unknown): string {
  const o = e as { name?: unknown; Code?: unknown };
  return String(o.Code ?? o.name ?? '');
}

/**
 * Classifies an SDK or socket error (by status and code, not by class name: the SDK reports a
 * reset as a TimeoutError with code ECONNRESET).
 */
export function classify(e: unknown, what: string): StorageError {
  if (e instanceof StorageError) return e;
  const status = statusOf(e);
  const name = nameOf(e);
  const code = String((e as { code?: unknown }).code ?? '');
  const msg = `${what}: ${name || code || 'error'}${status ? ` (HTTP ${status})` : ''}: ${(e as Error).message ?? String(e)}`;
  if (status === 412 || name === 'PreconditionFailed') return new StorageError('precondition', msg, { cause: e });
  if (status === 404 || name === 'NoSuchKey' || name === 'NotFound') {
    return new StorageError(name === 'NoSuchBucket' ? 'invalid' : 'not-found', msg, { cause: e });
  }
  if (status === 403 || status === 401 || /AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|NoSuchBucket|InvalidBucketName/.test(name)) {
    return new StorageError('invalid', msg, { cause: e });
  }
  // A 400 is permanent unless it says the body was damaged or slow on the way.
  if (status === 400 && !/BadDigest|XAmzContentSHA256Mismatch|RequestTimeout|IncompleteBody/.test(name)) {
    return new StorageError('invalid', msg, { cause: e });
  }
  // 5xx, throttling, timeouts, resets, refused connections, a body cut mid-stream, and a
  // damaged body the server refused (BadDigest): worth trying again.
  return new StorageError('unavailable', msg, { cause: e });
}

/**
 * The S3 backend on @aws-sdk/client-s3. Settings that real S3-compatible servers need (see
 * docs): checksums only when required (RGW refuses aws-chunked trailers), Buffer bodies,
 * path-style addressing, keep-alive sockets, and no SDK retries: the RetryingStore above it
 * retries everything, including body read failures the SDK does not see.
 */
export class S3ObjectStore implements ObjectStore {
  readonly description: string;
  private readonly client: S3Client;
  private readonly agent: http.Agent;
  /** The server-side encryption parameters of each kind of request, made once (SSE-C: key and MD5). */
  private readonly sse: {
    readonly read: Record<string, string>;
    readonly write: Record<string, string>;
    readonly copySource: Record<string, string>;
  };

  constructor(private readonly opts: S3StoreOptions) {
    // Node 20 is supported on purpose (package.json pins an SDK release that runs on it).
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.sse = { read: sseForRead(opts.sse), write: sseForWrite(opts.sse), copySource: sseForCopySource(opts.sse) };
    this.description = `s3://${opts.bucket}${opts.endpoint ? ` at ${opts.endpoint}` : ''}`;
    const secure = opts.endpoint ? opts.endpoint.startsWith('https:') : true;
    this.agent = secure
      ? new https.Agent({ keepAlive: true, maxSockets: opts.maxSockets, keepAliveMsecs: 1000 })
      : new http.Agent({ keepAlive: true, maxSockets: opts.maxSockets, keepAliveMsecs: 1000 });
    this.client = new S3Client({
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      region: opts.region,
      forcePathStyle: opts.pathStyle,
      maxAttempts: 1,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      requestHandler: new NodeHttpHandler({
        ...(secure ? { httpsAgent: this.agent as https.Agent } : { httpAgent: this.agent }),
        // Each attempt's whole time limit (headers and body) is TimeLimitedStore's, through the
        // abort signal: the handler's own requestTimeout only logs a warning.
        connectionTimeout: 3000,
      }),
    });
  }

  /**
   * One attempt at the bucket: an `invalid` StorageError when it is missing or not ours, an
   * `unavailable` one when S3 does not answer (the caller retries under the usual policy).
   */
  async checkBucket(ro?: RequestOptions): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.opts.bucket }), sendOptions(ro));
    } catch (e) {
      const status = statusOf(e);
      if (status === 404) throw new StorageError('invalid', `bucket "${this.opts.bucket}" does not exist`, { cause: e });
      throw classify(e, `bucket "${this.opts.bucket}"`);
    }
  }

  async get(key: string, range?: { offset: number; length: number }, ro?: RequestOptions): Promise<GetResult | null> {
    try {
      const res = await this.client.send(
        new GetObjectCommand({
          Bucket: this.opts.bucket,
          Key: key,
          ...(range ? { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` } : {}),
          ...this.sse.read,
        }),
        sendOptions(ro),
      );
      const expected = res.ContentLength ?? 0;
      const into = ro?.bodyBuffer?.(expected) ?? Buffer.allocUnsafe(expected);
      const body = await readBody(res.Body as AsyncIterable<Uint8Array> | undefined, into, key, ro?.signal);
      // Content-Range "bytes a-b/total" gives the object size for a ranged read.
      const total = res.ContentRange ? Number(res.ContentRange.split('/')[1]) : expected;
      return { body, meta: { size: Number.isFinite(total) ? total : expected, etag: etagOf(res.ETag), metadata: res.Metadata ?? {} } };
    } catch (e) {
      const err = classify(e, `GET ${key}`);
      if (err.kind === 'not-found') return null;
      // An unsatisfiable range on a zero-length object is an empty read, not an error.
      if (statusOf(e) === 416) return { body: Buffer.alloc(0), meta: { size: 0, etag: '', metadata: {} } };
      throw err;
    }
  }

  async head(key: string, ro?: RequestOptions): Promise<ObjectMeta | null> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.opts.bucket, Key: key, ...this.sse.read }), sendOptions(ro));
      return { size: res.ContentLength ?? 0, etag: etagOf(res.ETag), metadata: res.Metadata ?? {} };
    } catch (e) {
      const err = classify(e, `HEAD ${key}`);
      if (err.kind === 'not-found') return null;
      throw err;
    }
  }

  async put(key: string, body: Buffer, opts: PutOptions = {}): Promise<{ etag: string }> {
    try {
      const res = await this.client.send(
        new PutObjectCommand({
          Bucket: this.opts.bucket,
          Key: key,
          Body: body,
          ContentLength: body.length,
          ...(this.opts.contentMd5 ? { ContentMD5: createHash('md5').update(body).digest('base64') } : {}),
          ...(opts.metadata ? { Metadata: { ...opts.metadata } } : {}),
          ...(opts.ifNoneMatch ? { IfNoneMatch: opts.ifNoneMatch } : {}),
          ...(opts.ifMatch !== undefined ? { IfMatch: opts.ifMatch } : {}),
          ...this.sse.write,
        }),
        sendOptions(opts),
      );
      return { etag: etagOf(res.ETag) };
    } catch (e) {
      throw classify(e, `PUT ${key}`);
    }
  }

  /**
   * CopyObject within the bucket, metadata copied (MetadataDirective COPY). A missing source
   * is null. S3 may answer 200 with an error in the body of a copy; the SDK turns that into an
   * exception, classified like any other.
   */
  async copy(from: string, to: string, opts: CopyOptions = {}): Promise<{ etag: string } | null> {
    try {
      const res = await this.client.send(
        new CopyObjectCommand({
          Bucket: this.opts.bucket,
          Key: to,
          CopySource: `${this.opts.bucket}/${from.split('/').map(encodeURIComponent).join('/')}`,
          MetadataDirective: 'COPY',
          ...this.sse.copySource,
          ...this.sse.write,
        }),
        sendOptions(opts),
      );
      return { etag: etagOf(res.CopyObjectResult?.ETag) };
    } catch (e) {
      const err = classify(e, `COPY ${from} to ${to}`);
      if (err.kind === 'not-found') return null;
      throw err;
    }
  }

  async delete(key: string, ro?: RequestOptions): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.opts.bucket, Key: key }), sendOptions(ro));
    } catch (e) {
      const err = classify(e, `DELETE ${key}`);
      if (err.kind !== 'not-found') throw err;
    }
  }

  /** DeleteObjects takes at most 1000 keys; a per-key failure fails the whole call. */
  async deleteMany(keys: readonly string[], ro?: RequestOptions): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      try {
        const res = await this.client.send(
          new DeleteObjectsCommand({ Bucket: this.opts.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
          sendOptions(ro),
        );
        const errors = (res.Errors ?? []).filter((x) => x.Code !== 'NoSuchKey');
        if (errors.length > 0) {
          throw new StorageError(
            'unavailable',
            `DeleteObjects: ${errors.length} keys failed, first ${errors[0].Key}: ${errors[0].Code} ${errors[0].Message}`,
          );
        }
      } catch (e) {
        throw classify(e, `DeleteObjects (${batch.length} keys)`);
      }
    }
  }

  async listPage(prefix: string, token: string | undefined, ro?: RequestOptions): Promise<ListPage> {
    try {
      const res = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.opts.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }),
        sendOptions(ro),
      );
      // ListObjectsV2 quotes the ETag like every other answer: unquoted here, as If-Match wants it.
      const entries = (res.Contents ?? []).map((o) => ({ key: o.Key ?? '', size: o.Size ?? 0, ...(o.ETag ? { etag: etagOf(o.ETag) } : {}) }));
      return res.IsTruncated && res.NextContinuationToken ? { entries, next: res.NextContinuationToken } : { entries };
    } catch (e) {
      throw classify(e, `LIST ${prefix}`);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
    this.agent.destroy();
  }
}

/**
 * Reads a response body into one buffer. The SDK resolves `send` before the body arrives, and
 * a body cut mid-stream (server died, connection reset) throws here or ends short: both are
 * transient failures, which the SDK itself would not retry. The request's signal (its time
 * limit, the caller's abort) destroys a body that stalls.
 */
async function readBody(body: AsyncIterable<Uint8Array> | undefined, out: Buffer, key: string, signal?: AbortSignal): Promise<Buffer> {
  if (!body) return Buffer.alloc(0);
  const expected = out.length;
  let got = 0;
  const take = (chunk: Uint8Array): void => {
    if (got + chunk.length > expected) throw new StorageError('unavailable', `GET ${key}: body longer than Content-Length`);
    out.set(chunk, got);
    got += chunk.length;
  };
  try {
    if (signal?.aborted) throw abortReason(signal);
    if (body instanceof Readable) {
      // Event-driven: the async iterator of a Node stream costs a promise per chunk.
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          body.destroy();
          reject(abortReason(signal as AbortSignal));
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        body.once('close', () => signal?.removeEventListener('abort', onAbort));
        body.on('data', (chunk: Buffer) => {
          try {
            take(chunk);
          } catch (e) {
            body.destroy();
            reject(e);
          }
        });
        body.once('end', resolve);
        body.once('error', reject);
        body.once('close', () => resolve());
      });
    } else {
      for await (const chunk of body) take(chunk);
    }
  } catch (e) {
    if (signal?.aborted) throw abortReason(signal);
    throw classify(e, `GET ${key} (reading the body)`);
  }
  if (got !== expected) throw new StorageError('unavailable', `GET ${key}: body cut after ${got} of ${expected} bytes`);
  return out;
}
