import { parseSize } from '../config/units';
import { defrag } from '../storage/defrag';
import { log } from '../util/log';
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
 */
export function adminRoutes(http: HttpEndpoint, service: Service): void {
  const served = (url: URL) => {
    const name = decodeURIComponent(url.pathname.split('/').pop() ?? '');
    return { name, lun: service.lun(name) };
  };
  http.route('POST', '/admin/defrag/:name', async (_req, url) => {
    const { name, lun } = served(url);
    if (!lun) return json(404, { error: `no LUN ${name}` });
    const { backend, layout } = service.backends.for(lun.config);
    const report = await defrag(lun.volume, backend.store, layout, { dryRun: url.searchParams.get('dryRun') === '1' });
    log.info('online defrag', { lun: name, reclaimed: report.reclaimed, corrupt: report.corrupt.length });
    return json(200, report);
  });
  http.route('POST', '/admin/resize/:name', async (_req, url) => {
    const { name, lun } = served(url);
    if (!lun) return json(404, { error: `no LUN ${name}` });
    const size = parseSize(url.searchParams.get('size') ?? '');
    if (typeof size === 'string') return json(400, { error: size });
    const from = lun.volume.info.sizeBytes;
    if (size === from) return json(200, { name, from, to: size });
    if (size < from) return json(400, { error: `LUN ${name} is ${from} bytes; LUNs never shrink` });
    await service.grow(name, size);
    return json(200, { name, from, to: size });
  });
}
