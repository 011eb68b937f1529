import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { StorageError } from '../errors';
import { type HostIdentity, provablyDead } from '../lease-record';

const LOCK_FILE = 'LOCK';

interface LockRecord {
  readonly host: string;
  readonly bootId?: string;
  readonly pid: number;
  readonly pidStart?: string;
}

const dirError = (message: string, cause?: unknown): StorageError =>
  new StorageError('invalid', message, { code: 'STORE_ERR_JOURNAL_DIR', ...(cause === undefined ? {} : { cause }) });

/**
 * One server per journal directory: a LOCK file created exclusively, naming this process. A
 * lock left by a process that is provably dead (same machine and boot, pid gone or reused) is
 * taken over; any other holder is an error that names it. Also checks, before anything else,
 * that the directory exists and is writable, so start-up fails with a clear message.
 */
export async function lockJournalDir(dir: string, me: HostIdentity): Promise<() => Promise<void>> {
  const st = await fs.stat(dir).catch((e: NodeJS.ErrnoException) => {
    throw dirError(e.code === 'ENOENT' ? `journal.dir ${dir} does not exist` : `journal.dir ${dir}: ${e.message}`, e);
  });
  if (!st.isDirectory()) throw dirError(`journal.dir ${dir} is not a directory`);
  await fs.access(dir, fs.constants.W_OK | fs.constants.X_OK).catch((e: unknown) => {
    throw dirError(`journal.dir ${dir} is not writable by this process`, e);
  });
  const file = path.join(dir, LOCK_FILE);
  const mine: LockRecord = {
    host: me.host,
    ...(me.bootId ? { bootId: me.bootId } : {}),
    pid: me.pid,
    ...(me.pidStart ? { pidStart: me.pidStart } : {}),
  };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await fs.open(file, 'wx');
      try {
        await fh.writeFile(`${JSON.stringify(mine)}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      return async () => {
        await fs.rm(file, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST')
        throw dirError(`journal.dir ${dir}: cannot create ${LOCK_FILE}: ${(e as Error).message}`, e);
    }
    const held = await readLock(file);
    if (held && attempt === 0 && provablyDead(held, me)) {
      await fs.rm(file, { force: true });
      continue;
    }
    const who = held ? `pid ${held.pid} on ${held.host}` : 'a process whose lock file is unreadable';
    throw dirError(`journal.dir ${dir} is in use by ${who} (${file}); two servers must not share a journal`);
  }
  throw dirError(`journal.dir ${dir}: could not take ${LOCK_FILE}`);
}

async function readLock(file: string): Promise<LockRecord | undefined> {
  try {
    const v = JSON.parse(await fs.readFile(file, 'utf8')) as Partial<LockRecord>;
    if (typeof v.host !== 'string' || typeof v.pid !== 'number') return undefined;
    return {
      host: v.host,
      pid: v.pid,
      ...(typeof v.bootId === 'string' ? { bootId: v.bootId } : {}),
      ...(typeof v.pidStart === 'string' ? { pidStart: v.pidStart } : {}),
    };
  } catch {
    return undefined;
  }
}
