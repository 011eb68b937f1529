import type { HttpEndpoint } from './http-server';
import type { Service } from './serve';

const json = (status: number, body: unknown): { status: number; type: string; body: string } => ({
  status,
  type: 'application/json',
  body: `${JSON.stringify(body)}\n`,
});

/**
 * Cluster admin routes (docs/ha.md), loopback only like every admin route:
 *   GET  /admin/cluster              this node's view: each LUN's role and active node
 *   POST /admin/move/:name?to=NODE   hand the LUN (active here) over to NODE at a barrier
 */
export function clusterRoutes(http: HttpEndpoint, service: Service): void {
  http.route('GET', '/admin/cluster', async () => {
    const cluster = service.currentConfig.cluster;
    if (!cluster) return json(404, { error: 'this server is not in a cluster' });
    return json(200, {
      node: cluster.self.name,
      luns: [...service.clusterLuns.values()].map((c) => ({
        name: c.name,
        role: c.role,
        active: c.activeNode ?? null,
        stats: c.stats,
      })),
    });
  });
  http.route('POST', '/admin/move/:name', async (_req, url) => {
    const name = decodeURIComponent(url.pathname.split('/').pop() ?? '');
    const to = url.searchParams.get('to') ?? '';
    const c = service.clusterLuns.get(name);
    if (!c) return json(404, { error: `no cluster LUN ${name} on this node` });
    if (c.role !== 'active') return json(409, { error: `LUN ${name} is ${c.role} on this node`, active: c.activeNode ?? null });
    const t0 = performance.now();
    try {
      await c.moveTo(to);
    } catch (e) {
      return json(400, { error: (e as Error).message });
    }
    return json(200, { moved: name, to, seconds: (performance.now() - t0) / 1000 });
  });
}
