/**
 * Assemble the stacks of one deployment:
 *   - one key-service stack per region (the first holds the multi-Region primary keys, the others
 *     replicas of them — same key material, so one certificate serves every region),
 *   - one edge stack in the first region, given the key services in failover order.
 * Without `regions`, both stacks are environment-agnostic and go to the CLI's default region.
 */
import { Tags, type App } from 'aws-cdk-lib';
import type { KeylessConfig } from './config';
import { EdgeStack } from './edge-stack';
import { KeyServiceStack } from './key-service-stack';
import { stackId } from './naming';

export interface KeylessStacks {
  readonly keyServices: readonly KeyServiceStack[];
  readonly edge: EdgeStack;
}

export function createKeylessStacks(app: App, config: KeylessConfig): KeylessStacks {
  const regions = config.regions;
  const multiRegion = regions !== undefined && regions.length > 1;
  const keyServices: KeyServiceStack[] = [];

  const targets: ReadonlyArray<string | undefined> = regions ?? [undefined];
  for (const region of targets) {
    const primary = multiRegion && keyServices.length > 0 ? keyServices[0] : undefined;
    const stack = new KeyServiceStack(app, stackId(config.deployment, 'KeyService', region), {
      config,
      regionName: region,
      multiRegion,
      primary,
      env: region ? { region } : undefined,
      crossRegionReferences: multiRegion,
      description: `keyless TLS (${config.deployment}): key service${region ? ` in ${region}` : ''} — isolated VPC, KMS endpoint, Lambda, KMS keys`,
    });
    keyServices.push(stack);
  }

  const edgeRegion = regions?.[0];
  const edge = new EdgeStack(app, stackId(config.deployment, 'Edge'), {
    config,
    regionName: edgeRegion,
    env: edgeRegion ? { region: edgeRegion } : undefined,
    crossRegionReferences: multiRegion,
    description: `keyless TLS (${config.deployment}): edge fleet — NLB TCP 443, ECS Fargate, autoscaling, dashboard`,
    keyServices: keyServices.map((ks, i) => ({
      aliasArn: ks.alias.functionArn,
      functionName: ks.fn.functionName,
      region: regions?.[i],
      sameRegion: (regions?.[i] ?? undefined) === edgeRegion,
      keySpecs: ks.keys.signingKeys.map((k) => k.keySpec),
    })),
  });
  for (const ks of keyServices) edge.addStackDependency(ks, 'the edge invokes the key services');

  for (const stack of [...keyServices, edge]) {
    Tags.of(stack).add('keyless:deployment', config.deployment);
    for (const [k, v] of Object.entries(config.tags)) Tags.of(stack).add(k, v);
  }
  return { keyServices, edge };
}
