import { StorageError } from './errors';

/**
 * A JSON record read back from the store (volume.json, lease.json, persistent reservations,
 * saved mode pages), checked field by field: anything malformed is a `data` StorageError with
 * code STORE_ERR_RECORD naming the key and the field, never a silent default.
 */
export class StoredRecord {
  private constructor(
    readonly key: string,
    private readonly value: unknown,
    private readonly path: string,
  ) {}

  static parse(body: Buffer, key: string): StoredRecord {
    let v: unknown;
    try {
      v = JSON.parse(body.toString('utf8'));
    } catch {
      throw new StorageError('data', `${key}: not valid JSON`, { code: 'STORE_ERR_RECORD' });
    }
    const r = new StoredRecord(key, v, '');
    r.object();
    return r;
  }

  fail(why: string): never {
    throw new StorageError('data', `${this.key}: ${this.path ? `${this.path}: ` : ''}${why}`, { code: 'STORE_ERR_RECORD' });
  }

  private object(): Record<string, unknown> {
    if (typeof this.value !== 'object' || this.value === null || Array.isArray(this.value)) this.fail('not an object');
    return this.value as Record<string, unknown>;
  }

  /** A field of this object. */
  get(name: string): StoredRecord {
    return new StoredRecord(this.key, this.object()[name], this.path ? `${this.path}.${name}` : name);
  }

  get present(): boolean {
    return this.value !== undefined;
  }

  get isNull(): boolean {
    return this.value === null;
  }

  str(allowEmpty = false): string {
    if (typeof this.value !== 'string' || (!allowEmpty && this.value.length === 0)) this.fail('missing or not a string');
    return this.value as string;
  }

  /** A safe integer in [min, max]. */
  int(min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.value;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) this.fail(`missing or not an integer in ${min}..${max}`);
    return v as number;
  }

  bool(): boolean {
    if (typeof this.value !== 'boolean') this.fail('missing or not true/false');
    return this.value as boolean;
  }

  /** A string of hexadecimal digits (even length unless `odd`). */
  hex(odd = false): string {
    const s = this.value;
    if (typeof s !== 'string' || !/^[0-9a-f]*$/i.test(s) || (!odd && s.length % 2 !== 0)) this.fail('missing or not hexadecimal');
    return s as string;
  }

  oneOf<T>(values: readonly T[]): T {
    if (!values.includes(this.value as T)) this.fail(`must be one of ${values.map(String).join(', ')}`);
    return this.value as T;
  }

  array(): StoredRecord[] {
    if (!Array.isArray(this.value)) this.fail('missing or not a list');
    return (this.value as unknown[]).map((v, i) => new StoredRecord(this.key, v, `${this.path}[${i}]`));
  }

  /** The names of this object's fields. */
  keys(): string[] {
    return Object.keys(this.object());
  }
}
