/**
 * Key-exchange groups (RFC 8446 §4.2.7, RFC 8422, draft-ietf-tls-ecdhe-mlkem). Ephemeral keys are
 * generated per handshake with node:crypto; peer shares are validated before use so a bad point or
 * encapsulation key is an illegal_parameter alert.
 */
import * as crypto from 'node:crypto';
import { AlertDescription, TlsAlert } from './alerts';

export interface NamedGroup {
  id: number;
  name: 'X25519MLKEM768' | 'x25519' | 'secp256r1' | 'secp384r1';
  /** Byte length of a valid client share. */
  shareLength: number;
  /** A post-quantum hybrid (ECDHE + ML-KEM): TLS 1.3 only, it has no TLS 1.2 ServerECDHParams form. */
  hybrid?: true;
}

/** ML-KEM-768 sizes (FIPS 203 §8, Table 3). */
const MLKEM768_ENCAPSULATION_KEY = 1184;
const MLKEM768_CIPHERTEXT = 1088;
const X25519_SHARE = 32;

/** draft-ietf-tls-ecdhe-mlkem §4.1: the client's share is the ML-KEM-768 encapsulation key, then its X25519 share. */
export const X25519MLKEM768: NamedGroup = {
  id: 0x11ec,
  name: 'X25519MLKEM768',
  shareLength: MLKEM768_ENCAPSULATION_KEY + X25519_SHARE,
  hybrid: true,
};

export const X25519: NamedGroup = { id: 0x001d, name: 'x25519', shareLength: 32 };
export const SECP256R1: NamedGroup = { id: 0x0017, name: 'secp256r1', shareLength: 65 };
export const SECP384R1: NamedGroup = { id: 0x0018, name: 'secp384r1', shareLength: 97 };

/** Server preference order: the post-quantum hybrid first (its protection holds if either half does). */
export const SUPPORTED_GROUPS: readonly NamedGroup[] = [X25519MLKEM768, X25519, SECP256R1, SECP384R1];

export function groupById(id: number): NamedGroup | undefined {
  return SUPPORTED_GROUPS.find((g) => g.id === id);
}

export function groupByName(name: string): NamedGroup | undefined {
  return SUPPORTED_GROUPS.find((g) => g.name.toLowerCase() === name.toLowerCase());
}

/** The groups TLS 1.2 can use (RFC 8422 ECDHE): hybrids are defined for TLS 1.3 only. */
export function tls12Groups(groups: readonly NamedGroup[]): readonly NamedGroup[] {
  return groups.filter((g) => !g.hybrid);
}

const ECDH_CURVE: Record<'secp256r1' | 'secp384r1', string> = { secp256r1: 'prime256v1', secp384r1: 'secp384r1' };

export interface EphemeralKey {
  group: NamedGroup;
  /** Our public share as sent in key_share / ServerECDHParams. */
  publicShare: Buffer;
  /** Computes the shared secret from the peer's share, validating it first. */
  agree(peerShare: Buffer): Buffer;
}

/** Our side of a TLS 1.3 key_share: the share to send back and the shared secret. */
export interface ServerKeyShare {
  publicShare: Buffer;
  sharedSecret: Buffer;
}

/**
 * TLS 1.3 (RFC 8446 §4.2.8): answer the client's share for `group`. For (EC)DHE that is a fresh key
 * pair; for the hybrid the server share depends on the client's, since ML-KEM encapsulates to it.
 */
export function respondToKeyShare(group: NamedGroup, clientShare: Buffer): ServerKeyShare {
  if (group.hybrid) return x25519MlKem768(clientShare);
  const ephemeral = generateEphemeral(group);
  return { sharedSecret: ephemeral.agree(clientShare), publicShare: ephemeral.publicShare };
}

/**
 * X25519MLKEM768 (draft-ietf-tls-ecdhe-mlkem-04). Unlike the other hybrids of the draft, the ML-KEM
 * part comes first everywhere:
 * - §4.1 client share = ML-KEM-768 encapsulation key (1184 bytes) ‖ X25519 share (32);
 * - §4.2 server share = ML-KEM-768 ciphertext (1088 bytes) ‖ X25519 share (32);
 * - §4.3 shared secret = ML-KEM shared secret (32 bytes) ‖ X25519 secret (32), 64 bytes.
 * A share of the wrong length, an encapsulation key that fails the FIPS 203 §7.2 input checks, or an
 * all-zero X25519 result is illegal_parameter (§4.1, RFC 8446 §4.2.8).
 */
function x25519MlKem768(clientShare: Buffer): ServerKeyShare {
  if (clientShare.length !== X25519MLKEM768.shareLength) {
    throw new TlsAlert(
      AlertDescription.illegal_parameter,
      `X25519MLKEM768 share must be ${X25519MLKEM768.shareLength} bytes, got ${clientShare.length}`,
    );
  }
  let encapsulationKey: crypto.KeyObject;
  try {
    // OpenSSL checks the key on import (FIPS 203 §7.2: length and every coefficient reduced mod q).
    // JWK ('AKP') is the cheapest import of a raw key, as for X25519 below.
    const pub = clientShare.subarray(0, MLKEM768_ENCAPSULATION_KEY).toString('base64url');
    encapsulationKey = crypto.createPublicKey({ key: { kty: 'AKP', alg: 'ML-KEM-768', pub }, format: 'jwk' });
  } catch {
    throw new TlsAlert(
      AlertDescription.illegal_parameter,
      'X25519MLKEM768 encapsulation key fails the ML-KEM input checks',
    );
  }
  const ecdh = generateEphemeral(X25519);
  const x25519Secret = ecdh.agree(clientShare.subarray(MLKEM768_ENCAPSULATION_KEY)); // illegal_parameter when unusable or all-zero
  const { sharedKey, ciphertext } = crypto.encapsulate(encapsulationKey);
  if (ciphertext.length !== MLKEM768_CIPHERTEXT) throw new Error(`ML-KEM-768 ciphertext of ${ciphertext.length} bytes`);
  return {
    publicShare: Buffer.concat([ciphertext, ecdh.publicShare]),
    sharedSecret: Buffer.concat([sharedKey, x25519Secret]),
  };
}

/** An (EC)DHE key pair for TLS 1.2 ServerECDHParams or a TLS 1.3 (EC)DHE share; not for hybrids. */
export function generateEphemeral(group: NamedGroup): EphemeralKey {
  if (group.hybrid) throw new Error(`${group.name} is a KEM hybrid: use respondToKeyShare`);
  if (group.name === 'x25519') {
    // Raw shares cross the KeyObject boundary as JWK: with OpenSSL 3 a JWK import is ~10x cheaper
    // than decoding a DER SubjectPublicKeyInfo (measured by npm run bench).
    const { privateKey, publicKey } = crypto.generateKeyPairSync('x25519');
    return {
      group,
      publicShare: Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'),
      agree(peerShare) {
        if (peerShare.length !== 32)
          throw new TlsAlert(AlertDescription.illegal_parameter, 'x25519 share must be 32 bytes');
        let secret: Buffer;
        try {
          const peer = crypto.createPublicKey({
            key: { kty: 'OKP', crv: 'X25519', x: peerShare.toString('base64url') },
            format: 'jwk',
          });
          secret = crypto.diffieHellman({ privateKey, publicKey: peer });
        } catch {
          // OpenSSL refuses to derive from a low-order point.
          throw new TlsAlert(AlertDescription.illegal_parameter, 'x25519 share is not usable');
        }
        // RFC 7748 §6.1 / RFC 8446 §7.4.2: an all-zero result means a low-order point.
        if (secret.every((b) => b === 0))
          throw new TlsAlert(AlertDescription.illegal_parameter, 'x25519 share is a low-order point');
        return secret;
      },
    };
  }
  const ecdh = crypto.createECDH(ECDH_CURVE[group.name as keyof typeof ECDH_CURVE]);
  const publicShare = ecdh.generateKeys();
  return {
    group,
    publicShare,
    agree(peerShare) {
      // RFC 8446 §4.2.8.2: only the uncompressed form is valid.
      if (peerShare.length !== group.shareLength || peerShare[0] !== 0x04) {
        throw new TlsAlert(AlertDescription.illegal_parameter, `${group.name} share must be an uncompressed point`);
      }
      try {
        return ecdh.computeSecret(peerShare); // throws when the point is not on the curve
      } catch {
        throw new TlsAlert(AlertDescription.illegal_parameter, `${group.name} share is not a valid point`);
      }
    },
  };
}
