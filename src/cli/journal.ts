import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Backends } from '../app/stores';
import type { Config, JournalConfig } from '../config/config';
import { formatSize } from '../config/units';
import { discardQuarantine, listQuarantine, type QuarantineInfo, readQuarantine } from '../storage/journal/quarantine';
import { uuidHex } from '../storage/journal/record';
import { scanSegment } from '../storage/journal/segment-scan';
import { readVolumeInfo } from '../storage/volume-meta';
import { CliError } from './errors';
import { findLun } from './offline';

/** `s3tgt journal status|export|discard` (docs/journal.md): the journal directory, read without its lock. */

function journalOf(config: Config): JournalConfig {
  if (!config.journal) throw new CliError('CLI_ERR_USAGE', `${config.file} has no "journal:" section`);
  return config.journal;
}

/** The UUID of a configured LUN, from its volume.json (records and quarantine files are keyed by it). */
async function uuidOf(config: Config, name: string): Promise<string> {
  const lun = findLun(config, name);
  const backends = new Backends(config);
  await backends.open();
  try {
    const { backend, layout } = backends.for(lun);
    const info = await readVolumeInfo(backend.store, layout);
    if (!info) throw new CliError('CLI_ERR_NO_LUN', `LUN "${name}" does not exist in its store`);
    return uuidHex(info.uuid);
  } finally {
    await backends.close();
  }
}

export interface JournalStatus {
  readonly dir: string;
  readonly capacity: number;
  readonly lock: string | null;
  readonly segments: ReadonlyArray<{ readonly file: string; readonly bytes: number; readonly records: number; readonly tail: string }>;
  /** Records after each LUN's last checkpoint: what a restart would replay. */
  readonly pendingByLun: Readonly<Record<string, number>>;
  readonly quarantine: readonly QuarantineInfo[];
}

export async function journalStatus(config: Config): Promise<JournalStatus> {
  const j = journalOf(config);
  const names = (await fs.readdir(j.dir)).sort();
  const segments: Array<JournalStatus['segments'][number]> = [];
  const pending = new Map<string, number>();
  for (const n of names.filter((x) => /^seg-[0-9a-f]{16}\.log$/.test(x))) {
    const scan = scanSegment(await fs.readFile(path.join(j.dir, n)));
    for (const r of scan.records) pending.set(r.lun, r.kind === 'checkpoint' ? 0 : (pending.get(r.lun) ?? 0) + 1);
    segments.push({ file: n, bytes: scan.end, records: scan.records.length, tail: scan.tail });
  }
  const lock = names.includes('LOCK') ? (await fs.readFile(path.join(j.dir, 'LOCK'), 'utf8')).trim() : null;
  return {
    dir: j.dir,
    capacity: j.sizeBytes,
    lock,
    segments,
    pendingByLun: Object.fromEntries([...pending].filter(([, v]) => v > 0)),
    quarantine: await listQuarantine(j.dir),
  };
}

export function formatStatus(s: JournalStatus): string {
  const used = s.segments.reduce((n, x) => n + x.bytes, 0);
  const lines = [
    `journal ${s.dir}: ${formatSize(used)} of ${formatSize(s.capacity)} in ${s.segments.length} segments`,
    `  lock: ${s.lock ?? 'none (no server is using it)'}`,
    ...Object.entries(s.pendingByLun).map(([lun, n]) => `  LUN ${lun}: ${n} records not known to be in S3 (replayed at its next start)`),
    ...(s.quarantine.length === 0 ? ['  quarantine: empty'] : []),
    ...s.quarantine.map((q) => `  quarantine: LUN ${q.lun}: ${q.records} records (${formatSize(q.bytes)}) in ${q.file}\n    why: ${q.why}`),
  ];
  return lines.join('\n');
}

/**
 * Writes a LUN's quarantined records, in sequence order, at their offsets in `file` (created
 * sparse if missing): an overlay of what the records would have changed, for an admin to
 * compare with `s3tgt export` of the LUN. Returns the records and bytes written.
 */
export async function journalExport(config: Config, name: string, file: string): Promise<{ records: number; bytes: number }> {
  const j = journalOf(config);
  const uuid = await uuidOf(config, name);
  const mine = (await listQuarantine(j.dir)).filter((q) => q.lun === uuid);
  if (mine.length === 0) throw new CliError('CLI_ERR_NO_LUN', `LUN "${name}" has no quarantined journal records in ${j.dir}`);
  const chunkSize = 1024 * 1024;
  const fh = await fs.open(file, 'a+');
  let records = 0;
  let bytes = 0;
  try {
    for (const q of mine) {
      for (const r of await readQuarantine(q.file)) {
        const at = r.chunk * chunkSize + r.offset;
        const data = r.kind === 'write' ? r.data : Buffer.alloc(r.length);
        if (data.length > 0) await fh.write(data, 0, data.length, at);
        records++;
        bytes += data.length;
      }
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return { records, bytes };
}

export async function journalDiscard(config: Config, name: string): Promise<number> {
  const j = journalOf(config);
  return discardQuarantine(j.dir, await uuidOf(config, name));
}
