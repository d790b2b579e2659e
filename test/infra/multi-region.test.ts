/**
 * Multi-region option (one of several key services, in failover order): key services in two
 * regions with multi-Region KMS keys (same key material, one certificate) and an edge that fails
 * over between them in order. Also exercises the HTTP health check and client-IP preservation
 * variants of the edge. One synthesis shared by the file.
 */
import { Match } from 'aws-cdk-lib/assertions';
import {
  acknowledgements,
  allowedActions,
  asArray,
  containerEnvironment,
  fakeSealedKey,
  makeCertificate,
  realCfnLintFindings,
  onlyResource,
  PSEUDO,
  render,
  resourcesOfType,
  roleStatements,
  usedAcknowledgements,
  type CfnTemplate,
  type Statement,
  type Synth,
  synthesize,
  unacknowledgedNagFindings,
} from './helpers';

const PRIMARY = 'eu-west-1';
const SECONDARY = 'eu-central-1';
const KS1 = `Keyless-Global-KeyService-${PRIMARY}`;
const KS2 = `Keyless-Global-KeyService-${SECONDARY}`;
const EDGE = 'Keyless-Global-Edge';

let s: Synth;
let ks1: CfnTemplate;
let ks2: CfnTemplate;
let edge: CfnTemplate;
let sealed: ReturnType<typeof fakeSealedKey>;

beforeAll(async () => {
  sealed = fakeSealedKey();
  const cert = await makeCertificate(['www.example.org'], 'ecdsa-p384');
  s = synthesize({
    deployment: 'global',
    regions: [PRIMARY, SECONDARY],
    availabilityZones: { [PRIMARY]: ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'] },
    keys: [
      { name: 'web', custody: 'kms', keySpec: 'ECC_NIST_P384' },
      { name: 'legacy', custody: 'sealed', sealedKey: sealed.sealedKey, publicKey: sealed.publicKey },
    ],
    certificates: [{ name: 'www', hostnames: ['www.example.org'], keyName: 'web', chainPem: cert.pem }],
    edge: {
      origin: 'tcp://origin.example.org:9000',
      proxyMode: 'tcp',
      originProxyProtocol: true,
      logSampleRate: 0.5,
      stopTimeoutSeconds: 30,
      healthCheck: 'tcp',
      privateEndpoints: false,
      clientAddress: 'preserve-client-ip',
      allowedClientCidrs: ['203.0.113.0/24', '198.51.100.0/24'],
      cpuArchitecture: 'X86_64',
      deletionProtection: false,
      natGateways: 1,
    },
  });
  ks1 = s.json(KS1);
  ks2 = s.json(KS2);
  edge = s.json(EDGE);
});

afterAll(() => s?.cleanup());

const ofType = (t: CfnTemplate, type: string) => resourcesOfType(t, type);
const fnOf = (t: CfnTemplate) => ofType(t, 'AWS::Lambda::Function').find(([, r]) => r.Properties?.VpcConfig)!;

describe('one key service per region, pinned to its region', () => {
  test('stacks, regions and deployment order', () => {
    const env = (n: string) => s.assembly.getStackByName(n).environment.region;
    expect([env(KS1), env(KS2), env(EDGE)]).toEqual([PRIMARY, SECONDARY, PRIMARY]);
    const deps = (n: string) =>
      s.assembly
        .getStackByName(n)
        .dependencies.map((d) => d.id)
        .filter((id) => !id.endsWith('.assets'));
    expect(deps(KS2)).toEqual([KS1]); // replicas need their primaries
    expect(deps(EDGE).sort()).toEqual([KS1, KS2].sort());
  });

  test('explicit AZ names are used where given (three AZs), two otherwise', () => {
    const azs = (t: CfnTemplate) => ofType(t, 'AWS::EC2::Subnet').map(([, r]) => r.Properties!.AvailabilityZone);
    expect(azs(ks1).sort()).toEqual(['eu-west-1a', 'eu-west-1b', 'eu-west-1c']);
    expect(azs(ks2)).toHaveLength(2);
  });

  test('every region is isolated the same way', () => {
    for (const t of [ks1, ks2]) {
      for (const type of ['AWS::EC2::NatGateway', 'AWS::EC2::InternetGateway', 'AWS::EC2::Route'])
        expect(ofType(t, type)).toHaveLength(0);
      const endpoints = ofType(t, 'AWS::EC2::VPCEndpoint');
      expect(endpoints).toHaveLength(2); // KMS, and SSM for the ticket-key store
      for (const [, ep] of endpoints) expect(ep.Properties!.PrivateDnsEnabled).toBe(true);
    }
  });
});

describe('multi-Region keys: same key material in every region', () => {
  test('the first region holds multi-Region primary keys', () => {
    const keys = ofType(ks1, 'AWS::KMS::Key').filter(([, k]) =>
      /keyless global: (TLS|wraps)/.test(k.Properties!.Description),
    );
    expect(keys).toHaveLength(2); // signing key, sealed wrapping key (no HMAC key: ticket keys are random per region)
    for (const [, k] of keys) {
      expect(k.Properties!.MultiRegion).toBe(true);
      expect(k.DeletionPolicy).toBe('Retain');
      const admin = (k.Properties!.KeyPolicy.Statement as Statement[]).find(
        (x) => x.Sid === 'AccountAdministersKeyButCannotUseIt',
      )!;
      expect(asArray(admin.Action)).toEqual(expect.arrayContaining(['kms:ReplicateKey', 'kms:UpdatePrimaryRegion']));
    }
  });

  test('the other region replicates each of them (read from the primary stack in the primary region)', () => {
    expect(
      ofType(ks2, 'AWS::KMS::Key').filter(([, k]) => /keyless global: (TLS|wraps)/.test(k.Properties!.Description)),
    ).toHaveLength(0);
    const replicas = ofType(ks2, 'AWS::KMS::ReplicaKey');
    expect(replicas).toHaveLength(2);
    for (const [id, r] of replicas) {
      expect(r.DeletionPolicy).toBe('Retain');
      expect(r.Properties!.PendingWindowInDays).toBe(30);
      const g = r.Properties!.PrimaryKeyArn['Fn::GetStackOutput'];
      expect(g).toMatchObject({ StackName: KS1, Region: PRIMARY });
      expect(s.json(KS1).Outputs).toHaveProperty(g.OutputName);
      // An alias of the same name in this region points at the replica.
      expect(ofType(ks2, 'AWS::KMS::Alias').some(([, a]) => a.Properties!.TargetKeyId['Fn::GetAtt']?.[0] === id)).toBe(
        true,
      );
    }
    expect(
      ofType(ks2, 'AWS::KMS::Alias')
        .map(([, a]) => a.Properties!.AliasName)
        .sort(),
    ).toEqual(
      // The ticket-key envelope key is per region, not a replica: a ticket resumes only in its region.
      [
        'alias/keyless/global/keys/web',
        'alias/keyless/global/sealed-wrapping',
        'alias/keyless/global/ticket-keys',
      ].sort(),
    );
  });

  test("each replica's key policy binds its own region's role and VPC endpoint", () => {
    const [, fn] = fnOf(ks2);
    const roleId = fn.Properties!.Role['Fn::GetAtt'][0];
    const [epId] = ofType(ks2, 'AWS::EC2::VPCEndpoint').find(([, r]) =>
      JSON.stringify(r.Properties!.ServiceName).includes('.kms"'),
    )!;
    for (const [, r] of ofType(ks2, 'AWS::KMS::ReplicaKey')) {
      const use = (r.Properties!.KeyPolicy.Statement as Statement[]).filter((x) => x.Condition?.ArnEquals);
      expect(use.length).toBeGreaterThan(0);
      for (const u of use) {
        expect(u.Condition.ArnEquals['aws:PrincipalArn']).toEqual({ 'Fn::GetAtt': [roleId, 'Arn'] });
        expect(u.Condition.StringEquals['aws:SourceVpce']).toEqual({ Ref: epId });
      }
    }
  });

  test("each region's key service is configured with its own region's aliases, and the same sealed ciphertext", () => {
    for (const [t, region] of [
      [ks1, PRIMARY],
      [ks2, SECONDARY],
    ] as const) {
      const env = fnOf(t)[1].Properties!.Environment.Variables;
      const arn = (a: string) => `arn:aws:kms:${region}:111111111111:alias/keyless/global/${a}`;
      expect(JSON.parse(render(env.KEYLESS_KEYS, PSEUDO))).toEqual([
        { name: 'web', custody: 'kms', keyId: arn('keys/web') },
        {
          name: 'legacy',
          custody: 'sealed',
          wrappingKeyId: arn('sealed-wrapping'),
          sealedKey: sealed.sealedKey,
          publicKey: sealed.publicKey,
        },
        { name: '*', custody: 'kms', aliasPrefix: 'alias/keyless/global/keys/' },
      ]);
      expect(env.KEYLESS_TICKET_PARAMETER_PREFIX).toBe('/keyless/global/ticket-keys/');
      const [ticketKeyId] = ofType(t, 'AWS::KMS::Key').find(([, k]) =>
        /session-ticket/.test(k.Properties!.Description),
      )!;
      expect(env.KEYLESS_TICKET_KEY_ID).toEqual({ 'Fn::GetAtt': [ticketKeyId, 'Arn'] }); // this region's own key
      const roleId = fnOf(t)[1].Properties!.Role['Fn::GetAtt'][0];
      expect(allowedActions(roleStatements(t, roleId)).filter((a) => a.startsWith('kms:'))).toEqual([
        'kms:Decrypt',
        'kms:Encrypt',
        'kms:GetPublicKey',
        'kms:Sign',
      ]);
    }
  });

  test('one certificate for every region: stored once, next to the edge', () => {
    expect(ofType(ks1, 'AWS::SSM::Parameter')).toHaveLength(0);
    expect(ofType(ks2, 'AWS::SSM::Parameter')).toHaveLength(0);
    expect(
      ofType(edge, 'AWS::SSM::Parameter')
        .map(([, p]) => p.Properties!.Name)
        .filter((n) => String(n).includes('/certs/')),
    ).toEqual(['/keyless/global/certs/www']);
  });

  test('no provisioned concurrency unless configured', () => {
    for (const t of [ks1, ks2])
      expect(onlyResource(t, 'AWS::Lambda::Alias')[1].Properties!.ProvisionedConcurrencyConfig).toBeUndefined();
  });
});

describe('the edge fails over between key services in order', () => {
  test("KEYLESS_KEY_SERVICES lists the primary region's alias, then the secondary's", () => {
    const v = containerEnvironment(edge).KEYLESS_KEY_SERVICES as { 'Fn::Join': [string, unknown[]] };
    const parts = v['Fn::Join'][1].filter((p) => typeof p !== 'string').map((p) => render(p, PSEUDO));
    expect(parts).toEqual([
      expect.stringMatching(new RegExp(`^<output ${KS1}/PublishOutputRefKeyServiceLiveAlias\\w+@${PRIMARY}>$`)),
      expect.stringMatching(new RegExp(`^<output ${KS2}/PublishOutputRefKeyServiceLiveAlias\\w+@${SECONDARY}>$`)),
    ]);
    expect(v['Fn::Join'][1].filter((p) => typeof p === 'string')).toEqual([',']);
  });

  test('the task role may invoke both aliases and nothing else; still no KMS', () => {
    const [, td] = onlyResource(edge, 'AWS::ECS::TaskDefinition');
    const roleId = td.Properties!.TaskRoleArn['Fn::GetAtt'][0];
    const st = roleStatements(edge, roleId);
    expect(allowedActions(st)).toEqual(['lambda:InvokeFunction', 'ssm:GetParametersByPath']);
    const invoke = st.find((x) => asArray(x.Action).includes('lambda:InvokeFunction'))!;
    expect(
      asArray(invoke.Resource)
        .map((r) => render(r, PSEUDO))
        .sort(),
    ).toEqual([expect.stringContaining(`@${SECONDARY}`), expect.stringContaining(`@${PRIMARY}`)].sort());
  });

  test('only the same-region key service goes through the private Lambda endpoint', () => {
    const [, ep] = onlyResource(edge, 'AWS::EC2::VPCEndpoint');
    const res = asArray(ep.Properties!.PolicyDocument.Statement[0].Resource).map((r) => render(r, PSEUDO));
    expect(res).toEqual([expect.stringContaining(`@${PRIMARY}`)]);
  });

  test("the dashboard shows each region's key service and KMS quota", () => {
    const body = render(onlyResource(edge, 'AWS::CloudWatch::Dashboard')[1].Properties!.DashboardBody, PSEUDO);
    for (const r of [PRIMARY, SECONDARY]) {
      expect(body).toContain(`"region":"${r}"`);
      expect(body).toContain(`callsEcc${r.replace(/-/g, '')}`);
    }
    expect(body).toContain(`${PRIMARY} → ${SECONDARY}`);
  });
});

describe('edge variants: TCP health check, no private endpoints, client-IP preservation, restricted clients, x86', () => {
  test('TCP health check on the traffic port when asked; the admin listener stays on loopback', () => {
    const [, tg] = onlyResource(edge, 'AWS::ElasticLoadBalancingV2::TargetGroup');
    expect(tg.Properties).toMatchObject({ HealthCheckProtocol: 'TCP', HealthCheckPort: 'traffic-port' });
    expect(tg.Properties!.HealthCheckPath).toBeUndefined();
    const attrs = Object.fromEntries(
      (tg.Properties!.TargetGroupAttributes as Array<{ Key: string; Value: string }>).map((a) => [a.Key, a.Value]),
    );
    expect(attrs).toMatchObject({ 'preserve_client_ip.enabled': 'true', 'proxy_protocol_v2.enabled': 'false' });
    const [, lb] = onlyResource(edge, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
    const nlbSg = lb.Properties!.SecurityGroups[0]['Fn::GetAtt'][0];
    const ingress = ofType(edge, 'AWS::EC2::SecurityGroupIngress').filter(
      ([, r]) => r.Properties!.SourceSecurityGroupId?.['Fn::GetAtt']?.[0] === nlbSg,
    );
    expect(ingress.map(([, r]) => r.Properties!.FromPort).sort()).toEqual([8443]);
    const env = containerEnvironment(edge);
    expect(env.KEYLESS_ADMIN_HOST).toBeUndefined();
    expect(env.KEYLESS_PROXY_PROTOCOL).toBeUndefined();
  });

  test('raw TCP forwarding, PROXY protocol to the origin, sampled logs and a drain inside the stop timeout reach the container', () => {
    expect(containerEnvironment(edge)).toMatchObject({
      KEYLESS_ORIGIN: 'tcp://origin.example.org:9000',
      KEYLESS_PROXY_MODE: 'tcp',
      KEYLESS_ORIGIN_PROXY_PROTOCOL: '1',
      KEYLESS_LOG_SAMPLE_RATE: '0.5',
      // deregistration delay 60 s, but ECS kills after 30 s: drain 25 s and exit before SIGKILL.
      KEYLESS_DRAIN_TIMEOUT_MS: '25000',
    });
  });

  test('only the configured client networks reach port 443', () => {
    const [, lb] = onlyResource(edge, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
    const nlbSg = edge.Resources[lb.Properties!.SecurityGroups[0]['Fn::GetAtt'][0]];
    expect(
      nlbSg.Properties!.SecurityGroupIngress.map((r: { CidrIp: string; FromPort: number }) => [r.CidrIp, r.FromPort]),
    ).toEqual([
      ['203.0.113.0/24', 443],
      ['198.51.100.0/24', 443],
    ]);
    expect(lb.Properties!.LoadBalancerAttributes).toEqual(
      expect.arrayContaining([{ Key: 'deletion_protection.enabled', Value: 'false' }]),
    );
  });

  test('without private endpoints only the Lambda endpoint exists, and AWS APIs go through NAT', () => {
    expect(ofType(edge, 'AWS::EC2::VPCEndpoint').map(([, r]) => render(r.Properties!.ServiceName, PSEUDO))).toEqual([
      `com.amazonaws.${PRIMARY}.lambda`,
    ]);
    s.template(EDGE).resourceCountIs('AWS::EC2::NatGateway', 1);
  });

  test('x86 task and image platform when asked', () => {
    s.template(EDGE).hasResourceProperties('AWS::ECS::TaskDefinition', {
      RuntimePlatform: Match.objectLike({ CpuArchitecture: 'X86_64' }),
    });
  });
});

describe('cdk-nag AwsSolutions and cfn-lint, multi-region', () => {
  test('no unacknowledged finding; every acknowledgement used', () => {
    expect(unacknowledgedNagFindings(s.app)).toEqual([]);
    const used = usedAcknowledgements(s.app);
    for (const a of acknowledgements(s.app).filter((x) => x.id.startsWith('AwsSolutions-'))) {
      expect([a.path, a.id, used.has(`${a.path}|${a.id}`)]).toEqual([a.path, a.id, true]);
    }
  });

  test('cfn-lint passes on the three templates', () => {
    const res = realCfnLintFindings(s, [KS1, KS2, EDGE]);
    if ('skipped' in res) {
      console.warn(`cfn-lint skipped: ${res.skipped}`);
      return;
    }
    expect(res.findings).toEqual([]);
  });
});
