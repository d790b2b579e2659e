/**
 * The seam between the key service's request handling and whoever holds a private key (DESIGN §3).
 * One Backend per configured key name. Implementations throw KeyServiceError for typed failures.
 */
import type { Custody, KeyDescription, SignatureSchemeName } from '../protocol';

export interface SignOutput {
  /** RSA: the raw signature; ECDSA: DER (what TLS sends). */
  signature: Buffer;
  /** Milliseconds spent in the backend (the KMS round trip, or the in-process signature). */
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
  /** The public key and its type; cached by the backend. */
  publicKey(): Promise<PublicKeyOutput>;
  /** What `ping` reports, without I/O: keySpec is 'UNKNOWN' until the backend has learned it. */
  describe(): KeyDescription;
}

export const UNKNOWN_KEY_SPEC = 'UNKNOWN';
