/**
 * The edge fleet's compute: the ECS cluster, the task role (read certificates; invoke rights are
 * granted by the key services), the Fargate task definition built from `edge-proxy/Dockerfile`,
 * and the service registered with the load balancer's target group. No KMS permission anywhere.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Duration, IgnoreMode, RemovalPolicy, Size, Stack } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledge, nagResource } from './nag';
import { ADMIN_PORT, EDGE_PORT, LIVENESS_CHECK_COMMAND } from './naming';
import { REPO_PATHS, repoRoot } from './paths';

/**
 * A rolling deploy may run this share of the desired count at once (ECS deployment maximumPercent), so
 * the fleet's KMS budget is split over maxTasks × MAX_HEALTHY_PERCENT / 100 tasks (edge-stack.ts).
 */
export const MAX_HEALTHY_PERCENT = 200;

export const EDGE_CONTAINER_NAME = 'edge';

export interface EdgeServiceProps {
  readonly deployment: string;
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly targetGroup: elbv2.INetworkTargetGroup;
  readonly cpu: number;
  readonly memoryMiB: number;
  readonly cpuArchitecture: 'ARM64' | 'X86_64';
  readonly stopTimeoutSeconds: number;
  readonly logRetentionDays: number;
  /** SSM prefix of the deployment's certificates (read-only for the task). */
  readonly certificatePrefix: string;
  /** The container's environment (the edge's runtime contract, see edge-proxy/src/config.ts). */
  readonly environment: Record<string, string>;
  /** Fixed role name: the key service's resource policy (across accounts) and the invoke SCP name it. */
  readonly taskRoleName?: string;
  /**
   * Tasks at creation. Absent (the normal case): the template carries no DesiredCount, so deploys
   * never reset what autoscaling chose. 0: the service exists but runs nothing (first deploy,
   * before any certificate exists).
   */
  readonly desiredCount?: 0;
}

export class EdgeService extends Construct {
  readonly cluster: ecs.Cluster;
  readonly taskRole: iam.Role;
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly service: ecs.FargateService;

  constructor(scope: Construct, id: string, props: EdgeServiceProps) {
    super(scope, id);
    const root = repoRoot();
    this.taskRole = this.createTaskRole(props);

    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: props.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });
    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetentionDays,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'TaskDefinition', {
      cpu: props.cpu,
      memoryLimitMiB: props.memoryMiB,
      runtimePlatform: {
        cpuArchitecture: props.cpuArchitecture === 'ARM64' ? ecs.CpuArchitecture.ARM64 : ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
      taskRole: this.taskRole,
    });
    this.taskDefinition.addVolume({ name: 'tmp' });

    const container = this.taskDefinition.addContainer(EDGE_CONTAINER_NAME, {
      image: ecs.ContainerImage.fromAsset(root, {
        file: REPO_PATHS.edgeDockerfile,
        platform: props.cpuArchitecture === 'ARM64' ? Platform.LINUX_ARM64 : Platform.LINUX_AMD64,
        // The build context is the repository root. BuildKit applies edge-proxy/Dockerfile.dockerignore
        // to a manual `docker build -f edge-proxy/Dockerfile .`; the CDK stages the asset with the
        // same patterns, so both builds see the same context.
        exclude: readIgnoreFile(path.join(root, REPO_PATHS.edgeDockerignore)),
        ignoreMode: IgnoreMode.DOCKER,
        displayName: `keyless edge (${props.deployment})`,
      }),
      essential: true,
      user: '1000:1000',
      readonlyRootFilesystem: true,
      environment: props.environment,
      portMappings: [
        { containerPort: EDGE_PORT, protocol: ecs.Protocol.TCP, name: 'tls' },
        { containerPort: ADMIN_PORT, protocol: ecs.Protocol.TCP, name: 'admin' },
      ],
      // Liveness (docs/deploy.md, "Health checks"): the admin listener answers at all. The same
      // command as the image's HEALTHCHECK. Key-service reachability is readiness, the NLB's job.
      healthCheck: {
        command: ['CMD', ...LIVENESS_CHECK_COMMAND],
        interval: Duration.seconds(15),
        timeout: Duration.seconds(5),
        retries: 3,
        startPeriod: Duration.seconds(30),
      },
      stopTimeout: Duration.seconds(props.stopTimeoutSeconds),
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

    this.service = new ecs.FargateService(this, 'Service', {
      cluster: this.cluster,
      taskDefinition: this.taskDefinition,
      desiredCount: props.desiredCount,
      minHealthyPercent: 100,
      maxHealthyPercent: MAX_HEALTHY_PERCENT,
      circuitBreaker: { enable: true, rollback: true },
      healthCheckGracePeriod: Duration.seconds(60),
      assignPublicIp: false,
      vpcSubnets: props.subnets,
      securityGroups: [props.securityGroup],
      enableExecuteCommand: false,
      propagateTags: ecs.PropagatedTagSource.SERVICE,
      enableECSManagedTags: true,
      platformVersion: ecs.FargatePlatformVersion.LATEST,
      availabilityZoneRebalancing: ecs.AvailabilityZoneRebalancing.ENABLED,
    });
    props.targetGroup.addTarget(
      this.service.loadBalancerTarget({ containerName: EDGE_CONTAINER_NAME, containerPort: EDGE_PORT }),
    );
  }

  /** Read this deployment's certificates; nothing else until a key service grants invoke. */
  private createTaskRole(props: EdgeServiceProps): iam.Role {
    const stack = Stack.of(this);
    const prefixPath = props.certificatePrefix.replace(/^\/|\/$/g, '');
    const certParams = stack.formatArn({ service: 'ssm', resource: 'parameter', resourceName: `${prefixPath}/*` });
    const role = new iam.Role(this, 'TaskRole', {
      roleName: props.taskRoleName,
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com', {
        conditions: {
          ArnLike: { 'aws:SourceArn': stack.formatArn({ service: 'ecs', resource: '*' }) },
          StringEquals: { 'aws:SourceAccount': stack.account },
        },
      }),
      description: 'keyless edge task: invoke the key service, read certificates; no KMS, no private keys',
      inlinePolicies: {
        Certificates: new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              sid: 'ListCertificates',
              actions: ['ssm:GetParametersByPath'],
              resources: [
                stack.formatArn({ service: 'ssm', resource: 'parameter', resourceName: prefixPath }),
                certParams,
              ],
            }),
          ],
        }),
      },
    });
    acknowledge(
      role,
      `AwsSolutions-IAM5[Resource::${nagResource(this, certParams)}]`,
      'Certificates are public data stored one parameter each under the deployment prefix; the edge lists that prefix with GetParametersByPath (and nothing else) so that certificates can be added and rotated without an IAM change.',
    );
    return role;
  }

  /** Let the tasks invoke key services given by ARN (key services in another account). */
  allowInvoke(aliasArns: readonly string[]): void {
    iam.Grant.addToPrincipal({
      grantee: this.taskRole,
      actions: ['lambda:InvokeFunction'],
      resourceArns: [...aliasArns],
    });
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
