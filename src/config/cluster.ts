import type { PortalConfig } from './config';
import type { Reader } from './reader';

/** One server of an HA cluster (docs/ha.md): every node presents every LUN of the cluster. */
export interface ClusterNode {
  readonly name: string;
  /** Where its iSCSI portal listens: this node's target port group answers there. */
  readonly portals: readonly PortalConfig[];
  /** TARGET PORT GROUP of its ports (SPC-5 §5.16.2.3); also the node's relative target port id. */
  readonly tpg: number;
  /** Its metrics/admin endpoint (`lun move` asks the target node to take the LUN there). */
  readonly admin: PortalConfig;
  /** Where it receives journal records replicated by the active node of a journal LUN. */
  readonly replication: PortalConfig | undefined;
}

export interface ClusterConfig {
  /** This server's node. */
  readonly self: ClusterNode;
  readonly nodes: readonly ClusterNode[];
  /** Shared secret of the replication links (HMAC authentication); at least 16 bytes. */
  readonly secret: string | undefined;
}

const NODE_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;

/**
 * `cluster:` (optional). `self` names this server's node; it can also come from the
 * S3TGT_NODE environment variable, so that one file serves every node.
 */
export function parseCluster(r: Reader, parsePortal: (r: Reader) => PortalConfig): ClusterConfig | undefined {
  if (!r.present) return undefined;
  r.object(['self', 'nodes', 'secret', 'secretEnv']);
  const nodesR = r.get('nodes').required();
  const nodes = nodesR.array().map((n): ClusterNode => {
    n.object(['name', 'portals', 'tpg', 'admin', 'replication']);
    const nameR = n.get('name').required();
    const name = nameR.string();
    if (!NODE_NAME.test(name)) nameR.fail(`"${name}" is not a node name (lower-case letters, digits and "-", up to 32)`);
    const portals = n.get('portals').required().array().map(parsePortal);
    if (portals.length === 0) n.get('portals').fail('a node needs at least one portal');
    const rep = n.get('replication');
    return {
      name,
      portals,
      tpg: n.get('tpg').required().int(undefined, 1, 65535),
      admin: parsePortal(n.get('admin').required()),
      replication: rep.present ? parsePortal(rep) : undefined,
    };
  });
  if (nodes.length < 2) nodesR.fail('a cluster has at least two nodes');
  nodes.forEach((n, i) => {
    const dup = nodes.findIndex((m) => m.name === n.name || m.tpg === n.tpg);
    if (dup !== i) nodesR.at(i).fail(`node "${n.name}" repeats the name or tpg of node "${nodes[dup].name}"`);
  });
  const selfR = r.get('self');
  const selfName = selfR.present ? selfR.string() : process.env.S3TGT_NODE;
  if (!selfName) r.fail('cluster.self is missing (or set S3TGT_NODE): which node is this server?');
  const self =
    nodes.find((n) => n.name === selfName) ??
    (selfR.present ? selfR : r).fail(`"${selfName}" is not one of the nodes (${nodes.map((n) => n.name).join(', ')})`);
  const inline = r.get('secret');
  const env = r.get('secretEnv');
  let secret: string | undefined;
  if (inline.present && env.present) env.fail('give "secret" or "secretEnv", not both');
  if (env.present) {
    const v = process.env[env.string()];
    secret = v ? v : env.fail(`environment variable ${env.string()} is not set`);
  } else if (inline.present) secret = inline.string();
  if (secret !== undefined && Buffer.byteLength(secret) < 16) (env.present ? env : inline).fail('the cluster secret must be at least 16 bytes');
  return { self, nodes, secret };
}
