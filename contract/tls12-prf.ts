/**
 * The TLS 1.2 pseudorandom function (RFC 5246 §5) and the master-secret derivations built on it
 * (RFC 5246 §8.1, RFC 7627 §4). Shared by the key service (which derives master secrets for RSA key
 * exchange) and the edge's TLS 1.2 engine (key expansion, Finished, ECDHE master secrets), like
 * protocol.ts: no dependency beyond node:crypto.
 */
import * as crypto from 'node:crypto';

/** The PRF hashes of the TLS 1.2 suites this project serves (SHA-256 suites, SHA-384 suites). */
export type Prf12Hash = 'sha256' | 'sha384';

export const PRF12_HASHES: readonly Prf12Hash[] = ['sha256', 'sha384'];

/** Length of a TLS 1.2 master secret (RFC 5246 §8.1). */
export const MASTER_SECRET_LENGTH = 48;

/** Upper bound on one PRF output; TLS needs at most a key block of a few hundred bytes. */
const MAX_PRF_OUTPUT = 1 << 16;

/**
 * P_hash(secret, seed) of RFC 5246 §5, truncated to `length` bytes:
 *   A(0) = seed, A(i) = HMAC_hash(secret, A(i-1)),
 *   P_hash = HMAC_hash(secret, A(1) ‖ seed) ‖ HMAC_hash(secret, A(2) ‖ seed) ‖ ...
 */
export function pHash(hash: Prf12Hash, secret: Buffer, seed: Buffer, length: number): Buffer {
  if (!PRF12_HASHES.includes(hash)) throw new TypeError('TLS 1.2 PRF hash must be sha256 or sha384');
  if (!Number.isInteger(length) || length < 0 || length > MAX_PRF_OUTPUT) {
    throw new RangeError(`PRF output length must be an integer in 0..${MAX_PRF_OUTPUT}`);
  }
  const out = Buffer.alloc(length);
  let a = seed;
  let written = 0;
  while (written < length) {
    a = crypto.createHmac(hash, secret).update(a).digest();
    const block = crypto.createHmac(hash, secret).update(a).update(seed).digest();
    written += block.copy(out, written, 0, Math.min(block.length, length - written));
  }
  return out;
}

/**
 * PRF(secret, label, seed) = P_<hash>(secret, label ‖ seed) (RFC 5246 §5). `label` is an ASCII
 * string such as "master secret", "key expansion", "client finished".
 */
export function prf12(hash: Prf12Hash, secret: Buffer, label: string, seed: Buffer, length: number): Buffer {
  return pHash(hash, secret, Buffer.concat([Buffer.from(label, 'latin1'), seed]), length);
}

/** master_secret = PRF(pre_master_secret, "master secret", client_random ‖ server_random)[0..47] (RFC 5246 §8.1). */
export function tls12MasterSecret(
  hash: Prf12Hash,
  preMasterSecret: Buffer,
  clientRandom: Buffer,
  serverRandom: Buffer,
): Buffer {
  return prf12(
    hash,
    preMasterSecret,
    'master secret',
    Buffer.concat([clientRandom, serverRandom]),
    MASTER_SECRET_LENGTH,
  );
}

/**
 * With the extended master secret (RFC 7627 §4):
 *   master_secret = PRF(pre_master_secret, "extended master secret", session_hash)[0..47]
 * where session_hash = Hash(handshake_messages) with the PRF hash, over every handshake message up to
 * and including ClientKeyExchange.
 */
export function tls12ExtendedMasterSecret(hash: Prf12Hash, preMasterSecret: Buffer, sessionHash: Buffer): Buffer {
  return prf12(hash, preMasterSecret, 'extended master secret', sessionHash, MASTER_SECRET_LENGTH);
}
