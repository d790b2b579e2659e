/**
 * The key service as the local stack hosts it: the production handler with the `file` custody
 * registered (docs/architecture.md, "Custody modes"). Only this host, its tests and tools register
 * it; the Lambda bundle (lambdas/key-service/handler.ts) serves `kms` and `sealed` only.
 */
import { createHandler, type KeyServiceHandler, type KeyServiceOptions } from '../../lambdas/key-service/handler';
import { loadKeysConfigFromEnv, parseKeysConfig, type KeysConfigEntry } from '../../lambdas/key-service/config';
import { KEYS_ENV_VAR } from '../../contract/keyless-keys-entry';
import { FILE_CUSTODY } from './file-backend';

/** The custody modes the local host adds to `kms` and `sealed`. */
export const LOCAL_CUSTODIES = [FILE_CUSTODY] as const;

/** A key-service handler that also serves `file` keys. Throws ConfigError like createHandler. */
export function createLocalHandler(options: KeyServiceOptions = {}): KeyServiceHandler {
  return createHandler({ ...options, hostedCustodies: [...LOCAL_CUSTODIES, ...(options.hostedCustodies ?? [])] });
}

/** KEYLESS_KEYS as the local host reads it (`file` entries allowed). */
export function loadLocalKeysConfig(env: NodeJS.ProcessEnv = process.env): KeysConfigEntry[] {
  return loadKeysConfigFromEnv(env, LOCAL_CUSTODIES);
}

/** parseKeysConfig with `file` entries allowed. */
export function parseLocalKeysConfig(json: string, source: string = KEYS_ENV_VAR): KeysConfigEntry[] {
  return parseKeysConfig(json, source, LOCAL_CUSTODIES);
}
