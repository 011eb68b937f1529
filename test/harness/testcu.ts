import { run } from './exec';

export type TestStatus = 'passed' | 'skipped' | 'failed';

export interface TestcuScore {
  readonly passed: number;
  readonly skipped: number;
  readonly failed: number;
  readonly total: number;
  readonly results: ReadonlyMap<string, { status: TestStatus; notes: string[] }>;
  readonly raw: string;
}

/**
 * Runs libiscsi's conformance suite (iscsi-test-cu) and scores it test by test: a test that
 * printed [SKIPPED] and then passed counts as skipped (the target did not offer the feature),
 * a test that never reached its verdict counts as failed.
 */
export async function runTestcu(url: string, tests = 'ALL', timeoutMs = 900_000, multipathUrl?: string): Promise<TestcuScore> {
  // A second URL (the same LUN through another portal) runs the MultipathIO family.
  const r = await run('iscsi-test-cu', ['-d', '-v', '-t', tests, url, ...(multipathUrl ? [multipathUrl] : [])], { timeoutMs });
  const raw = `${r.stdout}\n${r.stderr}`;
  const results = new Map<string, { status: TestStatus; notes: string[] }>();
  // Walk the "Suite:" and "  Test: name ..." markers; what follows a test marker up to the
  // next marker is its output. Its verdict is the first "passed" or bare "FAILED" in it; a
  // "[SKIPPED]" seen before a "passed" makes it a skip.
  const markers = [...raw.matchAll(/^Suite: (\S+)|^ {2}Test: (\S+) \.\.\./gm)];
  let suite = '?';
  markers.forEach((m, i) => {
    if (m[1]) {
      suite = m[1];
      return;
    }
    const start = (m.index ?? 0) + m[0].length;
    const end = i + 1 < markers.length ? (markers[i + 1].index ?? raw.length) : raw.length;
    const segment = raw.slice(start, end);
    let status: TestStatus = 'failed';
    let skipped = false;
    const notes: string[] = [];
    for (const t of segment.matchAll(/\[SKIPPED\][^\n]*|\[FAILED\][^\n]*|\bpassed\b|\bFAILED\b/g)) {
      const tok = t[0];
      if (tok.startsWith('[SKIPPED]')) {
        skipped = true;
        notes.push(tok.trim());
      } else if (tok.startsWith('[FAILED]')) {
        notes.push(tok.trim());
      } else {
        status = tok === 'passed' ? (skipped ? 'skipped' : 'passed') : 'failed';
        break;
      }
    }
    let key = `${suite}.${m[2]}`;
    for (let n = 2; results.has(key); n++) key = `${suite}.${m[2]}#${n}`;
    results.set(key, { status, notes });
  });
  const count = (st: TestStatus): number => [...results.values()].filter((v) => v.status === st).length;
  return { passed: count('passed'), skipped: count('skipped'), failed: count('failed'), total: results.size, results, raw };
}

export function formatScore(s: TestcuScore): string {
  const failures = [...s.results].filter(([, v]) => v.status === 'failed').map(([k, v]) => `FAILED ${k} ${v.notes.slice(0, 2).join(' | ')}`);
  return [...failures, `testcu: passed=${s.passed} skipped=${s.skipped} failed=${s.failed} total=${s.total}`].join('\n');
}
