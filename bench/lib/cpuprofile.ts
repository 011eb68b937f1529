import { readFileSync } from 'node:fs';

/** The parts of V8's .cpuprofile (Chrome DevTools protocol Profiler.Profile) read here. */
interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  /** Microseconds, on the monotonic clock (the one process.hrtime reads). */
  readonly startTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface Hotspot {
  readonly where: string;
  /** Share of the sampled time in [from, to), 0..1. */
  readonly self: number;
  readonly inclusive: number;
}

/** `function file:line`, with the path shortened to what follows dist/ or node_modules/. */
function nameOf(n: ProfileNode): string {
  const f = n.callFrame;
  const file = f.url.replace(/.*\/(dist|node_modules)\//, '$1/').replace(/^file:\/\//, '');
  return `${f.functionName || '(anonymous)'} ${file}${file ? `:${f.lineNumber + 1}` : ''}`;
}

/**
 * Self and inclusive time per function of the samples taken in [fromUs, toUs) (monotonic
 * microseconds), the `top` largest by self time. "(garbage collector)", "(program)" (V8 and
 * native code outside JavaScript) and "(idle)" appear as functions.
 */
export function hotspots(file: string, fromUs: number, toUs: number, top: number): { sampledMs: number; spots: Hotspot[] } {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  let at = p.startTime;
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    at += p.timeDeltas[i] ?? 0;
    if (at < fromUs || at >= toUs) continue;
    const d = p.timeDeltas[i + 1] ?? 0; // a sample stands for the time until the next one
    total += d;
    const leaf = byId.get(p.samples[i]);
    if (!leaf) continue;
    self.set(nameOf(leaf), (self.get(nameOf(leaf)) ?? 0) + d);
    const seen = new Set<string>();
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const node = byId.get(id);
      if (!node) break;
      const k = nameOf(node);
      if (seen.has(k)) continue;
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + d);
    }
  }
  const spots = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([where, us]) => ({ where, self: total > 0 ? us / total : 0, inclusive: total > 0 ? (incl.get(where) ?? 0) / total : 0 }));
  return { sampledMs: total / 1000, spots };
}
