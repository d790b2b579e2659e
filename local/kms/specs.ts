/**
 * Static facts about KMS key specs and algorithms (AWS KMS Developer Guide, "Key spec reference",
 * and the API reference enums). Everything here is data; no behaviour.
 */

/** All values of the KMS `KeySpec` enum (so an unknown value is a ValidationException, as in KMS). */
export const ALL_KEY_SPECS = [
  'RSA_2048',
  'RSA_3072',
  'RSA_4096',
  'ECC_NIST_P256',
  'ECC_NIST_P384',
  'ECC_NIST_P521',
  'ECC_SECG_P256K1',
  'ECC_NIST_EDWARDS25519',
  'SYMMETRIC_DEFAULT',
  'HMAC_224',
  'HMAC_256',
  'HMAC_384',
  'HMAC_512',
  'SM2',
  'ML_DSA_44',
  'ML_DSA_65',
  'ML_DSA_87',
] as const;

/** The key specs this local endpoint implements. The rest are accepted by the enum check, then refused. */
export const SUPPORTED_KEY_SPECS = [
  'RSA_2048',
  'RSA_3072',
  'RSA_4096',
  'ECC_NIST_P256',
  'ECC_NIST_P384',
  'ECC_NIST_P521',
  'ECC_SECG_P256K1',
  'SYMMETRIC_DEFAULT',
  'HMAC_224',
  'HMAC_256',
  'HMAC_384',
  'HMAC_512',
] as const;
export type KeySpec = (typeof SUPPORTED_KEY_SPECS)[number];

export const ALL_KEY_USAGES = ['SIGN_VERIFY', 'ENCRYPT_DECRYPT', 'GENERATE_VERIFY_MAC', 'KEY_AGREEMENT'] as const;
export type KeyUsage = 'SIGN_VERIFY' | 'ENCRYPT_DECRYPT' | 'GENERATE_VERIFY_MAC';

export const ALL_SIGNING_ALGORITHMS = [
  'RSASSA_PSS_SHA_256',
  'RSASSA_PSS_SHA_384',
  'RSASSA_PSS_SHA_512',
  'RSASSA_PKCS1_V1_5_SHA_256',
  'RSASSA_PKCS1_V1_5_SHA_384',
  'RSASSA_PKCS1_V1_5_SHA_512',
  'ECDSA_SHA_256',
  'ECDSA_SHA_384',
  'ECDSA_SHA_512',
  'SM2DSA',
  'ML_DSA_SHAKE_256',
  'ED25519_SHA_512',
  'ED25519_PH_SHA_512',
] as const;
export type SigningAlgorithm = (typeof ALL_SIGNING_ALGORITHMS)[number];

export const ALL_ENCRYPTION_ALGORITHMS = [
  'SYMMETRIC_DEFAULT',
  'RSAES_OAEP_SHA_1',
  'RSAES_OAEP_SHA_256',
  'SM2PKE',
] as const;
export type EncryptionAlgorithm = (typeof ALL_ENCRYPTION_ALGORITHMS)[number];

export const ALL_MAC_ALGORITHMS = ['HMAC_SHA_224', 'HMAC_SHA_256', 'HMAC_SHA_384', 'HMAC_SHA_512'] as const;
export type MacAlgorithm = (typeof ALL_MAC_ALGORITHMS)[number];

export const ALL_MESSAGE_TYPES = ['RAW', 'DIGEST', 'EXTERNAL_MU'] as const;

/** `DataKeyPairSpec` enum; the supported subset is what node:crypto can generate. */
export const ALL_KEY_PAIR_SPECS = [
  'RSA_2048',
  'RSA_3072',
  'RSA_4096',
  'ECC_NIST_P256',
  'ECC_NIST_P384',
  'ECC_NIST_P521',
  'ECC_SECG_P256K1',
  'ECC_NIST_EDWARDS25519',
  'SM2',
] as const;
export const SUPPORTED_KEY_PAIR_SPECS = [
  'RSA_2048',
  'RSA_3072',
  'RSA_4096',
  'ECC_NIST_P256',
  'ECC_NIST_P384',
  'ECC_NIST_P521',
  'ECC_SECG_P256K1',
] as const;
export type KeyPairSpec = (typeof SUPPORTED_KEY_PAIR_SPECS)[number];

export const RSA_BITS: Record<string, number> = { RSA_2048: 2048, RSA_3072: 3072, RSA_4096: 4096 };

/** node:crypto curve names (usable with generateKeyPair and createECDH). */
export const EC_CURVES: Record<string, string> = {
  ECC_NIST_P256: 'prime256v1',
  ECC_NIST_P384: 'secp384r1',
  ECC_NIST_P521: 'secp521r1',
  ECC_SECG_P256K1: 'secp256k1',
};

/** HMAC key length in bytes, by key spec. */
export const HMAC_KEY_BYTES: Record<string, number> = { HMAC_224: 28, HMAC_256: 32, HMAC_384: 48, HMAC_512: 64 };

export const isRsa = (spec: string): boolean => spec in RSA_BITS;
export const isEcc = (spec: string): boolean => spec in EC_CURVES;
export const isHmac = (spec: string): boolean => spec in HMAC_KEY_BYTES;
export const isAsymmetric = (spec: string): boolean => isRsa(spec) || isEcc(spec);

/** Hash function used by a signing algorithm. */
export interface HashInfo {
  /** node:crypto name */
  node: 'sha256' | 'sha384' | 'sha512';
  bytes: number;
}
const SHA: Record<string, HashInfo> = {
  SHA_256: { node: 'sha256', bytes: 32 },
  SHA_384: { node: 'sha384', bytes: 48 },
  SHA_512: { node: 'sha512', bytes: 64 },
};
export function signingHash(alg: SigningAlgorithm): HashInfo {
  const m = /SHA_(256|384|512)$/.exec(alg);
  if (!m) throw new Error(`no hash for ${alg}`);
  return SHA[`SHA_${m[1]}`];
}

/**
 * Signing algorithms KMS offers for a key, in the order DescribeKey lists them.
 * ECC keys are bound to one hash: P-256 (and secp256k1) → SHA-256, P-384 → SHA-384, P-521 → SHA-512.
 */
export function signingAlgorithmsFor(spec: KeySpec): SigningAlgorithm[] {
  if (isRsa(spec)) {
    return [
      'RSASSA_PKCS1_V1_5_SHA_256',
      'RSASSA_PKCS1_V1_5_SHA_384',
      'RSASSA_PKCS1_V1_5_SHA_512',
      'RSASSA_PSS_SHA_256',
      'RSASSA_PSS_SHA_384',
      'RSASSA_PSS_SHA_512',
    ];
  }
  switch (spec) {
    case 'ECC_NIST_P256':
    case 'ECC_SECG_P256K1':
      return ['ECDSA_SHA_256'];
    case 'ECC_NIST_P384':
      return ['ECDSA_SHA_384'];
    case 'ECC_NIST_P521':
      return ['ECDSA_SHA_512'];
    default:
      return [];
  }
}

/** Encryption algorithms for an ENCRYPT_DECRYPT key: RSA keys support OAEP only (no PKCS#1 v1.5, no raw). */
export function encryptionAlgorithmsFor(spec: KeySpec): EncryptionAlgorithm[] {
  if (spec === 'SYMMETRIC_DEFAULT') return ['SYMMETRIC_DEFAULT'];
  if (isRsa(spec)) return ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'];
  return [];
}

export function macAlgorithmsFor(spec: KeySpec): MacAlgorithm[] {
  return isHmac(spec) ? [`HMAC_SHA_${spec.slice('HMAC_'.length)}` as MacAlgorithm] : [];
}

/** The usages KMS allows for each key spec (CreateKey `KeyUsage` documentation). KEY_AGREEMENT is not implemented. */
export function allowedUsages(spec: KeySpec): KeyUsage[] {
  if (spec === 'SYMMETRIC_DEFAULT') return ['ENCRYPT_DECRYPT'];
  if (isHmac(spec)) return ['GENERATE_VERIFY_MAC'];
  if (isRsa(spec)) return ['ENCRYPT_DECRYPT', 'SIGN_VERIFY'];
  return ['SIGN_VERIFY'];
}

/** Largest plaintext RSAES-OAEP can take: k - 2·hLen - 2 (e.g. 214 bytes for RSA_2048 with SHA-1). */
export function oaepMaxPlaintext(spec: KeySpec, alg: EncryptionAlgorithm): number {
  const k = RSA_BITS[spec] / 8;
  const hLen = alg === 'RSAES_OAEP_SHA_1' ? 20 : 32;
  return k - 2 * hLen - 2;
}

/** Member names as AWS spells them in validation messages (lower camel case). */
export const memberName = (field: string): string => field.charAt(0).toLowerCase() + field.slice(1);

export const enumRule = (values: readonly string[]): string =>
  `Member must satisfy enum value set: [${values.join(', ')}]`;
