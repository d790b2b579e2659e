/**
 * The deploy rehearsal (docs/rehearsal.md) in `npm test`: the shipped sample configuration,
 * synthesized and run on the local stack with the whole operator walk; then the same recorded run
 * re-checked with a defect injected, to show each check reports it by name. Runs compiled code from
 * dist/ (npm test builds first).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { repoRoot } from '../../lib/paths';
import { KNOWN_FINDINGS } from './known-findings';
import { recheck, rehearse, type Finding, type RehearsalResult } from './rehearse';
import { CONFIGURATIONS } from './run';
import type { Assembly } from './synth';

const repo = repoRoot();
const built =
  fs.existsSync(path.join(repo, 'dist', 'test', 'rehearsal', 'key-service-host.js')) &&
  fs.existsSync(path.join(repo, 'dist', 'bin', 'keyless.js'));
const describeBuilt = built ? describe : describe.skip;
if (!built) console.warn('rehearsal: dist/ is not built (run `npm run build`); skipped');

const known = (f: Finding): boolean =>
  KNOWN_FINDINGS.some((k) => k.check === f.check && f.message.includes(k.contains));

function stack(assembly: Assembly, type: string): Assembly['stacks'][number] {
  const s = assembly.stacks.find((x) => Object.values(x.template.Resources).some((r) => r.Type === type));
  if (!s) throw new Error(`no stack with ${type}`);
  return s;
}

describeBuilt('deploy rehearsal: the sample configuration', () => {
  let scratch: string;
  let result: RehearsalResult;

  beforeAll(async () => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-rehearsal-test-'));
    result = await rehearse({
      name: 'sample',
      repo,
      workDir: path.join(scratch, 'sample'),
      config: CONFIGURATIONS.sample,
    });
  }, 15 * 60_000);

  afterAll(() => {
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('walks the operator path to the end: import, serve, rotate, scale, resume across tasks', () => {
    expect(result.walked).toBe(true);
    for (const step of [
      /keyless csr/,
      /cert issue/,
      /cert import/,
      /curl|curl: not installed/,
      /rotate www promote/,
      /rotate www retire/,
      /0 failed/,
      /task 2 resumes task 1/,
      /task 1 resumes task 2/,
    ]) {
      expect(result.steps.some((s) => step.test(s))).toBe(true);
    }
  });

  it('records every call with its principal and checks each against the synthesized policies', () => {
    const principals = new Set(result.calls.map((c) => c.principal));
    expect([...principals].sort()).toEqual(expect.arrayContaining(['edge-task-role', 'key-service-role', 'operator']));
    expect(principals.has('unknown')).toBe(false);
    expect(result.iamEvaluated).toBeGreaterThan(10);
    expect(result.emitted.some((m) => m.namespace === 'Keyless/Edge')).toBe(true);
    expect(result.emitted.some((m) => m.namespace === 'Keyless/KeyService')).toBe(true);
  });

  it('finds exactly the known problems (test/rehearsal/known-findings.ts)', () => {
    const unexpected = result.findings.filter((f) => !known(f));
    expect(unexpected).toEqual([]);
    const fixed = KNOWN_FINDINGS.filter(
      (k) => !result.findings.some((f) => f.check === k.check && f.message.includes(k.contains)),
    );
    expect(fixed).toEqual([]);
  });

  it('reports an injected IAM gap by name: iam-denied for the call it breaks', async () => {
    const findings = await recheck(result, (assembly) => {
      // Drop the signing grants from the key-service role, wherever the stack keeps them (inline or AWS::IAM::Policy).
      type Doc = { Statement: { Action: unknown }[] };
      const drop = (doc: Doc): void => {
        doc.Statement = doc.Statement.filter((st) => JSON.stringify(st.Action) !== '"kms:Sign"');
      };
      const ks = stack(assembly, 'AWS::Lambda::Function');
      for (const r of Object.values(ks.template.Resources)) {
        if (r.Type === 'AWS::IAM::Role')
          for (const p of (r.Properties?.Policies as { PolicyDocument: Doc }[] | undefined) ?? [])
            drop(p.PolicyDocument);
        if (r.Type === 'AWS::IAM::Policy') drop(r.Properties!.PolicyDocument as Doc);
      }
    });
    expect(
      findings.filter((f) => f.check === 'iam-denied' && /key-service-role kms:Sign /.test(f.message)).length,
    ).toBeGreaterThan(0);
  });

  it('reports a dashboard SEARCH without dimensions by name: metrics-unmatched', async () => {
    const findings = await recheck(result, (assembly) => {
      const edge = stack(assembly, 'AWS::CloudWatch::Dashboard');
      const dash = Object.values(edge.template.Resources).find((r) => r.Type === 'AWS::CloudWatch::Dashboard')!;
      const body = dash.Properties!.DashboardBody as { 'Fn::Join': [string, unknown[]] };
      const injected =
        '{"type":"metric","properties":{"title":"injected","metrics":[[{"expression":"SEARCH(\'{Keyless/Edge} MetricName=\\"HandshakesFull\\"\', \'Sum\', 60)"}]]}},';
      const parts = body['Fn::Join'][1];
      parts[0] = String(parts[0]).replace('"widgets":[', `"widgets":[${injected}`);
    });
    expect(findings.filter((f) => f.check === 'metrics-unmatched' && f.message.includes('"injected"'))).toHaveLength(1);
  });

  it(
    'reports a first deploy that cannot serve by name: first-deploy',
    async () => {
      const again = await rehearse({
        name: 'sample (injected: two tasks, no certificate)',
        repo,
        workDir: path.join(scratch, 'first-deploy'),
        assemblyDir: result.assemblyDir,
        walk: false,
        mutate: (assembly) => {
          const edge = stack(assembly, 'AWS::ECS::Service');
          for (const [id, r] of Object.entries(edge.template.Resources)) {
            if (r.Type === 'AWS::ECS::Service') r.Properties!.DesiredCount = 2;
            if (r.Type === 'AWS::SSM::Parameter') delete edge.template.Resources[id];
          }
        },
      });
      expect(again.findings.filter((f) => f.check === 'first-deploy')).toHaveLength(1);
    },
    5 * 60_000,
  );
});

/**
 * Rotation in a multi-region deployment (docs/rotation.md, "Multi-region deployments"): a key
 * generation made in the primary region only leaves the failover region's key service unable to
 * sign for the rotated certificate. The two-region walk, rotating that way, must say so by name.
 */
describeBuilt('deploy rehearsal: two regions, a rotation that makes a single-region key', () => {
  let scratch: string;
  let result: RehearsalResult;

  beforeAll(async () => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-rehearsal-s6-'));
    result = await rehearse({
      name: 'two-region',
      repo,
      workDir: path.join(scratch, 'two-region'),
      config: CONFIGURATIONS['two-region'],
      singleRegionRotation: true,
    });
  }, 15 * 60_000);

  afterAll(() => {
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('reports that the failover region cannot sign for the rotated certificate: failover', () => {
    // The failover check says it (handshakes for the rotated certificate fail with the primary down);
    // on a loaded machine the rotation's own checks may stop the walk first, naming the same region.
    const all = result.findings.map((f) => `${f.check}: ${f.message}`);
    expect(all).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^(failover: .*handshakes for the rotated certificate failed|rotation: .*eu-central-1)/),
      ]),
    );
  });
});
