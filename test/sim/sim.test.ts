import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { log } from '../../src/util/log';
import { simulate } from './sim';

/** Seeds and operations the CI form runs (`make sim-long` runs a million operations). */
const SEEDS = Number(process.env.SIM_SEEDS ?? 300);
const OPS = Number(process.env.SIM_OPS ?? 60);

/**
 * Issue 13 acceptance: the deterministic simulation of the storage core in CI. Each seed is a
 * random run of commands, flushes, crashes, takeovers, lease outages, grows, defrags and store
 * faults against the reference model and the fencing oracle; a failure names its seed, and
 * `node dist/test/sim/run.js --seed S --ops N` replays it exactly (SIM_TRACE=1 prints its steps).
 */
describe('simulation of the storage core (issue 13)', () => {
  it(`${SEEDS} seeds of ${OPS} operations find no violation`, async (t) => {
    log.silent = true;
    let ops = 0;
    let virtual = 0;
    const sum = { crashes: 0, takeovers: 0, suspensions: 0, faults: 0 };
    try {
      for (let seed = 1; seed <= SEEDS; seed++) {
        const r = await simulate({ seed, ops: OPS });
        ops += r.ops;
        virtual += r.virtualSeconds;
        for (const k of Object.keys(sum) as Array<keyof typeof sum>) sum[k] += r[k];
      }
    } finally {
      log.silent = false;
    }
    t.diagnostic(
      `simulation: seeds 1..${SEEDS}, ${ops} operations, ${virtual} s of virtual time, ${sum.crashes} crashes, ${sum.takeovers} takeovers, ${sum.suspensions} lease outages, ${sum.faults} fault phases`,
    );
    assert.ok(ops >= SEEDS * OPS);
    assert.ok(sum.crashes > 0 && sum.takeovers > 0 && sum.suspensions > 0 && sum.faults > 0, 'every kind of event happened');
  });
});
