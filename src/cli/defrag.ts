import type { Config } from '../config/config';
import { forgetOldKeys } from '../storage/codec/encryption-record';
import { resealSnapshots } from '../storage/codec/reseal';
import { type DefragReport, defrag } from '../storage/defrag';
import { ProgressBar } from '../util/progress';
import { adminUrl } from './admin-client';
import { CliError } from './errors';
import { withLun } from './offline';

/**
 * `s3tgt defrag <lun>` offline: under the LUN's lease (so no server writes meanwhile; a LUN
 * being served is refused), through a volume.
 */
export async function defragOffline(config: Config, lunName: string, opts: { dryRun: boolean; rekey?: boolean }): Promise<DefragReport> {
  return withLun(config, lunName, 'defrag', async (l) => {
    if (!l.info) throw new CliError('CLI_ERR_NO_LUN', `LUN "${lunName}" has no volume.json in ${l.store.description}`);
    if (opts.rekey && !l.codec.encrypted)
      throw new CliError('CLI_ERR_USAGE', `LUN "${lunName}" has no "encryption" in ${config.file}: nothing to rekey`);
    const bar = new ProgressBar(`defrag ${lunName}`, 'objects');
    const volume = l.volume(l.info, { cacheBytes: 16 << 20 });
    const report = await defrag(volume, l.store, l.layout, {
      dryRun: opts.dryRun,
      reseal: opts.rekey === true,
      onProgress: (d, t) => bar.update(d, t),
    });
    bar.done();
    if (!opts.rekey || opts.dryRun) return report;
    // The live chunks were stored again through the volume; flush them before the snapshots'.
    await volume.flush();
    const resealed = await resealSnapshots(l.chunkStore, l.layout);
    // Only a complete pass lets the old keys go: a corrupt or busy chunk may still need one.
    const complete = report.corrupt.length === 0 && report.busy === 0;
    const forgotten = complete ? await forgetOldKeys(l.store, l.layout, l.info.uuid, l.codec) : [];
    return { ...report, rekey: { snapshotChunks: resealed, forgottenKeys: forgotten, complete } };
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
    ...(r.rekey
      ? [
          `  rekeyed:               ${r.mappedChunks} chunks and ${r.rekey.snapshotChunks} snapshot chunks sealed with the current key; ` +
            (r.rekey.complete
              ? `${r.rekey.forgottenKeys.length ? `keys no longer needed: ${r.rekey.forgottenKeys.join(', ')}` : 'no older key was recorded'}`
              : 'incomplete (corrupt or busy chunks): the older keys are still needed'),
        ]
      : []),
  ];
  return lines.join('\n');
}

/** `s3tgt defrag --online`: the serving process does it, through its live volume. */
export async function defragOnline(config: Config, lunName: string, dryRun: boolean): Promise<DefragReport> {
  const at = config.metrics.listen;
  if (!at) throw new CliError('CLI_ERR_USAGE', `--online needs metrics.listen in ${config.file} (the server's admin endpoint)`);
  const res = await fetch(adminUrl(at, `/admin/defrag/${encodeURIComponent(lunName)}${dryRun ? '?dryRun=1' : ''}`), { method: 'POST' }).catch(
    (e: unknown) => {
      throw new CliError('CLI_ERR_IO', `cannot reach the server at ${at.host}:${at.port}: ${(e as Error).message}`);
    },
  );
  const body = (await res.json()) as DefragReport & { error?: string };
  if (!res.ok) throw new CliError(res.status === 404 ? 'CLI_ERR_NO_LUN' : 'CLI_ERR_IO', body.error ?? `HTTP ${res.status}`);
  return body;
}
