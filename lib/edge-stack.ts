/**
 * The edge fleet (DESIGN §1, §4): ECS Fargate tasks running `edge-proxy/Dockerfile` behind a Network
 * Load Balancer that passes TCP 443 straight through (TLS is terminated by our code), autoscaled on
 * CPU and on connections per task, with certificates in SSM and a task role that can invoke the key
 * service and read certificates — and nothing else (in particular, no KMS permission at all).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CfnOutput, Duration, IgnoreMode, RemovalPolicy, Size, Stack, type StackProps } from 'aws-cdk-lib';
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import type { Construct } from 'constructs';
import { certificateParameterValue, type KeylessConfig } from './config';
import { EdgeMonitoring, type KeyServiceView } from './monitoring';
import { acknowledge, explicitAzsChosenByOperator, nagResource } from './nag';
import { ADMIN_PORT, certificatePrefix, EDGE_PORT, LISTENER_PORT, METRICS } from './naming';
import { REPO_PATHS, repoRoot } from './paths';

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
  readonly config: KeylessConfig;
  readonly regionName?: string;
  readonly keyServices: readonly EdgeKeyService[];
}

export const EDGE_CONTAINER_NAME = 'edge';

export class EdgeStack extends Stack {
  readonly vpc: ec2.Vpc;
  readonly cluster: ecs.Cluster;
  readonly taskRole: iam.Role;
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly service: ecs.FargateService;
  readonly loadBalancer: elbv2.NetworkLoadBalancer;
  readonly targetGroup: elbv2.NetworkTargetGroup;
  readonly taskSecurityGroup: ec2.SecurityGroup;
  readonly monitoring: EdgeMonitoring;

  constructor(scope: Construct, id: string, props: EdgeStackProps) {
    super(scope, id, props);
    const { config } = props;
    const e = config.edge;
    const root = repoRoot();
    const azs = props.regionName ? config.availabilityZones[props.regionName] : undefined;
    if (props.keyServices.length === 0) throw new Error('the edge needs at least one key service');

    // --- Network: public subnets for the NLB, private subnets (egress through NAT) for the tasks. ---
    const flowLogGroup = new logs.LogGroup(this, 'FlowLogs', { retention: e.logRetentionDays, removalPolicy: RemovalPolicy.DESTROY });
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(e.vpcCidr),
      ...(azs ? { availabilityZones: [...azs] } : { maxAzs: 2 }),
      natGateways: e.natGateways,
      subnetConfiguration: [
        { name: 'LoadBalancer', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'Edge', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
      ],
      restrictDefaultSecurityGroup: true,
      flowLogs: {
        // Rejected flows only: the edge itself logs every connection; all-traffic flow logs of a
        // public TLS endpoint would cost more than the fleet.
        Rejected: { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogGroup), trafficType: ec2.FlowLogTrafficType.REJECT },
      },
    });
    const privateSubnets: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS };
    if (azs) explicitAzsChosenByOperator(this.vpc);

    // --- Security groups. ---
    const nlbSg = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc: this.vpc,
      description: `keyless edge NLB: TCP ${LISTENER_PORT} from allowed clients, to edge tasks only`,
      allowAllOutbound: false,
    });
    for (const cidr of e.allowedClientCidrs) {
      nlbSg.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(LISTENER_PORT), `TLS clients ${cidr}`);
    }
    if (e.allowedClientCidrs.includes('0.0.0.0/0')) {
      acknowledge(
        nlbSg,
        'AwsSolutions-EC23',
        'This is the public TLS endpoint of the service: TCP 443 is open to all clients by design (restrict with edge.allowedClientCidrs). Nothing but 443 is open, and only on the load balancer.',
      );
    }
    this.taskSecurityGroup = new ec2.SecurityGroup(this, 'TaskSecurityGroup', {
      vpc: this.vpc,
      description: 'keyless edge tasks: traffic from the NLB; HTTPS to AWS APIs and the origin',
      allowAllOutbound: false,
    });
    this.taskSecurityGroup.connections.allowFrom(nlbSg, ec2.Port.tcp(EDGE_PORT), 'TLS from the load balancer');
    if (e.healthCheck === 'http') {
      this.taskSecurityGroup.connections.allowFrom(nlbSg, ec2.Port.tcp(ADMIN_PORT), 'Health checks from the load balancer');
    }
    // AWS APIs (Lambda in other regions, SSM, ECR, CloudWatch Logs) go through NAT on 443.
    this.taskSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to AWS APIs (through NAT)');
    const origin = new URL(e.origin);
    const originPort = Number(origin.port || (origin.protocol === 'https:' ? 443 : 80));
    if (originPort !== 443) {
      this.taskSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(originPort), `Origin ${origin.host}`);
    }

    // --- Task role: invoke the key-service aliases, read this deployment's certificates. Nothing else. ---
    const prefix = certificatePrefix(config.deployment);
    const prefixPath = prefix.replace(/^\/|\/$/g, '');
    const certParams = this.formatArn({ service: 'ssm', resource: 'parameter', resourceName: `${prefixPath}/*` });
    this.taskRole = new iam.Role(this, 'TaskRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com', {
        conditions: { ArnLike: { 'aws:SourceArn': this.formatArn({ service: 'ecs', resource: '*' }) }, StringEquals: { 'aws:SourceAccount': this.account } },
      }),
      description: 'keyless edge task: invoke the key service, read certificates; no KMS, no private keys',
      inlinePolicies: {
        EdgeRuntime: new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              sid: 'InvokeKeyServices',
              actions: ['lambda:InvokeFunction'],
              resources: props.keyServices.map((k) => k.aliasArn),
            }),
            new iam.PolicyStatement({
              sid: 'ListCertificates',
              actions: ['ssm:GetParametersByPath'],
              resources: [
                this.formatArn({ service: 'ssm', resource: 'parameter', resourceName: prefixPath }),
                certParams,
              ],
            }),
            new iam.PolicyStatement({
              sid: 'ReadCertificates',
              actions: ['ssm:GetParameter', 'ssm:GetParameters'],
              resources: [certParams],
            }),
          ],
        }),
      },
    });
    acknowledge(
      this.taskRole,
      `AwsSolutions-IAM5[Resource::${nagResource(this, certParams)}]`,
      'Certificates are public data stored one parameter each under the deployment prefix; the edge lists and reads that prefix (and only it) so that certificates can be added and rotated without an IAM change.',
    );

    // Same-region key operations never leave the VPC: a Lambda endpoint that only this role may use, only to invoke.
    const sameRegion = props.keyServices.filter((k) => k.sameRegion);
    if (e.privateLambdaEndpoint && sameRegion.length > 0) {
      const endpointSg = new ec2.SecurityGroup(this, 'LambdaEndpointSecurityGroup', {
        vpc: this.vpc,
        description: 'Lambda interface endpoint: HTTPS from edge tasks only',
        allowAllOutbound: false,
      });
      this.taskSecurityGroup.connections.allowTo(endpointSg, ec2.Port.tcp(443), 'Invoke the key service privately');
      const endpoint = this.vpc.addInterfaceEndpoint('LambdaEndpoint', {
        service: ec2.InterfaceVpcEndpointAwsService.LAMBDA,
        privateDnsEnabled: true,
        subnets: privateSubnets,
        securityGroups: [endpointSg],
        open: false,
      });
      endpoint.addToPolicy(
        new iam.PolicyStatement({
          sid: 'OnlyTheEdgeInvokesTheKeyService',
          principals: [new iam.ArnPrincipal(this.taskRole.roleArn)],
          actions: ['lambda:InvokeFunction'],
          resources: sameRegion.map((k) => k.aliasArn),
        }),
      );
    }

    // --- Certificates (public data) under the deployment's SSM prefix. ---
    for (const cert of config.certificates) {
      new ssm.StringParameter(this, `Certificate-${cert.name}`, {
        parameterName: `${prefix}${cert.name}`,
        stringValue: certificateParameterValue(cert),
        tier: ssm.ParameterTier.ADVANCED,
        description: `keyless ${config.deployment}: certificate chain for ${cert.hostnames.join(', ')} (key ${cert.keyName})`,
      });
    }

    // --- ECS. ---
    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: this.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });
    const logGroup = new logs.LogGroup(this, 'EdgeLogs', { retention: e.logRetentionDays, removalPolicy: RemovalPolicy.RETAIN });
    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'TaskDefinition', {
      cpu: e.cpu,
      memoryLimitMiB: e.memoryMiB,
      runtimePlatform: {
        cpuArchitecture: e.cpuArchitecture === 'ARM64' ? ecs.CpuArchitecture.ARM64 : ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
      taskRole: this.taskRole,
    });
    this.taskDefinition.addVolume({ name: 'tmp' });

    const keyServiceArns = props.keyServices.map((k) => k.aliasArn);
    const environment: Record<string, string> = {
      KEYLESS_EDGE_PORT: String(EDGE_PORT),
      KEYLESS_ADMIN_PORT: String(ADMIN_PORT),
      KEYLESS_KEY_SERVICES: keyServiceArns.join(','),
      KEYLESS_CERT_SSM_PREFIX: prefix,
      KEYLESS_ORIGIN: e.origin,
      KEYLESS_DEPLOYMENT: config.deployment,
      KEYLESS_PROXY_MODE: e.proxyMode,
      // Drain for as long as the NLB keeps sending the task's connections, but finish before ECS's
      // SIGKILL (stopTimeout) with a few seconds to spare for the last responses and the exit.
      KEYLESS_DRAIN_TIMEOUT_MS: String(Math.max(1, Math.min(e.deregistrationDelaySeconds, e.stopTimeoutSeconds - 5)) * 1000),
      // [perf] One edge worker process per vCPU of the task size (edge-proxy/src/workers.ts).
      KEYLESS_WORKERS: String(Math.max(1, Math.floor(e.cpu / 1024))),
    };
    if (e.originProxyProtocol) environment.KEYLESS_ORIGIN_PROXY_PROTOCOL = '1';
    if (e.logSampleRate !== 1) environment.KEYLESS_LOG_SAMPLE_RATE = String(e.logSampleRate);
    if (e.clientAddress === 'proxy-protocol-v2') environment.KEYLESS_PROXY_PROTOCOL = '1';
    if (e.healthCheck === 'http') environment.KEYLESS_ADMIN_HOST = '0.0.0.0';

    const container = this.taskDefinition.addContainer(EDGE_CONTAINER_NAME, {
      image: ecs.ContainerImage.fromAsset(root, {
        file: REPO_PATHS.edgeDockerfile,
        platform: e.cpuArchitecture === 'ARM64' ? Platform.LINUX_ARM64 : Platform.LINUX_AMD64,
        exclude: readIgnoreFile(path.join(root, REPO_PATHS.edgeDockerignore)),
        ignoreMode: IgnoreMode.DOCKER,
        displayName: `keyless edge (${config.deployment})`,
      }),
      essential: true,
      user: '1000:1000',
      readonlyRootFilesystem: true,
      environment,
      portMappings: [
        { containerPort: EDGE_PORT, protocol: ecs.Protocol.TCP, name: 'tls' },
        { containerPort: ADMIN_PORT, protocol: ecs.Protocol.TCP, name: 'admin' },
      ],
      healthCheck: {
        // Liveness only: the admin listener answers at all. A 503 from /healthz (no key service
        // reachable) must not make ECS replace every task during a key-service outage, when
        // resumed sessions and established connections still work; readiness is the NLB's job.
        command: [
          'CMD',
          'node',
          '-e',
          `require('http').get({host:'127.0.0.1',port:${ADMIN_PORT},path:'/healthz',timeout:4000},r=>{r.resume();process.exit(0)}).on('error',()=>process.exit(1)).on('timeout',()=>process.exit(1))`,
        ],
        interval: Duration.seconds(15),
        timeout: Duration.seconds(5),
        retries: 3,
        startPeriod: Duration.seconds(30),
      },
      stopTimeout: Duration.seconds(e.stopTimeoutSeconds),
      linuxParameters: new ecs.LinuxParameters(this, 'LinuxParameters', { initProcessEnabled: true }),
      ulimits: [{ name: ecs.UlimitName.NOFILE, softLimit: 65535, hardLimit: 65535 }],
      logging: ecs.LogDrivers.awsLogs({
        logGroup,
        streamPrefix: 'edge',
        mode: ecs.AwsLogDriverMode.NON_BLOCKING,
        maxBufferSize: Size.mebibytes(25),
      }),
    });
    container.linuxParameters?.dropCapabilities(ecs.Capability.ALL);
    container.addMountPoints({ containerPath: '/tmp', sourceVolume: 'tmp', readOnly: false });
    acknowledge(
      this.taskDefinition,
      'AwsSolutions-ECS2',
      'The environment holds only non-secret configuration (ports, key-service alias ARNs, the SSM prefix, the origin URL). The edge holds no secret at all: private keys stay in KMS.',
    );
    if (this.taskDefinition.executionRole) {
      acknowledge(
        this.taskDefinition.executionRole,
        'AwsSolutions-IAM5[Resource::*]',
        'ecr:GetAuthorizationToken, which the ECS agent needs to pull the edge image, does not support resource-level permissions; the pull actions themselves are scoped to the asset repository.',
      );
    }

    // --- Network Load Balancer: TCP 443 pass-through to the edge's 8443. ---
    this.loadBalancer = new elbv2.NetworkLoadBalancer(this, 'LoadBalancer', {
      vpc: this.vpc,
      internetFacing: e.internetFacing,
      vpcSubnets: { subnetType: e.internetFacing ? ec2.SubnetType.PUBLIC : ec2.SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [nlbSg],
      crossZoneEnabled: true,
      deletionProtection: e.deletionProtection,
    });
    acknowledge(
      this.loadBalancer,
      'AwsSolutions-ELB2',
      'NLB access logs exist only for TLS listeners; this listener is TCP pass-through because TLS is terminated by the edge, which logs every connection and handshake with the client address (PROXY protocol v2 or preserved client IP).',
    );

    this.targetGroup = new elbv2.NetworkTargetGroup(this, 'TargetGroup', {
      vpc: this.vpc,
      port: EDGE_PORT,
      protocol: elbv2.Protocol.TCP,
      targetType: elbv2.TargetType.IP,
      proxyProtocolV2: e.clientAddress === 'proxy-protocol-v2',
      preserveClientIp: e.clientAddress === 'preserve-client-ip',
      deregistrationDelay: Duration.seconds(e.deregistrationDelaySeconds),
      connectionTermination: true,
      healthCheck:
        e.healthCheck === 'http'
          ? { protocol: elbv2.Protocol.HTTP, port: String(ADMIN_PORT), path: '/healthz', healthyHttpCodes: '200', interval: Duration.seconds(10), timeout: Duration.seconds(5), healthyThresholdCount: 2, unhealthyThresholdCount: 2 }
          : { protocol: elbv2.Protocol.TCP, port: 'traffic-port', interval: Duration.seconds(10), timeout: Duration.seconds(5), healthyThresholdCount: 2, unhealthyThresholdCount: 2 },
    });
    // A target failing health checks takes no new connections, but its established ones live on
    // until they end or the task stops: an unhealthy verdict must not cut live TLS sessions.
    this.targetGroup.setAttribute('target_health_state.unhealthy.connection_termination.enabled', 'false');
    this.targetGroup.setAttribute('target_health_state.unhealthy.draining_interval_seconds', String(Math.max(e.deregistrationDelaySeconds, 60)));

    this.loadBalancer.addListener('Tls', {
      port: LISTENER_PORT,
      protocol: elbv2.Protocol.TCP,
      defaultTargetGroups: [this.targetGroup],
    });

    this.service = new ecs.FargateService(this, 'Service', {
      cluster: this.cluster,
      taskDefinition: this.taskDefinition,
      desiredCount: e.minTasks,
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { enable: true, rollback: true },
      healthCheckGracePeriod: Duration.seconds(60),
      assignPublicIp: false,
      vpcSubnets: privateSubnets,
      securityGroups: [this.taskSecurityGroup],
      enableExecuteCommand: false,
      propagateTags: ecs.PropagatedTagSource.SERVICE,
      enableECSManagedTags: true,
      platformVersion: ecs.FargatePlatformVersion.LATEST,
      availabilityZoneRebalancing: ecs.AvailabilityZoneRebalancing.ENABLED,
    });
    this.targetGroup.addTarget(this.service.loadBalancerTarget({ containerName: EDGE_CONTAINER_NAME, containerPort: EDGE_PORT }));

    // --- Autoscaling: CPU, and client connections per healthy task (NLB flows / healthy targets). ---
    const scaling = this.service.autoScaleTaskCount({ minCapacity: e.minTasks, maxCapacity: e.maxTasks });
    scaling.scaleOnCpuUtilization('Cpu', {
      targetUtilizationPercent: e.targetCpuUtilization,
      scaleOutCooldown: Duration.seconds(60),
      scaleInCooldown: Duration.seconds(300),
    });
    const scalableTarget = scaling.node.findChild('Target') as appscaling.ScalableTarget;
    new appscaling.CfnScalingPolicy(this, 'ConnectionsPerTaskScaling', {
      policyName: `${this.stackName}-connections-per-task`.slice(0, 256),
      policyType: 'TargetTrackingScaling',
      scalingTargetId: scalableTarget.scalableTargetId,
      targetTrackingScalingPolicyConfiguration: {
        targetValue: e.targetConnectionsPerTask,
        scaleOutCooldown: 60,
        scaleInCooldown: 300,
        customizedMetricSpecification: {
          metrics: [
            {
              id: 'flows',
              label: 'NLB active TCP flows',
              returnData: false,
              metricStat: {
                stat: 'Average',
                metric: {
                  namespace: 'AWS/NetworkELB',
                  metricName: 'ActiveFlowCount_TCP',
                  dimensions: [{ name: 'LoadBalancer', value: this.loadBalancer.loadBalancerFullName }],
                },
              },
            },
            {
              id: 'tasks',
              label: 'Healthy edge tasks',
              returnData: false,
              metricStat: {
                stat: 'Average',
                metric: {
                  namespace: 'AWS/NetworkELB',
                  metricName: 'HealthyHostCount',
                  dimensions: [
                    { name: 'LoadBalancer', value: this.loadBalancer.loadBalancerFullName },
                    { name: 'TargetGroup', value: this.targetGroup.targetGroupFullName },
                  ],
                },
              },
            },
            { id: 'perTask', label: 'Active client connections per edge task', expression: 'flows / tasks', returnData: true },
          ],
        },
      },
    });

    // --- Observability. ---
    this.monitoring = new EdgeMonitoring(this, 'Monitoring', {
      deployment: config.deployment,
      loadBalancerFullName: this.loadBalancer.loadBalancerFullName,
      targetGroupFullName: this.targetGroup.targetGroupFullName,
      clusterName: this.cluster.clusterName,
      serviceName: this.service.serviceName,
      minTasks: e.minTasks,
      email: config.alarms.email,
      keyServices: props.keyServices.map((k, i) => ({
        region: k.region,
        label: k.region ?? (i === 0 ? 'key service' : `key service ${i + 1}`),
        functionName: k.functionName,
        keySpecs: k.keySpecs,
      })),
    });

    new CfnOutput(this, 'LoadBalancerDnsName', { value: this.loadBalancer.loadBalancerDnsName, description: 'Point the hostnames here (CNAME or Route 53 alias)' });
    new CfnOutput(this, 'CertificatePrefix', { value: prefix, description: 'SSM prefix the edge reads certificates from' });
    new CfnOutput(this, 'DashboardName', { value: `keyless-${config.deployment}` });
    new CfnOutput(this, 'MetricsNamespace', { value: METRICS.edgeNamespace });
  }
}

/** Patterns of a .dockerignore file (comments and blank lines dropped). */
export function readIgnoreFile(file: string): string[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}
