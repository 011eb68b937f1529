import * as net from 'node:net';
import { log } from '../util/log';
import { Connection, endSession } from './connection';
import { DEFAULT_TARGET_LIMITS, type TargetLimits } from './login/params';
import { type AuthPolicy, NONE_AUTH } from './login/security';
import { AsyncEvent, encodeAsyncMessage } from './pdu/async-message';
import { DEFAULT_PORTAL_OPTIONS, type PortalContext, type PortalOptions } from './portal-context';
import { SessionTable } from './session';
import { IscsiStats } from './stats';
import type { PortalAddress, TargetDirectory } from './target-entry';

export interface IscsiServerOptions {
  readonly listen: readonly PortalAddress[];
  readonly directory: TargetDirectory;
  readonly limits?: TargetLimits;
  readonly discoveryAuth?: AuthPolicy;
  readonly portal?: Partial<PortalOptions>;
}

/**
 * The iSCSI portal(s): TCP listeners, the session table, and the connections. It knows the
 * target directory but nothing of storage.
 */
export class IscsiServer implements PortalContext {
  readonly sessions = new SessionTable();
  readonly stats = new IscsiStats();
  readonly limits: TargetLimits;
  readonly options: PortalOptions;
  readonly connections = new Set<Connection>();
  draining = false;
  discoveryAuth: AuthPolicy;
  directory: TargetDirectory;
  private readonly servers: net.Server[] = [];
  /**
   * Connections accepted before `ready` (the portal listens before the LUNs are open, so that
   * an address in use fails the start before any lease is taken): held unread, then served.
   */
  private held: Set<net.Socket> | undefined = new Set();

  constructor(private readonly config: IscsiServerOptions) {
    this.directory = config.directory;
    this.limits = config.limits ?? DEFAULT_TARGET_LIMITS;
    this.options = { ...DEFAULT_PORTAL_OPTIONS, ...config.portal };
    this.discoveryAuth = config.discoveryAuth ?? NONE_AUTH;
  }

  async listen(): Promise<PortalAddress[]> {
    const bound: PortalAddress[] = [];
    for (const p of this.config.listen) {
      const server = net.createServer((socket) => this.accept(socket));
      server.maxConnections = 1024;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(p.port, p.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const addr = server.address() as net.AddressInfo;
      bound.push({ host: p.host, port: addr.port });
      this.servers.push(server);
      log.info('portal listening', { address: `${p.host}:${addr.port}` });
    }
    return bound;
  }

  /** The targets are in the directory: serve the connections held since `listen`, and all later ones. */
  ready(): void {
    const held = this.held;
    this.held = undefined;
    for (const s of held ?? []) if (!s.destroyed) this.accept(s);
  }

  private accept(socket: net.Socket): void {
    if (this.held) {
      // Not read yet: the initiator's login waits (its own timeout retries it), no status is sent.
      socket.pause();
      this.held.add(socket);
      socket.once('close', () => this.held?.delete(socket));
      socket.on('error', () => socket.destroy());
      return;
    }
    const c = new Connection(socket, this);
    this.connections.add(c);
    socket.once('close', () => this.connections.delete(c));
    socket.resume();
  }

  /**
   * Graceful stop, step one: stop listening, refuse new logins and ask every initiator to log
   * out within the given time (RFC 7143 §11.9.1, AsyncEvent 1, Parameter3); resolves when
   * every normal session has logged out or that time has passed. An initiator that ignores
   * the request cannot hold the shutdown: its sessions end in closeAll.
   */
  async drain(logoutWithinSeconds: number): Promise<void> {
    this.draining = true;
    // net.Server.close only stops accepting; its callback would wait for every connection.
    for (const srv of this.servers) srv.close();
    for (const s of this.sessions.all()) {
      const c = s.connection;
      if (!(c instanceof Connection) || c.state !== 'full-feature') continue;
      c.send(
        encodeAsyncMessage({
          lun: 0n,
          statSN: c.nextStatSN(),
          expCmdSN: s.expCmdSN,
          maxCmdSN: s.maxCmdSN,
          event: AsyncEvent.RequestLogout,
          vcode: 0,
          param1: 0,
          param2: 0,
          param3: logoutWithinSeconds,
          data: Buffer.alloc(0),
        }),
      );
    }
    const end = Date.now() + logoutWithinSeconds * 1000;
    while (Date.now() < end && this.sessions.all().some((s) => !s.closed && s.type === 'Normal')) {
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Waits until no session has commands running, or the deadline passes. */
  async quiesce(deadlineMs: number): Promise<boolean> {
    const end = Date.now() + deadlineMs;
    while (Date.now() < end) {
      if (this.sessions.all().every((s) => s.tasks.size === 0)) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  }

  /** Closes every session and connection. */
  closeAll(reason: string): void {
    for (const s of this.held ?? []) s.destroy();
    for (const s of this.sessions.all()) endSession(s, this, reason);
    for (const c of [...this.connections]) c.close(reason);
  }

  async close(): Promise<void> {
    this.draining = true;
    const closed = Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.closeAll('server stopping');
    await closed;
  }
}
