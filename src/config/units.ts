/** Sizes: a number of bytes, or a number with a binary unit (KiB, MiB, GiB, TiB, PiB); K/M/G/T/P mean the same. */
const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tib: 1024 ** 4,
  p: 1024 ** 5,
  pib: 1024 ** 5,
};

export function parseSize(v: unknown): number | string {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : 'expected a whole number of bytes';
  if (typeof v !== 'string') return 'expected a size such as 1GiB or 512MiB';
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$/.exec(v);
  if (!m) return `expected a size such as 1GiB or 512MiB, got "${v}"`;
  const unit = SIZE_UNITS[m[2].toLowerCase()];
  if (unit === undefined) return `unknown size unit "${m[2]}" in "${v}" (use KiB, MiB, GiB, TiB or PiB)`;
  const n = Number(m[1]) * unit;
  if (!Number.isSafeInteger(n)) return `size "${v}" is not a whole number of bytes`;
  return n;
}

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Durations: milliseconds as a number, or a number with ms, s, m or h. */
export function parseDuration(v: unknown): number | string {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? v : 'expected a duration such as 20s or 500ms';
  if (typeof v !== 'string') return 'expected a duration such as 20s or 500ms';
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)\s*$/.exec(v);
  if (!m) return `expected a duration such as 20s or 500ms, got "${v}"`;
  return Math.round(Number(m[1]) * (DURATION_UNITS[m[2]] as number));
}

export function formatSize(n: number): string {
  for (const [u, f] of [
    ['TiB', 1024 ** 4],
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (n >= f && n % f === 0) return `${n / f}${u}`;
  }
  return `${n}B`;
}
