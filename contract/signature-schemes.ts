/**
 * The signature schemes the product supports: ONE table, from which the edge's TLS engine, the
 * key-service protocol, the CDK key policies and the CLI derive what they need.
 *
 * Each row is a TLS SignatureScheme (RFC 8446 §4.2.3) with the hash, padding and key it needs, whether
 * a TLS 1.3 CertificateVerify may use it (RFC 8446 §4.4.3 forbids RSASSA-PKCS1-v1_5 there), and the KMS
 * SigningAlgorithm that produces it with the KMS key specs that can. No SHA-1 scheme, ever (RFC 9155;
 * KMS cannot sign with SHA-1 either). Rows are in the edge's preference order.
 */

export type SchemeHash = 'sha256' | 'sha384' | 'sha512';

/** KMS `SIGN_VERIFY` key specs a TLS signature scheme can be made with. */
export type SchemeKmsKeySpec =
  'RSA_2048' | 'RSA_3072' | 'RSA_4096' | 'ECC_NIST_P256' | 'ECC_NIST_P384' | 'ECC_NIST_P521';

const RSA_KEY_SPECS = ['RSA_2048', 'RSA_3072', 'RSA_4096'] as const;

const ROWS = [
  // ECDSA: in TLS 1.3 each scheme names its curve (RFC 8446 §4.2.3), and KMS binds an ECC key to one hash.
  {
    id: 0x0403,
    name: 'ecdsa_secp256r1_sha256',
    keyType: 'ec',
    curve: 'prime256v1',
    hash: 'sha256',
    hashLength: 32,
    padding: 'ecdsa',
    tls13: true,
    kmsSigningAlgorithm: 'ECDSA_SHA_256',
    kmsKeySpecs: ['ECC_NIST_P256'],
  },
  {
    id: 0x0503,
    name: 'ecdsa_secp384r1_sha384',
    keyType: 'ec',
    curve: 'secp384r1',
    hash: 'sha384',
    hashLength: 48,
    padding: 'ecdsa',
    tls13: true,
    kmsSigningAlgorithm: 'ECDSA_SHA_384',
    kmsKeySpecs: ['ECC_NIST_P384'],
  },
  {
    id: 0x0603,
    name: 'ecdsa_secp521r1_sha512',
    keyType: 'ec',
    curve: 'secp521r1',
    hash: 'sha512',
    hashLength: 64,
    padding: 'ecdsa',
    tls13: true,
    kmsSigningAlgorithm: 'ECDSA_SHA_512',
    kmsKeySpecs: ['ECC_NIST_P521'],
  },
  // RSASSA-PSS with an rsaEncryption key; KMS uses salt length = hash length, exactly what TLS requires.
  {
    id: 0x0804,
    name: 'rsa_pss_rsae_sha256',
    keyType: 'rsa',
    hash: 'sha256',
    hashLength: 32,
    padding: 'pss',
    tls13: true,
    kmsSigningAlgorithm: 'RSASSA_PSS_SHA_256',
    kmsKeySpecs: RSA_KEY_SPECS,
  },
  {
    id: 0x0805,
    name: 'rsa_pss_rsae_sha384',
    keyType: 'rsa',
    hash: 'sha384',
    hashLength: 48,
    padding: 'pss',
    tls13: true,
    kmsSigningAlgorithm: 'RSASSA_PSS_SHA_384',
    kmsKeySpecs: RSA_KEY_SPECS,
  },
  {
    id: 0x0806,
    name: 'rsa_pss_rsae_sha512',
    keyType: 'rsa',
    hash: 'sha512',
    hashLength: 64,
    padding: 'pss',
    tls13: true,
    kmsSigningAlgorithm: 'RSASSA_PSS_SHA_512',
    kmsKeySpecs: RSA_KEY_SPECS,
  },
  // RSASSA-PKCS1-v1_5: TLS 1.2 only.
  {
    id: 0x0401,
    name: 'rsa_pkcs1_sha256',
    keyType: 'rsa',
    hash: 'sha256',
    hashLength: 32,
    padding: 'pkcs1',
    tls13: false,
    kmsSigningAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_256',
    kmsKeySpecs: RSA_KEY_SPECS,
  },
  {
    id: 0x0501,
    name: 'rsa_pkcs1_sha384',
    keyType: 'rsa',
    hash: 'sha384',
    hashLength: 48,
    padding: 'pkcs1',
    tls13: false,
    kmsSigningAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_384',
    kmsKeySpecs: RSA_KEY_SPECS,
  },
  {
    id: 0x0601,
    name: 'rsa_pkcs1_sha512',
    keyType: 'rsa',
    hash: 'sha512',
    hashLength: 64,
    padding: 'pkcs1',
    tls13: false,
    kmsSigningAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_512',
    kmsKeySpecs: RSA_KEY_SPECS,
  },
] as const satisfies readonly SignatureSchemeRow[];

interface SignatureSchemeRow {
  /** TLS SignatureScheme code point (RFC 8446 §4.2.3). */
  readonly id: number;
  readonly name: string;
  readonly keyType: 'rsa' | 'ec';
  /** node:crypto curve name; ECDSA only. */
  readonly curve?: 'prime256v1' | 'secp384r1' | 'secp521r1';
  readonly hash: SchemeHash;
  /** Output length of `hash`, in bytes. */
  readonly hashLength: 32 | 48 | 64;
  readonly padding: 'pss' | 'pkcs1' | 'ecdsa';
  /** Allowed in a TLS 1.3 CertificateVerify (RFC 8446 §4.4.3). */
  readonly tls13: boolean;
  /** The KMS `SigningAlgorithmSpec` that makes this signature over the raw content (MessageType RAW). */
  readonly kmsSigningAlgorithm: string;
  /** KMS key specs that can sign with `kmsSigningAlgorithm`. */
  readonly kmsKeySpecs: readonly SchemeKmsKeySpec[];
}

export type SignatureSchemeName = (typeof ROWS)[number]['name'];
export type KmsSigningAlgorithm = (typeof ROWS)[number]['kmsSigningAlgorithm'];
export interface SignatureScheme extends SignatureSchemeRow {
  readonly name: SignatureSchemeName;
  readonly kmsSigningAlgorithm: KmsSigningAlgorithm;
}

export const SIGNATURE_SCHEMES: readonly SignatureScheme[] = ROWS;

function recordOf<K extends string, V>(keys: readonly K[], value: (key: K) => V): Record<K, V> {
  const out = {} as Record<K, V>;
  for (const k of keys) out[k] = value(k);
  return out;
}

export const SIGNATURE_SCHEME_NAMES: readonly SignatureSchemeName[] = SIGNATURE_SCHEMES.map((s) => s.name);

export function schemeById(id: number): SignatureScheme | undefined {
  return SIGNATURE_SCHEMES.find((s) => s.id === id);
}

export function schemeNamed(name: SignatureSchemeName): SignatureScheme {
  return SIGNATURE_SCHEMES.find((s) => s.name === name)!;
}

/** Schemes a TLS 1.3 server may sign a CertificateVerify with (RFC 8446 §4.4.3: RSA only with PSS). */
export const TLS13_SCHEME_NAMES: readonly SignatureSchemeName[] = SIGNATURE_SCHEMES.filter((s) => s.tls13).map(
  (s) => s.name,
);

/** The hash each scheme signs with, and its length (what the key-service protocol checks). */
export const SCHEME_HASH: Record<SignatureSchemeName, { hash: SchemeHash; length: number }> = recordOf(
  SIGNATURE_SCHEME_NAMES,
  (name) => {
    const s = schemeNamed(name);
    return { hash: s.hash, length: s.hashLength };
  },
);

/** The KMS SigningAlgorithm for each scheme. */
export const SCHEME_TO_KMS_ALGORITHM: Record<SignatureSchemeName, KmsSigningAlgorithm> = recordOf(
  SIGNATURE_SCHEME_NAMES,
  (name) => schemeNamed(name).kmsSigningAlgorithm,
);

/** Can a KMS key of this spec produce this scheme? */
export function schemeMatchesKeySpec(name: SignatureSchemeName, keySpec: string): boolean {
  return (schemeNamed(name).kmsKeySpecs as readonly string[]).includes(keySpec);
}

/**
 * The KMS key specs the product creates and accepts for `kms` custody (docs/architecture.md, "Custody
 * modes"). ECC_NIST_P521 can sign ecdsa_secp521r1_sha512, but no `kms` key of that spec is made.
 */
export const KMS_SIGNING_KEY_SPECS = [
  'RSA_2048',
  'RSA_3072',
  'RSA_4096',
  'ECC_NIST_P256',
  'ECC_NIST_P384',
] as const satisfies readonly SchemeKmsKeySpec[];
export type KmsSigningKeySpec = (typeof KMS_SIGNING_KEY_SPECS)[number];

/** The KMS signing algorithms a key of this spec may use for TLS, PSS before PKCS#1 v1.5 for RSA. */
export function kmsSigningAlgorithmsFor(keySpec: SchemeKmsKeySpec): KmsSigningAlgorithm[] {
  const rank = (s: SignatureScheme): number => ['pss', 'pkcs1', 'ecdsa'].indexOf(s.padding);
  return SIGNATURE_SCHEMES.filter((s) => (s.kmsKeySpecs as readonly string[]).includes(keySpec))
    .sort((a, b) => rank(a) - rank(b))
    .map((s) => s.kmsSigningAlgorithm);
}

/** kmsSigningAlgorithmsFor, for every key spec of `kms` custody (what key policies allow). */
export const KMS_SIGNING_ALGORITHMS_BY_KEY_SPEC = recordOf(KMS_SIGNING_KEY_SPECS, kmsSigningAlgorithmsFor);
