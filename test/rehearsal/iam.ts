/**
 * IAM against the observed calls: every call the edge, the key service and the operator made is
 * evaluated with a real IAM policy evaluator (@cloud-copilot/iam-simulate) against the synthesized
 * policies for that principal — its identity policies, the KMS key policy, the Lambda resource
 * policy and the VPC endpoint policy it passed through, with the request's condition keys. A call AWS
 * would deny is a finding; so is a permission a role is granted but never used, unless listed in
 * UNEXERCISED_GRANTS with the reason the rehearsal cannot exercise it.
 */
import { runSimulation } from '@cloud-copilot/iam-simulate';

import type { RecordedCall } from '../../local/call-log';
import type { DeployedStack } from './world';
import { ACCOUNT, OPERATOR_ROLE_ARN } from './world';

type Policy = { Version?: string; Statement: Statement[] | Statement };
type Statement = {
  Sid?: string;
  Effect: string;
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: unknown;
  Principal?: unknown;
  Condition?: unknown;
};

/** Grants the walk cannot exercise, each with its reason (an action pattern per principal). */
export const UNEXERCISED_GRANTS: {
  principal: string;
  action: RegExp;
  reason: string;
  failoverRegionsOnly?: boolean;
}[] = [
  {
    principal: 'key-service-role',
    action: /^logs:/,
    reason: "the Lambda runtime writes the function's logs; locally stdout is collected instead",
  },
  {
    principal: 'key-service-role',
    action: /^ec2:/,
    reason: "Lambda itself attaches the function's network interfaces in the VPC",
  },
  {
    principal: 'key-service-role',
    action: /^kms:Decrypt$/,
    reason: 'sealed custody: unsealing runs once per container only when a sealed key is configured and provisioned',
  },
  {
    principal: 'edge-task-role',
    action: /^ssmmessages:/,
    reason: 'ECS Exec sessions, opened by an operator, not by the edge',
  },
  {
    principal: 'key-service-role',
    action: /^(ssm:(GetParameter|PutParameter|DeleteParameter)|kms:Encrypt)$/,
    reason:
      "a failover region's ticket-key store: edges fetch ticket keys from the first key service that answers, so the failover region creates an epoch's key only when the primary is down at an epoch change",
    failoverRegionsOnly: true,
  },
];

export interface PrincipalPolicies {
  principal: string;
  arn: string;
  identity: { name: string; policy: Policy }[];
}

export interface IamFinding {
  check: 'iam-denied' | 'iam-unused';
  message: string;
}

/** The roles the rehearsal's processes stand for, and their identity policies, from the templates. */
export function principalPolicies(stacks: readonly DeployedStack[]): Map<string, PrincipalPolicies[]> {
  const out = new Map<string, PrincipalPolicies[]>();
  const add = (principal: string, stack: DeployedStack, roleId: string): void => {
    const r = stack.resolver;
    const role = stack.template.Resources[roleId];
    const arn = r.str({ 'Fn::GetAtt': [roleId, 'Arn'] });
    const identity: PrincipalPolicies['identity'] = [];
    for (const p of (role.Properties?.Policies as { PolicyName: string; PolicyDocument: unknown }[] | undefined) ??
      []) {
      identity.push({ name: `${stack.name}/${roleId}/${p.PolicyName}`, policy: r.resolve(p.PolicyDocument) as Policy });
    }
    for (const [id, res] of Object.entries(stack.template.Resources)) {
      if (res.Type !== 'AWS::IAM::Policy') continue;
      const roles = (res.Properties?.Roles as unknown[] | undefined) ?? [];
      if (!roles.some((x) => JSON.stringify(x) === JSON.stringify({ Ref: roleId }))) continue;
      identity.push({ name: `${stack.name}/${id}`, policy: r.resolve(res.Properties!.PolicyDocument) as Policy });
    }
    out.set(principal, [...(out.get(principal) ?? []), { principal, arn, identity }]);
  };
  for (const stack of stacks) {
    for (const [id, res] of Object.entries(stack.template.Resources)) {
      if (res.Type === 'AWS::ECS::TaskDefinition') {
        const roleId = (res.Properties?.TaskRoleArn as { 'Fn::GetAtt'?: string[] } | undefined)?.['Fn::GetAtt']?.[0];
        if (roleId) add('edge-task-role', stack, roleId);
      }
      if (
        res.Type === 'AWS::Lambda::Function' &&
        (res.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables
          ?.KEYLESS_KEYS !== undefined
      ) {
        const roleId = (res.Properties?.Role as { 'Fn::GetAtt'?: string[] } | undefined)?.['Fn::GetAtt']?.[0];
        if (roleId) add(`key-service-role@${stack.region}`, stack, roleId);
        void id;
      }
    }
  }
  return out;
}

/** The stacks of the edge fleet (they run the ECS service) and of the key services (the rest). */
function edgeStacks(stacks: readonly DeployedStack[]): DeployedStack[] {
  return stacks.filter((s) => Object.values(s.template.Resources).some((r) => r.Type === 'AWS::ECS::Service'));
}
function keyServiceStacks(stacks: readonly DeployedStack[]): DeployedStack[] {
  return stacks.filter((s) => !edgeStacks([s]).length);
}

/**
 * The evaluator does not match `kms:EncryptionContext:<key>` condition keys (it reports such a
 * condition unmet even when the request carries the value), so they are decided here, with the
 * request's encryption context, for the operators the templates use (StringEquals, StringLike): a
 * statement whose encryption-context condition holds keeps its other conditions for the evaluator;
 * one whose condition fails is dropped (an Allow that cannot apply, or a Deny that does not).
 */
function withEncryptionContextDecided(policy: Policy, context: Record<string, string | string[]>): Policy {
  const out: Statement[] = [];
  for (const st of statements(policy)) {
    const cond = st.Condition as Record<string, Record<string, string | string[]>> | undefined;
    if (!cond) {
      out.push(st);
      continue;
    }
    let holds = true;
    const rest: Record<string, Record<string, string | string[]>> = {};
    for (const [op, keys] of Object.entries(cond)) {
      for (const [key, want] of Object.entries(keys)) {
        if (!/^kms:EncryptionContext:/i.test(key) || !/^String(Equals|Like)$/.test(op)) {
          (rest[op] ??= {})[key] = want;
          continue;
        }
        const have = context[Object.keys(context).find((k) => k.toLowerCase() === key.toLowerCase()) ?? ''];
        const wants = [want].flat();
        const like = (v: string, pattern: string): boolean =>
          new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`).test(v);
        const ok = typeof have === 'string' && wants.some((w) => (op === 'StringEquals' ? have === w : like(have, w)));
        if (!ok) holds = false;
      }
    }
    if (!holds) continue;
    out.push({ ...st, ...(Object.keys(rest).length ? { Condition: rest } : { Condition: undefined }) });
  }
  return {
    ...policy,
    Statement: out.map((st) =>
      st.Condition === undefined
        ? (Object.fromEntries(Object.entries(st).filter(([k]) => k !== 'Condition')) as Statement)
        : st,
    ),
  };
}

function statements(p: Policy): Statement[] {
  return Array.isArray(p.Statement) ? p.Statement : [p.Statement];
}

function endpointPolicies(
  stacks: readonly DeployedStack[],
  region: string,
  service: string,
): { name: string; policy: Policy; id: string; vpc: string }[] {
  const out: { name: string; policy: Policy; id: string; vpc: string }[] = [];
  for (const s of stacks) {
    if (s.region !== region) continue;
    for (const [id, res] of Object.entries(s.template.Resources)) {
      if (res.Type !== 'AWS::EC2::VPCEndpoint') continue;
      const serviceName = s.resolver.str(res.Properties!.ServiceName);
      if (!serviceName.endsWith(`.${service}`)) continue;
      const policy = res.Properties!.PolicyDocument
        ? principalsAsConditions(s.resolver.resolve(res.Properties!.PolicyDocument) as Policy)
        : { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: '*', Action: '*', Resource: '*' }] };
      out.push({
        name: `${s.name}/${id}`,
        policy,
        id: s.resolver.str({ Ref: id }),
        vpc: s.resolver.str(res.Properties!.VpcId),
      });
    }
  }
  return out;
}

/**
 * An endpoint policy naming IAM principals, in the form the evaluator accepts (`Principal: "*"`):
 * the same principals as an `ArnEquals aws:PrincipalArn` condition, which is what an endpoint
 * compares for a role session of the same account.
 */
function principalsAsConditions(policy: Policy): Policy {
  return {
    ...policy,
    Statement: statements(policy).map((st) => {
      const p = st.Principal as { AWS?: string | string[] } | string | undefined;
      if (p === undefined || p === '*' || (typeof p === 'object' && p.AWS === '*')) return st;
      const arns = typeof p === 'object' && p.AWS !== undefined ? [p.AWS].flat() : [];
      const cond = { ...((st.Condition as Record<string, Record<string, unknown>> | undefined) ?? {}) };
      cond.ArnEquals = { ...(cond.ArnEquals ?? {}), 'aws:PrincipalArn': arns };
      return { ...st, Principal: '*', Condition: cond };
    }),
  };
}

/** KMS actions that take no resource (IAM evaluates them against "*"). */
const NO_RESOURCE = new Set([
  'kms:CreateKey',
  'kms:ListKeys',
  'kms:ListAliases',
  'kms:GenerateRandom',
  'ssm:DescribeParameters',
]);

export interface IamInputs {
  stacks: readonly DeployedStack[];
  calls: readonly RecordedCall[];
  /** Key policy of each key (by key ARN) as the local KMS holds it. */
  keyPolicies: Map<string, Policy>;
  /** The edge's region (its tasks' VPC holds the Lambda endpoint). */
  edgeRegion: string;
}

export async function checkIam(inputs: IamInputs): Promise<{ findings: IamFinding[]; evaluated: number }> {
  const findings: IamFinding[] = [];
  const principals = principalPolicies(inputs.stacks);
  const used = new Map<string, Set<string>>();
  const denied = new Map<string, number>();
  let evaluated = 0;
  for (const call of inputs.calls) {
    // A call on something that does not exist never reaches authorization in a way worth checking.
    if (
      call.principal === 'cloudformation' ||
      call.error === 'UnknownOperationException' ||
      call.error === 'NotFoundException' ||
      call.error === 'ResourceNotFoundException'
    )
      continue;
    const action = `${call.service}:${call.operation}`;
    const region = call.signingRegion ?? call.region;
    let pp: PrincipalPolicies | undefined;
    let endpoint: { name: string; policy: Policy; id: string; vpc: string } | undefined;
    if (call.principal === 'operator') {
      // The operator's own IAM policy is not part of the app; assume it allows everything, so the
      // app's resource policies (key policies) alone decide.
      pp = {
        principal: 'operator',
        arn: OPERATOR_ROLE_ARN,
        identity: [
          {
            name: 'operator (assumed: everything)',
            policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] },
          },
        ],
      };
    } else if (call.principal === 'key-service-role') {
      pp = principals.get(`key-service-role@${region}`)?.[0];
      endpoint =
        call.service === 'kms' ? endpointPolicies(keyServiceStacks(inputs.stacks), region, 'kms')[0] : undefined;
    } else if (call.principal === 'edge-task-role') {
      pp = principals.get('edge-task-role')?.[0];
      const targetRegion = call.service === 'lambda' ? (call.resources[0]?.split(':')[3] ?? region) : region;
      // Same-region calls from the edge's VPC go through its interface endpoint for the service, if any.
      // Only the edge VPC's own endpoints: the key service's VPC has an SSM endpoint of its own.
      endpoint =
        targetRegion === inputs.edgeRegion
          ? endpointPolicies(edgeStacks(inputs.stacks), inputs.edgeRegion, call.service)[0]
          : undefined;
    }
    if (!pp) {
      findings.push({
        check: 'iam-denied',
        message: `${call.principal} called ${action} but the templates define no such principal`,
      });
      continue;
    }
    const resources = NO_RESOURCE.has(action) || call.resources.length === 0 ? ['*'] : call.resources;
    for (const resource of resources) {
      const context: Record<string, string | string[]> = {
        'aws:PrincipalArn': pp.arn,
        'aws:PrincipalAccount': ACCOUNT,
        'aws:RequestedRegion': region,
        'aws:SecureTransport': 'true',
        ...(call.context ?? {}),
      };
      if (endpoint) {
        context['aws:SourceVpce'] = endpoint.id;
        context['aws:SourceVpc'] = endpoint.vpc;
      }
      if (call.service === 'kms') {
        context['kms:CallerAccount'] = ACCOUNT;
        for (const k of [
          'SigningAlgorithm',
          'MessageType',
          'MacAlgorithm',
          'KeySpec',
          'KeyUsage',
          'EncryptionAlgorithm',
          'KeyOrigin',
        ] as const) {
          if (typeof call.request[k] === 'string') context[`kms:${k}`] = call.request[k] as string;
        }
        if (typeof call.request.MultiRegion === 'boolean')
          context['kms:MultiRegion'] = String(call.request.MultiRegion);
        const ec = call.request.EncryptionContext as Record<string, string> | undefined;
        for (const [k, v] of Object.entries(ec ?? {})) context[`kms:EncryptionContext:${k}`] = v;
        if (typeof call.request.KeyId === 'string' && call.request.KeyId.startsWith('alias/'))
          context['kms:RequestAlias'] = call.request.KeyId;
        if (typeof call.request.ReplicaRegion === 'string') context['kms:ReplicaRegion'] = call.request.ReplicaRegion;
      }
      const resourcePolicy = call.service === 'kms' && resource !== '*' ? inputs.keyPolicies.get(resource) : undefined;
      evaluated++;
      const ec = (p: Policy): Policy => withEncryptionContextDecided(p, context);
      const result = await runSimulation(
        {
          request: { principal: pp.arn, action, resource: { resource, accountId: ACCOUNT }, contextVariables: context },
          identityPolicies: pp.identity.map((i) => ({ name: i.name, policy: ec(i.policy) })),
          serviceControlPolicies: [],
          resourceControlPolicies: [],
          resourcePolicy:
            call.service === 'kms' && resource !== '*' ? ec(resourcePolicy ?? defaultKeyPolicy()) : undefined,
          vpcEndpointPolicies: endpoint ? [{ name: endpoint.name, policy: ec(endpoint.policy) }] : undefined,
        },
        {},
      );
      const outcome =
        result.resultType === 'error' ? `error: ${JSON.stringify(result.errors).slice(0, 300)}` : result.overallResult;
      if (outcome !== 'Allowed') {
        const what = `AWS would deny ${call.principal} ${action} on ${resource}${endpoint ? ` via ${endpoint.id}` : ''}${conditionSummary(call)}: ${outcome}${call.error ? ` (it failed locally too: ${call.error})` : ''}`;
        denied.set(what, (denied.get(what) ?? 0) + 1);
      } else {
        const key = call.principal === 'key-service-role' ? `key-service-role@${region}` : call.principal;
        if (!used.has(key)) used.set(key, new Set());
        used.get(key)!.add(action.toLowerCase());
      }
    }
  }
  for (const [what, n] of denied)
    findings.push({ check: 'iam-denied', message: n > 1 ? `${what} (${n} calls)` : what });
  // Granted but never used.
  for (const [key, list] of principals) {
    const base = key.replace(/@.*$/, '');
    const usedHere = used.get(key) ?? new Set<string>();
    for (const pp of list) {
      for (const { name, policy } of pp.identity) {
        for (const st of statements(policy)) {
          if (st.Effect !== 'Allow') continue;
          for (const action of [st.Action ?? []].flat()) {
            const re = new RegExp(`^${action.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i');
            if ([...usedHere].some((u) => re.test(u))) continue;
            const failover = key.includes('@') && key.split('@')[1] !== inputs.edgeRegion;
            if (
              UNEXERCISED_GRANTS.some(
                (g) => g.principal === base && g.action.test(action) && (!g.failoverRegionsOnly || failover),
              )
            )
              continue;
            findings.push({
              check: 'iam-unused',
              message: `${key} is granted ${action} (${name}${st.Sid ? `, statement ${st.Sid}` : ''}) but never used it`,
            });
          }
        }
      }
    }
  }
  return { findings, evaluated };
}

/** The request facts a key policy usually conditions on, for the message. */
function conditionSummary(call: RecordedCall): string {
  const facts = ['SigningAlgorithm', 'MessageType', 'MacAlgorithm']
    .filter((k) => typeof call.request[k] === 'string')
    .map((k) => `${k}=${String(call.request[k])}`);
  return facts.length > 0 ? ` (${facts.join(', ')})` : '';
}

/** KMS's default key policy: the account may use the key as its IAM policies allow. */
export function defaultKeyPolicy(): Policy {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'Enable IAM User Permissions',
        Effect: 'Allow',
        Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` },
        Action: 'kms:*',
        Resource: '*',
      },
    ],
  };
}
