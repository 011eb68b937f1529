import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface Faults {
  /** Added before every request is forwarded. */
  latencyMs: number;
  /** Share of requests answered 503 SlowDown without reaching the server. */
  errorRate: number;
  /** Share of requests whose connection is reset before any answer. */
  resetRate: number;
  /** Share of GET responses cut after half of the body. */
  cutRate: number;
  /** Every request fails (the connection is destroyed): S3 is unreachable. */
  outage: boolean;
}

export const NO_FAULTS: Faults = { latencyMs: 0, errorRate: 0, resetRate: 0, cutRate: 0, outage: false };

/**
 * An HTTP proxy between s3tgt and a real S3 server that injects the failures S3 clients meet:
 * latency, 5xx/SlowDown, connection resets, bodies cut mid-stream, and a full outage. Headers
 * (Host included) pass through untouched, so SigV4 signatures stay valid.
 */
export class FaultProxy {
  faults: Faults = { ...NO_FAULTS };
  readonly injected = { errors: 0, resets: 0, cuts: 0, outages: 0, forwarded: 0 };
  private readonly server: http.Server;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly upstreamPort: number) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as AddressInfo).port;
  }

  set(f: Partial<Faults>): void {
    this.faults = { ...this.faults, ...f };
    // An outage also breaks the connections that are open now.
    if (f.outage) for (const s of this.sockets) s.destroy();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const f = this.faults;
    if (f.outage) {
      this.injected.outages++;
      req.socket.destroy();
      return;
    }
    if (f.latencyMs > 0) await new Promise((r) => setTimeout(r, f.latencyMs));
    const roll = Math.random();
    if (roll < f.resetRate) {
      this.injected.resets++;
      req.socket.destroy();
      return;
    }
    if (roll < f.resetRate + f.errorRate) {
      this.injected.errors++;
      req.resume();
      const body = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>injected</Message></Error>';
      res.writeHead(503, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    const cut = req.method === 'GET' && roll < f.resetRate + f.errorRate + f.cutRate;
    const up = http.request(
      { host: '127.0.0.1', port: this.upstreamPort, method: req.method, path: req.url, headers: req.headers, agent: this.agent },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        if (!cut) {
          this.injected.forwarded++;
          upRes.pipe(res);
          return;
        }
        // Send half of the body, then drop the connection.
        const total = Number(upRes.headers['content-length'] ?? 0);
        let sent = 0;
        this.injected.cuts++;
        upRes.on('data', (chunk: Buffer) => {
          if (sent >= total / 2) return;
          const part = chunk.subarray(0, Math.max(0, Math.floor(total / 2) - sent));
          sent += part.length;
          res.write(part);
          if (sent >= total / 2) {
            upRes.destroy();
            res.socket?.destroy();
          }
        });
        upRes.on('end', () => res.socket?.destroy());
      },
    );
    up.on('error', () => res.socket?.destroy());
    req.pipe(up);
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.agent.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
