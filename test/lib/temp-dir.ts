import { mkdtempSync, rmSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

/** Runs `fn` in a fresh temporary directory, removed afterwards whatever happens. */
export async function inTempDir(fn: (dir: string) => Promise<void>, prefix = 's3tgt-test-'): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  try {
    await fn(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

const made: string[] = [];

/**
 * A fresh temporary directory that lives as long as the test process (a target's data and
 * logs, a configuration): removed when the process exits, unless S3TGT_KEEP_TEST_DIRS is set.
 * Left behind, a CI run's directories filled this machine's disk until Ceph's monitor refused
 * to start (mon data avail crit).
 */
export function tempDir(prefix = 's3tgt-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  if (made.length === 0) process.once('exit', removeAll);
  made.push(dir);
  return dir;
}

function removeAll(): void {
  if (process.env.S3TGT_KEEP_TEST_DIRS) return;
  for (const d of made) rmSync(d, { recursive: true, force: true });
}
