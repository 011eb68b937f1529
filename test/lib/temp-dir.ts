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
