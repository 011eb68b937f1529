import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import type { AuthPolicy, SecurityExchange, SecurityStep } from './security';
import { LoginFailure, LoginStatus } from './status';
import type { TextPairs } from './text-codec';

/** CHAP_A values (IANA PPP authentication algorithms) we implement, strongest first. */
const ALGORITHMS: ReadonlyMap<string, { hash: string; bytes: number }> = new Map([
  ['8', { hash: 'sha3-256', bytes: 32 }],
  ['7', { hash: 'sha256', bytes: 32 }],
  ['6', { hash: 'sha1', bytes: 20 }],
  ['5', { hash: 'md5', bytes: 16 }],
]);

export interface ChapSecret {
  readonly username: string;
  readonly secret: string;
}

export interface ChapSettings {
  /** What the initiator must prove (CHAP_N / secret). */
  readonly initiator: ChapSecret;
  /** What the target answers with when the initiator asks it to prove itself (mutual CHAP). */
  readonly target?: ChapSecret;
}

/** RFC 7143 §6.1: binary values are 0x-hex or 0b-base64. */
export function decodeBinary(v: string): Buffer | undefined {
  if (/^0[xX][0-9a-fA-F]+$/.test(v) && v.length % 2 === 0) return Buffer.from(v.slice(2), 'hex');
  if (/^0[xX][0-9a-fA-F]+$/.test(v)) return Buffer.from(`0${v.slice(2)}`, 'hex');
  if (/^0[bB][A-Za-z0-9+/]+={0,2}$/.test(v)) return Buffer.from(v.slice(2), 'base64');
  return undefined;
}

const hex = (b: Buffer): string => `0x${b.toString('hex')}`;

/** RFC 1994 §4.1: Response = H(Identifier || secret || Challenge). */
export function chapResponse(hash: string, id: number, secret: string, challenge: Buffer): Buffer {
  return createHash(hash)
    .update(Buffer.from([id]))
    .update(Buffer.from(secret, 'utf8'))
    .update(challenge)
    .digest();
}

const fail = (why: string): LoginFailure => new LoginFailure(LoginStatus.AuthenticationFailure, `CHAP: ${why}`);

/**
 * One CHAP exchange (RFC 7143 §12.1.3): CHAP_A → CHAP_A, CHAP_I, CHAP_C with a fresh random
 * challenge → CHAP_N, CHAP_R (and for mutual CHAP the initiator's CHAP_I, CHAP_C) → checked
 * in constant time → CHAP_N, CHAP_R of the target when asked.
 */
class ChapExchange implements SecurityExchange {
  private step2: { hash: string; id: number; challenge: Buffer } | undefined;
  private done = false;

  constructor(private readonly settings: ChapSettings) {}

  step(pairs: TextPairs): SecurityStep {
    const get = (k: string): string | undefined => pairs.find(([key]) => key === k)?.[1];
    const a = get('CHAP_A');
    if (!this.step2) {
      if (a === undefined) return { reply: [], authenticated: false };
      // §12.1.3: take the first algorithm of the initiator's list that we implement.
      const chosen = a.split(',').find((x) => ALGORITHMS.has(x));
      if (!chosen) throw fail(`no supported CHAP_A in "${a}"`);
      const alg = ALGORITHMS.get(chosen) as { hash: string; bytes: number };
      this.step2 = { hash: alg.hash, id: randomInt(0, 256), challenge: randomBytes(Math.max(16, alg.bytes)) };
      return {
        reply: [
          ['CHAP_A', chosen],
          ['CHAP_I', String(this.step2.id)],
          ['CHAP_C', hex(this.step2.challenge)],
        ],
        authenticated: false,
      };
    }
    if (this.done) return { reply: [], authenticated: true };
    const n = get('CHAP_N');
    const r = get('CHAP_R');
    if (n === undefined || r === undefined) throw fail('CHAP_N and CHAP_R expected');
    const got = decodeBinary(r);
    if (!got) throw fail('CHAP_R is not a binary value');
    const want = chapResponse(this.step2.hash, this.step2.id, this.settings.initiator.secret, this.step2.challenge);
    // Compare in constant time; the user name check happens after, so timing reveals nothing.
    const responseOk = got.length === want.length && timingSafeEqual(got, want);
    if (!responseOk || n !== this.settings.initiator.username) throw fail(`wrong credentials for user "${n}"`);
    const reply: Array<[string, string]> = [];
    const mi = get('CHAP_I');
    const mc = get('CHAP_C');
    if (mi !== undefined || mc !== undefined) {
      // Mutual CHAP: the initiator challenges us.
      const target = this.settings.target;
      if (!target) throw fail('the initiator asked for mutual CHAP, which this target has no credentials for');
      if (mi === undefined || mc === undefined || !/^[0-9]{1,3}$/.test(mi) || Number(mi) > 255) throw fail('bad mutual CHAP_I/CHAP_C');
      const challenge = decodeBinary(mc);
      if (!challenge || challenge.length < 1) throw fail('bad mutual CHAP_C');
      // A reflection attack sends our own challenge back for us to answer.
      if (challenge.equals(this.step2.challenge)) throw fail('the mutual challenge reflects ours');
      reply.push(['CHAP_N', target.username], ['CHAP_R', hex(chapResponse(this.step2.hash, Number(mi), target.secret, challenge))]);
    }
    this.done = true;
    return { reply, authenticated: true };
  }

  finish(): void {}
}

/** AuthMethod=CHAP only: initiators without CHAP credentials cannot log in. */
export function chapPolicy(settings: ChapSettings): AuthPolicy {
  return { methods: ['CHAP'], create: () => new ChapExchange(settings) };
}
