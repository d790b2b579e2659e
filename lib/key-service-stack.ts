/**
 * The key service of one region (DESIGN §1, §3): an isolated VPC with no route anywhere but the KMS
 * interface endpoint, the key-service Lambda behind a published version and alias, and the
 * deployment's KMS keys (primaries in the first region, multi-Region replicas elsewhere).
 */
import * as path from 'node:path';
import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, LogLevel as EsbuildLogLevel } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import type { KeylessConfig } from './config';
import { aliasArnFor, KeylessKeys } from './kms-keys';
import { KeyServiceAlarms } from './monitoring';
import { acknowledge, explicitAzsChosenByOperator, nagResource } from './nag';
import { KEY_SERVICE_ALIAS, METRICS } from './naming';
import { REPO_PATHS, repoRoot } from './paths';
import { TicketKeyStore } from './ticket-key-store';

export interface KeyServiceStackProps extends StackProps {
  readonly config: KeylessConfig;
  /** Region label used in names and for sizing checks (undefined for an environment-agnostic stack). */
  readonly regionName?: string;
  /** Multi-region deployment: create multi-Region primary keys here, or replicas of `primary`'s keys. */
  readonly multiRegion: boolean;
  /** The first region's key-service stack, whose keys this stack replicates. */
  readonly primary?: KeyServiceStack;
}

/** Lambda's limit on the total size of a function's environment variables. */
export const LAMBDA_ENV_LIMIT_BYTES = 4096;

export class KeyServiceStack extends Stack {
  readonly vpc: ec2.Vpc;
  readonly kmsEndpoint: ec2.InterfaceVpcEndpoint;
  readonly role: iam.Role;
  readonly fn: NodejsFunction;
  readonly alias: lambda.Alias;
  readonly keys: KeylessKeys;
  readonly functionSecurityGroup: ec2.SecurityGroup;
  readonly alarms: KeyServiceAlarms;

  constructor(scope: Construct, id: string, props: KeyServiceStackProps) {
    super(scope, id, props);
    const { config } = props;
    const ks = config.keyService;
    const root = repoRoot();
    const azs = props.regionName ? config.availabilityZones[props.regionName] : undefined;

    // --- Network: isolated subnets only. No internet gateway, no NAT, no route out of the VPC. ---
    const flowLogGroup = new logs.LogGroup(this, 'FlowLogs', {
      retention: ks.logRetentionDays,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(ks.vpcCidr),
      ...(azs ? { availabilityZones: [...azs] } : { maxAzs: 2 }),
      natGateways: 0,
      subnetConfiguration: [{ name: 'KeyService', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
      restrictDefaultSecurityGroup: true,
      flowLogs: {
        All: { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogGroup), trafficType: ec2.FlowLogTrafficType.ALL },
      },
    });
    const isolated: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
    if (azs) explicitAzsChosenByOperator(this.vpc);

    // --- Security groups: the function may talk to the KMS endpoint on 443 and to nothing else. ---
    this.functionSecurityGroup = new ec2.SecurityGroup(this, 'FunctionSecurityGroup', {
      vpc: this.vpc,
      description: 'keyless key service: egress only to the KMS interface endpoint on 443',
      allowAllOutbound: false,
    });
    const endpointSg = new ec2.SecurityGroup(this, 'KmsEndpointSecurityGroup', {
      vpc: this.vpc,
      description: 'KMS interface endpoint: ingress only from the key-service function on 443',
      allowAllOutbound: false,
    });
    this.functionSecurityGroup.connections.allowTo(endpointSg, ec2.Port.tcp(443), 'HTTPS to the KMS endpoint');

    this.kmsEndpoint = this.vpc.addInterfaceEndpoint('KmsEndpoint', {
      service: ec2.InterfaceVpcEndpointAwsService.KMS,
      privateDnsEnabled: true,
      subnets: isolated,
      securityGroups: [endpointSg],
      open: false,
    });

    // --- Execution role: logging, Lambda's VPC networking, and (below) the KMS actions of its modes. ---
    const logGroup = new logs.LogGroup(this, 'FunctionLogs', {
      retention: ks.logRetentionDays,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const kmsDocument = new iam.PolicyDocument();
    this.role = new iam.Role(this, 'FunctionRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'keyless key service: KMS operations on the designated keys only',
      inlinePolicies: {
        Logging: new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              sid: 'WriteOwnLogs',
              actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
              resources: [logGroup.logGroupArn],
            }),
          ],
        }),
        VpcNetworking: new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              sid: 'LambdaVpcNetworkInterfaces',
              actions: [
                'ec2:CreateNetworkInterface',
                'ec2:DescribeNetworkInterfaces',
                'ec2:DescribeSubnets',
                'ec2:DeleteNetworkInterface',
                'ec2:AssignPrivateIpAddresses',
                'ec2:UnassignPrivateIpAddresses',
              ],
              resources: ['*'],
            }),
          ],
        }),
        KeyOperations: kmsDocument,
      },
    });
    acknowledge(
      this.role,
      'AwsSolutions-IAM5[Resource::*]',
      'The EC2 network-interface actions Lambda needs to attach a function to a VPC do not support resource-level permissions (same grant as the AWSLambdaVPCAccessExecutionRole managed policy, written inline to avoid IAM4).',
    );

    // --- Keys and their policies (need the role and the endpoint). ---
    this.keys = new KeylessKeys(this, 'Keys', {
      deployment: config.deployment,
      keys: config.keys,
      deletionWindowDays: ks.keyDeletionWindowDays,
      multiRegion: props.multiRegion && props.primary === undefined,
      replicaOf: props.primary?.keys,
      user: { roleArn: this.role.roleArn, vpcEndpointId: this.kmsEndpoint.vpcEndpointId },
      operators: config.operators,
    });
    kmsDocument.addStatements(...this.keys.identityStatements());
    const anyKey = this.formatArn({ service: 'kms', resource: 'key', resourceName: '*' });
    acknowledge(
      this.role,
      `AwsSolutions-IAM5[Resource::${nagResource(this, anyKey)}]`,
      'KMS permissions follow aliases (kms:ResourceAliases), not key ARNs, so that key rotation by alias swap needs no IAM change; every statement is bound to the deployment\'s aliases and algorithms, and each key policy additionally requires this role and the VPC endpoint.',
    );

    // Endpoint policy: through this endpoint, only this role, only its KMS actions, only this account's keys.
    this.kmsEndpoint.addToPolicy(
      new iam.PolicyStatement({
        sid: 'OnlyTheKeyServiceRole',
        principals: [new iam.ArnPrincipal(this.role.roleArn)],
        actions: this.keys.keyServiceActions(),
        resources: [anyKey],
      }),
    );

    // --- The function. ---
    const keysJson = this.keys.keysConfig();
    if (keysJson.length === 0) {
      throw new Error(
        'keyless: no key can be served yet (sealed keys without sealedKey/publicKey are not provisioned); configure at least one "kms" key or provision the sealed key first',
      );
    }
    // Session-ticket keys: random per epoch, KMS ciphertext in SSM with expiry (lib/ticket-key-store.ts).
    const ticketKeys = new TicketKeyStore(this, 'TicketKeys', {
      deployment: config.deployment,
      vpc: this.vpc,
      subnets: isolated,
      functionSecurityGroup: this.functionSecurityGroup,
      kmsEndpoint: this.kmsEndpoint,
      deletionWindowDays: ks.keyDeletionWindowDays,
    });
    ticketKeys.grantKeyService(this.role);
    const environment: Record<string, string> = {
      KEYLESS_KEYS: Stack.of(this).toJsonString(keysJson),
      ...ticketKeys.environment(),
      KEYLESS_DEPLOYMENT: config.deployment,
      POWERTOOLS_SERVICE_NAME: 'keyless-key-service',
      POWERTOOLS_METRICS_NAMESPACE: METRICS.keyServiceNamespace,
      NODE_OPTIONS: '--enable-source-maps',
    };
    checkEnvironmentSize(environment, this.keys, config.deployment);

    this.fn = new NodejsFunction(this, 'Function', {
      description: `keyless ${config.deployment}: key service (KMS-backed private-key operations for the TLS edge)`,
      entry: path.join(root, REPO_PATHS.keyServiceEntry),
      handler: 'handler',
      projectRoot: root,
      depsLockFilePath: path.join(root, REPO_PATHS.lockFile),
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: ks.memoryMiB,
      timeout: Duration.seconds(ks.timeoutSeconds),
      reservedConcurrentExecutions: ks.reservedConcurrency,
      role: this.role,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      applicationLogLevelV2: lambda.ApplicationLogLevel.INFO,
      systemLogLevelV2: lambda.SystemLogLevel.WARN,
      vpc: this.vpc,
      vpcSubnets: isolated,
      securityGroups: [this.functionSecurityGroup],
      environment,
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
    // Not live before its keys, their policies and the KMS endpoint exist.
    this.fn.node.addDependency(this.keys, this.kmsEndpoint, ticketKeys);

    this.alias = new lambda.Alias(this, 'LiveAlias', {
      aliasName: KEY_SERVICE_ALIAS,
      version: this.fn.currentVersion,
      description: 'What the edge invokes; moves to each newly published version.',
      provisionedConcurrentExecutions: ks.provisionedConcurrency > 0 ? ks.provisionedConcurrency : undefined,
    });

    this.alarms = new KeyServiceAlarms(this, 'Alarms', {
      deployment: config.deployment,
      fn: this.fn,
      alias: this.alias,
      timeout: Duration.seconds(ks.timeoutSeconds),
      reservedConcurrency: ks.reservedConcurrency,
      keySpecs: this.keys.signingKeys.map((k) => k.keySpec),
      kmsQuotaUtilizationPercent: config.alarms.kmsQuotaUtilizationPercent,
      email: config.alarms.email,
    });

    new CfnOutput(this, 'KeyServiceAliasArn', { value: this.alias.functionArn, description: 'Qualified alias ARN the edge invokes' });
    new CfnOutput(this, 'KeyServiceRoleArn', { value: this.role.roleArn, description: 'Role named in the key policies (create rotated keys with the same policy)' });
    new CfnOutput(this, 'KmsEndpointId', { value: this.kmsEndpoint.vpcEndpointId, description: 'aws:SourceVpce value of the key policies' });
    for (const k of this.keys.allKeys()) {
      new CfnOutput(this, `Key${k.aliasName.replace(/[^A-Za-z0-9]/g, '')}`, { value: k.keyArn, description: `Key behind ${k.aliasName}` });
    }
  }
}

/**
 * Fail at synth, with numbers, when KEYLESS_KEYS would not fit Lambda's 4 KB environment (sealed
 * keys carry their ciphertext there). Token parts are sized with a worst-case region and account.
 */
function checkEnvironmentSize(env: Record<string, string>, keys: KeylessKeys, deployment: string): void {
  const longest = (aliasName: string): string => aliasArnFor(aliasName, 'ap-southeast-5', '123456789012', 'aws-us-gov');
  const sample = keys.keysConfig().map((e) => {
    const out: Record<string, string> = { ...e };
    if (out.keyId) out.keyId = longest(keys.signingKey(out.name).aliasName);
    if (out.wrappingKeyId && keys.wrappingKey) out.wrappingKeyId = longest(keys.wrappingKey.aliasName);
    return out;
  });
  const sized: Record<string, string> = { ...env, KEYLESS_KEYS: JSON.stringify(sample), KEYLESS_TICKET_KEY_ID: longest('key/00000000-0000-0000-0000-000000000000') };
  const bytes = Object.entries(sized).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
  if (bytes > LAMBDA_ENV_LIMIT_BYTES) {
    throw new Error(
      `keyless ${deployment}: the key-service environment would be about ${bytes} bytes, over Lambda's ${LAMBDA_ENV_LIMIT_BYTES}-byte limit ` +
        `(KEYLESS_KEYS alone is ${Buffer.byteLength(sized.KEYLESS_KEYS)} bytes; each sealed RSA key adds its ciphertext and public key). ` +
        'Serve fewer sealed keys per deployment, prefer custody "kms", or use RSA 2048 for sealed keys.',
    );
  }
}
