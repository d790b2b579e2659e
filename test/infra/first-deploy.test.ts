/**
 * The first deploy, and the network the edge gets: what docs/deploy.md's first-deploy sequence relies
 * on (0 tasks until a certificate exists, nothing that alarms on a fresh stack, no DesiredCount once
 * serving), and the origin egress / NAT rules.
 */
import { resourcesOfType, render, type CfnTemplate, type Synth, synthesize } from './helpers';

const OPERATOR = 'arn:aws:iam::111122223333:role/KeylessOperator';
const base = {
  deployment: 'first',
  keys: [{ name: 'web', custody: 'kms', keySpec: 'ECC_NIST_P256' }],
  operators: [OPERATOR],
};
const EDGE = 'Keyless-First-Edge';
const KS = 'Keyless-First-KeyService';

const only = (t: CfnTemplate, type: string) => {
  const all = resourcesOfType(t, type);
  expect(all).toHaveLength(1);
  return all[0][1];
};
const warnings = (s: Synth, stack: string): string[] =>
  s.assembly
    .getStackByName(stack)
    .messages.filter((m) => m.level === 'warning')
    .map((m) => String(m.entry.data));

describe('before any certificate exists', () => {
  let s: Synth;
  beforeAll(() => {
    s = synthesize({ ...base, edge: { origin: 'http://10.80.7.7:8080' } });
  });
  afterAll(() => s?.cleanup());

  test('the service is created with 0 tasks and 0..0 scaling, and synth says what to do next', () => {
    const edge = s.json(EDGE);
    expect(only(edge, 'AWS::ECS::Service').Properties!.DesiredCount).toBe(0);
    expect(only(edge, 'AWS::ApplicationAutoScaling::ScalableTarget').Properties).toMatchObject({
      MinCapacity: 0,
      MaxCapacity: 0,
    });
    expect(warnings(s, EDGE)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/created with 0 tasks.*deploy again with -c keyless:edge\.certificatesReady=true/),
      ]),
    );
  });

  test('no alarm treats missing data as breaching, and there is no minimum to fall below', () => {
    for (const name of [EDGE, KS]) {
      for (const [id, a] of resourcesOfType(s.json(name), 'AWS::CloudWatch::Alarm'))
        expect([id, a.Properties!.TreatMissingData]).toEqual([id, 'notBreaching']);
    }
    expect(
      resourcesOfType(s.json(EDGE), 'AWS::CloudWatch::Alarm')
        .map(([id]) => id)
        .filter((id) => /TasksBelowMinimum/.test(id)),
    ).toEqual([]);
  });

  test('no reserved concurrency unless configured (accounts with a low concurrency limit can deploy)', () => {
    const fn = resourcesOfType(s.json(KS), 'AWS::Lambda::Function').find(([, r]) => r.Properties!.VpcConfig)![1];
    expect(fn.Properties!.ReservedConcurrentExecutions).toBeUndefined();
    expect(
      resourcesOfType(s.json(KS), 'AWS::CloudWatch::Alarm')
        .map(([id]) => id)
        .filter((id) => /ConcurrencyNearReserved/.test(id)),
    ).toEqual([]);
  });

  test('an origin address inside the VPC: egress on its port to that address only, and no warning', () => {
    const edge = s.json(EDGE);
    const [, svc] = resourcesOfType(edge, 'AWS::ECS::Service')[0];
    const taskSg = svc.Properties!.NetworkConfiguration.AwsvpcConfiguration.SecurityGroups[0]['Fn::GetAtt'][0];
    const egress = (
      edge.Resources[taskSg].Properties!.SecurityGroupEgress as Array<{ CidrIp: string; FromPort: number }>
    ).map((r) => `${render(r.CidrIp)}:${r.FromPort}`);
    expect(egress).toEqual(['0.0.0.0/0:443', '10.80.7.7/32:8080']);
    expect(warnings(s, EDGE).filter((w) => /origin/i.test(w))).toEqual([]);
  });
});

describe('once a certificate exists', () => {
  let s: Synth;
  beforeAll(() => {
    s = synthesize({
      ...base,
      edge: { origin: 'http://192.0.2.10:8080', certificatesReady: true, minTasks: 3, maxTasks: 9 },
    });
  });
  afterAll(() => s?.cleanup());

  test('autoscaling owns the count: no DesiredCount, the configured bounds, a minimum to alarm on', () => {
    const edge = s.json(EDGE);
    expect(only(edge, 'AWS::ECS::Service').Properties!.DesiredCount).toBeUndefined();
    expect(only(edge, 'AWS::ApplicationAutoScaling::ScalableTarget').Properties).toMatchObject({
      MinCapacity: 3,
      MaxCapacity: 9,
    });
    const below = resourcesOfType(edge, 'AWS::CloudWatch::Alarm').find(([id]) => /TasksBelowMinimum/.test(id))![1];
    expect(below.Properties).toMatchObject({ Threshold: 3, TreatMissingData: 'notBreaching' });
    expect(warnings(s, EDGE).filter((w) => /0 tasks/.test(w))).toEqual([]);
  });

  test('an origin outside the VPC is named in a synth warning (the hop is plaintext)', () => {
    expect(warnings(s, EDGE)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/The origin 192\.0\.2\.10 is outside the edge VPC \(10\.80\.0\.0\/16\).*plaintext/),
      ]),
    );
  });
});

describe('a single-region edge without NAT', () => {
  let s: Synth;
  beforeAll(() => {
    s = synthesize({ ...base, edge: { origin: 'http://10.80.7.7:8080', natGateways: 0 } });
  });
  afterAll(() => s?.cleanup());

  test('isolated task subnets, no NAT gateway, and every AWS API the task uses through an endpoint', () => {
    const edge = s.json(EDGE);
    expect(resourcesOfType(edge, 'AWS::EC2::NatGateway')).toEqual([]);
    const services = resourcesOfType(edge, 'AWS::EC2::VPCEndpoint').map(([, r]) =>
      render(r.Properties!.ServiceName, { 'AWS::Region': 'r', 'AWS::URLSuffix': 'amazonaws.com' }),
    );
    expect(services.sort()).toEqual(
      [
        'com.amazonaws.r.ecr.api',
        'com.amazonaws.r.ecr.dkr',
        'com.amazonaws.r.lambda',
        'com.amazonaws.r.logs',
        'com.amazonaws.r.s3',
        'com.amazonaws.r.ssm',
      ].sort(),
    );
    const [, svc] = resourcesOfType(edge, 'AWS::ECS::Service')[0];
    for (const sn of svc.Properties!.NetworkConfiguration.AwsvpcConfiguration.Subnets.map(
      (r: { Ref: string }) => r.Ref,
    )) {
      expect(edge.Resources[sn].Properties!.Tags).toEqual(
        expect.arrayContaining([{ Key: 'aws-cdk:subnet-type', Value: 'Isolated' }]),
      );
      expect(edge.Resources[sn].Properties!.MapPublicIpOnLaunch).toBe(false);
    }
    // The S3 gateway endpoint admits only ECR's image-layer bucket.
    const s3 = resourcesOfType(edge, 'AWS::EC2::VPCEndpoint').find(([, r]) =>
      /s3/.test(render(r.Properties!.ServiceName)),
    )![1];
    expect(s3.Properties!.VpcEndpointType).toBe('Gateway');
    expect(
      render(s3.Properties!.PolicyDocument.Statement[0].Resource, { 'AWS::Partition': 'aws', 'AWS::Region': 'r' }),
    ).toBe('arn:aws:s3:::prod-r-starport-layer-bucket/*');
  });
});
