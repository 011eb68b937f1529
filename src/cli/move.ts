import type { Config } from '../config/config';
import { adminPost } from './admin-client';
import { CliError } from './errors';

export interface MoveResult {
  readonly from: string;
  readonly to: string;
  readonly seconds: number;
}

/**
 * `s3tgt lun move LUN NODE` (docs/ha.md): asks each node of the cluster in turn to hand the
 * LUN over; the one that is active for it does (409 from the others).
 */
export async function lunMove(config: Config, name: string, to: string): Promise<MoveResult> {
  const cluster = config.cluster;
  if (!cluster) throw new CliError('CLI_ERR_USAGE', 'lun move needs a configuration with a "cluster:" section');
  if (!cluster.nodes.some((n) => n.name === to)) throw new CliError('CLI_ERR_USAGE', `"${to}" is not a node of the cluster`);
  const answers: string[] = [];
  for (const node of cluster.nodes) {
    const a = await adminPost(config, `/admin/move/${encodeURIComponent(name)}?to=${encodeURIComponent(to)}`, 120_000, node.admin);
    if (!a) {
      answers.push(`${node.name}: not running`);
      continue;
    }
    if (a.status === 200) return { from: node.name, to, seconds: Number(a.body.seconds ?? 0) };
    answers.push(`${node.name}: ${a.body.error ?? a.status}`);
  }
  throw new CliError('CLI_ERR_IO', `no node handed LUN ${name} over (${answers.join('; ')})`);
}
