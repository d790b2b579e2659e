/**
 * The key service of one region: an isolated VPC whose only ways out are the KMS and SSM interface endpoints,
 * the key-service Lambda behind a published version and alias, and the deployment's KMS keys
 * (primaries in the first region, multi-Region replicas elsewhere), and the session-ticket key store
 * of the region. Each concern is one construct;
 * this stack wires them together.
 */
import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import type { AlarmConfig, CustodyKey, KeyServiceConfig } from './config';
import { KeyServiceFunction, keyServiceBaseEnvironment } from './key-service-function';
import { KeyServiceNetwork } from './key-service-network';
import { aliasArnFor, KeylessKeys } from './kms-keys';
import { KeyServiceAlarms } from './monitoring';
import { acknowledge, nagResource } from './nag';
import { TicketKeyStore } from './ticket-key-store';

export interface KeyServiceStackProps extends StackProps {
  readonly deployment: string;
  readonly keys: readonly CustodyKey[];
  readonly keyService: KeyServiceConfig;
  readonly alarms: AlarmConfig;
  /** IAM principals that may sign CSRs and provision sealed keys (see `KeylessKeys`). */
  readonly operators?: readonly string[];
  /** Explicit AZ names of this region, if configured. */
  readonly availabilityZones?: readonly string[];
  /** Multi-region deployment: create multi-Region primary keys here, or replicas of `primary`'s keys. */
  readonly multiRegion: boolean;
  /** The first region's key-service stack, whose keys this stack replicates. */
  readonly primary?: KeyServiceStack;
  /** Fixed function name: the edge in another account computes the alias ARN from it. */
  readonly functionName?: string;
}

/** Lambda's limit on the total size of a function's environment variables. */
export const LAMBDA_ENV_LIMIT_BYTES = 4096;

export class KeyServiceStack extends Stack {
  readonly network: KeyServiceNetwork;
  readonly keys: KeylessKeys;
  readonly keyService: KeyServiceFunction;
  readonly alarms: KeyServiceAlarms;

  private readonly configuredAzs?: readonly string[];

  /** Configured AZ names win over a lookup (stacks with an explicit account would need AWS at synth). */
  override get availabilityZones(): string[] {
    return this.configuredAzs ? [...this.configuredAzs] : super.availabilityZones;
  }

  constructor(scope: Construct, id: string, props: KeyServiceStackProps) {
    super(scope, id, props);
    this.configuredAzs = props.availabilityZones;
    const ks = props.keyService;

    this.network = new KeyServiceNetwork(this, 'Network', {
      vpcCidr: ks.vpcCidr,
      availabilityZones: props.availabilityZones,
      flowLogRetentionDays: ks.logRetentionDays,
    });

    this.keys = new KeylessKeys(this, 'Keys', {
      deployment: props.deployment,
      keys: props.keys,
      deletionWindowDays: ks.keyDeletionWindowDays,
      multiRegion: props.multiRegion && props.primary === undefined,
      replicaOf: props.primary?.keys,
      operators: props.operators,
    });
    const keysJson = this.keys.keysConfig();
    if (keysJson.length === 0) {
      throw new Error(
        'keyless: no key can be served yet (sealed keys without sealedKey/publicKey are not provisioned); configure at least one "kms" key or provision the sealed key first',
      );
    }
    // Session-ticket keys: random per epoch, KMS ciphertext in SSM with expiry (lib/ticket-key-store.ts).
    const ticketKeys = new TicketKeyStore(this, 'TicketKeys', {
      deployment: props.deployment,
      vpc: this.network.vpc,
      subnets: this.network.subnets,
      functionSecurityGroup: this.network.functionSecurityGroup,
      kmsEndpoint: this.network.kmsEndpoint,
      deletionWindowDays: ks.keyDeletionWindowDays,
    });
    const environment: Record<string, string> = {
      KEYLESS_KEYS: Stack.of(this).toJsonString(keysJson),
      ...ticketKeys.environment(),
    };
    checkEnvironmentSize(environment, this.keys, props.deployment);

    this.keyService = new KeyServiceFunction(this, 'KeyService', {
      deployment: props.deployment,
      vpc: this.network.vpc,
      subnets: this.network.subnets,
      securityGroup: this.network.functionSecurityGroup,
      memoryMiB: ks.memoryMiB,
      timeoutSeconds: ks.timeoutSeconds,
      reservedConcurrency: ks.reservedConcurrency,
      provisionedConcurrency: ks.provisionedConcurrency,
      logRetentionDays: ks.logRetentionDays,
      functionName: props.functionName,
      environment,
    });
    const kmsEndpoint = this.network.kmsEndpoint;
    this.keys.grantKeyService(this.keyService.role, kmsEndpoint);
    ticketKeys.grantKeyService(this.keyService.role);
    // Not live before its keys, their policies, the ticket-key store and the KMS endpoint exist.
    this.keyService.fn.node.addDependency(this.keys, kmsEndpoint, ticketKeys);

    const anyKey = this.formatArn({ service: 'kms', resource: 'key', resourceName: '*' });
    acknowledge(
      this.keyService.role,
      `AwsSolutions-IAM5[Resource::${nagResource(this, anyKey)}]`,
      "KMS permissions follow aliases (kms:ResourceAliases) and the deployment tag, not key ARNs, so that key rotation by alias swap needs no IAM change; every statement is bound to the deployment's aliases, tag and algorithms, and each key policy additionally requires this role and the VPC endpoint.",
    );
    // Endpoint policy: through this endpoint, only this role, only its KMS actions, only this account's keys.
    kmsEndpoint.addToPolicy(
      new iam.PolicyStatement({
        sid: 'OnlyTheKeyServiceRole',
        principals: [new iam.ArnPrincipal(this.keyService.role.roleArn)],
        actions: this.keys.keyServiceActions(),
        resources: [anyKey],
      }),
    );

    this.alarms = new KeyServiceAlarms(this, 'Alarms', {
      deployment: props.deployment,
      fn: this.keyService.fn,
      alias: this.keyService.alias,
      timeout: Duration.seconds(ks.timeoutSeconds),
      reservedConcurrency: ks.reservedConcurrency,
      keySpecs: this.keys.signingKeys.map((k) => k.keySpec),
      kmsQuotaUtilizationPercent: props.alarms.kmsQuotaUtilizationPercent,
      email: props.alarms.email,
    });

    new CfnOutput(this, 'KeyServiceAliasArn', {
      value: this.keyService.alias.functionArn,
      description: 'Qualified alias ARN the edge invokes',
    });
    new CfnOutput(this, 'KeyServiceRoleArn', {
      value: this.keyService.role.roleArn,
      description: 'Role named in the key policies (create rotated keys with the same policy)',
    });
    new CfnOutput(this, 'KmsEndpointId', {
      value: kmsEndpoint.vpcEndpointId,
      description: 'aws:SourceVpce value of the key policies',
    });
    for (const k of this.keys.allKeys()) {
      new CfnOutput(this, `Key${k.aliasName.replace(/[^A-Za-z0-9]/g, '')}`, {
        value: k.keyArn,
        description: `Key behind ${k.aliasName}`,
      });
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
  const sized: Record<string, string> = {
    ...env,
    ...keyServiceBaseEnvironment(deployment),
    KEYLESS_KEYS: JSON.stringify(sample),
    KEYLESS_TICKET_KEY_ID: longest('key/00000000-0000-0000-0000-000000000000'),
  };
  const bytes = Object.entries(sized).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
  if (bytes > LAMBDA_ENV_LIMIT_BYTES) {
    throw new Error(
      `keyless ${deployment}: the key-service environment would be about ${bytes} bytes, over Lambda's ${LAMBDA_ENV_LIMIT_BYTES}-byte limit ` +
        `(KEYLESS_KEYS alone is ${Buffer.byteLength(sized.KEYLESS_KEYS)} bytes; each sealed RSA key adds its ciphertext and public key). ` +
        'Serve fewer sealed keys per deployment, prefer custody "kms", or use RSA 2048 for sealed keys.',
    );
  }
}
