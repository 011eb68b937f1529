import { Backends } from '../app/stores';
import type { Config, LunConfig } from '../config/config';
import { formatSize } from '../config/units';
import { StorageError } from '../storage/errors';
import { type LeaseRecord, readLease } from '../storage/lease';
import { listAll } from '../storage/object-store';
import { type Snapshot, SnapshotCatalog } from '../storage/snapshots/catalog';
import { forgetClone } from '../storage/snapshots/clones';
import { listSnapshots } from '../storage/snapshots/operations';
import type { VolumeInfo } from '../storage/volume';
import { createVolume, readVolumeInfo, segmentSizeFor, segmentSizeOf } from '../storage/volume-meta';
import { adminPost, lunSamples, serverMetrics } from './admin-client';
import { CliError } from './errors';
import { findLun, withLun } from './offline';

export interface LunStatus {
  readonly name: string;
  readonly target: string;
  readonly lun: number;
  readonly store: string;
  readonly configuredSize: number;
  /** volume.json, or null when the LUN does not exist in the store yet. */
  readonly volume: VolumeInfo | null;
  readonly lease: LeaseRecord | null;
  /** Chunk objects stored (only with `details`). */
  readonly chunks?: number;
  readonly storedBytes?: number;
  /** Snapshots, oldest first, with the space each holds (only with `details`). */
  readonly snapshots?: ReadonlyArray<Snapshot & { readonly preservedChunks: number; readonly preservedBytes: number }>;
  /** Clones made of its snapshots (only with `details`). */
  readonly clones?: readonly string[];
  /** How its chunks are stored: compression, encryption key (docs/data-at-rest.md). */
  readonly encoding: string;
  /** What the stored bytes cost a month at `s3.prices` (S3 LUNs, with `details`). */
  readonly storageDollarsPerMonth?: number;
  /** From the running server, when it serves the LUN: requests by class since it started, and bytes. */
  readonly traffic?: {
    readonly requests: Record<string, number>;
    readonly sentBytes: number;
    readonly receivedBytes: number;
    readonly dollarsPerMonth: number;
  };
}

/** `s3tgt lun list` / `lun info`: read-only, no lease needed. */
export async function lunStatus(config: Config, names: readonly string[] | undefined, details: boolean): Promise<LunStatus[]> {
  const backends = new Backends(config);
  await backends.open();
  const metrics = details ? await serverMetrics(config, 3_000) : undefined;
  try {
    const out: LunStatus[] = [];
    for (const t of config.targets) {
      for (const l of t.luns) {
        if (names && !names.includes(l.name)) continue;
        const { backend, layout } = backends.for(l);
        const [volume, lease] = await Promise.all([readVolumeInfo(backend.store, layout), readLease(backend.store, layout.leaseKey)]);
        let chunks: number | undefined;
        let storedBytes: number | undefined;
        let snapshots: LunStatus['snapshots'];
        let clones: string[] | undefined;
        if (details) {
          chunks = 0;
          storedBytes = 0;
          for await (const e of listAll(backend.store, layout.chunksPrefix)) {
            // Zero-length objects are a clone's hole markers, not allocated chunks.
            if (e.size === 0) continue;
            chunks++;
            storedBytes += e.size;
          }
          snapshots = await listSnapshots(backend.store, layout);
          clones = [];
          for await (const e of listAll(backend.store, layout.clonesPrefix)) {
            const clone = layout.cloneNameOf(e.key);
            if (clone) clones.push(clone);
          }
        }
        const prices = l.store === 's3' ? config.s3?.prices : undefined;
        out.push({
          name: l.name,
          encoding: encodingOf(l),
          ...(details && prices && storedBytes !== undefined ? { storageDollarsPerMonth: (storedBytes / 1e9) * prices.storageGbMonth } : {}),
          ...(details && metrics ? trafficOf(metrics, l.name) : {}),
          target: t.iqn,
          lun: l.lun,
          store: backend.store.description,
          configuredSize: l.sizeBytes,
          volume,
          lease,
          ...(details ? { chunks, storedBytes, snapshots, clones } : {}),
        });
      }
    }
    return out;
  } finally {
    await backends.close();
  }
}

export function formatList(rows: readonly LunStatus[]): string {
  const lines = ['NAME                 TARGET/LUN                                 SIZE       BLOCK  STATE'];
  for (const r of rows) {
    const state = !r.volume ? 'not created' : r.lease ? `in use (${r.lease.purpose} on ${r.lease.host} pid ${r.lease.pid})` : 'idle';
    lines.push(
      [
        r.name.padEnd(20),
        `${r.target}/${r.lun}`.padEnd(42),
        formatSize(r.volume?.sizeBytes ?? r.configuredSize).padEnd(10),
        String(r.volume?.logicalBlockSize ?? '-').padEnd(6),
        state,
      ].join(' '),
    );
  }
  return lines.join('\n');
}

function encodingOf(l: LunConfig): string {
  const parts = [l.compression && l.compression !== 'off' ? `${l.compression} compression` : 'no compression'];
  parts.push(
    l.encryption
      ? `AES-256-GCM with key "${l.encryption.current.id}"${l.encryption.previous.length ? ` (also reads ${l.encryption.previous.map((k) => `"${k.id}"`).join(', ')})` : ''}`
      : 'not encrypted',
  );
  return parts.join(', ');
}

function trafficOf(metrics: string, lun: string): Pick<LunStatus, 'traffic'> {
  const requests = Object.fromEntries(lunSamples(metrics, 's3tgt_lun_store_requests_total', lun, 'request'));
  if (Object.keys(requests).length === 0) return {};
  const one = (m: string): number => lunSamples(metrics, m, lun).get('') ?? 0;
  let dollars = 0;
  for (const v of lunSamples(metrics, 's3tgt_lun_estimated_monthly_cost_dollars', lun, 'component').values()) dollars += v;
  return {
    traffic: {
      requests,
      sentBytes: one('s3tgt_lun_store_sent_bytes_total'),
      receivedBytes: one('s3tgt_lun_store_received_bytes_total'),
      dollarsPerMonth: dollars,
    },
  };
}

export function formatInfo(r: LunStatus): string {
  const v = r.volume;
  const lines = [
    `name:          ${r.name}`,
    `exported as:   ${r.target} LUN ${r.lun}`,
    `store:         ${r.store}`,
    `configured:    ${formatSize(r.configuredSize)}`,
  ];
  if (!v) lines.push('state:         not created (serve or "s3tgt lun create" creates it)');
  else {
    lines.push(
      `size:          ${formatSize(v.sizeBytes)} (${v.sizeBytes} bytes, ${v.sizeBytes / v.logicalBlockSize} blocks of ${v.logicalBlockSize})`,
      `uuid:          ${v.uuid}`,
      `created:       ${v.created}`,
      `checksums:     CRC32C per ${formatSize(segmentSizeOf(v))} segment`,
      `encoding:      ${r.encoding}`,
    );
    if (r.chunks !== undefined) {
      const pct = ((r.chunks * v.chunkSize * 100) / v.sizeBytes).toFixed(1);
      lines.push(`allocated:     ${r.chunks} chunks of 1 MiB (${pct} % of the LUN), ${formatSize(r.storedBytes ?? 0)} stored`);
      if (r.storageDollarsPerMonth !== undefined) lines.push(`storage cost:  $${r.storageDollarsPerMonth.toFixed(2)} a month at s3.prices`);
    }
    if (r.traffic) {
      const t = r.traffic;
      lines.push(
        `requests:      ${Object.entries(t.requests)
          .map(([k, n]) => `${k} ${n}`)
          .join(', ')} since the server started; ${formatSize(t.sentBytes)} sent, ${formatSize(t.receivedBytes)} received`,
        `estimated:     $${t.dollarsPerMonth.toFixed(2)} a month (storage and requests at this rate, s3.prices)`,
      );
    }
    if (v.parent) lines.push(`clone of:      ${v.parent.lun}@${v.parent.snapshot} (chunks it has not written are read from there)`);
    for (const sn of r.snapshots ?? []) {
      lines.push(`snapshot:      ${sn.name} (${sn.created}): ${sn.preservedChunks} chunks preserved, ${formatSize(sn.preservedBytes)}`);
    }
    if (r.clones && r.clones.length > 0) lines.push(`clones:        ${r.clones.join(', ')}`);
    lines.push(
      `lease:         ${r.lease ? `${r.lease.purpose} on ${r.lease.host} pid ${r.lease.pid}, renewed ${r.lease.renewedAt}` : 'free (not served)'}`,
    );
  }
  return lines.join('\n');
}

/** `s3tgt lun create`: writes volume.json with the configured size and block size. */
export async function lunCreate(config: Config, name: string): Promise<VolumeInfo> {
  return withLun(config, name, 'create', async (l) => {
    if (l.info) throw new CliError('CLI_ERR_EXISTS', `LUN "${name}" already exists (${formatSize(l.info.sizeBytes)}, created ${l.info.created})`);
    return createVolume(l.store, l.layout, l.lun.sizeBytes, l.lun.blockSize, segmentSizeFor(l.lun.store));
  });
}

/** `s3tgt lun delete`: every object of the LUN, then its lease. Refused while served. */
export async function lunDelete(config: Config, name: string): Promise<number> {
  return withLun(config, name, 'delete', async (l) => {
    const snapshots = (await SnapshotCatalog.load(l.store, l.layout)).snapshots;
    if (snapshots.length > 0) {
      throw new CliError(
        'CLI_ERR_USAGE',
        `LUN "${name}" has ${snapshots.length} snapshot(s) (${snapshots.map((s) => s.name).join(', ')}): delete them first (s3tgt snapshot delete)`,
      );
    }
    const keys: string[] = [];
    for await (const e of listAll(l.store, `${l.layout.root}/`)) if (e.key !== l.layout.leaseKey) keys.push(e.key);
    // volume.json last: an interrupted delete leaves a LUN that still describes itself.
    const volumeKey = l.layout.volumeKey;
    const rest = keys.filter((k) => k !== volumeKey);
    for (let i = 0; i < rest.length; i += 1000) await l.store.deleteMany(rest.slice(i, i + 1000));
    if (keys.includes(volumeKey)) await l.store.delete(volumeKey);
    // A clone: its parent's snapshot may go now.
    if (l.info) await forgetClone(l.store, l.layout, l.info);
    return keys.length;
  });
}

/**
 * `s3tgt lun resize`: grows a LUN. A served LUN grows online through the server's admin
 * endpoint (initiators get CAPACITY DATA HAS CHANGED); otherwise offline under the lease.
 */
export async function lunResize(config: Config, name: string, sizeBytes: number): Promise<{ from: number; to: number; online: boolean }> {
  findLun(config, name);
  const online = await resizeOnline(config, name, sizeBytes);
  if (online) return { ...online, online: true };
  return withLun(config, name, 'resize', async (l) => {
    if (!l.info) throw new CliError('CLI_ERR_NO_LUN', `LUN "${name}" does not exist yet; set its size in the configuration instead`);
    const from = l.info.sizeBytes;
    if (sizeBytes < from) throw new CliError('CLI_ERR_USAGE', `LUN "${name}" is ${formatSize(from)}: LUNs never shrink (data would be lost)`);
    if (sizeBytes === from) return { from, to: sizeBytes, online: false };
    try {
      await l.volume(l.info).grow(sizeBytes);
    } catch (e) {
      if (e instanceof StorageError && e.kind === 'invalid') throw new CliError('CLI_ERR_USAGE', e.message);
      throw e;
    }
    return { from, to: sizeBytes, online: false };
  });
}

async function resizeOnline(config: Config, name: string, sizeBytes: number): Promise<{ from: number; to: number } | undefined> {
  const r = await adminPost(config, `/admin/resize/${encodeURIComponent(name)}?size=${sizeBytes}`, 120_000);
  if (!r || r.status === 404) return undefined; // no server, or it does not serve this LUN: offline
  if (r.status !== 200) throw new CliError(r.status === 400 ? 'CLI_ERR_USAGE' : 'CLI_ERR_IO', r.body.error ?? `HTTP ${r.status}`);
  return { from: Number(r.body.from ?? 0), to: Number(r.body.to ?? sizeBytes) };
}
