import type { Config } from '../config/config';
import { DEFAULT_TARGET_LIMITS } from '../iscsi/login/params';
import { IscsiServer } from '../iscsi/server';
import type { PortalAddress } from '../iscsi/target-entry';
import { buildRegistry } from '../metrics/registry';
import { DEFAULT_PRODUCT, DEFAULT_VENDOR, PRODUCT_REVISION } from '../scsi/identity';
import { LogicalUnit } from '../scsi/logical-unit';
import { ScsiTarget } from '../scsi/target';
import type { ChunkVolume } from '../storage/chunk-volume';
import { defrag } from '../storage/defrag';
import type { Lease } from '../storage/lease';
import { configureLogging, log } from '../util/log';
import { authPolicy, MutableDirectory, targetEntry } from './directory';
import { HttpEndpoint } from './http-server';
import { type OpenLun, openLun } from './open-volume';
import { Backends } from './stores';

export interface Running {
  readonly server: IscsiServer;
  readonly portals: readonly PortalAddress[];
  readonly volumes: ReadonlyMap<string, ChunkVolume>;
  readonly backends: Backends;
  /** Graceful stop: no new logins, ask initiators to log out, finish commands, flush, close. */
  stop(graceMs?: number): Promise<void>;
}

/** One LUN being served: where it is exported and its volume. */
interface ServedLun {
  readonly target: string;
  readonly lun: number;
  readonly name: string;
  readonly lu: LogicalUnit;
  readonly volume: ChunkVolume;
}

/** Composes the service from its configuration: stores → volumes → logical units → portal. */
export async function serve(config: Config): Promise<Running> {
  configureLogging(config.log.level, config.log.format);
  const backends = new Backends(config);
  await backends.open();
  const volumes = new Map<string, ChunkVolume>();
  const leases = new Map<string, Lease>();
  const directory = new MutableDirectory(config.portals);
  const served: ServedLun[] = [];
  try {
    // Leases first, all at once: a stale one makes us wait for its expiry.
    const opened = new Map<string, OpenLun>();
    await Promise.all(
      config.targets.flatMap((t) =>
        t.luns.map(async (l) => {
          const { backend, layout } = backends.for(l);
          const o = await openLun(backend.store, layout, l, config.lease);
          opened.set(l.name, o);
          volumes.set(l.name, o.volume);
          leases.set(l.name, o.lease);
        }),
      ),
    );
    for (const t of config.targets) {
      const scsi = new ScsiTarget(t.iqn);

      for (const l of t.luns) {
        const { backend } = backends.for(l);
        const volume = (opened.get(l.name) as OpenLun).volume;
        const lu = new LogicalUnit(
          l.lun,
          volume,
          { vendor: DEFAULT_VENDOR, product: DEFAULT_PRODUCT, revision: PRODUCT_REVISION, uuid: volume.info.uuid },
          scsi,
        );
        await lu.load();
        scsi.addLun(lu);
        served.push({ target: t.iqn, lun: l.lun, name: l.name, lu, volume });
        log.info('LUN ready', { target: t.iqn, lun: l.lun, name: l.name, size: volume.info.sizeBytes, store: backend.store.description });
      }
      directory.set(targetEntry(t, scsi));
    }
  } catch (e) {
    await Promise.all([...volumes.values()].map((v) => v.close().catch(() => undefined)));
    await Promise.all([...leases.values()].map((l) => l.release()));
    await backends.close();
    throw e;
  }
  const server = new IscsiServer({
    listen: config.portals,
    directory,
    discoveryAuth: authPolicy(config.discovery.chap),
    limits: {
      ...DEFAULT_TARGET_LIMITS,
      maxRecvDataSegmentLength: config.iscsi.maxRecvDataSegmentLength,
      maxBurstLength: config.iscsi.maxBurstLength,
      firstBurstLength: config.iscsi.firstBurstLength,
      maxOutstandingR2T: config.iscsi.maxOutstandingR2T,
      headerDigests: config.iscsi.headerDigests,
      dataDigests: config.iscsi.dataDigests,
    },
    portal: {
      queueDepth: config.iscsi.queueDepth,
      nopIntervalMs: config.iscsi.nopIntervalMs,
      nopTimeoutMs: config.iscsi.nopTimeoutMs,
      loginTimeoutMs: config.iscsi.loginTimeoutMs,
    },
  });
  const portals = await server.listen();
  const http = config.metrics.listen ? new HttpEndpoint(config.metrics.listen) : undefined;
  if (http) {
    const registry = buildRegistry({
      iscsi: { stats: server.stats, sessions: () => server.sessions.size, connections: () => server.connections.size },
      *luns() {
        for (const s of served) {
          const v = s.volume;
          yield {
            target: s.target,
            lun: s.lun,
            name: s.name,
            commands: s.lu.stats,
            volume: v.stats,
            dirtyBytes: v.dirtyBytes,
            cachedBytes: v.cachedBytes,
          };
        }
      },
      *backends() {
        for (const b of backends.all()) yield { kind: b.kind, stats: b.stats, pool: b.pool.stats() };
      },
    });
    http.route('GET', '/metrics', async () => ({ status: 200, type: registry.contentType, body: await registry.metrics() }));
    http.route('GET', '/healthz', async () => ({ status: 200, type: 'text/plain', body: 'ok\n' }));
    // The admin trigger of `s3tgt defrag --online`: defrag through the live volume, so it is
    // safe while initiators write.
    http.route('POST', '/admin/defrag/:name', async (_req, url) => {
      const name = decodeURIComponent(url.pathname.split('/').pop() ?? '');
      const lun = config.targets.flatMap((t) => t.luns).find((l) => l.name === name);
      const volume = volumes.get(name);
      if (!lun || !volume) return { status: 404, type: 'application/json', body: `${JSON.stringify({ error: `no LUN ${name}` })}\n` };
      const { backend, layout } = backends.for(lun);
      const report = await defrag(volume, backend.store, layout, { dryRun: url.searchParams.get('dryRun') === '1' });
      log.info('online defrag', { lun: name, reclaimed: report.reclaimed, corrupt: report.corrupt.length });
      return { status: 200, type: 'application/json', body: `${JSON.stringify(report)}\n` };
    });
    await http.start();
  }
  let stopping: Promise<void> | undefined;
  return {
    server,
    portals,
    volumes,
    backends,
    stop(graceMs = 10_000) {
      stopping ??= (async () => {
        await http?.close();
        await server.drain(Math.ceil(graceMs / 1000));
        const quiet = await server.quiesce(graceMs);
        if (!quiet) log.warn('commands still running at shutdown; aborting them');
        server.closeAll('shutdown');
        for (const [name, v] of volumes) {
          try {
            await v.close();
            log.info('LUN flushed and closed', { name });
          } catch (e) {
            log.error('LUN could not be flushed at shutdown', { name, error: (e as Error).message });
            throw e;
          }
          // Only once its data is safe does the LUN's lease go.
          await leases.get(name)?.release();
        }
        await backends.close();
      })();
      return stopping;
    },
  };
}
