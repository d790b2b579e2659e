/**
 * The cryptography behind the local KMS, all on node:crypto.
 *
 * Signing with MessageType=DIGEST must sign the given digest *as a prehash* (it is not hashed again).
 * node:crypto's sign() always hashes its input, so DIGEST uses the primitive operations:
 *  - RSASSA-PKCS1-v1_5: DigestInfo(hash OID, digest) through `privateEncrypt` with PKCS#1 type-1 padding;
 *  - RSASSA-PSS: EMSA-PSS encoding (RFC 8017 §9.1.1, MGF1 with the same hash, salt length = hash
 *    length, exactly as KMS does) and the raw RSA private operation (`privateEncrypt`, RSA_NO_PADDING);
 *  - ECDSA: (r, s) computed with bigint arithmetic modulo the group order, where every point
 *    multiplication k·G is done natively by `ECDH.setPrivateKey(k).getPublicKey()`.
 *    Verification uses that the endpoint holds d: R = s⁻¹(e·G + r·Q) = (s⁻¹(e + r·d))·G.
 * RAW messages use node:crypto's ordinary sign/verify.
 *
 * The bigint ECDSA path is not constant-time. That is acceptable for a development endpoint whose
 * keys live in a plaintext file anyway; it must never be used as a production signer.
 */
import * as crypto from 'node:crypto';

import {
  EC_CURVES,
  HMAC_KEY_BYTES,
  type EncryptionAlgorithm,
  type HashInfo,
  type KeyPairSpec,
  type KeySpec,
  type MacAlgorithm,
  type SigningAlgorithm,
  RSA_BITS,
  isEcc,
  isRsa,
  signingHash,
} from './specs';

// ---------------------------------------------------------------------------------------------
// Key generation

export interface GeneratedKeyPair {
  privateKeyPem: string;
  /** PKCS#8 DER */
  privateKeyDer: Buffer;
  /** SubjectPublicKeyInfo DER */
  publicKeyDer: Buffer;
}

export async function generateKeyPair(spec: KeySpec | KeyPairSpec): Promise<GeneratedKeyPair> {
  const pair = await new Promise<crypto.KeyPairKeyObjectResult>((resolve, reject) => {
    const done = (err: Error | null, publicKey: crypto.KeyObject, privateKey: crypto.KeyObject): void =>
      err ? reject(err) : resolve({ publicKey, privateKey });
    if (isRsa(spec)) {
      crypto.generateKeyPair('rsa', { modulusLength: RSA_BITS[spec], publicExponent: 0x10001 }, done);
    } else if (isEcc(spec)) {
      crypto.generateKeyPair('ec', { namedCurve: EC_CURVES[spec] }, done);
    } else {
      reject(new Error(`not an asymmetric key spec: ${spec}`));
    }
  });
  return {
    privateKeyPem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    privateKeyDer: pair.privateKey.export({ type: 'pkcs8', format: 'der' }),
    publicKeyDer: pair.publicKey.export({ type: 'spki', format: 'der' }),
  };
}

export function generateSecret(spec: KeySpec): Buffer {
  return crypto.randomBytes(spec === 'SYMMETRIC_DEFAULT' ? 32 : HMAC_KEY_BYTES[spec]);
}

// ---------------------------------------------------------------------------------------------
// Signatures

/** Thrown by verify paths when a signature does not verify (maps to KMSInvalidSignatureException). */
export class BadSignature extends Error {}

const DIGEST_INFO_PREFIX: Record<HashInfo['node'], Buffer> = {
  sha256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  sha384: Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  sha512: Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};

export function sign(
  key: crypto.KeyObject,
  alg: SigningAlgorithm,
  messageType: 'RAW' | 'DIGEST',
  message: Buffer,
): Buffer {
  const hash = signingHash(alg);
  if (messageType === 'RAW') {
    if (alg.startsWith('RSASSA_PSS')) {
      return crypto.sign(hash.node, message, {
        key,
        padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
        saltLength: hash.bytes,
      });
    }
    if (alg.startsWith('RSASSA_PKCS1')) {
      return crypto.sign(hash.node, message, { key, padding: crypto.constants.RSA_PKCS1_PADDING });
    }
    return crypto.sign(hash.node, message, { key, dsaEncoding: 'der' });
  }
  // DIGEST: `message` is the digest itself.
  if (alg.startsWith('RSASSA_PSS')) {
    const modBits = rsaModulusBits(key);
    const em = emsaPssEncode(message, hash, modBits);
    return crypto.privateEncrypt(
      { key, padding: crypto.constants.RSA_NO_PADDING },
      leftPad(em, Math.ceil(modBits / 8)),
    );
  }
  if (alg.startsWith('RSASSA_PKCS1')) {
    const digestInfo = Buffer.concat([DIGEST_INFO_PREFIX[hash.node], message]);
    return crypto.privateEncrypt({ key, padding: crypto.constants.RSA_PKCS1_PADDING }, digestInfo);
  }
  return ecdsaSignDigest(key, message);
}

/** Returns normally when valid; throws BadSignature otherwise. */
export function verify(
  key: crypto.KeyObject,
  alg: SigningAlgorithm,
  messageType: 'RAW' | 'DIGEST',
  message: Buffer,
  signature: Buffer,
): void {
  const hash = signingHash(alg);
  let ok: boolean;
  try {
    if (messageType === 'RAW') {
      const pub = crypto.createPublicKey(key);
      if (alg.startsWith('RSASSA_PSS')) {
        ok = crypto.verify(
          hash.node,
          message,
          {
            key: pub,
            padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
            saltLength: hash.bytes,
          },
          signature,
        );
      } else if (alg.startsWith('RSASSA_PKCS1')) {
        ok = crypto.verify(hash.node, message, { key: pub, padding: crypto.constants.RSA_PKCS1_PADDING }, signature);
      } else {
        ok = crypto.verify(hash.node, message, { key: pub, dsaEncoding: 'der' }, signature);
      }
    } else if (alg.startsWith('RSASSA_PSS')) {
      ok = rsaPssVerifyDigest(key, message, hash, signature);
    } else if (alg.startsWith('RSASSA_PKCS1')) {
      ok = rsaPkcs1VerifyDigest(key, message, hash, signature);
    } else {
      ok = ecdsaVerifyDigest(key, message, signature);
    }
  } catch {
    ok = false;
  }
  if (!ok) throw new BadSignature();
}

function rsaModulusBits(key: crypto.KeyObject): number {
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (!bits) throw new Error('not an RSA key');
  return bits;
}

function leftPad(buf: Buffer, len: number): Buffer {
  if (buf.length >= len) return buf;
  return Buffer.concat([Buffer.alloc(len - buf.length), buf]);
}

function mgf1(seed: Buffer, length: number, hash: HashInfo): Buffer {
  const blocks: Buffer[] = [];
  const counter = Buffer.alloc(4);
  for (let i = 0, have = 0; have < length; i++) {
    counter.writeUInt32BE(i, 0);
    const block = crypto.createHash(hash.node).update(seed).update(counter).digest();
    blocks.push(block);
    have += block.length;
  }
  return Buffer.concat(blocks).subarray(0, length);
}

/** EMSA-PSS-ENCODE (RFC 8017 §9.1.1) with sLen = hLen and MGF1 over the same hash. */
function emsaPssEncode(mHash: Buffer, hash: HashInfo, modBits: number): Buffer {
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const hLen = hash.bytes;
  const sLen = hLen;
  if (mHash.length !== hLen) throw new Error('digest length mismatch');
  if (emLen < hLen + sLen + 2) throw new Error('encoding error');
  const salt = crypto.randomBytes(sLen);
  const h = crypto.createHash(hash.node).update(Buffer.alloc(8)).update(mHash).update(salt).digest();
  const db = Buffer.concat([Buffer.alloc(emLen - sLen - hLen - 2), Buffer.from([0x01]), salt]);
  const mask = mgf1(h, emLen - hLen - 1, hash);
  for (let i = 0; i < db.length; i++) db[i] ^= mask[i];
  db[0] &= 0xff >> (8 * emLen - emBits);
  return Buffer.concat([db, h, Buffer.from([0xbc])]);
}

/** RSASSA-PSS-VERIFY over a digest (RFC 8017 §8.1.2 / §9.1.2), sLen = hLen. */
function rsaPssVerifyDigest(key: crypto.KeyObject, mHash: Buffer, hash: HashInfo, signature: Buffer): boolean {
  const modBits = rsaModulusBits(key);
  const k = Math.ceil(modBits / 8);
  if (signature.length !== k) return false;
  const m = crypto.publicDecrypt(
    { key: crypto.createPublicKey(key), padding: crypto.constants.RSA_NO_PADDING },
    signature,
  );
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const padded = leftPad(m, k);
  if (emLen < k && padded[0] !== 0) return false;
  const em = padded.subarray(k - emLen);
  const hLen = hash.bytes;
  const sLen = hLen;
  if (emLen < hLen + sLen + 2 || em[emLen - 1] !== 0xbc) return false;
  const maskedDb = em.subarray(0, emLen - hLen - 1);
  const h = em.subarray(emLen - hLen - 1, emLen - 1);
  const topMask = 0xff >> (8 * emLen - emBits);
  if ((maskedDb[0] & ~topMask & 0xff) !== 0) return false;
  const dbMask = mgf1(h, maskedDb.length, hash);
  const db = Buffer.alloc(maskedDb.length);
  for (let i = 0; i < db.length; i++) db[i] = maskedDb[i] ^ dbMask[i];
  db[0] &= topMask;
  const psLen = emLen - hLen - sLen - 2;
  for (let i = 0; i < psLen; i++) if (db[i] !== 0) return false;
  if (db[psLen] !== 0x01) return false;
  const salt = db.subarray(db.length - sLen);
  const h2 = crypto.createHash(hash.node).update(Buffer.alloc(8)).update(mHash).update(salt).digest();
  return crypto.timingSafeEqual(h, h2);
}

function rsaPkcs1VerifyDigest(key: crypto.KeyObject, digest: Buffer, hash: HashInfo, signature: Buffer): boolean {
  const k = Math.ceil(rsaModulusBits(key) / 8);
  if (signature.length !== k) return false;
  const recovered = crypto.publicDecrypt(
    { key: crypto.createPublicKey(key), padding: crypto.constants.RSA_PKCS1_PADDING },
    signature,
  );
  const expected = Buffer.concat([DIGEST_INFO_PREFIX[hash.node], digest]);
  return recovered.length === expected.length && crypto.timingSafeEqual(recovered, expected);
}

// --- ECDSA over a prehash ---------------------------------------------------------------------

/** Group orders (SEC 2 / FIPS 186-4), keyed by node:crypto curve name. */
const EC_ORDER: Record<string, bigint> = {
  prime256v1: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  secp384r1: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
  secp521r1:
    0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n,
  secp256k1: 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n,
};

const toBig = (b: Buffer): bigint => (b.length === 0 ? 0n : BigInt(`0x${b.toString('hex')}`));
const toBuf = (x: bigint, len: number): Buffer => Buffer.from(x.toString(16).padStart(len * 2, '0'), 'hex');
const mod = (a: bigint, n: bigint): bigint => ((a % n) + n) % n;
const bitLength = (x: bigint): number => x.toString(2).length;

function modPow(base: bigint, exp: bigint, n: bigint): bigint {
  let result = 1n;
  let b = mod(base, n);
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % n;
    b = (b * b) % n;
    e >>= 1n;
  }
  return result;
}
/** Inverse modulo a prime (Fermat). */
const modInv = (a: bigint, n: bigint): bigint => modPow(a, n - 2n, n);

interface EcParams {
  curve: string;
  n: bigint;
  nBytes: number;
}

function ecParams(key: crypto.KeyObject): EcParams {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (!curve || !(curve in EC_ORDER)) throw new Error(`unsupported curve ${curve}`);
  const n = EC_ORDER[curve];
  return { curve, n, nBytes: Math.ceil(bitLength(n) / 8) };
}

/** bits2int of SEC 1 §4.1.3 step 5: the leftmost bitlen(n) bits of the hash. */
function hashToInt(digest: Buffer, n: bigint): bigint {
  const e = toBig(digest);
  const excess = digest.length * 8 - bitLength(n);
  return excess > 0 ? e >> BigInt(excess) : e;
}

/** x coordinate of k·G, computed natively. */
function baseMulX(curve: string, k: bigint, nBytes: number): bigint {
  const ecdh = crypto.createECDH(curve);
  ecdh.setPrivateKey(toBuf(k, nBytes));
  const point = ecdh.getPublicKey(); // 0x04 || X || Y
  const coordLen = (point.length - 1) / 2;
  return toBig(point.subarray(1, 1 + coordLen));
}

function privateScalar(key: crypto.KeyObject): bigint {
  const jwk = key.export({ format: 'jwk' });
  if (!jwk.d) throw new Error('not a private EC key');
  return toBig(Buffer.from(jwk.d, 'base64url'));
}

function ecdsaSignDigest(key: crypto.KeyObject, digest: Buffer): Buffer {
  const { curve, n, nBytes } = ecParams(key);
  const d = privateScalar(key);
  const e = hashToInt(digest, n);
  for (;;) {
    // k uniform in [1, n-1]: reduce 64 extra random bits to make the bias negligible.
    const k = (toBig(crypto.randomBytes(nBytes + 8)) % (n - 1n)) + 1n;
    const r = mod(baseMulX(curve, k, nBytes), n);
    if (r === 0n) continue;
    const s = mod(modInv(k, n) * (e + r * d), n);
    if (s === 0n) continue;
    return encodeDerSignature(r, s);
  }
}

function ecdsaVerifyDigest(key: crypto.KeyObject, digest: Buffer, signature: Buffer): boolean {
  const { curve, n, nBytes } = ecParams(key);
  const parsed = decodeDerSignature(signature);
  if (!parsed) return false;
  const { r, s } = parsed;
  if (r <= 0n || r >= n || s <= 0n || s >= n) return false;
  const d = privateScalar(key);
  const e = hashToInt(digest, n);
  const u = mod(modInv(s, n) * (e + r * d), n);
  if (u === 0n) return false; // R would be the point at infinity
  return mod(baseMulX(curve, u, nBytes), n) === r;
}

// --- DER ECDSA-Sig-Value ----------------------------------------------------------------------

function derLength(len: number): Buffer {
  if (len < 0x80) return Buffer.from([len]);
  const bytes: number[] = [];
  for (let l = len; l > 0; l >>= 8) bytes.unshift(l & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function derInteger(x: bigint): Buffer {
  let hex = x.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let body = Buffer.from(hex, 'hex');
  if (body[0] & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  return Buffer.concat([Buffer.from([0x02]), derLength(body.length), body]);
}

export function encodeDerSignature(r: bigint, s: bigint): Buffer {
  const body = Buffer.concat([derInteger(r), derInteger(s)]);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}

/** Strict DER decode of ECDSA-Sig-Value; null on any deviation. */
export function decodeDerSignature(sig: Buffer): { r: bigint; s: bigint } | null {
  let pos = 0;
  const readLength = (): number | null => {
    if (pos >= sig.length) return null;
    const first = sig[pos++];
    if (first < 0x80) return first;
    const count = first & 0x7f;
    if (count === 0 || count > 2 || pos + count > sig.length) return null;
    let len = 0;
    for (let i = 0; i < count; i++) len = (len << 8) | sig[pos++];
    if (len < 0x80 || (count === 2 && len < 0x100)) return null; // not minimal
    return len;
  };
  const readInteger = (): bigint | null => {
    if (sig[pos++] !== 0x02) return null;
    const len = readLength();
    if (len === null || len === 0 || pos + len > sig.length) return null;
    const body = sig.subarray(pos, pos + len);
    pos += len;
    if (body[0] & 0x80) return null; // negative
    if (len > 1 && body[0] === 0 && !(body[1] & 0x80)) return null; // not minimal
    return toBig(body);
  };
  if (sig[pos++] !== 0x30) return null;
  const seqLen = readLength();
  if (seqLen === null || pos + seqLen !== sig.length) return null;
  const r = readInteger();
  const s = r === null ? null : readInteger();
  if (r === null || s === null || pos !== sig.length) return null;
  return { r, s };
}

/** DER ECDSA signature → IEEE P1363 r‖s (the WebCrypto format), each padded to `size` bytes. */
export function derToP1363(der: Buffer, size: number): Buffer {
  const parsed = decodeDerSignature(der);
  if (!parsed) throw new Error('malformed ECDSA signature');
  return Buffer.concat([toBuf(parsed.r, size), toBuf(parsed.s, size)]);
}

// ---------------------------------------------------------------------------------------------
// RSA encryption (OAEP only — KMS offers no PKCS#1 v1.5 and no raw RSA decryption)

const OAEP_HASH: Partial<Record<EncryptionAlgorithm, string>> = {
  RSAES_OAEP_SHA_1: 'sha1',
  RSAES_OAEP_SHA_256: 'sha256',
};

export function rsaOaepEncrypt(key: crypto.KeyObject, alg: EncryptionAlgorithm, plaintext: Buffer): Buffer {
  return crypto.publicEncrypt(
    { key: crypto.createPublicKey(key), padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP_HASH[alg] },
    plaintext,
  );
}

/** Throws on any decryption failure. */
export function rsaOaepDecrypt(key: crypto.KeyObject, alg: EncryptionAlgorithm, ciphertext: Buffer): Buffer {
  return crypto.privateDecrypt(
    { key, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP_HASH[alg] },
    ciphertext,
  );
}

// ---------------------------------------------------------------------------------------------
// Symmetric ciphertext blobs (SYMMETRIC_DEFAULT = AES-256-GCM)
//
// Layout: 0x01 | keyIdLen (1) | keyId (ASCII) | IV (12) | ciphertext | tag (16).
// The header (version, key id) and the canonical encryption context are the GCM AAD, so neither
// the key id nor the context can be altered without InvalidCiphertextException. Like a real KMS
// blob it carries the key id, so Decrypt works without a KeyId parameter.

const BLOB_VERSION = 0x01;
const IV_LEN = 12;
const TAG_LEN = 16;

export type EncryptionContext = Record<string, string>;

function canonicalContext(ctx: EncryptionContext | undefined): Buffer {
  if (!ctx) return Buffer.alloc(0);
  const parts: Buffer[] = [];
  for (const k of Object.keys(ctx).sort()) {
    for (const s of [k, ctx[k]]) {
      const b = Buffer.from(s, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32BE(b.length, 0);
      parts.push(len, b);
    }
  }
  return Buffer.concat(parts);
}

export function sealSymmetric(keyId: string, secret: Buffer, plaintext: Buffer, ctx?: EncryptionContext): Buffer {
  const id = Buffer.from(keyId, 'ascii');
  const header = Buffer.concat([Buffer.from([BLOB_VERSION, id.length]), id]);
  const iv = crypto.randomBytes(IV_LEN);
  const cipher = crypto.createCipheriv('aes-256-gcm', secret, iv);
  cipher.setAAD(Buffer.concat([header, canonicalContext(ctx)]));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([header, iv, ct, cipher.getAuthTag()]);
}

/** The key id a symmetric blob names, or null if the blob is not one of ours. */
export function blobKeyId(blob: Buffer): string | null {
  if (blob.length < 2 || blob[0] !== BLOB_VERSION) return null;
  const idLen = blob[1];
  if (blob.length < 2 + idLen + IV_LEN + TAG_LEN) return null;
  const id = blob.subarray(2, 2 + idLen).toString('ascii');
  return /^[A-Za-z0-9-]+$/.test(id) ? id : null;
}

/** Throws on authentication failure (wrong key, context or tampering). */
export function openSymmetric(secret: Buffer, blob: Buffer, ctx?: EncryptionContext): Buffer {
  const idLen = blob[1];
  const header = blob.subarray(0, 2 + idLen);
  const iv = blob.subarray(2 + idLen, 2 + idLen + IV_LEN);
  const tag = blob.subarray(blob.length - TAG_LEN);
  const ct = blob.subarray(2 + idLen + IV_LEN, blob.length - TAG_LEN);
  const decipher = crypto.createDecipheriv('aes-256-gcm', secret, iv);
  decipher.setAAD(Buffer.concat([header, canonicalContext(ctx)]));
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(ct), decipher.final()]);
}

// ---------------------------------------------------------------------------------------------
// HMAC

const MAC_HASH: Record<MacAlgorithm, string> = {
  HMAC_SHA_224: 'sha224',
  HMAC_SHA_256: 'sha256',
  HMAC_SHA_384: 'sha384',
  HMAC_SHA_512: 'sha512',
};

export function hmac(secret: Buffer, alg: MacAlgorithm, message: Buffer): Buffer {
  return crypto.createHmac(MAC_HASH[alg], secret).update(message).digest();
}

export function hmacEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}
