/**
 * Signature schemes (RFC 8446 §4.2.3) as the TLS engine uses them: the product's table
 * (contract/signature-schemes.ts) and which of its schemes a certificate's key can make. Returned
 * signatures are verified by the key-service client (`keyless/verify.ts`) before they reach the wire.
 */
import * as crypto from 'node:crypto';
import { SIGNATURE_SCHEMES, type SignatureScheme } from '../../../contract/signature-schemes';

export { schemeById, SIGNATURE_SCHEMES, type SignatureScheme } from '../../../contract/signature-schemes';

/** What a certificate's key can sign with, derived from its public key. */
export interface KeyShape {
  keyType: 'rsa' | 'ec';
  curve?: string;
}

export function keyShape(publicKey: crypto.KeyObject): KeyShape {
  if (publicKey.asymmetricKeyType === 'rsa') return { keyType: 'rsa' };
  if (publicKey.asymmetricKeyType === 'ec') return { keyType: 'ec', curve: publicKey.asymmetricKeyDetails?.namedCurve };
  throw new Error(`unsupported certificate key type ${publicKey.asymmetricKeyType}`);
}

/** Schemes this key can produce for TLS 1.3, in server preference order. */
export function tls13SchemesFor(shape: KeyShape): SignatureScheme[] {
  return SIGNATURE_SCHEMES.filter(
    (s) => s.tls13 && s.keyType === shape.keyType && (s.keyType === 'rsa' || s.curve === shape.curve),
  );
}

/** The first of our schemes for this key that the peer offered, or undefined. */
export function chooseScheme(
  ours: readonly SignatureScheme[],
  peerOffered: readonly number[],
): SignatureScheme | undefined {
  return ours.find((s) => peerOffered.includes(s.id));
}
