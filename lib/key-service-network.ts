/**
 * The key service's network: a VPC with isolated subnets only (no internet gateway, no NAT, no
 * route out of the VPC), all-traffic flow logs, and interface endpoints for the AWS APIs the
 * function calls. Each endpoint admits HTTPS from the function's security group and nothing else.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { explicitAzsChosenByOperator } from './nag';

export interface KeyServiceNetworkProps {
  readonly vpcCidr: string;
  /** Explicit AZ names (at least two); absent: two AZs chosen at deploy time. */
  readonly availabilityZones?: readonly string[];
  readonly flowLogRetentionDays: number;
}

export class KeyServiceNetwork extends Construct {
  readonly vpc: ec2.Vpc;
  readonly subnets: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
  /** The function's security group: no ingress, egress only to this network's endpoints. */
  readonly functionSecurityGroup: ec2.SecurityGroup;
  readonly kmsEndpoint: ec2.InterfaceVpcEndpoint;

  constructor(scope: Construct, id: string, props: KeyServiceNetworkProps) {
    super(scope, id);
    const azs = props.availabilityZones;
    const flowLogGroup = new logs.LogGroup(this, 'FlowLogs', {
      retention: props.flowLogRetentionDays,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(props.vpcCidr),
      ...(azs ? { availabilityZones: [...azs] } : { maxAzs: 2 }),
      natGateways: 0,
      subnetConfiguration: [{ name: 'KeyService', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
      restrictDefaultSecurityGroup: true,
      flowLogs: {
        All: {
          destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogGroup),
          trafficType: ec2.FlowLogTrafficType.ALL,
        },
      },
    });
    if (azs) explicitAzsChosenByOperator(this.vpc);

    this.functionSecurityGroup = new ec2.SecurityGroup(this, 'FunctionSecurityGroup', {
      vpc: this.vpc,
      description: 'keyless key service: egress only to the KMS interface endpoint on 443',
      allowAllOutbound: false,
    });
    this.kmsEndpoint = this.addEndpoint('Kms', ec2.InterfaceVpcEndpointAwsService.KMS);
  }

  /**
   * An interface endpoint with private DNS in the isolated subnets, reachable on 443 from the
   * function only. Its policy starts empty (deny all): the caller adds what may pass through it.
   */
  addEndpoint(name: string, service: ec2.IInterfaceVpcEndpointService): ec2.InterfaceVpcEndpoint {
    const sg = new ec2.SecurityGroup(this, `${name}EndpointSecurityGroup`, {
      vpc: this.vpc,
      description: `${name} interface endpoint: ingress only from the key-service function on 443`,
      allowAllOutbound: false,
    });
    this.functionSecurityGroup.connections.allowTo(sg, ec2.Port.tcp(443), `HTTPS to the ${name} endpoint`);
    return this.vpc.addInterfaceEndpoint(`${name}Endpoint`, {
      service,
      privateDnsEnabled: true,
      subnets: this.subnets,
      securityGroups: [sg],
      open: false,
    });
  }
}
