import type { Config, PortalConfig } from '../config/config';
import { CliError } from './errors';

/** The URL of a path on a server's admin endpoint (a wildcard listen address is reached on loopback). */
export function adminUrl(at: PortalConfig, path: string): string {
  const host = at.host === '0.0.0.0' || at.host === '::' ? '127.0.0.1' : at.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${at.port}${path}`;
}

export interface AdminAnswer {
  readonly status: number;
  readonly body: Record<string, unknown> & { readonly error?: string };
}

/**
 * A POST to the running server's admin endpoint (loopback), bounded by `timeoutMs`. Undefined
 * when no server listens there (the command then runs offline, under the LUN's lease).
 */
export async function adminPost(
  config: Config,
  path: string,
  timeoutMs: number,
  /** Another node's admin endpoint (a cluster's `lun move`); by default this server's. */
  at: PortalConfig | undefined = config.metrics.listen,
): Promise<AdminAnswer | undefined> {
  if (!at) return undefined;
  const url = adminUrl(at, path);
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    if ((e as Error).name === 'TimeoutError')
      throw new CliError('CLI_ERR_IO', `the server at ${at.host}:${at.port} did not answer ${path} within ${timeoutMs / 1000} s`);
    return undefined; // no server running
  }
  const text = await res.text();
  let body: AdminAnswer['body'];
  try {
    body = JSON.parse(text) as AdminAnswer['body'];
  } catch {
    body = { error: text.trim() };
  }
  return { status: res.status, body };
}

/**
 * The running server's Prometheus exposition (`/metrics`), or undefined when no server listens
 * (or it does not answer within `timeoutMs`: `lun info` then shows what the store says only).
 */
export async function serverMetrics(config: Config, timeoutMs: number): Promise<string | undefined> {
  const at = config.metrics.listen;
  if (!at) return undefined;
  try {
    const res = await fetch(adminUrl(at, '/metrics'), { signal: AbortSignal.timeout(timeoutMs) });
    return res.ok ? await res.text() : undefined;
  } catch {
    return undefined;
  }
}

/** The samples of one metric for one LUN name, by the value of `label` (e.g. request). */
export function lunSamples(text: string, metric: string, lun: string, label?: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`)) continue;
    const close = line.lastIndexOf('}');
    const labels = new Map([...line.slice(metric.length + 1, close).matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (labels.get('name') !== lun) continue;
    out.set(label ? (labels.get(label) ?? '') : '', Number(line.slice(close + 1).trim()));
  }
  return out;
}
