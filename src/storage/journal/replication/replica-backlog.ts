import type * as fs from 'node:fs/promises';
import { readRecordsAt } from '../pending-index';
import type { JournalRecord } from '../record';

/** Where one record of a peer's backlog is: its replica file, its place in it. */
export interface RecordPlace {
  readonly sequence: number;
  readonly chunk: number;
  readonly seg: { readonly file: string };
  readonly position: number;
  readonly bytes: number;
}

/**
 * A peer's records of one LUN that a takeover replays (ReplicaStore.backlog), as places in
 * the replica files, read back one chunk's records at a time: the backlog may be as large as
 * the peer's journal (gigabytes), and a takeover must not need that much memory. The files
 * stay open until `close`, so a trim of the replica meanwhile (a watermark from a peer still
 * alive) cannot take them away.
 */
export class ReplicaBacklog {
  constructor(
    private readonly places: readonly RecordPlace[],
    private readonly handles: ReadonlyMap<string, fs.FileHandle>,
  ) {}

  /** Several peers' backlogs, in the order given (one peer in a two-node cluster). */
  static merge(parts: readonly ReplicaBacklog[]): ReplicaBacklog {
    return new ReplicaBacklog(
      parts.flatMap((p) => p.places),
      new Map(parts.flatMap((p) => [...p.handles])),
    );
  }

  get count(): number {
    return this.places.length;
  }

  /** Each chunk's records, in sequence order, chunks in the order their first record came. */
  async *chunks(): AsyncGenerator<JournalRecord[]> {
    const byChunk = new Map<number, RecordPlace[]>();
    for (const p of this.places) {
      const list = byChunk.get(p.chunk) ?? [];
      list.push(p);
      byChunk.set(p.chunk, list);
    }
    for (const list of byChunk.values()) yield await readRecordsAt(list, this.handles);
  }

  async close(): Promise<void> {
    for (const fh of this.handles.values()) await fh.close().catch(() => undefined);
  }
}
