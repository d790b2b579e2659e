/**
 * Signature schemes (RFC 8446 §4.2.3): code points and which key each needs. Returned signatures
 * are verified by the key-service client (`keyless/verify.ts`) before they reach the wire.
 */
import * as crypto from 'node:crypto';
import type { SignatureSchemeName } from '../../../contract/key-service-protocol';

export interface SignatureScheme {
  id: number;
  name: SignatureSchemeName;
  keyType: 'rsa' | 'ec';
  /** For ECDSA in TLS 1.3 the curve is bound to the scheme. */
  curve?: 'prime256v1' | 'secp384r1' | 'secp521r1';
  hash: 'sha256' | 'sha384' | 'sha512';
  padding?: 'pss' | 'pkcs1';
  /** Allowed in TLS 1.3 CertificateVerify (RFC 8446 §4.4.3 forbids RSASSA-PKCS1-v1_5 there). */
  tls13: boolean;
}

export const SIGNATURE_SCHEMES: readonly SignatureScheme[] = [
  { id: 0x0403, name: 'ecdsa_secp256r1_sha256', keyType: 'ec', curve: 'prime256v1', hash: 'sha256', tls13: true },
  { id: 0x0503, name: 'ecdsa_secp384r1_sha384', keyType: 'ec', curve: 'secp384r1', hash: 'sha384', tls13: true },
  { id: 0x0603, name: 'ecdsa_secp521r1_sha512', keyType: 'ec', curve: 'secp521r1', hash: 'sha512', tls13: true },
  { id: 0x0804, name: 'rsa_pss_rsae_sha256', keyType: 'rsa', hash: 'sha256', padding: 'pss', tls13: true },
  { id: 0x0805, name: 'rsa_pss_rsae_sha384', keyType: 'rsa', hash: 'sha384', padding: 'pss', tls13: true },
  { id: 0x0806, name: 'rsa_pss_rsae_sha512', keyType: 'rsa', hash: 'sha512', padding: 'pss', tls13: true },
  { id: 0x0401, name: 'rsa_pkcs1_sha256', keyType: 'rsa', hash: 'sha256', padding: 'pkcs1', tls13: false },
  { id: 0x0501, name: 'rsa_pkcs1_sha384', keyType: 'rsa', hash: 'sha384', padding: 'pkcs1', tls13: false },
  { id: 0x0601, name: 'rsa_pkcs1_sha512', keyType: 'rsa', hash: 'sha512', padding: 'pkcs1', tls13: false },
];

export function schemeById(id: number): SignatureScheme | undefined {
  return SIGNATURE_SCHEMES.find((s) => s.id === id);
}
export function schemeByName(name: string): SignatureScheme | undefined {
  return SIGNATURE_SCHEMES.find((s) => s.name === name);
}

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
  return SIGNATURE_SCHEMES.filter((s) => s.tls13 && s.keyType === shape.keyType && (s.keyType === 'rsa' || s.curve === shape.curve));
}

/** The first of our schemes for this key that the peer offered, or undefined. */
export function chooseScheme(ours: readonly SignatureScheme[], peerOffered: readonly number[]): SignatureScheme | undefined {
  return ours.find((s) => peerOffered.includes(s.id));
}
