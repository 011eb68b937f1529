import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/config';
import { ConfigError } from '../../src/config/errors';

const NODES = `cluster:
  self: a
  secret: a-secret-of-sixteen-bytes
  nodes:
    - { name: a, portals: [127.0.0.1:3260], tpg: 1, admin: 127.0.0.1:9471, replication: 127.0.0.1:3270 }
    - { name: b, portals: [127.0.0.1:3261], tpg: 2, admin: 127.0.0.1:9472, replication: 127.0.0.1:3271 }
`;
const LUNS = `targets:
  - iqn: iqn.2026-11.io.s3tgt:ha
    luns:
      - { lun: 0, name: ha0, size: 1GiB, preferred: b }
`;

function fails(yaml: string, re: RegExp): void {
  assert.throws(
    () => parseConfig(yaml, 'ha.yaml'),
    (e: unknown) => e instanceof ConfigError && re.test(e.message),
  );
}

describe('cluster configuration (docs/ha.md)', () => {
  it("a node's portals, admin endpoint and tpg become the server's portals, metrics endpoint and portal group tag", () => {
    const c = parseConfig(NODES + LUNS, 'ha.yaml');
    assert.equal(c.cluster?.self.name, 'a');
    assert.deepEqual(c.portals, [{ host: '127.0.0.1', port: 3260 }]);
    assert.deepEqual(c.metrics.listen, { host: '127.0.0.1', port: 9471 });
    assert.equal(c.targets[0].portalGroupTag, 1);
    assert.equal(c.targets[0].luns[0].preferred, 'b');
  });

  it('the shipped example pair loads, and differs only in which node it is', () => {
    const dir = path.resolve(__dirname, '../../../config');
    const a = parseConfig(readFileSync(path.join(dir, 'ha-a.yaml'), 'utf8'), path.join(dir, 'ha-a.yaml'));
    const b = parseConfig(readFileSync(path.join(dir, 'ha-b.yaml'), 'utf8'), path.join(dir, 'ha-b.yaml'));
    assert.deepEqual([a.cluster?.self.name, b.cluster?.self.name], ['a', 'b']);
    assert.equal(a.dataDir, b.dataDir, 'one shared local store');
    assert.notDeepEqual(a.portals, b.portals);
    assert.deepEqual(a.targets[0].luns, b.targets[0].luns);
  });

  it('S3TGT_NODE names the node when the file does not', () => {
    process.env.S3TGT_NODE = 'b';
    try {
      const c = parseConfig(NODES.replace('  self: a\n', '') + LUNS, 'ha.yaml');
      assert.equal(c.cluster?.self.name, 'b');
      assert.equal(c.targets[0].portalGroupTag, 2);
    } finally {
      delete process.env.S3TGT_NODE;
    }
  });

  it('bad clusters are refused with file, line and key', () => {
    fails(NODES.replace('self: a', 'self: c') + LUNS, /ha\.yaml:2:\d+: cluster\.self: "c" is not one of the nodes \(a, b\)/);
    fails(NODES.replace('name: b', 'name: a') + LUNS, /repeats the name or tpg/);
    fails(NODES.replace('tpg: 2', 'tpg: 1') + LUNS, /repeats the name or tpg/);
    fails(NODES + LUNS.replace('preferred: b', 'preferred: z'), /preferred: "z" is not a node of the cluster/);
    fails(`portals: [127.0.0.1:3260]\n${NODES}${LUNS}`, /portals.*drop "portals"/);
    fails(NODES.replace('secret: a-secret-of-sixteen-bytes', 'secret: short') + LUNS, /at least 16 bytes/);
    fails(
      `journal: { dir: /tmp/j }\n${NODES.replace(/, replication: [0-9.:]+/g, '')}${LUNS.replace('preferred: b', 'preferred: b, cache: { mode: journal }')}`,
      /every node needs "replication"/,
    );
    fails(
      `cluster:\n  self: a\n  nodes:\n    - { name: a, portals: [127.0.0.1:3260], tpg: 1, admin: 127.0.0.1:9471 }\n${LUNS}`,
      /at least two nodes/,
    );
  });
});
