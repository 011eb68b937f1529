import type { Config } from '../config/config';
import { StorageError } from '../storage/errors';
import { createClone, hydrateClone, hydrateOnline } from '../storage/snapshots/clones';
import type { VolumeInfo } from '../storage/volume';
import { adminPost } from './admin-client';
import { CliError } from './errors';
import { findLun, withLun } from './offline';

/** A storage refusal (no such snapshot, being deleted, not a clone) as a usage error. */
function asUsage(e: unknown): never {
  if (e instanceof StorageError && e.kind === 'invalid') throw new CliError('CLI_ERR_USAGE', e.message);
  throw e;
}

/**
 * `s3tgt lun clone LUN@SNAPSHOT NEW`: NEW (an entry of the configuration, in the same store as
 * LUN, not created yet) becomes a clone of the snapshot, offline under NEW's lease: a
 * volume.json naming the snapshot and a marker in LUN; no chunk is copied.
 */
export async function lunClone(config: Config, source: string, name: string): Promise<VolumeInfo> {
  const at = source.indexOf('@');
  if (at <= 0 || at === source.length - 1) throw new CliError('CLI_ERR_USAGE', `"${source}": name the snapshot to clone as LUN@SNAPSHOT`);
  const parent = findLun(config, source.slice(0, at));
  const lun = findLun(config, name);
  if (parent.store !== lun.store) {
    throw new CliError(
      'CLI_ERR_USAGE',
      `"${name}" is in the ${lun.store} store and "${parent.name}" in the ${parent.store} store: a clone shares its parent's store`,
    );
  }
  if (parent.name === name) throw new CliError('CLI_ERR_USAGE', 'a LUN cannot be a clone of itself');
  return withLun(config, name, 'clone', async (l) => {
    const info = await createClone(l.store, l.layout.sibling(parent.name), source.slice(at + 1), l.layout).catch(asUsage);
    if (info.logicalBlockSize !== lun.blockSize) {
      process.stderr.write(
        `warning: "${name}" has ${info.logicalBlockSize}-byte blocks like "${parent.name}"; set blockSize: ${info.logicalBlockSize} in ${config.file}\n`,
      );
    }
    return info;
  });
}

/**
 * `s3tgt lun hydrate NEW`: copies what a clone still reads from its parent into it
 * (server-side; an encrypted clone reads and seals each chunk as its own). A served clone is
 * hydrated by its server, in the background (`lun info` says "clone of" until it is done);
 * otherwise offline under its lease.
 */
export async function lunHydrate(config: Config, name: string): Promise<{ copied: number; holes: number } | 'started'> {
  findLun(config, name);
  const r = await adminPost(config, `/admin/hydrate/${encodeURIComponent(name)}`, 30_000);
  if (r && r.status === 202) return 'started';
  if (r && r.status !== 404)
    throw new CliError(r.status === 400 || r.status === 409 ? 'CLI_ERR_USAGE' : 'CLI_ERR_IO', r.body.error ?? `HTTP ${r.status}`);
  return withLun(config, name, 'hydrate', async (l) => {
    if (!l.info) throw new CliError('CLI_ERR_NO_LUN', `LUN "${name}" does not exist in the store`);
    if (!l.codec.encrypted) return hydrateClone(l.store, l.layout, l.info).catch(asUsage);
    // Encrypted: each chunk is read and sealed again as the clone's, through its volume.
    const r = await hydrateOnline(l.store, l.layout, l.info, l.volume(l.info, { cacheBytes: 16 << 20 }), l.chunkStore).catch(asUsage);
    return { copied: r.copied, holes: 0 };
  });
}
