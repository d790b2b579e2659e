/** The certificate store (public data): one interface, an SSM and a directory backend. */
import type { SSMClient } from '@aws-sdk/client-ssm';
import type { CertificateStoreBackend } from './backend';
import { DirectoryCertificateStore } from './directory';
import { createSsmClient, SsmCertificateStore } from './ssm';

export type { CertificateStoreBackend } from './backend';
export { DirectoryCertificateStore } from './directory';
export { SsmCertificateStore, createSsmClient } from './ssm';
export * from '../../../contract/certificate-store-entry';

/** Where a store lives: exactly one of an SSM prefix or a directory. */
export type CertificateStoreLocation =
  { ssmPrefix: string; directory?: undefined } | { directory: string; ssmPrefix?: undefined };

/**
 * The backend for a location. For SSM, pass a client to share (its owner destroys it); otherwise one
 * is created from the environment's region and credentials and `close()` destroys it.
 */
export function openCertificateStore(
  location: CertificateStoreLocation,
  ssmClient?: SSMClient,
): { store: CertificateStoreBackend; close(): void } {
  if (location.directory !== undefined)
    return { store: new DirectoryCertificateStore(location.directory), close: () => undefined };
  const client = ssmClient ?? createSsmClient();
  return {
    store: new SsmCertificateStore(client, location.ssmPrefix),
    close: () => (ssmClient ? undefined : client.destroy()),
  };
}
