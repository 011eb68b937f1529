import { StoredRecord } from '../../storage/record';
import { log } from '../../util/log';
import type { LogicalUnit } from '../logical-unit';

/** SPC-5 §7.5.2: page control values of MODE SENSE. */
export type PageControl = 'current' | 'changeable' | 'default' | 'saved';

/** One mode page we implement: its bytes (with the 2-byte header) and which bits may change. */
interface PageDef {
  readonly code: number;
  readonly name: string;
  /** The default values, page header included. */
  defaults(lu: LogicalUnit): Buffer;
  /** A mask of the bits MODE SELECT may change, same layout. */
  readonly changeable: Buffer;
}

function page(code: number, length: number, fill: (b: Buffer) => void = () => undefined): Buffer {
  const b = Buffer.alloc(2 + length);
  b[0] = code;
  b[1] = length;
  fill(b);
  return b;
}

/** Bit positions of the fields we act on. */
const WCE = { byte: 2, bit: 0x04 }; // Caching page, SBC-4 §6.5.5
const D_SENSE = { byte: 2, bit: 0x04 }; // Control page, SPC-5 §7.5.8
const SWP = { byte: 4, bit: 0x08 }; // Control page

/** The pages, in page-code order (MODE SENSE of all pages returns them in this order). */
export const PAGES: readonly PageDef[] = [
  {
    // SBC-4 §6.5.9: Read-Write Error Recovery; AWRE and ARRE set, nothing changeable.
    code: 0x01,
    name: 'read-write error recovery',
    defaults: () =>
      page(0x01, 0x0a, (b) => {
        b[2] = 0xc0;
      }),
    changeable: page(0x01, 0x0a),
  },
  {
    // SBC-4 §6.5.5: Caching; WCE reports (and switches) the LUN's real write cache mode.
    code: 0x08,
    name: 'caching',
    defaults: (lu) =>
      page(0x08, 0x12, (b) => {
        b[WCE.byte] = lu.volume.cacheMode === 'write-back' ? WCE.bit : 0;
      }),
    changeable: page(0x08, 0x12, (b) => {
      b[WCE.byte] = WCE.bit;
    }),
  },
  {
    // SPC-5 §7.5.8: Control; QUEUE ALGORITHM MODIFIER 1 (unrestricted reordering of SIMPLE
    // tasks), TAS 0, D_SENSE and SWP changeable. BUSY TIMEOUT PERIOD unlimited.
    code: 0x0a,
    name: 'control',
    defaults: () =>
      page(0x0a, 0x0a, (b) => {
        b[3] = 0x10;
        b.writeUInt16BE(0xffff, 8);
      }),
    changeable: page(0x0a, 0x0a, (b) => {
      b[D_SENSE.byte] = D_SENSE.bit;
      b[SWP.byte] = SWP.bit;
    }),
  },
  {
    // SPC-5 §7.5.10: Informational Exceptions Control; DEXCPT set (we report none), MRIE 0.
    code: 0x1c,
    name: 'informational exceptions control',
    defaults: () =>
      page(0x1c, 0x0a, (b) => {
        b[2] = 0x08;
      }),
    changeable: page(0x1c, 0x0a),
  },
];

export function findPage(code: number): PageDef | undefined {
  return PAGES.find((p) => p.code === code);
}

interface SavedModeRecord {
  readonly version: 1;
  readonly pages: Record<string, string>;
  /** In a cluster: the current values too, so that a takeover keeps them (docs/ha.md). */
  readonly current?: Record<string, string>;
}

/**
 * Mode parameters of a logical unit (SPC-5 §7.5): current values, values saved in the store
 * (they survive restarts, SP=1), defaults and the changeable mask. The Caching page's WCE is
 * the volume's cache mode; D_SENSE picks the sense format; SWP write-protects the medium.
 */
export class ModePages {
  private readonly current = new Map<number, Buffer>();
  private saved = new Map<number, Buffer>();

  constructor(private readonly lu: LogicalUnit) {}

  get descriptorSense(): boolean {
    return ((this.current.get(0x0a)?.[D_SENSE.byte] ?? 0) & D_SENSE.bit) !== 0;
  }

  get softwareWriteProtect(): boolean {
    return ((this.current.get(0x0a)?.[SWP.byte] ?? 0) & SWP.bit) !== 0;
  }

  get writeCacheEnabled(): boolean {
    return this.lu.volume.cacheMode === 'write-back';
  }

  /** The bytes of a page for a page control value (SPC-5 §7.5.2). */
  get(def: PageDef, pc: PageControl): Buffer {
    switch (pc) {
      case 'changeable':
        return def.changeable;
      case 'default':
        return def.defaults(this.lu);
      case 'saved':
        return this.saved.get(def.code) ?? def.defaults(this.lu);
      case 'current': {
        const cur = this.current.get(def.code) ?? def.defaults(this.lu);
        if (def.code === 0x08) {
          // WCE always tells the truth about the volume.
          const b = Buffer.from(cur);
          b[WCE.byte] = (b[WCE.byte] & ~WCE.bit) | (this.writeCacheEnabled ? WCE.bit : 0);
          return b;
        }
        return cur;
      }
    }
  }

  /**
   * Applies a page from MODE SELECT whose bits have been validated against the mask. Returns
   * whether anything changed.
   */
  async set(def: PageDef, bytes: Buffer, save: boolean): Promise<boolean> {
    const before = this.get(def, 'current');
    const next = Buffer.from(before);
    for (let i = 2; i < next.length; i++) next[i] = (before[i] & ~def.changeable[i]) | (bytes[i] & def.changeable[i]);
    const changed = !next.equals(before);
    this.current.set(def.code, next);
    if (def.code === 0x08 && ((next[WCE.byte] & WCE.bit) !== 0) !== this.writeCacheEnabled) {
      await this.lu.volume.setCacheMode(next[WCE.byte] & WCE.bit ? 'write-back' : 'write-through');
    }
    if (save) this.saved.set(def.code, next);
    if (save || this.shared) await this.persist();
    return changed;
  }

  /** A cluster LU keeps its current values in the store as well: the next active node loads them. */
  private get shared(): boolean {
    return this.lu.alua !== undefined;
  }

  /** Restores the saved pages; a record that does not read back as one is refused, naming it. */
  async load(): Promise<void> {
    // A cluster node that takes the LUN over starts from what the store says, not from what
    // it held the last time it was active.
    this.saved.clear();
    this.current.clear();
    const raw = await this.lu.volume.loadRecord('mode-pages');
    if (!raw) return;
    const rec = StoredRecord.parse(raw, 'records/mode-pages.json');
    rec.get('version').oneOf([1]);
    const read = (pages: ReturnType<typeof rec.get>, into: Map<number, Buffer>): void => {
      for (const code of pages.keys()) {
        const field = pages.get(code);
        const def = (/^\d{1,3}$/.test(code) ? findPage(Number(code)) : undefined) ?? field.fail('no such mode page');
        const b = Buffer.from(field.hex(), 'hex');
        if (b.length !== def.changeable.length) field.fail(`${b.length} bytes, page ${code} has ${def.changeable.length}`);
        into.set(def.code, b);
      }
    };
    read(rec.get('pages'), this.saved);
    for (const [code, b] of this.saved) this.current.set(code, Buffer.from(b));
    if (this.shared && rec.get('current').present) read(rec.get('current'), this.current);
    const caching = this.current.get(0x08);
    if (caching) await this.lu.volume.setCacheMode(caching[WCE.byte] & WCE.bit ? 'write-back' : 'write-through');
    log.info('mode pages restored', { lun: this.lu.lun, saved: [...this.saved.keys()], current: [...this.current.keys()] });
  }

  private async persist(): Promise<void> {
    const hex = (m: Map<number, Buffer>): Record<string, string> => Object.fromEntries([...m].map(([c, b]) => [String(c), b.toString('hex')]));
    const rec: SavedModeRecord = { version: 1, pages: hex(this.saved), ...(this.shared ? { current: hex(this.current) } : {}) };
    await this.lu.volume.saveRecord('mode-pages', Buffer.from(JSON.stringify(rec)));
  }
}
