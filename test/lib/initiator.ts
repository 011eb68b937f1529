import * as net from 'node:net';
import { Framer } from '../../src/iscsi/framer';
import { parseText, serializeText } from '../../src/iscsi/login/text-codec';
import {
  decodeTargetPdu,
  encodeDataOut,
  encodeLoginRequest,
  encodeLogoutRequest,
  encodeScsiCommand,
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

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.framer.push(chunk);
      for (let f = this.framer.next(); f; f = this.framer.next()) this.queue.push(decodeTargetPdu(f));
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

  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  send(f: OutFrame): void {
    const data = f.data ?? Buffer.alloc(0);
    this.socket.write(Buffer.concat([f.bhs, data, Buffer.alloc(pad4(data.length) - data.length)]));
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
    opts: { initiatorName?: string; target?: string; keys?: Array<[string, string]>; isid?: Buffer } = {},
  ): Promise<Record<string, string>> {
    const pairs: Array<[string, string]> = [
      ['InitiatorName', opts.initiatorName ?? 'iqn.2026-11.test:raw-initiator'],
      ...(opts.target
        ? ([
            ['TargetName', opts.target],
            ['SessionType', 'Normal'],
          ] as Array<[string, string]>)
        : ([['SessionType', 'Discovery']] as Array<[string, string]>)),
      ['HeaderDigest', 'None'],
      ['DataDigest', 'None'],
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
    return Object.fromEntries(parseText(r.data));
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
