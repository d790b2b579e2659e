/** Cipher suites the engine implements. AEAD only (docs/tls-engine.md): no CBC, no RC4, nothing older than TLS 1.2. */

export type AeadAlgorithm = 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305';
export type HashName = 'sha256' | 'sha384';

/** TLS 1.2 key exchange of a suite; TLS 1.3 suites leave it out (the group is negotiated separately). */
export type KeyExchange = 'ECDHE_ECDSA' | 'ECDHE_RSA' | 'RSA';

export interface CipherSuite {
  id: number;
  /** IANA name; for TLS 1.3 suites OpenSSL uses the same name. */
  name: string;
  /** The name OpenSSL prints (what `TLSSocket.getCipher().name` returns). */
  opensslName: string;
  version: 'TLSv1.3' | 'TLSv1.2';
  aead: AeadAlgorithm;
  keyLength: number;
  hash: HashName;
  hashLength: number;
  keyExchange?: KeyExchange;
  /** TLS 1.2: implicit IV bytes from the key block (4 for GCM, RFC 5288; 12 for ChaCha20, RFC 7905). */
  fixedIvLength?: number;
  /** TLS 1.2: explicit nonce bytes carried in each record (8 for GCM, 0 for ChaCha20). */
  recordIvLength?: number;
}

export const TLS_AES_128_GCM_SHA256: CipherSuite = {
  id: 0x1301,
  name: 'TLS_AES_128_GCM_SHA256',
  opensslName: 'TLS_AES_128_GCM_SHA256',
  version: 'TLSv1.3',
  aead: 'aes-128-gcm',
  keyLength: 16,
  hash: 'sha256',
  hashLength: 32,
};
export const TLS_AES_256_GCM_SHA384: CipherSuite = {
  id: 0x1302,
  name: 'TLS_AES_256_GCM_SHA384',
  opensslName: 'TLS_AES_256_GCM_SHA384',
  version: 'TLSv1.3',
  aead: 'aes-256-gcm',
  keyLength: 32,
  hash: 'sha384',
  hashLength: 48,
};
export const TLS_CHACHA20_POLY1305_SHA256: CipherSuite = {
  id: 0x1303,
  name: 'TLS_CHACHA20_POLY1305_SHA256',
  opensslName: 'TLS_CHACHA20_POLY1305_SHA256',
  version: 'TLSv1.3',
  aead: 'chacha20-poly1305',
  keyLength: 32,
  hash: 'sha256',
  hashLength: 32,
};

/** Server preference order for TLS 1.3 (AES-GCM first: hardware accelerated on the targets we run on). */
export const TLS13_SUITES: readonly CipherSuite[] = [
  TLS_AES_128_GCM_SHA256,
  TLS_AES_256_GCM_SHA384,
  TLS_CHACHA20_POLY1305_SHA256,
];

function tls12(
  id: number,
  name: string,
  opensslName: string,
  keyExchange: KeyExchange,
  aead: AeadAlgorithm,
): CipherSuite {
  const chacha = aead === 'chacha20-poly1305';
  const sha384 = name.endsWith('SHA384');
  return {
    id,
    name,
    opensslName,
    version: 'TLSv1.2',
    aead,
    keyExchange,
    keyLength: aead === 'aes-128-gcm' ? 16 : 32,
    hash: sha384 ? 'sha384' : 'sha256',
    hashLength: sha384 ? 48 : 32,
    fixedIvLength: chacha ? 12 : 4,
    recordIvLength: chacha ? 0 : 8,
  };
}

/**
 * TLS 1.2 suites in server preference order: forward-secret ECDHE first (ECDSA, then RSA), RSA key
 * exchange last — it has no forward secrecy and is offered only for sealed/file custody keys.
 */
export const TLS12_SUITES: readonly CipherSuite[] = [
  tls12(
    0xc02b,
    'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
    'ECDHE-ECDSA-AES128-GCM-SHA256',
    'ECDHE_ECDSA',
    'aes-128-gcm',
  ),
  tls12(
    0xc02c,
    'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384',
    'ECDHE-ECDSA-AES256-GCM-SHA384',
    'ECDHE_ECDSA',
    'aes-256-gcm',
  ),
  tls12(
    0xcca9,
    'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256',
    'ECDHE-ECDSA-CHACHA20-POLY1305',
    'ECDHE_ECDSA',
    'chacha20-poly1305',
  ),
  tls12(0xc02f, 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE_RSA', 'aes-128-gcm'),
  tls12(0xc030, 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE_RSA', 'aes-256-gcm'),
  tls12(
    0xcca8,
    'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256',
    'ECDHE-RSA-CHACHA20-POLY1305',
    'ECDHE_RSA',
    'chacha20-poly1305',
  ),
  tls12(0x009c, 'TLS_RSA_WITH_AES_128_GCM_SHA256', 'AES128-GCM-SHA256', 'RSA', 'aes-128-gcm'),
  tls12(0x009d, 'TLS_RSA_WITH_AES_256_GCM_SHA384', 'AES256-GCM-SHA384', 'RSA', 'aes-256-gcm'),
];

/** Signalling cipher suite values. */
export const TLS_EMPTY_RENEGOTIATION_INFO_SCSV = 0x00ff;
export const TLS_FALLBACK_SCSV = 0x5600; // RFC 7507
