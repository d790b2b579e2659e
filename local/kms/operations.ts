/**
 * The KMS operations: request validation, key-state and key-usage rules, and response shapes, as
 * documented in the AWS KMS API reference and the key-state table of the developer guide.
 *
 * Order of checks, as in KMS: model constraints on the request (ValidationException) → key lookup
 * (NotFoundException) → key state (DisabledException / KMSInvalidStateException) → key usage and
 * algorithm (InvalidKeyUsageException) → operation-specific checks.
 */
import * as crypto from 'node:crypto';

import {
  BadSignature,
  type EncryptionContext,
  blobKeyId,
  generateKeyPair,
  generateSecret,
  hmac,
  hmacEqual,
  openSymmetric,
  rsaOaepDecrypt,
  rsaOaepEncrypt,
  sealSymmetric,
  sign,
  verify,
} from './crypto';
import {
  KmsError,
  constraint,
  disabled,
  invalidCiphertext,
  invalidKeyUsage,
  invalidState,
  notFound,
  unsupported,
  validation,
} from './errors';
import { Input, type Json } from './input';
import {
  ALL_ENCRYPTION_ALGORITHMS,
  ALL_KEY_PAIR_SPECS,
  ALL_KEY_SPECS,
  ALL_KEY_USAGES,
  ALL_MAC_ALGORITHMS,
  ALL_MESSAGE_TYPES,
  ALL_SIGNING_ALGORITHMS,
  type KeyPairSpec,
  type KeySpec,
  type KeyUsage,
  SUPPORTED_KEY_PAIR_SPECS,
  SUPPORTED_KEY_SPECS,
  allowedUsages,
  encryptionAlgorithmsFor,
  isAsymmetric,
  macAlgorithmsFor,
  oaepMaxPlaintext,
  signingAlgorithmsFor,
  signingHash,
} from './specs';
import type { KeyRecord, KmsStore } from './store';

export type Operation = (store: KmsStore, input: Input) => Promise<Json> | Json;

// ---------------------------------------------------------------------------------------------
// helpers

const seconds = (ms: number): number => ms / 1000;
const b64 = (buf: Buffer): string => buf.toString('base64');

/** Key states in which an operation may run. */
type Allowed = 'enabled' | 'enabledOrDisabled' | 'any';

function checkState(store: KmsStore, rec: KeyRecord, allowed: Allowed): void {
  if (allowed === 'any') return;
  const arn = store.keyArn(rec.keyId);
  if (rec.keyState === 'PendingDeletion') throw invalidState(`${arn} is pending deletion.`);
  if (rec.keyState === 'Disabled' && allowed === 'enabled') throw disabled(`${arn} is disabled.`);
}

function checkUsage(store: KmsStore, rec: KeyRecord, usage: KeyUsage, operation: string): void {
  if (rec.keyUsage !== usage) {
    throw invalidKeyUsage(
      `${store.keyArn(rec.keyId)} key usage is ${rec.keyUsage} which is not valid for ${operation}.`,
    );
  }
}

const incompatible = (alg: string, spec: string): KmsError =>
  invalidKeyUsage(`Algorithm ${alg} is incompatible with key spec ${spec}.`);

function dryRun(input: Input): void {
  if (input.bool('DryRun')) {
    throw new KmsError(
      'DryRunOperationException',
      'The request would have succeeded, but the DryRun option is set.',
      412,
    );
  }
}

/** A usable key for a cryptographic operation: resolved (aliases allowed), enabled, of the given usage. */
function cryptoKey(store: KmsStore, input: Input, usage: KeyUsage, operation: string): KeyRecord {
  const rec = store.resolveKey(input.str('KeyId', { required: true, min: 1, max: 2048 }), { aliases: true });
  checkState(store, rec, 'enabled');
  checkUsage(store, rec, usage, operation);
  return rec;
}

/** A key named by key id or key ARN only (management operations). */
function managedKey(store: KmsStore, input: Input, allowed: Allowed): KeyRecord {
  const rec = store.resolveKey(input.str('KeyId', { required: true, min: 1, max: 2048 }), { aliases: false });
  checkState(store, rec, allowed);
  return rec;
}

function keyMetadata(store: KmsStore, rec: KeyRecord): Json {
  const md: Json = {
    AWSAccountId: store.accountId,
    KeyId: rec.keyId,
    Arn: store.keyArn(rec.keyId),
    CreationDate: seconds(rec.creationDate),
    Enabled: rec.keyState === 'Enabled',
    Description: rec.description,
    KeyUsage: rec.keyUsage,
    KeyState: rec.keyState,
    Origin: 'AWS_KMS',
    KeyManager: 'CUSTOMER',
    CustomerMasterKeySpec: rec.keySpec,
    KeySpec: rec.keySpec,
    MultiRegion: rec.multiRegion,
  };
  if (rec.deletionDate !== undefined) md.DeletionDate = seconds(rec.deletionDate);
  if (rec.keyUsage === 'ENCRYPT_DECRYPT') md.EncryptionAlgorithms = encryptionAlgorithmsFor(rec.keySpec);
  if (rec.keyUsage === 'SIGN_VERIFY') md.SigningAlgorithms = signingAlgorithmsFor(rec.keySpec);
  if (rec.keyUsage === 'GENERATE_VERIFY_MAC') md.MacAlgorithms = macAlgorithmsFor(rec.keySpec);
  if (rec.multiRegion) {
    // Primary and replicas share one key id; the primary keeps the list of replica regions.
    const primaryRegion = rec.primaryRegion ?? store.region;
    const primary = primaryRegion === store.region ? rec : peerKey(store, primaryRegion, rec.keyId);
    md.MultiRegionConfiguration = {
      MultiRegionKeyType: primaryRegion === store.region ? 'PRIMARY' : 'REPLICA',
      PrimaryKey: { Arn: store.keyArn(rec.keyId, primaryRegion), Region: primaryRegion },
      ReplicaKeys: (primary?.replicaRegions ?? []).map((r) => ({ Arn: store.keyArn(rec.keyId, r), Region: r })),
    };
  }
  return md;
}

/** The record of a multi-Region key in another region, if that region has it. */
function peerKey(store: KmsStore, region: string, keyId: string): KeyRecord | undefined {
  try {
    return store
      .peer(region)
      .listKeys()
      .find((k) => k.keyId === keyId);
  } catch {
    return undefined;
  }
}

/** Opaque pagination markers over a list (InvalidMarkerException for anything we did not issue). */
function paginate<T>(input: Input, items: T[], defaultLimit: number, maxLimit: number): { page: T[]; more: Json } {
  const limit = input.int('Limit', { min: 1, max: maxLimit }) ?? defaultLimit;
  const marker = input.str('Marker', { min: 1, max: 1024 });
  let start = 0;
  if (marker !== undefined) {
    const m = /^lkms:(\d+)$/.exec(Buffer.from(marker, 'base64').toString('utf8'));
    if (!m) throw new KmsError('InvalidMarkerException', 'Invalid marker');
    start = Number(m[1]);
  }
  const page = items.slice(start, start + limit);
  const next = start + limit;
  return next < items.length
    ? { page, more: { Truncated: true, NextMarker: Buffer.from(`lkms:${next}`).toString('base64') } }
    : { page, more: { Truncated: false } };
}

function validateTags(tags: { TagKey: string; TagValue: string }[]): void {
  if (new Set(tags.map((t) => t.TagKey)).size !== tags.length) throw new KmsError('TagException', 'Duplicate tag keys');
  if (tags.length > 50) throw new KmsError('TagException', 'Too many tags');
  for (const t of tags) {
    if (t.TagKey.toLowerCase().startsWith('aws:'))
      throw new KmsError('TagException', 'Tags beginning with aws: are reserved');
  }
}

const ALIAS_NAME_RE = /^alias\/[a-zA-Z0-9/_-]+$/;

function checkAliasName(name: string): void {
  if (!name.startsWith('alias/')) {
    throw validation(
      'Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html',
    );
  }
  if (!ALIAS_NAME_RE.test(name)) {
    throw constraint('aliasName', name, 'Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$');
  }
  if (name.startsWith('alias/aws/')) {
    throw new KmsError('NotAuthorizedException', "Cannot create alias with prefix 'alias/aws/'");
  }
}

/** Alias targets must be keys (key id or key ARN), never another alias. */
function aliasTarget(store: KmsStore, input: Input): KeyRecord {
  const target = input.str('TargetKeyId', { required: true, min: 1, max: 2048 });
  if (target.startsWith('alias/') || /^arn:[^:]*:kms:[^:]*:[^:]*:alias\//.test(target)) {
    throw validation('Aliases must refer to keys. Not aliases');
  }
  const rec = store.resolveKey(target, { aliases: false });
  checkState(store, rec, 'enabledOrDisabled');
  return rec;
}

function messageType(input: Input, alg: string): 'RAW' | 'DIGEST' {
  const type = input.enumOf('MessageType', ALL_MESSAGE_TYPES) ?? 'RAW';
  if (type === 'EXTERNAL_MU') throw validation(`Message type ${type} is incompatible with algorithm ${alg}.`);
  return type;
}

/** Sign/Verify shared checks; returns the validated request parts. */
function signingRequest(store: KmsStore, input: Input, operation: 'Sign' | 'Verify') {
  const message = input.blob('Message', { required: true, min: 1, max: 4096 });
  const alg = input.enumOf('SigningAlgorithm', ALL_SIGNING_ALGORITHMS, { required: true });
  const type = messageType(input, alg);
  const signature = operation === 'Verify' ? input.blob('Signature', { required: true, min: 1, max: 6144 }) : undefined;
  const rec = cryptoKey(store, input, 'SIGN_VERIFY', operation);
  if (!signingAlgorithmsFor(rec.keySpec).includes(alg)) throw incompatible(alg, rec.keySpec);
  if (type === 'DIGEST' && message.length !== signingHash(alg).bytes) {
    throw validation(`Digest is invalid length for algorithm ${alg}.`);
  }
  dryRun(input);
  return { rec, alg, type, message, signature };
}

function encryptionContext(input: Input, rec: KeyRecord): EncryptionContext | undefined {
  const ctx = input.stringMap('EncryptionContext');
  if (ctx && Object.keys(ctx).length > 0 && rec.keySpec !== 'SYMMETRIC_DEFAULT') {
    throw validation(`EncryptionContext is not supported with asymmetric KMS key ${rec.keySpec}.`);
  }
  return ctx;
}

/** Data keys and data key pairs are protected by a symmetric encryption KMS key only. */
function dataKeyWrappingKey(store: KmsStore, input: Input, operation: string): KeyRecord {
  const rec = cryptoKey(store, input, 'ENCRYPT_DECRYPT', operation);
  if (rec.keySpec !== 'SYMMETRIC_DEFAULT') throw incompatible('SYMMETRIC_DEFAULT', rec.keySpec);
  return rec;
}

// ---------------------------------------------------------------------------------------------
// key management

const createKey: Operation = async (store, input) => {
  const keySpecIn = input.enumOf('KeySpec', ALL_KEY_SPECS);
  const cmkSpec = input.enumOf('CustomerMasterKeySpec', ALL_KEY_SPECS);
  if (keySpecIn && cmkSpec && keySpecIn !== cmkSpec) {
    throw validation(
      'You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated.',
    );
  }
  const usageIn = input.enumOf('KeyUsage', ALL_KEY_USAGES);
  const description = input.str('Description', { min: 0, max: 8192 }) ?? '';
  const origin =
    input.enumOf('Origin', ['AWS_KMS', 'EXTERNAL', 'AWS_CLOUDHSM', 'EXTERNAL_KEY_STORE'] as const) ?? 'AWS_KMS';
  const multiRegion = input.bool('MultiRegion') ?? false;
  const tags = input.tags('Tags') ?? [];
  const policy = input.str('Policy', { min: 1, max: 131072 });
  if (policy !== undefined) {
    // KMS rejects a policy that is not a JSON document (MalformedPolicyDocumentException); the local
    // KMS stores it and returns it from GetKeyPolicy but does not evaluate it.
    try {
      JSON.parse(policy);
    } catch {
      throw new KmsError('MalformedPolicyDocumentException', 'The new key policy is not a valid JSON document.');
    }
  }
  input.bool('BypassPolicyLockoutSafetyCheck');
  if (input.has('CustomKeyStoreId') || input.has('XksKeyId')) {
    throw unsupported('Custom key stores are not available in the local KMS.');
  }
  if (origin !== 'AWS_KMS') throw unsupported(`Origin ${origin} is not supported by the local KMS; only AWS_KMS.`);

  const spec = (keySpecIn ?? cmkSpec ?? 'SYMMETRIC_DEFAULT') as string;
  if (!(SUPPORTED_KEY_SPECS as readonly string[]).includes(spec)) {
    throw unsupported(`KeySpec ${spec} is not supported by the local KMS.`);
  }
  const keySpec = spec as KeySpec;
  if (usageIn === undefined && keySpec !== 'SYMMETRIC_DEFAULT') {
    throw validation('You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.');
  }
  const usage = usageIn ?? 'ENCRYPT_DECRYPT';
  if (usage === 'KEY_AGREEMENT' && keySpec.startsWith('ECC_')) {
    throw unsupported('KeyUsage KEY_AGREEMENT is not supported by the local KMS.');
  }
  if (!(allowedUsages(keySpec) as string[]).includes(usage)) {
    throw validation(`KeyUsage ${usage} is not compatible with KeySpec ${keySpec}`);
  }
  validateTags(tags);

  const rec: KeyRecord = {
    keyId: store.newKeyId(multiRegion),
    keySpec,
    keyUsage: usage as KeyUsage,
    description,
    creationDate: Date.now(),
    keyState: 'Enabled',
    multiRegion,
    tags: Object.fromEntries(tags.map((t) => [t.TagKey, t.TagValue])),
    ...(policy !== undefined ? { policy } : {}),
  };
  if (isAsymmetric(keySpec)) {
    const pair = await generateKeyPair(keySpec);
    rec.privateKeyPem = pair.privateKeyPem;
    rec.publicKeyDer = b64(pair.publicKeyDer);
  } else {
    rec.secret = b64(generateSecret(keySpec));
  }
  store.addKey(rec);
  return { KeyMetadata: keyMetadata(store, rec) };
};

const REGION_RE = /^([a-z]+-){2,3}\d+$/;

/**
 * ReplicateKey: a replica of a multi-Region primary key in another region of the account — same key
 * id, key material, spec and usage; its own description, key policy, tags and aliases (which are not
 * shared, as in KMS).
 */
const replicateKey: Operation = (store, input) => {
  const replicaRegion = input.str('ReplicaRegion', { required: true, min: 1, max: 32 });
  if (!REGION_RE.test(replicaRegion))
    throw constraint(
      'replicaRegion',
      replicaRegion,
      'Member must satisfy regular expression pattern: ^([a-z]+-){2,3}\\d+$',
    );
  const description = input.str('Description', { min: 0, max: 8192 }) ?? '';
  const tags = input.tags('Tags') ?? [];
  const policy = input.str('Policy', { min: 1, max: 131072 });
  if (policy !== undefined) {
    try {
      JSON.parse(policy);
    } catch {
      throw new KmsError('MalformedPolicyDocumentException', 'The new key policy is not a valid JSON document.');
    }
  }
  input.bool('BypassPolicyLockoutSafetyCheck');
  const rec = managedKey(store, input, 'enabled');
  if (!rec.multiRegion) throw unsupported(`${store.keyArn(rec.keyId)} is not a multi-Region key.`);
  if (rec.primaryRegion !== undefined && rec.primaryRegion !== store.region) {
    throw unsupported(
      `${store.keyArn(rec.keyId)} is a replica key; replicate its primary key in ${rec.primaryRegion}.`,
    );
  }
  validateTags(tags);
  const target = store.peer(replicaRegion);
  if (replicaRegion === store.region || target.listKeys().some((k) => k.keyId === rec.keyId)) {
    throw new KmsError('AlreadyExistsException', `Key '${store.keyArn(rec.keyId, replicaRegion)}' already exists`);
  }
  const replica: KeyRecord = {
    keyId: rec.keyId,
    keySpec: rec.keySpec,
    keyUsage: rec.keyUsage,
    description,
    creationDate: Date.now(),
    keyState: 'Enabled',
    multiRegion: true,
    primaryRegion: store.region,
    tags: Object.fromEntries(tags.map((t) => [t.TagKey, t.TagValue])),
    ...(policy !== undefined ? { policy } : {}),
    ...(rec.privateKeyPem !== undefined ? { privateKeyPem: rec.privateKeyPem, publicKeyDer: rec.publicKeyDer } : {}),
    ...(rec.secret !== undefined ? { secret: rec.secret } : {}),
  };
  store.updateKey(rec, (r) => (r.replicaRegions = [...(r.replicaRegions ?? []), replicaRegion]));
  target.addKey(replica);
  const out: Json = { ReplicaKeyMetadata: keyMetadata(target, replica), ReplicaTags: tags };
  if (policy !== undefined) out.ReplicaPolicy = policy;
  return out;
};

const describeKey: Operation = (store, input) => {
  const rec = store.resolveKey(input.str('KeyId', { required: true, min: 1, max: 2048 }), { aliases: true });
  return { KeyMetadata: keyMetadata(store, rec) };
};

const listKeys: Operation = (store, input) => {
  const { page, more } = paginate(input, store.listKeys(), 100, 1000);
  return { Keys: page.map((k) => ({ KeyId: k.keyId, KeyArn: store.keyArn(k.keyId) })), ...more };
};

const updateKeyDescription: Operation = (store, input) => {
  const description = input.str('Description', { required: true, min: 0, max: 8192 });
  const rec = managedKey(store, input, 'enabledOrDisabled');
  store.updateKey(rec, (r) => (r.description = description));
  return {};
};

const enableKey: Operation = (store, input) => {
  const rec = managedKey(store, input, 'enabledOrDisabled');
  store.updateKey(rec, (r) => (r.keyState = 'Enabled'));
  return {};
};

const disableKey: Operation = (store, input) => {
  const rec = managedKey(store, input, 'enabledOrDisabled');
  store.updateKey(rec, (r) => (r.keyState = 'Disabled'));
  return {};
};

const scheduleKeyDeletion: Operation = (store, input) => {
  const days = input.int('PendingWindowInDays', { min: 7, max: 30 }) ?? 30;
  const rec = managedKey(store, input, 'enabledOrDisabled');
  store.updateKey(rec, (r) => {
    r.keyState = 'PendingDeletion';
    r.pendingWindowInDays = days;
    r.deletionDate = Date.now() + days * 86_400_000;
  });
  return {
    KeyId: store.keyArn(rec.keyId),
    DeletionDate: seconds(rec.deletionDate as number),
    KeyState: rec.keyState,
    PendingWindowInDays: days,
  };
};

const cancelKeyDeletion: Operation = (store, input) => {
  const rec = managedKey(store, input, 'any');
  if (rec.keyState !== 'PendingDeletion') throw invalidState(`${store.keyArn(rec.keyId)} is not pending deletion.`);
  // KMS leaves a key whose deletion was cancelled Disabled.
  store.updateKey(rec, (r) => {
    r.keyState = 'Disabled';
    delete r.deletionDate;
    delete r.pendingWindowInDays;
  });
  return { KeyId: store.keyArn(rec.keyId) };
};

const tagResource: Operation = (store, input) => {
  const tags = input.tags('Tags', { required: true }) ?? [];
  const rec = managedKey(store, input, 'enabledOrDisabled');
  validateTags(tags);
  if (Object.keys({ ...rec.tags, ...Object.fromEntries(tags.map((t) => [t.TagKey, 1])) }).length > 50) {
    throw new KmsError('TagException', 'Too many tags');
  }
  store.updateKey(rec, (r) => {
    for (const t of tags) r.tags[t.TagKey] = t.TagValue;
  });
  return {};
};

const untagResource: Operation = (store, input) => {
  const keys = input.stringList('TagKeys', { required: true }) ?? [];
  const rec = managedKey(store, input, 'enabledOrDisabled');
  store.updateKey(rec, (r) => {
    for (const k of keys) delete r.tags[k];
  });
  return {};
};

const listResourceTags: Operation = (store, input) => {
  const rec = managedKey(store, input, 'any');
  const tags = Object.entries(rec.tags).map(([TagKey, TagValue]) => ({ TagKey, TagValue }));
  const { page, more } = paginate(input, tags, 50, 50);
  return { Tags: page, ...more };
};

const getKeyPolicy: Operation = (store, input) => {
  const name = input.str('PolicyName', { min: 1, max: 128 }) ?? 'default';
  const rec = managedKey(store, input, 'any');
  if (name !== 'default') throw notFound('No such policy exists');
  if (rec.policy !== undefined) return { PolicyName: 'default', Policy: rec.policy };
  return {
    PolicyName: 'default',
    Policy: JSON.stringify({
      Version: '2012-10-17',
      Id: 'key-default-1',
      Statement: [
        {
          Sid: 'Enable IAM User Permissions',
          Effect: 'Allow',
          Principal: { AWS: `arn:aws:iam::${store.accountId}:root` },
          Action: 'kms:*',
          Resource: '*',
        },
      ],
    }),
  };
};

// ---------------------------------------------------------------------------------------------
// aliases

const createAlias: Operation = (store, input) => {
  const name = input.str('AliasName', { required: true, min: 1, max: 256 });
  checkAliasName(name);
  if (store.getAlias(name))
    throw new KmsError('AlreadyExistsException', `An alias with the name ${store.aliasArn(name)} already exists`);
  const rec = aliasTarget(store, input);
  const now = Date.now();
  store.putAlias({ aliasName: name, targetKeyId: rec.keyId, creationDate: now, lastUpdatedDate: now });
  return {};
};

const updateAlias: Operation = (store, input) => {
  const name = input.str('AliasName', { required: true, min: 1, max: 256 });
  checkAliasName(name);
  const alias = store.getAlias(name);
  if (!alias) throw notFound(`Alias ${store.aliasArn(name)} is not found.`);
  const rec = aliasTarget(store, input);
  // KMS requires the new target to be of the same type and usage as the current one.
  const current = (() => {
    try {
      return store.resolveKey(alias.targetKeyId, { aliases: false });
    } catch {
      return undefined;
    }
  })();
  if (current) {
    const kind = (r: KeyRecord): string =>
      isAsymmetric(r.keySpec) ? 'asymmetric' : r.keySpec === 'SYMMETRIC_DEFAULT' ? 'symmetric' : 'hmac';
    if (kind(current) !== kind(rec) || current.keyUsage !== rec.keyUsage) {
      throw validation(
        `${store.keyArn(rec.keyId)} (${rec.keySpec}, ${rec.keyUsage}) is not the same type of key as the current target of ${name} (${current.keySpec}, ${current.keyUsage}).`,
      );
    }
  }
  store.putAlias({ ...alias, targetKeyId: rec.keyId, lastUpdatedDate: Date.now() });
  return {};
};

const deleteAlias: Operation = (store, input) => {
  const name = input.str('AliasName', { required: true, min: 1, max: 256 });
  checkAliasName(name);
  if (!store.getAlias(name)) throw notFound(`Alias ${store.aliasArn(name)} is not found.`);
  store.deleteAlias(name);
  return {};
};

const listAliases: Operation = (store, input) => {
  let aliases = store.listAliases();
  if (input.has('KeyId')) {
    const rec = store.resolveKey(input.str('KeyId', { required: true, min: 1, max: 2048 }), { aliases: false });
    aliases = aliases.filter((a) => a.targetKeyId === rec.keyId);
  }
  const { page, more } = paginate(input, aliases, 50, 100);
  return {
    Aliases: page.map((a) => ({
      AliasName: a.aliasName,
      AliasArn: store.aliasArn(a.aliasName),
      TargetKeyId: a.targetKeyId,
      CreationDate: seconds(a.creationDate),
      LastUpdatedDate: seconds(a.lastUpdatedDate),
    })),
    ...more,
  };
};

// ---------------------------------------------------------------------------------------------
// public key, signatures

const getPublicKey: Operation = (store, input) => {
  const rec = store.resolveKey(input.str('KeyId', { required: true, min: 1, max: 2048 }), { aliases: true });
  // KMS serves GetPublicKey for disabled keys too; a key pending deletion is refused.
  checkState(store, rec, 'enabledOrDisabled');
  if (!isAsymmetric(rec.keySpec) || !rec.publicKeyDer) {
    throw unsupported(`${store.keyArn(rec.keyId)} key spec ${rec.keySpec} is not valid for GetPublicKey.`);
  }
  const out: Json = {
    KeyId: store.keyArn(rec.keyId),
    PublicKey: rec.publicKeyDer,
    CustomerMasterKeySpec: rec.keySpec,
    KeySpec: rec.keySpec,
    KeyUsage: rec.keyUsage,
  };
  if (rec.keyUsage === 'SIGN_VERIFY') out.SigningAlgorithms = signingAlgorithmsFor(rec.keySpec);
  if (rec.keyUsage === 'ENCRYPT_DECRYPT') out.EncryptionAlgorithms = encryptionAlgorithmsFor(rec.keySpec);
  return out;
};

const signOp: Operation = (store, input) => {
  const { rec, alg, type, message } = signingRequest(store, input, 'Sign');
  const signature = sign(store.privateKey(rec), alg, type, message);
  return { KeyId: store.keyArn(rec.keyId), Signature: b64(signature), SigningAlgorithm: alg };
};

const verifyOp: Operation = (store, input) => {
  const { rec, alg, type, message, signature } = signingRequest(store, input, 'Verify');
  try {
    verify(store.privateKey(rec), alg, type, message, signature as Buffer);
  } catch (err) {
    if (err instanceof BadSignature) throw new KmsError('KMSInvalidSignatureException');
    throw err;
  }
  return { KeyId: store.keyArn(rec.keyId), SignatureValid: true, SigningAlgorithm: alg };
};

// ---------------------------------------------------------------------------------------------
// encryption

const encrypt: Operation = (store, input) => {
  const plaintext = input.blob('Plaintext', { required: true, min: 1, max: 4096 });
  const alg = input.enumOf('EncryptionAlgorithm', ALL_ENCRYPTION_ALGORITHMS) ?? 'SYMMETRIC_DEFAULT';
  const rec = cryptoKey(store, input, 'ENCRYPT_DECRYPT', 'Encrypt');
  if (!encryptionAlgorithmsFor(rec.keySpec).includes(alg)) throw incompatible(alg, rec.keySpec);
  const ctx = encryptionContext(input, rec);
  dryRun(input);
  let blob: Buffer;
  if (rec.keySpec === 'SYMMETRIC_DEFAULT') {
    blob = sealSymmetric(rec.keyId, store.secret(rec), plaintext, ctx);
  } else {
    const max = oaepMaxPlaintext(rec.keySpec, alg);
    if (plaintext.length > max) {
      throw validation(`Algorithm ${alg} and key spec ${rec.keySpec} cannot encrypt data larger than ${max} bytes.`);
    }
    blob = rsaOaepEncrypt(store.privateKey(rec), alg, plaintext);
  }
  return { CiphertextBlob: b64(blob), KeyId: store.keyArn(rec.keyId), EncryptionAlgorithm: alg };
};

const decrypt: Operation = (store, input) => {
  const blob = input.blob('CiphertextBlob', { required: true, min: 1, max: 6144 });
  const alg = input.enumOf('EncryptionAlgorithm', ALL_ENCRYPTION_ALGORITHMS) ?? 'SYMMETRIC_DEFAULT';
  const requested = input.str('KeyId', { min: 1, max: 2048 });
  const embedded = blobKeyId(blob);
  let rec: KeyRecord;
  if (requested !== undefined) {
    rec = store.resolveKey(requested, { aliases: true });
  } else if (embedded !== null && alg === 'SYMMETRIC_DEFAULT') {
    try {
      rec = store.resolveKey(embedded, { aliases: false });
    } catch {
      throw invalidCiphertext();
    }
  } else {
    throw invalidCiphertext();
  }
  checkState(store, rec, 'enabled');
  checkUsage(store, rec, 'ENCRYPT_DECRYPT', 'Decrypt');
  if (!encryptionAlgorithmsFor(rec.keySpec).includes(alg)) throw incompatible(alg, rec.keySpec);
  const ctx = encryptionContext(input, rec);
  dryRun(input);
  let plaintext: Buffer;
  if (rec.keySpec === 'SYMMETRIC_DEFAULT') {
    if (embedded === null) throw invalidCiphertext();
    if (embedded !== rec.keyId) {
      throw new KmsError(
        'IncorrectKeyException',
        'The key ID in the request does not identify a CMK that can perform this operation.',
      );
    }
    try {
      plaintext = openSymmetric(store.secret(rec), blob, ctx);
    } catch {
      throw invalidCiphertext();
    }
  } else {
    try {
      plaintext = rsaOaepDecrypt(store.privateKey(rec), alg, blob);
    } catch {
      throw invalidCiphertext();
    }
  }
  return { KeyId: store.keyArn(rec.keyId), Plaintext: b64(plaintext), EncryptionAlgorithm: alg };
};

function dataKeyLength(input: Input): number {
  const spec = input.enumOf('KeySpec', ['AES_256', 'AES_128'] as const);
  const bytes = input.int('NumberOfBytes', { min: 1, max: 1024 });
  if ((spec === undefined) === (bytes === undefined))
    throw validation('Please specify either number of bytes or key spec.');
  return bytes ?? (spec === 'AES_128' ? 16 : 32);
}

const generateDataKey =
  (withPlaintext: boolean): Operation =>
  (store, input) => {
    const len = dataKeyLength(input);
    const op = withPlaintext ? 'GenerateDataKey' : 'GenerateDataKeyWithoutPlaintext';
    const rec = dataKeyWrappingKey(store, input, op);
    const ctx = encryptionContext(input, rec);
    dryRun(input);
    const plaintext = crypto.randomBytes(len);
    const out: Json = {
      CiphertextBlob: b64(sealSymmetric(rec.keyId, store.secret(rec), plaintext, ctx)),
      KeyId: store.keyArn(rec.keyId),
    };
    if (withPlaintext) out.Plaintext = b64(plaintext);
    return out;
  };

const generateDataKeyPair =
  (withPlaintext: boolean): Operation =>
  async (store, input) => {
    const spec = input.enumOf('KeyPairSpec', ALL_KEY_PAIR_SPECS, { required: true });
    const op = withPlaintext ? 'GenerateDataKeyPair' : 'GenerateDataKeyPairWithoutPlaintext';
    const rec = dataKeyWrappingKey(store, input, op);
    const ctx = encryptionContext(input, rec);
    if (!(SUPPORTED_KEY_PAIR_SPECS as readonly string[]).includes(spec)) {
      throw unsupported(`KeyPairSpec ${spec} is not supported by the local KMS.`);
    }
    dryRun(input);
    const pair = await generateKeyPair(spec as KeyPairSpec);
    const out: Json = {
      KeyId: store.keyArn(rec.keyId),
      KeyPairSpec: spec,
      PrivateKeyCiphertextBlob: b64(sealSymmetric(rec.keyId, store.secret(rec), pair.privateKeyDer, ctx)),
      PublicKey: b64(pair.publicKeyDer),
    };
    if (withPlaintext) out.PrivateKeyPlaintext = b64(pair.privateKeyDer);
    return out;
  };

const generateRandom: Operation = (_store, input) => {
  const n = input.int('NumberOfBytes', { min: 1, max: 1024 });
  if (n === undefined) throw validation('NumberOfBytes is required.');
  return { Plaintext: b64(crypto.randomBytes(n)) };
};

// ---------------------------------------------------------------------------------------------
// MACs

function macRequest(store: KmsStore, input: Input, operation: 'GenerateMac' | 'VerifyMac') {
  const message = input.blob('Message', { required: true, min: 1, max: 4096 });
  const alg = input.enumOf('MacAlgorithm', ALL_MAC_ALGORITHMS, { required: true });
  const mac = operation === 'VerifyMac' ? input.blob('Mac', { required: true, min: 1, max: 6144 }) : undefined;
  const rec = cryptoKey(store, input, 'GENERATE_VERIFY_MAC', operation);
  if (!macAlgorithmsFor(rec.keySpec).includes(alg)) throw incompatible(alg, rec.keySpec);
  dryRun(input);
  return { rec, alg, message, mac };
}

const generateMac: Operation = (store, input) => {
  const { rec, alg, message } = macRequest(store, input, 'GenerateMac');
  return { Mac: b64(hmac(store.secret(rec), alg, message)), MacAlgorithm: alg, KeyId: store.keyArn(rec.keyId) };
};

const verifyMac: Operation = (store, input) => {
  const { rec, alg, message, mac } = macRequest(store, input, 'VerifyMac');
  if (!hmacEqual(hmac(store.secret(rec), alg, message), mac as Buffer)) throw new KmsError('KMSInvalidMacException');
  return { KeyId: store.keyArn(rec.keyId), MacValid: true, MacAlgorithm: alg };
};

// ---------------------------------------------------------------------------------------------

export const OPERATIONS: Readonly<Record<string, Operation>> = {
  CancelKeyDeletion: cancelKeyDeletion,
  CreateAlias: createAlias,
  CreateKey: createKey,
  Decrypt: decrypt,
  DeleteAlias: deleteAlias,
  DescribeKey: describeKey,
  DisableKey: disableKey,
  EnableKey: enableKey,
  Encrypt: encrypt,
  GenerateDataKey: generateDataKey(true),
  GenerateDataKeyPair: generateDataKeyPair(true),
  GenerateDataKeyPairWithoutPlaintext: generateDataKeyPair(false),
  GenerateDataKeyWithoutPlaintext: generateDataKey(false),
  GenerateMac: generateMac,
  GenerateRandom: generateRandom,
  GetKeyPolicy: getKeyPolicy,
  GetPublicKey: getPublicKey,
  ListAliases: listAliases,
  ListKeys: listKeys,
  ListResourceTags: listResourceTags,
  ReplicateKey: replicateKey,
  ScheduleKeyDeletion: scheduleKeyDeletion,
  Sign: signOp,
  TagResource: tagResource,
  UntagResource: untagResource,
  UpdateAlias: updateAlias,
  UpdateKeyDescription: updateKeyDescription,
  Verify: verifyOp,
  VerifyMac: verifyMac,
};
