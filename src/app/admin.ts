import { parseSize } from '../config/units';
import { defrag } from '../storage/defrag';
import { StorageError } from '../storage/errors';
import { hydrateOnline } from '../storage/snapshots/clones';
import { log } from '../util/log';
import { snapshotOnline } from './admin-snapshot';
import type { HttpEndpoint } from './http-server';
import type { Service } from './serve';

const json = (status: number, body: unknown): { status: number; type: string; body: string } => ({
  status,
  type: 'application/json',
  body: `${JSON.stringify(body)}\n`,
});

/**
 * Admin routes (loopback clients only, see HttpEndpoint): what the CLI asks of a running
 * server because the server holds the LUN's lease.
 *   POST /admin/defrag/:name[?dryRun=1]   defrag through the live volume
 *   POST /admin/resize/:name?size=20GiB    grow the LUN online
 *   POST /admin/snapshot/:name?op=create|delete|restore&snapshot=NAME[&force=1]
 *                                          take, delete or (forced only) restore a snapshot
 *                                          at a barrier (admin-snapshot.ts)
 *   POST /admin/hydrate/:name              start hydrating a served clone in the background
 */
export function adminRoutes(http: HttpEndpoint, service: Service): void {
  const served = (url: URL) => {
    const name = decodeURIComponent(url.pathname.split('/').pop() ?? '');
    return { name, lun: service.lun(name) };
  };
  http.route('POST', '/admin/defrag/:name', async (_req, url) => {
    const { name, lun } = served(url);
    if (!lun) return json(404, { error: `no LUN ${name}` });
    if (lun.config.snapshotOf) return json(400, { error: `LUN ${name} is a snapshot LUN` });
    const { backend, layout } = service.backends.for(lun.config);
    const report = await defrag(lun.volume, backend.store, layout, { dryRun: url.searchParams.get('dryRun') === '1' });
    log.info('online defrag', { lun: name, reclaimed: report.reclaimed, corrupt: report.corrupt.length });
    return json(200, report);
  });
  // One snapshot operation per LUN at a time (each reads and rewrites the catalog).
  const queues = new Map<string, Promise<unknown>>();
  const serialized = <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const run = (queues.get(name) ?? Promise.resolve()).catch(() => undefined).then(fn);
    queues.set(name, run);
    return run;
  };
  http.route('POST', '/admin/snapshot/:name', async (_req, url) => {
    const { name, lun } = served(url);
    if (!lun) return json(404, { error: `no LUN ${name}` });
    const op = url.searchParams.get('op');
    const snapshot = url.searchParams.get('snapshot') ?? '';
    if (op !== 'create' && op !== 'delete' && op !== 'restore') return json(400, { error: `op must be create, delete or restore, not "${op}"` });
    if (op === 'restore' && url.searchParams.get('force') !== '1') {
      return json(409, {
        error: `LUN ${name} is being served: stop it before a restore, or force it (--force: initiators see the disk change under them)`,
      });
    }
    const exported = service.currentConfig.targets
      .flatMap((t) => t.luns)
      .find((l) => l.snapshotOf?.lun === name && l.snapshotOf.snapshot === snapshot);
    if (op === 'delete' && exported) return json(409, { error: `snapshot "${snapshot}" is served as LUN ${exported.name}: remove that LUN first` });
    try {
      return json(200, await serialized(name, () => snapshotOnline(service, lun, op, snapshot)));
    } catch (e) {
      if (e instanceof StorageError && e.code === 'STORE_ERR_SNAPSHOT') return json(400, { error: e.message });
      throw e;
    }
  });
  // Online hydrations under way, by LUN: each runs in the background of the request that started it.
  const hydrating = new Set<string>();
  http.route('POST', '/admin/hydrate/:name', async (_req, url) => {
    const { name, lun } = served(url);
    if (!lun) return json(404, { error: `no LUN ${name}` });
    const info = lun.volume.info;
    if (!lun.lease || !info.parent) return json(400, { error: `LUN ${name} is not a clone` });
    if (hydrating.has(name)) return json(409, { error: `LUN ${name} is being hydrated already` });
    const { backend, layout } = service.backends.for(lun.config);
    const store = lun.lease.gate.bind(backend.store);
    hydrating.add(name);
    // An encrypted clone's snapshots are sealed again through its own stack (clones.ts).
    const sealed = lun.config.encryption && lun.preserving ? lun.lease.gate.bind(lun.preserving) : undefined;
    void hydrateOnline(store, layout, info, lun.volume, sealed)
      .catch((e: unknown) => log.error('online hydration failed; run it again', { lun: name, error: String(e) }))
      .finally(() => hydrating.delete(name));
    return json(202, { name, started: true });
  });
  http.route('POST', '/admin/resize/:name', async (_req, url) => {
    const { name, lun } = served(url);
    if (!lun) return json(404, { error: `no LUN ${name}` });
    if (lun.config.snapshotOf) return json(400, { error: `LUN ${name} is a snapshot LUN: it keeps its snapshot's size` });
    const size = parseSize(url.searchParams.get('size') ?? '');
    if (typeof size === 'string') return json(400, { error: size });
    const from = lun.volume.info.sizeBytes;
    if (size === from) return json(200, { name, from, to: size });
    if (size < from) return json(400, { error: `LUN ${name} is ${from} bytes; LUNs never shrink` });
    await service.grow(name, size);
    return json(200, { name, from, to: size });
  });
}
