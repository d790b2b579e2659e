/**
 * The session-ticket key store of one region (docs/key-service-protocol.md, "Session-ticket keys"):
 * SSM Parameter Store, one Advanced-tier parameter per epoch under `/keyless/<deployment>/ticket-keys/`,
 * each holding the KMS ciphertext of a random key and deleted by its Expiration policy; a dedicated
 * symmetric KMS key that only encrypts and decrypts those keys; an SSM interface endpoint in the
 * key service's isolated VPC.
 *
 * Who can do what:
 *   - the key-service role (grantKeyService): ssm:GetParameter, ssm:PutParameter and
 *     ssm:DeleteParameter on the store's path only, through the SSM endpoint; kms:Encrypt and
 *     kms:Decrypt on the ticket KMS key only with the encryption context naming this deployment,
 *     through the KMS endpoint;
 *   - the account's IAM administrators: administer the key, never use it;
 *   - nobody else: no statement names the store's parameters or the key.
 *
 * Each region has its own store and key: a ticket from one region resumes only there (elsewhere it
 * is a full handshake, counted at the edge).
 */
import { Duration, RemovalPolicy, Stack, Tags } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { KEY_ADMIN_ACTIONS } from './kms-keys';
import { acknowledge, nagResource } from './nag';

/** The parameter path of a deployment's ticket keys (KEYLESS_TICKET_PARAMETER_PREFIX). */
export function ticketParameterPrefix(deployment: string): string {
  return `/keyless/${deployment}/ticket-keys/`;
}

/** The alias of a deployment's ticket-key KMS key. */
export function ticketKeyAlias(deployment: string): string {
  return `alias/keyless/${deployment}/ticket-keys`;
}

/** Encryption-context key naming the deployment (lambdas/key-service/ticket-key-envelope.ts). */
export const TICKET_CONTEXT_DEPLOYMENT = 'keyless:deployment';

/** SSM actions the key service needs on its store: read, conditional create, sweep. */
export const TICKET_STORE_SSM_ACTIONS = ['ssm:GetParameter', 'ssm:PutParameter', 'ssm:DeleteParameter'];
/** KMS actions the key service needs on the ticket key. */
export const TICKET_KEY_KMS_ACTIONS = ['kms:Encrypt', 'kms:Decrypt'];

export interface TicketKeyStoreProps {
  readonly deployment: string;
  /** The key service's isolated VPC and subnets: the SSM endpoint goes there. */
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  /** The key-service function's security group: gets egress to the SSM endpoint on 443. */
  readonly functionSecurityGroup: ec2.ISecurityGroup;
  /** The KMS interface endpoint the key service reaches KMS through (aws:SourceVpce, endpoint policy). */
  readonly kmsEndpoint: ec2.InterfaceVpcEndpoint;
  readonly deletionWindowDays: number;
  /** KEYLESS_TICKET_EPOCH_SECONDS (default 3600). */
  readonly epochSeconds?: number;
  /** KEYLESS_TICKET_EPOCHS_ACCEPTED (default 2). */
  readonly epochsAccepted?: number;
}

export class TicketKeyStore extends Construct {
  readonly key: kms.Key;
  readonly ssmEndpoint: ec2.InterfaceVpcEndpoint;
  readonly parameterPrefix: string;
  /** ARN pattern of every parameter of the store. */
  readonly parameterArns: string;
  private readonly props: TicketKeyStoreProps;

  constructor(scope: Construct, id: string, props: TicketKeyStoreProps) {
    super(scope, id);
    this.props = props;
    const stack = Stack.of(this);
    this.parameterPrefix = ticketParameterPrefix(props.deployment);
    this.parameterArns = stack.formatArn({
      service: 'ssm',
      resource: 'parameter',
      resourceName: `${this.parameterPrefix.slice(1)}*`,
    });

    this.key = new kms.Key(this, 'Key', {
      description: `keyless ${props.deployment}: session-ticket key envelope (Encrypt/Decrypt by the key service only, bound to the deployment by encryption context)`,
      keySpec: kms.KeySpec.SYMMETRIC_DEFAULT,
      keyUsage: kms.KeyUsage.ENCRYPT_DECRYPT,
      enableKeyRotation: true,
      pendingWindow: Duration.days(props.deletionWindowDays),
      removalPolicy: RemovalPolicy.RETAIN,
      policy: new iam.PolicyDocument({
        statements: [
          new iam.PolicyStatement({
            sid: 'AccountAdministersKeyButCannotUseIt',
            principals: [new iam.AccountRootPrincipal()],
            actions: KEY_ADMIN_ACTIONS.filter((a) => a !== 'kms:ReplicateKey' && a !== 'kms:UpdatePrimaryRegion'),
            resources: ['*'],
          }),
        ],
      }),
    });
    new kms.Alias(this, 'KeyAlias', { aliasName: ticketKeyAlias(props.deployment), targetKey: this.key });
    Tags.of(this.key).add('keyless:deployment', props.deployment);

    const endpointSg = new ec2.SecurityGroup(this, 'SsmEndpointSecurityGroup', {
      vpc: props.vpc,
      description: 'SSM interface endpoint: ingress only from the key-service function on 443',
      allowAllOutbound: false,
    });
    props.functionSecurityGroup.connections.allowTo(
      endpointSg,
      ec2.Port.tcp(443),
      'HTTPS to the SSM endpoint (ticket-key store)',
    );
    this.ssmEndpoint = new ec2.InterfaceVpcEndpoint(this, 'SsmEndpoint', {
      vpc: props.vpc,
      service: ec2.InterfaceVpcEndpointAwsService.SSM,
      privateDnsEnabled: true,
      subnets: props.subnets,
      securityGroups: [endpointSg],
      open: false,
    });
  }

  /**
   * Lets the key-service role use the store: identity policy, the ticket key's policy, and both
   * endpoint policies each name the role and nothing more than the store needs.
   */
  grantKeyService(role: iam.IRole): void {
    const context = {
      [`kms:EncryptionContext:${TICKET_CONTEXT_DEPLOYMENT}`]: this.props.deployment,
      'kms:EncryptionAlgorithm': 'SYMMETRIC_DEFAULT',
    };
    const policy = new iam.Policy(this, 'KeyServiceAccess', {
      roles: [role],
      statements: [
        new iam.PolicyStatement({
          sid: 'TicketKeyStore',
          actions: TICKET_STORE_SSM_ACTIONS,
          resources: [this.parameterArns],
        }),
        new iam.PolicyStatement({
          sid: 'TicketKeyEnvelope',
          actions: TICKET_KEY_KMS_ACTIONS,
          resources: [this.key.keyArn],
          conditions: { StringEquals: context },
        }),
      ],
    });
    acknowledge(
      policy,
      `AwsSolutions-IAM5[Resource::${nagResource(this, this.parameterArns)}]`,
      "One parameter per epoch is created at run time, so the grant covers the store's path (the deployment's ticket-keys prefix) and nothing else.",
    );
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'KeyServiceEncryptsTicketKeys',
        principals: [new iam.AccountRootPrincipal()],
        actions: TICKET_KEY_KMS_ACTIONS,
        resources: ['*'],
        conditions: {
          ArnEquals: { 'aws:PrincipalArn': role.roleArn },
          StringEquals: { 'aws:SourceVpce': this.props.kmsEndpoint.vpcEndpointId, ...context },
        },
      }),
    );
    this.ssmEndpoint.addToPolicy(
      new iam.PolicyStatement({
        sid: 'OnlyTheKeyServiceRoleOnItsStore',
        principals: [new iam.ArnPrincipal(role.roleArn)],
        actions: TICKET_STORE_SSM_ACTIONS,
        resources: [this.parameterArns],
      }),
    );
    // Any key of the account, as the endpoint's other statement: naming this key here would make
    // the key policy (which names the endpoint) and the endpoint policy depend on each other.
    this.props.kmsEndpoint.addToPolicy(
      new iam.PolicyStatement({
        sid: 'KeyServiceTicketKeyEnvelope',
        principals: [new iam.ArnPrincipal(role.roleArn)],
        actions: TICKET_KEY_KMS_ACTIONS,
        resources: [Stack.of(this).formatArn({ service: 'kms', resource: 'key', resourceName: '*' })],
      }),
    );
  }

  /** The key service's environment for ticket keys. */
  environment(): Record<string, string> {
    return {
      KEYLESS_TICKET_KEY_ID: this.key.keyArn,
      KEYLESS_TICKET_PARAMETER_PREFIX: this.parameterPrefix,
      KEYLESS_TICKET_EPOCH_SECONDS: String(this.props.epochSeconds ?? 3600),
      KEYLESS_TICKET_EPOCHS_ACCEPTED: String(this.props.epochsAccepted ?? 2),
    };
  }
}
