import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { TargetProcess, TEST_IQN } from '../harness/target';
import { read10, TUR, write10 } from '../lib/cdb';
import { TestInitiator } from '../lib/initiator';

/**
 * Windows Failover Clustering validation ("Validate SCSI-3 Persistent Reservation") against a
 * real s3tgt process: each cluster node is an iSCSI session of its own (Microsoft IQN, Windows
 * ISID 0x40000137xxxx), and the suite replays the clusdisk sequence (REGISTER, READ KEYS,
 * RESERVE, READ RESERVATION, media access of the others, PREEMPT, unregister) for every
 * persistent reservation type, then session loss, target restart (APTPL) and the remaining
 * service actions. Every command consumes unit attentions the way an initiator does: a CHECK
 * CONDITION with sense key 6h is noted and the command is sent again.
 */

const GOOD = 0x00;
const CHECK_CONDITION = 0x02;
const RESERVATION_CONFLICT = 0x18;
const BLOCK = 512;

/** SPC-5 §6.16.1: PERSISTENT RESERVE IN service actions. */
const PrIn = { ReadKeys: 0, ReadReservation: 1, ReportCapabilities: 2, ReadFullStatus: 3 } as const;
/** SPC-5 §6.17.1: PERSISTENT RESERVE OUT service actions. */
const PrOut = { Register: 0, Reserve: 1, Release: 2, Clear: 3, Preempt: 4, RegisterAndIgnore: 6 } as const;

/** SPC-5 §6.16.3 Table (persistent reservation TYPE codes) with their names. */
const TYPES: ReadonlyArray<[number, string]> = [
  [1, 'Write Exclusive'],
  [3, 'Exclusive Access'],
  [5, 'Write Exclusive - Registrants Only'],
  [6, 'Exclusive Access - Registrants Only'],
  [7, 'Write Exclusive - All Registrants'],
  [8, 'Exclusive Access - All Registrants'],
];
const WE_RO = 5;

/**
 * SPC-5 §5.13.1 (persistent reservation types and the media access they leave to others):
 * [registered non-holder may read, may write, unregistered may read, may write]. The holder
 * may always read and write.
 */
const ACCESS: Record<number, [boolean, boolean, boolean, boolean]> = {
  1: [true, false, true, false],
  3: [false, false, false, false],
  5: [true, true, true, false],
  6: [true, true, false, false],
  7: [true, true, true, false],
  8: [true, true, false, false],
};
const allRegistrants = (type: number): boolean => type === 7 || type === 8;
const registrantsOnly = (type: number): boolean => type === 5 || type === 6;

const nodeIqn = (i: number): string => `iqn.1991-05.com.microsoft:node${i}`;
const OUTSIDER_IQN = 'iqn.1991-05.com.microsoft:outsider';
/** The ISIDs the Microsoft initiator uses: 0x400001370000, 0x400001370001, ... */
const winIsid = (i: number): Buffer => Buffer.from((0x400001370000 + i).toString(16), 'hex');

interface Node {
  readonly iqn: string;
  readonly isid: Buffer;
  c: TestInitiator;
  /** Unit attentions this node consumed, as "asc/ascq" (e.g. "2a/05"), oldest first. */
  uas: string[];
  key: bigint;
}

interface Result {
  readonly status: number;
  readonly sense: Buffer;
  readonly data: Buffer;
}

const hex2 = (b: number): string => b.toString(16).padStart(2, '0');

/** Sense key and "asc/ascq" of fixed (70h/71h) or descriptor (72h/73h) sense data (SPC-5 §4.4). */
function senseOf(s: Buffer): { key: number; code: string } {
  if ((s[0] & 0x7f) >= 0x72) return { key: s[1] & 0x0f, code: `${hex2(s[2])}/${hex2(s[3])}` };
  return { key: s[2] & 0x0f, code: `${hex2(s[12])}/${hex2(s[13])}` };
}

/** Sends a command; a unit attention (CHECK CONDITION, sense key 6h) is noted and the command retried. */
async function exec(n: Node, cdb: Buffer, opts: { read?: number; write?: Buffer } = {}): Promise<Result> {
  for (let tries = 0; tries < 8; tries++) {
    const r = await n.c.response(n.c.command(cdb, opts));
    if (r.status !== CHECK_CONDITION || senseOf(r.sense).key !== 0x6) return r;
    n.uas.push(senseOf(r.sense).code);
  }
  throw new Error(`${n.iqn}: unit attentions do not stop`);
}

/** The unit attentions a node saw since the last call (after a TEST UNIT READY to collect them). */
async function takeUas(n: Node): Promise<string[]> {
  assert.equal((await exec(n, TUR)).status, GOOD, `${n.iqn}: TEST UNIT READY`);
  const seen = n.uas;
  n.uas = [];
  return seen;
}

/** PERSISTENT RESERVE OUT (SPC-5 §6.17.2 CDB, §6.17.3 basic 24-byte parameter list), LU_SCOPE. */
function prout(n: Node, sa: number, type: number, key: bigint, saKey: bigint, aptpl = false): Promise<Result> {
  const cdb = Buffer.alloc(10);
  cdb[0] = 0x5f;
  cdb[1] = sa;
  cdb[2] = type & 0x0f; // SCOPE 0h (LU_SCOPE) in the high nibble
  cdb.writeUInt32BE(24, 5); // PARAMETER LIST LENGTH
  const p = Buffer.alloc(24);
  p.writeBigUInt64BE(key, 0); // RESERVATION KEY
  p.writeBigUInt64BE(saKey, 8); // SERVICE ACTION RESERVATION KEY
  p[20] = aptpl ? 0x01 : 0; // APTPL
  return exec(n, cdb, { write: p });
}

/** The status of a PERSISTENT RESERVE OUT. */
async function proutStatus(n: Node, sa: number, type: number, key: bigint, saKey: bigint, aptpl = false): Promise<number> {
  return (await prout(n, sa, type, key, saKey, aptpl)).status;
}

/** PERSISTENT RESERVE IN (SPC-5 §6.16.1): the parameter data, which must come with GOOD status. */
async function prin(n: Node, sa: number): Promise<Buffer> {
  const cdb = Buffer.alloc(10);
  cdb[0] = 0x5e;
  cdb[1] = sa;
  cdb.writeUInt16BE(4096, 7); // ALLOCATION LENGTH
  const r = await exec(n, cdb, { read: 4096 });
  assert.equal(r.status, GOOD, `${n.iqn}: PERSISTENT RESERVE IN ${sa}`);
  return r.data;
}

/** READ KEYS (SPC-5 §6.16.2): PRGENERATION and the key list (sorted: the order is not specified). */
async function readKeys(n: Node): Promise<{ generation: number; keys: bigint[] }> {
  const d = await prin(n, PrIn.ReadKeys);
  const len = d.readUInt32BE(4);
  assert.equal(d.length, 8 + len, 'ADDITIONAL LENGTH covers the key list');
  assert.equal(len % 8, 0);
  const keys: bigint[] = [];
  for (let o = 8; o < 8 + len; o += 8) keys.push(d.readBigUInt64BE(o));
  return { generation: d.readUInt32BE(0), keys: sorted(keys) };
}

/** READ RESERVATION (SPC-5 §6.16.3): PRGENERATION and the reservation, if any. */
async function readReservation(n: Node): Promise<{ generation: number; key?: bigint; scope?: number; type?: number }> {
  const d = await prin(n, PrIn.ReadReservation);
  const len = d.readUInt32BE(4);
  assert.ok(len === 0 || len === 16, `ADDITIONAL LENGTH ${len}`);
  assert.equal(d.length, 8 + len);
  if (len === 0) return { generation: d.readUInt32BE(0) };
  return { generation: d.readUInt32BE(0), key: d.readBigUInt64BE(8), scope: d[21] >> 4, type: d[21] & 0x0f };
}

/** REPORT CAPABILITIES (SPC-5 §6.16.4): PTPL_C and PTPL_A. */
async function ptpl(n: Node): Promise<{ capable: boolean; active: boolean }> {
  const d = await prin(n, PrIn.ReportCapabilities);
  assert.equal(d.readUInt16BE(0), 8, 'LENGTH');
  return { capable: (d[2] & 0x01) !== 0, active: (d[3] & 0x01) !== 0 };
}

const sorted = (keys: readonly bigint[]): bigint[] => [...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

/** A random non-zero 8-byte reservation key, distinct from `taken` (clusdisk picks random keys). */
function randomKey(taken: readonly bigint[] = []): bigint {
  for (;;) {
    const k = randomBytes(8).readBigUInt64BE(0);
    if (k !== 0n && !taken.includes(k)) return k;
  }
}

/** Logs a node in (its own session) and collects its first unit attentions with TEST UNIT READY. */
async function join(port: number, iqn: string, isid: Buffer): Promise<Node> {
  const c = await TestInitiator.connect(port);
  await c.login({ initiatorName: iqn, isid, target: TEST_IQN });
  const n: Node = { iqn, isid, c, uas: [], key: 0n };
  assert.equal((await exec(n, TUR)).status, GOOD);
  return n;
}

/** Logs a node in again over a new connection, same IQN and ISID (the same I_T nexus). */
async function rejoin(port: number, n: Node): Promise<void> {
  const c = await TestInitiator.connect(port);
  await c.login({ initiatorName: n.iqn, isid: n.isid, target: TEST_IQN });
  n.c = c;
  n.uas = [];
  assert.equal((await exec(n, TUR)).status, GOOD);
}

async function leave(n: Node): Promise<void> {
  n.c.logout();
  for (;;) {
    const p = await n.c.recv(2000);
    if (typeof p === 'string' || p.kind === 'logout-response') break;
  }
  n.c.close();
}

/** Removes whatever an earlier (failed) test left: register, then CLEAR (SPC-5 §5.13.11.6). */
async function wipe(n: Node): Promise<void> {
  const k = randomKey();
  assert.equal(await proutStatus(n, PrOut.RegisterAndIgnore, 0, 0n, k), GOOD);
  assert.equal(await proutStatus(n, PrOut.Clear, 0, k, 0n), GOOD);
  assert.deepEqual((await readKeys(n)).keys, []);
  n.uas = [];
}

/**
 * `n` reads and writes one block at `lba`; the outcome must be [read, write] (GOOD, or
 * RESERVATION CONFLICT for a denied access). `checker` (a node allowed to read) then confirms
 * that a refused write did not land and an accepted one did.
 */
async function expectAccess(n: Node, lba: number, expected: readonly [boolean, boolean], checker: Node): Promise<void> {
  const r = await exec(n, read10(lba, 1), { read: BLOCK });
  const data = randomBytes(BLOCK);
  const w = await exec(n, write10(lba, 1), { write: data });
  for (const s of [r.status, w.status]) assert.ok(s === GOOD || s === RESERVATION_CONFLICT, `${n.iqn}: unexpected status 0x${s.toString(16)}`);
  assert.deepEqual([r.status === GOOD, w.status === GOOD], [...expected], `${n.iqn}: [may read, may write]`);
  const back = await exec(checker, read10(lba, 1), { read: BLOCK });
  assert.equal(back.status, GOOD, `${checker.iqn} reads back`);
  assert.equal(back.data.equals(data), expected[1], expected[1] ? 'the write landed' : 'the refused write did not land');
}

describe('Windows Failover Clustering: Validate SCSI-3 Persistent Reservation (one target)', () => {
  const target = new TargetProcess({ logLevel: 'info' });
  before(() => target.start());
  after(() => target.stop());

  /**
   * Source: Windows Failover Clustering validation, "Validate SCSI-3 Persistent Reservation"
   * (the clusdisk sequence), with the semantics of SPC-5 §5.13 (registering §5.13.7, reserving,
   * access by type §5.13.1, preempting §5.13.11.4, unregistering §5.13.11.3) and PRGENERATION
   * per SPC-5 §6.16.2.
   */
  async function clusterValidation(nodeCount: number, type: number): Promise<void> {
    const outsider = await join(target.port, OUTSIDER_IQN, winIsid(0));
    await wipe(outsider);
    const nodes: Node[] = [];
    for (let i = 1; i <= nodeCount; i++) nodes.push(await join(target.port, nodeIqn(i), winIsid(i - 1)));
    for (const n of [outsider, ...nodes]) n.uas = [];
    const [n1, n2] = nodes;
    const others = nodes.slice(1);
    const rest = nodes.slice(2);
    const ar = allRegistrants(type);
    const [regRead, regWrite, unregRead, unregWrite] = ACCESS[type];
    const lba = 64 * type + 8 * nodeCount;

    const start = await readKeys(n1);
    assert.deepEqual(start.keys, [], 'no registrations before the test');
    let gen = start.generation;

    // Each node registers a random key (REGISTER, RESERVATION KEY 0); READ KEYS from another
    // node sees the list grow and PRGENERATION go up by one each time.
    for (const [i, n] of nodes.entries()) {
      n.key = randomKey(nodes.map((x) => x.key));
      assert.equal(await proutStatus(n, PrOut.Register, 0, 0n, n.key), GOOD, `${n.iqn} registers`);
      gen++;
      const rk = await readKeys(nodes[(i + 1) % nodes.length]);
      assert.equal(rk.generation, gen, 'REGISTER increments PRGENERATION');
      assert.deepEqual(rk.keys, sorted(nodes.slice(0, i + 1).map((x) => x.key)));
    }

    // Node 1 reserves; RESERVE does not change PRGENERATION (SPC-5 §6.16.2).
    assert.equal(await proutStatus(n1, PrOut.Reserve, type, n1.key, 0n), GOOD, 'node 1 reserves');
    assert.equal(await proutStatus(n1, PrOut.Reserve, type, n1.key, 0n), GOOD, 'the holder reserving the same type again: GOOD');
    assert.equal(await proutStatus(n1, PrOut.Reserve, type === 1 ? 3 : 1, n1.key, 0n), RESERVATION_CONFLICT, 'the holder asking another type');
    assert.equal((await readKeys(n2)).generation, gen, 'RESERVE leaves PRGENERATION alone');
    // Everyone sees the reservation; all-registrants types report key 0 (SPC-5 §6.16.3).
    for (const n of [...nodes, outsider]) {
      assert.deepEqual(await readReservation(n), { generation: gen, key: ar ? 0n : n1.key, scope: 0, type }, `READ RESERVATION by ${n.iqn}`);
    }
    // Node 2 trying to reserve: a conflict, except for all-registrants types where it already is a holder.
    assert.equal(await proutStatus(n2, PrOut.Reserve, type, n2.key, 0n), ar ? GOOD : RESERVATION_CONFLICT, 'node 2 reserves');
    assert.equal(await proutStatus(n2, PrOut.Reserve, type, n1.key, 0n), RESERVATION_CONFLICT, 'node 2 quoting the key of node 1');

    // Media access against the type.
    await expectAccess(n1, lba, [true, true], n1);
    for (const n of others) await expectAccess(n, lba + 1, [regRead, regWrite], n1);
    await expectAccess(outsider, lba + 2, [unregRead, unregWrite], n1);
    for (const n of [outsider, ...nodes]) assert.deepEqual(await takeUas(n), [], `${n.iqn}: no unit attention yet`);

    // Node 2 preempts node 1's key: node 1's registration is removed (and for the
    // non-all-registrants types the reservation moves to node 2, same type).
    assert.equal(await proutStatus(n2, PrOut.Preempt, type, n2.key, n1.key), GOOD, 'node 2 preempts node 1');
    gen++;
    const afterPreempt = await readKeys(n2);
    assert.equal(afterPreempt.generation, gen, 'PREEMPT increments PRGENERATION');
    assert.deepEqual(afterPreempt.keys, sorted(others.map((x) => x.key)), 'node 1 is no longer registered');
    assert.deepEqual(await readReservation(n2), { generation: gen, key: ar ? 0n : n2.key, scope: 0, type });
    // SPC-5 §5.13.11.4: the preempted nexus gets REGISTRATIONS PREEMPTED (2Ah/05h); the type did
    // not change, so nobody else gets RESERVATIONS RELEASED.
    assert.deepEqual(await takeUas(n1), ['2a/05'], 'node 1 learns it was preempted');
    for (const n of [outsider, ...others]) assert.deepEqual(await takeUas(n), [], `${n.iqn}: no unit attention`);
    // Node 1 is out: it may not re-register with its old key, reserve, or preempt back.
    assert.equal(await proutStatus(n1, PrOut.Register, 0, n1.key, n1.key), RESERVATION_CONFLICT, 'node 1 quoting its lost key');
    assert.equal(await proutStatus(n1, PrOut.Reserve, type, n1.key, 0n), RESERVATION_CONFLICT, 'node 1 reserves');
    assert.equal(await proutStatus(n1, PrOut.Preempt, type, n1.key, n2.key), RESERVATION_CONFLICT, 'node 1 preempts back');
    assert.equal((await readKeys(n1)).generation, gen, 'refused commands leave PRGENERATION alone');
    await expectAccess(n1, lba + 3, [unregRead, unregWrite], n2);
    await expectAccess(n2, lba + 4, [true, true], n2);

    // Unregister (REGISTER, SERVICE ACTION RESERVATION KEY 0), the holder first: it releases a
    // non-all-registrants reservation, telling the registrants of a registrants-only type
    // (RESERVATIONS RELEASED, 2Ah/04h); an all-registrants one lasts while anyone is registered.
    assert.equal(await proutStatus(n2, PrOut.Register, 0, n2.key, 0n), GOOD, 'node 2 unregisters');
    gen++;
    const lasting = ar && rest.length > 0;
    assert.deepEqual(await readReservation(n1), lasting ? { generation: gen, key: 0n, scope: 0, type } : { generation: gen });
    for (const n of rest) assert.deepEqual(await takeUas(n), registrantsOnly(type) ? ['2a/04'] : [], `${n.iqn} after the holder left`);
    for (const n of rest) {
      assert.equal(await proutStatus(n, PrOut.Register, 0, n.key, 0n), GOOD, `${n.iqn} unregisters`);
      gen++;
    }
    assert.deepEqual(await readKeys(outsider), { generation: gen, keys: [] }, 'final READ KEYS is empty');
    assert.deepEqual(await readReservation(outsider), { generation: gen });
    await expectAccess(outsider, lba + 5, [true, true], n1);
    for (const n of [outsider, ...nodes]) assert.deepEqual(await takeUas(n), [], `${n.iqn}: no stray unit attention`);
    for (const n of [outsider, ...nodes]) await leave(n);
  }

  for (const nodeCount of [2, 3]) {
    for (const [type, name] of TYPES) {
      // Source: Windows Failover Clustering validation, "Validate SCSI-3 Persistent Reservation";
      // semantics per SPC-5 §5.13 and §6.16/§6.17.
      it(`${nodeCount} nodes, type ${type}h ${name}: register, read keys, reserve, read reservation, access, preempt, unregister`, () =>
        clusterValidation(nodeCount, type));
    }
  }

  /**
   * Source: SPC-5 §5.13.11.1 (persistent reservations and registrations are not lost when an
   * I_T nexus is; only a reset kind that the standard names or a power loss without APTPL
   * removes them) and §5.13.7 (a registration belongs to one I_T nexus: initiator port =
   * IQN + ISID); the situation is Windows Failover Clustering's: a node's iSCSI connection
   * drops and the Microsoft initiator logs in again with the same ISID.
   */
  it('state survives a session drop: node 1 reconnects (same IQN and ISID) and still holds its registration and reservation', async () => {
    const outsider = await join(target.port, OUTSIDER_IQN, winIsid(0));
    await wipe(outsider);
    const n1 = await join(target.port, nodeIqn(1), winIsid(0));
    const n2 = await join(target.port, nodeIqn(2), winIsid(1));
    for (const n of [outsider, n1, n2]) n.uas = [];
    n1.key = randomKey();
    n2.key = randomKey([n1.key]);
    assert.equal(await proutStatus(n1, PrOut.Register, 0, 0n, n1.key), GOOD);
    assert.equal(await proutStatus(n2, PrOut.Register, 0, 0n, n2.key), GOOD);
    assert.equal(await proutStatus(n1, PrOut.Reserve, WE_RO, n1.key, 0n), GOOD);
    const before = await readKeys(n2);
    const data = randomBytes(BLOCK);
    assert.equal((await exec(n1, write10(900, 1), { write: data })).status, GOOD);

    // The TCP connection of node 1 goes away without a Logout.
    n1.c.close();
    while (!n1.c.closed) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(await readReservation(n2), { generation: before.generation, key: n1.key, scope: 0, type: WE_RO }, 'held while node 1 is away');
    assert.equal(await proutStatus(n2, PrOut.Reserve, WE_RO, n2.key, 0n), RESERVATION_CONFLICT);
    await expectAccess(outsider, 901, [true, false], n2);
    // Same IQN, another ISID: another initiator port, so another I_T nexus, neither registered nor holder.
    const sibling = await join(target.port, nodeIqn(1), winIsid(7));
    await expectAccess(sibling, 902, [true, false], n2);
    assert.equal(await proutStatus(sibling, PrOut.Register, 0, n1.key, n1.key), RESERVATION_CONFLICT, 'the key is not the IQN’s');
    await leave(sibling);

    // Node 1 logs in again, same IQN and ISID.
    await rejoin(target.port, n1);
    assert.deepEqual(await readKeys(n1), before, 'the same keys and PRGENERATION');
    assert.deepEqual(await readReservation(n1), { generation: before.generation, key: n1.key, scope: 0, type: WE_RO });
    // READ FULL STATUS (SPC-5 §6.16.5): node 1's descriptor is the holder, with its TransportID.
    const full = await prin(n1, PrIn.ReadFullStatus);
    const descs: Array<{ key: bigint; holder: boolean; type: number; tid: string }> = [];
    for (let o = 8; o < full.length; ) {
      const tidLen = full.readUInt32BE(o + 20);
      descs.push({
        key: full.readBigUInt64BE(o),
        holder: (full[o + 12] & 0x01) !== 0,
        type: full[o + 13] & 0x0f,
        tid: full.subarray(o + 28, o + 24 + tidLen).toString('utf8'),
      });
      o += 24 + tidLen;
    }
    const mine = descs.find((d) => d.key === n1.key);
    assert.ok(mine, 'node 1 has a descriptor');
    assert.equal(mine.holder, true, 'R_HOLDER');
    assert.equal(mine.type, WE_RO);
    assert.match(mine.tid, /^iqn\.1991-05\.com\.microsoft:node1,i,0x400001370000\0*$/);
    assert.equal(descs.find((d) => d.key === n2.key)?.holder, false, 'node 2 is registered, not the holder');
    // Its media access still works, and what it wrote before is there.
    const back = await exec(n1, read10(900, 1), { read: BLOCK });
    assert.equal(back.status, GOOD);
    assert.ok(back.data.equals(data), 'the data written before the drop');
    await expectAccess(n1, 903, [true, true], n1);
    // It is still the holder: it can release (registrants only: node 2 gets RESERVATIONS RELEASED).
    assert.equal(await proutStatus(n1, PrOut.Release, WE_RO, n1.key, 0n), GOOD);
    assert.deepEqual(await readReservation(n2), { generation: before.generation });
    assert.deepEqual(await takeUas(n2), ['2a/04']);
    assert.equal(await proutStatus(n1, PrOut.Register, 0, n1.key, 0n), GOOD);
    assert.equal(await proutStatus(n2, PrOut.Register, 0, n2.key, 0n), GOOD);
    assert.deepEqual(await readKeys(outsider), { generation: before.generation + 2, keys: [] });
    for (const n of [outsider, n1, n2]) await leave(n);
  });

  /**
   * Source: SPC-5 §5.13.7 and §6.17.2 (REGISTER AND IGNORE EXISTING KEY ignores the RESERVATION
   * KEY field; REGISTER checks it), §5.13.11.2 (RELEASE: a non-holder's is a no-op, a wrong
   * type is INVALID RELEASE OF PERSISTENT RESERVATION 26h/04h, registrants-only types tell the
   * other registrants with RESERVATIONS RELEASED 2Ah/04h, RELEASE leaves PRGENERATION alone),
   * §5.13.11.6 (CLEAR: all gone, the others get RESERVATIONS PREEMPTED 2Ah/03h), §5.13.11.4
   * (PREEMPT with a zero or unknown key); clusdisk uses REGISTER AND IGNORE EXISTING KEY when a
   * node rejoins with a stale key, and RELEASE / CLEAR at the end of the validation.
   */
  it('REGISTER AND IGNORE EXISTING KEY, RELEASE and CLEAR', async () => {
    const outsider = await join(target.port, OUTSIDER_IQN, winIsid(0));
    await wipe(outsider);
    const n1 = await join(target.port, nodeIqn(1), winIsid(0));
    const n2 = await join(target.port, nodeIqn(2), winIsid(1));
    for (const n of [outsider, n1, n2]) n.uas = [];
    let gen = (await readKeys(n1)).generation;

    // REGISTER AND IGNORE EXISTING KEY: the RESERVATION KEY field is ignored, registered or not.
    const stale = randomKey();
    assert.equal(await proutStatus(n1, PrOut.RegisterAndIgnore, 0, randomKey(), stale), GOOD, 'unregistered, garbage key field');
    gen++;
    assert.deepEqual(await readKeys(n2), { generation: gen, keys: [stale] });
    n1.key = randomKey([stale]);
    assert.equal(await proutStatus(n1, PrOut.Register, 0, randomKey([stale]), n1.key), RESERVATION_CONFLICT, 'REGISTER checks the key');
    assert.deepEqual(await readKeys(n2), { generation: gen, keys: [stale] }, 'a refused REGISTER changes nothing');
    assert.equal(await proutStatus(n1, PrOut.RegisterAndIgnore, 0, randomKey([stale]), n1.key), GOOD, 'replaces the key');
    gen++;
    assert.deepEqual(await readKeys(n2), { generation: gen, keys: [n1.key] });
    n2.key = randomKey([n1.key]);
    assert.equal(await proutStatus(n2, PrOut.RegisterAndIgnore, 0, 0n, n2.key), GOOD);
    gen++;
    assert.deepEqual(await readKeys(n1), { generation: gen, keys: sorted([n1.key, n2.key]) });
    assert.equal(await proutStatus(n1, PrOut.Reserve, WE_RO, stale, 0n), RESERVATION_CONFLICT, 'the old key is no longer node 1’s');
    assert.equal(await proutStatus(n1, PrOut.Reserve, WE_RO, n1.key, 0n), GOOD);

    // PREEMPT edge cases: a zero key with a non-all-registrants reservation is an invalid
    // parameter; a key nobody holds is a conflict.
    const zero = await prout(n2, PrOut.Preempt, WE_RO, n2.key, 0n);
    assert.equal(zero.status, CHECK_CONDITION);
    assert.deepEqual(senseOf(zero.sense), { key: 0x5, code: '26/00' }, 'INVALID FIELD IN PARAMETER LIST');
    assert.equal(await proutStatus(n2, PrOut.Preempt, WE_RO, n2.key, randomKey([n1.key, n2.key])), RESERVATION_CONFLICT);
    assert.equal((await readKeys(n1)).generation, gen);

    // RELEASE.
    assert.equal(await proutStatus(outsider, PrOut.Release, WE_RO, 0n, 0n), RESERVATION_CONFLICT, 'an unregistered nexus');
    assert.equal(await proutStatus(n2, PrOut.Release, WE_RO, n2.key, 0n), GOOD, 'a registrant that is not the holder: no-op');
    assert.deepEqual(await readReservation(outsider), { generation: gen, key: n1.key, scope: 0, type: WE_RO }, 'still reserved');
    const wrongType = await prout(n1, PrOut.Release, 1, n1.key, 0n);
    assert.equal(wrongType.status, CHECK_CONDITION);
    assert.deepEqual(senseOf(wrongType.sense), { key: 0x5, code: '26/04' }, 'INVALID RELEASE OF PERSISTENT RESERVATION');
    assert.deepEqual(await readReservation(outsider), { generation: gen, key: n1.key, scope: 0, type: WE_RO }, 'still reserved');
    assert.equal(await proutStatus(n1, PrOut.Release, WE_RO, n1.key, 0n), GOOD, 'the holder releases');
    assert.deepEqual(await readReservation(outsider), { generation: gen }, 'released; RELEASE leaves PRGENERATION alone');
    assert.deepEqual((await readKeys(n1)).keys, sorted([n1.key, n2.key]), 'the registrations stay');
    assert.deepEqual(await takeUas(n2), ['2a/04'], 'registrants-only: node 2 gets RESERVATIONS RELEASED');
    assert.deepEqual(await takeUas(n1), [], 'not the releasing node');
    assert.deepEqual(await takeUas(outsider), [], 'not an unregistered nexus');
    // Releasing a Write Exclusive reservation tells nobody.
    assert.equal(await proutStatus(n1, PrOut.Reserve, 1, n1.key, 0n), GOOD);
    assert.equal(await proutStatus(n1, PrOut.Release, 1, n1.key, 0n), GOOD);
    assert.deepEqual(await takeUas(n2), [], 'Write Exclusive: no unit attention on release');
    await expectAccess(outsider, 950, [true, true], n1);

    // CLEAR, by a registrant that does not hold the reservation.
    assert.equal(await proutStatus(n2, PrOut.Reserve, 3, n2.key, 0n), GOOD);
    assert.equal(await proutStatus(outsider, PrOut.Clear, 0, 0n, 0n), RESERVATION_CONFLICT, 'an unregistered nexus');
    assert.equal(await proutStatus(n1, PrOut.Clear, 0, n2.key, 0n), RESERVATION_CONFLICT, 'a wrong key');
    assert.deepEqual(await readReservation(n1), { generation: gen, key: n2.key, scope: 0, type: 3 }, 'refused CLEARs change nothing');
    assert.equal(await proutStatus(n1, PrOut.Clear, 0, n1.key, 0n), GOOD);
    gen++;
    assert.deepEqual(await readKeys(outsider), { generation: gen, keys: [] }, 'CLEAR removes every registration');
    assert.deepEqual(await readReservation(outsider), { generation: gen }, 'and the reservation');
    assert.deepEqual(await takeUas(n2), ['2a/03'], 'RESERVATIONS PREEMPTED');
    assert.deepEqual(await takeUas(n1), [], 'not the clearing node');
    await expectAccess(outsider, 951, [true, true], n2);
    for (const n of [outsider, n1, n2]) await leave(n);
  });
});

describe('Windows Failover Clustering: persistent reservations across a target restart', () => {
  const target = new TargetProcess({ logLevel: 'info' });
  before(() => target.start());
  after(() => target.stop());

  /** SIGTERM and start again on the same data directory and port (a power cycle of the LU). */
  async function restart(): Promise<void> {
    assert.equal(await target.stop('SIGTERM'), 0, 'a clean exit on SIGTERM');
    await target.start();
  }

  /**
   * Source: SPC-5 §5.13.5 / §6.17.3 (APTPL = 1 in the last REGISTER: registrations and the
   * reservation persist across power loss), §6.16.2 (PRGENERATION is zero after a power on,
   * regardless of APTPL) and §6.16.4 (PTPL_A); Windows Failover Clustering validation checks
   * that the reservation of a clustered disk is still there after the storage restarts.
   */
  it('with APTPL=1 the keys and the reservation are there after a restart, and still work', async () => {
    const outsider = await join(target.port, OUTSIDER_IQN, winIsid(0));
    await wipe(outsider);
    const gen = (await readKeys(outsider)).generation;
    const n1 = await join(target.port, nodeIqn(1), winIsid(0));
    const n2 = await join(target.port, nodeIqn(2), winIsid(1));
    n1.key = randomKey();
    n2.key = randomKey([n1.key]);
    assert.deepEqual(await ptpl(n1), { capable: true, active: false }, 'PTPL_C set, no APTPL yet');
    assert.equal(await proutStatus(n1, PrOut.Register, 0, 0n, n1.key, true), GOOD);
    assert.equal(await proutStatus(n2, PrOut.Register, 0, 0n, n2.key, true), GOOD);
    assert.equal(await proutStatus(n1, PrOut.Reserve, WE_RO, n1.key, 0n), GOOD);
    assert.deepEqual(await ptpl(n2), { capable: true, active: true }, 'PTPL_A after REGISTER with APTPL');
    assert.equal((await readKeys(n1)).generation, gen + 2, 'two REGISTERs');
    const data = randomBytes(BLOCK);
    assert.equal((await exec(n1, write10(1000, 1), { write: data })).status, GOOD);
    for (const n of [n1, n2, outsider]) n.c.close();

    await restart();
    for (const n of [n1, n2, outsider]) await rejoin(target.port, n);
    for (const n of [n1, n2, outsider]) assert.deepEqual(await takeUas(n), ['29/00'], `${n.iqn}: POWER ON, RESET, OR BUS DEVICE RESET OCCURRED`);
    assert.deepEqual(await readKeys(n2), { generation: 0, keys: sorted([n1.key, n2.key]) }, 'keys back, PRGENERATION zero after power on');
    assert.deepEqual(await readReservation(outsider), { generation: 0, key: n1.key, scope: 0, type: WE_RO });
    assert.deepEqual(await ptpl(outsider), { capable: true, active: true });
    const back = await exec(n1, read10(1000, 1), { read: BLOCK });
    assert.ok(back.status === GOOD && back.data.equals(data), 'the holder reads what it wrote');
    await expectAccess(n1, 1001, [true, true], n1);
    await expectAccess(n2, 1002, [true, true], n1);
    await expectAccess(outsider, 1003, [true, false], n1);
    // Not only shown: node 2 can preempt node 1 as before the restart.
    assert.equal(await proutStatus(n1, PrOut.Reserve, WE_RO, n1.key, 0n), GOOD, 'node 1 is the holder');
    assert.equal(await proutStatus(n2, PrOut.Reserve, WE_RO, n2.key, 0n), RESERVATION_CONFLICT, 'node 2 is not');
    assert.equal(await proutStatus(n2, PrOut.Preempt, WE_RO, n2.key, n1.key), GOOD);
    assert.deepEqual(await takeUas(n1), ['2a/05']);
    assert.deepEqual(await readReservation(n1), { generation: 1, key: n2.key, scope: 0, type: WE_RO });
    assert.equal(await proutStatus(n2, PrOut.Register, 0, n2.key, 0n), GOOD);
    assert.deepEqual(await readKeys(outsider), { generation: 2, keys: [] });
    for (const n of [n1, n2, outsider]) await leave(n);
  });

  /**
   * Source: SPC-5 §5.13.5 (with APTPL = 0 in the last REGISTER, a power loss releases the
   * reservation and removes every registration) and §6.16.2 (PRGENERATION zero after power on).
   */
  it('without APTPL the keys and the reservation are gone after a restart', async () => {
    const outsider = await join(target.port, OUTSIDER_IQN, winIsid(0));
    await wipe(outsider);
    const n1 = await join(target.port, nodeIqn(1), winIsid(0));
    const n2 = await join(target.port, nodeIqn(2), winIsid(1));
    n1.key = randomKey();
    n2.key = randomKey([n1.key]);
    assert.equal(await proutStatus(n1, PrOut.Register, 0, 0n, n1.key), GOOD);
    assert.equal(await proutStatus(n2, PrOut.Register, 0, 0n, n2.key), GOOD);
    assert.equal(await proutStatus(n1, PrOut.Reserve, WE_RO, n1.key, 0n), GOOD);
    assert.deepEqual(await ptpl(n1), { capable: true, active: false });
    assert.deepEqual((await readKeys(outsider)).keys, sorted([n1.key, n2.key]));
    await expectAccess(outsider, 1100, [true, false], n1);
    for (const n of [n1, n2, outsider]) n.c.close();

    await restart();
    await rejoin(target.port, outsider);
    assert.deepEqual(await readKeys(outsider), { generation: 0, keys: [] }, 'registrations lost');
    assert.deepEqual(await readReservation(outsider), { generation: 0 }, 'reservation lost');
    await expectAccess(outsider, 1101, [true, true], outsider);
    await leave(outsider);
  });
});
