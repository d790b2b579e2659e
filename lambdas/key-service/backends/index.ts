import type { KMSClient } from '@aws-sdk/client-kms';
import { ConfigError } from '../../../contract/key-service-errors';
import type { KeyConfig } from '../config';
import { servedCustodies, type Backend, type HostedCustody } from './backend';
import { KmsBackend } from './kms';
import { SealedBackend } from './sealed';

export type {
  Backend,
  HostedCustody,
  HostedCustodyName,
  HostedKeyConfig,
  MasterSecretOutput,
  PublicKeyOutput,
  SignOutput,
} from './backend';
export { BUILT_IN_CUSTODIES, servedCustodies, UNKNOWN_KEY_SPEC } from './backend';
export { KmsBackend, createKmsClient, getSharedKmsClient } from './kms';
export { SealedBackend } from './sealed';

export interface BackendFactoryOptions {
  /** KMS client for `kms` and `sealed` keys; defaults to the container's shared client. */
  kmsClient?: KMSClient;
  /** Custody modes the host adds (the local Lambda endpoint: `file`); none in the Lambda. */
  hostedCustodies?: readonly HostedCustody[];
}

/** One backend per configured key; throws ConfigError. */
export function createBackend(key: KeyConfig, options: BackendFactoryOptions = {}): Backend {
  switch (key.custody) {
    case 'kms':
      return new KmsBackend({ name: key.name, keyId: key.keyId, client: options.kmsClient });
    case 'sealed':
      return new SealedBackend({ config: key, client: options.kmsClient });
    default: {
      const hosted = options.hostedCustodies?.find((c) => c.custody === key.custody);
      if (!hosted)
        throw new ConfigError(
          `key "${key.name}": custody "${key.custody}" is not served by this key service (it serves ${servedCustodies(options.hostedCustodies).join(', ')})`,
        );
      return hosted.createBackend(key);
    }
  }
}
