import { type Document, isMap, isPair, isScalar, type LineCounter, type Node as YamlNode } from 'yaml';
import { ConfigError } from './errors';
import { parseDuration, parseSize } from './units';

export type Path = ReadonlyArray<string | number>;

/** Finds the YAML node of a path and turns its offset into a 1-based line and column. */
export class Locator {
  constructor(
    readonly file: string,
    private readonly doc: Document | undefined,
    private readonly lines: LineCounter | undefined,
  ) {}

  locate(path: Path, which: 'key' | 'value'): { line?: number; column?: number } {
    if (!this.doc || !this.lines) return {};
    // Walk down as far as the document goes; report the deepest node found.
    let node: unknown = this.doc.contents;
    let keyNode: YamlNode | undefined;
    for (const part of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === part);
        if (!pair) break;
        keyNode = pair.key as YamlNode;
        node = pair.value;
      } else if (node && typeof node === 'object' && 'items' in node && Array.isArray((node as { items: unknown[] }).items)) {
        const item = (node as { items: unknown[] }).items[part as number];
        if (item === undefined) break;
        keyNode = undefined;
        node = item;
      } else break;
    }
    const target = (which === 'key' && keyNode ? keyNode : (node as YamlNode | undefined)) ?? keyNode;
    const offset = target?.range?.[0];
    if (offset === undefined) return {};
    const pos = this.lines.linePos(offset);
    return { line: pos.line, column: pos.col };
  }
}

export function formatPath(path: Path): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${p}` : p;
  return s;
}

/** A cursor over the parsed configuration that validates as it reads and reports where. */
export class Reader {
  constructor(
    private readonly loc: Locator,
    readonly path: Path,
    readonly value: unknown,
  ) {}

  fail(detail: string, which: 'key' | 'value' = 'value', path: Path = this.path): never {
    const { line, column } = this.loc.locate(path, which);
    throw new ConfigError(this.loc.file, line, column, formatPath(path), detail);
  }

  get present(): boolean {
    return this.value !== undefined && this.value !== null;
  }

  /** A mapping whose keys must all be in `allowed` (a typo is an error naming the key). */
  object(allowed: readonly string[]): this {
    if (typeof this.value !== 'object' || this.value === null || Array.isArray(this.value)) this.fail('expected a mapping');
    for (const k of Object.keys(this.value as object)) {
      if (!allowed.includes(k)) {
        const hint = closest(k, allowed);
        this.fail(`unknown key "${k}"${hint ? ` (did you mean "${hint}"?)` : ''}`, 'key', [...this.path, k]);
      }
    }
    return this;
  }

  get(key: string): Reader {
    const v = (this.value as Record<string, unknown> | undefined)?.[key];
    return new Reader(this.loc, [...this.path, key], v);
  }

  at(index: number): Reader {
    const v = Array.isArray(this.value) ? (this.value as unknown[])[index] : undefined;
    return new Reader(this.loc, [...this.path, index], v);
  }

  /** Fails with "required" at the parent mapping when the key is missing. */
  required(): this {
    if (!this.present) this.fail(`required key "${this.path[this.path.length - 1]}" is missing`, 'key', this.path.slice(0, -1));
    return this;
  }

  array(): Reader[] {
    if (!this.present) return [];
    if (!Array.isArray(this.value)) this.fail('expected a list');
    return (this.value as unknown[]).map((v, i) => new Reader(this.loc, [...this.path, i], v));
  }

  string(def?: string): string {
    if (!this.present) return def ?? this.required().fail('required');
    if (typeof this.value !== 'string' || this.value === '') this.fail('expected a non-empty string');
    return this.value as string;
  }

  optionalString(): string | undefined {
    return this.present ? this.string() : undefined;
  }

  int(def: number | undefined, min: number, max: number): number {
    if (!this.present) return def ?? this.required().fail('required');
    if (typeof this.value !== 'number' || !Number.isInteger(this.value)) this.fail('expected a whole number');
    const n = this.value as number;
    if (n < min || n > max) this.fail(`must be between ${min} and ${max}, got ${n}`);
    return n;
  }

  /** A price in dollars: a number, zero or more. */
  price(def: number): number {
    if (!this.present) return def;
    if (typeof this.value !== 'number' || !Number.isFinite(this.value) || this.value < 0)
      this.fail('expected a price in dollars (a number, 0 or more)');
    return this.value as number;
  }

  bool(def: boolean): boolean {
    if (!this.present) return def;
    if (typeof this.value !== 'boolean') this.fail('expected true or false');
    return this.value as boolean;
  }

  oneOf<T extends string>(choices: readonly T[], def?: T): T {
    if (!this.present) return def ?? this.required().fail('required');
    if (typeof this.value !== 'string' || !choices.includes(this.value as T)) {
      this.fail(`expected one of ${choices.map((c) => `"${c}"`).join(', ')}, got ${JSON.stringify(this.value)}`);
    }
    return this.value as T;
  }

  size(def?: number): number {
    if (!this.present) return def ?? this.required().fail('required');
    const r = parseSize(this.value);
    if (typeof r === 'string') this.fail(r);
    return r;
  }

  duration(def: number): number {
    if (!this.present) return def;
    const r = parseDuration(this.value);
    if (typeof r === 'string') this.fail(r);
    return r;
  }
}

/** The allowed key nearest to a typo (Levenshtein distance at most 3). */
function closest(k: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = 4;
  for (const a of allowed) {
    const d = distance(k.toLowerCase(), a.toLowerCase());
    if (d < bestD) {
      best = a;
      bestD = d;
    }
  }
  return best;
}

function distance(a: string, b: string): number {
  const dp = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) dp[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      dp[i][j] = Math.min(dp[i - 1][j] + 1, dp[i][j - 1] + 1, dp[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return dp[a.length][b.length];
}
