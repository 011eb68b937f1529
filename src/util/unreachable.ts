/** Exhaustiveness check for discriminated unions: a compile error if a case is missing. */
export function unreachable(x: never): never {
  throw new Error(`unreachable: ${JSON.stringify(x)}`);
}
