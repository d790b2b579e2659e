/**
 * RSA premaster decryption with implicit rejection (lambdas/key-service/rsa-premaster.ts), at the
 * function level: the real premaster for well-formed blocks, and for every malformed block a
 * synthetic premaster that is stable per ciphertext, has the same shape, starts with the client
 * version, and is derived exactly as documented. Plus the public request checks (freshness, EMS).
 */
import * as crypto from 'node:crypto';
import { KeyServiceError } from '../../../../contract/key-service-errors';
import {
  checkRsaMasterSecretRequest,
  decryptPreMasterSecret,
  deriveRsaMasterSecret,
  prepareRsaDecryptionKey,
  rsaMasterSecret,
  syntheticPreMasterSecret,
  type RsaMasterSecretParams,
} from '../../../../lambdas/key-service/rsa-premaster';
import { prf12 } from '../../../../contract/tls12-prf';
import {
  MALFORMED_PREMASTER_CASES,
  encryptPreMaster,
  handshakeMessage,
  modulusBytes,
  newPreMaster,
  pkcs1Block,
  rawRsaEncrypt,
  rsaHandshakeMessages,
  seededServerRandom,
} from '../../../helpers/rsa-kex';

const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const key = prepareRsaDecryptionKey(privateKey);

describe('decryptPreMasterSecret', () => {
  test('prepares modulus and a per-key rejection secret deterministically', () => {
    expect(key.modulusBytes).toBe(256);
    expect(key.modulus.equals(Buffer.from(publicKey.export({ format: 'jwk' }).n as string, 'base64url'))).toBe(true);
    expect(prepareRsaDecryptionKey(privateKey).rejectionKey.equals(key.rejectionKey)).toBe(true);
    expect(prepareRsaDecryptionKey(other.privateKey).rejectionKey.equals(key.rejectionKey)).toBe(false);
    expect(() => prepareRsaDecryptionKey(crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey)).toThrow(
      TypeError,
    );
    expect(() => prepareRsaDecryptionKey(publicKey)).toThrow(TypeError);
  });

  test.each([0x0303, 0x0304, 0x03ff])(
    'a well-formed PKCS#1 v1.5 block yields the premaster (client_version %s)',
    (v) => {
      const pm = newPreMaster(v);
      expect(decryptPreMasterSecret(key, encryptPreMaster(publicKey, pm), v).equals(pm)).toBe(true);
      // Minimum padding (8 bytes) is accepted too; built by hand so the padding length is exact.
      const minimal = Buffer.concat([Buffer.from([0, 2]), Buffer.alloc(256 - 3 - 48, 0x11), Buffer.from([0]), pm]);
      expect(decryptPreMasterSecret(key, rawRsaEncrypt(publicKey, minimal), v).equals(pm)).toBe(true);
    },
  );

  test.each(MALFORMED_PREMASTER_CASES.map((c) => [c.label, c]))(
    '%s → synthetic premaster, stable per ciphertext',
    (_label, c) => {
      const v = 0x0303;
      const ct = c.ciphertext(publicKey, v);
      const out = decryptPreMasterSecret(key, ct, v);
      expect(out.length).toBe(48);
      expect(out.readUInt16BE(0)).toBe(v);
      // Exactly the documented synthetic value: client_version ‖ HKDF-SHA256(K_key, ciphertext, info)[0..45].
      const expected = Buffer.concat([
        Buffer.from([0x03, 0x03]),
        Buffer.from(
          crypto.hkdfSync('sha256', ct, key.rejectionKey, Buffer.from('keyless tls12 implicit rejection v1'), 46),
        ),
      ]);
      expect(out.equals(expected)).toBe(true);
      expect(out.equals(syntheticPreMasterSecret(key, ct, v))).toBe(true);
      expect(decryptPreMasterSecret(key, ct, v).equals(out)).toBe(true); // stable
    },
  );

  test('a well-formed ciphertext under another key gets a synthetic premaster like any other bad one', () => {
    const pm = newPreMaster();
    const ct = encryptPreMaster(other.publicKey, pm);
    const out = decryptPreMasterSecret(key, ct, 0x0303);
    expect(out.equals(pm)).toBe(false);
    expect(out.equals(syntheticPreMasterSecret(key, ct, 0x0303))).toBe(true);
  });

  test('a version mismatch is rejected implicitly even though the block is otherwise perfect', () => {
    const pm = newPreMaster(0x0303);
    const ct = encryptPreMaster(publicKey, pm);
    const out = decryptPreMasterSecret(key, ct, 0x0302 + 2); // ClientHello said 0x0304
    expect(out.equals(pm)).toBe(false);
    expect(out.readUInt16BE(0)).toBe(0x0304);
  });

  test('different ciphertexts give different synthetic premasters; different keys too', () => {
    const a = rawRsaEncrypt(publicKey, pkcs1Block(256, newPreMaster(), 0x01));
    const b = rawRsaEncrypt(publicKey, pkcs1Block(256, newPreMaster(), 0x01));
    expect(decryptPreMasterSecret(key, a, 0x0303).equals(decryptPreMasterSecret(key, b, 0x0303))).toBe(false);
    const otherKey = prepareRsaDecryptionKey(other.privateKey);
    expect(syntheticPreMasterSecret(otherKey, a, 0x0303).equals(syntheticPreMasterSecret(key, a, 0x0303))).toBe(false);
  });

  test('an RSA-3072 modulus (RSA-4096 runs the same code with k = 512)', () => {
    for (const bits of [3072]) {
      const pair = crypto.generateKeyPairSync('rsa', { modulusLength: bits });
      const k = prepareRsaDecryptionKey(pair.privateKey);
      expect(k.modulusBytes).toBe(bits / 8);
      const pm = newPreMaster();
      expect(decryptPreMasterSecret(k, encryptPreMaster(pair.publicKey, pm), 0x0303).equals(pm)).toBe(true);
      const bad = rawRsaEncrypt(pair.publicKey, pkcs1Block(modulusBytes(pair.publicKey), newPreMaster(), 0x01));
      expect(decryptPreMasterSecret(k, bad, 0x0303).equals(syntheticPreMasterSecret(k, bad, 0x0303))).toBe(true);
    }
  });
});

describe('public request checks and the master secret', () => {
  function params(over: Partial<RsaMasterSecretParams> = {}): RsaMasterSecretParams & { preMaster: Buffer } {
    const preMaster = newPreMaster();
    const { seed, serverRandom } = seededServerRandom();
    return {
      preMaster,
      encryptedPreMasterSecret: encryptPreMaster(publicKey, preMaster),
      clientVersion: 0x0303,
      clientRandom: crypto.randomBytes(32),
      serverRandom,
      serverRandomSeed: seed,
      prfHash: 'sha256',
      ...over,
    };
  }

  test('without EMS: PRF(premaster, "master secret", client_random ‖ server_random)', () => {
    for (const prfHash of ['sha256', 'sha384'] as const) {
      const p = params({ prfHash });
      const expected = prf12(
        prfHash,
        p.preMaster,
        'master secret',
        Buffer.concat([p.clientRandom, p.serverRandom]),
        48,
      );
      expect(rsaMasterSecret(key, p).equals(expected)).toBe(true);
    }
  });

  test('with EMS: PRF(premaster, "extended master secret", Hash(handshake_messages))', () => {
    for (const prfHash of ['sha256', 'sha384'] as const) {
      const p = params({ prfHash });
      p.handshakeMessages = rsaHandshakeMessages({
        clientVersion: 0x0303,
        clientRandom: p.clientRandom,
        serverRandom: p.serverRandom,
        ciphertext: p.encryptedPreMasterSecret,
      });
      const sessionHash = crypto.createHash(prfHash).update(p.handshakeMessages).digest();
      expect(
        rsaMasterSecret(key, p).equals(prf12(prfHash, p.preMaster, 'extended master secret', sessionHash, 48)),
      ).toBe(true);
    }
  });

  test('the downgrade sentinel in the last 8 bytes of server_random is allowed', () => {
    const sentinel = Buffer.from('444f574e47524401', 'hex'); // "DOWNGRD\x01"
    const { seed, serverRandom } = seededServerRandom(sentinel);
    expect(() => checkRsaMasterSecretRequest(params({ serverRandom, serverRandomSeed: seed }))).not.toThrow();
  });

  const badRequest = (p: RsaMasterSecretParams, message: RegExp) => {
    let caught: unknown;
    try {
      checkRsaMasterSecretRequest(p);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(KeyServiceError);
    expect((caught as KeyServiceError).code).toBe('bad_request');
    expect((caught as KeyServiceError).message).toMatch(message);
  };

  test('freshness: server_random[0..24] must be SHA-256(seed)[0..24]', () => {
    const p = params();
    badRequest({ ...p, serverRandomSeed: crypto.randomBytes(32) }, /serverRandom is not derived/);
    const flipped = Buffer.from(p.serverRandom);
    flipped[23] ^= 1;
    badRequest({ ...p, serverRandom: flipped }, /serverRandom is not derived/);
    // A recorded handshake's server random (not seed-derived) cannot be replayed.
    badRequest({ ...p, serverRandom: crypto.randomBytes(32) }, /serverRandom is not derived/);
    badRequest({ ...p, serverRandomSeed: crypto.randomBytes(31) }, /32 bytes/);
  });

  test('EMS: the handshake messages must be this handshake', () => {
    const p = params();
    const hm = (
      o: Partial<{ clientVersion: number; clientRandom: Buffer; serverRandom: Buffer; ciphertext: Buffer }> = {},
    ) =>
      rsaHandshakeMessages({
        clientVersion: 0x0303,
        clientRandom: p.clientRandom,
        serverRandom: p.serverRandom,
        ciphertext: p.encryptedPreMasterSecret,
        ...o,
      });
    expect(() => checkRsaMasterSecretRequest({ ...p, handshakeMessages: hm() })).not.toThrow();
    badRequest({ ...p, handshakeMessages: hm({ serverRandom: crypto.randomBytes(32) }) }, /ServerHello.random differs/);
    badRequest({ ...p, handshakeMessages: hm({ clientRandom: crypto.randomBytes(32) }) }, /ClientHello.random differs/);
    badRequest({ ...p, handshakeMessages: hm({ clientVersion: 0x0304 }) }, /client_version differs/);
    badRequest(
      { ...p, handshakeMessages: hm({ ciphertext: encryptPreMaster(publicKey, newPreMaster()) }) },
      /ClientKeyExchange does not carry/,
    );
    const full = hm();
    badRequest({ ...p, handshakeMessages: full.subarray(0, full.length - 1) }, /truncated/);
    badRequest({ ...p, handshakeMessages: Buffer.concat([full, Buffer.from([0x10])]) }, /truncated/);
    badRequest(
      { ...p, handshakeMessages: Buffer.concat([handshakeMessage(2, Buffer.alloc(40)), full]) },
      /first message must be the ClientHello/,
    );
    badRequest(
      { ...p, handshakeMessages: Buffer.concat([full, handshakeMessage(20, Buffer.alloc(12))]) },
      /last message must be the ClientKeyExchange/,
    );
    // A ServerKeyExchange has no place in an RSA key exchange: insert one after the ServerHello.
    const chLength = 4 + full.readUIntBE(1, 3);
    const shLength = 4 + full.readUIntBE(chLength + 1, 3);
    const withSke = Buffer.concat([
      full.subarray(0, chLength + shLength),
      handshakeMessage(12, Buffer.alloc(10)),
      full.subarray(chLength + shLength),
    ]);
    badRequest({ ...p, handshakeMessages: withSke }, /unexpected handshake message type/);
  });

  test('a rejected ciphertext gives a different, stable master secret of the same shape', () => {
    const p = params();
    const good = deriveRsaMasterSecret(key, p);
    const bad = { ...p, encryptedPreMasterSecret: rawRsaEncrypt(publicKey, pkcs1Block(256, p.preMaster, 0x01)) };
    const m1 = deriveRsaMasterSecret(key, bad);
    expect(m1.length).toBe(48);
    expect(m1.equals(good)).toBe(false);
    expect(deriveRsaMasterSecret(key, bad).equals(m1)).toBe(true);
  });
});
