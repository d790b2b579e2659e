/**
 * The key-service Lambda: its execution role (own logs and Lambda's VPC networking only; the KMS
 * permissions come from `KeylessKeys.grantKeyService`), the function bundled by the local esbuild,
 * and the `live` alias the edge invokes. Invoke rights are granted with `grantInvoke`.
 */
import * as path from 'node:path';
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, LogLevel as EsbuildLogLevel } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledge, nagResource } from './nag';
import { KEY_SERVICE_ALIAS, KEY_SERVICE_POWERTOOLS_SERVICE, METRICS } from './naming';
import { REPO_PATHS, repoRoot } from './paths';

export interface KeyServiceFunctionProps {
  readonly deployment: string;
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly memoryMiB: number;
  readonly timeoutSeconds: number;
  /** Absent: the function shares the account's unreserved concurrency (docs/deploy.md). */
  readonly reservedConcurrency?: number;
  /** 0: none. */
  readonly provisionedConcurrency: number;
  readonly logRetentionDays: number;
  /** Fixed function name (cross-account deployments, where the edge account computes the ARN). */
  readonly functionName?: string;
  /** The key service's own variables (KEYLESS_KEYS, ...); the Powertools ones are added here. */
  readonly environment: Record<string, string>;
}

export class KeyServiceFunction extends Construct {
  readonly role: iam.Role;
  readonly fn: NodejsFunction;
  readonly alias: lambda.Alias;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: KeyServiceFunctionProps) {
    super(scope, id);
    const root = repoRoot();
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetentionDays,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'keyless key service: KMS operations on the designated keys only',
      inlinePolicies: {
        Logging: new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              sid: 'WriteOwnLogs',
              actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
              resources: [this.logGroup.logGroupArn],
            }),
          ],
        }),
        VpcNetworking: vpcNetworkingPolicy(this, props),
      },
    });
    acknowledge(
      this.role,
      'AwsSolutions-IAM5[Resource::*]',
      'ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets support no resource-level permissions (AWS documents "*" for VPC Lambdas); interface creation is scoped to the function\'s own subnets and security group.',
    );
    acknowledge(
      this.role,
      `AwsSolutions-IAM5[Resource::${nagResource(this, anyNetworkInterface(this))}]`,
      'Lambda names the network interfaces it creates for the function at run time; AWS documents all interface ids of the account and region for DeleteNetworkInterface, else the function may lose its VPC access.',
    );

    this.fn = new NodejsFunction(this, 'Function', {
      description: `keyless ${props.deployment}: key service (KMS-backed private-key operations for the TLS edge)`,
      functionName: props.functionName,
      entry: path.join(root, REPO_PATHS.keyServiceEntry),
      handler: 'handler',
      projectRoot: root,
      depsLockFilePath: path.join(root, REPO_PATHS.lockFile),
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memoryMiB,
      timeout: Duration.seconds(props.timeoutSeconds),
      reservedConcurrentExecutions: props.reservedConcurrency,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      applicationLogLevelV2: lambda.ApplicationLogLevel.INFO,
      systemLogLevelV2: lambda.SystemLogLevel.WARN,
      vpc: props.vpc,
      vpcSubnets: props.subnets,
      securityGroups: [props.securityGroup],
      environment: { ...props.environment, ...keyServiceBaseEnvironment(props.deployment) },
      recursiveLoop: lambda.RecursiveLoop.TERMINATE,
      bundling: {
        forceDockerBundling: false,
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        target: 'node24',
        format: OutputFormat.CJS,
        bundleAwsSDK: true, // ship the SDK version the tests ran with, not the runtime's
        logLevel: EsbuildLogLevel.WARNING,
      },
    });

    this.alias = new lambda.Alias(this, 'LiveAlias', {
      aliasName: KEY_SERVICE_ALIAS,
      version: this.fn.currentVersion,
      description: 'What the edge invokes; moves to each newly published version.',
      provisionedConcurrentExecutions: props.provisionedConcurrency > 0 ? props.provisionedConcurrency : undefined,
    });
  }

  /**
   * Let `grantee` invoke the `live` alias. Invoke rights are signing rights (and, within the ticket
   * retention, session decryption): grant them to the edge task role only. A grantee in another
   * account gets a statement in the function's resource policy naming exactly it.
   */
  grantInvoke(grantee: iam.IGrantable): iam.Grant {
    return this.alias.grantInvoke(grantee);
  }
}

/** The variables every key-service function gets besides its keys (Powertools reads the POWERTOOLS_ ones). */
export function keyServiceBaseEnvironment(deployment: string): Record<string, string> {
  return {
    KEYLESS_DEPLOYMENT: deployment,
    POWERTOOLS_SERVICE_NAME: KEY_SERVICE_POWERTOOLS_SERVICE,
    POWERTOOLS_METRICS_NAMESPACE: METRICS.keyServiceNamespace,
    NODE_OPTIONS: '--enable-source-maps',
  };
}

/**
 * The EC2 actions Lambda needs to attach the function to its VPC, as narrow as the EC2 API allows:
 * network interfaces may only be created in the function's own subnets with its own security group;
 * the Describe actions support no resource-level permissions at all.
 */
function vpcNetworkingPolicy(scope: Construct, props: KeyServiceFunctionProps): iam.PolicyDocument {
  const stack = Stack.of(scope);
  const ec2Arn = (resource: string, name: string): string =>
    stack.formatArn({ service: 'ec2', resource, resourceName: name });
  const anyInterface = anyNetworkInterface(scope);
  const subnets = props.vpc.selectSubnets(props.subnets).subnetIds.map((id) => ec2Arn('subnet', id));
  return new iam.PolicyDocument({
    statements: [
      new iam.PolicyStatement({
        sid: 'CreateInterfacesInOwnSubnetsWithOwnSecurityGroup',
        actions: ['ec2:CreateNetworkInterface'],
        resources: [anyInterface, ...subnets, ec2Arn('security-group', props.securityGroup.securityGroupId)],
      }),
      new iam.PolicyStatement({
        sid: 'ManageOwnInterfaces',
        actions: ['ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
        resources: [anyInterface],
      }),
      new iam.PolicyStatement({
        sid: 'DescribeNetworking',
        actions: ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets'],
        resources: ['*'],
      }),
    ],
  });
}

function anyNetworkInterface(scope: Construct): string {
  return Stack.of(scope).formatArn({ service: 'ec2', resource: 'network-interface', resourceName: '*' });
}
