/**
 * Key service, TLS 1.2 operations (lambdas/key-service) with `file` keys generated at run time:
 * tls12.server_key_exchange (validated ServerECDHParams, every scheme, a typed error per rejection)
 * and tls12.rsa_master_secret (premaster forwarding with implicit rejection: the "no oracle"
 * property at the service level, freshness, EMS), plus ticket_keys without configuration.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type KeyServiceHandler, type KeyServiceLogRecord } from '../../../../lambdas/key-service/handler';
import { createLocalHandler } from '../../../../local/lambda/local-key-service';
import type {
  ErrorResponse,
  KeyServiceResponse,
  MasterSecretResult,
  OkResponse,
  SignatureResult,
} from '../../../../contract/key-service-protocol';
import { prf12 } from '../../../../contract/tls12-prf';
import { decodeBase64Strict } from '../../../../contract/strict-base64';
import {
  MALFORMED_PREMASTER_CASES,
  encryptPreMaster,
  newPreMaster,
  rsaHandshakeMessages,
  seededServerRandom,
} from '../../../helpers/rsa-kex';

let dir: string;
// Generated at load time: describe blocks build request tables from them.
const keys: Record<'rsa' | 'p256' | 'p384' | 'other', crypto.KeyObject> = {
  rsa: crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
  other: crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
  p256: crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
  p384: crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey,
};
const pub = (k: keyof typeof keys) => crypto.createPublicKey(keys[k]);
let handler: KeyServiceHandler;
const logs: KeyServiceLogRecord[] = [];

function writeKey(name: string, key: crypto.KeyObject): string {
  const file = path.join(dir, `${name}.pem`);
  fs.writeFileSync(file, key.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return file;
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-ks12-'));
  handler = createLocalHandler({
    keys: [
      { name: 'rsa', custody: 'file', path: writeKey('rsa', keys.rsa) },
      { name: 'p256', custody: 'file', path: writeKey('p256', keys.p256) },
      { name: 'p384', custody: 'file', path: writeKey('p384', keys.p384) },
    ],
    ticketKeys: null,
    logger: (r) => logs.push(r),
  });
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function ok<T>(res: KeyServiceResponse): OkResponse<T> {
  if (!res.ok) throw new Error(`expected ok, got ${res.error.code}: ${res.error.message}`);
  return res as OkResponse<T>;
}

function err(res: KeyServiceResponse): ErrorResponse {
  if (res.ok) throw new Error('expected an error response');
  return res;
}

const b64 = (b: Buffer) => b.toString('base64');
const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);

/** ServerECDHParams for a named curve and point, spelled out independently (RFC 8422 §5.4). */
function ecdhParams(curve: number, point: Buffer, curveType = 3): Buffer {
  return Buffer.concat([Buffer.from([curveType]), u16(curve), Buffer.from([point.length]), point]);
}

function x25519Point(): Buffer {
  const jwk = crypto.generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' });
  return Buffer.from(jwk.x as string, 'base64url');
}

function nistPoint(curve: 'prime256v1' | 'secp384r1'): Buffer {
  const e = crypto.createECDH(curve);
  return e.generateKeys();
}

// ---------------------------------------------------------------------------------------------

describe('tls12.server_key_exchange', () => {
  const ske = (over: Record<string, unknown> = {}) => ({
    v: 2,
    id: 'ske-1',
    op: 'tls12.server_key_exchange',
    key: 'rsa',
    scheme: 'rsa_pkcs1_sha256',
    clientRandom: b64(crypto.randomBytes(32)),
    serverRandomSeed: b64(crypto.randomBytes(32)),
    params: b64(ecdhParams(29, x25519Point())),
    ...over,
  });

  const schemes = [
    ['rsa', 'rsa_pkcs1_sha256'],
    ['rsa', 'rsa_pkcs1_sha384'],
    ['rsa', 'rsa_pkcs1_sha512'],
    ['rsa', 'rsa_pss_rsae_sha256'],
    ['rsa', 'rsa_pss_rsae_sha384'],
    ['rsa', 'rsa_pss_rsae_sha512'],
    ['p256', 'ecdsa_secp256r1_sha256'],
    ['p384', 'ecdsa_secp384r1_sha384'],
  ] as const;
  const groups = [
    ['x25519', () => ecdhParams(29, x25519Point())],
    ['secp256r1', () => ecdhParams(23, nistPoint('prime256v1'))],
    ['secp384r1', () => ecdhParams(24, nistPoint('secp384r1'))],
  ] as const;

  test.each(schemes.flatMap(([key, scheme]) => groups.map(([group, make]) => ({ key, scheme, group, make }))))(
    '$scheme with the $key key over $group params signs client_random ‖ server_random (derived from the seed) ‖ params',
    async ({ key, scheme, make }) => {
      const clientRandom = crypto.randomBytes(32);
      const seed = crypto.randomBytes(32);
      // SHA-256(seed)[0..24] ‖ "DOWNGRD\x01": what the edge sends in its ServerHello.
      const serverRandom = Buffer.concat([
        crypto.createHash('sha256').update(seed).digest().subarray(0, 24),
        Buffer.from('DOWNGRD\x01', 'latin1'),
      ]);
      const params = make();
      const res = ok<SignatureResult>(
        await handler(
          ske({ key, scheme, clientRandom: b64(clientRandom), serverRandomSeed: b64(seed), params: b64(params) }),
        ),
      );
      expect(Object.keys(res.result).sort()).toEqual(['backendMs', 'signature']);
      const signature = decodeBase64Strict(res.result.signature)!;
      const content = Buffer.concat([clientRandom, serverRandom, params]);
      const hash = scheme.endsWith('512') ? 'sha512' : scheme.endsWith('384') ? 'sha384' : 'sha256';
      const len = { sha256: 32, sha384: 48, sha512: 64 }[hash];
      const verifyKey: crypto.VerifyKeyObjectInput = scheme.startsWith('rsa_pss')
        ? { key: pub(key), padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: len }
        : scheme.startsWith('rsa_pkcs1')
          ? { key: pub(key), padding: crypto.constants.RSA_PKCS1_PADDING }
          : { key: pub(key), dsaEncoding: 'der' };
      expect(crypto.verify(hash, content, verifyKey, signature)).toBe(true);
      // Not a signature over the params alone or with the randoms swapped.
      expect(crypto.verify(hash, Buffer.concat([serverRandom, clientRandom, params]), verifyKey, signature)).toBe(
        false,
      );
    },
  );

  const p256 = nistPoint('prime256v1');
  const offCurve = Buffer.from(p256);
  offCurve[64] ^= 0x01;
  const hybrid = Buffer.from(p256);
  hybrid[0] = 0x06;
  const compressed = Buffer.concat([Buffer.from([0x02 | (p256[64] & 1)]), p256.subarray(1, 33)]);
  const xp = x25519Point();
  const P = Buffer.from('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'hex');

  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['explicit prime curve (curve_type 1)', { params: b64(ecdhParams(29, xp, 1)) }, 'unsupported'],
    ['explicit char2 curve (curve_type 2)', { params: b64(ecdhParams(29, xp, 2)) }, 'unsupported'],
    ['unknown named curve (secp521r1, 25)', { params: b64(ecdhParams(25, Buffer.alloc(133, 4))) }, 'unsupported'],
    ['unknown named curve (x448, 30)', { params: b64(ecdhParams(30, Buffer.alloc(56, 9))) }, 'unsupported'],
    ['unknown named curve (ffdhe2048, 256)', { params: b64(ecdhParams(256, xp)) }, 'unsupported'],
    ['x25519 point of 31 bytes', { params: b64(ecdhParams(29, xp.subarray(1))) }, 'bad_request'],
    ['x25519 point of 33 bytes', { params: b64(ecdhParams(29, Buffer.concat([xp, Buffer.from([0])]))) }, 'bad_request'],
    ['x25519 all-zero point', { params: b64(ecdhParams(29, Buffer.alloc(32))) }, 'bad_request'],
    ['x25519 non-canonical point (u = p)', { params: b64(ecdhParams(29, P)) }, 'bad_request'],
    ['x25519 point with the top bit set', { params: b64(ecdhParams(29, Buffer.alloc(32, 0xff))) }, 'bad_request'],
    ['secp256r1 compressed point', { params: b64(ecdhParams(23, compressed)) }, 'bad_request'],
    ['secp256r1 hybrid point (0x06)', { params: b64(ecdhParams(23, hybrid)) }, 'bad_request'],
    ['secp256r1 point not on the curve', { params: b64(ecdhParams(23, offCurve)) }, 'bad_request'],
    ['secp256r1 point sent as secp384r1', { params: b64(ecdhParams(24, p256)) }, 'bad_request'],
    ['secp384r1 point sent as secp256r1', { params: b64(ecdhParams(23, nistPoint('secp384r1'))) }, 'bad_request'],
    [
      'secp256r1 all-zero point',
      { params: b64(ecdhParams(23, Buffer.concat([Buffer.from([4]), Buffer.alloc(64)]))) },
      'bad_request',
    ],
    [
      'trailing byte after the point',
      { params: b64(Buffer.concat([ecdhParams(29, xp), Buffer.from([0])])) },
      'bad_request',
    ],
    [
      'point length larger than the data',
      { params: b64(Buffer.concat([Buffer.from([3, 0, 29, 40]), xp])) },
      'bad_request',
    ],
    ['params too short', { params: b64(Buffer.from([3, 0, 29])) }, 'bad_request'],
    ['params oversize', { params: b64(crypto.randomBytes(260)) }, 'bad_request'],
    [
      'params with a point of 255 bytes for x25519',
      { params: b64(ecdhParams(29, Buffer.alloc(255, 1))) },
      'bad_request',
    ],
    ['params empty', { params: '' }, 'bad_request'],
    ['params not base64', { params: '***' }, 'bad_request'],
    ['params missing', { params: undefined }, 'bad_request'],
    ['clientRandom of 31 bytes', { clientRandom: b64(crypto.randomBytes(31)) }, 'bad_request'],
    ['serverRandomSeed of 33 bytes', { serverRandomSeed: b64(crypto.randomBytes(33)) }, 'bad_request'],
    ['serverRandomSeed missing', { serverRandomSeed: undefined }, 'bad_request'],
    // Protocol v2: the caller no longer chooses the server random, not even alongside a seed.
    ['a caller-chosen serverRandom', { serverRandom: b64(crypto.randomBytes(32)) }, 'bad_request'],
    ['clientRandom wrong type', { clientRandom: 42 }, 'bad_request'],
    ['SHA-1 scheme', { scheme: 'rsa_pkcs1_sha1' }, 'unsupported'],
    ['ECDSA SHA-1 scheme', { scheme: 'ecdsa_sha1' }, 'unsupported'],
    ['ECDSA scheme on an RSA key', { scheme: 'ecdsa_secp256r1_sha256' }, 'unsupported'],
    ['PKCS#1 scheme on a P-256 key', { key: 'p256' }, 'unsupported'],
    ['P-384 scheme on a P-256 key', { key: 'p256', scheme: 'ecdsa_secp384r1_sha384' }, 'unsupported'],
    ['PSS scheme on a P-384 key', { key: 'p384', scheme: 'rsa_pss_rsae_sha384' }, 'unsupported'],
    ['unknown field', { transcriptHash: b64(crypto.randomBytes(32)) }, 'bad_request'],
    ['unknown key', { key: 'nope' }, 'unknown_key'],
  ];

  test('an edge of the previous release (protocol v1, a caller-chosen serverRandom) → unsupported, nothing signed', async () => {
    const event: Record<string, unknown> = ske({ v: 1, serverRandom: b64(crypto.randomBytes(32)) });
    delete event.serverRandomSeed;
    const res = err(await handler(event));
    expect(res).toEqual({
      v: 2,
      id: 'ske-1',
      ok: false,
      error: { code: 'unsupported', message: expect.stringMatching(/protocol version 1 not supported .*same release/) },
    });
  });

  test.each(cases.map(([label, over, code]) => ({ label, over, code })))('$label → $code', async ({ over, code }) => {
    const event: Record<string, unknown> = ske(over);
    for (const [k, v] of Object.entries(event)) if (v === undefined) delete event[k];
    expect(err(await handler(event))).toEqual({
      v: 2,
      id: 'ske-1',
      ok: false,
      error: { code, message: expect.any(String) },
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe('tls12.rsa_master_secret', () => {
  function material(
    over: { prfHash?: 'sha256' | 'sha384'; ems?: boolean; ciphertext?: Buffer; clientVersion?: number } = {},
  ) {
    const clientVersion = over.clientVersion ?? 0x0303;
    const preMaster = newPreMaster(clientVersion);
    const ciphertext = over.ciphertext ?? encryptPreMaster(pub('rsa'), preMaster);
    const clientRandom = crypto.randomBytes(32);
    const { seed, serverRandom } = seededServerRandom();
    const prfHash = over.prfHash ?? 'sha256';
    const handshakeMessages = over.ems
      ? rsaHandshakeMessages({ clientVersion, clientRandom, serverRandom, ciphertext })
      : undefined;
    const request: Record<string, unknown> = {
      v: 2,
      id: 'rsa-1',
      op: 'tls12.rsa_master_secret',
      key: 'rsa',
      encryptedPreMasterSecret: b64(ciphertext),
      clientVersion,
      clientRandom: b64(clientRandom),
      serverRandom: b64(serverRandom),
      serverRandomSeed: b64(seed),
      prfHash,
      ...(handshakeMessages ? { handshakeMessages: b64(handshakeMessages) } : {}),
    };
    // The expected master secret, computed here with the PRF (RFC 5246 §8.1 / RFC 7627 §4).
    const expected = handshakeMessages
      ? prf12(
          prfHash,
          preMaster,
          'extended master secret',
          crypto.createHash(prfHash).update(handshakeMessages).digest(),
          48,
        )
      : prf12(prfHash, preMaster, 'master secret', Buffer.concat([clientRandom, serverRandom]), 48);
    return { request, expected, preMaster, ciphertext, clientRandom, serverRandom, seed };
  }

  test.each([
    { prfHash: 'sha256', ems: false },
    { prfHash: 'sha384', ems: false },
    { prfHash: 'sha256', ems: true },
    { prfHash: 'sha384', ems: true },
  ] as const)(
    'a correct ciphertext yields the master secret (prf $prfHash, EMS $ems), never the premaster',
    async ({ prfHash, ems }) => {
      const m = material({ prfHash, ems });
      const res = ok<MasterSecretResult>(await handler(m.request));
      expect(Object.keys(res.result).sort()).toEqual(['backendMs', 'masterSecret']);
      const ms = decodeBase64Strict(res.result.masterSecret)!;
      expect(ms.length).toBe(48);
      expect(ms.equals(m.expected)).toBe(true);
      expect(JSON.stringify(res)).not.toContain(b64(m.preMaster));
      expect(Number.isInteger(res.result.backendMs)).toBe(true); // whole milliseconds only
    },
  );

  describe('no oracle: every malformed ciphertext is answered like a good one', () => {
    const baseline = () => material();

    const malformed = [
      ...MALFORMED_PREMASTER_CASES.map((c) => ({ label: c.label, make: () => c.ciphertext(pub('rsa'), 0x0303) })),
      {
        label: 'well-formed ciphertext under a different key',
        make: () => encryptPreMaster(pub('other'), newPreMaster()),
      },
    ];

    test.each(malformed)('$label → ok, 48-byte master secret, same shape, stable', async ({ make }) => {
      const good = baseline();
      const goodRes = ok<MasterSecretResult>(await handler(good.request));
      logs.length = 0;
      const ciphertext = make();
      const request = { ...good.request, encryptedPreMasterSecret: b64(ciphertext) };
      const res = ok<MasterSecretResult>(await handler(request));
      // Same envelope and fields as the good response.
      expect(Object.keys(res).sort()).toEqual(Object.keys(goodRes).sort());
      expect(Object.keys(res.result).sort()).toEqual(Object.keys(goodRes.result).sort());
      expect(typeof res.result.backendMs).toBe('number');
      expect(res.result.masterSecret.length).toBe(goodRes.result.masterSecret.length);
      const ms = decodeBase64Strict(res.result.masterSecret)!;
      expect(ms.length).toBe(48);
      expect(ms.equals(good.expected)).toBe(false);
      // Stable: the same ciphertext gives the same (synthetic) master secret.
      const again = ok<MasterSecretResult>(await handler(request));
      expect(again.result.masterSecret).toBe(res.result.masterSecret);
      // And the logs say nothing different either: same fields, outcome ok.
      expect(logs.map((l) => l.outcome)).toEqual(['ok', 'ok']);
      expect(Object.keys(logs[0]).sort()).toEqual(
        [
          'level',
          'msg',
          'id',
          'op',
          'key',
          'scheme',
          'ems',
          'awsRequestId',
          'outcome',
          'latencyMs',
          'backendMs',
        ].sort(),
      );
    });

    test('with EMS too: a ciphertext under another key is implicitly rejected', async () => {
      const m = material({ ems: true, ciphertext: encryptPreMaster(pub('other'), newPreMaster()) });
      const res = ok<MasterSecretResult>(await handler(m.request));
      expect(decodeBase64Strict(res.result.masterSecret)!.equals(m.expected)).toBe(false);
      expect(decodeBase64Strict(res.result.masterSecret)!.length).toBe(48);
    });

    test('distinct bad ciphertexts give distinct master secrets', async () => {
      const good = baseline();
      const seen = new Set<string>();
      for (const c of malformed.slice(0, 6)) {
        const res = ok<MasterSecretResult>(await handler({ ...good.request, encryptedPreMasterSecret: b64(c.make()) }));
        seen.add(res.result.masterSecret);
      }
      expect(seen.size).toBe(6);
    });
  });

  const m = material();
  const withEms = material({ ems: true });
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['server random not derived from the seed', { serverRandomSeed: b64(crypto.randomBytes(32)) }, 'bad_request'],
    ['a replayed (unseeded) server random', { serverRandom: b64(crypto.randomBytes(32)) }, 'bad_request'],
    [
      'EMS messages of another handshake',
      { handshakeMessages: material({ ems: true }).request.handshakeMessages },
      'bad_request',
    ],
    ['EMS messages that are not handshake messages', { handshakeMessages: b64(crypto.randomBytes(64)) }, 'bad_request'],
    ['clientVersion below TLS 1.2', { clientVersion: 0x0302 }, 'bad_request'],
    ['clientVersion not TLS-shaped', { clientVersion: 0x0404 }, 'bad_request'],
    ['clientVersion as a string', { clientVersion: '771' }, 'bad_request'],
    ['clientVersion fractional', { clientVersion: 771.5 }, 'bad_request'],
    ['clientVersion missing', { clientVersion: undefined }, 'bad_request'],
    ['prfHash sha512', { prfHash: 'sha512' }, 'bad_request'],
    ['prfHash sha1', { prfHash: 'sha1' }, 'bad_request'],
    ['prfHash missing', { prfHash: undefined }, 'bad_request'],
    ['empty ciphertext', { encryptedPreMasterSecret: '' }, 'bad_request'],
    ['ciphertext over 512 bytes', { encryptedPreMasterSecret: b64(crypto.randomBytes(513)) }, 'bad_request'],
    ['ciphertext not base64', { encryptedPreMasterSecret: 'AAA' }, 'bad_request'],
    ['clientRandom of 33 bytes', { clientRandom: b64(crypto.randomBytes(33)) }, 'bad_request'],
    ['serverRandomSeed of 16 bytes', { serverRandomSeed: b64(crypto.randomBytes(16)) }, 'bad_request'],
    ['serverRandomSeed missing', { serverRandomSeed: undefined }, 'bad_request'],
    ['handshakeMessages empty', { handshakeMessages: '' }, 'bad_request'],
    ['handshakeMessages oversize', { handshakeMessages: b64(Buffer.alloc(256 * 1024 + 1)) }, 'bad_request'],
    ['handshakeMessages null', { handshakeMessages: null }, 'bad_request'],
    ['unknown field (scheme)', { scheme: 'rsa_pkcs1_sha256' }, 'bad_request'],
    ['unknown field (premaster)', { preMasterSecret: b64(crypto.randomBytes(48)) }, 'bad_request'],
    ['unknown key', { key: 'nope' }, 'unknown_key'],
    ['an EC key cannot decrypt', { key: 'p256' }, 'unsupported'],
  ];

  test.each(cases.map(([label, over, code]) => ({ label, over, code })))(
    '$label → $code',
    async ({ label, over, code }) => {
      const base = label.startsWith('EMS') ? withEms.request : m.request;
      const event: Record<string, unknown> = { ...base, ...over };
      for (const [k, v] of Object.entries(event)) if (v === undefined) delete event[k];
      expect(err(await handler(event))).toEqual({
        v: 2,
        id: 'rsa-1',
        ok: false,
        error: { code, message: expect.any(String) },
      });
    },
  );

  test('logs carry no ciphertext, seed, randoms, premaster or master secret', async () => {
    logs.length = 0;
    const x = material({ ems: true });
    const res = ok<MasterSecretResult>(await handler(x.request));
    await handler({ ...x.request, serverRandomSeed: b64(crypto.randomBytes(32)) });
    const text = JSON.stringify(logs);
    for (const secret of [
      res.result.masterSecret,
      b64(x.ciphertext),
      b64(x.seed),
      b64(x.preMaster),
      b64(x.clientRandom),
      b64(x.serverRandom),
    ]) {
      expect(text).not.toContain(secret);
    }
    expect(logs[0]).toMatchObject({ op: 'tls12.rsa_master_secret', key: 'rsa', ems: true, outcome: 'ok' });
    expect(logs[1]).toMatchObject({ outcome: 'bad_request' });
  });
});

describe('ticket_keys without configuration', () => {
  test('answers unavailable; unknown fields are rejected', async () => {
    expect(err(await handler({ v: 2, id: 't', op: 'ticket_keys' })).error.code).toBe('unavailable');
    expect(err(await handler({ v: 2, id: 't', op: 'ticket_keys', key: 'rsa' })).error.code).toBe('bad_request');
  });
});
