import { peakRssMiB } from '../harness/rss';
import { type TargetProcess, TEST_IQN } from '../harness/target';

import { TestInitiator } from '../lib/initiator';
import { type FuzzReport, runNetworkFuzz } from './network-fuzz';

/** Log lines that mean the target hit a bug rather than refused bad input. */
const BUG_LINES = /internal error|pipeline failed|uncaught|unhandled|TypeError|RangeError|ReferenceError/i;

export interface CampaignResult {
  readonly report: FuzzReport;
  /** Lines of the target's log that show a bug. */
  readonly bugLines: string[];
  readonly peakRssMiB: number;
  readonly aliveAfter: boolean;
  /** A normal login, INQUIRY and a write/read round trip worked after the run. */
  readonly healthyAfter: boolean;
  readonly healthError: string | undefined;
}

/** Logs in normally and checks the LUN answers: INQUIRY, then a write read back. */
export async function healthCheck(port: number): Promise<void> {
  const c = await TestInitiator.connect(port);
  try {
    await c.login({ target: TEST_IQN, initiatorName: 'iqn.2026-11.test:health', isid: Buffer.from('40000000abcd', 'hex') });
    await c.response(c.command(Buffer.from([0, 0, 0, 0, 0, 0]))); // unit attention, if any
    const inq = await c.response(c.command(Buffer.from([0x12, 0, 0, 0, 96, 0]), { read: 96 }));
    if (inq.status !== 0 || inq.data.length < 36) throw new Error(`INQUIRY status ${inq.status}`);
    const data = Buffer.alloc(4096, 0x77);
    const w10 = Buffer.from([0x2a, 0, 0, 0, 0x40, 0, 0, 0, 8, 0]);
    const w = await c.response(c.command(w10, { write: data }));
    if (w.status !== 0) throw new Error(`WRITE status ${w.status}`);
    const r10 = Buffer.from([0x28, 0, 0, 0, 0x40, 0, 0, 0, 8, 0]);
    const r = await c.response(c.command(r10, { read: 4096 }));
    if (r.status !== 0 || !r.data.equals(data)) throw new Error('read back differs');
  } finally {
    c.close();
  }
}

/** Runs a fuzz campaign against a started target and checks it afterwards. */
export async function fuzzCampaign(
  target: TargetProcess,
  opts: { inputs: number; seconds: number; seed: number; workers?: number; onProgress?: (r: FuzzReport) => void },
): Promise<CampaignResult> {
  const pid = target.proc?.pid;
  if (pid === undefined) throw new Error('target not started');
  const report = await runNetworkFuzz({ port: target.port, target: TEST_IQN, ...opts });
  // Give the target a moment to finish what the last connections started.
  await new Promise((r) => setTimeout(r, 500));
  const aliveAfter = target.alive;
  let healthError: string | undefined;
  try {
    if (aliveAfter) await healthCheck(target.port);
    else healthError = 'target exited';
  } catch (e) {
    healthError = (e as Error).message;
  }
  return {
    report,
    bugLines: target.output.split('\n').filter((l) => BUG_LINES.test(l)),
    peakRssMiB: aliveAfter ? peakRssMiB(pid) : Number.NaN,
    aliveAfter,
    healthyAfter: healthError === undefined,
    healthError,
  };
}

export function formatCampaign(r: CampaignResult): string {
  const p = r.report;
  return (
    `fuzz: ${p.inputs} inputs (${p.loginInputs} in login, ${p.ffpInputs} in full feature phase) over ${p.connections} connections ` +
    `in ${p.seconds.toFixed(1)} s; target closed ${p.closedByTarget}, answered ${p.received} PDUs; ` +
    `crashes ${r.aliveAfter ? 0 : 1}, bug log lines ${r.bugLines.length}, malformed target PDUs ${p.malformedFromTarget}, ` +
    `peak RSS ${r.peakRssMiB.toFixed(0)} MiB, healthy after: ${r.healthyAfter ? 'yes' : `NO (${r.healthError})`}`
  );
}
