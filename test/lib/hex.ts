/**
 * Builds a Buffer from annotated hex: each line is "<hex bytes> // comment"; whitespace and
 * comments are ignored. Golden fixtures read like a protocol diagram.
 */
export function hex(strings: TemplateStringsArray, ...values: unknown[]): Buffer {
  const text = strings.reduce((acc, s, i) => acc + s + (i < values.length ? String(values[i]) : ''), '');
  const clean = text
    .split('\n')
    .map((l) => l.replace(/\/\/.*$/, ''))
    .join('')
    .replace(/\s+/g, '');
  if (!/^([0-9a-fA-F]{2})*$/.test(clean)) throw new Error(`bad hex fixture: ${clean.slice(0, 40)}`);
  return Buffer.from(clean, 'hex');
}
