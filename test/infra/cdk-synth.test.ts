/**
 * `npx cdk synth` works offline from a fresh clone: no AWS credentials, no region, no Docker. This
 * runs the real CLI on the real app command of cdk.json, with cdk-nag registered as bin/app.ts
 * does (so an unacknowledged AwsSolutions finding fails here too).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT } from './helpers';

const OPERATOR = 'arn:aws:iam::111122223333:role/KeylessOperator';

/** Run the real `cdk synth` from the repository root with no AWS environment at all. */
function cdkSynth(args: string[]): { status: number | null; output: string; out: string; cleanup(): void } {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-cdk-synth-'));
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-home-'));
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(AWS_|CDK_)/.test(k)) env[k] = v;
  env.HOME = home; // no ~/.aws, no cached credentials
  env.AWS_EC2_METADATA_DISABLED = 'true';
  env.PATH = `${path.join(ROOT, 'node_modules/.bin')}${path.delimiter}${process.env.PATH ?? ''}`;
  const res = spawnSync('cdk', ['synth', '--no-notices', '--no-version-reporting', '--ci', '-q', '-o', out, ...args], {
    cwd: ROOT,
    env,
    encoding: 'utf8',
    timeout: 240_000,
  });
  return {
    status: res.status,
    output: `${res.stdout}\n${res.stderr}`,
    out,
    cleanup: () => {
      fs.rmSync(out, { recursive: true, force: true });
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

test('the sample configuration is refused until it names an operator, with the field and the fix', () => {
  const res = cdkSynth([]);
  try {
    expect(res.status).toBe(1);
    expect(res.output).toMatch(
      /keyless\.operators: still the sample placeholder: name the IAM role .* -c keyless:operators=arn:aws:iam::/,
    );
    expect(fs.readdirSync(res.out).filter((f) => f.endsWith('.template.json'))).toEqual([]);
  } finally {
    res.cleanup();
  }
});

test('with an operator, cdk synth succeeds offline: both stacks, environment-agnostic, the edge waiting for a certificate', () => {
  const res = cdkSynth(['-c', `keyless:operators=${OPERATOR}`]);
  try {
    expect([res.status, res.status === 0 ? '' : res.output]).toEqual([0, '']);
    const templates = fs
      .readdirSync(res.out)
      .filter((f) => f.endsWith('.template.json'))
      .sort();
    expect(templates).toEqual(['Keyless-Demo-Edge.template.json', 'Keyless-Demo-KeyService.template.json']);
    const manifest = JSON.parse(fs.readFileSync(path.join(res.out, 'manifest.json'), 'utf8'));
    for (const name of ['Keyless-Demo-Edge', 'Keyless-Demo-KeyService']) {
      expect(manifest.artifacts[name].environment).toBe('aws://unknown-account/unknown-region'); // environment-agnostic
    }
    // First deploy (docs/deploy.md): no certificate yet, so the service is created with 0 tasks
    // instead of failing its circuit breaker, and synth says what to do next.
    expect(res.output).toMatch(/created with 0 tasks.*-c keyless:edge\.certificatesReady=true/);
    const edge = JSON.parse(fs.readFileSync(path.join(res.out, 'Keyless-Demo-Edge.template.json'), 'utf8'));
    const byType = (type: string) =>
      Object.values(edge.Resources as Record<string, { Type: string; Properties: Record<string, unknown> }>).filter(
        (r) => r.Type === type,
      );
    expect(byType('AWS::ECS::Service')[0].Properties.DesiredCount).toBe(0);
    expect(byType('AWS::ApplicationAutoScaling::ScalableTarget')[0].Properties).toMatchObject({
      MinCapacity: 0,
      MaxCapacity: 0,
    });
    // Rollback of a failed first deploy can delete the load balancer.
    expect(byType('AWS::ElasticLoadBalancingV2::LoadBalancer')[0].Properties.LoadBalancerAttributes).toEqual(
      expect.arrayContaining([{ Key: 'deletion_protection.enabled', Value: 'false' }]),
    );
  } finally {
    res.cleanup();
  }
});
