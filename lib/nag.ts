import { type CfnResource, Stack, Validations } from 'aws-cdk-lib';
import type { IVpc } from 'aws-cdk-lib/aws-ec2';
import type { IConstruct } from 'constructs';

/**
 * Acknowledge one cdk-nag finding on one construct, with the reason recorded next to the resource
 * that needs it. Every acknowledgement in this app goes through here (tests list and audit them).
 * cdk-nag v3 acknowledges findings one by one (`AwsSolutions-IAM5[Resource::<arn>]`), no prefixes.
 */
export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  if (reason.trim().length < 40) throw new Error(`acknowledgement of ${id} on ${scope.node.path} needs a real reason`);
  Validations.of(scope).acknowledge({ id, reason });
}

/**
 * The text cdk-nag uses for a (possibly tokenised) policy resource in a finding id, e.g.
 * `arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*` for an environment-agnostic stack
 * and `arn:aws:kms:eu-west-1:<AWS::AccountId>:key/*` for one pinned to a region.
 */
export function nagResource(scope: IConstruct, value: string): string {
  const visit = (node: unknown): string => {
    if (node === undefined) return '';
    if (typeof node === 'string') return node.replace(/\${/g, '<').replace(/}/g, '>');
    if (typeof node === 'object' && node !== null) {
      const o = node as Record<string, unknown>;
      if (o['Fn::Join']) {
        const [delimiter, items] = o['Fn::Join'] as [string, unknown[]];
        return items.map(visit).join(delimiter);
      }
      if (o['Fn::Sub']) return visit(o['Fn::Sub']);
      if (o['Fn::GetAtt']) {
        const [resource, attribute] = o['Fn::GetAtt'] as [unknown, unknown];
        return `<${visit(resource)}.${visit(attribute)}>`;
      }
      if (o['Fn::ImportValue']) return visit(o['Fn::ImportValue']);
      if (o.Ref) return `<${visit(o.Ref)}>`;
    }
    return JSON.stringify(node);
  };
  return visit(Stack.of(scope).resolve(value));
}

/**
 * Subnets placed in AZs named in the configuration (the only offline way to use more than two AZs)
 * hard-code AZ names on purpose: tell cfn-lint (W3010) so, on those subnets only.
 */
export function explicitAzsChosenByOperator(vpc: IVpc): void {
  for (const subnet of [...vpc.publicSubnets, ...vpc.privateSubnets, ...vpc.isolatedSubnets]) {
    const cfn = subnet.node.defaultChild as CfnResource | undefined;
    cfn?.addMetadata('cfn-lint', { config: { ignore_checks: ['W3010'] } });
    if (cfn)
      Validations.of(cfn).acknowledge({
        id: 'CloudFormation-Validate::W3010',
        reason: 'AZ names come from the configuration (availabilityZones), chosen by the operator for this account.',
      });
  }
}
