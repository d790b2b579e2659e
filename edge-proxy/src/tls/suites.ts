/** Cipher suites the engine implements. AEAD only (DESIGN §6): no CBC, no RC4, nothing older than TLS 1.2. */

export type AeadAlgorithm = 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305';
export type HashName = 'sha256' | 'sha384';

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
}

export const TLS_AES_128_GCM_SHA256: CipherSuite = {
  id: 0x1301, name: 'TLS_AES_128_GCM_SHA256', opensslName: 'TLS_AES_128_GCM_SHA256', version: 'TLSv1.3',
  aead: 'aes-128-gcm', keyLength: 16, hash: 'sha256', hashLength: 32,
};
export const TLS_AES_256_GCM_SHA384: CipherSuite = {
  id: 0x1302, name: 'TLS_AES_256_GCM_SHA384', opensslName: 'TLS_AES_256_GCM_SHA384', version: 'TLSv1.3',
  aead: 'aes-256-gcm', keyLength: 32, hash: 'sha384', hashLength: 48,
};
export const TLS_CHACHA20_POLY1305_SHA256: CipherSuite = {
  id: 0x1303, name: 'TLS_CHACHA20_POLY1305_SHA256', opensslName: 'TLS_CHACHA20_POLY1305_SHA256', version: 'TLSv1.3',
  aead: 'chacha20-poly1305', keyLength: 32, hash: 'sha256', hashLength: 32,
};

/** Server preference order for TLS 1.3 (AES-GCM first: hardware accelerated on the targets we run on). */
export const TLS13_SUITES: readonly CipherSuite[] = [TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256];

/** Signalling cipher suite values. */
export const TLS_EMPTY_RENEGOTIATION_INFO_SCSV = 0x00ff;
export const TLS_FALLBACK_SCSV = 0x5600; // RFC 7507

export function findSuite(suites: readonly CipherSuite[], name: string): CipherSuite | undefined {
  return suites.find((s) => s.name === name || s.opensslName === name);
}
