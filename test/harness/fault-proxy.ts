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
 * What a rule does to the requests it matches:
 * - black-hole: accepted, never forwarded, never answered (a hung server);
 * - stall-body: forwarded; the answer's headers and half its body are sent, then nothing;
 * - lose-answer: forwarded and applied by the server; the client's connection is reset instead
 *   of getting the answer;
 * - delay-request / delay-answer: forwarded `delayMs` late / answered `delayMs` late;
 * - error: 503 SlowDown without reaching the server;
 * - reset: the connection is reset before anything is forwarded.
 */
export type ProxyAction = 'black-hole' | 'stall-body' | 'lose-answer' | 'delay-request' | 'delay-answer' | 'error' | 'reset';

export interface ProxyRule {
  readonly action: ProxyAction;
  /** Which requests (method and path with query, e.g. "PUT /bucket/luns/disk0/lease.json"). */
  readonly match: RegExp;
  readonly delayMs?: number;
  /** How many requests it applies to (unlimited by default). */
  times?: number;
}

/** One request the proxy forwarded to the server, and when the server's answer came back. */
export interface Forwarded {
  readonly method: string;
  readonly path: string;
  readonly sentAt: number;
  answeredAt?: number;
  status?: number;
}

/**
 * An HTTP proxy between s3tgt and a real S3 server that injects the failures S3 clients meet:
 * latency, 5xx/SlowDown, connection resets, bodies cut or stalled mid-stream, hung requests,
 * answers lost after the server applied the request, and a full outage. Rules pick requests
 * by method and path. Headers (Host included) pass through untouched, so SigV4 signatures stay
 * valid. Every forwarded request is logged with the time its answer came back (Date.now()),
 * which the fencing tests compare with another server's takeover time.
 */
export class FaultProxy {
  faults: Faults = { ...NO_FAULTS };
  rules: ProxyRule[] = [];
  readonly forwarded: Forwarded[] = [];
  readonly injected = { errors: 0, resets: 0, cuts: 0, outages: 0, forwarded: 0, ruled: 0 };
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

  rule(r: ProxyRule): this {
    this.rules.push(r);
    return this;
  }

  clearRules(): void {
    this.rules = [];
  }

  /** Mutations of chunk objects the server answered (PUT, DELETE, DeleteObjects). */
  chunkMutations(): Forwarded[] {
    return this.forwarded.filter((f) => f.answeredAt !== undefined && isChunkMutation(f.method, f.path));
  }

  private ruleFor(line: string): ProxyRule | undefined {
    const r = this.rules.find((x) => (x.times ?? 1) > 0 && x.match.test(line));
    if (r?.times !== undefined) r.times--;
    if (r) this.injected.ruled++;
    return r;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const f = this.faults;
    if (f.outage) {
      this.injected.outages++;
      req.socket.destroy();
      return;
    }
    const rule = this.ruleFor(`${req.method} ${req.url}`);
    if (rule?.action === 'black-hole') {
      req.resume(); // read the body, never answer
      return;
    }
    if (rule?.action === 'reset') {
      req.socket.destroy();
      return;
    }
    if (rule?.action === 'error') {
      this.slowDown(req, res);
      return;
    }
    if (f.latencyMs > 0) await new Promise((r) => setTimeout(r, f.latencyMs));
    if (rule?.action === 'delay-request') await new Promise((r) => setTimeout(r, rule.delayMs ?? 0));
    const roll = Math.random();
    if (roll < f.resetRate) {
      this.injected.resets++;
      req.socket.destroy();
      return;
    }
    if (roll < f.resetRate + f.errorRate) {
      this.injected.errors++;
      this.slowDown(req, res);
      return;
    }
    const cut = req.method === 'GET' && roll < f.resetRate + f.errorRate + f.cutRate;
    const log: Forwarded = { method: req.method ?? '', path: req.url ?? '', sentAt: Date.now() };
    this.forwarded.push(log);
    const up = http.request(
      { host: '127.0.0.1', port: this.upstreamPort, method: req.method, path: req.url, headers: req.headers, agent: this.agent },
      (upRes) => {
        log.answeredAt = Date.now();
        log.status = upRes.statusCode;
        void this.answer(rule, cut, upRes, res);
      },
    );
    up.on('error', () => res.socket?.destroy());
    req.pipe(up);
  }

  private async answer(rule: ProxyRule | undefined, cut: boolean, upRes: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (rule?.action === 'lose-answer') {
      upRes.resume();
      res.socket?.destroy();
      return;
    }
    if (rule?.action === 'delay-answer') await new Promise((r) => setTimeout(r, rule.delayMs ?? 0));
    res.writeHead(upRes.statusCode ?? 502, upRes.headers);
    if (!cut && rule?.action !== 'stall-body') {
      this.injected.forwarded++;
      upRes.pipe(res);
      return;
    }
    // Send half of the body, then drop the connection (cut) or go silent (stall).
    const total = Number(upRes.headers['content-length'] ?? 0);
    let sent = 0;
    if (cut) this.injected.cuts++;
    upRes.on('data', (chunk: Buffer) => {
      if (sent >= total / 2) return;
      const part = chunk.subarray(0, Math.max(0, Math.floor(total / 2) - sent));
      sent += part.length;
      res.write(part);
      if (sent >= total / 2 && cut) {
        upRes.destroy();
        res.socket?.destroy();
      }
    });
    upRes.on('end', () => {
      if (cut) res.socket?.destroy();
    });
  }

  private slowDown(req: http.IncomingMessage, res: http.ServerResponse): void {
    req.resume();
    const body = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>injected</Message></Error>';
    res.writeHead(503, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.agent.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** PUT or DELETE of a chunk object, or a DeleteObjects (chunk discards). */
export function isChunkMutation(method: string, path: string): boolean {
  return ((method === 'PUT' || method === 'DELETE') && path.includes('/chunks/')) || (method === 'POST' && /[?&]delete/.test(path));
}
