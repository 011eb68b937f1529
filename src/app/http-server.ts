import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PortalConfig } from '../config/config';
import { log } from '../util/log';

export type Route = (req: http.IncomingMessage, url: URL) => Promise<{ status: number; type: string; body: string }>;

/**
 * The service's HTTP endpoint (loopback by default): GET /metrics, GET /healthz and the admin
 * routes. Admin routes change things, so they answer loopback clients only, whatever address
 * the endpoint listens on.
 */
export class HttpEndpoint {
  private readonly server: http.Server;
  private readonly routes = new Map<string, Route>();

  constructor(private readonly listen: PortalConfig) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
  }

  route(method: string, path: string, r: Route): void {
    this.routes.set(`${method} ${path}`, r);
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.listen.port, this.listen.host, () => resolve());
    });
    const port = (this.server.address() as AddressInfo).port;
    log.info('http endpoint listening', { address: `${this.listen.host}:${port}` });
    return port;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const key = `${req.method} ${url.pathname.replace(/\/[^/]+$/, '/:name')}`;
    const route = this.routes.get(`${req.method} ${url.pathname}`) ?? this.routes.get(key);
    if (!route) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (url.pathname.startsWith('/admin/')) {
      const peer = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
      if (peer !== '127.0.0.1' && peer !== '::1') {
        res.writeHead(403, { 'content-type': 'text/plain' }).end('admin requests are accepted from loopback only\n');
        return;
      }
    }
    try {
      const r = await route(req, url);
      res.writeHead(r.status, { 'content-type': r.type }).end(r.body);
    } catch (e) {
      log.error('http request failed', { path: url.pathname, error: (e as Error).message });
      res.writeHead(500, { 'content-type': 'application/json' }).end(`${JSON.stringify({ error: (e as Error).message })}\n`);
    }
  }

  /** Stops serving; open keep-alive connections (a Prometheus scraper's) are cut. */
  close(): Promise<void> {
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    this.server.closeAllConnections();
    return closed;
  }
}
