import * as fs from 'node:fs/promises';
import { StorageError } from './errors';

// Whole reads and writes of local files (the file store, the journal).

/**
 * Writes every byte of `parts` at `start`. A write that stops short (a full disk, a file size
 * limit) is retried for the rest, which then fails with the error (ENOSPC, EFBIG): nothing
 * ends truncated without an error.
 */
export async function writeAll(fh: fs.FileHandle, parts: readonly Buffer[], start: number): Promise<void> {
  // One writev in the usual case; what it did not write is written again from where it stopped.
  let position = start + (await fh.writev(parts as Buffer[], start)).bytesWritten;
  let skip = position - start;
  for (const part of parts) {
    let done = Math.min(skip, part.length);
    skip -= done;
    while (done < part.length) {
      const { bytesWritten } = await fh.write(part, done, part.length - done, position);
      if (bytesWritten <= 0) throw new StorageError('unavailable', `write made no progress at byte ${position}`);
      done += bytesWritten;
      position += bytesWritten;
    }
  }
}

/** Reads `buf.length` bytes at `position`; a file that ends first is a data error. */
export async function readFully(fh: fs.FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new StorageError('data', 'object shorter than its recorded size');
    done += bytesRead;
  }
}

/** Makes a directory's entries durable (a created, renamed or removed file). */
export async function syncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
