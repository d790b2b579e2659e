/**
 * Key service (lambdas/key-service) with `file` keys generated at run time: every applicable
 * scheme signs the exact RFC 8446 §4.4.3 content, and every malformed request gets its typed error.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  createHandler,
  createLambdaEntry,
  type KeyServiceHandler,
  type KeyServiceLogRecord,
} from '../../../../lambdas/key-service/handler';
import { createLocalHandler, parseLocalKeysConfig } from '../../../../local/lambda/local-key-service';
import { parseKeysConfig, loadKeysConfigFromEnv } from '../../../../lambdas/key-service/config';
import { ConfigError } from '../../../../contract/key-service-errors';
import { decodeBase64Strict } from '../../../../contract/strict-base64';
import type {
  ErrorResponse,
  KeyServiceResponse,
  OkResponse,
  PingResult,
  PublicKeyResult,
  SignatureResult,
} from '../../../../contract/key-service-protocol';

let dir: string;
const keys: Record<'rsa' | 'p256' | 'p384', crypto.KeyObject> = {} as never;
let handler: KeyServiceHandler;
const logs: KeyServiceLogRecord[] = [];

function writeKey(name: string, key: crypto.KeyObject): string {
  const file = path.join(dir, `${name}.pem`);
  fs.writeFileSync(file, key.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return file;
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-ks-'));
  keys.rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  keys.p256 = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  keys.p384 = crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
  handler = createLocalHandler({
    keys: [
      { name: 'rsa', custody: 'file', path: writeKey('rsa', keys.rsa) },
      { name: 'p256', custody: 'file', path: writeKey('p256', keys.p256) },
      { name: 'p384', custody: 'file', path: writeKey('p384', keys.p384) },
    ],
    logger: (r) => logs.push(r),
  });
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** RFC 8446 §4.4.3, spelled out independently of the implementation. */
function expectedContent(hash: Buffer): Buffer {
  return Buffer.concat([
    Buffer.alloc(64, 0x20),
    Buffer.from('TLS 1.3, server CertificateVerify'),
    Buffer.from([0x00]),
    hash,
  ]);
}

function ok<T>(res: KeyServiceResponse): OkResponse<T> {
  if (!res.ok) throw new Error(`expected ok, got ${res.error.code}: ${res.error.message}`);
  return res as OkResponse<T>;
}

function err(res: KeyServiceResponse): ErrorResponse {
  if (res.ok) throw new Error('expected an error response');
  return res;
}

const cv = (over: Record<string, unknown> = {}) => ({
  v: 2,
  id: 'req-1',
  op: 'tls13.certificate_verify',
  key: 'rsa',
  scheme: 'rsa_pss_rsae_sha256',
  transcriptHash: crypto.randomBytes(32).toString('base64'),
  ...over,
});

describe('tls13.certificate_verify', () => {
  const cases = [
    { key: 'rsa', scheme: 'rsa_pss_rsae_sha256', hash: 'sha256', len: 32 },
    { key: 'rsa', scheme: 'rsa_pss_rsae_sha384', hash: 'sha384', len: 48 },
    { key: 'rsa', scheme: 'rsa_pss_rsae_sha512', hash: 'sha512', len: 64 },
    { key: 'p256', scheme: 'ecdsa_secp256r1_sha256', hash: 'sha256', len: 32 },
    { key: 'p384', scheme: 'ecdsa_secp384r1_sha384', hash: 'sha384', len: 48 },
  ] as const;

  test.each(cases)('$scheme with the $key key signs the RFC 8446 content', async ({ key, scheme, hash, len }) => {
    // The transcript hash is the cipher suite's (SHA-256 or SHA-384), whatever the scheme's hash.
    const transcriptHash = crypto
      .createHash(hash === 'sha512' ? 'sha384' : hash)
      .update(crypto.randomBytes(100))
      .digest();
    expect(transcriptHash.length).toBe(Math.min(len, 48));
    const res = ok<SignatureResult>(
      await handler(cv({ key, scheme, transcriptHash: transcriptHash.toString('base64'), id: `t.${scheme}` })),
    );
    expect(res).toMatchObject({ v: 2, id: `t.${scheme}`, ok: true });
    expect(res.result.backendMs).toBeGreaterThanOrEqual(0);
    const signature = decodeBase64Strict(res.result.signature)!;
    const pub = crypto.createPublicKey(keys[key]);
    const content = expectedContent(transcriptHash);
    if (scheme.startsWith('rsa_pss')) {
      const pss = { key: pub, padding: crypto.constants.RSA_PKCS1_PSS_PADDING };
      expect(signature.length).toBe(256);
      expect(crypto.verify(hash, content, { ...pss, saltLength: len }, signature)).toBe(true);
      // The salt length is exactly the hash length: any other expectation fails.
      expect(crypto.verify(hash, content, { ...pss, saltLength: 0 }, signature)).toBe(false);
      expect(crypto.verify(hash, content, { ...pss, saltLength: len + 1 }, signature)).toBe(false);
    } else {
      expect(signature[0]).toBe(0x30); // DER SEQUENCE
      expect(crypto.verify(hash, content, { key: pub, dsaEncoding: 'der' }, signature)).toBe(true);
    }
    // Not a signature over the bare hash or over another context string.
    expect(
      crypto.verify(
        hash,
        transcriptHash,
        { key: pub, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: len, dsaEncoding: 'der' },
        signature,
      ),
    ).toBe(false);
  });
});

describe('public_key and ping', () => {
  test('public_key returns the SPKI and key spec', async () => {
    for (const [name, spec] of [
      ['rsa', 'RSA_2048'],
      ['p256', 'ECC_NIST_P256'],
      ['p384', 'ECC_NIST_P384'],
    ] as const) {
      const res = ok<PublicKeyResult>(await handler({ v: 2, id: 'pk', op: 'public_key', key: name }));
      expect(res.result.keySpec).toBe(spec);
      const expected = crypto.createPublicKey(keys[name]).export({ type: 'spki', format: 'der' });
      expect(Buffer.from(res.result.spki, 'base64').equals(expected)).toBe(true);
    }
  });

  test('ping lists the configured keys', async () => {
    const res = ok<PingResult>(await handler({ v: 2, id: 'p', op: 'ping' }));
    expect(res.result).toEqual({
      service: 'keyless-key-service',
      protocol: 2,
      version: expect.any(String),
      keys: [
        { name: 'rsa', custody: 'file', keySpec: 'RSA_2048' },
        { name: 'p256', custody: 'file', keySpec: 'ECC_NIST_P256' },
        { name: 'p384', custody: 'file', keySpec: 'ECC_NIST_P384' },
      ],
    });
  });
});

describe('rejections', () => {
  const hash32 = crypto.randomBytes(32).toString('base64');
  const cases: Array<[string, unknown, string, string | null]> = [
    ['unknown field', cv({ extra: 1 }), 'bad_request', 'req-1'],
    ['unknown field on ping', { v: 2, id: 'a', op: 'ping', key: 'rsa' }, 'bad_request', 'a'],
    ['__proto__ field', JSON.parse('{"v":2,"id":"a","op":"ping","__proto__":{"x":1}}'), 'bad_request', 'a'],
    ['wrong type: key', cv({ key: 5 }), 'bad_request', 'req-1'],
    ['wrong type: transcriptHash', cv({ transcriptHash: [1, 2] }), 'bad_request', 'req-1'],
    ['wrong type: id', cv({ id: 7 }), 'bad_request', null],
    ['wrong type: v', cv({ v: '1' }), 'bad_request', 'req-1'],
    ['bad base64: alphabet', cv({ transcriptHash: hash32.slice(0, -4) + '$$$=' }), 'bad_request', 'req-1'],
    [
      'bad base64: url-safe',
      cv({ transcriptHash: Buffer.alloc(32, 0xfb).toString('base64url') + '=' }),
      'bad_request',
      'req-1',
    ],
    ['bad base64: missing padding', cv({ transcriptHash: hash32.replace(/=+$/, '') }), 'bad_request', 'req-1'],
    ['bad base64: non-canonical bits', cv({ transcriptHash: hash32.slice(0, -2) + 'B=' }), 'bad_request', 'req-1'],
    ['bad base64: whitespace', cv({ transcriptHash: ` ${hash32}` }), 'bad_request', 'req-1'],
    [
      'wrong hash length',
      cv({ scheme: 'rsa_pss_rsae_sha384', transcriptHash: Buffer.alloc(40, 1).toString('base64') }),
      'bad_request',
      'req-1',
    ],
    [
      'a SHA-512-sized hash (no TLS 1.3 suite uses SHA-512)',
      cv({ scheme: 'rsa_pss_rsae_sha512', transcriptHash: Buffer.alloc(64, 1).toString('base64') }),
      'bad_request',
      'req-1',
    ],
    ['empty hash', cv({ transcriptHash: '' }), 'bad_request', 'req-1'],
    ['oversize hash', cv({ transcriptHash: crypto.randomBytes(300).toString('base64') }), 'bad_request', 'req-1'],
    ['unknown key', cv({ key: 'nope' }), 'unknown_key', 'req-1'],
    ['oversize key name', cv({ key: 'k'.repeat(65) }), 'bad_request', 'req-1'],
    ['key with bad characters', cv({ key: 'arn:aws:kms:us-east-1:1:key/x y' }), 'bad_request', 'req-1'],
    ['incompatible scheme: ECDSA on RSA', cv({ scheme: 'ecdsa_secp256r1_sha256' }), 'unsupported', 'req-1'],
    ['incompatible scheme: PSS on P-256', cv({ key: 'p256' }), 'unsupported', 'req-1'],
    [
      'incompatible scheme: P-384 scheme on P-256',
      cv({ key: 'p256', scheme: 'ecdsa_secp384r1_sha384', transcriptHash: crypto.randomBytes(48).toString('base64') }),
      'unsupported',
      'req-1',
    ],
    ['PKCS#1 v1.5 in TLS 1.3 CertificateVerify', cv({ scheme: 'rsa_pkcs1_sha256' }), 'unsupported', 'req-1'],
    ['unknown scheme', cv({ scheme: 'rsa_pkcs1_sha1' }), 'unsupported', 'req-1'],
    ['bad version (v1, the previous release)', cv({ v: 1 }), 'unsupported', 'req-1'],
    ['bad version (v3)', cv({ v: 3 }), 'unsupported', 'req-1'],
    ['missing version', { id: 'x', op: 'ping' }, 'bad_request', 'x'],
    ['unknown op', { v: 2, id: 'x', op: 'tls12.rsa_decrypt', key: 'rsa' }, 'unsupported', 'x'],
    ['oversize id', cv({ id: 'i'.repeat(65) }), 'bad_request', null],
    ['id with bad characters', cv({ id: 'a b' }), 'bad_request', null],
    ['missing id', { v: 2, op: 'ping' }, 'bad_request', null],
    [
      'missing transcriptHash',
      { v: 2, id: 'x', op: 'tls13.certificate_verify', key: 'rsa', scheme: 'rsa_pss_rsae_sha256' },
      'bad_request',
      'x',
    ],
    ['not an object: array', [1, 2], 'bad_request', null],
    ['not an object: string', '{"v":1}', 'bad_request', null],
    ['not an object: null', null, 'bad_request', null],
  ];

  test.each(cases.map(([label, event, code, id]) => ({ label, event, code, id })))(
    '$label → $code',
    async ({ event, code, id }) => {
      const res = err(await handler(event));
      expect(res).toEqual({ v: 2, id, ok: false, error: { code, message: expect.any(String) } });
    },
  );

  test('error messages never echo request values', async () => {
    const secretish = 'QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQQ=='; // 40 bytes of 'A'
    const res = err(await handler(cv({ transcriptHash: secretish })));
    expect(res.error.message).not.toContain(secretish);
    const res2 = err(await handler(cv({ key: 'nope-not-configured' })));
    expect(res2.error.message).not.toContain('nope-not-configured');
    const res3 = err(await handler(cv({ ['field-with<script>']: 1 })));
    expect(res3.error.message).not.toContain('<script>');
  });
});

describe('logging', () => {
  test('one line per request with id, op, key, outcome and latency, and no payload bytes', async () => {
    logs.length = 0;
    const transcriptHash = crypto.randomBytes(32).toString('base64');
    const res = ok<SignatureResult>(await handler(cv({ id: 'log-1', transcriptHash }), { awsRequestId: 'aws-1' }));
    await handler(cv({ id: 'log-2', key: 'missing' }));
    expect(logs).toHaveLength(2);
    expect(logs[0]).toMatchObject({
      level: 'info',
      msg: 'key_service_request',
      id: 'log-1',
      op: 'tls13.certificate_verify',
      key: 'rsa',
      outcome: 'ok',
      awsRequestId: 'aws-1',
    });
    expect(typeof logs[0].latencyMs).toBe('number');
    expect(logs[1]).toMatchObject({ id: 'log-2', outcome: 'unknown_key' });
    const text = JSON.stringify(logs);
    expect(text).not.toContain(transcriptHash);
    expect(text).not.toContain(res.result.signature);
  });
});

describe('configuration', () => {
  test('KEYLESS_KEYS is validated with errors naming the field', () => {
    const bad: Array<[string, RegExp]> = [
      ['{', /not valid JSON/],
      ['{}', /expected a JSON array/],
      ['[]', /at least one key/],
      ['[{"name":"a","custody":"kms"}]', /\[0\]\.keyId/],
      [
        '[{"name":"a","custody":"file","path":"/abs/key.pem"}]',
        /\[0\]\.custody: "file" custody is for local development only; this key service serves kms, sealed/,
      ],
      ['[{"name":"a","custody":"hsm"}]', /\[0\]\.custody/],
      ['[{"custody":"kms","keyId":"k"}]', /\[0\]\.name/],
      ['[{"name":"a b","custody":"kms","keyId":"k"}]', /\[0\]\.name/],
      ['[{"name":"a","custody":"kms","keyId":"k","keyid":"x"}]', /\[0\]: unknown field "keyid"/],
      ['[{"name":"a","custody":"kms","keyId":"k"},{"name":"a","custody":"kms","keyId":"j"}]', /\[1\]\.name: duplicate/],
    ];
    for (const [json, message] of bad) {
      expect(() => parseKeysConfig(json)).toThrow(ConfigError);
      expect(() => parseKeysConfig(json)).toThrow(message);
    }
    // The local Lambda endpoint adds the file custody, with its own fields checked.
    const badLocal: Array<[string, RegExp]> = [
      ['[{"name":"a","custody":"file","path":"rel/key.pem"}]', /\[0\]\.path: must be an absolute path/],
      ['[{"name":"a","custody":"file","path":"/k.pem","mode":"x"}]', /\[0\]: unknown field "mode"/],
      ['[{"name":"a","custody":"hsm"}]', /\[0\]\.custody: expected one of kms, sealed, file/],
    ];
    for (const [json, message] of badLocal) {
      expect(() => parseLocalKeysConfig(json)).toThrow(ConfigError);
      expect(() => parseLocalKeysConfig(json)).toThrow(message);
    }
    expect(parseLocalKeysConfig('[{"name":"a","custody":"file","path":"/abs/key.pem"}]')).toEqual([
      { name: 'a', custody: 'file', path: '/abs/key.pem' },
    ]);
    // Keys handed to the production handler directly get the same refusal.
    expect(() => createHandler({ keys: [{ name: 'x', custody: 'file', path: '/abs/key.pem' }] })).toThrow(
      /key "x": custody "file" is not served by this key service \(it serves kms, sealed\)/,
    );
    const spki = crypto.createPublicKey(keys.rsa).export({ type: 'spki', format: 'der' }).toString('base64');
    const sealedKey = crypto.randomBytes(1200).toString('base64');
    const sealed = {
      name: 's',
      custody: 'sealed',
      wrappingKeyId: 'alias/keyless/prod/sealed-wrapping',
      sealedKey,
      publicKey: spki,
    };
    expect(
      parseKeysConfig(
        JSON.stringify([{ name: 'localhost', custody: 'kms', keyId: 'alias/keyless-localhost' }, sealed]),
      ),
    ).toEqual([{ name: 'localhost', custody: 'kms', keyId: 'alias/keyless-localhost' }, sealed]);
    const p256Spki = crypto.createPublicKey(keys.p256).export({ type: 'spki', format: 'der' }).toString('base64');
    const badSealed: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...sealed, blob: 'x' }, /\[0\]: unknown field "blob"/],
      [{ ...sealed, wrappingKeyId: undefined }, /\[0\]\.wrappingKeyId/],
      [{ ...sealed, sealedKey: 'not base64!' }, /\[0\]\.sealedKey/],
      [{ ...sealed, sealedKey: undefined }, /\[0\]\.sealedKey/],
      [{ ...sealed, publicKey: 'AAAA' }, /\[0\]\.publicKey: not a DER SubjectPublicKeyInfo/],
      [{ ...sealed, publicKey: p256Spki }, /\[0\]\.publicKey: sealed keys are RSA keys/],
    ];
    for (const [entry, message] of badSealed) expect(() => parseKeysConfig(JSON.stringify([entry]))).toThrow(message);
    expect(() => loadKeysConfigFromEnv({})).toThrow(/KEYLESS_KEYS: not set/);
  });

  test('unreadable, encrypted or weak file keys are configuration errors without key bytes', () => {
    const missing = path.join(dir, 'missing.pem');
    expect(() => createLocalHandler({ keys: [{ name: 'x', custody: 'file', path: missing }] })).toThrow(
      /file key "x": cannot read key file \(ENOENT\)/,
    );
    const encrypted = path.join(dir, 'enc.pem');
    fs.writeFileSync(
      encrypted,
      keys.p256.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }),
      { mode: 0o600 },
    );
    expect(() => createLocalHandler({ keys: [{ name: 'x', custody: 'file', path: encrypted }] })).toThrow(
      /not an unencrypted PEM private key/,
    );
    const weak = path.join(dir, 'weak.pem');
    fs.writeFileSync(
      weak,
      crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
      { mode: 0o600 },
    );
    expect(() => createLocalHandler({ keys: [{ name: 'x', custody: 'file', path: weak }] })).toThrow(
      /at least 2048 bits/,
    );
    const ed = path.join(dir, 'ed.pem');
    fs.writeFileSync(ed, crypto.generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), {
      mode: 0o600,
    });
    expect(() => createLocalHandler({ keys: [{ name: 'x', custody: 'file', path: ed }] })).toThrow(
      /unsupported key type/,
    );
  });

  test('the Lambda entry point reads KEYLESS_KEYS once, logs through Powertools, and never throws', async () => {
    const saved = process.env.KEYLESS_KEYS;
    const savedDev = process.env.POWERTOOLS_DEV;
    // Powertools writes to the global console (spy-able) in dev mode, and then publishes no metrics.
    process.env.POWERTOOLS_DEV = 'true';
    try {
      delete process.env.KEYLESS_KEYS;
      let lambdaHandler = createLambdaEntry();
      const quiet = jest.spyOn(console, 'info').mockImplementation(() => undefined);
      const errors = jest.spyOn(console, 'error').mockImplementation(() => undefined);
      const res = err(await lambdaHandler({ v: 2, id: 'x', op: 'ping' }));
      expect(res.error).toEqual({ code: 'internal', message: 'key service is misconfigured (see its logs)' });
      expect(res.id).toBe('x');
      expect(JSON.parse(String(errors.mock.calls.at(-1)?.[0]))).toMatchObject({
        level: 'ERROR',
        message: 'key_service_config_error',
        reason: expect.stringMatching(/KEYLESS_KEYS: not set/),
      });
      errors.mockRestore();

      // The Lambda serves kms and sealed custody only: a file key is a configuration error naming the field.
      process.env.KEYLESS_KEYS = JSON.stringify([{ name: 'dev', custody: 'file', path: path.join(dir, 'p256.pem') }]);
      const errors2 = jest.spyOn(console, 'error').mockImplementation(() => undefined);
      lambdaHandler = createLambdaEntry();
      expect(err(await lambdaHandler({ v: 2, id: 'f', op: 'ping' })).error.code).toBe('internal');
      expect(JSON.parse(String(errors2.mock.calls.at(-1)?.[0]))).toMatchObject({
        message: 'key_service_config_error',
        reason: expect.stringMatching(/KEYLESS_KEYS\[0\]\.custody: "file" custody is for local development only/),
      });
      errors2.mockRestore();

      process.env.KEYLESS_KEYS = JSON.stringify([{ name: 'dev', custody: 'kms', keyId: 'alias/dev' }]);
      lambdaHandler = createLambdaEntry();
      const pong = ok<PingResult>(await lambdaHandler({ v: 2, id: 'y', op: 'ping' }, { awsRequestId: 'r' }));
      expect(pong.result.keys).toEqual([{ name: 'dev', custody: 'kms', keySpec: 'UNKNOWN' }]);
      const line = JSON.parse(String(quiet.mock.calls.at(-1)?.[0]));
      expect(line).toMatchObject({
        level: 'INFO',
        message: 'key_service_request',
        id: 'y',
        op: 'ping',
        outcome: 'ok',
        service: 'keyless-key-service',
        awsRequestId: 'r',
      });
      quiet.mockRestore();
    } finally {
      if (saved === undefined) delete process.env.KEYLESS_KEYS;
      else process.env.KEYLESS_KEYS = saved;
      if (savedDev === undefined) delete process.env.POWERTOOLS_DEV;
      else process.env.POWERTOOLS_DEV = savedDev;
    }
  });
});
