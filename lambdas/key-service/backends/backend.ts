/**
 * The seam between the key service's request handling and whoever holds a private key (docs/architecture.md, "Custody modes").
 * One Backend per configured key name. Implementations throw KeyServiceError for typed failures.
 */
import type { Custody, KeyDescription, SignatureSchemeName } from '../../../contract/key-service-protocol';
import type { RsaMasterSecretParams } from '../rsa-premaster';

export interface SignOutput {
  /** RSA: the raw signature; ECDSA: DER (what TLS sends). */
  signature: Buffer;
  /** Milliseconds spent in the backend (the KMS round trip, or the in-process signature). */
  backendMs: number;
}

export interface MasterSecretOutput {
  /** 48 bytes: the master secret of one TLS 1.2 session (never the premaster). */
  masterSecret: Buffer;
  /** Milliseconds spent in the backend (RSA decryption and PRF, plus an unseal on first use). */
  backendMs: number;
}

export interface PublicKeyOutput {
  /** DER SubjectPublicKeyInfo. */
  spki: Buffer;
  /** KMS KeySpec vocabulary: RSA_2048, ECC_NIST_P256, ... */
  keySpec: string;
}

export interface Backend {
  readonly name: string;
  readonly custody: Custody;
  /**
   * Sign `message` (the complete content, not a digest: the backend hashes it with the scheme's
   * hash) with the scheme's algorithm. The caller has already checked scheme/key compatibility.
   */
  sign(message: Buffer, scheme: SignatureSchemeName): Promise<SignOutput>;
  /**
   * TLS 1.2 RSA key exchange: decrypt the EncryptedPreMasterSecret with implicit rejection and
   * derive the master secret. The handler has already run the public checks
   * (checkRsaMasterSecretRequest). Custody that cannot decrypt PKCS#1 v1.5 (`kms`) throws
   * KeyServiceError('unsupported').
   */
  rsaMasterSecret(params: RsaMasterSecretParams): Promise<MasterSecretOutput>;
  /** The public key and its type; cached by the backend. */
  publicKey(): Promise<PublicKeyOutput>;
  /** What `ping` reports, without I/O: keySpec is 'UNKNOWN' until the backend has learned it. */
  describe(): KeyDescription;
}

export const UNKNOWN_KEY_SPEC = 'UNKNOWN';

/** The custody modes every key service serves, the production Lambda's only ones. */
export const BUILT_IN_CUSTODIES = ['kms', 'sealed'] as const;

/** A custody mode only a host adds (the local Lambda endpoint: `file`). */
export type HostedCustodyName = Exclude<Custody, (typeof BUILT_IN_CUSTODIES)[number]>;

/** A KEYLESS_KEYS entry of a hosted custody mode; its other fields are the mode's own. */
export interface HostedKeyConfig {
  name: string;
  custody: HostedCustodyName;
  [field: string]: unknown;
}

/**
 * A custody mode the process hosting the handler registers next to `kms` and `sealed`: the local
 * Lambda endpoint registers `file` (local/lambda/file-backend.ts), so the production bundle carries
 * no code that reads private keys from disk (docs/architecture.md, "Custody modes").
 */
export interface HostedCustody {
  readonly custody: HostedCustodyName;
  /** Validate an entry of this mode (name and custody already checked). Throws ConfigError naming the field. */
  parseEntry(entry: Record<string, unknown>, where: string): HostedKeyConfig;
  /** The entry's backend; reads key material once. Throws ConfigError. */
  createBackend(config: HostedKeyConfig): Backend;
}

/** The custody modes a key service with these hosted modes serves. */
export function servedCustodies(hostedCustodies: readonly HostedCustody[] = []): string[] {
  return [...BUILT_IN_CUSTODIES, ...hostedCustodies.map((c) => c.custody)];
}
