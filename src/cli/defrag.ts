import type { Config } from '../config/config';
import { type DefragReport, defrag } from '../storage/defrag';
import { ProgressBar } from '../util/progress';
import { CliError } from './errors';
import { withLun } from './offline';

/**
 * `s3tgt defrag <lun>` offline: under the LUN's lease (so no server writes meanwhile; a LUN
 * being served is refused), through a volume.
 */
export async function defragOffline(config: Config, lunName: string, opts: { dryRun: boolean }): Promise<DefragReport> {
  return withLun(config, lunName, 'defrag', async (l) => {
    if (!l.info) throw new CliError('CLI_ERR_NO_LUN', `LUN "${lunName}" has no volume.json in ${l.store.description}`);
    const bar = new ProgressBar(`defrag ${lunName}`, 'objects');
    const report = await defrag(l.volume(l.info, { cacheBytes: 16 << 20 }), l.store, l.layout, {
      dryRun: opts.dryRun,
      onProgress: (d, t) => bar.update(d, t),
    });
    bar.done();
    return report;
  });
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
