import { Backends } from '../app/stores';
import type { Config } from '../config/config';
import { ChunkVolume } from '../storage/chunk-volume';
import { type DefragReport, defrag } from '../storage/defrag';
import { Lease } from '../storage/lease';
import { readVolumeInfo } from '../storage/volume-meta';
import { ProgressBar } from '../util/progress';
import { CliError } from './errors';

/**
 * `s3tgt defrag <lun>` offline: takes the LUN's lease (so no server writes meanwhile; a LUN
 * being served is refused), runs the defrag through a volume, releases the lease.
 */
export async function defragOffline(config: Config, lunName: string, opts: { dryRun: boolean }): Promise<DefragReport> {
  const lun = config.targets.flatMap((t) => t.luns).find((l) => l.name === lunName);
  if (!lun) throw new CliError('CLI_ERR_NO_LUN', `no LUN named "${lunName}" in ${config.file}`);
  const backends = new Backends(config);
  await backends.open();
  const { backend, layout } = backends.for(lun);
  try {
    const info = await readVolumeInfo(backend.store, layout);
    if (!info) throw new CliError('CLI_ERR_NO_LUN', `LUN "${lunName}" has no volume.json in ${backend.store.description}`);
    let volume: ChunkVolume | undefined;
    const lease = await Lease.acquire(
      backend.store,
      layout.leaseKey,
      'defrag',
      { suspended: (r) => volume?.suspend(r), resumed: () => volume?.resume(), lost: (r) => volume?.fence(r) },
      config.lease,
    );
    try {
      volume = new ChunkVolume(backend.store, layout, info, {
        cacheBytes: 16 << 20,
        cacheMode: 'write-through',
        readOnly: false,
        flushDelayMs: 0,
        readAheadChunks: 0,
        spaceTimeoutMs: 20_000,
      });
      const bar = new ProgressBar(`defrag ${lunName}`, 'objects');
      const report = await defrag(volume, backend.store, layout, { dryRun: opts.dryRun, onProgress: (d, t) => bar.update(d, t) });
      bar.done();
      await volume.close();
      return report;
    } finally {
      await lease.release();
    }
  } finally {
    await backends.close();
  }
}

export function formatReport(r: DefragReport): string {
  const mib = (b: number): string => `${(b / 1048576).toFixed(1)} MiB`;
  const lines = [
    `defrag of ${r.lun}${r.dryRun ? ' (dry run: nothing changed)' : ''}: ${r.objectsScanned} objects scanned in ${(r.durationMs / 1000).toFixed(1)} s`,
    `  chunks with data:      ${r.mappedChunks}`,
    `  all-zero chunks:       ${r.zeroChunks.count} (${mib(r.zeroChunks.bytes)})${r.dryRun ? ' would be deleted' : ' deleted'}`,
    `  orphans:               ${r.orphans.count} (${mib(r.orphans.bytes)})${r.dryRun ? ' would be deleted' : ' deleted'}`,
    `  corrupt chunks:        ${r.corrupt.length}${r.corrupt.length ? ` (kept, restore them from a backup): ${r.corrupt.join(', ')}` : ''}`,
    `  busy (cached writes):  ${r.busy}`,
    ...(r.unknown.length ? [`  unknown keys (left alone): ${r.unknown.join(', ')}`] : []),
    `  reclaimed:             ${r.reclaimed.objects} objects, ${mib(r.reclaimed.bytes)}`,
  ];
  return lines.join('\n');
}

/** `s3tgt defrag --online`: the serving process does it, through its live volume. */
export async function defragOnline(config: Config, lunName: string, dryRun: boolean): Promise<DefragReport> {
  const at = config.metrics.listen;
  if (!at) throw new CliError('CLI_ERR_USAGE', `--online needs metrics.listen in ${config.file} (the server's admin endpoint)`);
  const host = at.host === '0.0.0.0' || at.host === '::' ? '127.0.0.1' : at.host;
  const res = await fetch(
    `http://${host.includes(':') ? `[${host}]` : host}:${at.port}/admin/defrag/${encodeURIComponent(lunName)}${dryRun ? '?dryRun=1' : ''}`,
    {
      method: 'POST',
    },
  ).catch((e: unknown) => {
    throw new CliError('CLI_ERR_IO', `cannot reach the server at ${host}:${at.port}: ${(e as Error).message}`);
  });
  const body = (await res.json()) as DefragReport & { error?: string };
  if (!res.ok) throw new CliError(res.status === 404 ? 'CLI_ERR_NO_LUN' : 'CLI_ERR_IO', body.error ?? `HTTP ${res.status}`);
  return body;
}
