/**
 * `npm run rehearse`: the deploy rehearsal over the shipped sample configuration and a two-region
 * one (docs/rehearsal.md). Prints each step and finding; exits 1 when there is any finding.
 *
 *   npm run rehearse                 # both configurations
 *   npm run rehearse -- sample       # one of them (sample | two-region)
 *   npm run rehearse -- --keep       # keep the scratch directory (cdk.out, image, CLI files)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { repoRoot } from '../../lib/paths';
import { CHECKS, rehearse, type RehearsalOptions, type RehearsalResult } from './rehearse';
import { OPERATOR_ROLE_ARN } from './world';

/** The configurations rehearsed: merged over the sample in cdk.json, as `-c keyless:configFile` does. */
export const CONFIGURATIONS: Record<string, Record<string, unknown>> = {
  // docs/deploy.md, "Issuing a certificate for a kms key": the operator's role goes into `operators`.
  sample: { operators: [OPERATOR_ROLE_ARN] },
  'two-region': { operators: [OPERATOR_ROLE_ARN], regions: ['eu-west-1', 'eu-central-1'] },
};

export async function runRehearsals(
  names: string[],
  opts: Partial<RehearsalOptions> & { scratch: string },
): Promise<RehearsalResult[]> {
  const results: RehearsalResult[] = [];
  for (const name of names) {
    opts.log?.(`rehearsal: ${name}`);
    results.push(
      await rehearse({
        name,
        repo: opts.repo ?? repoRoot(),
        workDir: path.join(opts.scratch, name),
        config: CONFIGURATIONS[name],
        log: opts.log,
        ...opts,
      }),
    );
  }
  return results;
}

export function summary(results: readonly RehearsalResult[]): string {
  const lines: string[] = [];
  for (const r of results) {
    lines.push(
      `${r.name}: ${r.findings.length === 0 ? 'passed' : `${r.findings.length} finding(s)`} (${r.steps.length} steps, ${r.calls.length} recorded calls, ${r.iamEvaluated} evaluated, ${r.emitted.length} emitted metrics)`,
    );
    for (const f of r.findings) lines.push(`  ${f.check} — ${CHECKS[f.check]}:\n    ${f.message}`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const keep = args.includes('--keep');
  const names = args.filter((a) => !a.startsWith('--'));
  for (const n of names)
    if (!CONFIGURATIONS[n])
      throw new Error(`unknown configuration ${n}; use ${Object.keys(CONFIGURATIONS).join(' or ')}`);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-rehearsal-'));
  try {
    const results = await runRehearsals(names.length > 0 ? names : Object.keys(CONFIGURATIONS), {
      scratch,
      log: (l) => process.stdout.write(`${l}\n`),
    });
    process.stdout.write(`\n${summary(results)}\n`);
    if (keep) {
      for (const r of results)
        fs.writeFileSync(
          path.join(scratch, r.name, 'stdout.log'),
          r.stdout.map((l) => `${l.source}: ${l.line}`).join('\n'),
        );
      process.stdout.write(`scratch kept in ${scratch} (each process's stdout in <name>/stdout.log)\n`);
    }
    process.exitCode = results.some((r) => r.findings.length > 0) ? 1 : 0;
  } finally {
    if (!keep) fs.rmSync(scratch, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((e: Error) => {
    process.stderr.write(`rehearsal: ${e.stack ?? e.message}\n`);
    process.exit(2);
  });
}
