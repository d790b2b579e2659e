/**
 * Assemble the stacks of one deployment:
 *   - one key-service stack per region (the first holds the multi-Region primary keys, the others
 *     replicas of them — same key material, so one certificate serves every region),
 *   - one edge stack in the first region, given the key services in failover order,
 *   - the invoke grant between them: only the edge task role may invoke the key services.
 * Without `regions`, both stacks are environment-agnostic and go to the CLI's default region. With
 * `keyServiceAccount`, the key-service stacks go to that account and the edge to `edgeAccount`; the
 * function and the edge task role have fixed names, so each side writes the other's ARN without a
 * cross-stack reference.
 */
import { Aws, Tags, type App } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { KeylessConfig } from './config';
import { EdgeStack, type EdgeKeyService } from './edge-stack';
import { KeyServiceStack } from './key-service-stack';
import { DEPLOYMENT_TAG, edgeTaskRoleName, KEY_SERVICE_ALIAS, keyServiceFunctionName, stackId } from './naming';

export interface KeylessStacks {
  readonly keyServices: readonly KeyServiceStack[];
  readonly edge: EdgeStack;
}

export function createKeylessStacks(app: App, config: KeylessConfig): KeylessStacks {
  const regions = config.regions;
  const multiRegion = regions !== undefined && regions.length > 1;
  const crossAccount = config.keyServiceAccount !== undefined;
  const functionName = keyServiceFunctionName(config.deployment);
  const keyServices: KeyServiceStack[] = [];

  const targets: ReadonlyArray<string | undefined> = regions ?? [undefined];
  for (const region of targets) {
    const primary = multiRegion && keyServices.length > 0 ? keyServices[0] : undefined;
    const stack = new KeyServiceStack(app, stackId(config.deployment, 'KeyService', region), {
      deployment: config.deployment,
      keys: config.keys,
      keyService: config.keyService,
      alarms: config.alarms,
      operators: config.operators,
      availabilityZones: region ? config.availabilityZones[region] : undefined,
      multiRegion,
      primary,
      functionName,
      env: region ? { region, account: config.keyServiceAccount } : undefined,
      crossRegionReferences: multiRegion,
      description: `keyless TLS (${config.deployment}): key service${region ? ` in ${region}` : ''} — isolated VPC, KMS endpoint, Lambda, KMS keys`,
    });
    keyServices.push(stack);
  }

  const edgeRegion = regions?.[0];
  const view = (ks: KeyServiceStack, i: number): EdgeKeyService => {
    const region = regions?.[i];
    return {
      // Across accounts the ARN is written out (no cross-account references in CloudFormation).
      aliasArn: crossAccount
        ? `arn:${Aws.PARTITION}:lambda:${region}:${config.keyServiceAccount}:function:${functionName}:${KEY_SERVICE_ALIAS}`
        : ks.keyService.alias.functionArn,
      functionName: crossAccount ? functionName : ks.keyService.fn.functionName,
      region,
      sameRegion: region === edgeRegion,
      keySpecs: ks.keys.signingKeys.map((k) => k.keySpec),
    };
  };
  const edge = new EdgeStack(app, stackId(config.deployment, 'Edge'), {
    deployment: config.deployment,
    edge: config.edge,
    certificates: config.certificates,
    alarms: config.alarms,
    availabilityZones: edgeRegion ? config.availabilityZones[edgeRegion] : undefined,
    keyServices: keyServices.map(view),
    // A fixed name in every mode: the key account's resource policy and the SCP (docs/deploy.md) name it.
    taskRoleName: edgeTaskRoleName(config.deployment),
    env: edgeRegion ? { region: edgeRegion, account: config.edgeAccount } : undefined,
    crossRegionReferences: multiRegion && !crossAccount,
    description: `keyless TLS (${config.deployment}): edge fleet — NLB TCP 443, ECS Fargate, autoscaling, dashboard`,
  });

  if (crossAccount) {
    // Each side states its half: the edge role's own permission, and the function's resource policy
    // naming that one role. Nobody in the key account is granted invoke.
    edge.fleet.allowInvoke(keyServices.map((ks, i) => view(ks, i).aliasArn));
    const edgeRoleArn = `arn:${Aws.PARTITION}:iam::${config.edgeAccount}:role/${edgeTaskRoleName(config.deployment)}`;
    for (const ks of keyServices)
      ks.keyService.grantInvoke(iam.Role.fromRoleArn(ks, 'EdgeTaskRole', edgeRoleArn, { mutable: false }));
  } else {
    for (const ks of keyServices) {
      ks.keyService.grantInvoke(edge.fleet.taskRole);
      edge.addStackDependency(ks, 'the edge invokes the key services');
    }
  }

  for (const stack of [...keyServices, edge]) {
    Tags.of(stack).add(DEPLOYMENT_TAG, config.deployment);
    for (const [k, v] of Object.entries(config.tags)) Tags.of(stack).add(k, v);
  }
  return { keyServices, edge };
}
