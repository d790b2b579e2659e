/**
 * Key-exchange groups (RFC 8446 §4.2.7, RFC 8422). Ephemeral keys are generated per handshake with
 * node:crypto; peer shares are validated before use so a bad point is an illegal_parameter alert.
 */
import * as crypto from 'node:crypto';
import { AlertDescription, TlsAlert } from './alerts';

export interface NamedGroup {
  id: number;
  name: 'x25519' | 'secp256r1' | 'secp384r1';
  /** Byte length of a valid public share. */
  shareLength: number;
}

export const X25519: NamedGroup = { id: 0x001d, name: 'x25519', shareLength: 32 };
export const SECP256R1: NamedGroup = { id: 0x0017, name: 'secp256r1', shareLength: 65 };
export const SECP384R1: NamedGroup = { id: 0x0018, name: 'secp384r1', shareLength: 97 };

/** Server preference order. */
export const SUPPORTED_GROUPS: readonly NamedGroup[] = [X25519, SECP256R1, SECP384R1];

export function groupById(id: number): NamedGroup | undefined {
  return SUPPORTED_GROUPS.find((g) => g.id === id);
}

const ECDH_CURVE: Record<'secp256r1' | 'secp384r1', string> = { secp256r1: 'prime256v1', secp384r1: 'secp384r1' };

export interface EphemeralKey {
  group: NamedGroup;
  /** Our public share as sent in key_share / ServerECDHParams. */
  publicShare: Buffer;
  /** Computes the shared secret from the peer's share, validating it first. */
  agree(peerShare: Buffer): Buffer;
}

export function generateEphemeral(group: NamedGroup): EphemeralKey {
  if (group.name === 'x25519') {
    // Raw shares cross the KeyObject boundary as JWK: with OpenSSL 3 a JWK import is ~10x cheaper
    // than decoding a DER SubjectPublicKeyInfo (measured by npm run bench).
    const { privateKey, publicKey } = crypto.generateKeyPairSync('x25519');
    return {
      group,
      publicShare: Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'),
      agree(peerShare) {
        if (peerShare.length !== 32) throw new TlsAlert(AlertDescription.illegal_parameter, 'x25519 share must be 32 bytes');
        let secret: Buffer;
        try {
          const peer = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: peerShare.toString('base64url') }, format: 'jwk' });
          secret = crypto.diffieHellman({ privateKey, publicKey: peer });
        } catch {
          // OpenSSL refuses to derive from a low-order point.
          throw new TlsAlert(AlertDescription.illegal_parameter, 'x25519 share is not usable');
        }
        // RFC 7748 §6.1 / RFC 8446 §7.4.2: an all-zero result means a low-order point.
        if (secret.every((b) => b === 0)) throw new TlsAlert(AlertDescription.illegal_parameter, 'x25519 share is a low-order point');
        return secret;
      },
    };
  }
  const ecdh = crypto.createECDH(ECDH_CURVE[group.name]);
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
