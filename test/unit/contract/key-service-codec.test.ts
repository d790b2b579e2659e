/**
 * contract/key-service-codec.ts: the one codec both ends of the key-service protocol use
 * (docs/key-service-protocol.md). Requests and responses survive a round trip unchanged; strict
 * decoding refuses what the other end must never have sent, with typed errors.
 */
import * as crypto from 'node:crypto';
import {
  decodeRequest,
  decodeResponse,
  encodeErrorResponse,
  encodeOkResponse,
  encodeRequest,
  encodeResult,
  KeyServiceMessageError,
  type DecodedRequest,
} from '../../../contract/key-service-codec';
import { PROTOCOL_VERSION, tls12ServerRandom } from '../../../contract/key-service-protocol';

const p256Params = (): Buffer => {
  const ecdh = crypto.createECDH('prime256v1');
  const point = ecdh.generateKeys();
  return Buffer.concat([Buffer.from([3, 0, 23, point.length]), point]);
};

const requests: DecodedRequest[] = [
  { op: 'ping', id: 'p' },
  { op: 'ticket_keys', id: 't' },
  { op: 'public_key', id: 'k', key: 'web' },
  {
    op: 'tls13.certificate_verify',
    id: 'cv',
    key: 'web',
    scheme: 'ecdsa_secp256r1_sha256',
    transcriptHash: crypto.randomBytes(48),
  },
  {
    op: 'tls12.server_key_exchange',
    id: 'ske',
    key: 'web',
    scheme: 'rsa_pkcs1_sha256',
    clientRandom: crypto.randomBytes(32),
    serverRandomSeed: crypto.randomBytes(32),
    params: p256Params(),
  },
  (() => {
    const serverRandomSeed = crypto.randomBytes(32);
    return {
      op: 'tls12.rsa_master_secret' as const,
      id: 'rsa',
      key: 'legacy',
      encryptedPreMasterSecret: crypto.randomBytes(256),
      clientVersion: 0x0303,
      clientRandom: crypto.randomBytes(32),
      serverRandom: tls12ServerRandom(serverRandomSeed),
      serverRandomSeed,
      prfHash: 'sha384' as const,
      handshakeMessages: crypto.randomBytes(900),
    };
  })(),
];

describe('requests', () => {
  test.each(requests.map((r) => [r.op, r] as const))(
    '%s: encoded as JSON, decoded by the service as it was',
    (_op, request) => {
      const wire = encodeRequest(request);
      expect(wire.v).toBe(PROTOCOL_VERSION);
      const decoded = decodeRequest(JSON.parse(JSON.stringify(wire)));
      expect(decoded).toEqual({ ok: true, request });
    },
  );

  test('what the service would refuse is refused before it is sent, with the code the service would answer', () => {
    const fails = (r: unknown) => {
      try {
        encodeRequest(r as DecodedRequest);
      } catch (e) {
        return e;
      }
      throw new Error('expected a refusal');
    };
    expect(
      fails({
        op: 'tls13.certificate_verify',
        id: 'x',
        key: 'web',
        scheme: 'ecdsa_secp256r1_sha256',
        transcriptHash: crypto.randomBytes(20),
      }),
    ).toMatchObject({
      name: 'KeyServiceMessageError',
      code: 'bad_request',
      message: expect.stringMatching(/^transcriptHash: 20 bytes/),
    });
    expect(fails({ op: 'public_key', id: 'x', key: 'not a key name' })).toMatchObject({
      code: 'bad_request',
      message: expect.stringMatching(/^key: /),
    });
    expect(
      fails({
        op: 'tls13.certificate_verify',
        id: 'x',
        key: 'web',
        scheme: 'rsa_pkcs1_sha1',
        transcriptHash: crypto.randomBytes(32),
      }),
    ).toMatchObject({ code: 'unsupported' });
    expect(fails({ ...requests[4], params: Buffer.from([3, 0, 23, 65, 4]) })).toBeInstanceOf(KeyServiceMessageError);
    expect(fails({ ...requests[3], transcriptHash: 'not bytes' })).toMatchObject({
      code: 'bad_request',
      message: 'transcriptHash: expected bytes (a Buffer)',
    });
    expect(fails({ ...requests[5], clientVersion: 0x0301 })).toMatchObject({
      code: 'bad_request',
      message: expect.stringMatching(/^clientVersion/),
    });
  });
});

describe('responses', () => {
  const signature = crypto.randomBytes(71);
  const ticketKeys = {
    epochSeconds: 3600,
    current: { epoch: 10, key: crypto.randomBytes(32) },
    previous: { epoch: 9, key: crypto.randomBytes(32) },
    epochsAccepted: 3,
    older: [{ epoch: 8, key: crypto.randomBytes(32) }],
  };
  const wire = (id: string, result: unknown) => JSON.parse(JSON.stringify(encodeOkResponse(id, result)));

  test('every result survives encode → JSON → decode', () => {
    const cv = { op: 'tls13.certificate_verify' as const, id: 'a' };
    expect(decodeResponse(cv, wire('a', encodeResult(cv.op, { signature, backendMs: 3.5 })))).toEqual({
      ok: true,
      result: { signature, backendMs: 3.5 },
    });
    const ms = { op: 'tls12.rsa_master_secret' as const, id: 'b' };
    const masterSecret = crypto.randomBytes(48);
    expect(decodeResponse(ms, wire('b', encodeResult(ms.op, { masterSecret, backendMs: 2 })))).toEqual({
      ok: true,
      result: { masterSecret, backendMs: 2 },
    });
    const tk = { op: 'ticket_keys' as const, id: 'c' };
    expect(decodeResponse(tk, wire('c', encodeResult(tk.op, ticketKeys)))).toEqual({ ok: true, result: ticketKeys });
    // With two epochs accepted, the answer keeps the v2 default shape (no epochsAccepted, no older).
    const two = { ...ticketKeys, epochsAccepted: 2, older: [] };
    expect(Object.keys(encodeResult('ticket_keys', two))).toEqual(['epochSeconds', 'current', 'previous']);
    const pk = { op: 'public_key' as const, id: 'd' };
    const spki = crypto
      .generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .publicKey.export({ type: 'spki', format: 'der' });
    expect(decodeResponse(pk, wire('d', encodeResult(pk.op, { spki, keySpec: 'ECC_NIST_P256' })))).toEqual({
      ok: true,
      result: { spki, keySpec: 'ECC_NIST_P256' },
    });
    const ping = {
      service: 'keyless-key-service' as const,
      protocol: PROTOCOL_VERSION,
      version: '0.2.0',
      keys: [{ name: 'web', custody: 'kms' as const, keySpec: 'UNKNOWN' }],
      keyPattern: { name: '*' as const, custody: 'kms' as const, aliasPrefix: 'alias/keyless/prod/keys/' },
    };
    expect(decodeResponse({ op: 'ping', id: 'e' }, wire('e', encodeResult('ping', ping)))).toEqual({
      ok: true,
      result: ping,
    });
  });

  test('a typed refusal is decoded, its message made printable', () => {
    const res = JSON.parse(JSON.stringify(encodeErrorResponse('a', 'unknown_key', 'no such key\u0007')));
    expect(decodeResponse({ op: 'public_key', id: 'a' }, res)).toEqual({
      ok: false,
      code: 'unknown_key',
      message: 'no such key?',
    });
  });

  test('anything malformed is a KeyServiceMessageError: internal, or unsupported for another version', () => {
    const cv = { op: 'tls13.certificate_verify' as const, id: 'a' };
    const good = { signature: signature.toString('base64'), backendMs: 1 };
    const decodeFails = (response: unknown) => {
      try {
        decodeResponse(cv, response);
      } catch (e) {
        expect(e).toBeInstanceOf(KeyServiceMessageError);
        return { code: (e as KeyServiceMessageError).code, message: (e as Error).message };
      }
      throw new Error('expected a refusal');
    };
    expect(decodeFails({ v: 1, id: 'a', ok: true, result: good })).toMatchObject({
      code: 'unsupported',
      message: expect.stringMatching(/speaks protocol v1/),
    });
    expect(decodeFails({ v: 2, id: 'b', ok: true, result: good })).toMatchObject({
      code: 'internal',
      message: expect.stringMatching(/id does not match/),
    });
    expect(decodeFails({ v: 2, id: 'a', ok: true, result: { ...good, extra: 1 } })).toMatchObject({
      code: 'internal',
      message: expect.stringMatching(/expected fields signature, backendMs/),
    });
    expect(decodeFails({ v: 2, id: 'a', ok: true, result: { ...good, signature: 'QR==' } })).toMatchObject({
      code: 'internal',
      message: expect.stringMatching(/not canonical base64/),
    });
    expect(decodeFails({ v: 2, id: 'a', ok: true, result: { ...good, backendMs: -1 } })).toMatchObject({
      code: 'internal',
      message: expect.stringMatching(/backendMs/),
    });
    expect(decodeFails({ v: 2, id: 'a', ok: false, error: { code: 'teapot', message: 'x' } })).toMatchObject({
      code: 'internal',
    });
    expect(decodeFails('not an object')).toMatchObject({ code: 'internal' });
    const ms = { op: 'tls12.rsa_master_secret' as const, id: 'm' };
    expect(() =>
      decodeResponse(ms, {
        v: 2,
        id: 'm',
        ok: true,
        result: { masterSecret: crypto.randomBytes(47).toString('base64'), backendMs: 1 },
      }),
    ).toThrow(/masterSecret must be 48 bytes/);
    const tk = { op: 'ticket_keys' as const, id: 't' };
    const same = crypto.randomBytes(32).toString('base64');
    expect(() =>
      decodeResponse(tk, {
        v: 2,
        id: 't',
        ok: true,
        result: { epochSeconds: 60, current: { epoch: 2, key: same }, previous: { epoch: 1, key: same } },
      }),
    ).toThrow(/ticket keys are equal/);
  });
});
