/**
 * One-region deployment with every custody mode: the key-service stack and the edge stack, checked
 * against each promise of docs/deploy.md (least privilege, isolation, scaling, observability), cdk-nag
 * AwsSolutions and cfn-lint. One synthesis, shared by every test in this file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Match } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { KEY_ADMIN_ACTIONS } from '../../lib/kms-keys';
import { certificatePrefix, LIVENESS_CHECK_COMMAND, METRICS } from '../../lib/naming';
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
  rsaKeysFromPkcs8,
  usedAcknowledgements,
  type CfnTemplate,
  type Statement,
  type Synth,
  synthesize,
  unacknowledgedNagFindings,
} from './helpers';

const KS = 'Keyless-Prod-KeyService';
const EDGE = 'Keyless-Prod-Edge';
const OPERATOR = 'arn:aws:iam::111111111111:role/KeylessOperator';

let s: Synth;
let ks: CfnTemplate;
let edge: CfnTemplate;
let sealed: ReturnType<typeof fakeSealedKey>;

beforeAll(async () => {
  sealed = fakeSealedKey();
  const www = await makeCertificate(['www.example.com', 'example.com'], 'ecdsa-p256');
  const legacy = await makeCertificate(['legacy.example.com'], 'rsa-2048', {
    keys: await rsaKeysFromPkcs8(sealed.privatePkcs8, sealed.publicKey),
  });
  s = synthesize({
    deployment: 'prod',
    keys: [
      { name: 'web-ecdsa', custody: 'kms', keySpec: 'ECC_NIST_P256' },
      {
        name: 'web-rsa',
        custody: 'kms',
        keySpec: 'RSA_3072',
        signingAlgorithms: ['RSASSA_PSS_SHA_256', 'RSASSA_PKCS1_V1_5_SHA_256'],
      },
      { name: 'legacy', custody: 'sealed', sealedKey: sealed.sealedKey, publicKey: sealed.publicKey },
      { name: 'next', custody: 'sealed' }, // wrapping key exists, key pair not provisioned yet
    ],
    certificates: [
      { name: 'www', hostnames: ['www.example.com', 'example.com'], keyName: 'web-ecdsa', chainPem: www.pem },
      { name: 'legacy', hostnames: ['legacy.example.com'], keyName: 'legacy', chainPem: legacy.pem },
    ],
    edge: {
      origin: 'http://origin.internal.example.com:8080',
      minTasks: 3,
      maxTasks: 12,
      targetConnectionsPerTask: 5000,
      deregistrationDelaySeconds: 45,
    },
    keyService: {
      reservedConcurrency: 50,
      provisionedConcurrency: 2,
      logRetentionDays: 365,
      keyDeletionWindowDays: 14,
      timeoutSeconds: 4,
    },
    alarms: { email: 'oncall@example.com' },
    operators: [OPERATOR],
    tags: { 'cost-center': 'tls' },
  });
  ks = s.json(KS);
  edge = s.json(EDGE);
});

afterAll(() => s?.cleanup());

const ofType = (t: CfnTemplate, type: string) => resourcesOfType(t, type);
const fnEntry = () => ofType(ks, 'AWS::Lambda::Function').find(([, r]) => r.Properties?.VpcConfig)!;
const endpointOf = (service: 'kms' | 'ssm') =>
  ofType(ks, 'AWS::EC2::VPCEndpoint').find(([, r]) =>
    JSON.stringify(r.Properties!.ServiceName).includes(`.${service}"`),
  )!;

describe('key-service network: isolated, no way out but the KMS and SSM endpoints', () => {
  test('no NAT gateway, no internet gateway, no public IP, no route anywhere', () => {
    for (const type of [
      'AWS::EC2::NatGateway',
      'AWS::EC2::InternetGateway',
      'AWS::EC2::EIP',
      'AWS::EC2::Route',
      'AWS::EC2::VPCGatewayAttachment',
    ]) {
      expect(ofType(ks, type)).toHaveLength(0);
    }
    const subnets = ofType(ks, 'AWS::EC2::Subnet');
    expect(subnets.length).toBeGreaterThanOrEqual(2);
    for (const [, sn] of subnets) {
      expect(sn.Properties!.MapPublicIpOnLaunch).toBe(false);
      expect(sn.Properties!.Tags).toEqual(expect.arrayContaining([{ Key: 'aws-cdk:subnet-type', Value: 'Isolated' }]));
    }
  });

  test('the Lambda runs in those isolated subnets only', () => {
    const [, fn] = fnEntry();
    const isolated = ofType(ks, 'AWS::EC2::Subnet')
      .map(([id]) => id)
      .sort();
    expect(fn.Properties!.VpcConfig.SubnetIds.map((r: { Ref: string }) => r.Ref).sort()).toEqual(isolated);
  });

  test('KMS interface endpoint with private DNS in the isolated subnets', () => {
    s.template(KS).hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Interface',
      PrivateDnsEnabled: true,
      ServiceName: { 'Fn::Join': ['', ['com.amazonaws.', { Ref: 'AWS::Region' }, '.kms']] },
    });
    // The other one: SSM, for the ticket-key store (test/infra/ticket-key-store.test.ts).
    expect(ofType(ks, 'AWS::EC2::VPCEndpoint')).toHaveLength(2);
  });

  test("endpoint policy: only the key-service role, only the KMS actions of its modes, only this account's keys", () => {
    const [, ep] = endpointOf('kms');
    const [roleId] = keyServiceRole();
    const st: Statement[] = ep.Properties!.PolicyDocument.Statement;
    expect(st).toHaveLength(2); // signing and unsealing; the ticket-key envelope
    for (const x of st) {
      expect(x.Principal).toEqual({ AWS: { 'Fn::GetAtt': [roleId, 'Arn'] } });
      expect(render(x.Resource, PSEUDO)).toBe('arn:aws:kms:xx-test-1:111111111111:key/*');
    }
    const bySid = Object.fromEntries(st.map((x) => [x.Sid, asArray<string>(x.Action).sort()]));
    expect(bySid).toEqual({
      OnlyTheKeyServiceRole: ['kms:Decrypt', 'kms:GetPublicKey', 'kms:Sign'],
      KeyServiceTicketKeyEnvelope: ['kms:Decrypt', 'kms:Encrypt'],
    });
  });

  test("function security group: no ingress, egress only to the endpoints' security groups on 443", () => {
    const [, fn] = fnEntry();
    const fnSg = fn.Properties!.VpcConfig.SecurityGroupIds[0]['Fn::GetAtt'][0];
    const sg = ks.Resources[fnSg].Properties!;
    expect(sg.SecurityGroupIngress ?? []).toHaveLength(0);
    expect(sg.SecurityGroupEgress ?? []).toHaveLength(0); // only the separate rule below
    const egress = ofType(ks, 'AWS::EC2::SecurityGroupEgress').filter(
      ([, r]) => r.Properties!.GroupId['Fn::GetAtt'][0] === fnSg,
    );
    expect(egress).toHaveLength(2);
    const endpointSgs = (['kms', 'ssm'] as const).map(
      (svc) => endpointOf(svc)[1].Properties!.SecurityGroupIds[0]['Fn::GetAtt'][0] as string,
    );
    for (const [, rule] of egress)
      expect(rule.Properties).toMatchObject({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443 });
    expect(egress.map(([, rule]) => rule.Properties!.DestinationSecurityGroupId['Fn::GetAtt'][0]).sort()).toEqual(
      endpointSgs.sort(),
    );
    const ingress = ofType(ks, 'AWS::EC2::SecurityGroupIngress');
    expect(ingress).toHaveLength(2);
    for (const [, rule] of ingress)
      expect(rule.Properties).toMatchObject({
        FromPort: 443,
        ToPort: 443,
        SourceSecurityGroupId: { 'Fn::GetAtt': [fnSg, 'GroupId'] },
      });
  });

  test('VPC flow logs, all traffic, retained', () => {
    s.template(KS).hasResourceProperties('AWS::EC2::FlowLog', { TrafficType: 'ALL', ResourceType: 'VPC' });
  });
});

function keyServiceRole(): [string, ReturnType<typeof onlyResource>[1]] {
  const [, fn] = fnEntry();
  const id = fn.Properties!.Role['Fn::GetAtt'][0] as string;
  return [id, ks.Resources[id]];
}

describe('key-service function', () => {
  test('NodejsFunction bundled by local esbuild: the current Node.js runtime, ARM64', () => {
    const [, fn] = fnEntry();
    const latestNode = lambda.Runtime.ALL.filter((r) => r.name.startsWith('nodejs'))
      .map((r) => r.name)
      .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }))
      .pop();
    expect(fn.Properties).toMatchObject({
      Runtime: latestNode,
      Architectures: ['arm64'],
      Handler: 'index.handler',
      MemorySize: 1024,
      Timeout: 4,
    });
    // The code asset is the esbuild output: one bundled index.js, no TypeScript.
    const assetDir = path.join(s.outdir, `asset.${fn.Properties!.Code.S3Key.replace(/\.zip$/, '')}`);
    const files = fs.readdirSync(assetDir);
    expect(files).toContain('index.js');
    expect(files.filter((f) => f.endsWith('.ts'))).toEqual([]);
  });

  test('reserved concurrency, published version behind the "live" alias, provisioned concurrency on the alias', () => {
    const [fnId, fn] = fnEntry();
    expect(fn.Properties!.ReservedConcurrentExecutions).toBe(50);
    const [versionId] = onlyResource(ks, 'AWS::Lambda::Version');
    s.template(KS).hasResourceProperties('AWS::Lambda::Version', { FunctionName: { Ref: fnId } });
    s.template(KS).hasResourceProperties('AWS::Lambda::Alias', {
      Name: 'live',
      FunctionName: { Ref: fnId },
      FunctionVersion: { 'Fn::GetAtt': [versionId, 'Version'] },
      ProvisionedConcurrencyConfig: { ProvisionedConcurrentExecutions: 2 },
    });
  });

  test('log retention set; JSON logs into a dedicated, retained log group', () => {
    const [, fn] = fnEntry();
    const lg = fn.Properties!.LoggingConfig.LogGroup.Ref as string;
    expect(fn.Properties!.LoggingConfig.LogFormat).toBe('JSON');
    expect(ks.Resources[lg].Properties!.RetentionInDays).toBe(365);
    expect(ks.Resources[lg].DeletionPolicy).toBe('Retain');
  });

  test('goes live only after its keys, their aliases, its grants and the KMS and SSM endpoints exist', () => {
    const [, fn] = fnEntry();
    const deps = asArray(fn.DependsOn);
    const needed = [
      ...ofType(ks, 'AWS::KMS::Alias'),
      ...ofType(ks, 'AWS::EC2::VPCEndpoint'),
      ...ofType(ks, 'AWS::IAM::Policy').filter(([id]) => id.startsWith('TicketKeys')),
    ].map(([id]) => id);
    expect(deps).toEqual(expect.arrayContaining(needed));
  });

  test('runtime contract: KEYLESS_KEYS and the ticket-key store', () => {
    const [, fn] = fnEntry();
    const env = fn.Properties!.Environment.Variables;
    const keys = JSON.parse(render(env.KEYLESS_KEYS, PSEUDO));
    const arn = (alias: string) => `arn:aws:kms:xx-test-1:111111111111:alias/keyless/prod/${alias}`;
    expect(keys).toEqual([
      { name: 'web-ecdsa', custody: 'kms', keyId: arn('keys/web-ecdsa') },
      { name: 'web-rsa', custody: 'kms', keyId: arn('keys/web-rsa') },
      {
        name: 'legacy',
        custody: 'sealed',
        wrappingKeyId: arn('sealed-wrapping'),
        sealedKey: sealed.sealedKey,
        publicKey: sealed.publicKey,
      },
      // Key generations made by `keyless keys create` / `keyless rotate` are served without a redeploy.
      { name: '*', custody: 'kms', aliasPrefix: 'alias/keyless/prod/keys/' },
    ]); // "next" is not provisioned yet, so it is not served
    const [ticketKeyId] = ofType(ks, 'AWS::KMS::Key').find(([, k]) =>
      /session-ticket/.test(k.Properties!.Description),
    )!;
    expect(env.KEYLESS_TICKET_KEY_ID).toEqual({ 'Fn::GetAtt': [ticketKeyId, 'Arn'] });
    expect(env).toMatchObject({
      KEYLESS_TICKET_PARAMETER_PREFIX: '/keyless/prod/ticket-keys/',
      KEYLESS_TICKET_EPOCH_SECONDS: '3600',
      KEYLESS_TICKET_EPOCHS_ACCEPTED: '2',
    });
    expect(env.KEYLESS_TICKET_MAC_KEY_ID).toBeUndefined();
    expect(env).toMatchObject({
      POWERTOOLS_METRICS_NAMESPACE: METRICS.keyServiceNamespace,
      KEYLESS_DEPLOYMENT: 'prod',
    });
  });
});

describe('key-service role: exactly the KMS actions of its modes, plus logging and VPC networking', () => {
  test('the action set', () => {
    const [roleId, role] = keyServiceRole();
    expect(role.Properties!.ManagedPolicyArns ?? []).toEqual([]);
    expect(allowedActions(roleStatements(ks, roleId))).toEqual(
      [
        // kms custody
        'kms:Sign',
        'kms:GetPublicKey',
        // sealed custody
        'kms:Decrypt',
        // ticket keys: the envelope and the store
        'kms:Encrypt',
        'ssm:GetParameter',
        'ssm:PutParameter',
        'ssm:DeleteParameter',
        // logging
        'logs:CreateLogStream',
        'logs:PutLogEvents',
        // Lambda VPC networking
        'ec2:CreateNetworkInterface',
        'ec2:DescribeNetworkInterfaces',
        'ec2:DescribeSubnets',
        'ec2:DeleteNetworkInterface',
        'ec2:AssignPrivateIpAddresses',
        'ec2:UnassignPrivateIpAddresses',
      ].sort(),
    );
    expect(
      roleStatements(ks, roleId).every(
        (st) => st.Effect === 'Allow' && !asArray<string>(st.Action).some((a) => a.includes('*')),
      ),
    ).toBe(true);
  });

  test('KMS permissions follow aliases (rotation needs no IAM change) and the deployment tag, and carry the algorithm conditions', () => {
    const [roleId] = keyServiceRole();
    // The ticket-key envelope is one fixed key, named by ARN (test/infra/ticket-key-store.test.ts).
    const kmsSt = roleStatements(ks, roleId).filter(
      (st) => st.Sid !== 'TicketKeyEnvelope' && asArray<string>(st.Action).some((a) => a.startsWith('kms:')),
    );
    const aliasesOf = (st: Statement): string[] =>
      st.Condition['ForAnyValue:StringEquals']?.['kms:ResourceAliases'] ??
      st.Condition['ForAnyValue:StringLike']['kms:ResourceAliases'];
    const TAG = 'aws:ResourceTag/keyless:deployment';
    for (const st of kmsSt) {
      expect(render(st.Resource, PSEUDO)).toBe('arn:aws:kms:xx-test-1:111111111111:key/*'); // never a key ARN
      expect(aliasesOf(st).every((a: string) => a.startsWith('alias/keyless/prod/'))).toBe(true);
      // Both the alias and the tag: an alias put on some other key does not make it usable.
      expect(st.Condition.StringEquals[TAG]).toBe('prod');
    }
    // Wildcards only ever cover the deployment's signing-key namespace, never the ticket or wrapping keys.
    const wild = kmsSt.filter((st) => st.Condition['ForAnyValue:StringLike']);
    expect(wild.map((st) => asArray<string>(st.Action).sort().join(','))).toEqual(['kms:Sign', 'kms:GetPublicKey']);
    for (const st of wild)
      expect(st.Condition['ForAnyValue:StringLike']['kms:ResourceAliases']).toEqual(['alias/keyless/prod/keys/*']);
    const sign = kmsSt.filter((st) => asArray(st.Action).includes('kms:Sign'));
    const byAlias = Object.fromEntries(sign.map((st) => [aliasesOf(st).join(','), st.Condition.StringEquals]));
    expect(byAlias).toEqual({
      'alias/keyless/prod/keys/web-ecdsa': {
        'kms:SigningAlgorithm': ['ECDSA_SHA_256'],
        'kms:MessageType': 'RAW',
        [TAG]: 'prod',
      },
      'alias/keyless/prod/keys/web-rsa': {
        'kms:SigningAlgorithm': ['RSASSA_PSS_SHA_256', 'RSASSA_PKCS1_V1_5_SHA_256'],
        'kms:MessageType': 'RAW',
        [TAG]: 'prod',
      },
      // Generations: any TLS signing algorithm, still RAW messages only (the key's own policy narrows further).
      'alias/keyless/prod/keys/*': {
        'kms:SigningAlgorithm': [
          'ECDSA_SHA_256',
          'ECDSA_SHA_384',
          'RSASSA_PKCS1_V1_5_SHA_256',
          'RSASSA_PKCS1_V1_5_SHA_384',
          'RSASSA_PKCS1_V1_5_SHA_512',
          'RSASSA_PSS_SHA_256',
          'RSASSA_PSS_SHA_384',
          'RSASSA_PSS_SHA_512',
        ],
        'kms:MessageType': 'RAW',
        [TAG]: 'prod',
      },
    });
    const decrypt = kmsSt.find((st) => asArray(st.Action).includes('kms:Decrypt'))!;
    expect(decrypt.Condition.StringEquals).toEqual({
      'kms:EncryptionContext:keyless:key-name': ['legacy', 'next'],
      'kms:EncryptionAlgorithm': 'SYMMETRIC_DEFAULT',
      [TAG]: 'prod',
    });
    expect(roleStatements(ks, roleId).some((st) => asArray(st.Action).includes('kms:GenerateMac'))).toBe(false);
  });

  test('the keys the CDK creates carry the deployment tag the role requires', () => {
    const keys = ofType(ks, 'AWS::KMS::Key').filter(([, k]) =>
      /keyless prod: (TLS|session|wraps)/.test(k.Properties!.Description),
    );
    expect(keys.length).toBe(4);
    for (const [, k] of keys)
      expect(k.Properties!.Tags).toEqual(expect.arrayContaining([{ Key: 'keyless:deployment', Value: 'prod' }]));
  });

  test("VPC networking as narrow as EC2 allows: interfaces only in the function's subnets with its security group", () => {
    const [roleId] = keyServiceRole();
    const st = roleStatements(ks, roleId).filter((x) => asArray<string>(x.Action).some((a) => a.startsWith('ec2:')));
    const bySid = Object.fromEntries(st.map((x) => [x.Sid, x]));
    const create = asArray(bySid.CreateInterfacesInOwnSubnetsWithOwnSecurityGroup.Resource).map((r) =>
      render(r, PSEUDO),
    );
    const [, fn] = fnEntry();
    const subnets = fn.Properties!.VpcConfig.SubnetIds.map(
      (r: { Ref: string }) => `arn:aws:ec2:xx-test-1:111111111111:subnet/<${r.Ref}>`,
    );
    const sg = `arn:aws:ec2:xx-test-1:111111111111:security-group/<${fn.Properties!.VpcConfig.SecurityGroupIds[0]['Fn::GetAtt'][0]}.GroupId>`;
    expect(create.sort()).toEqual(['arn:aws:ec2:xx-test-1:111111111111:network-interface/*', ...subnets, sg].sort());
    expect(asArray(bySid.ManageOwnInterfaces.Resource).map((r) => render(r, PSEUDO))).toEqual([
      'arn:aws:ec2:xx-test-1:111111111111:network-interface/*',
    ]);
    // Only the Describe actions, which support no resource-level permissions, are on "*".
    expect(
      st
        .filter((x) => asArray(x.Resource).includes('*'))
        .flatMap((x) => asArray<string>(x.Action))
        .sort(),
    ).toEqual(['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets']);
  });

  test("logging is limited to the function's own log group", () => {
    const [roleId, fn] = [keyServiceRole()[0], fnEntry()[1]];
    const logs = roleStatements(ks, roleId).find((st) => asArray(st.Action).includes('logs:PutLogEvents'))!;
    expect(logs.Resource).toEqual({ 'Fn::GetAtt': [fn.Properties!.LoggingConfig.LogGroup.Ref, 'Arn'] });
  });
});

describe('keys and key policies', () => {
  const keys = () =>
    ofType(ks, 'AWS::KMS::Key').filter(([, k]) => /keyless prod: (TLS|session|wraps)/.test(k.Properties!.Description));
  const keyNamed = (desc: RegExp) => keys().find(([, k]) => desc.test(k.Properties!.Description))!;

  test('kms custody keys: SIGN_VERIFY, their spec, RETAIN, deletion window, alias', () => {
    for (const [name, spec] of [
      ['web-ecdsa', 'ECC_NIST_P256'],
      ['web-rsa', 'RSA_3072'],
    ]) {
      const [id, k] = keyNamed(new RegExp(`"${name}"`));
      expect(k.Properties).toMatchObject({ KeySpec: spec, KeyUsage: 'SIGN_VERIFY', PendingWindowInDays: 14 });
      expect(k.Properties!.Enabled ?? true).toBe(true);
      expect(k.Properties!.EnableKeyRotation ?? false).toBe(false);
      expect(k.Properties!.MultiRegion ?? false).toBe(false);
      expect([k.DeletionPolicy, k.UpdateReplacePolicy]).toEqual(['Retain', 'Retain']);
      s.template(KS).hasResourceProperties('AWS::KMS::Alias', {
        AliasName: `alias/keyless/prod/keys/${name}`,
        TargetKeyId: { 'Fn::GetAtt': [id, 'Arn'] },
      });
    }
  });

  test('ticket-key envelope key and sealed wrapping key; no HMAC key', () => {
    const [, ticket] = keyNamed(/session-ticket/);
    expect(ticket.Properties).toMatchObject({
      KeySpec: 'SYMMETRIC_DEFAULT',
      KeyUsage: 'ENCRYPT_DECRYPT',
      EnableKeyRotation: true,
      PendingWindowInDays: 14,
    });
    expect(ticket.DeletionPolicy).toBe('Retain');
    expect(keys().some(([, k]) => k.Properties!.KeySpec === 'HMAC_256')).toBe(false);
    const [, wrap] = keyNamed(/wraps sealed-custody/);
    expect(wrap.Properties).toMatchObject({
      KeySpec: 'SYMMETRIC_DEFAULT',
      KeyUsage: 'ENCRYPT_DECRYPT',
      EnableKeyRotation: true,
      PendingWindowInDays: 14,
    });
    expect(wrap.DeletionPolicy).toBe('Retain');
    expect(keys()).toHaveLength(4);
  });

  test("every use statement: only the key-service role, only through its VPC endpoint, only its mode's action", () => {
    const [roleId] = keyServiceRole();
    const [epId] = endpointOf('kms');
    const expected = (k: { Properties?: Record<string, unknown> }): string[] =>
      k.Properties!.KeyUsage === 'SIGN_VERIFY'
        ? ['kms:GetPublicKey', 'kms:Sign']
        : /session-ticket/.test(String(k.Properties!.Description))
          ? ['kms:Decrypt', 'kms:Encrypt']
          : ['kms:Decrypt'];
    for (const [, k] of keys()) {
      const st: Statement[] = k.Properties!.KeyPolicy.Statement;
      const use = st.filter((x) => x.Condition?.ArnEquals?.['aws:PrincipalArn']);
      expect(use.length).toBeGreaterThan(0);
      for (const u of use) {
        expect(u.Condition.ArnEquals['aws:PrincipalArn']).toEqual({ 'Fn::GetAtt': [roleId, 'Arn'] });
        expect(u.Condition.StringEquals['aws:SourceVpce']).toEqual({ Ref: epId });
      }
      expect(allowedActions(use)).toEqual(expected(k));
      const sign = use.find((u) => asArray(u.Action).includes('kms:Sign'));
      if (sign) {
        expect(sign.Condition.StringEquals['kms:MessageType']).toBe('RAW');
        expect(sign.Condition.StringEquals['kms:SigningAlgorithm'].length).toBeGreaterThan(0);
      }
      const decrypt = use.find((u) => asArray(u.Action).includes('kms:Decrypt'));
      if (decrypt && /session-ticket/.test(k.Properties!.Description))
        expect(decrypt.Condition.StringEquals['kms:EncryptionContext:keyless:deployment']).toBe('prod');
      else if (decrypt)
        expect(decrypt.Condition.StringEquals['kms:EncryptionContext:keyless:key-name']).toEqual(['legacy', 'next']);
    }
  });

  test('administrators administer but cannot sign, decrypt, MAC or grant', () => {
    const crypto = /^kms:(Sign|Decrypt|Encrypt|ReEncrypt|GenerateMac|GenerateDataKey|CreateGrant|\*)/;
    for (const [, k] of keys()) {
      const admin = (k.Properties!.KeyPolicy.Statement as Statement[]).find(
        (x) => x.Sid === 'AccountAdministersKeyButCannotUseIt',
      )!;
      expect(admin.Condition).toBeUndefined();
      expect(asArray<string>(admin.Action).filter((a) => crypto.test(a))).toEqual([]);
      expect(asArray<string>(admin.Action).every((a) => KEY_ADMIN_ACTIONS.includes(a))).toBe(true);
    }
  });

  test('operators may sign CSRs and provision sealed keys, the key-service role may not take that path', () => {
    const [roleId] = keyServiceRole();
    const all = keys().flatMap(([, k]) => k.Properties!.KeyPolicy.Statement as Statement[]);
    const ops = all.filter((x) => /^Operators/.test(x.Sid));
    expect(ops.map((x) => x.Sid).sort()).toEqual([
      'OperatorsProvisionSealedKeys',
      'OperatorsSignCertificateRequests',
      'OperatorsSignCertificateRequests',
    ]);
    for (const o of ops) {
      expect(o.Condition.ArnLike['aws:PrincipalArn']).toEqual([OPERATOR]);
      expect(o.Condition.ArnNotEquals['aws:PrincipalArn']).toEqual({ 'Fn::GetAtt': [roleId, 'Arn'] });
    }
    expect(ops.find((o) => o.Sid === 'OperatorsProvisionSealedKeys')!.Condition.StringEquals).toMatchObject({
      'kms:EncryptionContext:keyless:key-name': ['legacy', 'next'],
      'kms:DataKeyPairSpec': ['RSA_2048', 'RSA_3072', 'RSA_4096'],
    });
  });
});

describe('edge fleet', () => {
  test('ECS cluster with Container Insights', () => {
    s.template(EDGE).hasResourceProperties('AWS::ECS::Cluster', {
      ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }],
    });
  });

  test('Fargate task from edge-proxy/Dockerfile: non-root, read-only root filesystem, health check, no capabilities', () => {
    const [, td] = onlyResource(edge, 'AWS::ECS::TaskDefinition');
    expect(td.Properties).toMatchObject({
      RequiresCompatibilities: ['FARGATE'],
      NetworkMode: 'awsvpc',
      Cpu: '1024',
      Memory: '2048',
      RuntimePlatform: { CpuArchitecture: 'ARM64' },
    });
    const c = td.Properties!.ContainerDefinitions;
    expect(c).toHaveLength(1);
    expect(c[0]).toMatchObject({
      User: '1000:1000',
      ReadonlyRootFilesystem: true,
      Essential: true,
      StopTimeout: 120,
      LinuxParameters: { Capabilities: { Drop: ['ALL'] }, InitProcessEnabled: true },
      PortMappings: [{ ContainerPort: 8443 }, { ContainerPort: 9090 }],
    });
    // Liveness: exactly the image's HEALTHCHECK (any answer from the admin listener), never key-service state.
    expect(c[0].HealthCheck.Command).toEqual(['CMD', ...LIVENESS_CHECK_COMMAND]);
    expect(c[0].Privileged ?? false).toBe(false);
    // The image is the Docker asset built from edge-proxy/Dockerfile at the repository root.
    const assets = JSON.parse(fs.readFileSync(path.join(s.outdir, `${EDGE}.assets.json`), 'utf8'));
    const images = Object.values(assets.dockerImages) as Array<{
      source: { directory: string; dockerFile: string; platform: string };
    }>;
    expect(images).toHaveLength(1);
    expect(images[0].source).toMatchObject({ dockerFile: 'edge-proxy/Dockerfile', platform: 'linux/arm64' });
    const context = path.join(s.outdir, images[0].source.directory);
    expect(fs.existsSync(path.join(context, 'edge-proxy/Dockerfile'))).toBe(true);
    for (const absent of ['node_modules', '.git', '.keyless', 'dist', 'cdk.out', 'bin', 'lib', 'test', 'local'])
      expect(fs.existsSync(path.join(context, absent))).toBe(false);
    for (const present of ['package.json', 'package-lock.json', 'tools/bundle-edge.mjs', 'edge-proxy/src', 'lambdas'])
      expect(fs.existsSync(path.join(context, present))).toBe(true);
  });

  test('runtime contract: environment of the edge container', () => {
    const env = containerEnvironment(edge);
    const ksOut = render(env.KEYLESS_KEY_SERVICES, PSEUDO);
    expect(ksOut).toMatch(new RegExp(`^<output ${KS}/PublishOutputRefKeyServiceLiveAlias[0-9A-F]+@xx-test-1>$`));
    expect(env).toMatchObject({
      KEYLESS_EDGE_PORT: '8443',
      KEYLESS_ADMIN_PORT: '9090',
      KEYLESS_CERT_SSM_PREFIX: certificatePrefix('prod'),
      KEYLESS_ORIGIN: 'http://origin.internal.example.com:8080',
      KEYLESS_PROXY_PROTOCOL: '1',
      KEYLESS_PROXY_MODE: 'http',
      // The edge's default groups, post-quantum hybrid first (edge.groups in the config).
      KEYLESS_GROUPS: 'X25519MLKEM768,x25519,secp256r1,secp384r1',
      // The drain matches the NLB deregistration delay (45 s here), within the 120 s stop timeout.
      KEYLESS_DRAIN_TIMEOUT_MS: '45000',
      // Scaling and admission: the connection cap, and the fleet KMS budget split over the most tasks
      // that can admit at once (12, doubled during a rolling deploy).
      KEYLESS_MAX_CONNECTIONS: '20000',
      KEYLESS_KMS_BUDGET: '240',
      KEYLESS_FLEET_MAX_TASKS: '24',
      // HTTP readiness checks from the NLB reach the admin listener.
      KEYLESS_ADMIN_HOST: '0.0.0.0',
    });
    expect(env.KEYLESS_ORIGIN_PROXY_PROTOCOL).toBeUndefined(); // off unless configured
    expect(env.KEYLESS_LOG_SAMPLE_RATE).toBeUndefined(); // every connection logged by default
    // The output the edge reads is the key service's live alias.
    const out = (s.json(KS).Outputs ?? {}) as Record<string, { Value: unknown }>;
    const name = ksOut.match(/\/(\w+)@/)![1];
    const [aliasId] = onlyResource(ks, 'AWS::Lambda::Alias');
    expect(out[name].Value).toEqual({ Ref: aliasId });
  });

  test('Network Load Balancer: TCP 443 pass-through to 8443, PROXY protocol v2, health checks, draining', () => {
    const t = s.template(EDGE);
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      Type: 'network',
      Scheme: 'internet-facing',
    });
    t.resourceCountIs('AWS::ElasticLoadBalancingV2::Listener', 1);
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 443, Protocol: 'TCP' });
    const [, tg] = onlyResource(edge, 'AWS::ElasticLoadBalancingV2::TargetGroup');
    // The edge answers GET /healthz on the admin port (200, or 503 without a key service: that is a
    // metric, not a reason to fail every target and have ECS replace every task; docs/deploy.md).
    expect(tg.Properties).toMatchObject({
      Port: 8443,
      Protocol: 'TCP',
      TargetType: 'ip',
      HealthCheckProtocol: 'HTTP',
      HealthCheckPort: '9090',
      HealthCheckPath: '/healthz',
      Matcher: { HttpCode: '200,503' },
      HealthyThresholdCount: 2,
      UnhealthyThresholdCount: 2,
    });
    const attrs = Object.fromEntries(
      (tg.Properties!.TargetGroupAttributes as Array<{ Key: string; Value: string }>).map((a) => [a.Key, a.Value]),
    );
    expect(attrs).toMatchObject({
      'proxy_protocol_v2.enabled': 'true',
      'preserve_client_ip.enabled': 'false',
      'deregistration_delay.timeout_seconds': '45',
      'target_health_state.unhealthy.connection_termination.enabled': 'false',
    });
    // No other listener, no TLS termination at the load balancer.
    for (const [, l] of ofType(edge, 'AWS::ElasticLoadBalancingV2::Listener'))
      expect(l.Properties!.Certificates).toBeUndefined();
  });

  test('security groups: NLB open on 443 only, tasks reachable only from the NLB on 8443 (and 9090 for health checks)', () => {
    const [, svc] = onlyResource(edge, 'AWS::ECS::Service');
    const taskSg = svc.Properties!.NetworkConfiguration.AwsvpcConfiguration.SecurityGroups[0]['Fn::GetAtt'][0];
    const [, lb] = onlyResource(edge, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
    const nlbSg = lb.Properties!.SecurityGroups[0]['Fn::GetAtt'][0];
    expect(edge.Resources[nlbSg].Properties!.SecurityGroupIngress).toEqual([
      { CidrIp: '0.0.0.0/0', Description: 'TLS clients 0.0.0.0/0', FromPort: 443, IpProtocol: 'tcp', ToPort: 443 },
    ]);
    const ingressToTasks = ofType(edge, 'AWS::EC2::SecurityGroupIngress').filter(
      ([, r]) => r.Properties!.GroupId['Fn::GetAtt'][0] === taskSg,
    );
    expect(
      ingressToTasks.map(([, r]) => [r.Properties!.FromPort, r.Properties!.SourceSecurityGroupId['Fn::GetAtt'][0]]),
    ).toEqual([
      [8443, nlbSg],
      [9090, nlbSg],
    ]);
    expect(edge.Resources[taskSg].Properties!.SecurityGroupIngress ?? []).toEqual([]);
    // Egress: HTTPS through NAT (key services of other regions), the origin (a name: the VPC only),
    // and each endpoint's security group.
    const inline = (
      edge.Resources[taskSg].Properties!.SecurityGroupEgress as Array<{ FromPort: number; CidrIp: string }>
    ).map((r) => [r.FromPort, render(r.CidrIp)]);
    expect(inline).toEqual([
      [443, '0.0.0.0/0'],
      [8080, '10.80.0.0/16'],
    ]);
    const toEndpoints = ofType(edge, 'AWS::EC2::SecurityGroupEgress').filter(
      ([, r]) => r.Properties!.GroupId['Fn::GetAtt'][0] === taskSg,
    );
    expect(
      toEndpoints
        .map(([, r]) =>
          r.Properties!.DestinationSecurityGroupId['Fn::GetAtt'][0].replace(/EndpointSecurityGroup.*$/, ''),
        )
        .sort(),
    ).toEqual(['NetworkEcrApi', 'NetworkEcrDocker', 'NetworkLambda', 'NetworkLogs', 'NetworkSsm'].sort());
    for (const [, r] of toEndpoints) expect([r.Properties!.FromPort, r.Properties!.ToPort]).toEqual([443, 443]);
  });

  test('ECS service: private subnets, deployment circuit breaker with rollback, rolling without capacity loss', () => {
    const [, svc] = onlyResource(edge, 'AWS::ECS::Service');
    expect(svc.Properties).toMatchObject({
      LaunchType: 'FARGATE',
      DeploymentConfiguration: {
        DeploymentCircuitBreaker: { Enable: true, Rollback: true },
        MinimumHealthyPercent: 100,
        MaximumPercent: 200,
      },
      NetworkConfiguration: { AwsvpcConfiguration: { AssignPublicIp: 'DISABLED' } },
      EnableExecuteCommand: false,
      LoadBalancers: [{ ContainerName: 'edge', ContainerPort: 8443 }],
    });
    // Autoscaling owns the task count: a deploy never resets it (aws-cdk#13130).
    expect(svc.Properties!.DesiredCount).toBeUndefined();
    // Created only once its target group is attached to the listener.
    const [listenerId] = onlyResource(edge, 'AWS::ElasticLoadBalancingV2::Listener');
    expect(asArray(svc.DependsOn)).toContain(listenerId);
    const subnets = svc.Properties!.NetworkConfiguration.AwsvpcConfiguration.Subnets.map((r: { Ref: string }) => r.Ref);
    for (const sn of subnets)
      expect(edge.Resources[sn].Properties!.Tags).toEqual(
        expect.arrayContaining([{ Key: 'aws-cdk:subnet-type', Value: 'Private' }]),
      );
  });

  test('autoscaling on CPU and on active connections per task', () => {
    const t = s.template(EDGE);
    t.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', {
      MinCapacity: 3,
      MaxCapacity: 12,
      ScalableDimension: 'ecs:service:DesiredCount',
    });
    t.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      PolicyType: 'TargetTrackingScaling',
      TargetTrackingScalingPolicyConfiguration: {
        PredefinedMetricSpecification: { PredefinedMetricType: 'ECSServiceAverageCPUUtilization' },
        TargetValue: 60,
      },
    });
    t.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      PolicyType: 'TargetTrackingScaling',
      TargetTrackingScalingPolicyConfiguration: {
        TargetValue: 5000,
        CustomizedMetricSpecification: {
          Metrics: Match.arrayWith([
            Match.objectLike({
              Id: 'flows',
              MetricStat: Match.objectLike({
                Metric: Match.objectLike({ Namespace: 'AWS/NetworkELB', MetricName: 'ActiveFlowCount_TCP' }),
              }),
            }),
            Match.objectLike({
              Id: 'tasks',
              MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: 'HealthyHostCount' }) }),
            }),
            Match.objectLike({ Id: 'perTask', Expression: 'flows / tasks', ReturnData: true }),
          ]),
        },
      },
    });
    t.resourceCountIs('AWS::ApplicationAutoScaling::ScalingPolicy', 2);
    // `keyless fleet scale` reads the budget split the edges were given, so it can refuse a maximum
    // that would break it (bin/cli/fleet.ts).
    const [, fleet] = Object.entries(t.findResources('AWS::SSM::Parameter')).find(([, r]) =>
      (r as { Properties: { Name?: string } }).Properties.Name?.endsWith('/fleet'),
    )!;
    const p = (fleet as { Properties: { Name: string; Value: string } }).Properties;
    expect(p.Name).toMatch(/^\/keyless\/[a-z0-9-]+\/fleet$/);
    expect(JSON.parse(p.Value)).toEqual({ kmsBudget: 240, maxTasks: 24, maximumPercent: 200 });
  });

  test('task role: invoke the key-service alias and read certificates, nothing else; no KMS anywhere in the edge', () => {
    const [, td] = onlyResource(edge, 'AWS::ECS::TaskDefinition');
    const taskRoleId = td.Properties!.TaskRoleArn['Fn::GetAtt'][0];
    const st = roleStatements(edge, taskRoleId);
    expect(allowedActions(st)).toEqual(['lambda:InvokeFunction', 'ssm:GetParametersByPath']);
    const invoke = st.find((x) => asArray(x.Action).includes('lambda:InvokeFunction'))!;
    expect(asArray(invoke.Resource).map((r) => render(r, PSEUDO))).toEqual([
      expect.stringMatching(/PublishOutputRefKeyServiceLiveAlias/),
    ]);
    for (const x of st.filter((y) => asArray<string>(y.Action).some((a) => a.startsWith('ssm:')))) {
      for (const r of asArray(x.Resource))
        expect(render(r, PSEUDO)).toMatch(
          /^arn:aws:ssm:xx-test-1:111111111111:parameter\/keyless\/prod\/certs(\/\*)?$/,
        );
    }
    expect(edge.Resources[taskRoleId].Properties!.ManagedPolicyArns).toBeUndefined();
    // No role or policy of the edge stack mentions KMS, except the alarm topic's own key policy.
    for (const [id] of ofType(edge, 'AWS::IAM::Role')) {
      expect(allowedActions(roleStatements(edge, id)).filter((a) => a.startsWith('kms:'))).toEqual([]);
    }
  });

  test('the Lambda endpoint in the edge VPC lets only the task role invoke the alias', () => {
    const [, ep] = ofType(edge, 'AWS::EC2::VPCEndpoint').find(
      ([, r]) => render(r.Properties!.ServiceName, PSEUDO) === 'com.amazonaws.xx-test-1.lambda',
    )!;
    expect(ep.Properties!.PrivateDnsEnabled).toBe(true);
    const [st] = ep.Properties!.PolicyDocument.Statement;
    const [, td] = onlyResource(edge, 'AWS::ECS::TaskDefinition');
    expect(st).toMatchObject({ Action: 'lambda:InvokeFunction', Principal: { AWS: td.Properties!.TaskRoleArn } });
  });

  test('certificates in SSM under the deployment prefix, advanced tier, in the runtime JSON shape', () => {
    const params = ofType(edge, 'AWS::SSM::Parameter').filter(([, p]) =>
      String(p.Properties!.Name).startsWith('/keyless/prod/certs/'),
    );
    expect(params.map(([, p]) => p.Properties!.Name).sort()).toEqual([
      '/keyless/prod/certs/legacy',
      '/keyless/prod/certs/www',
    ]);
    for (const [, p] of params) {
      expect(p.Properties).toMatchObject({ Tier: 'Advanced', Type: 'String' });
      const v = JSON.parse(p.Properties!.Value);
      expect(Object.keys(v).sort()).toEqual(['chainPem', 'hostnames', 'keyName']);
      expect(v.chainPem).toMatch(/^-----BEGIN CERTIFICATE-----/);
      expect(v.chainPem).not.toMatch(/PRIVATE KEY/);
    }
    expect(JSON.parse(params.find(([, p]) => p.Properties!.Name.endsWith('/www'))![1].Properties!.Value)).toMatchObject(
      { hostnames: ['www.example.com', 'example.com'], keyName: 'web-ecdsa' },
    );
  });

  test('NAT for the tasks (origin and other regions), flow logs for rejected traffic', () => {
    s.template(EDGE).resourceCountIs('AWS::EC2::NatGateway', 2);
    s.template(EDGE).hasResourceProperties('AWS::EC2::FlowLog', { TrafficType: 'REJECT' });
  });
});

describe('observability', () => {
  const dashboardBody = (): string => {
    const [, d] = onlyResource(edge, 'AWS::CloudWatch::Dashboard');
    return render(d.Properties!.DashboardBody, PSEUDO);
  };

  test('the dashboard shows every figure of the issue', () => {
    const body = dashboardBody();
    const must: Array<[string, RegExp]> = [
      ['handshakes full', /"Keyless\/Edge","HandshakesFull"/],
      ['handshakes resumed', /"Keyless\/Edge","HandshakesResumed"/],
      ['failures by alert', /SEARCH\('\{Keyless\/Edge,Deployment,Alert\} MetricName=\\"HandshakeFailures\\"/],
      ['key-operation latency p50', /"KeyOperationLatency".*"stat":"p50"/],
      ['key-operation latency p99', /"KeyOperationLatency".*"stat":"p99"/],
      ['key-service errors', /"AWS\/Lambda","Errors"/],
      ['key-service throttles', /"AWS\/Lambda","Throttles"/],
      // SEARCH schemas name the exact dimension sets the code emits (Powertools adds `service`), with the deployment.
      [
        'key-service typed errors',
        /SEARCH\('\{Keyless\/KeyService,service,Deployment,Code\} MetricName=\\"Errors\\" Deployment=\\"prod\\" service=\\"keyless-key-service\\"'/,
      ],
      [
        'KMS throttles',
        /SEARCH\('\{Keyless\/KeyService,service,Deployment,Operation\} MetricName=\\"KmsThrottles\\" Deployment=\\"prod\\" service=\\"keyless-key-service\\"'/,
      ],
      [
        'admission rejections by reason',
        /SEARCH\('\{Keyless\/Edge,Deployment,Reason\} MetricName=\\"AdmissionRejections\\" Deployment=\\"prod\\"'/,
      ],
      ['KMS quota usage', /SERVICE_QUOTA\(calls(Ecc|Rsa)\)/],
      ['active connections', /"AWS\/NetworkELB","ActiveFlowCount_TCP"/],
      ['task count', /"ECS\/ContainerInsights","RunningTaskCount"/],
    ];
    for (const [what, re] of must) expect([what, re.test(body)]).toEqual([what, true]);
  });

  test('alarms that need a human, wired to an encrypted topic with the on-call e-mail', () => {
    const alarmNames = (t: CfnTemplate) =>
      ofType(t, 'AWS::CloudWatch::Alarm').map(([id]) => id.replace(/[0-9A-F]{8}$/, ''));
    expect(alarmNames(ks).sort()).toEqual(
      [
        'AlarmsConcurrencyNearReserved',
        'AlarmsErrorRate',
        'AlarmsKmsQuotaEcc',
        'AlarmsKmsQuotaRsa',
        'AlarmsLatencyP99',
        'AlarmsThrottles',
      ].sort(),
    );
    expect(alarmNames(edge).sort()).toEqual([
      'MonitoringNoHealthyTargets',
      'MonitoringTasksBelowMinimum',
      'MonitoringUnhealthyTargets',
    ]);
    for (const t of [ks, edge]) {
      const [topicId, topic] = onlyResource(t, 'AWS::SNS::Topic');
      expect(topic.Properties!.KmsMasterKeyId).toBeDefined();
      for (const [, a] of ofType(t, 'AWS::CloudWatch::Alarm')) {
        expect(a.Properties!.AlarmActions).toEqual([{ Ref: topicId }]);
        expect(a.Properties!.AlarmDescription.length).toBeGreaterThan(40);
      }
      s.template(t === ks ? KS : EDGE).hasResourceProperties('AWS::SNS::Subscription', {
        Protocol: 'email',
        Endpoint: 'oncall@example.com',
      });
      s.template(t === ks ? KS : EDGE).hasResourceProperties('AWS::SNS::TopicPolicy', {
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      });
    }
    // The latency alarm fires before the function times out.
    s.template(KS).hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Duration',
      ExtendedStatistic: 'p99',
      Threshold: 3200,
    });
  });
});

describe('cdk-nag AwsSolutions', () => {
  test('no unacknowledged finding', () => {
    expect(unacknowledgedNagFindings(s.app)).toEqual([]);
  });

  test('every acknowledgement is on a resource, has a reason, and suppresses a real finding', () => {
    // Ours are the AwsSolutions ones (aws-cdk-lib acknowledges some of its own CloudFormation-Validate rules).
    const acks = acknowledgements(s.app).filter((a) => a.id.startsWith('AwsSolutions-'));
    expect(acks.length).toBeGreaterThan(0);
    const used = usedAcknowledgements(s.app);
    for (const a of acks) {
      expect(a.path.split('/').length).toBeGreaterThan(1); // never app- or stack-wide
      expect(a.reason.length).toBeGreaterThanOrEqual(40);
      expect([a.path, a.id, used.has(`${a.path}|${a.id}`)]).toEqual([a.path, a.id, true]);
    }
  });
});

describe('cfn-lint', () => {
  test('the synthesized templates pass', () => {
    const res = realCfnLintFindings(s, [KS, EDGE]);
    if ('skipped' in res) {
      console.warn(`cfn-lint skipped: ${res.skipped}`);
      return;
    }
    expect(res.findings).toEqual([]);
  });
});

describe('tags', () => {
  test('every stack carries the deployment and configured tags', () => {
    s.template(EDGE).hasResourceProperties('AWS::ECS::Cluster', {
      Tags: Match.arrayWith([
        { Key: 'cost-center', Value: 'tls' },
        { Key: 'keyless:deployment', Value: 'prod' },
      ]),
    });
    const [, fn] = fnEntry();
    expect(fn.Properties!.Tags).toEqual(expect.arrayContaining([{ Key: 'keyless:deployment', Value: 'prod' }]));
  });
});
