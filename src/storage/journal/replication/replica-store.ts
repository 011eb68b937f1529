import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { log } from '../../../util/log';
import { syncDir, writeAll } from '../../file-io';
import { type JournalRecord, uuidHex } from '../record';
import { scanSegment } from '../segment-scan';

/** A replica file is closed and the next one started past this size. */
const FILE_BYTES = 64 * 1024 * 1024;
const FILE = /^s-([0-9a-f]{8})-([0-9a-f]{8})\.log$/;
const CONSUMED = 'consumed.json';

interface ReplicaFile {
  readonly stream: number;
  readonly index: number;
  readonly file: string;
  bytes: number;
  /** The highest sequence number in it (0: none yet, or unknown for a file of an earlier stream). */
  lastSeq: number;
}

/**
 * What this node holds of one peer's journal (docs/ha.md, "Journal replication"): the commit
 * groups the peer sent, byte for byte as in its own segments, in files under
 * `<journal.dir>/replica/<node>/`. Each connection is a new stream (s-<stream>-<index>.log).
 *
 * The replica is complete when the peer's last watermark (every earlier record of it is in S3)
 * is at or past where the current stream started: every record not yet in S3 is here. Only a
 * complete replica is replayed at a takeover. Files below the watermark, and earlier streams
 * once the current one is complete, are deleted.
 */
export class ReplicaStore {
  private files: ReplicaFile[] = [];
  private stream = 0;
  private streamStart: number | undefined;
  private watermarkValue: number | undefined;
  private fh: fs.FileHandle | undefined;
  private writing: Promise<void> = Promise.resolve();
  private consumed: Record<string, string[]> = {};

  private constructor(
    readonly node: string,
    readonly dir: string,
  ) {}

  static async open(journalDir: string, node: string): Promise<ReplicaStore> {
    const dir = path.join(journalDir, 'replica', node);
    await fs.mkdir(dir, { recursive: true });
    const s = new ReplicaStore(node, dir);
    for (const name of (await fs.readdir(dir)).sort()) {
      const m = FILE.exec(name);
      if (!m) continue;
      const file = path.join(dir, name);
      const st = await fs.stat(file);
      s.files.push({ stream: Number.parseInt(m[1], 16), index: Number.parseInt(m[2], 16), file, bytes: st.size, lastSeq: 0 });
    }
    s.stream = s.files.reduce((n, f) => Math.max(n, f.stream), 0);
    try {
      s.consumed = JSON.parse(await fs.readFile(path.join(dir, CONSUMED), 'utf8')) as Record<string, string[]>;
    } catch {
      s.consumed = {};
    }
    return s;
  }

  /** A new connection from the peer: its records go to a new stream. */
  async begin(): Promise<void> {
    await this.writing;
    await this.closeFile();
    this.stream++;
    this.streamStart = undefined;
    this.watermarkValue = undefined;
  }

  /** Appends one commit group (records as encoded) and fsyncs it; resolves when durable. */
  append(bytes: Buffer, lastSeq: number): Promise<void> {
    const t = this.writing.then(() => this.appendNow(bytes, lastSeq));
    this.writing = t.catch(() => undefined);
    return t;
  }

  private async appendNow(bytes: Buffer, lastSeq: number): Promise<void> {
    let cur = this.files.at(-1);
    if (!this.fh || !cur || cur.stream !== this.stream || cur.bytes + bytes.length > FILE_BYTES) {
      await this.closeFile();
      const index = cur?.stream === this.stream ? cur.index + 1 : 0;
      const name = `s-${this.stream.toString(16).padStart(8, '0')}-${index.toString(16).padStart(8, '0')}.log`;
      cur = { stream: this.stream, index, file: path.join(this.dir, name), bytes: 0, lastSeq: 0 };
      this.fh = await fs.open(cur.file, 'wx');
      await syncDir(this.dir);
      this.files.push(cur);
    }
    await writeAll(this.fh, [bytes], cur.bytes);
    await this.fh.datasync();
    cur.bytes += bytes.length;
    cur.lastSeq = lastSeq;
  }

  /** The first sequence of the current stream, as the peer declares it with its watermarks. */
  watermark(w: number, start: number): void {
    this.streamStart = start;
    this.watermarkValue = w;
    void this.trim();
  }

  /** Every record of the peer not yet in S3 is here (see the class comment). */
  get complete(): boolean {
    return this.watermarkValue !== undefined && this.streamStart !== undefined && this.watermarkValue >= this.streamStart;
  }

  /** Waits for the groups being written (a takeover reads only after them). */
  async idle(): Promise<void> {
    await this.writing;
  }

  /**
   * The peer's records of a LUN a takeover replays: those of the current stream written under
   * one of `holders`, after the LUN's last checkpoint in it and at or past the peer's last
   * watermark (what is below it is in S3), not consumed by an earlier takeover here; in
   * sequence order. Their data is copied out of the files read, so what stays in memory is
   * the peer's backlog for the LUN (at most its journal's size), not the files.
   */
  async records(lun: string, holders: ReadonlySet<string>): Promise<JournalRecord[]> {
    const hex = uuidHex(lun);
    const done = new Set(this.consumed[hex] ?? []);
    const below = this.watermarkValue ?? 0;
    let out: JournalRecord[] = [];
    for (const f of this.files.filter((x) => x.stream === this.stream)) {
      const scan = scanSegment(await fs.readFile(f.file));
      if (scan.tail === 'corrupt') throw new Error(`replica file ${f.file}: a record at byte ${scan.damage?.offset} does not verify`);
      for (const r of scan.records) {
        if (r.lun !== hex) continue;
        if (r.kind === 'checkpoint') out = [];
        else if (r.sequence >= below && holders.has(r.holder) && !done.has(r.holder)) out.push({ ...r, data: Buffer.from(r.data) });
      }
    }
    return out;
  }

  /** A takeover applied these holders' records of the LUN: a later one here must not again. */
  async consume(lun: string, holders: readonly string[]): Promise<void> {
    const hex = uuidHex(lun);
    this.consumed[hex] = [...new Set([...(this.consumed[hex] ?? []), ...holders])].slice(-32);
    const file = path.join(this.dir, CONSUMED);
    await fs.writeFile(`${file}.tmp`, JSON.stringify(this.consumed));
    const fh = await fs.open(`${file}.tmp`, 'r');
    await fh.sync();
    await fh.close();
    await fs.rename(`${file}.tmp`, file);
    await syncDir(this.dir);
  }

  private async trim(): Promise<void> {
    const w = this.watermarkValue;
    if (w === undefined) return;
    const current = this.files.at(-1);
    const drop = this.files.filter(
      (f) => f !== current && ((f.stream === this.stream && f.lastSeq > 0 && f.lastSeq < w) || (f.stream !== this.stream && this.complete)),
    );
    if (drop.length === 0) return;
    this.files = this.files.filter((f) => !drop.includes(f));
    for (const f of drop) {
      await fs.rm(f.file, { force: true }).catch((e: unknown) => log.warn('replica: could not delete a file', { file: f.file, error: String(e) }));
    }
  }

  private async closeFile(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }

  async close(): Promise<void> {
    await this.writing;
    await this.closeFile();
  }

  /** Tests: the files kept. */
  get fileCount(): number {
    return this.files.length;
  }
}
