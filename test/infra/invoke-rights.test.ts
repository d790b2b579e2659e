/**
 * Invoke rights are signing rights (and session decryption within the ticket retention): who may
 * invoke the key service, decided by a real IAM policy evaluator (@cloud-copilot/iam-simulate) over
 * the synthesized policies.
 *   - Across accounts: the edge task role may invoke; any other principal of the edge account may not,
 *     not even an administrator; no principal the key-service stacks create is granted invoke.
 *   - In one account: the SCP of docs/policies/key-service-invoke-scp.json denies invoke (and changes
 *     to the function and the edge role) to every principal but the edge role (and CloudFormation).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import {
  asArray,
  resourcesOfType,
  roleStatements,
  ROOT,
  type CfnTemplate,
  type Statement,
  type Synth,
  synthesize,
} from './helpers';

const KEY_ACCOUNT = '222222222222';
const EDGE_ACCOUNT = '111111111111';
const REGIONS = ['eu-west-1', 'eu-central-1'];
const EDGE_ROLE = `arn:aws:iam::${EDGE_ACCOUNT}:role/keyless-prod-edge-task`;
const aliasArn = (region: string, account: string) =>
  `arn:aws:lambda:${region}:${account}:function:keyless-prod-key-service:live`;
const ADMIN_POLICY = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] };
const LAMBDA_POWER_USER = {
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: 'lambda:*', Resource: '*' }],
};

/** Resolve the intrinsics of a statement for one stack: partition, account, region, and refs through `refs`. */
function concrete(v: unknown, env: { account: string; region: string }, refs: Record<string, string> = {}): unknown {
  if (Array.isArray(v)) return v.map((x) => concrete(x, env, refs));
  if (typeof v !== 'object' || v === null) return v;
  const o = v as Record<string, unknown>;
  if (o['Fn::Join']) {
    const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
    return parts.map((p) => concrete(p, env, refs)).join(sep);
  }
  if (typeof o.Ref === 'string') {
    const pseudo: Record<string, string> = {
      'AWS::Partition': 'aws',
      'AWS::AccountId': env.account,
      'AWS::Region': env.region,
      'AWS::URLSuffix': 'amazonaws.com',
    };
    const value = pseudo[o.Ref] ?? refs[o.Ref];
    if (value === undefined) throw new Error(`no value for Ref ${o.Ref}`);
    return value;
  }
  if (o['Fn::GetStackOutput'] !== undefined) {
    const { OutputName } = o['Fn::GetStackOutput'] as { OutputName: string };
    if (refs[`output:${OutputName}`] === undefined) throw new Error(`no value for output ${OutputName}`);
    return refs[`output:${OutputName}`];
  }
  return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, concrete(x, env, refs)]));
}

const policy = (statements: Statement[]) => ({ Version: '2012-10-17', Statement: statements });

/** The function's resource policy as Lambda writes it from each AWS::Lambda::Permission of the stack. */
function lambdaResourcePolicy(t: CfnTemplate, env: { account: string; region: string }, refs: Record<string, string>) {
  return policy(
    resourcesOfType(t, 'AWS::Lambda::Permission').map(([, p]) => {
      const principal = concrete(p.Properties!.Principal, env, refs) as string;
      return {
        Effect: 'Allow',
        Principal: principal.endsWith('.amazonaws.com') ? { Service: principal } : { AWS: principal },
        Action: p.Properties!.Action,
        Resource: concrete(p.Properties!.FunctionName, env, refs),
      };
    }),
  );
}

async function decide(
  sim: Omit<Simulation, 'serviceControlPolicies' | 'resourceControlPolicies'> &
    Partial<Pick<Simulation, 'serviceControlPolicies'>>,
): Promise<string> {
  const res = await runSimulation({ serviceControlPolicies: [], resourceControlPolicies: [], ...sim }, {});
  if (res.resultType === 'error') throw new Error(`simulation rejected: ${JSON.stringify(res.errors)}`);
  return res.overallResult;
}

const invoke = (principal: string, resource: string, account: string): Simulation['request'] => ({
  principal,
  action: 'lambda:InvokeFunction',
  resource: { resource, accountId: account },
  // What AWS sets for every signed request (the evaluator takes request context as given).
  contextVariables: { 'aws:PrincipalArn': principal, 'aws:PrincipalAccount': principal.split(':')[4] },
});

describe('cross-account: the key service in its own account, invoked only by the edge task role', () => {
  let s: Synth;
  let edgeIdentity: ReturnType<typeof policy>;
  const resourcePolicies: Record<string, ReturnType<typeof policy>> = {};

  beforeAll(() => {
    s = synthesize({
      deployment: 'prod',
      regions: REGIONS,
      availabilityZones: Object.fromEntries(REGIONS.map((r) => [r, [`${r}a`, `${r}b`]])),
      keyServiceAccount: KEY_ACCOUNT,
      edgeAccount: EDGE_ACCOUNT,
      operators: [`arn:aws:iam::${KEY_ACCOUNT}:role/KeylessOperator`],
      keys: [{ name: 'web', custody: 'kms', keySpec: 'ECC_NIST_P256' }],
      edge: { origin: 'http://10.80.5.10:8080', certificatesReady: true },
    });
    const edge = s.json('Keyless-Prod-Edge');
    const [roleId] = resourcesOfType(edge, 'AWS::IAM::Role').find(
      ([, r]) => r.Properties!.RoleName === 'keyless-prod-edge-task',
    )!;
    edgeIdentity = policy(
      roleStatements(edge, roleId).map(
        (st) => concrete(st, { account: EDGE_ACCOUNT, region: REGIONS[0] }) as Statement,
      ),
    );
    for (const region of REGIONS) {
      const t = s.json(`Keyless-Prod-KeyService-${region}`);
      const [aliasId] = resourcesOfType(t, 'AWS::Lambda::Alias')[0];
      resourcePolicies[region] = lambdaResourcePolicy(
        t,
        { account: KEY_ACCOUNT, region },
        { [aliasId]: aliasArn(region, KEY_ACCOUNT) },
      );
    }
  });
  afterAll(() => s?.cleanup());

  test('stacks take separate environments: key services in the key account, the edge in the edge account', () => {
    const envOf = (name: string) => s.assembly.getStackByName(name).environment;
    for (const r of REGIONS)
      expect(envOf(`Keyless-Prod-KeyService-${r}`)).toMatchObject({ account: KEY_ACCOUNT, region: r });
    expect(envOf('Keyless-Prod-Edge')).toMatchObject({ account: EDGE_ACCOUNT, region: REGIONS[0] });
    // No reference crosses the account boundary: each side writes the other's ARN.
    expect(
      s.assembly
        .getStackByName('Keyless-Prod-Edge')
        .dependencies.map((d) => d.id)
        .filter((id) => id.startsWith('Keyless-Prod-KeyService')),
    ).toEqual([]);
  });

  test("the function's resource policy names exactly the edge task role, in every region", () => {
    for (const r of REGIONS) {
      expect(resourcePolicies[r].Statement).toEqual([
        {
          Effect: 'Allow',
          Principal: { AWS: EDGE_ROLE },
          Action: 'lambda:InvokeFunction',
          Resource: aliasArn(r, KEY_ACCOUNT),
        },
      ]);
    }
  });

  test.each(REGIONS)('the edge task role may invoke the key service in %s', async (region) => {
    await expect(
      decide({
        request: invoke(EDGE_ROLE, aliasArn(region, KEY_ACCOUNT), KEY_ACCOUNT),
        identityPolicies: [{ name: 'edge', policy: edgeIdentity }],
        resourcePolicy: resourcePolicies[region],
      }),
    ).resolves.toBe('Allowed');
  });

  test('another principal of the edge account may not, even with AdministratorAccess or lambda:*', async () => {
    for (const [name, p] of [
      ['admin', ADMIN_POLICY],
      ['lambda-power-user', LAMBDA_POWER_USER],
    ] as const) {
      const other = `arn:aws:iam::${EDGE_ACCOUNT}:role/${name}`;
      await expect(
        decide({
          request: invoke(other, aliasArn(REGIONS[0], KEY_ACCOUNT), KEY_ACCOUNT),
          identityPolicies: [{ name, policy: p }],
          resourcePolicy: resourcePolicies[REGIONS[0]],
        }),
      ).resolves.toBe('ImplicitlyDenied');
    }
  });

  test('the edge account root is not trusted either (the principal is the role, not the account)', async () => {
    const other = `arn:aws:iam::${EDGE_ACCOUNT}:user/someone`;
    await expect(
      decide({
        request: invoke(other, aliasArn(REGIONS[0], KEY_ACCOUNT), KEY_ACCOUNT),
        identityPolicies: [{ name: 'admin', policy: ADMIN_POLICY }],
        resourcePolicy: resourcePolicies[REGIONS[0]],
      }),
    ).resolves.toBe('ImplicitlyDenied');
  });

  test('nobody in the key account is granted invoke: no role or policy of the key-service stacks allows it', () => {
    for (const r of REGIONS) {
      const t = s.json(`Keyless-Prod-KeyService-${r}`);
      for (const [id] of resourcesOfType(t, 'AWS::IAM::Role')) {
        const actions = roleStatements(t, id).flatMap((st) => asArray<string>(st.Action));
        expect([id, actions.filter((a) => /^lambda:(Invoke|\*)|^\*$/.test(a))]).toEqual([id, []]);
      }
      // The resource policy grants nobody of the key account.
      expect(JSON.stringify(resourcePolicies[r])).not.toContain(KEY_ACCOUNT + ':role');
    }
  });
});

describe('one account: the SCP that leaves invoke to the edge role alone', () => {
  const ACCOUNT = '333333333333';
  const REGION = 'eu-west-1';
  const CFN_EXEC = `cdk-hnb659fds-cfn-exec-role-${ACCOUNT}-*`;
  const scpFile = path.join(ROOT, 'docs/policies/key-service-invoke-scp.json');
  const scp = JSON.parse(
    fs
      .readFileSync(scpFile, 'utf8')
      .replace(/\$\{Partition\}/g, 'aws')
      .replace(/\$\{Account\}/g, ACCOUNT)
      .replace(/\$\{Deployment\}/g, 'prod')
      .replace(/\$\{CfnExecRole\}/g, CFN_EXEC),
  );
  const scps: Simulation['serviceControlPolicies'] = [
    { orgIdentifier: 'r-root', policies: [{ name: 'FullAWSAccess', policy: ADMIN_POLICY }] },
    {
      orgIdentifier: ACCOUNT,
      policies: [
        { name: 'FullAWSAccess', policy: ADMIN_POLICY },
        { name: 'KeylessKeyServiceInvoke', policy: scp },
      ],
    },
  ];
  const alias = aliasArn(REGION, ACCOUNT);
  const edgeRole = `arn:aws:iam::${ACCOUNT}:role/keyless-prod-edge-task`;
  const admin = `arn:aws:iam::${ACCOUNT}:role/Admin`;
  let s: Synth;
  let edgeIdentity: ReturnType<typeof policy>;

  beforeAll(() => {
    s = synthesize({
      deployment: 'prod',
      keys: [{ name: 'web', custody: 'kms', keySpec: 'ECC_NIST_P256' }],
      edge: { origin: 'http://10.80.5.10:8080', certificatesReady: true },
      operators: [`arn:aws:iam::${ACCOUNT}:role/KeylessOperator`],
    });
    const edge = s.json('Keyless-Prod-Edge');
    const ks = s.json('Keyless-Prod-KeyService');
    const [roleId] = resourcesOfType(edge, 'AWS::IAM::Role').find(
      ([, r]) => r.Properties!.RoleName === 'keyless-prod-edge-task',
    )!;
    // The edge's invoke grant reads the alias ARN from the key-service stack's outputs.
    const [aliasId] = resourcesOfType(ks, 'AWS::Lambda::Alias')[0];
    const refs: Record<string, string> = {};
    for (const [name, out] of Object.entries((ks.Outputs ?? {}) as Record<string, { Value: { Ref?: string } }>)) {
      if (out.Value.Ref === aliasId) refs[`output:${name}`] = alias;
    }
    edgeIdentity = policy(
      roleStatements(edge, roleId).map((st) => concrete(st, { account: ACCOUNT, region: REGION }, refs) as Statement),
    );
  });
  afterAll(() => s?.cleanup());

  test('without it, any principal with a broad policy in the account may invoke: invoke rights are signing rights', async () => {
    await expect(
      decide({
        request: invoke(admin, alias, ACCOUNT),
        identityPolicies: [{ name: 'admin', policy: LAMBDA_POWER_USER }],
      }),
    ).resolves.toBe('Allowed');
  });

  test('with it, the edge task role still invokes with its own policy', async () => {
    await expect(
      decide({
        request: invoke(edgeRole, alias, ACCOUNT),
        identityPolicies: [{ name: 'edge', policy: edgeIdentity }],
        serviceControlPolicies: scps,
      }),
    ).resolves.toBe('Allowed');
  });

  test('with it, an administrator, a lambda:* role and the CloudFormation role may not invoke', async () => {
    for (const who of [
      admin,
      `arn:aws:iam::${ACCOUNT}:role/ci-deployer`,
      `arn:aws:iam::${ACCOUNT}:role/cdk-hnb659fds-cfn-exec-role-${ACCOUNT}-${REGION}`,
    ]) {
      await expect(
        decide({
          request: invoke(who, alias, ACCOUNT),
          identityPolicies: [{ name: 'admin', policy: ADMIN_POLICY }],
          serviceControlPolicies: scps,
        }),
      ).resolves.toBe('ExplicitlyDenied');
    }
  });

  test("with it, only CloudFormation may change the function's code, permissions or alias", async () => {
    const fn = `arn:aws:lambda:${REGION}:${ACCOUNT}:function:keyless-prod-key-service`;
    const change = (principal: string, action: string): Simulation['request'] => ({
      ...invoke(principal, fn, ACCOUNT),
      action,
    });
    for (const action of ['lambda:UpdateFunctionCode', 'lambda:AddPermission', 'lambda:UpdateFunctionConfiguration']) {
      await expect(
        decide({
          request: change(admin, action),
          identityPolicies: [{ name: 'admin', policy: ADMIN_POLICY }],
          serviceControlPolicies: scps,
        }),
      ).resolves.toBe('ExplicitlyDenied');
      const cfn = `arn:aws:iam::${ACCOUNT}:role/cdk-hnb659fds-cfn-exec-role-${ACCOUNT}-${REGION}`;
      await expect(
        decide({
          request: change(cfn, action),
          identityPolicies: [{ name: 'cfn', policy: ADMIN_POLICY }],
          serviceControlPolicies: scps,
        }),
      ).resolves.toBe('Allowed');
    }
  });

  test('with it, nobody but CloudFormation may pass the edge role to a task or widen it', async () => {
    const role = { resource: edgeRole, accountId: ACCOUNT };
    await expect(
      decide({
        request: {
          ...invoke(admin, edgeRole, ACCOUNT),
          action: 'iam:PassRole',
          resource: role,
          contextVariables: {
            ...invoke(admin, edgeRole, ACCOUNT).contextVariables,
            'iam:PassedToService': 'ecs-tasks.amazonaws.com',
          },
        },
        identityPolicies: [{ name: 'admin', policy: ADMIN_POLICY }],
        serviceControlPolicies: scps,
      }),
    ).resolves.toBe('ExplicitlyDenied');
    await expect(
      decide({
        request: { ...invoke(admin, edgeRole, ACCOUNT), action: 'iam:UpdateAssumeRolePolicy', resource: role },
        identityPolicies: [{ name: 'admin', policy: ADMIN_POLICY }],
        serviceControlPolicies: scps,
      }),
    ).resolves.toBe('ExplicitlyDenied');
  });

  test('the SCP names the role and the function the stacks actually create', () => {
    const edge = s.json('Keyless-Prod-Edge');
    const ks = s.json('Keyless-Prod-KeyService');
    expect(
      resourcesOfType(edge, 'AWS::IAM::Role').some(([, r]) => r.Properties!.RoleName === 'keyless-prod-edge-task'),
    ).toBe(true);
    expect(
      resourcesOfType(ks, 'AWS::Lambda::Function').some(
        ([, r]) => r.Properties!.FunctionName === 'keyless-prod-key-service',
      ),
    ).toBe(true);
  });
});
