/**
 * Test material for TLS 1.2 RSA key exchange: well-formed and deliberately malformed
 * EncryptedPreMasterSecret values, seeded server randoms, and EMS handshake-message transcripts.
 * Used by the key-service "no oracle" tests and available to engine tests that craft
 * ClientKeyExchange messages. Test-only: it encrypts raw RSA blocks with the PUBLIC key.
 */
import * as crypto from 'node:crypto';

/** Modulus length in bytes. */
export function modulusBytes(key: crypto.KeyObject): number {
  return Math.ceil((key.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
}

/** Raw RSA (no padding) of a k-byte block with the public key: lets tests encrypt any EM. */
export function rawRsaEncrypt(publicKey: crypto.KeyObject, em: Buffer): Buffer {
  if (em.length !== modulusBytes(publicKey)) throw new Error('EM must be exactly k bytes');
  return crypto.publicEncrypt({ key: publicKey, padding: crypto.constants.RSA_NO_PADDING }, em);
}

/** A premaster: client_version ‖ 46 random bytes (RFC 5246 §7.4.7.1). */
export function newPreMaster(clientVersion = 0x0303): Buffer {
  const pm = crypto.randomBytes(48);
  pm.writeUInt16BE(clientVersion, 0);
  return pm;
}

/** What a real client sends: PKCS#1 v1.5 encryption of the premaster (allowed in Node: encryption). */
export function encryptPreMaster(publicKey: crypto.KeyObject, preMaster: Buffer): Buffer {
  return crypto.publicEncrypt({ key: publicKey, padding: crypto.constants.RSA_PKCS1_PADDING }, preMaster);
}

/** Non-zero random bytes. */
export function nonZeroBytes(n: number): Buffer {
  const b = crypto.randomBytes(n);
  for (let i = 0; i < n; i++) while (b[i] === 0) b[i] = crypto.randomBytes(1)[0];
  return b;
}

/** EM = 0x00 ‖ type ‖ PS ‖ 0x00 ‖ message with PS of the length that makes it k bytes. */
export function pkcs1Block(k: number, message: Buffer, type = 0x02): Buffer {
  const ps = nonZeroBytes(k - 3 - message.length);
  return Buffer.concat([Buffer.from([0x00, type]), ps, Buffer.from([0x00]), message]);
}

export interface MalformedCase {
  label: string;
  /** Builds the ciphertext for this public key and client version. */
  ciphertext: (publicKey: crypto.KeyObject, clientVersion: number) => Buffer;
}

/**
 * Ciphertexts that must all be answered with a synthetic premaster (implicit rejection), each
 * exercising one rule of the PKCS#1 v1.5 / RFC 5246 §7.4.7.1 check.
 */
export const MALFORMED_PREMASTER_CASES: MalformedCase[] = [
  {
    label: 'bad padding type (0x01, signature padding)',
    ciphertext: (pub, v) => rawRsaEncrypt(pub, pkcs1Block(modulusBytes(pub), newPreMaster(v), 0x01)),
  },
  {
    label: 'first byte not zero (0x01; still below n, whose top byte is ≥ 0x80)',
    ciphertext: (pub, v) => {
      const em = pkcs1Block(modulusBytes(pub), newPreMaster(v));
      em[0] = 0x01;
      return rawRsaEncrypt(pub, em);
    },
  },
  {
    label: 'type byte zero',
    ciphertext: (pub, v) => {
      const em = pkcs1Block(modulusBytes(pub), newPreMaster(v));
      em[1] = 0x00;
      return rawRsaEncrypt(pub, em);
    },
  },
  {
    label: 'missing zero separator',
    ciphertext: (pub) =>
      rawRsaEncrypt(pub, Buffer.concat([Buffer.from([0x00, 0x02]), nonZeroBytes(modulusBytes(pub) - 2)])),
  },
  {
    label: 'premaster too short (47 bytes)',
    ciphertext: (pub, v) => rawRsaEncrypt(pub, pkcs1Block(modulusBytes(pub), newPreMaster(v).subarray(0, 47))),
  },
  {
    label: 'premaster too long (49 bytes)',
    ciphertext: (pub, v) =>
      rawRsaEncrypt(pub, pkcs1Block(modulusBytes(pub), Buffer.concat([newPreMaster(v), Buffer.from([0x42])]))),
  },
  {
    label: 'wrong version in the premaster (0x0301)',
    ciphertext: (pub) => rawRsaEncrypt(pub, pkcs1Block(modulusBytes(pub), newPreMaster(0x0301))),
  },
  {
    label: 'wrong version, major byte only (0x0203)',
    ciphertext: (pub) => rawRsaEncrypt(pub, pkcs1Block(modulusBytes(pub), newPreMaster(0x0203))),
  },
  { label: 'all-zeros plaintext block', ciphertext: (pub) => rawRsaEncrypt(pub, Buffer.alloc(modulusBytes(pub))) },
  {
    label: 'well-padded all-zeros premaster',
    ciphertext: (pub) => rawRsaEncrypt(pub, pkcs1Block(modulusBytes(pub), Buffer.alloc(48))),
  },
  {
    label: 'too-short padding (zero after 7 padding bytes)',
    ciphertext: (pub, v) => {
      const k = modulusBytes(pub);
      // 0x00 0x02 PS(7) 0x00 then filler so that the last 48 bytes are a valid-looking premaster.
      const filler = nonZeroBytes(k - 3 - 7 - 48);
      return rawRsaEncrypt(
        pub,
        Buffer.concat([Buffer.from([0x00, 0x02]), nonZeroBytes(7), Buffer.from([0x00]), filler, newPreMaster(v)]),
      );
    },
  },
  {
    label: 'zero separator right after the type byte (no padding)',
    ciphertext: (pub, v) => {
      const k = modulusBytes(pub);
      return rawRsaEncrypt(
        pub,
        Buffer.concat([Buffer.from([0x00, 0x02, 0x00]), nonZeroBytes(k - 3 - 48), newPreMaster(v)]),
      );
    },
  },
  {
    label: 'random bytes (not a PKCS#1 block)',
    ciphertext: (pub) => crypto.randomBytes(modulusBytes(pub)).fill(0, 0, 1),
  },
  { label: 'ciphertext one byte short', ciphertext: (pub, v) => encryptPreMaster(pub, newPreMaster(v)).subarray(1) },
  {
    label: 'ciphertext one byte long',
    ciphertext: (pub, v) => Buffer.concat([Buffer.from([0]), encryptPreMaster(pub, newPreMaster(v))]),
  },
  { label: 'ciphertext not below the modulus (all 0xff)', ciphertext: (pub) => Buffer.alloc(modulusBytes(pub), 0xff) },
];

/** A fresh seed S and a server random bound to it: SHA-256(S)[0..24] ‖ 8 bytes (e.g. a downgrade sentinel). */
export function seededServerRandom(tail: Buffer = crypto.randomBytes(8)): { seed: Buffer; serverRandom: Buffer } {
  const seed = crypto.randomBytes(32);
  const serverRandom = Buffer.concat([crypto.createHash('sha256').update(seed).digest().subarray(0, 24), tail]);
  return { seed, serverRandom };
}

/** One handshake message: type ‖ uint24 length ‖ body. */
export function handshakeMessage(type: number, body: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h[0] = type;
  h.writeUIntBE(body.length, 1, 3);
  return Buffer.concat([h, body]);
}

/**
 * A plausible RSA-key-exchange transcript for EMS: ClientHello (version, random, ...), ServerHello
 * (random, ...), Certificate, ServerHelloDone, ClientKeyExchange (u16 length ‖ ciphertext).
 */
export function rsaHandshakeMessages(opts: {
  clientVersion: number;
  clientRandom: Buffer;
  serverRandom: Buffer;
  ciphertext: Buffer;
}): Buffer {
  const u16 = (n: number) => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(n);
    return b;
  };
  const clientHello = Buffer.concat([
    u16(opts.clientVersion),
    opts.clientRandom,
    Buffer.from([0]),
    u16(2),
    u16(0x009c),
    Buffer.from([1, 0]),
    u16(4),
    u16(0x0017),
    u16(0),
  ]);
  const serverHello = Buffer.concat([
    u16(0x0303),
    opts.serverRandom,
    Buffer.from([0]),
    u16(0x009c),
    Buffer.from([0]),
    u16(4),
    u16(0x0017),
    u16(0),
  ]);
  const certificate = Buffer.concat([Buffer.from([0, 0, 3]), Buffer.from([0, 0, 0])]);
  return Buffer.concat([
    handshakeMessage(1, clientHello),
    handshakeMessage(2, serverHello),
    handshakeMessage(11, certificate),
    handshakeMessage(14, Buffer.alloc(0)),
    handshakeMessage(16, Buffer.concat([u16(opts.ciphertext.length), opts.ciphertext])),
  ]);
}
