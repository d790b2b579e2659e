/**
 * TLS 1.2 RSA key exchange in the key service (docs/architecture.md, "Facts that shape the design"; docs/key-service-protocol.md; RFC 5246 §7.4.7.1, §8.1; RFC 7627):
 * decrypt the client's EncryptedPreMasterSecret with implicit rejection and return only the master
 * secret of that one session.
 *
 * Implicit rejection. Node (since 20, and so 24) refuses RSA_PKCS1_PADDING in privateDecrypt (CVE-2023-46809, Marvin),
 * so the RSA primitive runs with RSA_NO_PADDING (OpenSSL's blinded RSA; its time does not depend on
 * the plaintext) and the PKCS#1 v1.5 check is done here, branch-free on secret data:
 *
 *   EM = 0x00 ‖ 0x02 ‖ PS (≥ 8 non-zero bytes) ‖ 0x00 ‖ M,  |M| = 48,  M[0..1] = client_version
 *
 * A synthetic premaster is ALWAYS computed — client_version ‖ HKDF-SHA256(salt = K_key,
 * ikm = ciphertext, info = "keyless tls12 implicit rejection v1")[0..45], where K_key is a secret
 * derived once from the private exponent — and the real or the synthetic premaster is selected with
 * a byte mask. Nothing that depends on padding validity throws, returns early, logs, or changes the
 * response: a bad ciphertext yields a master secret that is stable for that ciphertext and
 * indistinguishable from a real one, and the handshake fails at Finished exactly as with a wrong key.
 *
 * Public-information cases (ciphertext length ≠ modulus length, ciphertext ≥ modulus) skip the RSA
 * operation and use the synthetic premaster too: the caller already knows those facts, so the
 * (shorter) time reveals nothing, and the response shape stays the same.
 *
 * Freshness (docs/key-service-protocol.md): server_random[0..23] must equal SHA-256(seed)[0..23], so a compromised edge
 * cannot feed a recorded handshake through the service — it cannot find a seed for an old server
 * random — and a master secret it obtains is only ever one of a session it is running itself.
 */
import * as crypto from 'node:crypto';
import { KeyServiceError } from '../../contract/key-service-errors';
import { MAX_HANDSHAKE_MESSAGES_BYTES, TLS_RANDOM_LENGTH } from '../../contract/key-service-protocol';
import type { RsaMasterSecretParams } from '../../contract/key-service-codec';
import { tls12ExtendedMasterSecret, tls12MasterSecret } from '../../contract/tls12-prf';

export const PREMASTER_SECRET_LENGTH = 48;
/** How many leading bytes of ServerHello.random are bound to the seed (the last 8 may carry the TLS 1.3 downgrade sentinel). */
export const SERVER_RANDOM_BOUND_BYTES = 24;
/** RFC 8017 §7.2.2 / RFC 5246 §7.4.7.1: at least 8 bytes of non-zero padding. */
const MIN_PADDING_BYTES = 8;
const REJECTION_KEY_LABEL = 'keyless tls12 implicit rejection key v1';
const REJECTION_INFO = Buffer.from('keyless tls12 implicit rejection v1', 'latin1');

/** What tls12.rsa_master_secret needs, decoded (same shape as the edge's RsaMasterSecretInput). */
export type { RsaMasterSecretParams };

/** An RSA private key ready for premaster decryption, with its implicit-rejection secret. */
export interface RsaDecryptionKey {
  readonly privateKey: crypto.KeyObject;
  /** Modulus length in bytes (k). */
  readonly modulusBytes: number;
  /** The modulus n, big-endian, exactly k bytes (public). */
  readonly modulus: Buffer;
  /** K_key: the per-key implicit-rejection secret. Never leaves the process. */
  readonly rejectionKey: Buffer;
}

/**
 * Prepare an RSA private key for decryption: its modulus and its implicit-rejection secret
 * K_key = HMAC-SHA256(label, d) with d the private exponent (so it is as secret as the key and the
 * same in every container serving that key). Throws TypeError for non-RSA keys.
 */
export function prepareRsaDecryptionKey(privateKey: crypto.KeyObject): RsaDecryptionKey {
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'rsa') {
    throw new TypeError('RSA key exchange needs an RSA private key');
  }
  const jwk = privateKey.export({ format: 'jwk' });
  if (typeof jwk.n !== 'string' || typeof jwk.d !== 'string') throw new TypeError('RSA private key without n or d');
  const n = Buffer.from(jwk.n, 'base64url');
  const modulusBytes = Math.ceil((privateKey.asymmetricKeyDetails?.modulusLength ?? n.length * 8) / 8);
  const modulus = Buffer.alloc(modulusBytes);
  n.copy(modulus, modulusBytes - n.length);
  const d = Buffer.from(jwk.d, 'base64url');
  const rejectionKey = crypto.createHmac('sha256', REJECTION_KEY_LABEL).update(d).digest();
  d.fill(0);
  return { privateKey, modulusBytes, modulus, rejectionKey };
}

// Branch-free helpers over small non-negative integers (< 2^31). Each returns 1 or 0.
function ctIsZero(x: number): number {
  return ((x - 1) >>> 31) & 1; // x = 0 → (-1 >>> 31) = 1; 0 < x < 2^31 → 0
}
function ctEq(a: number, b: number): number {
  return ctIsZero((a ^ b) >>> 0);
}
function ctGe(a: number, b: number): number {
  return (((a - b) >>> 31) & 1) ^ 1;
}

/** The synthetic premaster for a ciphertext: client_version ‖ 46 bytes from HKDF(K_key, ciphertext). */
export function syntheticPreMasterSecret(key: RsaDecryptionKey, ciphertext: Buffer, clientVersion: number): Buffer {
  const out = Buffer.alloc(PREMASTER_SECRET_LENGTH);
  out[0] = (clientVersion >>> 8) & 0xff;
  out[1] = clientVersion & 0xff;
  Buffer.from(
    crypto.hkdfSync('sha256', ciphertext, key.rejectionKey, REJECTION_INFO, PREMASTER_SECRET_LENGTH - 2),
  ).copy(out, 2);
  return out;
}

/**
 * Decrypt an EncryptedPreMasterSecret with implicit rejection: always 48 bytes starting with
 * `clientVersion`; the real premaster when the PKCS#1 v1.5 block is well-formed with a 48-byte
 * message whose version matches, otherwise the synthetic one. Never throws for a bad ciphertext.
 */
export function decryptPreMasterSecret(key: RsaDecryptionKey, ciphertext: Buffer, clientVersion: number): Buffer {
  const k = key.modulusBytes;
  const synthetic = syntheticPreMasterSecret(key, ciphertext, clientVersion);

  // Public properties of the ciphertext (the sender knows them): wrong length, or not below n.
  let em: Buffer;
  let good = 0;
  if (ciphertext.length === k && Buffer.compare(ciphertext, key.modulus) < 0) {
    try {
      em = crypto.privateDecrypt({ key: key.privateKey, padding: crypto.constants.RSA_NO_PADDING }, ciphertext);
      good = ctEq(em.length, k);
    } catch {
      // Not reachable for c < n; kept branch-local and independent of the padding.
      em = Buffer.alloc(k);
    }
    if (em.length !== k) em = Buffer.alloc(k); // also public: length is fixed by RSA_NO_PADDING
  } else {
    em = Buffer.alloc(k);
  }

  // PKCS#1 v1.5 type 2 check, without branching on EM's content.
  good &= ctEq(em[0], 0x00);
  good &= ctEq(em[1], 0x02);
  let zeroIndex = 0;
  let found = 0;
  for (let i = 2; i < k; i++) {
    const isZero = ctIsZero(em[i]);
    const first = isZero & (found ^ 1);
    zeroIndex |= -first & i;
    found |= isZero;
  }
  good &= found;
  good &= ctGe(zeroIndex, 2 + MIN_PADDING_BYTES);
  good &= ctEq(k - 1 - zeroIndex, PREMASTER_SECRET_LENGTH);
  const m = k - PREMASTER_SECRET_LENGTH;
  good &= ctEq(em[m], (clientVersion >>> 8) & 0xff);
  good &= ctEq(em[m + 1], clientVersion & 0xff);

  const mask = -good & 0xff; // 0xff when good, 0x00 otherwise
  const out = Buffer.alloc(PREMASTER_SECRET_LENGTH);
  for (let i = 0; i < PREMASTER_SECRET_LENGTH; i++) {
    out[i] = (em[m + i] & mask) | (synthetic[i] & ~mask & 0xff);
  }
  em.fill(0);
  synthetic.fill(0);
  return out;
}

/**
 * The request checks that need no private key (docs/key-service-protocol.md): the server random is bound to the seed,
 * and with EMS the handshake messages are this handshake's (ClientHello with this client random and
 * version, ServerHello with this server random, ClientKeyExchange with this ciphertext). Throws
 * KeyServiceError('bad_request'). None of this depends on the ciphertext's plaintext.
 */
export function checkRsaMasterSecretRequest(p: RsaMasterSecretParams): void {
  const bad = (message: string) => new KeyServiceError('bad_request', message);
  if (
    p.clientRandom.length !== TLS_RANDOM_LENGTH ||
    p.serverRandom.length !== TLS_RANDOM_LENGTH ||
    p.serverRandomSeed.length !== TLS_RANDOM_LENGTH
  ) {
    throw bad('clientRandom, serverRandom and serverRandomSeed must be 32 bytes');
  }
  const bound = crypto.createHash('sha256').update(p.serverRandomSeed).digest().subarray(0, SERVER_RANDOM_BOUND_BYTES);
  if (!crypto.timingSafeEqual(bound, p.serverRandom.subarray(0, SERVER_RANDOM_BOUND_BYTES))) {
    throw bad('serverRandom is not derived from serverRandomSeed (serverRandom[0..24] must be SHA-256(seed)[0..24])');
  }
  if (p.handshakeMessages !== undefined) checkHandshakeMessages(p);
}

const HS = {
  client_hello: 1,
  server_hello: 2,
  certificate: 11,
  certificate_request: 13,
  server_hello_done: 14,
  client_key_exchange: 16,
  certificate_status: 22,
} as const;
/** Messages that may sit between ServerHello and ClientKeyExchange in an RSA key exchange. */
const MIDDLE_MESSAGES = new Set<number>([
  HS.certificate,
  HS.certificate_status,
  HS.certificate_request,
  HS.server_hello_done,
]);

function checkHandshakeMessages(p: RsaMasterSecretParams): void {
  const bad = (message: string) => new KeyServiceError('bad_request', `handshakeMessages: ${message}`);
  const data = p.handshakeMessages as Buffer;
  if (data.length > MAX_HANDSHAKE_MESSAGES_BYTES) throw bad(`longer than ${MAX_HANDSHAKE_MESSAGES_BYTES} bytes`);
  const messages: Array<{ type: number; body: Buffer }> = [];
  let off = 0;
  while (off < data.length) {
    if (data.length - off < 4) throw bad('truncated handshake message header');
    const type = data[off];
    const len = data.readUIntBE(off + 1, 3);
    if (data.length - off - 4 < len) throw bad('truncated handshake message');
    messages.push({ type, body: data.subarray(off + 4, off + 4 + len) });
    off += 4 + len;
  }
  if (messages.length < 3) throw bad('expected ClientHello, ServerHello, ..., ClientKeyExchange');
  const [ch, sh] = messages;
  const cke = messages[messages.length - 1];
  if (ch.type !== HS.client_hello) throw bad('the first message must be the ClientHello');
  if (sh.type !== HS.server_hello) throw bad('the second message must be the ServerHello');
  if (cke.type !== HS.client_key_exchange) throw bad('the last message must be the ClientKeyExchange');
  for (const m of messages.slice(2, -1)) {
    if (!MIDDLE_MESSAGES.has(m.type)) throw bad('unexpected handshake message type before ClientKeyExchange');
  }
  // ClientHello: client_version(2) ‖ random(32) ‖ ...
  if (ch.body.length < 2 + TLS_RANDOM_LENGTH) throw bad('ClientHello too short');
  if (ch.body.readUInt16BE(0) !== p.clientVersion) throw bad('ClientHello.client_version differs from clientVersion');
  if (!ch.body.subarray(2, 2 + TLS_RANDOM_LENGTH).equals(p.clientRandom))
    throw bad('ClientHello.random differs from clientRandom');
  // ServerHello: server_version(2) ‖ random(32) ‖ ...
  if (sh.body.length < 2 + TLS_RANDOM_LENGTH) throw bad('ServerHello too short');
  if (!sh.body.subarray(2, 2 + TLS_RANDOM_LENGTH).equals(p.serverRandom))
    throw bad('ServerHello.random differs from serverRandom');
  // ClientKeyExchange (RSA): EncryptedPreMasterSecret = opaque<0..2^16-1>.
  const ct = p.encryptedPreMasterSecret;
  if (cke.body.length !== 2 + ct.length || cke.body.readUInt16BE(0) !== ct.length || !cke.body.subarray(2).equals(ct)) {
    throw bad('ClientKeyExchange does not carry encryptedPreMasterSecret');
  }
}

/**
 * The master secret of a TLS 1.2 RSA key exchange (RFC 5246 §8.1, or RFC 7627 §4 when
 * `handshakeMessages` is given), with implicit rejection. Call checkRsaMasterSecretRequest first.
 * The premaster is wiped before returning; only the 48-byte master secret leaves.
 */
export function deriveRsaMasterSecret(key: RsaDecryptionKey, p: RsaMasterSecretParams): Buffer {
  const preMaster = decryptPreMasterSecret(key, p.encryptedPreMasterSecret, p.clientVersion);
  try {
    if (p.handshakeMessages !== undefined) {
      const sessionHash = crypto.createHash(p.prfHash).update(p.handshakeMessages).digest();
      return tls12ExtendedMasterSecret(p.prfHash, preMaster, sessionHash);
    }
    return tls12MasterSecret(p.prfHash, preMaster, p.clientRandom, p.serverRandom);
  } finally {
    preMaster.fill(0);
  }
}

/** Both steps: the public checks, then the derivation (what a backend holding the key runs). */
export function rsaMasterSecret(key: RsaDecryptionKey, p: RsaMasterSecretParams): Buffer {
  checkRsaMasterSecretRequest(p);
  return deriveRsaMasterSecret(key, p);
}
