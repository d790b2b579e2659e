/**
 * The KMS fidelity suite (test/unit/local/kms/kms.test.ts, the same file `npm test` runs against the
 * local endpoint) run unchanged against LocalStack's KMS through KEYLESS_KMS_FIDELITY_ENDPOINT, and its
 * outcome compared with kms-known-deviations.json. Every failing behaviour is listed — known or not.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from './bundle';

export const FIDELITY_SUITE = 'test/unit/local/kms/kms.test.ts';
export const KNOWN_DEVIATIONS_FILE = path.join(REPO_ROOT, 'test/localstack/kms-known-deviations.json');

export interface KnownDeviation {
  /** The jest full name of the fidelity test. */
  test: string;
  why: string;
  evidence: 'observed' | 'predicted';
}

export interface TestOutcome {
  fullName: string;
  status: string;
  failureMessages: string[];
}

export interface FidelityReport {
  total: number;
  passed: number;
  /** Failing, and listed as a known deviation. */
  known: Array<TestOutcome & { why: string; evidence: string }>;
  /** Failing and not listed: the run fails. */
  unexpected: TestOutcome[];
  /** Listed but passing (a prediction that did not occur, or a fixed deviation): a note, not a failure. */
  nowPassing: KnownDeviation[];
  /** Listed but absent from the run (renamed or removed test). */
  stale: KnownDeviation[];
  /** The suite itself could not run (e.g. beforeAll failed); set when nothing was reported. */
  suiteError?: string;
}

export function loadKnownDeviations(file = KNOWN_DEVIATIONS_FILE): KnownDeviation[] {
  const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as { deviations?: KnownDeviation[] };
  return raw.deviations ?? [];
}

/** Compare the outcomes of one fidelity run with the known deviations. Pure. */
export function classifyFidelity(
  outcomes: readonly TestOutcome[],
  known: readonly KnownDeviation[],
  suiteError?: string,
): FidelityReport {
  const byName = new Map(known.map((k) => [k.test, k]));
  const seen = new Set<string>();
  const report: FidelityReport = {
    total: 0,
    passed: 0,
    known: [],
    unexpected: [],
    nowPassing: [],
    stale: [],
    suiteError,
  };
  for (const o of outcomes) {
    if (o.status === 'pending' || o.status === 'skipped' || o.status === 'todo' || o.status === 'disabled') continue;
    report.total++;
    seen.add(o.fullName);
    const k = byName.get(o.fullName);
    if (o.status === 'passed') {
      report.passed++;
      if (k) report.nowPassing.push(k);
    } else if (k) {
      report.known.push({ ...o, why: k.why, evidence: k.evidence });
    } else {
      report.unexpected.push(o);
    }
  }
  if (report.total > 0) report.stale = known.filter((k) => !seen.has(k.test));
  return report;
}

/**
 * True when the run should fail because of the fidelity results: a failing behaviour that is not
 * listed, or a suite that did not run. Listed deviations that occur, listed ones that do not
 * (`nowPassing`) and stale entries are reported but never fail the run.
 */
export function fidelityFailed(r: FidelityReport): boolean {
  return r.suiteError !== undefined || r.total === 0 || r.unexpected.length > 0;
}

/**
 * The gist of a jest failure message on one line: the Expected/Received lines (or the changed lines
 * of a diff), without ANSI colours, the `expect(...)` header or the stack.
 */
export function firstLine(message: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = message.replace(/\u001b\[[0-9;]*m/g, '');
  const lines = clean
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('at ') && !/^expect\(/.test(l));
  const facts = lines.filter(
    (l) =>
      /^(Expected|Received|Resolved to|Rejected to|Thrown|Error|\w+Exception|\w+Error)\b/.test(l) ||
      (/^[-+] +\S/.test(l) && !/^[-+] (Expected|Received)\s+[-+] \d+$/.test(l)),
  );
  return (facts.length > 0 ? facts.slice(0, 4).join('; ') : (lines[0] ?? '')).slice(0, 240);
}

export function renderFidelityReport(r: FidelityReport, endpoint: string): string {
  const out: string[] = [];
  out.push(
    `KMS fidelity suite (${FIDELITY_SUITE}) against LocalStack KMS at ${endpoint}: ${r.passed}/${r.total} behaviours as in AWS KMS`,
  );
  if (r.suiteError) out.push(`  the suite did not run: ${r.suiteError}`);
  if (r.known.length > 0) {
    out.push(`  LocalStack deviations (known, listed in test/localstack/kms-known-deviations.json): ${r.known.length}`);
    for (const k of r.known) {
      out.push(`    ✗ ${k.fullName}`);
      out.push(`        why: ${k.why} [${k.evidence}]`);
      out.push(`        got: ${firstLine(k.failureMessages.join('\n'))}`);
    }
  }
  if (r.unexpected.length > 0) {
    out.push(`  NEW deviations (not in the known list; the run fails): ${r.unexpected.length}`);
    for (const u of r.unexpected) {
      out.push(`    ✗ ${u.fullName}`);
      out.push(`        got: ${firstLine(u.failureMessages.join('\n'))}`);
    }
  }
  // Listed deviations that did not occur are notes, never failures: a prediction that LocalStack
  // turned out to get right, or an observed deviation a newer image fixed.
  const notOccurred = r.nowPassing.filter((k) => k.evidence === 'predicted');
  const fixed = r.nowPassing.filter((k) => k.evidence !== 'predicted');
  if (notOccurred.length > 0) {
    out.push(
      `  note: predicted deviations that did not occur (behave as in AWS; drop them from the list): ${notOccurred.length}`,
    );
    for (const k of notOccurred) out.push(`    ✓ ${k.test} [predicted]`);
  }
  if (fixed.length > 0) {
    out.push(`  note: observed deviations that behave as in AWS now (remove them from the list): ${fixed.length}`);
    for (const k of fixed) out.push(`    ✓ ${k.test} [${k.evidence}]`);
  }
  if (r.stale.length > 0) {
    out.push(`  note: listed deviations that match no test (renamed?): ${r.stale.length}`);
    for (const k of r.stale) out.push(`    ? ${k.test}`);
  }
  out.push(
    fidelityFailed(r)
      ? `  fidelity: FAILED (${r.suiteError !== undefined || r.total === 0 ? 'the suite did not run' : `${r.unexpected.length} deviation(s) not in the list`})`
      : `  fidelity: passed by the suite's rules (${r.known.length} listed deviation(s) occurred, ${r.nowPassing.length} listed did not; nothing unlisted)`,
  );
  return out.join('\n');
}

interface JestJson {
  numTotalTests?: number;
  testResults?: Array<{ message?: string; status?: string; assertionResults?: TestOutcome[] }>;
}

/** Run the fidelity suite with jest (root config) against `endpoint`; returns the classified report. */
export async function runFidelitySuite(
  endpoint: string,
  region: string,
  workDir: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<FidelityReport> {
  const outputFile = path.join(workDir, 'kms-fidelity.json');
  fs.rmSync(outputFile, { force: true });
  const jest = require.resolve('jest/bin/jest', { paths: [REPO_ROOT] });
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(
      process.execPath,
      [
        jest,
        '--config',
        path.join(REPO_ROOT, 'jest.config.js'),
        '--runTestsByPath',
        FIDELITY_SUITE,
        '--json',
        '--outputFile',
        outputFile,
        '--silent',
      ],
      {
        cwd: REPO_ROOT,
        env: {
          ...env,
          KEYLESS_KMS_FIDELITY_ENDPOINT: endpoint,
          AWS_REGION: region,
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        },
        // jest's own report goes to the terminal; the JSON goes to the file.
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    child.once('exit', (c) => resolve(c));
    child.once('error', () => resolve(null));
  });
  if (!fs.existsSync(outputFile)) {
    return classifyFidelity([], loadKnownDeviations(), `jest exited with ${code} and wrote no results`);
  }
  const json = JSON.parse(fs.readFileSync(outputFile, 'utf8')) as JestJson;
  const outcomes = (json.testResults ?? []).flatMap((t) => t.assertionResults ?? []);
  const suiteMessage = (json.testResults ?? []).find(
    (t) => t.status === 'failed' && (t.assertionResults ?? []).length === 0,
  )?.message;
  return classifyFidelity(outcomes, loadKnownDeviations(), suiteMessage ? firstLine(suiteMessage) : undefined);
}
