import { setMaxListeners } from 'node:events';
import { abortReason } from './clock';

export interface Linked {
  readonly signal: AbortSignal;
  /** Stops following the sources (call it when the work is done). */
  unlink(): void;
}

/**
 * A signal that aborts when any of `sources` does, with that source's reason. Unlike
 * AbortSignal.any, whose composite signals with listeners Node keeps alive in a global set
 * until they abort, this one is only referenced by its sources' listeners, which `unlink`
 * removes: work that never ends (a killed simulated process) leaks nothing.
 */
export function linked(...sources: ReadonlyArray<AbortSignal | undefined>): Linked {
  const ctl = new AbortController();
  setMaxListeners(0, ctl.signal);
  const from = sources.filter((s): s is AbortSignal => s !== undefined);
  const aborted = from.find((s) => s.aborted);
  if (aborted) {
    ctl.abort(abortReason(aborted));
    return { signal: ctl.signal, unlink: () => undefined };
  }
  const onAbort = (e: Event): void => {
    unlink();
    ctl.abort(abortReason(e.target as AbortSignal));
  };
  const unlink = (): void => {
    for (const s of from) s.removeEventListener('abort', onAbort);
  };
  for (const s of from) s.addEventListener('abort', onAbort, { once: true });
  return { signal: ctl.signal, unlink };
}
