/**
 * The edge fleet: ECS Fargate tasks running `edge-proxy/Dockerfile` behind a Network Load Balancer
 * that passes TCP 443 straight through (TLS is terminated by our code), autoscaled on CPU and on
 * connections per task, with certificates in SSM. Each concern is one construct; this stack wires
 * them together and writes the container's environment (the edge's runtime contract).
 */
import { Annotations, CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import type { Construct } from 'constructs';
import {
  certificateParameterValue,
  originEgressTargets,
  type AlarmConfig,
  type CertificateEntry,
  type EdgeConfig,
  workersPerTask,
} from './config';
import { EdgeLoadBalancer } from './edge-load-balancer';
import { EdgeNetwork, type OriginEgress } from './edge-network';
import { EdgeScaling } from './edge-scaling';
import { EdgeService, MAX_HEALTHY_PERCENT } from './edge-service';
import { EdgeMonitoring, type KeyServiceView } from './monitoring';
import { ADMIN_PORT, certificatePrefix, EDGE_PORT, METRICS } from './naming';

export { EDGE_CONTAINER_NAME, readIgnoreFile } from './edge-service';
export type { OriginEgress } from './edge-network';

/** One key service the edge may use, in failover order. */
export interface EdgeKeyService {
  /** Qualified alias ARN (`...:function:<name>:live`). */
  readonly aliasArn: string;
  readonly functionName: string;
  /** Explicit region, or undefined when it is the edge stack's own (environment-agnostic) region. */
  readonly region?: string;
  /** True when the key service is in the edge's region (reachable through the Lambda endpoint). */
  readonly sameRegion: boolean;
  readonly keySpecs: KeyServiceView['keySpecs'];
}

export interface EdgeStackProps extends StackProps {
  readonly deployment: string;
  readonly edge: EdgeConfig;
  /** Certificates the CDK stores (more can be imported with `keyless cert import`). */
  readonly certificates: readonly CertificateEntry[];
  readonly alarms: AlarmConfig;
  readonly availabilityZones?: readonly string[];
  readonly keyServices: readonly EdgeKeyService[];
  /**
   * Where the origin hop may go. Default: `originEgressFor(this, edge, edge.vpcCidr)` — the origins'
   * address when it is an IP, else the VPC's own CIDR.
   */
  readonly originEgress?: readonly OriginEgress[];
  /** Fixed task-role name: the key-service account's resource policy and the invoke SCP name the role. */
  readonly taskRoleName?: string;
}

export class EdgeStack extends Stack {
  readonly network: EdgeNetwork;
  readonly loadBalancer: EdgeLoadBalancer;
  readonly fleet: EdgeService;
  readonly scaling: EdgeScaling;
  readonly monitoring: EdgeMonitoring;

  private readonly configuredAzs?: readonly string[];

  /** Configured AZ names win over a lookup (stacks with an explicit account would need AWS at synth). */
  override get availabilityZones(): string[] {
    return this.configuredAzs ? [...this.configuredAzs] : super.availabilityZones;
  }

  constructor(scope: Construct, id: string, props: EdgeStackProps) {
    super(scope, id, props);
    this.configuredAzs = props.availabilityZones;
    const e = props.edge;
    if (props.keyServices.length === 0) throw new Error('the edge needs at least one key service');
    const prefix = certificatePrefix(props.deployment);
    const serving = props.certificates.length > 0 || e.certificatesReady;

    this.network = new EdgeNetwork(this, 'Network', {
      vpcCidr: e.vpcCidr,
      availabilityZones: props.availabilityZones,
      natGateways: e.natGateways,
      flowLogRetentionDays: e.logRetentionDays,
      allowedClientCidrs: e.allowedClientCidrs,
      healthCheck: e.healthCheck,
      privateEndpoints: e.privateEndpoints,
      originEgress: props.originEgress ?? originEgressFor(this, e, e.vpcCidr),
    });

    this.loadBalancer = new EdgeLoadBalancer(this, 'LoadBalancer', {
      vpc: this.network.vpc,
      securityGroup: this.network.loadBalancerSecurityGroup,
      internetFacing: e.internetFacing,
      internalSubnets: this.network.taskSubnets,
      deletionProtection: e.deletionProtection,
      clientAddress: e.clientAddress,
      deregistrationDelaySeconds: e.deregistrationDelaySeconds,
      healthCheck: e.healthCheck,
    });

    this.fleet = new EdgeService(this, 'Fleet', {
      deployment: props.deployment,
      vpc: this.network.vpc,
      subnets: this.network.taskSubnets,
      securityGroup: this.network.taskSecurityGroup,
      targetGroup: this.loadBalancer.targetGroup,
      cpu: e.cpu,
      memoryMiB: e.memoryMiB,
      cpuArchitecture: e.cpuArchitecture,
      stopTimeoutSeconds: e.stopTimeoutSeconds,
      logRetentionDays: e.logRetentionDays,
      certificatePrefix: prefix,
      environment: edgeEnvironment(props, prefix),
      taskRoleName: props.taskRoleName,
      desiredCount: serving ? undefined : 0,
    });
    if (!serving) {
      Annotations.of(this).addWarningV2(
        'keyless:edge-awaiting-certificate',
        `The edge service is created with 0 tasks: no certificate is configured yet (an edge with an empty certificate store exits). ` +
          `Import one (docs/deploy.md, "First deploy"), then deploy again with -c keyless:edge.certificatesReady=true.`,
      );
    }

    this.scaling = new EdgeScaling(this, 'Scaling', {
      service: this.fleet.service,
      loadBalancerFullName: this.loadBalancer.loadBalancer.loadBalancerFullName,
      targetGroupFullName: this.loadBalancer.targetGroup.targetGroupFullName,
      minTasks: serving ? e.minTasks : 0,
      maxTasks: serving ? e.maxTasks : 0,
      targetCpuUtilization: e.targetCpuUtilization,
      targetConnectionsPerTask: e.targetConnectionsPerTask,
    });

    this.addPrivateLambdaEndpoint(props);
    this.storeCertificates(props, prefix);
    this.recordFleetBudget(props);

    this.monitoring = new EdgeMonitoring(this, 'Monitoring', {
      deployment: props.deployment,
      loadBalancerFullName: this.loadBalancer.loadBalancer.loadBalancerFullName,
      targetGroupFullName: this.loadBalancer.targetGroup.targetGroupFullName,
      clusterName: this.fleet.cluster.clusterName,
      serviceName: this.fleet.service.serviceName,
      minTasks: serving ? e.minTasks : 0,
      email: props.alarms.email,
      keyServices: props.keyServices.map((k, i) => ({
        region: k.region,
        label: k.region ?? (i === 0 ? 'key service' : `key service ${i + 1}`),
        functionName: k.functionName,
        keySpecs: k.keySpecs,
      })),
    });

    new CfnOutput(this, 'LoadBalancerDnsName', {
      value: this.loadBalancer.loadBalancer.loadBalancerDnsName,
      description: 'Point the hostnames here (CNAME or Route 53 alias)',
    });
    new CfnOutput(this, 'CertificatePrefix', {
      value: prefix,
      description: 'SSM prefix the edge reads certificates from',
    });
    new CfnOutput(this, 'TaskRoleArn', {
      value: this.fleet.taskRole.roleArn,
      description: 'The only principal that may invoke the key service',
    });
    new CfnOutput(this, 'ClusterName', { value: this.fleet.cluster.clusterName });
    new CfnOutput(this, 'ServiceName', {
      value: this.fleet.service.serviceName,
      description: 'keyless fleet status / scale',
    });
    new CfnOutput(this, 'DashboardName', { value: `keyless-${props.deployment}` });
    new CfnOutput(this, 'MetricsNamespace', { value: METRICS.edgeNamespace });
  }

  /** Same-region key operations never leave the VPC: a Lambda endpoint that only the task role may use, only to invoke. */
  private addPrivateLambdaEndpoint(props: EdgeStackProps): void {
    const sameRegion = props.keyServices.filter((k) => k.sameRegion);
    if (!props.edge.privateLambdaEndpoint || sameRegion.length === 0) return;
    const endpoint = this.network.addEndpoint('Lambda', ec2.InterfaceVpcEndpointAwsService.LAMBDA);
    endpoint.addToPolicy(
      new iam.PolicyStatement({
        sid: 'OnlyTheEdgeInvokesTheKeyService',
        principals: [new iam.ArnPrincipal(this.fleet.taskRole.roleArn)],
        actions: ['lambda:InvokeFunction'],
        resources: sameRegion.map((k) => k.aliasArn),
      }),
    );
  }

  /**
   * The fleet's KMS budget as the edges were given it, for `keyless fleet scale`, which refuses a
   * maximum that would break it without a redeploy (bin/cli/fleet.ts, fleetBudgetParameter).
   */
  private recordFleetBudget(props: EdgeStackProps): void {
    new ssm.StringParameter(this, 'FleetBudget', {
      parameterName: `/keyless/${props.deployment}/fleet`,
      stringValue: JSON.stringify({
        kmsBudget: props.edge.kmsBudget,
        maxTasks: fleetAdmittingTasks(props.edge.maxTasks),
        maximumPercent: MAX_HEALTHY_PERCENT,
      }),
      description: `keyless ${props.deployment}: the edges' KEYLESS_KMS_BUDGET and KEYLESS_FLEET_MAX_TASKS, and the service's deployment maximumPercent`,
    });
  }

  /** Certificates (public data) under the deployment's SSM prefix. */
  private storeCertificates(props: EdgeStackProps, prefix: string): void {
    for (const cert of props.certificates) {
      new ssm.StringParameter(this, `Certificate-${cert.name}`, {
        parameterName: `${prefix}${cert.name}`,
        stringValue: certificateParameterValue(cert),
        tier: ssm.ParameterTier.ADVANCED,
        description: `keyless ${props.deployment}: certificate chain for ${cert.hostnames.join(', ')} (key ${cert.keyName})`,
      });
    }
  }
}

/** Tasks that may admit key operations at once: maxTasks, plus a rolling deploy's surplus. */
export function fleetAdmittingTasks(maxTasks: number): number {
  return Math.ceil((maxTasks * MAX_HEALTHY_PERCENT) / 100);
}

/** The edge container's environment: the runtime contract read by edge-proxy/src/config.ts. */
function edgeEnvironment(props: EdgeStackProps, prefix: string): Record<string, string> {
  const e = props.edge;
  const env: Record<string, string> = {
    KEYLESS_EDGE_PORT: String(EDGE_PORT),
    KEYLESS_ADMIN_PORT: String(ADMIN_PORT),
    KEYLESS_KEY_SERVICES: props.keyServices.map((k) => k.aliasArn).join(','),
    KEYLESS_CERT_SSM_PREFIX: prefix,
    KEYLESS_ORIGIN: e.origin,
    ...(e.routes
      ? {
          KEYLESS_ROUTES: JSON.stringify(
            e.routes.map((r) => ({
              hosts: r.hosts,
              origin: r.addresses ? { url: r.origin, addresses: r.addresses } : r.origin,
              ...(r.retryIdempotent ? { retryIdempotent: true } : {}),
            })),
          ),
        }
      : {}),
    KEYLESS_DEPLOYMENT: props.deployment,
    KEYLESS_PROXY_MODE: e.proxyMode,
    KEYLESS_GROUPS: e.groups.join(','),
    // One edge worker process per vCPU of the task size (edge-proxy/src/workers.ts).
    KEYLESS_WORKERS: String(workersPerTask(e.cpu)),
    // Drain for as long as the NLB keeps sending the task's connections, but finish before ECS's
    // SIGKILL (stopTimeout) with a few seconds to spare for the last responses and the exit.
    KEYLESS_DRAIN_TIMEOUT_MS: String(
      Math.max(1, Math.min(e.deregistrationDelaySeconds, e.stopTimeoutSeconds - 5)) * 1000,
    ),
    KEYLESS_MAX_CONNECTIONS: String(e.maxConnectionsPerTask),
    // The fleet's regional KMS budget, split by each task over the most tasks that can run at once:
    // maxTasks, and during a rolling deploy up to MAX_HEALTHY_PERCENT of it (docs/configuration.md).
    KEYLESS_KMS_BUDGET: String(e.kmsBudget),
    KEYLESS_FLEET_MAX_TASKS: String(fleetAdmittingTasks(e.maxTasks)),
  };
  if (e.originProxyProtocol) env.KEYLESS_ORIGIN_PROXY_PROTOCOL = '1';
  if (e.logSampleRate !== 1) env.KEYLESS_LOG_SAMPLE_RATE = String(e.logSampleRate);
  if (e.clientAddress === 'proxy-protocol-v2') env.KEYLESS_PROXY_PROTOCOL = '1';
  if (e.healthCheck === 'http') env.KEYLESS_ADMIN_HOST = '0.0.0.0';
  return env;
}

/**
 * Default egress of the origin hop: exactly the configured origins (the default origin and every
 * route's), as lib/config.ts `originEgressTargets` places them — a security group, each listed address,
 * an IPv4 literal, or the VPC's CIDR for a name (expected to resolve inside the VPC: a private hosted
 * zone, an internal load balancer). Warns at synth when a plaintext origin is not inside the VPC.
 */
export function originEgressFor(
  scope: Construct,
  e: Pick<EdgeConfig, 'origin' | 'originSecurityGroupId' | 'routes'>,
  vpcCidr: string,
): OriginEgress[] {
  const warn = (message: string): void => {
    Annotations.of(scope).addWarningV2(
      'keyless:origin-outside-vpc',
      `${message} The edge-to-origin hop is plaintext: keep the origin inside the VPC, or use an https:// origin (docs/deploy.md, "Network").`,
    );
  };
  for (const origin of [e.origin, ...(e.routes ?? []).map((r) => r.origin)]) {
    const url = new URL(origin);
    if (url.protocol === 'https:' || url.protocol === 'tls:') continue;
    const host = url.hostname;
    if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) {
      if (!ipv4InCidr(host, vpcCidr))
        warn(`The origin ${host} is outside the edge VPC (${vpcCidr}); egress is opened to ${host}/32, through NAT.`);
    } else if (!e.originSecurityGroupId) {
      warn(
        `The origin host "${host}" is a name; its egress is allowed to the edge VPC (${vpcCidr}) only, so it must resolve to an address inside it (a private hosted zone, an internal load balancer).`,
      );
    }
  }
  return originEgressTargets(e, vpcCidr).map((t) => ({
    peer: t.securityGroupId ? ec2.Peer.securityGroupId(t.securityGroupId) : ec2.Peer.ipv4(t.cidr!),
    port: ec2.Port.tcp(t.port),
    description: t.description,
  }));
}

function ipv4InCidr(ip: string, cidr: string): boolean {
  const toInt = (a: string): number => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  const [base, bits] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  const start = Math.floor(toInt(base) / size) * size;
  const v = toInt(ip);
  return v >= start && v < start + size;
}
