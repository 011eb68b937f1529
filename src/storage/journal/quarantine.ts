import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { StorageError } from '../errors';
import { syncDir, writeAll } from '../file-io';
import { encodeHeader, type JournalRecord, uuidHex } from './record';
import { scanSegment } from './segment-scan';

/**
 * Records a LUN left in the journal that may not be replayed (docs/journal.md, "Replay"):
 * another server may have written the LUN since, so they could be older than S3's data. They
 * are moved out of the journal into `quarantine-<LUN>-<n>.log` (the segment format, so the
 * same scanner reads them back) with a `.json` saying why, and the LUN refuses to start until
 * the operator has looked (`s3tgt journal status|export|discard`).
 */
export interface QuarantineInfo {
  readonly lun: string;
  readonly file: string;
  readonly why: string;
  readonly records: number;
  readonly bytes: number;
  readonly holders: readonly string[];
  readonly at: string;
}

const QUARANTINE = /^quarantine-([0-9a-f]{32})-(\d+)\.log$/;

export async function quarantine(
  dir: string,
  lun: string,
  /** The LUN's records, one chunk's at a time (Journal.recoveredChunks). */
  source: AsyncIterable<readonly JournalRecord[]>,
  why: string,
): Promise<QuarantineInfo> {
  const hex = uuidHex(lun);
  const existing = (await listQuarantine(dir)).filter((q) => q.lun === hex).length;
  const file = path.join(dir, `quarantine-${hex}-${existing + 1}.log`);
  let records = 0;
  let bytes = 0;
  const holders = new Set<string>();
  const fh = await fs.open(file, 'wx');
  try {
    for await (const chunk of source) {
      const parts: Buffer[] = [];
      for (const r of chunk) {
        const h = encodeHeader(r);
        parts.push(h, r.data);
        holders.add(uuidHex(r.holder));
        records++;
      }
      await writeAll(fh, parts, bytes);
      bytes += parts.reduce((n, b) => n + b.length, 0);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  const info: QuarantineInfo = { lun: hex, file, why, records, bytes, holders: [...holders], at: new Date().toISOString() };
  await fs.writeFile(`${file}.json`, `${JSON.stringify(info, null, 2)}\n`);
  await syncDir(dir);
  return info;
}

/** Every quarantine file of the directory (the journal need not be open: the CLI reads it). */
export async function listQuarantine(dir: string): Promise<QuarantineInfo[]> {
  const out: QuarantineInfo[] = [];
  for (const name of (await fs.readdir(dir)).sort()) {
    const m = QUARANTINE.exec(name);
    if (!m) continue;
    const file = path.join(dir, name);
    let info: QuarantineInfo;
    try {
      info = { ...(JSON.parse(await fs.readFile(`${file}.json`, 'utf8')) as QuarantineInfo), file };
    } catch {
      const records = await readQuarantine(file);
      info = {
        lun: m[1],
        file,
        why: '(its .json is missing)',
        records: records.length,
        bytes: records.reduce((n, r) => n + r.data.length + 88, 0),
        holders: [...new Set(records.map((r) => r.holder))],
        at: '',
      };
    }
    out.push(info);
  }
  return out;
}

export async function readQuarantine(file: string): Promise<readonly JournalRecord[]> {
  const scan = scanSegment(await fs.readFile(file));
  if (scan.tail !== 'clean') {
    throw new StorageError('data', `${file}: record at byte ${scan.damage?.offset ?? scan.end} does not verify (${scan.damage?.why})`, {
      code: 'STORE_ERR_JOURNAL_CORRUPT',
    });
  }
  return scan.records;
}

export async function discardQuarantine(dir: string, lun: string): Promise<number> {
  const hex = uuidHex(lun);
  const mine = (await listQuarantine(dir)).filter((q) => q.lun === hex);
  for (const q of mine) {
    await fs.rm(q.file, { force: true });
    await fs.rm(`${q.file}.json`, { force: true });
  }
  await syncDir(dir);
  return mine.length;
}
