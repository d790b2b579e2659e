/**
 * Verification of key-service signatures on the edge (docs/architecture.md, "Deployables"): every signature is checked against
 * the certificate's public key before the TLS engine sends it, so a misconfigured or compromised key
 * service cannot make the edge send a CertificateVerify that does not match the certificate.
 */
import * as crypto from 'node:crypto';
import {
  SCHEME_HASH,
  keySpecOfKeyObject,
  schemeMatchesKeySpec,
  tls12ServerKeyExchangeContent,
  tls13CertificateVerifyContent,
  type SignatureSchemeName,
} from '../../../contract/key-service-protocol';

/** What the TLS engine may hand over to identify a key: the certificate or its public key. */
export type CertificateKeyInput = crypto.KeyObject | crypto.X509Certificate | Buffer | string;

/**
 * A public KeyObject from a certificate (X509Certificate, DER or PEM) or a SubjectPublicKeyInfo (DER
 * or PEM). Private keys are refused: the edge never needs one. Throws TypeError.
 */
export function toVerificationKey(input: CertificateKeyInput): crypto.KeyObject {
  let key: crypto.KeyObject;
  if (input instanceof crypto.X509Certificate) {
    key = input.publicKey;
  } else if (input instanceof crypto.KeyObject) {
    if (input.type !== 'public')
      throw new TypeError('expected a public key or certificate; the edge must never hold a private key');
    key = input;
  } else if (typeof input === 'string') {
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(input)) {
      throw new TypeError('expected a public key or certificate; the edge must never hold a private key');
    }
    if (input.includes('-----BEGIN CERTIFICATE-----')) key = new crypto.X509Certificate(input).publicKey;
    else if (input.includes('-----BEGIN PUBLIC KEY-----')) key = crypto.createPublicKey({ key: input, format: 'pem' });
    else throw new TypeError('expected a PEM certificate or PEM public key');
  } else if (Buffer.isBuffer(input)) {
    key = parseDer(input);
  } else {
    throw new TypeError('expected a certificate or public key');
  }
  if (keySpecOfKeyObject(key) === undefined) {
    throw new TypeError('unsupported public key type (need RSA, or EC on P-256/P-384/P-521)');
  }
  return key;
}

function parseDer(der: Buffer): crypto.KeyObject {
  try {
    return crypto.createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch {
    // not an SPKI; try a certificate
  }
  try {
    return new crypto.X509Certificate(der).publicKey;
  } catch {
    throw new TypeError('expected a DER SubjectPublicKeyInfo or DER certificate');
  }
}

/** Whether `scheme` can be produced by the private half of `key`. */
export function schemeMatchesKey(scheme: SignatureSchemeName, key: crypto.KeyObject): boolean {
  const spec = keySpecOfKeyObject(key);
  return spec !== undefined && schemeMatchesKeySpec(scheme, spec);
}

/**
 * Verify a TLS signature of `scheme` over `content` (the complete signed bytes): RSA-PSS with salt
 * length = hash length (RFC 8446 §4.2.3, also for TLS 1.2's rsa_pss_rsae_*), PKCS#1 v1.5, or DER
 * ECDSA. False on any mismatch or malformed signature; never throws for bad signatures.
 */
export function verifyTlsSignature(
  key: crypto.KeyObject,
  scheme: SignatureSchemeName,
  content: Buffer,
  signature: Buffer,
): boolean {
  if (!schemeMatchesKey(scheme, key)) return false;
  const { hash, length } = SCHEME_HASH[scheme];
  let verifyKey: crypto.VerifyKeyObjectInput;
  if (scheme.startsWith('rsa_pss_rsae_')) {
    verifyKey = { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: length };
  } else if (scheme.startsWith('rsa_pkcs1_')) {
    verifyKey = { key, padding: crypto.constants.RSA_PKCS1_PADDING };
  } else {
    verifyKey = { key, dsaEncoding: 'der' };
  }
  try {
    return crypto.verify(hash, content, verifyKey, signature);
  } catch {
    return false;
  }
}

/**
 * Verify a TLS 1.3 server CertificateVerify signature (RFC 8446 §4.4.3) over the transcript hash.
 * False on any mismatch or malformed signature; never throws for bad signatures.
 */
export function verifyTls13CertificateVerify(
  key: crypto.KeyObject,
  scheme: SignatureSchemeName,
  transcriptHash: Buffer,
  signature: Buffer,
): boolean {
  return verifyTlsSignature(key, scheme, tls13CertificateVerifyContent(transcriptHash), signature);
}

/**
 * Verify a TLS 1.2 ServerKeyExchange signature (RFC 5246 §7.4.3, RFC 8422 §5.4) over
 * client_random ‖ server_random ‖ params. False on any mismatch; never throws for bad signatures.
 */
export function verifyTls12ServerKeyExchange(
  key: crypto.KeyObject,
  scheme: SignatureSchemeName,
  clientRandom: Buffer,
  serverRandom: Buffer,
  params: Buffer,
  signature: Buffer,
): boolean {
  return verifyTlsSignature(key, scheme, tls12ServerKeyExchangeContent(clientRandom, serverRandom, params), signature);
}
