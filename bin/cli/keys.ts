/**
 * `keyless keys create`: a new key generation in the chosen custody mode (README, "Security model").
 *
 *  - `kms`: an asymmetric SIGN_VERIFY KMS key (RSA 2048/3072/4096, ECC P-256/P-384) plus the alias
 *    `<aliasPrefix><name>`. Key names are immutable and name one key generation forever (a certificate
 *    entry references its key by name), so an existing name is refused — never moved to a new key.
 *    The key service resolves such names by alias prefix, so a new key needs no redeploy.
 *  - `sealed`: an RSA key pair from KMS GenerateDataKeyPairWithoutPlaintext under the deployment's
 *    wrapping key (provisionSealedKey); its ciphertext is deployment configuration, so the command
 *    prints the KEYLESS_KEYS entry to add (and the key service needs a redeploy to serve it).
 *
 * The private half of either key is never seen here: KMS keeps the first, and the second is only
 * ever handled as KMS ciphertext.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  GetPublicKeyCommand,
  type KeyMetadata,
  type KMSClient,
  ListResourceTagsCommand,
  type KeySpec,
  ReplicateKeyCommand,
  ScheduleKeyDeletionCommand,
  type Tag,
} from '@aws-sdk/client-kms';
import { KMS_SIGNING_KEY_SPECS, type KmsSigningKeySpec } from '../../contract/signature-schemes';
import { provisionSealedKey, SEALED_KEY_SPECS, type SealedKeySpec } from '../../contract/sealed-key-envelope';
import type { SealedKeyConfig } from '../../contract/keyless-keys-entry';
import { KeyServiceError } from '../../contract/key-service-errors';
import { keySpecOfKeyObject } from '../../contract/key-service-protocol';
import { aliasNames } from '../../lib/naming';
import { awsError, failed, refused, unavailable, usageError } from './errors';
import { type Progress, silent } from './output';

/** The KMS key specs of `kms` custody keys (contract/signature-schemes.ts). */
export const KMS_KEY_SPECS = KMS_SIGNING_KEY_SPECS;
export type KmsKeySpec = KmsSigningKeySpec;
export const CUSTODIES = ['kms', 'sealed'] as const;
/**
 * The tag naming a key's deployment. The key-service role may use only keys that carry its
 * deployment's value (`aws:ResourceTag/keyless:deployment`), and only key administrators may tag, so
 * an alias alone cannot make a key signable.
 */
export const DEPLOYMENT_TAG = 'keyless:deployment';
export type CliCustody = (typeof CUSTODIES)[number];

/**
 * Alias prefix of a deployment's signing keys: the CDK's scheme (lib/naming.ts `aliasNames`), so
 * keys made here sit under the prefix the key-service role is granted by `kms:ResourceAliases`.
 * `alias/keyless/<deployment>/keys/` — the `keys/` level keeps key names from colliding with the
 * deployment's other aliases (`ticket-keys`, `sealed-wrapping`, the dev `ca`).
 */
export function aliasPrefixFor(deployment: string): string {
  return aliasNames.signingKey(deployment, '');
}

/**
 * Key names of `kms` keys become alias names, which allow only [A-Za-z0-9/_-] (KMS CreateAlias);
 * the key-service protocol allows [A-Za-z0-9._:-]. A name valid for both is [A-Za-z0-9_-], 1..64.
 */
export const KMS_KEY_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const SEALED_KEY_NAME_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;

export function validateKeyName(name: string, custody: CliCustody = 'kms'): string {
  const re = custody === 'kms' ? KMS_KEY_NAME_PATTERN : SEALED_KEY_NAME_PATTERN;
  if (!re.test(name)) {
    const allowed = custody === 'kms' ? 'letters, digits, "_" and "-"' : 'letters, digits and "._:-"';
    throw usageError(
      `key name ${JSON.stringify(name)} is not valid: use 1 to 64 of ${allowed}`,
      'Name key generations like site-1, site-2, ...',
    );
  }
  return name;
}

export function validateAliasPrefix(prefix: string): string {
  if (!/^alias\/[A-Za-z0-9/_-]*\/$/.test(prefix) || prefix.startsWith('alias/aws/')) {
    throw usageError(
      `alias prefix ${JSON.stringify(prefix)} is not valid`,
      'Write it like alias/keyless/prod/keys/ (starts with alias/, ends with /, not under alias/aws/).',
    );
  }
  return prefix;
}

export const keyAlias = (aliasPrefix: string, name: string): string => `${aliasPrefix}${name}`;

/** What KMS says about the key behind a name. */
export interface KeyInfo {
  name: string;
  alias: string;
  keyId: string;
  keyArn: string;
  keySpec: string;
  keyUsage: string;
  /** Enabled, Disabled, PendingDeletion, ... */
  keyState: string;
  enabled: boolean;
  /** A multi-Region key (its id starts with mrk-): it can be replicated to other regions. */
  multiRegion: boolean;
  createdAt?: string;
  description?: string;
}

/** The KMS key behind `<aliasPrefix><name>`, or undefined when there is no such alias. */
export async function describeKeyByName(
  kms: KMSClient,
  aliasPrefix: string,
  name: string,
): Promise<KeyInfo | undefined> {
  const alias = keyAlias(aliasPrefix, name);
  let meta;
  try {
    meta = (await kms.send(new DescribeKeyCommand({ KeyId: alias }))).KeyMetadata;
  } catch (err) {
    if ((err as Error).name === 'NotFoundException') return undefined;
    throw awsError(err, `KMS DescribeKey ${alias}`);
  }
  if (!meta?.KeyId) return undefined;
  return {
    name,
    alias,
    keyId: meta.KeyId,
    keyArn: meta.Arn ?? meta.KeyId,
    keySpec: String(meta.KeySpec ?? meta.CustomerMasterKeySpec ?? 'unknown'),
    keyUsage: String(meta.KeyUsage ?? 'unknown'),
    keyState: String(meta.KeyState ?? 'unknown'),
    enabled: meta.Enabled === true && meta.KeyState === 'Enabled',
    multiRegion: meta.MultiRegion === true,
    createdAt: meta.CreationDate?.toISOString(),
    description: meta.Description,
  };
}

export interface PublicKeyInfo {
  /** DER SubjectPublicKeyInfo. */
  spki: Buffer;
  keySpec: string;
  keyId: string;
}

/** The public key of a KMS key (id, ARN or alias), which must be a SIGN_VERIFY key. */
export async function kmsPublicKey(kms: KMSClient, keyId: string): Promise<PublicKeyInfo> {
  let out;
  try {
    out = await kms.send(new GetPublicKeyCommand({ KeyId: keyId }));
  } catch (err) {
    if ((err as Error).name === 'NotFoundException') {
      throw refused(
        `there is no KMS key ${keyId}`,
        'Check the key name (`keyless status` lists them) or create it with `keyless keys create`.',
      );
    }
    throw awsError(err, `KMS GetPublicKey ${keyId}`);
  }
  if (!out.PublicKey) throw failed(`KMS GetPublicKey ${keyId} returned no public key`);
  if (out.KeyUsage !== 'SIGN_VERIFY') {
    throw refused(
      `KMS key ${keyId} is a ${out.KeyUsage} key`,
      'Certificates need a SIGN_VERIFY key: create one with `keyless keys create --custody kms`.',
    );
  }
  return {
    spki: Buffer.from(out.PublicKey),
    keySpec: String(out.KeySpec),
    keyId: (out.KeyId ?? keyId).replace(/^.*:key\//, ''),
  };
}

/** Hex SHA-256 of a DER SubjectPublicKeyInfo: how keys and certificates are matched in output. */
export const spkiFingerprint = (spki: Buffer): string => crypto.createHash('sha256').update(spki).digest('hex');

export interface CreateKeyOptions {
  name: string;
  custody: CliCustody;
  keySpec: string;
  /** `kms` custody: where the alias goes (see aliasPrefixFor). */
  aliasPrefix: string;
  /** Recorded as the `keyless:deployment` tag. */
  deployment?: string;
  /** Extra KMS tags (`kms` custody). */
  tags?: Record<string, string>;
  description?: string;
  /** `sealed` custody: the symmetric wrapping key (default `alias/keyless/<deployment>/sealed-wrapping`). */
  wrappingKeyId?: string;
  /** `sealed` custody: also write the KEYLESS_KEYS entry to this file (mode 0600). */
  outFile?: string;
  /**
   * When the name already exists: `refuse` (default; exit code 2) or `reuse` it if it is the same
   * custody and spec (what a resumed `keyless rotate` wants). A mismatching key is always refused.
   */
  ifExists?: 'refuse' | 'reuse';
  /** `kms` custody: the new key's key policy (JSON); absent: KMS's default policy. */
  keyPolicy?: string;
  /**
   * `kms` custody: the deployment's other regions. The key is then a multi-Region key, replicated to
   * each (ReplicateKey) with the same alias and tags, so every region's key service signs for it.
   */
  replicaRegions?: string[];
  /** Key policy of the replica in each region (a region's policy pins that region's key-service role and VPC endpoint). */
  replicaKeyPolicies?: Record<string, string>;
}

export interface KeyDeps {
  /** KMS in the primary region (the CLI's region). */
  kms: KMSClient;
  /** KMS in another region (needed with replicaRegions). */
  kmsIn?: (region: string) => KMSClient;
  progress?: Progress;
}

/** A key's replica in another region, with its alias there. */
export interface ReplicaInfo {
  region: string;
  keyArn: string;
  alias: string;
  /** False when the replica and its alias were already there. */
  created: boolean;
}

export interface CreatedKey {
  name: string;
  custody: CliCustody;
  keySpec: string;
  /** False when an existing key was reused (`ifExists: 'reuse'`). */
  created: boolean;
  /** `kms`: the alias, key id and ARN. */
  alias?: string;
  keyId?: string;
  keyArn?: string;
  /** base64 DER SubjectPublicKeyInfo. */
  publicKey: string;
  publicKeySha256: string;
  tags?: Record<string, string>;
  /** `kms` custody with replicaRegions: the replicas. */
  replicas?: ReplicaInfo[];
  /**
   * The key-service KEYLESS_KEYS entry that serves this key. For `kms` keys the deployment's
   * alias-prefix entry already does; for `sealed` keys this entry must be added (redeploy).
   */
  keyServiceEntry: Record<string, string>;
  outFile?: string;
}

const TAG_KEY_RE = /^[A-Za-z0-9 _.:/=+@-]{1,128}$/;
const TAG_VALUE_RE = /^[A-Za-z0-9 _.:/=+@-]{0,256}$/;

/** Parses `k=v` strings (from repeated --tag) into a map, refusing malformed or reserved keys. */
export function parseTags(items: string[]): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    const k = eq === -1 ? item : item.slice(0, eq);
    const v = eq === -1 ? '' : item.slice(eq + 1);
    if (eq === -1 || !TAG_KEY_RE.test(k) || !TAG_VALUE_RE.test(v)) {
      throw usageError(
        `--tag ${JSON.stringify(item)} is not KEY=VALUE with KMS tag characters`,
        'Write e.g. --tag team=edge --tag cost-center=42.',
      );
    }
    if (k.startsWith('aws:') || k.startsWith('keyless:'))
      throw usageError(`--tag ${k}: the prefixes aws: and keyless: are reserved`, 'Pick another tag key.');
    tags[k] = v;
  }
  return tags;
}

export async function createKey(opts: CreateKeyOptions, deps: KeyDeps): Promise<CreatedKey> {
  const progress = deps.progress ?? silent;
  validateKeyName(opts.name, opts.custody);
  if (opts.custody === 'sealed') return createSealedKey(opts, deps.kms, progress);
  if (!(KMS_KEY_SPECS as readonly string[]).includes(opts.keySpec)) {
    throw usageError(
      `key spec ${opts.keySpec} is not one of ${KMS_KEY_SPECS.join(', ')}`,
      'kms custody keys are SIGN_VERIFY keys: pick e.g. --key-spec ECC_NIST_P256 or RSA_2048.',
    );
  }
  validateAliasPrefix(opts.aliasPrefix);
  const alias = keyAlias(opts.aliasPrefix, opts.name);

  const replicaRegions = await checkReplicaRegions(opts, deps);
  const existing = await describeKeyByName(deps.kms, opts.aliasPrefix, opts.name);
  if (existing) {
    const reused = await reuseOrRefuse(existing, opts, deps.kms);
    if (replicaRegions.length === 0) return reused;
    if (!existing.multiRegion) {
      throw refused(
        `key ${opts.name} is a single-Region key and cannot be replicated to ${replicaRegions.join(', ')}`,
        'Create a new key generation (a new name): with --replica-region it is a multi-Region key.',
      );
    }
    const replicas = await ensureReplicas(
      {
        keyId: existing.keyId,
        alias,
        description: existing.description,
        tags: await keyTags(deps.kms, existing.keyId),
      },
      replicaRegions,
      opts,
      deps,
    );
    return { ...reused, replicas };
  }

  const tags: Record<string, string> = {
    ...(opts.tags ?? {}),
    'keyless:key-name': opts.name,
    ...(opts.deployment ? { [DEPLOYMENT_TAG]: opts.deployment } : {}),
    'keyless:created-by': 'keyless keys create',
  };
  progress(`creating KMS key ${opts.keySpec} SIGN_VERIFY for ${alias}`);
  let created;
  try {
    created = await deps.kms.send(
      new CreateKeyCommand({
        KeySpec: opts.keySpec as KeySpec,
        KeyUsage: 'SIGN_VERIFY',
        Description:
          opts.description ?? `keyless-tls key ${opts.name}${opts.deployment ? ` (${opts.deployment})` : ''}`,
        Tags: Object.entries(tags).map(([TagKey, TagValue]): Tag => ({ TagKey, TagValue })),
        ...(opts.keyPolicy !== undefined ? { Policy: opts.keyPolicy } : {}),
        ...(replicaRegions.length > 0 ? { MultiRegion: true } : {}),
      }),
    );
  } catch (err) {
    throw awsError(err, 'KMS CreateKey');
  }
  const keyId = created.KeyMetadata?.KeyId;
  if (!keyId) throw failed('KMS CreateKey returned no key id');
  progress(`creating alias ${alias} → ${keyId}`);
  try {
    await deps.kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: keyId }));
  } catch (err) {
    // Someone else took the name between our check and now: do not leave an orphan key behind.
    await deps.kms
      .send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }))
      .catch(() => undefined);
    if ((err as Error).name === 'AlreadyExistsException') {
      throw refused(
        `key name ${opts.name} was taken while creating it (alias ${alias} exists); the new key ${keyId} is scheduled for deletion`,
        'Pick another name.',
      );
    }
    throw awsError(err, `KMS CreateAlias ${alias} (the new key ${keyId} is scheduled for deletion)`);
  }
  const replicas =
    replicaRegions.length > 0
      ? await ensureReplicas(
          { keyId, alias, description: created.KeyMetadata?.Description, tags },
          replicaRegions,
          opts,
          deps,
        )
      : undefined;
  const pub = await kmsPublicKey(deps.kms, keyId);
  return {
    name: opts.name,
    custody: 'kms',
    keySpec: opts.keySpec,
    created: true,
    ...(replicas ? { replicas } : {}),
    alias,
    keyId,
    keyArn: created.KeyMetadata?.Arn ?? keyId,
    publicKey: pub.spki.toString('base64'),
    publicKeySha256: spkiFingerprint(pub.spki),
    tags,
    keyServiceEntry: { name: opts.name, custody: 'kms', keyId: alias },
  };
}

const REGION_RE = /^([a-z]+-){2,3}\d+$/;

/** The replica regions, checked before anything is created: well-formed, not the primary's, each with a key policy when the primary has one. */
async function checkReplicaRegions(opts: CreateKeyOptions, deps: KeyDeps): Promise<string[]> {
  const regions = [...new Set(opts.replicaRegions ?? [])];
  if (regions.length === 0) return regions;
  if (!deps.kmsIn) throw new Error('createKey: replicaRegions needs deps.kmsIn');
  const primary = await deps.kms.config.region();
  for (const r of regions) {
    if (!REGION_RE.test(r))
      throw usageError(`--replica-region ${r} is not a region name`, 'Write e.g. --replica-region us-west-2.');
    if (r === primary)
      throw usageError(
        `--replica-region ${r} is the key's own region`,
        `Name only the deployment's other regions (the key is created in ${primary}: --region).`,
      );
  }
  for (const r of Object.keys(opts.replicaKeyPolicies ?? {})) {
    if (!regions.includes(r))
      throw usageError(
        `a replica key policy is given for ${r}, which is not a replica region`,
        `Add --replica-region ${r}, or drop its policy.`,
      );
  }
  if (opts.keyPolicy !== undefined) {
    const missing = regions.filter((r) => opts.replicaKeyPolicies?.[r] === undefined);
    if (missing.length > 0) {
      throw usageError(
        `--key-policy is for ${primary} only: the replicas in ${missing.join(', ')} need their own`,
        `Give --replica-key-policy ${missing[0]}=FILE for each (the CDK key policy of that region, which pins its key-service role and VPC endpoint).`,
      );
    }
  }
  return regions;
}

/** The tags of a key, as a map (all pages). */
async function keyTags(kms: KMSClient, keyId: string): Promise<Record<string, string>> {
  const tags: Record<string, string> = {};
  let marker: string | undefined;
  try {
    do {
      const page = await kms.send(new ListResourceTagsCommand({ KeyId: keyId, Marker: marker }));
      for (const t of page.Tags ?? []) if (t.TagKey) tags[t.TagKey] = t.TagValue ?? '';
      marker = page.Truncated ? page.NextMarker : undefined;
    } while (marker !== undefined);
  } catch (err) {
    throw awsError(err, `KMS ListResourceTags ${keyId}`);
  }
  return tags;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Makes sure a multi-Region key has a replica with the alias in each region: ReplicateKey (from the
 * primary region) where the region has no replica yet, then the alias there once the replica left its
 * `Creating` state. Re-runnable: what exists is checked and kept; an alias that names another key is
 * refused, never moved.
 */
export async function ensureReplicas(
  key: { keyId: string; alias: string; description?: string; tags: Record<string, string> },
  regions: string[],
  opts: Pick<CreateKeyOptions, 'replicaKeyPolicies'>,
  deps: KeyDeps,
): Promise<ReplicaInfo[]> {
  const progress = deps.progress ?? silent;
  const out: ReplicaInfo[] = [];
  for (const region of regions) {
    const kmsR = deps.kmsIn!(region);
    const byAlias = await describeOrUndefined(kmsR, key.alias, `KMS DescribeKey ${key.alias} in ${region}`);
    if (byAlias && byAlias.KeyId !== key.keyId) {
      throw refused(
        `${key.alias} in ${region} points at another key (${byAlias.KeyId}), not the replica of ${key.keyId}`,
        `Key names are immutable: pick a new name, or delete that alias in ${region} if it is a leftover.`,
      );
    }
    if (byAlias) {
      out.push({ region, keyArn: byAlias.Arn ?? key.keyId, alias: key.alias, created: false });
      continue;
    }
    let replica = await describeOrUndefined(kmsR, key.keyId, `KMS DescribeKey ${key.keyId} in ${region}`);
    if (!replica) {
      progress(`replicating ${key.keyId} to ${region} (ReplicateKey)`);
      const policy = opts.replicaKeyPolicies?.[region];
      try {
        replica = (
          await deps.kms.send(
            new ReplicateKeyCommand({
              KeyId: key.keyId,
              ReplicaRegion: region,
              Description: key.description,
              Tags: Object.entries(key.tags).map(([TagKey, TagValue]): Tag => ({ TagKey, TagValue })),
              ...(policy !== undefined ? { Policy: policy } : {}),
            }),
          )
        ).ReplicaKeyMetadata;
      } catch (err) {
        throw awsError(
          err,
          `KMS ReplicateKey ${key.keyId} to ${region} (re-run it with --if-exists reuse, or the rotate step, to finish the replicas)`,
        );
      }
    }
    // A new replica is `Creating` for a few seconds; an alias can only name a usable key.
    for (let i = 0; replica?.KeyState === 'Creating' && i < 60; i++) {
      await sleep(1000);
      replica = await describeOrUndefined(kmsR, key.keyId, `KMS DescribeKey ${key.keyId} in ${region}`);
    }
    progress(`creating alias ${key.alias} → ${key.keyId} in ${region}`);
    try {
      await kmsR.send(new CreateAliasCommand({ AliasName: key.alias, TargetKeyId: key.keyId }));
    } catch (err) {
      throw awsError(
        err,
        `KMS CreateAlias ${key.alias} in ${region} (re-run it with --if-exists reuse, or the rotate step, to finish the replicas)`,
      );
    }
    out.push({ region, keyArn: replica?.Arn ?? key.keyId, alias: key.alias, created: true });
  }
  return out;
}

async function describeOrUndefined(kms: KMSClient, keyId: string, what: string): Promise<KeyMetadata | undefined> {
  try {
    return (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata;
  } catch (err) {
    if ((err as Error).name === 'NotFoundException') return undefined;
    throw awsError(err, what);
  }
}

async function reuseOrRefuse(existing: KeyInfo, opts: CreateKeyOptions, kms: KMSClient): Promise<CreatedKey> {
  const same = existing.keySpec === opts.keySpec && existing.keyUsage === 'SIGN_VERIFY';
  if (opts.ifExists !== 'reuse' || !same) {
    const why = same ? '' : ` and is a ${existing.keySpec} ${existing.keyUsage} key, not ${opts.keySpec} SIGN_VERIFY`;
    throw refused(
      `key name ${opts.name} already exists (${existing.alias} → ${existing.keyId}, ${existing.keyState})${why}`,
      'Key names are immutable, one per key generation: pick a new name (e.g. the next number).',
    );
  }
  if (!existing.enabled) {
    throw refused(
      `key ${opts.name} exists but is ${existing.keyState}`,
      'A disabled key cannot sign; pick a new name for a new key (or enable it in KMS if that was a mistake).',
    );
  }
  const pub = await kmsPublicKey(kms, existing.keyId);
  return {
    name: opts.name,
    custody: 'kms',
    keySpec: existing.keySpec,
    created: false,
    alias: existing.alias,
    keyId: existing.keyId,
    keyArn: existing.keyArn,
    publicKey: pub.spki.toString('base64'),
    publicKeySha256: spkiFingerprint(pub.spki),
    keyServiceEntry: { name: opts.name, custody: 'kms', keyId: existing.alias },
  };
}

async function createSealedKey(opts: CreateKeyOptions, kms: KMSClient, progress: Progress): Promise<CreatedKey> {
  if (!(SEALED_KEY_SPECS as readonly string[]).includes(opts.keySpec)) {
    throw usageError(
      `sealed keys are RSA key pairs: key spec ${opts.keySpec} is not one of ${SEALED_KEY_SPECS.join(', ')}`,
      'Pick e.g. --key-spec RSA_2048.',
    );
  }
  if (opts.tags && Object.keys(opts.tags).length > 0) {
    throw usageError('sealed keys are not KMS keys and carry no tags', 'Drop --tag, or use --custody kms.');
  }
  const wrappingKeyId =
    opts.wrappingKeyId ?? (opts.deployment ? aliasNames.sealedWrapping(opts.deployment) : undefined);
  if (!wrappingKeyId)
    throw usageError(
      'sealed keys need a wrapping key',
      'Pass --wrapping-key alias/keyless/<deployment>/sealed-wrapping (or --deployment).',
    );
  if (opts.outFile && fs.existsSync(opts.outFile)) {
    const reused = reuseSealedFile(opts);
    if (reused) return reused;
  }
  progress(
    `generating a sealed ${opts.keySpec} key pair under ${wrappingKeyId} (KMS GenerateDataKeyPairWithoutPlaintext)`,
  );
  let entry: SealedKeyConfig;
  try {
    entry = await provisionSealedKey(kms, { name: opts.name, wrappingKeyId, keySpec: opts.keySpec as SealedKeySpec });
  } catch (err) {
    if (
      err instanceof KeyServiceError &&
      (err.upstream === 'NotFoundException' ||
        err.upstream === 'DisabledException' ||
        err.upstream === 'KMSInvalidStateException')
    ) {
      throw refused(
        `the wrapping key ${wrappingKeyId} ${err.upstream === 'NotFoundException' ? 'does not exist' : 'is not usable (disabled or pending deletion)'}`,
        "Sealed keys need the deployment's symmetric wrapping key: deploy the key-service stack (it creates alias/keyless/<deployment>/sealed-wrapping), pass --wrapping-key, or locally start the stack once with KEYLESS_DEV_CUSTODY=sealed.",
      );
    }
    if (err instanceof KeyServiceError && err.code === 'unavailable') {
      throw unavailable(
        `KMS GenerateDataKeyPairWithoutPlaintext under ${wrappingKeyId}: ${err.message}`,
        'Check --region and the endpoint; for the local stack pass --local.',
      );
    }
    if (err instanceof KeyServiceError) {
      throw failed(
        `KMS GenerateDataKeyPairWithoutPlaintext under ${wrappingKeyId} failed (${err.code}: ${err.message})`,
        'Check that the wrapping key exists, is enabled and that you may use it.',
      );
    }
    throw awsError(err, 'KMS GenerateDataKeyPairWithoutPlaintext');
  }
  if (opts.outFile) {
    // Ciphertext and public key only: useless without kms:Decrypt on the wrapping key, but still
    // deployment configuration, so keep it private to the operator.
    fs.mkdirSync(path.dirname(path.resolve(opts.outFile)), { recursive: true });
    fs.writeFileSync(opts.outFile, `${JSON.stringify(entry, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  }
  const spki = Buffer.from(entry.publicKey, 'base64');
  return {
    name: opts.name,
    custody: 'sealed',
    keySpec: opts.keySpec,
    created: true,
    publicKey: entry.publicKey,
    publicKeySha256: spkiFingerprint(spki),
    keyServiceEntry: { ...entry },
    outFile: opts.outFile,
  };
}

/** A resumed sealed create: the out file already holds this name's entry. */
function reuseSealedFile(opts: CreateKeyOptions): CreatedKey | undefined {
  let saved: SealedKeyConfig;
  try {
    saved = JSON.parse(fs.readFileSync(opts.outFile!, 'utf8')) as SealedKeyConfig;
  } catch {
    throw refused(
      `${opts.outFile} exists and is not a sealed key entry`,
      'Pick another --out file; the CLI never overwrites one.',
    );
  }
  if (opts.ifExists !== 'reuse' || saved.name !== opts.name || saved.custody !== 'sealed') {
    throw refused(
      `${opts.outFile} already exists (sealed key ${JSON.stringify(saved.name)})`,
      'Pick another --out file or key name; the CLI never overwrites a sealed key entry.',
    );
  }
  const spki = Buffer.from(saved.publicKey, 'base64');
  const savedSpec = keySpecOfKeyObject(crypto.createPublicKey({ key: spki, format: 'der', type: 'spki' }));
  if (savedSpec !== opts.keySpec) {
    throw refused(
      `${opts.outFile} holds sealed key ${saved.name} as ${savedSpec}, not ${opts.keySpec}`,
      'Pick another --out file or key name.',
    );
  }
  return {
    name: saved.name,
    custody: 'sealed',
    keySpec: savedSpec,
    created: false,
    publicKey: saved.publicKey,
    publicKeySha256: spkiFingerprint(spki),
    keyServiceEntry: { ...saved },
    outFile: opts.outFile,
  };
}
