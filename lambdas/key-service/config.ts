/**
 * Key-service configuration: the key names it serves and where each private key lives (docs/architecture.md, "Custody modes").
 *
 * Read from the environment variable KEYLESS_KEYS, a JSON array such as
 *   [{"name":"localhost","custody":"kms","keyId":"alias/keyless-localhost"},
 *    {"name":"legacy","custody":"sealed","wrappingKeyId":"alias/keyless/prod/sealed-wrapping",
 *     "sealedKey":"<base64 PrivateKeyCiphertextBlob>","publicKey":"<base64 DER SPKI>"},
 *    {"name":"*","custody":"kms","aliasPrefix":"alias/keyless/prod/keys/"}]
 */
import * as crypto from 'node:crypto';
import { ConfigError } from '../../contract/key-service-errors';
import { KEY_NAME_PATTERN } from '../../contract/key-service-protocol';
import { servedCustodies, type HostedCustody, type HostedKeyConfig } from './backends/backend';
import {
  KEYS_ENV_VAR,
  type KmsAliasPrefixConfig,
  type KmsKeyConfig,
  type SealedKeyConfig,
} from '../../contract/keyless-keys-entry';
import { isObject } from '../../contract/json';

export { KEYS_ENV_VAR, type KmsAliasPrefixConfig, type KmsKeyConfig, type SealedKeyConfig };

/** A configured key: one of the Lambda's custody modes, or one its host added (the local stack's `file`). */
export type KeyConfig = KmsKeyConfig | SealedKeyConfig | HostedKeyConfig;

/** One KEYLESS_KEYS entry: a configured key, or the alias-prefix pattern. */
export type KeysConfigEntry = KeyConfig | KmsAliasPrefixConfig;

export function isAliasPrefixEntry(k: KeysConfigEntry): k is KmsAliasPrefixConfig {
  return k.name === '*';
}

/**
 * Key names the alias-prefix entry resolves: what a KMS alias name allows ([A-Za-z0-9/_-]) minus "/"
 * (a name is one alias segment), within the protocol's key-name alphabet.
 */
export const ALIAS_KEY_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const ALIAS_PREFIX_RE = /^alias\/(?:[A-Za-z0-9_-]+\/)+$/;
/** KMS alias names are at most 256 characters; leave room for a 64-character key name. */
const MAX_ALIAS_PREFIX = 256 - 64;

const MAX_KEYS = 256;
const MAX_KMS_KEY_ID = 2048;
/** KMS ciphertext blobs are at most 6144 bytes: 8192 base64 characters. */
const MAX_SEALED_KEY_B64 = 8192;
/** An RSA-4096 SPKI is 550 bytes; leave room. */
const MAX_PUBLIC_KEY_B64 = 2048;
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Parse and validate KEYLESS_KEYS. Throws ConfigError naming the field on any problem. */
export function parseKeysConfig(
  json: string,
  source: string = KEYS_ENV_VAR,
  hostedCustodies: readonly HostedCustody[] = [],
): KeysConfigEntry[] {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new ConfigError(`${source}: not valid JSON (expected an array of key objects)`);
  }
  return validateKeysConfig(raw, source, hostedCustodies);
}

/** Validate an already-parsed key list (same rules as parseKeysConfig). */
export function validateKeysConfig(
  raw: unknown,
  source: string = KEYS_ENV_VAR,
  hostedCustodies: readonly HostedCustody[] = [],
): KeysConfigEntry[] {
  if (!Array.isArray(raw)) throw new ConfigError(`${source}: expected a JSON array of key objects`);
  if (raw.length === 0) throw new ConfigError(`${source}: at least one key is required`);
  if (raw.length > MAX_KEYS) throw new ConfigError(`${source}: more than ${MAX_KEYS} keys`);
  const seen = new Set<string>();
  return raw.map((entry: unknown, i: number) => {
    const where = `${source}[${i}]`;
    const key =
      isObject(entry) && entry.name === '*'
        ? validateAliasPrefixEntry(entry, where)
        : validateKeyEntry(entry, where, hostedCustodies);
    if (key.name === '*' && seen.has('*'))
      throw new ConfigError(`${where}.name: only one "*" (alias prefix) entry is allowed`);
    if (seen.has(key.name)) throw new ConfigError(`${where}.name: duplicate key name "${key.name}"`);
    seen.add(key.name);
    return key;
  });
}

function validateKeyEntry(entry: unknown, where: string, hostedCustodies: readonly HostedCustody[]): KeyConfig {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    throw new ConfigError(`${where}: expected an object with name, custody and custody-specific fields`);
  }
  const obj = entry as Record<string, unknown>;
  const name = obj.name;
  if (typeof name !== 'string') throw new ConfigError(`${where}.name: expected a string`);
  if (!KEY_NAME_PATTERN.test(name)) {
    throw new ConfigError(`${where}.name: must be 1..64 characters of [A-Za-z0-9._:-]`);
  }
  const custody = obj.custody;
  const served = servedCustodies(hostedCustodies);
  if (custody === 'file' && !served.includes(custody)) {
    // The file backend is registered only by the local Lambda endpoint (local/lambda/): the
    // production bundle has no code that reads private keys from disk.
    throw new ConfigError(
      `${where}.custody: "file" custody is for local development only; this key service serves ${served.join(', ')}`,
    );
  }
  if (typeof custody !== 'string' || !served.includes(custody)) {
    throw new ConfigError(`${where}.custody: expected one of ${served.join(', ')}`);
  }
  switch (custody) {
    case 'kms': {
      rejectUnknownFields(obj, ['name', 'custody', 'keyId'], where);
      return { name, custody: 'kms', keyId: kmsKeyId(obj.keyId, `${where}.keyId`) };
    }
    case 'sealed': {
      rejectUnknownFields(obj, ['name', 'custody', 'wrappingKeyId', 'sealedKey', 'publicKey'], where);
      const wrappingKeyId = kmsKeyId(obj.wrappingKeyId, `${where}.wrappingKeyId`);
      const sealedKey = obj.sealedKey;
      if (
        typeof sealedKey !== 'string' ||
        sealedKey.length < 16 ||
        sealedKey.length > MAX_SEALED_KEY_B64 ||
        !BASE64_RE.test(sealedKey)
      ) {
        throw new ConfigError(
          `${where}.sealedKey: expected the base64 PrivateKeyCiphertextBlob from GenerateDataKeyPairWithoutPlaintext`,
        );
      }
      const publicKey = obj.publicKey;
      if (typeof publicKey !== 'string' || publicKey.length > MAX_PUBLIC_KEY_B64 || !BASE64_RE.test(publicKey)) {
        throw new ConfigError(`${where}.publicKey: expected a base64 DER SubjectPublicKeyInfo`);
      }
      let key: crypto.KeyObject;
      try {
        key = crypto.createPublicKey({ key: Buffer.from(publicKey, 'base64'), format: 'der', type: 'spki' });
      } catch {
        throw new ConfigError(`${where}.publicKey: not a DER SubjectPublicKeyInfo`);
      }
      if (key.asymmetricKeyType !== 'rsa' || (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
        throw new ConfigError(`${where}.publicKey: sealed keys are RSA keys of at least 2048 bits`);
      }
      return { name, custody: 'sealed', wrappingKeyId, sealedKey, publicKey };
    }
    default: {
      const hosted = hostedCustodies.find((h) => h.custody === custody);
      if (!hosted) throw new ConfigError(`${where}.custody: expected one of ${served.join(', ')}`);
      return hosted.parseEntry(obj, where);
    }
  }
}

function validateAliasPrefixEntry(obj: Record<string, unknown>, where: string): KmsAliasPrefixConfig {
  if (obj.custody !== 'kms')
    throw new ConfigError(`${where}.custody: the "*" entry resolves names by KMS alias, so its custody must be "kms"`);
  rejectUnknownFields(obj, ['name', 'custody', 'aliasPrefix'], where);
  const prefix = obj.aliasPrefix;
  if (
    typeof prefix !== 'string' ||
    prefix.length > MAX_ALIAS_PREFIX ||
    !ALIAS_PREFIX_RE.test(prefix) ||
    prefix.startsWith('alias/aws/')
  ) {
    throw new ConfigError(
      `${where}.aliasPrefix: expected an alias name prefix such as "alias/keyless/prod/keys/" (starts with alias/, ends with /, segments of [A-Za-z0-9_-], not under alias/aws/)`,
    );
  }
  return { name: '*', custody: 'kms', aliasPrefix: prefix };
}

function kmsKeyId(keyId: unknown, where: string): string {
  if (typeof keyId !== 'string' || keyId.length === 0) {
    throw new ConfigError(`${where}: expected a non-empty string (key id, key ARN, alias/... or alias ARN)`);
  }
  if (keyId.length > MAX_KMS_KEY_ID || /\s/.test(keyId))
    throw new ConfigError(`${where}: not a valid KMS key identifier`);
  return keyId;
}

export function rejectUnknownFields(obj: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) {
      throw new ConfigError(`${where}: unknown field "${k}" (allowed: ${allowed.join(', ')})`);
    }
  }
}

/** Read KEYLESS_KEYS from an environment (process.env by default), with the host's extra custody modes. */
export function loadKeysConfigFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  hostedCustodies: readonly HostedCustody[] = [],
): KeysConfigEntry[] {
  const json = env[KEYS_ENV_VAR];
  if (json === undefined || json.trim() === '') {
    throw new ConfigError(`${KEYS_ENV_VAR}: not set (expected a JSON array of key objects)`);
  }
  return parseKeysConfig(json, KEYS_ENV_VAR, hostedCustodies);
}
