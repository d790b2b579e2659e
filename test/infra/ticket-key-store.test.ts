/**
 * lib/ticket-key-store.ts on its own: the ticket-key envelope KMS key, the SSM endpoint in the
 * isolated VPC, the key-service role's grants and the Lambda environment. The policies are then
 * evaluated with the IAM simulator: the key-service role may use the store's path and the key only
 * for its own deployment through its KMS endpoint; an administrator with kms:* on the account may not
 * decrypt a stored ticket key.
 */
import 'reflect-metadata';
import { App, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import { KEY_ADMIN_ACTIONS } from '../../lib/kms-keys';
import { TicketKeyStore } from '../../lib/ticket-key-store';
import {
  allowedActions,
  asArray,
  nagFindings,
  PSEUDO,
  resourcesOfType,
  type CfnTemplate,
  type Statement,
} from './helpers';

const ACCOUNT = PSEUDO['AWS::AccountId'];
const REGION = PSEUDO['AWS::Region'];
const ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/KeyServiceRole`;
const KEY_ARN = `arn:aws:kms:${REGION}:${ACCOUNT}:key/00000000-1111-2222-3333-444444444444`;
const KMS_VPCE = 'vpce-0kms';

let t: CfnTemplate;
let store: TicketKeyStore;
let stack: Stack;
let ids: { role: string; key: string; kmsEndpoint: string; ssmEndpoint: string; functionSg: string };

beforeAll(() => {
  const app = new App();
  stack = new Stack(app, 'TicketKeyStoreTest');
  const vpc = new ec2.Vpc(stack, 'Vpc', {
    natGateways: 0,
    maxAzs: 2,
    subnetConfiguration: [{ name: 'KeyService', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
  });
  const functionSg = new ec2.SecurityGroup(stack, 'FunctionSg', { vpc, allowAllOutbound: false });
  const kmsEndpoint = vpc.addInterfaceEndpoint('KmsEndpoint', {
    service: ec2.InterfaceVpcEndpointAwsService.KMS,
    subnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
    open: false,
  });
  const role = new iam.Role(stack, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
  store = new TicketKeyStore(stack, 'TicketKeys', {
    deployment: 'test',
    vpc,
    subnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
    functionSecurityGroup: functionSg,
    kmsEndpoint,
    deletionWindowDays: 7,
  });
  store.grantKeyService(role);
  t = app.synth().getStackByName('TicketKeyStoreTest').template as CfnTemplate;
  const idOf = (type: string, match: (p: Record<string, unknown>) => boolean = () => true) =>
    resourcesOfType(t, type).find(([, r]) => match(r.Properties ?? {}))![0];
  ids = {
    role: idOf('AWS::IAM::Role'),
    key: idOf('AWS::KMS::Key'),
    kmsEndpoint: idOf('AWS::EC2::VPCEndpoint', (p) => JSON.stringify(p.ServiceName).includes('.kms"')),
    ssmEndpoint: idOf('AWS::EC2::VPCEndpoint', (p) => JSON.stringify(p.ServiceName).includes('.ssm"')),
    functionSg: idOf('AWS::EC2::SecurityGroup', (p) => p.GroupDescription === 'TicketKeyStoreTest/FunctionSg'),
  };
});

/** Replace intrinsics with the concrete values of this test's account. */
function resolve<T>(v: T): T {
  const walk = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(walk);
    if (typeof x !== 'object' || x === null) return x;
    const o = x as Record<string, unknown>;
    if (o['Fn::Join']) {
      const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
      return parts.map(walk).join(sep);
    }
    if (typeof o.Ref === 'string')
      return (PSEUDO as Record<string, string>)[o.Ref] ?? (o.Ref === ids.kmsEndpoint ? KMS_VPCE : `<${o.Ref}>`);
    if (o['Fn::GetAtt']) {
      const [id] = o['Fn::GetAtt'] as string[];
      return id === ids.role ? ROLE_ARN : id === ids.key ? KEY_ARN : `<${id}>`;
    }
    return Object.fromEntries(Object.entries(o).map(([k, val]) => [k, walk(val)]));
  };
  return walk(v) as T;
}

const keyPolicy = () => resolve(t.Resources[ids.key].Properties!.KeyPolicy);
const rolePolicies = () =>
  resourcesOfType(t, 'AWS::IAM::Policy')
    .filter(([, p]) => asArray<{ Ref: string }>(p.Properties!.Roles).some((r) => r.Ref === ids.role))
    .map(([id, p]) => ({ name: id, policy: resolve(p.Properties!.PolicyDocument) }));

describe('resources', () => {
  test('a symmetric ENCRYPT_DECRYPT key, rotated, retained, aliased and tagged with the deployment', () => {
    const key = t.Resources[ids.key];
    expect(key.Properties).toMatchObject({
      KeySpec: 'SYMMETRIC_DEFAULT',
      KeyUsage: 'ENCRYPT_DECRYPT',
      EnableKeyRotation: true,
      PendingWindowInDays: 7,
    });
    expect(key.Properties!.Tags).toEqual([{ Key: 'keyless:deployment', Value: 'test' }]);
    expect(key.DeletionPolicy).toBe('Retain');
    const [, alias] = resourcesOfType(t, 'AWS::KMS::Alias')[0];
    expect(alias.Properties).toEqual({
      AliasName: 'alias/keyless/test/ticket-keys',
      TargetKeyId: { 'Fn::GetAtt': [ids.key, 'Arn'] },
    });
    expect(resourcesOfType(t, 'AWS::KMS::Key')).toHaveLength(1); // nothing else: no HMAC key
  });

  test('an SSM interface endpoint with private DNS, reachable only from the function on 443', () => {
    const ep = t.Resources[ids.ssmEndpoint].Properties!;
    expect(ep).toMatchObject({ VpcEndpointType: 'Interface', PrivateDnsEnabled: true });
    const epSg = ep.SecurityGroupIds[0]['Fn::GetAtt'][0];
    const ingress = resourcesOfType(t, 'AWS::EC2::SecurityGroupIngress').filter(
      ([, r]) => r.Properties!.GroupId['Fn::GetAtt'][0] === epSg,
    );
    expect(ingress.map(([, r]) => r.Properties)).toEqual([
      expect.objectContaining({
        IpProtocol: 'tcp',
        FromPort: 443,
        ToPort: 443,
        SourceSecurityGroupId: { 'Fn::GetAtt': [ids.functionSg, 'GroupId'] },
      }),
    ]);
    const egress = resourcesOfType(t, 'AWS::EC2::SecurityGroupEgress').filter(
      ([, r]) => r.Properties!.GroupId['Fn::GetAtt'][0] === ids.functionSg,
    );
    expect(egress.map(([, r]) => r.Properties!.DestinationSecurityGroupId)).toEqual([
      { 'Fn::GetAtt': [epSg, 'GroupId'] },
    ]);
  });

  test('endpoint policies: only the key-service role; SSM only on the store, KMS only the envelope actions', () => {
    const ssm: Statement[] = resolve(t.Resources[ids.ssmEndpoint].Properties!.PolicyDocument.Statement);
    expect(ssm).toEqual([
      {
        Sid: 'OnlyTheKeyServiceRoleOnItsStore',
        Effect: 'Allow',
        Principal: { AWS: ROLE_ARN },
        Action: ['ssm:GetParameter', 'ssm:PutParameter', 'ssm:DeleteParameter'],
        Resource: `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/keyless/test/ticket-keys/*`,
      },
    ]);
    const kms: Statement[] = resolve(t.Resources[ids.kmsEndpoint].Properties!.PolicyDocument.Statement);
    expect(kms).toEqual([
      expect.objectContaining({ Principal: { AWS: ROLE_ARN }, Action: ['kms:Encrypt', 'kms:Decrypt'] }),
    ]);
  });

  test('the Lambda environment names the key, the store and the retention', () => {
    expect(Stack.of(store).resolve(store.environment())).toEqual({
      KEYLESS_TICKET_KEY_ID: { 'Fn::GetAtt': [ids.key, 'Arn'] },
      KEYLESS_TICKET_PARAMETER_PREFIX: '/keyless/test/ticket-keys/',
      KEYLESS_TICKET_EPOCH_SECONDS: '3600',
      KEYLESS_TICKET_EPOCHS_ACCEPTED: '2',
    });
  });

  test('the role gets exactly the store and envelope actions; administrators get no use of the key', () => {
    expect(allowedActions(rolePolicies().flatMap((p) => asArray<Statement>(p.policy.Statement)))).toEqual([
      'kms:Decrypt',
      'kms:Encrypt',
      'ssm:DeleteParameter',
      'ssm:GetParameter',
      'ssm:PutParameter',
    ]);
    const admin = (keyPolicy().Statement as Statement[]).find((s) => s.Sid === 'AccountAdministersKeyButCannotUseIt')!;
    expect(
      asArray<string>(admin.Action).every(
        (a) => KEY_ADMIN_ACTIONS.includes(a) && !/Encrypt|Decrypt|GenerateDataKey/.test(a),
      ),
    ).toBe(true);
  });

  test('cdk-nag: no unacknowledged finding from the construct', () => {
    const mine = nagFindings(stack).filter((f) => f.paths.some((p) => p.startsWith('TicketKeys')));
    expect(mine).toEqual([]);
  });
});

describe('IAM simulator', () => {
  async function decide(
    principal: string,
    action: string,
    resource: string,
    context: Record<string, string>,
    identity: Simulation['identityPolicies'],
    resourcePolicy?: unknown,
  ): Promise<string> {
    const res = await runSimulation(
      {
        request: { principal, action, resource: { resource, accountId: ACCOUNT }, contextVariables: context },
        identityPolicies: identity,
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        ...(resourcePolicy ? { resourcePolicy: resourcePolicy as Simulation['resourcePolicy'] } : {}),
      },
      {},
    );
    if (res.resultType === 'error') throw new Error(JSON.stringify(res.errors));
    return res.overallResult;
  }

  const param = (name: string) => `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter${name}`;
  const kmsContext = (deployment: string, vpce = KMS_VPCE) => ({
    'aws:PrincipalArn': ROLE_ARN,
    'aws:SourceVpce': vpce,
    'kms:EncryptionContext:keyless:deployment': deployment,
    'kms:EncryptionAlgorithm': 'SYMMETRIC_DEFAULT',
  });

  test('the key-service role: its store only', async () => {
    const policies = rolePolicies();
    for (const action of ['ssm:GetParameter', 'ssm:PutParameter', 'ssm:DeleteParameter']) {
      expect(
        await decide(
          ROLE_ARN,
          action,
          param('/keyless/test/ticket-keys/490000'),
          { 'aws:PrincipalArn': ROLE_ARN },
          policies,
        ),
      ).toBe('Allowed');
    }
    for (const name of [
      '/keyless/test/certs/www',
      '/keyless/other/ticket-keys/490000',
      '/keyless/test/ticket-keys-evil/1',
    ]) {
      expect(await decide(ROLE_ARN, 'ssm:PutParameter', param(name), { 'aws:PrincipalArn': ROLE_ARN }, policies)).toBe(
        'ImplicitlyDenied',
      );
    }
    expect(
      await decide(
        ROLE_ARN,
        'ssm:GetParametersByPath',
        param('/keyless/test/ticket-keys'),
        { 'aws:PrincipalArn': ROLE_ARN },
        policies,
      ),
    ).toBe('ImplicitlyDenied');
  });

  /**
   * The simulator does not resolve kms:EncryptionContext:<key> from the request context (it denies
   * even a bare StringEquals on one), so that condition is checked as written here and taken out of
   * the copies the simulator evaluates; everything else is evaluated as deployed.
   */
  const CONTEXT_KEY = 'kms:EncryptionContext:keyless:deployment';
  function withoutContextCondition<T>(doc: T): T {
    return JSON.parse(JSON.stringify(doc), (k, v: unknown) =>
      k === 'StringEquals' && v && typeof v === 'object'
        ? Object.fromEntries(Object.entries(v).filter(([c]) => c !== CONTEXT_KEY))
        : v,
    ) as T;
  }

  test('the envelope key: the key-service role, through its endpoint, for its own deployment only', async () => {
    const contexts = [
      ...rolePolicies().flatMap((p) => asArray<Statement>(p.policy.Statement)),
      ...(keyPolicy().Statement as Statement[]),
    ]
      .filter((st) => asArray<string>(st.Action).includes('kms:Decrypt'))
      .map((st) => st.Condition.StringEquals[CONTEXT_KEY]);
    expect(contexts).toEqual(['test', 'test']); // identity policy and key policy both bind the deployment
    const policies = withoutContextCondition(rolePolicies());
    const key = withoutContextCondition(keyPolicy());
    for (const action of ['kms:Encrypt', 'kms:Decrypt']) {
      expect(await decide(ROLE_ARN, action, KEY_ARN, kmsContext('test'), policies, key)).toBe('Allowed');
    }
    expect(await decide(ROLE_ARN, 'kms:Decrypt', KEY_ARN, kmsContext('test', 'vpce-0other'), policies, key)).not.toBe(
      'Allowed',
    );
    expect(
      await decide(
        ROLE_ARN,
        'kms:Decrypt',
        KEY_ARN,
        { ...kmsContext('test'), 'kms:EncryptionAlgorithm': 'RSAES_OAEP_SHA_256' },
        policies,
        key,
      ),
    ).not.toBe('Allowed');
    expect(await decide(ROLE_ARN, 'kms:ReEncryptFrom', KEY_ARN, kmsContext('test'), policies, key)).not.toBe('Allowed');
  });

  test('an administrator with kms:* and ssm:* on everything cannot decrypt a stored ticket key', async () => {
    const adminArn = `arn:aws:iam::${ACCOUNT}:role/Administrator`;
    const everything = [
      {
        name: 'admin',
        policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['kms:*', 'ssm:*'], Resource: '*' }] },
      },
    ];
    const ctx = { ...kmsContext('test'), 'aws:PrincipalArn': adminArn };
    const key = withoutContextCondition(keyPolicy());
    expect(await decide(adminArn, 'kms:Decrypt', KEY_ARN, ctx, everything, key)).not.toBe('Allowed');
    expect(await decide(adminArn, 'kms:Encrypt', KEY_ARN, ctx, everything, key)).not.toBe('Allowed');
    expect(await decide(adminArn, 'kms:DisableKey', KEY_ARN, ctx, everything, key)).toBe('Allowed'); // administration stays possible
  });
});
