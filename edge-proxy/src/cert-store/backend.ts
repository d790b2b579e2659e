/**
 * Where the edge fleet reads its certificates and where the `keyless` CLI writes them: SSM Parameter
 * Store in AWS (ssm.ts), a directory locally (directory.ts). Certificates are public data; both
 * backends refuse anything that carries a private key.
 */
import type { CertificateEntryInput, StoredCertificate } from '../../../contract/certificate-store-entry';

export interface CertificateStoreBackend {
  /** Human-readable location for messages, e.g. `ssm:/keyless/prod/certs/` or `dir:/srv/keyless/certs`. */
  readonly location: string;
  /**
   * Every entry, sorted by id. Throws when the store cannot be read or an entry is invalid (a ConfigError
   * naming the entry): the edge then keeps serving its last good set.
   */
  list(): Promise<StoredCertificate[]>;
  /** Creates or replaces the entry `entry.id ?? entry.keyName` (atomically: readers see the old or the new value). */
  put(entry: CertificateEntryInput): Promise<void>;
  /** Removes an entry; removing an entry that does not exist is not an error (steps are re-runnable). */
  remove(id: string): Promise<void>;
}
