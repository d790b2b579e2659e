/**
 * Key-service configuration: the key names it serves and where each private key lives (DESIGN §3).
 *
 * Read from the environment variable KEYLESS_KEYS, a JSON array such as
 *   [{"name":"localhost","custody":"kms","keyId":"alias/keyless-localhost"},
 *    {"name":"dev","custody":"file","path":"/abs/key.pem"}]
 */
import * as path from 'node:path';
import { ConfigError } from './errors';
import { KEY_NAME_PATTERN, type Custody } from './protocol';

export const KEYS_ENV_VAR = 'KEYLESS_KEYS';

export interface KmsKeyConfig {
  name: string;
  custody: 'kms';
  /** KMS key id, key ARN, alias name (alias/...) or alias ARN. */
  keyId: string;
}

export interface FileKeyConfig {
  name: string;
  custody: 'file';
  /** Absolute path of an unencrypted PEM private key (PKCS#8, PKCS#1 or SEC1). Development only. */
  path: string;
}

/**
 * `sealed` custody (a KMS-wrapped RSA key unsealed in the function's memory) is accepted in the
 * configuration but not served yet: its own fields are kept, unvalidated, for the sealed backend.
 */
export interface SealedKeyConfig {
  name: string;
  custody: 'sealed';
  settings: Readonly<Record<string, unknown>>;
}

export type KeyConfig = KmsKeyConfig | FileKeyConfig | SealedKeyConfig;

const CUSTODIES: readonly Custody[] = ['kms', 'file', 'sealed'];
const MAX_KEYS = 256;
const MAX_KMS_KEY_ID = 2048;

/** Parse and validate KEYLESS_KEYS. Throws ConfigError naming the field on any problem. */
export function parseKeysConfig(json: string, source: string = KEYS_ENV_VAR): KeyConfig[] {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new ConfigError(`${source}: not valid JSON (expected an array of key objects)`);
  }
  return validateKeysConfig(raw, source);
}

/** Validate an already-parsed key list (same rules as parseKeysConfig). */
export function validateKeysConfig(raw: unknown, source: string = KEYS_ENV_VAR): KeyConfig[] {
  if (!Array.isArray(raw)) throw new ConfigError(`${source}: expected a JSON array of key objects`);
  if (raw.length === 0) throw new ConfigError(`${source}: at least one key is required`);
  if (raw.length > MAX_KEYS) throw new ConfigError(`${source}: more than ${MAX_KEYS} keys`);
  const seen = new Set<string>();
  return raw.map((entry: unknown, i: number) => {
    const where = `${source}[${i}]`;
    const key = validateKeyEntry(entry, where);
    if (seen.has(key.name)) throw new ConfigError(`${where}.name: duplicate key name "${key.name}"`);
    seen.add(key.name);
    return key;
  });
}

function validateKeyEntry(entry: unknown, where: string): KeyConfig {
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
  if (typeof custody !== 'string' || !(CUSTODIES as readonly string[]).includes(custody)) {
    throw new ConfigError(`${where}.custody: expected one of ${CUSTODIES.join(', ')}`);
  }
  switch (custody as Custody) {
    case 'kms': {
      rejectUnknownFields(obj, ['name', 'custody', 'keyId'], where);
      const keyId = obj.keyId;
      if (typeof keyId !== 'string' || keyId.length === 0) {
        throw new ConfigError(`${where}.keyId: expected a non-empty string (key id, key ARN, alias/... or alias ARN)`);
      }
      if (keyId.length > MAX_KMS_KEY_ID || /\s/.test(keyId)) {
        throw new ConfigError(`${where}.keyId: not a valid KMS key identifier`);
      }
      return { name, custody: 'kms', keyId };
    }
    case 'file': {
      rejectUnknownFields(obj, ['name', 'custody', 'path'], where);
      const p = obj.path;
      if (typeof p !== 'string' || p.length === 0) throw new ConfigError(`${where}.path: expected a non-empty string`);
      if (!path.isAbsolute(p)) throw new ConfigError(`${where}.path: must be an absolute path`);
      return { name, custody: 'file', path: p };
    }
    case 'sealed': {
      const settings: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(obj)) if (k !== 'name' && k !== 'custody') settings[k] = v;
      return { name, custody: 'sealed', settings };
    }
  }
}

function rejectUnknownFields(obj: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) {
      throw new ConfigError(`${where}: unknown field "${k}" (allowed: ${allowed.join(', ')})`);
    }
  }
}

/** Read KEYLESS_KEYS from an environment (process.env by default). */
export function loadKeysConfigFromEnv(env: NodeJS.ProcessEnv = process.env): KeyConfig[] {
  const json = env[KEYS_ENV_VAR];
  if (json === undefined || json.trim() === '') {
    throw new ConfigError(`${KEYS_ENV_VAR}: not set (expected a JSON array of key objects)`);
  }
  return parseKeysConfig(json);
}
