import * as net from 'node:net';
import { digestOf, writeDigest } from '../../src/iscsi/digest';
import { Framer } from '../../src/iscsi/framer';
import { parseText, serializeText } from '../../src/iscsi/login/text-codec';
import {
  decodeTargetPdu,
  encodeDataOut,
  encodeLoginRequest,
  encodeLogoutRequest,
  encodeScsiCommand,
  encodeTaskMgmtRequest,
  encodeTextRequest,
  type OutFrame,
  pad4,
  type TargetPdu,
} from '../../src/iscsi/pdu';

/**
 * A deliberately small initiator for tests: it speaks just enough RFC 7143 to log in, send
 * commands and raw bytes, and read what the target answers. It trusts nothing it is sent.
 */
export class TestInitiator {
  private readonly framer = new Framer(16 * 1024 * 1024);
  private readonly queue: TargetPdu[] = [];
  private waiters: Array<() => void> = [];
  closed = false;
  itt = 1;
  cmdSN = 1;
  expStatSN = 0;
  /** CRC32C digests in use (after a login that negotiated them). */
  private digests = { header: false, data: false };
  /** Test hooks: corrupt the next PDU's header or data digest. */
  corruptNext: 'header' | 'data' | undefined;
  /** Digest mismatches seen in what the target sent (must stay 0). */
  digestErrors = 0;
  failure: unknown;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.framer.push(chunk);
      try {
        for (let f = this.framer.next(); f; f = this.framer.next()) {
          if (f.dataDigestError) this.digestErrors++;
          this.queue.push(decodeTargetPdu(f));
        }
      } catch (e) {
        // A header digest error from the target (or an undecodable PDU): the stream is lost.
        this.digestErrors++;
        this.failure = e;
        socket.destroy();
      }
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number, host = '127.0.0.1'): Promise<TestInitiator> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host }, () => resolve(new TestInitiator(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }

  /** Stops reading from the socket (an initiator that does not read what the target sends). */
  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    this.socket.resume();
  }

  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  send(f: OutFrame): void {
    const data = f.data ?? Buffer.alloc(0);
    const padded = Buffer.concat([data, Buffer.alloc(pad4(data.length) - data.length)]);
    const parts = [f.bhs];
    const corrupt = this.corruptNext;
    this.corruptNext = undefined;
    if (this.digests.header) parts.push(writeDigest(digestOf(f.bhs) ^ (corrupt === 'header' ? 1 : 0)));
    parts.push(padded);
    if (this.digests.data && data.length > 0) parts.push(writeDigest(digestOf(padded) ^ (corrupt === 'data' ? 1 : 0)));
    this.socket.write(Buffer.concat(parts));
  }

  /** The next PDU, or 'closed' once the target closed, or 'timeout'. */
  async recv(timeoutMs = 5000): Promise<TargetPdu | 'closed' | 'timeout'> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const p = this.queue.shift();
      if (p) {
        if ('statSN' in p && p.kind !== 'r2t') this.expStatSN = (p.statSN + 1) >>> 0;
        return p;
      }
      if (this.closed) return 'closed';
      const left = end - Date.now();
      if (left <= 0) return 'timeout';
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async login(
    opts: { initiatorName?: string; target?: string; keys?: Array<[string, string]>; isid?: Buffer; digests?: boolean } = {},
  ): Promise<Record<string, string>> {
    const digest = opts.digests ? 'CRC32C' : 'None';
    const pairs: Array<[string, string]> = [
      ['InitiatorName', opts.initiatorName ?? 'iqn.2026-11.test:raw-initiator'],
      ...(opts.target
        ? ([
            ['TargetName', opts.target],
            ['SessionType', 'Normal'],
          ] as Array<[string, string]>)
        : ([['SessionType', 'Discovery']] as Array<[string, string]>)),
      ['HeaderDigest', digest],
      ['DataDigest', digest],
      ['InitialR2T', 'Yes'],
      ['ImmediateData', 'Yes'],
      ['MaxRecvDataSegmentLength', '65536'],
      ...(opts.keys ?? []),
    ];
    this.send(
      encodeLoginRequest({
        transit: true,
        cont: false,
        csg: 1,
        nsg: 3,
        versionMax: 0,
        versionMin: 0,
        isid: opts.isid ?? Buffer.from('400000000001', 'hex'),
        tsih: 0,
        itt: this.itt++,
        cid: 0,
        cmdSN: this.cmdSN,
        expStatSN: 0,
        data: serializeText(pairs),
      }),
    );
    const r = await this.recv();
    if (r === 'closed' || r === 'timeout' || r.kind !== 'login-response') throw new Error(`login: got ${typeof r === 'string' ? r : r.kind}`);
    if (r.statusClass !== 0) throw new Error(`login failed: status 0x${((r.statusClass << 8) | r.statusDetail).toString(16)}`);
    const answers = Object.fromEntries(parseText(r.data));
    // RFC 7143 §13.1: digests start with the first PDU after the final Login Response.
    this.digests = { header: answers.HeaderDigest === 'CRC32C', data: answers.DataDigest === 'CRC32C' };
    this.framer.headerDigest = this.digests.header;
    this.framer.dataDigest = this.digests.data;
    return answers;
  }

  /**
   * One Login Request/Response exchange (for security-stage tests); returns the response's
   * status (class << 8 | detail), its stage bits and its text.
   */
  async loginStep(
    csg: 0 | 1,
    nsg: 0 | 1 | 3,
    transit: boolean,
    pairs: Array<[string, string]>,
    isid = Buffer.from('400000000002', 'hex'),
  ): Promise<{ status: number; transit: boolean; nsg: number; text: Record<string, string> }> {
    this.send(
      encodeLoginRequest({
        transit,
        cont: false,
        csg,
        nsg: transit ? nsg : 0,
        versionMax: 0,
        versionMin: 0,
        isid,
        tsih: 0,
        itt: this.itt,
        cid: 0,
        cmdSN: this.cmdSN,
        expStatSN: this.expStatSN,
        data: serializeText(pairs),
      }),
    );
    const r = await this.recv();
    if (r === 'closed' || r === 'timeout' || r.kind !== 'login-response') throw new Error(`login: got ${typeof r === 'string' ? r : r.kind}`);
    return { status: (r.statusClass << 8) | r.statusDetail, transit: r.transit, nsg: r.nsg, text: Object.fromEntries(parseText(r.data)) };
  }

  /** A SCSI command with all its data as immediate data (keep it below FirstBurstLength). */
  command(cdb: Buffer, opts: { read?: number; write?: Buffer; lun?: bigint; itt?: number } = {}): number {
    const itt = opts.itt ?? this.itt++;
    const full = Buffer.alloc(16);
    cdb.copy(full);
    this.send(
      encodeScsiCommand({
        immediate: false,
        final: true,
        read: opts.read !== undefined,
        write: opts.write !== undefined,
        attr: 1,
        lun: opts.lun ?? 0n,
        itt,
        expectedDataLength: opts.read ?? opts.write?.length ?? 0,
        cmdSN: this.cmdSN,
        expStatSN: this.expStatSN,
        cdb: full,
        data: opts.write ?? Buffer.alloc(0),
      }),
    );
    this.cmdSN = (this.cmdSN + 1) >>> 0;
    return itt;
  }

  /** Waits for the response to `itt`, gathering Data-In. */
  async response(itt: number, timeoutMs = 5000): Promise<{ status: number; sense: Buffer; data: Buffer }> {
    const parts: Buffer[] = [];
    for (;;) {
      const p = await this.recv(timeoutMs);
      if (p === 'closed' || p === 'timeout') throw new Error(`no response to ITT ${itt}: ${p}`);
      if (p.kind === 'data-in' && p.itt === itt) {
        parts.push(p.data);
        if (p.status) return { status: p.status.status, sense: Buffer.alloc(0), data: Buffer.concat(parts) };
      } else if (p.kind === 'scsi-response' && p.itt === itt) {
        return { status: p.status, sense: p.sense, data: Buffer.concat(parts) };
      } else if (p.kind === 'r2t' && p.itt === itt) {
        throw new Error('unexpected R2T');
      }
    }
  }

  /** A task management function (RFC 7143 §11.5): 1 ABORT TASK (of `referencedTaskTag`), 5 LOGICAL UNIT RESET. */
  tmf(func: number, referencedTaskTag = 0xffffffff): number {
    const itt = this.itt++;
    this.send(
      encodeTaskMgmtRequest({
        immediate: true,
        func,
        lun: 0n,
        itt,
        referencedTaskTag,
        cmdSN: this.cmdSN,
        expStatSN: this.expStatSN,
        refCmdSN: 0,
        expDataSN: 0,
      }),
    );
    return itt;
  }

  /** Waits for the task management response to `itt` (other PDUs meanwhile are dropped). */
  async tmfResponse(itt: number, timeoutMs = 5000): Promise<number> {
    for (;;) {
      const p = await this.recv(timeoutMs);
      if (p === 'closed' || p === 'timeout') throw new Error(`no task management response to ITT ${itt}: ${p}`);
      if (p.kind === 'task-mgmt-response' && p.itt === itt) return p.response;
    }
  }

  dataOut(itt: number, ttt: number, offset: number, data: Buffer, dataSN: number, final: boolean): void {
    this.send(encodeDataOut({ final, lun: 0n, itt, ttt, expStatSN: this.expStatSN, dataSN, bufferOffset: offset, data }));
  }

  sendTargets(): void {
    this.send(
      encodeTextRequest({
        immediate: true,
        final: true,
        cont: false,
        lun: 0n,
        itt: this.itt++,
        ttt: 0xffffffff,
        cmdSN: this.cmdSN,
        expStatSN: this.expStatSN,
        data: serializeText([['SendTargets', 'All']]),
      }),
    );
  }

  logout(): void {
    this.send(encodeLogoutRequest({ immediate: true, reason: 0, itt: this.itt++, cid: 0, cmdSN: this.cmdSN, expStatSN: this.expStatSN }));
  }

  close(): void {
    this.socket.destroy();
  }
}
