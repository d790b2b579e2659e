/**
 * The deployment's KMS signing and wrapping keys and the policies around them. The session-ticket
 * key and its store are lib/ticket-key-store.ts.
 *
 * `grantKeyService(role, endpoint)` writes both layers that must allow every cryptographic use:
 *   - the **key policy** (resource side) delegates to the account only for the key-service role
 *     (`aws:PrincipalArn`), only through the key service's VPC endpoint (`aws:SourceVpce`), only
 *     the operation of the key's mode and only with its allowed algorithms;
 *   - the role's **identity policy** names keys by alias (`kms:ResourceAliases`), never by key ARN,
 *     so rotating a key (new key, alias swap — docs/rotation.md) needs no IAM change, and requires
 *     the deployment's tag (`aws:ResourceTag/keyless:deployment`), which only key administrators
 *     can set, so an alias put on some other key does not make it usable.
 * Administration (describe, alias, policy, deletion) stays with the account's IAM administrators,
 * who get no signing, decryption or MAC permission from these policies; only the configured
 * operators may sign CSRs and provision sealed keys (see `operatorStatements`).
 */
import { Aws, Duration, RemovalPolicy, Stack, Tags } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import {
  SIGNING_ALGORITHMS,
  type CustodyKey,
  type KmsCustodyKey,
  type KmsKeySpec,
  type SealedCustodyKey,
} from './config';
import { aliasNames, DEPLOYMENT_TAG, SEALED_CONTEXT_KEY } from './naming';

/** Who may use the keys: the key-service role, through its VPC endpoint. */
export interface KeyUser {
  readonly roleArn: string;
  readonly vpcEndpointId: string;
}

/** A key of this region (a primary key or a replica of one). */
export interface RegionalKey {
  readonly keyArn: string;
  readonly aliasName: string;
  /** Alias ARN in this region: what the key service is configured with. */
  readonly aliasArn: string;
}

export interface SigningKey extends RegionalKey {
  readonly name: string;
  readonly keySpec: KmsKeySpec;
  readonly signingAlgorithms: readonly string[];
}

export interface KeylessKeysProps {
  readonly deployment: string;
  readonly keys: readonly CustodyKey[];
  readonly deletionWindowDays: number;
  /** Create multi-Region primary keys (the first region of a multi-region deployment). */
  readonly multiRegion: boolean;
  /** Replicate these primary keys into this stack's region instead of creating new ones. */
  readonly replicaOf?: KeylessKeys;
  /**
   * IAM principal ARNs (wildcards allowed) that may sign CSRs with the signing keys and provision
   * sealed keys. Absent: nobody can (add operators before issuing certificates).
   */
  readonly operators?: readonly string[];
}

/** Administrative actions for the account's IAM administrators: no Sign, Encrypt, Decrypt, GenerateMac, CreateGrant. */
export const KEY_ADMIN_ACTIONS = [
  'kms:Describe*',
  'kms:Get*',
  'kms:List*',
  'kms:CreateAlias',
  'kms:UpdateAlias',
  'kms:DeleteAlias',
  'kms:EnableKey',
  'kms:DisableKey',
  'kms:PutKeyPolicy',
  'kms:UpdateKeyDescription',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:RevokeGrant',
  'kms:ScheduleKeyDeletion',
  'kms:CancelKeyDeletion',
  'kms:EnableKeyRotation',
  'kms:DisableKeyRotation',
  'kms:RotateKeyOnDemand',
  'kms:ReplicateKey',
  'kms:UpdatePrimaryRegion',
];

/** KMS actions the key-service role holds, per key kind. */
export const KEY_SERVICE_ACTIONS = {
  kms: ['kms:Sign', 'kms:GetPublicKey'],
  sealed: ['kms:Decrypt'],
} as const;

/** Every algorithm a TLS signing key of any supported spec may use (the union of SIGNING_ALGORITHMS). */
const TLS_SIGNING_ALGORITHMS: string[] = [...new Set(Object.values(SIGNING_ALGORITHMS).flat())].sort();

export class KeylessKeys extends Construct {
  readonly signingKeys: readonly SigningKey[];
  /** Present when any key uses `sealed` custody. */
  readonly wrappingKey?: RegionalKey;
  readonly sealedKeys: readonly SealedCustodyKey[];
  /**
   * Alias prefix of the deployment's signing keys (`alias/keyless/<deployment>/keys/`). Key
   * generations that `keyless keys create` / `keyless rotate` make under it are served without a
   * redeploy (docs/rotation.md); present when the deployment has `kms` signing keys.
   */
  readonly generationAliasPrefix?: string;
  private readonly deployment: string;
  private readonly keyPolicies: Array<{ policy: iam.PolicyDocument; use: MakeKeyProps['use'] }> = [];

  constructor(scope: Construct, id: string, props: KeylessKeysProps) {
    super(scope, id);
    this.deployment = props.deployment;
    const stack = Stack.of(this);
    const replica = props.replicaOf;
    const admin = adminStatement(props.multiRegion || replica !== undefined);

    const make = (cid: string, p: MakeKeyProps, primaryArn: (k: KeylessKeys) => string): RegionalKey => {
      const aliasArn = stack.formatArn({
        service: 'kms',
        resource: 'alias',
        resourceName: p.aliasName.slice('alias/'.length),
      });
      const policy = new iam.PolicyDocument({ statements: [admin] });
      this.keyPolicies.push({ policy, use: p.use });
      let keyArn: string;
      if (replica) {
        const r = new kms.CfnReplicaKey(this, cid, {
          primaryKeyArn: primaryArn(replica),
          keyPolicy: policy,
          description: p.description,
          pendingWindowInDays: props.deletionWindowDays,
          enabled: true,
        });
        r.applyRemovalPolicy(RemovalPolicy.RETAIN);
        new kms.CfnAlias(this, `${cid}Alias`, { aliasName: p.aliasName, targetKeyId: r.attrKeyId });
        keyArn = r.attrArn;
        Tags.of(r).add(DEPLOYMENT_TAG, props.deployment);
      } else {
        const key = new kms.Key(this, cid, {
          description: p.description,
          keySpec: p.keySpec,
          keyUsage: p.keyUsage,
          enableKeyRotation: p.rotate,
          multiRegion: props.multiRegion,
          pendingWindow: Duration.days(props.deletionWindowDays),
          removalPolicy: RemovalPolicy.RETAIN,
          policy,
        });
        new kms.Alias(this, `${cid}Alias`, { aliasName: p.aliasName, targetKey: key });
        keyArn = key.keyArn;
        Tags.of(key).add(DEPLOYMENT_TAG, props.deployment);
      }
      return { keyArn, aliasName: p.aliasName, aliasArn };
    };

    // Signing keys (custody "kms").
    const signing: SigningKey[] = [];
    for (const k of props.keys.filter((x): x is KmsCustodyKey => x.custody === 'kms')) {
      const aliasName = aliasNames.signingKey(props.deployment, k.name);
      const rk = make(
        `SigningKey-${k.name}`,
        {
          aliasName,
          description: `keyless ${props.deployment}: TLS signing key "${k.name}" (${k.keySpec}, custody kms)`,
          keySpec: kms.KeySpec[k.keySpec],
          keyUsage: kms.KeyUsage.SIGN_VERIFY,
          rotate: false, // asymmetric keys cannot rotate automatically: rotation = new key + alias swap
          use: (user) => [
            ...signingKeyUseStatements(user, k.signingAlgorithms),
            ...operatorStatements(props.operators, user, { signingAlgorithms: k.signingAlgorithms }),
          ],
        },
        (p) => p.signingKey(k.name).keyArn,
      );
      signing.push({ ...rk, name: k.name, keySpec: k.keySpec, signingAlgorithms: k.signingAlgorithms });
    }
    this.signingKeys = signing;
    if (signing.length > 0) this.generationAliasPrefix = aliasNames.signingKey(props.deployment, '');

    // Wrapping key for sealed custody.
    this.sealedKeys = props.keys.filter((x): x is SealedCustodyKey => x.custody === 'sealed');
    if (this.sealedKeys.length > 0) {
      const names = this.sealedKeys.map((k) => k.name);
      this.wrappingKey = make(
        'SealedWrappingKey',
        {
          aliasName: aliasNames.sealedWrapping(props.deployment),
          description: `keyless ${props.deployment}: wraps sealed-custody RSA private keys (Decrypt only by the key service)`,
          keySpec: kms.KeySpec.SYMMETRIC_DEFAULT,
          keyUsage: kms.KeyUsage.ENCRYPT_DECRYPT,
          rotate: true,
          use: (user) => [
            wrappingKeyUseStatement(user, names),
            ...operatorStatements(props.operators, user, { sealedKeyNames: names }),
          ],
        },
        (p) => {
          if (!p.wrappingKey) throw new Error('the primary region has no sealed wrapping key');
          return p.wrappingKey.keyArn;
        },
      );
    }
  }

  signingKey(name: string): SigningKey {
    const k = this.signingKeys.find((x) => x.name === name);
    if (!k) throw new Error(`no signing key named "${name}"`);
    return k;
  }

  /** The KEYLESS_KEYS entries (runtime contract of the key service) for this region. */
  keysConfig(): Array<Record<string, string>> {
    const out: Array<Record<string, string>> = this.signingKeys.map((k) => ({
      name: k.name,
      custody: 'kms',
      keyId: k.aliasArn,
    }));
    for (const s of this.sealedKeys) {
      if (s.sealedKey === undefined || s.publicKey === undefined || !this.wrappingKey) continue;
      out.push({
        name: s.name,
        custody: 'sealed',
        wrappingKeyId: this.wrappingKey.aliasArn,
        sealedKey: s.sealedKey,
        publicKey: s.publicKey,
      });
    }
    // Any other key name N is the key behind <prefix>N: new key generations need no redeploy.
    if (this.generationAliasPrefix) out.push({ name: '*', custody: 'kms', aliasPrefix: this.generationAliasPrefix });
    return out;
  }

  /**
   * Let `role` use every key of this deployment the way its custody mode needs, and only through
   * `endpoint`: the key policies name the role and the endpoint, the role's identity policy names
   * the aliases, the deployment tag and the algorithms. Also writes the operators' statements,
   * which exclude this role.
   */
  grantKeyService(role: iam.IRole, endpoint: ec2.IVpcEndpoint): void {
    const user: KeyUser = { roleArn: role.roleArn, vpcEndpointId: endpoint.vpcEndpointId };
    for (const k of this.keyPolicies) k.policy.addStatements(...k.use(user));
    for (const statement of this.identityStatements()) role.addToPrincipalPolicy(statement);
  }

  /**
   * Identity-policy statements for the key-service role: the actions of each mode, on whichever key
   * currently carries the alias (`kms:ResourceAliases`) and the deployment tag, with the same
   * algorithm conditions as the key policies. `aws:SourceVpce` is enforced by the key policies
   * (putting it here too would make the role and the endpoint policy depend on each other).
   */
  private identityStatements(): iam.PolicyStatement[] {
    const tagged = { [`aws:ResourceTag/${DEPLOYMENT_TAG}`]: this.deployment };
    const stack = Stack.of(this);
    const anyKeyInThisAccountAndRegion = stack.formatArn({ service: 'kms', resource: 'key', resourceName: '*' });
    const statements: iam.PolicyStatement[] = [];
    // Group signing keys by algorithm set so that each statement states exactly what its aliases allow.
    const groups = new Map<string, { algs: readonly string[]; aliases: string[] }>();
    for (const k of this.signingKeys) {
      const id = k.signingAlgorithms.join(',');
      const g = groups.get(id) ?? { algs: k.signingAlgorithms, aliases: [] };
      g.aliases.push(k.aliasName);
      groups.set(id, g);
    }
    let i = 0;
    for (const g of groups.values()) {
      statements.push(
        new iam.PolicyStatement({
          sid: `SignTlsHandshakes${i++}`,
          actions: ['kms:Sign'],
          resources: [anyKeyInThisAccountAndRegion],
          conditions: {
            'ForAnyValue:StringEquals': { 'kms:ResourceAliases': g.aliases },
            StringEquals: { 'kms:SigningAlgorithm': [...g.algs], 'kms:MessageType': 'RAW', ...tagged },
          },
        }),
      );
    }
    if (this.generationAliasPrefix) {
      // Key generations made by `keyless keys create` / `keyless rotate` (docs/rotation.md) carry an
      // alias under the deployment's prefix; only principals allowed kms:CreateAlias/UpdateAlias in
      // that namespace (the operators) can put a key there, and the key's own policy must still
      // allow this role (`keyless keys create --key-service-role` writes the same policy as here).
      statements.push(
        new iam.PolicyStatement({
          sid: 'SignWithKeyGenerations',
          actions: ['kms:Sign'],
          resources: [anyKeyInThisAccountAndRegion],
          conditions: {
            'ForAnyValue:StringLike': { 'kms:ResourceAliases': [`${this.generationAliasPrefix}*`] },
            StringEquals: { 'kms:SigningAlgorithm': TLS_SIGNING_ALGORITHMS, 'kms:MessageType': 'RAW', ...tagged },
          },
        }),
      );
    }
    if (this.signingKeys.length > 0) {
      statements.push(
        new iam.PolicyStatement({
          sid: 'ReadSigningKeyMetadata',
          // GetPublicKey gives the key service the spec and public key it checks every request
          // against; it never calls DescribeKey (the deploy rehearsal's call record shows it).
          actions: ['kms:GetPublicKey'],
          resources: [anyKeyInThisAccountAndRegion],
          conditions: {
            'ForAnyValue:StringLike': { 'kms:ResourceAliases': [`${this.generationAliasPrefix}*`] },
            StringEquals: tagged,
          },
        }),
      );
    }
    if (this.wrappingKey) {
      statements.push(
        new iam.PolicyStatement({
          sid: 'UnsealSealedKeys',
          actions: ['kms:Decrypt'],
          resources: [anyKeyInThisAccountAndRegion],
          conditions: {
            'ForAnyValue:StringEquals': { 'kms:ResourceAliases': [this.wrappingKey.aliasName] },
            StringEquals: {
              [`kms:EncryptionContext:${SEALED_CONTEXT_KEY}`]: this.sealedKeys.map((k) => k.name),
              'kms:EncryptionAlgorithm': 'SYMMETRIC_DEFAULT',
              ...tagged,
            },
          },
        }),
      );
    }
    return statements;
  }

  /** Every KMS action the key-service role needs for this configuration (endpoint policy, tests). */
  keyServiceActions(): string[] {
    const a: string[] = [];
    if (this.signingKeys.length > 0) a.push(...KEY_SERVICE_ACTIONS.kms);
    if (this.wrappingKey) a.push(...KEY_SERVICE_ACTIONS.sealed);
    return a;
  }

  /** ARNs of this region's keys (for dashboards and outputs). */
  allKeys(): RegionalKey[] {
    return [...this.signingKeys, ...(this.wrappingKey ? [this.wrappingKey] : [])];
  }
}

interface MakeKeyProps {
  readonly aliasName: string;
  readonly description: string;
  readonly keySpec: kms.KeySpec;
  readonly keyUsage: kms.KeyUsage;
  readonly rotate: boolean;
  /** The statements that let the key service (and the operators) use the key. */
  readonly use: (user: KeyUser) => iam.PolicyStatement[];
}

function adminStatement(multiRegion: boolean): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: 'AccountAdministersKeyButCannotUseIt',
    principals: [new iam.AccountRootPrincipal()],
    actions: KEY_ADMIN_ACTIONS.filter(
      (a) => multiRegion || (a !== 'kms:ReplicateKey' && a !== 'kms:UpdatePrimaryRegion'),
    ),
    resources: ['*'],
  });
}

function keyServiceConditions(
  user: KeyUser,
  extra: Record<string, unknown> = {},
): Record<string, Record<string, unknown>> {
  return {
    ArnEquals: { 'aws:PrincipalArn': user.roleArn },
    StringEquals: { 'aws:SourceVpce': user.vpcEndpointId, ...extra },
  };
}

function signingKeyUseStatements(user: KeyUser, algorithms: readonly string[]): iam.PolicyStatement[] {
  return [
    new iam.PolicyStatement({
      sid: 'KeyServiceSignsTlsHandshakes',
      principals: [new iam.AccountRootPrincipal()],
      actions: ['kms:Sign'],
      resources: ['*'],
      conditions: keyServiceConditions(user, { 'kms:SigningAlgorithm': [...algorithms], 'kms:MessageType': 'RAW' }),
    }),
    new iam.PolicyStatement({
      sid: 'KeyServiceReadsPublicKey',
      principals: [new iam.AccountRootPrincipal()],
      actions: ['kms:GetPublicKey'],
      resources: ['*'],
      conditions: keyServiceConditions(user),
    }),
  ];
}

function wrappingKeyUseStatement(user: KeyUser, sealedKeyNames: readonly string[]): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: 'KeyServiceUnsealsItsKeys',
    principals: [new iam.AccountRootPrincipal()],
    actions: ['kms:Decrypt'],
    resources: ['*'],
    conditions: keyServiceConditions(user, {
      [`kms:EncryptionContext:${SEALED_CONTEXT_KEY}`]: [...sealedKeyNames],
      'kms:EncryptionAlgorithm': 'SYMMETRIC_DEFAULT',
    }),
  });
}

/**
 * Operator ceremonies that need the key itself: signing a CSR with a `kms` key (issuing a
 * certificate for a key that never leaves KMS) and generating a sealed key pair under the wrapping
 * key. Only for the configured operator principals, and never for the key-service role (which must
 * only ever use its keys through its VPC endpoint). Without operators, no such statement exists.
 */
function operatorStatements(
  operators: readonly string[] | undefined,
  user: KeyUser,
  what: { signingAlgorithms?: readonly string[]; sealedKeyNames?: readonly string[] },
): iam.PolicyStatement[] {
  if (!operators || operators.length === 0) return [];
  const who = { ArnLike: { 'aws:PrincipalArn': [...operators] }, ArnNotEquals: { 'aws:PrincipalArn': user.roleArn } };
  const out: iam.PolicyStatement[] = [];
  if (what.signingAlgorithms) {
    out.push(
      new iam.PolicyStatement({
        sid: 'OperatorsSignCertificateRequests',
        principals: [new iam.AccountRootPrincipal()],
        actions: ['kms:Sign'],
        resources: ['*'],
        conditions: {
          ...who,
          StringEquals: { 'kms:SigningAlgorithm': [...what.signingAlgorithms], 'kms:MessageType': 'RAW' },
        },
      }),
    );
  }
  if (what.sealedKeyNames) {
    out.push(
      new iam.PolicyStatement({
        sid: 'OperatorsProvisionSealedKeys',
        principals: [new iam.AccountRootPrincipal()],
        actions: ['kms:GenerateDataKeyPairWithoutPlaintext'],
        resources: ['*'],
        conditions: {
          ...who,
          StringEquals: {
            'kms:DataKeyPairSpec': ['RSA_2048', 'RSA_3072', 'RSA_4096'],
            [`kms:EncryptionContext:${SEALED_CONTEXT_KEY}`]: [...what.sealedKeyNames],
          },
        },
      }),
    );
  }
  return out;
}

/** The alias ARN of a key in a given region (used to size the Lambda environment before deployment). */
export function aliasArnFor(
  aliasName: string,
  region: string = Aws.REGION,
  account: string = Aws.ACCOUNT_ID,
  partition: string = Aws.PARTITION,
): string {
  return `arn:${partition}:kms:${region}:${account}:${aliasName}`;
}
