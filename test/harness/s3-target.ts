import { listAll } from '../../src/storage/object-store';
import type { Rgw } from './rgw';
import { TargetProcess } from './target';

export interface S3TargetOptions {
  /** The S3 endpoint s3tgt talks to (RGW itself, or a fault proxy in front of it). */
  readonly endpoint?: string;
  readonly bucket: string;
  readonly cache?: string;
  readonly extraS3?: string;
  readonly extraYaml?: string;
  readonly size?: string;
  readonly logLevel?: string;
  /**
   * The lease timing (YAML). Short by default: a test that kills the target restarts it
   * within ttl + ttl/4 (7.5 s) instead of the 25 s of the production default.
   */
  readonly lease?: string;
  /** More keys of LUN 0 (YAML, one per line, indented like its `size`). */
  readonly lun0Yaml?: string;
  /** More LUNs of the test target (YAML list items, indented like LUN 0). */
  readonly moreLunsYaml?: string;
  /** Extra arguments to node (e.g. the CPU profiler's). */
  readonly nodeArgs?: readonly string[];
}

/** An s3tgt process serving LUN 0 ("disk0", 1 GiB by default) from an RGW bucket. */
export function s3Target(rgw: Rgw, o: S3TargetOptions): TargetProcess {
  return new TargetProcess({
    env: rgw.env(),
    ...(o.nodeArgs ? { nodeArgs: o.nodeArgs } : {}),
    ...(o.logLevel ? { logLevel: o.logLevel } : {}),
    extraYaml: `s3:
  endpoint: ${o.endpoint ?? rgw.endpoint}
  bucket: ${o.bucket}
  prefix: luns
  ${o.extraS3 ?? ''}
lease: ${o.lease ?? '{ ttl: 6s, renewInterval: 1s }'}
${o.extraYaml ?? ''}`,
    lunsYaml: `      - lun: 0
        name: disk0
        size: ${o.size ?? '1GiB'}
        store: s3
        cache: ${o.cache ?? '{ size: 64MiB, flushDelay: 50ms }'}
${o.lun0Yaml ?? ''}
${o.moreLunsYaml ?? ''}`,
  });
}

/** Every object under the bucket's LUN prefix, with sizes. */
export async function listObjects(rgw: Rgw, bucket: string, prefix = 'luns/disk0/'): Promise<Map<string, number>> {
  const store = rgw.store(bucket);
  try {
    const out = new Map<string, number>();
    for await (const e of listAll(store, prefix)) out.set(e.key, e.size);
    return out;
  } finally {
    await store.close();
  }
}
