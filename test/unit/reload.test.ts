import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeReload, planReload } from '../../src/app/reload';
import { parseConfig } from '../../src/config/config';

/** A configuration with one target; `extra` is appended under the target (YAML, 4-space indent). */
function config(luns: string, opts: { extra?: string; port?: number; iqn?: string } = {}): ReturnType<typeof parseConfig> {
  const text = [
    'portals:',
    `  - 127.0.0.1:${opts.port ?? 3260}`,
    'dataDir: /tmp/s3tgt-reload-unit',
    'targets:',
    `  - iqn: ${opts.iqn ?? 'iqn.2026-11.io.s3tgt:a'}`,
    ...(opts.extra ? [opts.extra] : []),
    '    luns:',
    luns,
  ].join('\n');
  return parseConfig(text, 'reload.yaml');
}

const lun = (n: number, name: string, size: string, more = ''): string => `      - lun: ${n}\n        name: ${name}\n        size: ${size}\n${more}`;

const none = (): undefined => undefined;

describe('planReload (SIGHUP)', () => {
  it('reports nothing for an identical configuration', () => {
    const a = config(lun(0, 'd0', '1GiB'));
    const plan = planReload(a, config(lun(0, 'd0', '1GiB')), none);
    assert.deepEqual(plan, { newLuns: [], grown: [], changedTargets: [], needsRestart: [] });
    assert.equal(describeReload(plan), 'nothing changed');
  });

  it('adds a LUN and republishes its target', () => {
    const a = config(lun(0, 'd0', '1GiB'));
    const b = config(lun(0, 'd0', '1GiB') + lun(1, 'd1', '64MiB'));
    const plan = planReload(a, b, none);
    assert.deepEqual(
      plan.newLuns.map((n) => [n.target, n.lun.name, n.lun.lun]),
      [['iqn.2026-11.io.s3tgt:a', 'd1', 1]],
    );
    assert.deepEqual(
      plan.changedTargets.map((t) => t.iqn),
      ['iqn.2026-11.io.s3tgt:a'],
    );
    assert.deepEqual(plan.needsRestart, []);
    assert.match(describeReload(plan), /\+LUN d1/);
  });

  it('grows a LUN when the configured size exceeds the served size, never shrinks', () => {
    const a = config(lun(0, 'd0', '1GiB'));
    const grow = planReload(a, config(lun(0, 'd0', '2GiB')), none);
    assert.deepEqual(grow.grown, [{ name: 'd0', sizeBytes: 2 * 1024 ** 3 }]);
    assert.deepEqual(grow.needsRestart, []);

    // The served size wins over the old configuration (a LUN grown online by the admin API).
    const served = (name: string): number | undefined => (name === 'd0' ? 4 * 1024 ** 3 : undefined);
    const shrink = planReload(a, config(lun(0, 'd0', '2GiB')), served);
    assert.deepEqual(shrink.grown, []);
    assert.equal(shrink.needsRestart.length, 1);
    assert.match(shrink.needsRestart[0] ?? '', /never shrink/);
  });

  it('applies ACL changes by republishing the target', () => {
    const a = config(lun(0, 'd0', '1GiB'));
    const b = config(lun(0, 'd0', '1GiB'), { extra: '    acl: { initiators: ["iqn.2026-11.ok:*"] }' });
    const plan = planReload(a, b, none);
    assert.deepEqual(
      plan.changedTargets.map((t) => t.iqn),
      ['iqn.2026-11.io.s3tgt:a'],
    );
    assert.deepEqual(plan.newLuns, []);
    assert.deepEqual(plan.needsRestart, []);
  });

  it('leaves portal changes, removals, renumbering and settings changes for a restart', () => {
    const a = config(lun(0, 'd0', '1GiB') + lun(1, 'd1', '1GiB'));
    const cases: Array<[ReturnType<typeof parseConfig>, RegExp]> = [
      [config(lun(0, 'd0', '1GiB') + lun(1, 'd1', '1GiB'), { port: 3261 }), /portals changed/],
      [config(lun(0, 'd0', '1GiB')), /LUN "d1" removed/],
      [config(lun(0, 'd0', '1GiB') + lun(2, 'd1', '1GiB')), /LUN "d1" moved/],
      [config(lun(0, 'd0', '1GiB') + lun(1, 'other', '1GiB')), /LUN 1 now names "other"/],
      [config(lun(0, 'd0', '1GiB') + lun(1, 'd1', '1GiB', '        blockSize: 4096\n')), /LUN "d1" settings changed/],
      [config(lun(0, 'd0', '1GiB') + lun(1, 'd1', '1GiB'), { iqn: 'iqn.2026-11.io.s3tgt:b' }), /target iqn.2026-11.io.s3tgt:a removed/],
    ];
    for (const [next, why] of cases) {
      const plan = planReload(a, next, none);
      assert.ok(
        plan.needsRestart.some((r) => why.test(r)),
        `${why} expected in ${JSON.stringify(plan.needsRestart)}`,
      );
      assert.match(describeReload(plan), /not applied: /);
    }
  });
});
