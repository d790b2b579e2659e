import type { KMSClient } from '@aws-sdk/client-kms';
import type { KeyConfig } from '../config';
import type { Backend } from './backend';
import { FileBackend } from './file';
import { KmsBackend } from './kms';
import { SealedBackend } from './sealed';

export type { Backend, MasterSecretOutput, PublicKeyOutput, SignOutput } from './backend';
export { UNKNOWN_KEY_SPEC } from './backend';
export { FileBackend } from './file';
export { KmsBackend, createKmsClient, getSharedKmsClient } from './kms';
export { SealedBackend } from './sealed';

export interface BackendFactoryOptions {
  /** KMS client for `kms` and `sealed` keys; defaults to the container's shared client. */
  kmsClient?: KMSClient;
}

/** One backend per configured key. File keys are read here (once); throws ConfigError. */
export function createBackend(key: KeyConfig, options: BackendFactoryOptions = {}): Backend {
  switch (key.custody) {
    case 'kms':
      return new KmsBackend({ name: key.name, keyId: key.keyId, client: options.kmsClient });
    case 'file':
      return new FileBackend({ name: key.name, path: key.path });
    case 'sealed':
      return new SealedBackend({ config: key, client: options.kmsClient });
  }
}
