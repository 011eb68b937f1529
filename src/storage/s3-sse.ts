import { createHash } from 'node:crypto';

/**
 * Server-side encryption the bucket's server does (docs/data-at-rest.md), for users who prefer
 * it to s3tgt's own (`encryption:` per LUN) or want both:
 * - SSE-S3: the server's keys (x-amz-server-side-encryption: AES256);
 * - SSE-KMS: a KMS key (aws:kms, with its id, or the bucket's default key);
 * - SSE-C: a 256-bit key we send with every request that reads or writes an object, which the
 *   server does not keep (S3 and RGW require HTTPS for it; RGW's `rgw crypt require ssl`).
 * It applies to every object of the backend: chunks, records, the lease.
 */
export type ServerSideEncryption =
  | { readonly type: 'SSE-S3' }
  | { readonly type: 'SSE-KMS'; readonly kmsKeyId?: string }
  | { readonly type: 'SSE-C'; readonly key: Buffer };

interface SseCustomer {
  readonly SSECustomerAlgorithm: 'AES256';
  readonly SSECustomerKey: string;
  readonly SSECustomerKeyMD5: string;
}

/** The parameters of a request that writes an object (PutObject, CopyObject's destination). */
export function sseForWrite(sse: ServerSideEncryption | undefined): Record<string, string> {
  switch (sse?.type) {
    case undefined:
      return {};
    case 'SSE-S3':
      return { ServerSideEncryption: 'AES256' };
    case 'SSE-KMS':
      return { ServerSideEncryption: 'aws:kms', ...(sse.kmsKeyId ? { SSEKMSKeyId: sse.kmsKeyId } : {}) };
    case 'SSE-C':
      return { ...customer(sse.key) };
  }
}

/** The parameters of a request that reads an object (GetObject, HeadObject): SSE-C's key only. */
export function sseForRead(sse: ServerSideEncryption | undefined): Record<string, string> {
  return sse?.type === 'SSE-C' ? { ...customer(sse.key) } : {};
}

/** CopyObject's source: an SSE-C source is read with the key too. */
export function sseForCopySource(sse: ServerSideEncryption | undefined): Record<string, string> {
  if (sse?.type !== 'SSE-C') return {};
  const c = customer(sse.key);
  return {
    CopySourceSSECustomerAlgorithm: c.SSECustomerAlgorithm,
    CopySourceSSECustomerKey: c.SSECustomerKey,
    CopySourceSSECustomerKeyMD5: c.SSECustomerKeyMD5,
  };
}

function customer(key: Buffer): SseCustomer {
  return {
    SSECustomerAlgorithm: 'AES256',
    SSECustomerKey: key.toString('base64'),
    SSECustomerKeyMD5: createHash('md5').update(key).digest('base64'),
  };
}
