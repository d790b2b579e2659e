/**
 * The edge's network: public subnets for the load balancer, private subnets for the tasks, the
 * security groups of both, and the VPC endpoints that keep the tasks' AWS API calls (key-service
 * invokes, certificates, image pulls, logs) inside the VPC. Egress from the tasks is an allow-list:
 * the endpoints, the origin peers the stack passes in (`originEgress`), and HTTPS through NAT only
 * where a NAT path exists (key services in other regions).
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledge, explicitAzsChosenByOperator } from './nag';
import { ADMIN_PORT, EDGE_PORT, LISTENER_PORT } from './naming';

/** One peer the edge tasks may open connections to for the origin hop. */
export interface OriginEgress {
  readonly peer: ec2.IPeer;
  readonly port: ec2.Port;
  readonly description: string;
}

export interface EdgeNetworkProps {
  readonly vpcCidr: string;
  readonly availabilityZones?: readonly string[];
  /** 0: no NAT and no route to the internet; AWS APIs through endpoints only. */
  readonly natGateways: number;
  readonly flowLogRetentionDays: number;
  readonly allowedClientCidrs: readonly string[];
  /** "http": the NLB also reaches the admin port for GET /healthz. */
  readonly healthCheck: 'http' | 'tcp';
  /** Interface endpoints for SSM, ECR (api, dkr) and CloudWatch Logs, and the S3 gateway endpoint. */
  readonly privateEndpoints: boolean;
  /**
   * Where the origin hop may go (the routing configuration computes it for the configured origins).
   * Nothing else outside the VPC is reachable on the origin's port.
   */
  readonly originEgress: readonly OriginEgress[];
}

export class EdgeNetwork extends Construct {
  readonly vpc: ec2.Vpc;
  readonly taskSubnets: ec2.SubnetSelection;
  readonly loadBalancerSecurityGroup: ec2.SecurityGroup;
  readonly taskSecurityGroup: ec2.SecurityGroup;
  /** True when the tasks have a route to the internet (through NAT). */
  readonly hasNat: boolean;

  constructor(scope: Construct, id: string, props: EdgeNetworkProps) {
    super(scope, id);
    const azs = props.availabilityZones;
    this.hasNat = props.natGateways > 0;
    const taskSubnetType = this.hasNat ? ec2.SubnetType.PRIVATE_WITH_EGRESS : ec2.SubnetType.PRIVATE_ISOLATED;
    const flowLogGroup = new logs.LogGroup(this, 'FlowLogs', {
      retention: props.flowLogRetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(props.vpcCidr),
      ...(azs ? { availabilityZones: [...azs] } : { maxAzs: 2 }),
      natGateways: props.natGateways,
      subnetConfiguration: [
        { name: 'LoadBalancer', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'Edge', subnetType: taskSubnetType, cidrMask: 20 },
      ],
      restrictDefaultSecurityGroup: true,
      flowLogs: {
        // Rejected flows only: the edge itself logs every connection; all-traffic flow logs of a
        // public TLS endpoint would cost more than the fleet.
        Rejected: {
          destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogGroup),
          trafficType: ec2.FlowLogTrafficType.REJECT,
        },
      },
    });
    this.taskSubnets = { subnetType: taskSubnetType };
    if (azs) explicitAzsChosenByOperator(this.vpc);

    this.loadBalancerSecurityGroup = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc: this.vpc,
      description: `keyless edge NLB: TCP ${LISTENER_PORT} from allowed clients, to edge tasks only`,
      allowAllOutbound: false,
    });
    for (const cidr of props.allowedClientCidrs) {
      this.loadBalancerSecurityGroup.addIngressRule(
        ec2.Peer.ipv4(cidr),
        ec2.Port.tcp(LISTENER_PORT),
        `TLS clients ${cidr}`,
      );
    }
    if (props.allowedClientCidrs.includes('0.0.0.0/0')) {
      acknowledge(
        this.loadBalancerSecurityGroup,
        'AwsSolutions-EC23',
        'This is the public TLS endpoint of the service: TCP 443 is open to all clients by design (restrict with edge.allowedClientCidrs). Nothing but 443 is open, and only on the load balancer.',
      );
    }
    this.taskSecurityGroup = new ec2.SecurityGroup(this, 'TaskSecurityGroup', {
      vpc: this.vpc,
      description: 'keyless edge tasks: traffic from the NLB; HTTPS to AWS APIs and the origin',
      allowAllOutbound: false,
    });
    this.taskSecurityGroup.connections.allowFrom(
      this.loadBalancerSecurityGroup,
      ec2.Port.tcp(EDGE_PORT),
      'TLS from the load balancer',
    );
    if (props.healthCheck === 'http') {
      this.taskSecurityGroup.connections.allowFrom(
        this.loadBalancerSecurityGroup,
        ec2.Port.tcp(ADMIN_PORT),
        'Health checks from the load balancer',
      );
    }

    if (props.privateEndpoints) this.addPrivateEndpoints();
    if (this.hasNat) {
      // Lambda in other regions (interface endpoints are regional) and, without endpoints, every AWS API.
      this.taskSecurityGroup.addEgressRule(
        ec2.Peer.anyIpv4(),
        ec2.Port.tcp(443),
        'HTTPS to AWS APIs of other regions (through NAT)',
      );
    }
    for (const o of props.originEgress) this.taskSecurityGroup.addEgressRule(o.peer, o.port, o.description);
  }

  /**
   * An interface endpoint with private DNS in the task subnets, reachable on 443 from the tasks only
   * (its security group admits nothing else). Its endpoint policy is the caller's to narrow.
   */
  addEndpoint(name: string, service: ec2.InterfaceVpcEndpointAwsService): ec2.InterfaceVpcEndpoint {
    const sg = new ec2.SecurityGroup(this, `${name}EndpointSecurityGroup`, {
      vpc: this.vpc,
      description: `${name} interface endpoint: HTTPS from edge tasks only`,
      allowAllOutbound: false,
    });
    this.taskSecurityGroup.connections.allowTo(sg, ec2.Port.tcp(443), `HTTPS to the ${name} endpoint`);
    return this.vpc.addInterfaceEndpoint(`${name}Endpoint`, {
      service,
      privateDnsEnabled: true,
      subnets: this.taskSubnets,
      securityGroups: [sg],
      open: false,
    });
  }

  /**
   * What a task needs at start and at run time besides the key service: certificates (SSM), its image
   * (ECR api + dkr, layers from S3) and its logs (CloudWatch Logs). With these, a single-region
   * deployment whose origin is inside the VPC needs no NAT at all.
   */
  private addPrivateEndpoints(): void {
    this.addEndpoint('Ssm', ec2.InterfaceVpcEndpointAwsService.SSM);
    this.addEndpoint('EcrApi', ec2.InterfaceVpcEndpointAwsService.ECR);
    this.addEndpoint('EcrDocker', ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER);
    this.addEndpoint('Logs', ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS);
    const s3 = this.vpc.addGatewayEndpoint('S3Endpoint', {
      service: ec2.GatewayVpcEndpointAwsService.S3,
      subnets: [this.taskSubnets],
    });
    // ECR keeps image layers in S3 buckets it owns: allow reads of those only through this route.
    s3.addToPolicy(
      new iam.PolicyStatement({
        sid: 'EcrImageLayersOnly',
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:GetObject'],
        resources: [`arn:${this.vpc.stack.partition}:s3:::prod-${this.vpc.stack.region}-starport-layer-bucket/*`],
      }),
    );
    if (!this.hasNat) {
      // No NAT: the route tables are the boundary (local + the S3 gateway route), so HTTPS "anywhere"
      // reaches S3 through the gateway endpoint and nothing else; S3's addresses are a managed prefix
      // list whose id cannot be resolved offline.
      this.taskSecurityGroup.addEgressRule(
        ec2.Peer.anyIpv4(),
        ec2.Port.tcp(443),
        'HTTPS to S3 through the gateway endpoint (no other route exists)',
      );
    }
  }
}
