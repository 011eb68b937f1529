import type { LogicalUnit } from '../logical-unit';
import type { ITNexus } from '../nexus';

/**
 * The results a copy manager holds for RECEIVE COPY STATUS and RECEIVE ROD TOKEN INFORMATION:
 * per copy manager (the LU the command was sent to), I_T nexus and LIST IDENTIFIER. The inner
 * map is keyed by the nexus object, which the transport builds once per session, so when the
 * session ends (I_T nexus loss) its results go with it, as SPC-4 discards them then. Callers
 * bound how many identifiers they keep per nexus.
 */
export function heldResults<T>(): (lu: LogicalUnit, nexus: ITNexus) => Map<number, T> {
  const byLu = new WeakMap<LogicalUnit, WeakMap<ITNexus, Map<number, T>>>();
  return (lu, nexus) => {
    let byNexus = byLu.get(lu);
    if (!byNexus) {
      byNexus = new WeakMap();
      byLu.set(lu, byNexus);
    }
    let held = byNexus.get(nexus);
    if (!held) {
      held = new Map();
      byNexus.set(nexus, held);
    }
    return held;
  };
}
