import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { log } from '../../../util/log';
import { syncDir, writeAll } from '../../file-io';
import { type JournalRecord, uuidHex } from '../record';
import { scanSegment } from '../segment-scan';
import { type RecordPlace, ReplicaBacklog } from './replica-backlog';

/** A replica file is closed and the next one started past this size. */
const FILE_BYTES = 64 * 1024 * 1024;
const FILE = /^s-([0-9a-f]{8})-([0-9a-f]{8})\.log$/;
const CONSUMED = 'consumed.json';
const STREAMS = 'streams.json';

/** What is known of one stream (one connection): where the peer said it starts, whether it was ever complete. */
interface StreamMeta {
  start?: number;
  complete?: boolean;
}

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
  private streams: Record<string, StreamMeta> = {};
  private saving: Promise<void> = Promise.resolve();

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
    s.consumed = await readJson<Record<string, string[]>>(path.join(dir, CONSUMED), {});
    s.streams = await readJson<Record<string, StreamMeta>>(path.join(dir, STREAMS), {});
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
    const meta = this.meta(this.stream);
    const before = JSON.stringify(meta);
    meta.start = start;
    if (this.complete) meta.complete = true;
    if (JSON.stringify(meta) !== before) this.saveStreams();
    void this.trim();
  }

  private meta(stream: number): StreamMeta {
    const k = String(stream);
    this.streams[k] ??= {};
    return this.streams[k];
  }

  /** Keeps what is known of the streams (a restart of this node must not forget it). */
  private saveStreams(): void {
    // Empty streams between kept ones stay: they carry their starts (replayStreams).
    const oldest = this.files.reduce((n, f) => Math.min(n, f.stream), this.stream);
    for (const k of Object.keys(this.streams)) if (Number(k) < oldest) delete this.streams[k];
    const body = JSON.stringify(this.streams);
    this.saving = this.saving
      .then(() => writeJsonDurably(path.join(this.dir, STREAMS), this.dir, body))
      .catch((e: unknown) => {
        log.warn('replica: could not save the stream list', { dir: this.dir, error: String(e) });
      });
  }

  /**
   * The peer's first frame on a stream: where it starts (the peer's next sequence number).
   * Durable before any record of the stream is taken, so a stream with records always has
   * its start (replayStreams).
   */
  async started(start: number): Promise<void> {
    this.streamStart = start;
    this.meta(this.stream).start = start;
    this.saveStreams();
    await this.saving;
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
   * The streams a takeover replays, oldest first, or undefined if they may miss a record the
   * peer acknowledged (docs/ha.md, "Journal replication"). The current stream, and before it
   * every earlier one it continues without a gap, back to one that was complete: a link that
   * broke and came back with no write in between (this node restarted while the peer was idle)
   * loses nothing. A gap is a group the peer acknowledged local-only (its lease said so), or
   * records that are in S3 since: replaying records from before it could overwrite newer data,
   * so a chain with a gap is not used.
   */
  async replayStreams(): Promise<number[] | undefined> {
    await this.idle();
    const numbers = [...new Set([...this.files.map((f) => f.stream), this.stream])].sort((a, b) => b - a);
    const chain: number[] = [];
    let next: { readonly start: number | undefined } | undefined;
    for (const n of numbers) {
      const last = await this.lastSequence(n);
      if (next) {
        // The later stream starts where this one ended (+1): no gap between them.
        // A later stream whose start never arrived received nothing: it is not relied on.
        if (next.start === undefined) return undefined;
        if (next.start > (last ?? (this.streams[String(n)]?.start ?? 1) - 1) + 1) return undefined;
      }
      chain.unshift(n);
      const meta = this.streams[String(n)];
      if ((n === this.stream && this.complete) || meta?.complete) return chain;
      next = { start: n === this.stream ? (this.streamStart ?? meta?.start) : meta?.start };
    }
    return undefined;
  }

  /** True when a takeover may replay this replica (replayStreams). */
  async replayable(): Promise<boolean> {
    return (await this.replayStreams()) !== undefined;
  }

  /** The last sequence number in a stream's files (undefined: none). */
  private async lastSequence(stream: number): Promise<number | undefined> {
    let last: number | undefined;
    for (const f of this.files.filter((x) => x.stream === stream)) {
      for (const r of await this.scan(f)) last = Math.max(last ?? 0, r.sequence);
    }
    return last;
  }

  private async scan(f: ReplicaFile): Promise<readonly JournalRecord[]> {
    const scan = scanSegment(await fs.readFile(f.file));
    if (scan.tail === 'corrupt') throw new Error(`replica file ${f.file}: a record at byte ${scan.damage?.offset} does not verify`);
    return scan.records;
  }

  /**
   * The peer's records of a LUN a takeover replays: those of `streams` (replayStreams; by
   * default every stream kept) written under one of `holders`, after the LUN's last checkpoint
   * and at or past the peer's last watermark (what is below it is in S3), not consumed by an
   * earlier takeover here; in sequence order. As places in the files, which it keeps open: the
   * data is read back a chunk at a time when replayed (ReplicaBacklog), so memory holds one
   * replica file while it is scanned, not the peer's whole backlog.
   */
  async backlog(lun: string, holders: ReadonlySet<string>, streams?: readonly number[]): Promise<ReplicaBacklog> {
    const hex = uuidHex(lun);
    const done = new Set(this.consumed[hex] ?? []);
    const below = this.watermarkValue ?? 0;
    const wanted = new Set(streams ?? this.files.map((f) => f.stream));
    const handles = new Map<string, fs.FileHandle>();
    try {
      const all: Array<RecordPlace & { readonly checkpoint: boolean; readonly holder: string }> = [];
      for (const f of this.files.filter((x) => wanted.has(x.stream))) {
        const fh = await fs.open(f.file, 'r').catch((e: NodeJS.ErrnoException) => {
          // Trimmed since the list was taken: below the watermark, so in S3.
          if (e.code === 'ENOENT') return undefined;
          throw e;
        });
        if (!fh) continue;
        handles.set(f.file, fh);
        const scan = scanSegment(await fh.readFile());
        if (scan.tail === 'corrupt') throw new Error(`replica file ${f.file}: a record at byte ${scan.damage?.offset} does not verify`);
        scan.records.forEach((r, k) => {
          if (r.lun !== hex) return;
          const bytes = (scan.starts[k + 1] ?? scan.end) - scan.starts[k];
          all.push({
            sequence: r.sequence,
            chunk: r.chunk,
            seg: f,
            position: scan.starts[k],
            bytes,
            checkpoint: r.kind === 'checkpoint',
            holder: r.holder,
          });
        });
      }
      all.sort((x, y) => x.sequence - y.sequence);
      let out: RecordPlace[] = [];
      for (const r of all) {
        if (r.checkpoint) out = [];
        else if (r.sequence >= below && holders.has(r.holder) && !done.has(r.holder)) out.push(r);
      }
      return new ReplicaBacklog(out, handles);
    } catch (e) {
      for (const fh of handles.values()) await fh.close().catch(() => undefined);
      throw e;
    }
  }

  /** A takeover applied these holders' records of the LUN: a later one here must not again. */
  async consume(lun: string, holders: readonly string[]): Promise<void> {
    const hex = uuidHex(lun);
    this.consumed[hex] = [...new Set([...(this.consumed[hex] ?? []), ...holders])].slice(-32);
    await writeJsonDurably(path.join(this.dir, CONSUMED), this.dir, JSON.stringify(this.consumed));
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
    await this.saving;
    await this.closeFile();
  }
}

async function readJson<T>(file: string, empty: T): Promise<T> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as T;
  } catch {
    return empty;
  }
}

/** Replaces a small JSON file: written, fsynced, renamed, directory fsynced. */
async function writeJsonDurably(file: string, dir: string, body: string): Promise<void> {
  await fs.writeFile(`${file}.tmp`, body);
  const fh = await fs.open(`${file}.tmp`, 'r');
  await fh.sync();
  await fh.close();
  await fs.rename(`${file}.tmp`, file);
  await syncDir(dir);
}
