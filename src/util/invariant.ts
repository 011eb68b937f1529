import { AssertionError } from 'node:assert';

/**
 * Our own invariant (the third error channel): throws an AssertionError when `cond` is false.
 * The message is built only then, so hot paths can afford the check.
 */
export function invariant(cond: unknown, message: () => string): asserts cond {
  if (!cond) throw new AssertionError({ message: message() });
}
