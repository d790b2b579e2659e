/**
 * The origin hop in the CDK: https:// origins and routes synthesize, and the edge tasks' egress is
 * opened only to the configured origins' addresses, names (the VPC) or security groups.
 */
import { originEgressTargets } from '../../lib/config';
import { resourcesOfType, synthesize, type CfnTemplate, type Synth } from './helpers';

const EDGE = 'Keyless-Prod-Edge';

describe('originEgressTargets', () => {
  it('one target per origin address, name or security group; duplicates merged', () => {
    const targets = originEgressTargets(
      {
        origin: 'https://10.1.2.3',
        routes: [
          {
            hosts: ['api.example.com'],
            origin: 'https://api.internal:8443',
            addresses: ['10.0.2.10:8443', '10.0.2.11:8443'],
          },
          { hosts: ['app.example.com'], origin: 'http://app.internal:8080' },
          { hosts: ['peer.example.com'], origin: 'https://peer.internal', securityGroupId: 'sg-0123456789abcdef0' },
          { hosts: ['again.example.com'], origin: 'https://10.1.2.3' },
        ],
      },
      '10.0.0.0/16',
    );
    expect(targets.map((t) => [t.cidr ?? t.securityGroupId, t.port])).toEqual([
      ['10.1.2.3/32', 443],
      ['10.0.2.10/32', 8443],
      ['10.0.2.11/32', 8443],
      ['10.0.0.0/16', 8080],
      ['sg-0123456789abcdef0', 443],
    ]);
  });
});

describe('an https origin with routes synthesizes, with egress to exactly the configured origins', () => {
  let s: Synth;
  let edge: CfnTemplate;

  beforeAll(() => {
    s = synthesize({
      deployment: 'prod',
      keys: [{ name: 'web', custody: 'kms', keySpec: 'ECC_NIST_P256' }],
      edge: {
        origin: 'https://origin.internal.example.com:8443',
        routes: [
          {
            hosts: ['api.example.com'],
            origin: 'https://api.internal.example.com:9443',
            addresses: ['10.0.2.10:9443'],
            retryIdempotent: true,
          },
          {
            hosts: ['peer.example.com'],
            origin: 'https://peer.internal.example.com',
            securityGroupId: 'sg-0123456789abcdef0',
          },
        ],
      },
    });
    edge = s.json(EDGE);
  }, 120_000);

  afterAll(() => s?.cleanup());

  it('task security group egress: AWS APIs on 443, and only the origins', () => {
    const [, svc] = resourcesOfType(edge, 'AWS::ECS::Service')[0];
    const taskSg = svc.Properties!.NetworkConfiguration.AwsvpcConfiguration.SecurityGroups[0][
      'Fn::GetAtt'
    ][0] as string;
    const inline = (
      edge.Resources[taskSg].Properties!.SecurityGroupEgress as Array<{
        CidrIp?: string;
        DestinationSecurityGroupId?: string;
        FromPort: number;
      }>
    ).map((r) => [r.CidrIp ?? r.DestinationSecurityGroupId, r.FromPort]);
    expect(inline).toHaveLength(4);
    expect(inline).toEqual(
      expect.arrayContaining([
        ['0.0.0.0/0', 443],
        [s.config.edge.vpcCidr, 8443],
        ['10.0.2.10/32', 9443],
        ['sg-0123456789abcdef0', 443],
      ]),
    );
  });

  it('the container gets the default origin and the routes', () => {
    const [, task] = resourcesOfType(edge, 'AWS::ECS::TaskDefinition')[0];
    const env = Object.fromEntries(
      (task.Properties!.ContainerDefinitions[0].Environment as Array<{ Name: string; Value: string }>).map((x) => [
        x.Name,
        x.Value,
      ]),
    );
    expect(env.KEYLESS_ORIGIN).toBe('https://origin.internal.example.com:8443');
    expect(JSON.parse(env.KEYLESS_ROUTES)).toEqual([
      {
        hosts: ['api.example.com'],
        origin: { url: 'https://api.internal.example.com:9443', addresses: ['10.0.2.10:9443'] },
        retryIdempotent: true,
      },
      { hosts: ['peer.example.com'], origin: 'https://peer.internal.example.com' },
    ]);
  });
});
