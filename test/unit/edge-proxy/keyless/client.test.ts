/**
 * The edge's key-service client (edge-proxy/src/keyless) through the production Lambda SDK, the local
 * Lambda endpoint and the real key-service handler: signing and verification, deadlines, function
 * errors, unknown functions, signatures by the wrong key, and the in-flight cap.
 */
import * as crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startLocalLambda, type LocalLambda, type LocalLambdaHandler } from '../../../../local/lambda';
import { type KeyServiceHandler } from '../../../../lambdas/key-service/handler';
import { createLocalHandler } from '../../../../local/lambda/local-key-service';
import { KeyOperationError } from '../../../../edge-proxy/src/keyless';
import { LambdaKeyClient, type LambdaKeyClientOptions } from '../../../helpers/lambda-key-client';
import { verifyTls13CertificateVerify } from '../../../../edge-proxy/src/keyless/verify';
import type { SignatureSchemeName } from '../../../../contract/key-service-protocol';
import { keyOperationCode } from '../../../helpers/rejection';

let dir: string;
let lambda: LocalLambda;
const priv: Record<'rsa' | 'p256' | 'p384' | 'other', crypto.KeyObject> = {} as never;
const pub = (k: keyof typeof priv) => crypto.createPublicKey(priv[k]);
let real: KeyServiceHandler;
const ops: string[] = [];

/** A gate: handlers wait on it until the test opens it. */
let gate: { promise: Promise<void>; open: () => void };
function newGate() {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  gate = { promise, open };
}

function writeKey(name: string, key: crypto.KeyObject): string {
  const file = path.join(dir, `${name}.pem`);
  fs.writeFileSync(file, key.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return file;
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-kc-'));
  priv.rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  priv.p256 = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  priv.p384 = crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
  priv.other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  real = createLocalHandler({
    keys: [
      { name: 'rsa', custody: 'file', path: writeKey('rsa', priv.rsa) },
      { name: 'p256', custody: 'file', path: writeKey('p256', priv.p256) },
      { name: 'p384', custody: 'file', path: writeKey('p384', priv.p384) },
    ],
    logger: () => undefined,
  });
  // Same key name, different private key: what a misconfigured (or hostile) key service looks like.
  const impostor = createLocalHandler({
    keys: [{ name: 'rsa', custody: 'file', path: writeKey('other', priv.other) }],
    logger: () => undefined,
  });
  newGate();

  const counting: LocalLambdaHandler = (event, context) => {
    ops.push(String((event as { op?: unknown })?.op));
    return real(event, context);
  };
  lambda = await startLocalLambda({
    functions: {
      'keyless-key-service': counting,
      impostor: (event, context) => impostor(event, context),
      slow: async (event, context) => {
        await gate.promise;
        return real(event, context);
      },
      thrower: () => {
        throw new Error('handler crashed');
      },
      garbage: (event) => {
        const e = event as { id: string; op: string };
        if (e.op === 'tls13.certificate_verify')
          return {
            v: 2,
            id: e.id,
            ok: true,
            result: { signature: crypto.randomBytes(256).toString('base64'), backendMs: 1 },
          };
        return real(event, {});
      },
      malformed: () => ({ hello: 'world' }),
      wrongId: async (event, context) => ({ ...(await real(event, context)), id: 'someone-else' }),
      notBase64: (event) => ({
        v: 2,
        id: (event as { id: string }).id,
        ok: true,
        result: { signature: '!!!!', backendMs: 0 },
      }),
      unknownCode: (event) => ({
        v: 2,
        id: (event as { id: string }).id,
        ok: false,
        error: { code: 'teapot', message: 'x' },
      }),
    },
  });
});

afterAll(async () => {
  gate.open();
  await lambda.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const clients: LambdaKeyClient[] = [];
afterEach(() => {
  while (clients.length) clients.pop()!.close();
});

function client(options: Partial<LambdaKeyClientOptions> = {}): LambdaKeyClient {
  const c = new LambdaKeyClient({
    functionName: 'keyless-key-service',
    region: 'us-east-1',
    endpoint: lambda.url,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    ...options,
  });
  clients.push(c);
  return c;
}

const codeOf = keyOperationCode;

const hashFor = (scheme: SignatureSchemeName) =>
  crypto.randomBytes(
    {
      rsa_pss_rsae_sha256: 32,
      rsa_pss_rsae_sha384: 48,
      rsa_pss_rsae_sha512: 48,
      ecdsa_secp256r1_sha256: 32,
      ecdsa_secp384r1_sha384: 48,
    }[scheme as string] ?? 32,
  );

describe('signing through Lambda Invoke', () => {
  test.each([
    ['rsa', 'rsa_pss_rsae_sha256'],
    ['rsa', 'rsa_pss_rsae_sha384'],
    ['rsa', 'rsa_pss_rsae_sha512'],
    ['p256', 'ecdsa_secp256r1_sha256'],
    ['p384', 'ecdsa_secp384r1_sha384'],
  ] as const)('%s / %s: signature verified against the registered certificate key', async (key, scheme) => {
    const c = client({ certificateKeys: { [key]: pub(key) } });
    const hash = hashFor(scheme);
    const { signature, latencyMs } = await c.signTls13CertificateVerify(key, scheme, hash);
    expect(latencyMs).toBeGreaterThan(0);
    expect(verifyTls13CertificateVerify(pub(key), scheme, hash, signature)).toBe(true);
    // Independent check with node:crypto over the RFC 8446 §4.4.3 content.
    const content = Buffer.concat([
      Buffer.alloc(64, 0x20),
      Buffer.from('TLS 1.3, server CertificateVerify'),
      Buffer.from([0]),
      hash,
    ]);
    const digest = scheme.endsWith('512') ? 'sha512' : scheme.endsWith('384') ? 'sha384' : 'sha256';
    const opts =
      key === 'rsa'
        ? {
            key: pub(key),
            padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
            saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST,
          }
        : { key: pub(key), dsaEncoding: 'der' as const };
    expect(crypto.verify(digest, content, opts, signature)).toBe(true);
  });

  test('certificate keys can be registered as PEM/DER certificates or SPKI, never as private keys', async () => {
    const keyFile = path.join(dir, 'p256.pem');
    const certPem = execFileSync(
      'openssl',
      ['req', '-x509', '-new', '-key', keyFile, '-subj', '/CN=localhost', '-days', '1'],
      { encoding: 'utf8' },
    );
    const c = client();
    c.registerCertificateKey('p256', certPem);
    const hash = crypto.randomBytes(32);
    await c.signTls13CertificateVerify('p256', 'ecdsa_secp256r1_sha256', hash);
    c.registerCertificateKey('p256', new crypto.X509Certificate(certPem).raw);
    c.registerCertificateKey('p256', pub('p256').export({ type: 'spki', format: 'der' }));
    c.registerCertificateKey('p256', pub('p256').export({ type: 'spki', format: 'pem' }) as string);
    await c.signTls13CertificateVerify('p256', 'ecdsa_secp256r1_sha256', hash);
    expect(() => c.registerCertificateKey('p256', priv.p256)).toThrow(/never hold a private key/);
    expect(() =>
      c.registerCertificateKey('p256', priv.p256.export({ type: 'pkcs8', format: 'pem' }) as string),
    ).toThrow(/never hold a private key/);
    expect(() => c.registerCertificateKey('p256', Buffer.from('junk'))).toThrow(TypeError);
  });

  test('without a registered key, the public key is fetched once (public_key) and cached', async () => {
    const c = client();
    ops.length = 0;
    for (let i = 0; i < 3; i++) {
      const hash = crypto.randomBytes(32);
      const { signature } = await c.signTls13CertificateVerify('p256', 'ecdsa_secp256r1_sha256', hash);
      expect(verifyTls13CertificateVerify(pub('p256'), 'ecdsa_secp256r1_sha256', hash, signature)).toBe(true);
    }
    expect(ops.filter((o) => o === 'public_key')).toHaveLength(1);
    expect(ops.filter((o) => o === 'tls13.certificate_verify')).toHaveLength(3);
  });

  test('publicKey and ping', async () => {
    const c = client();
    const pk = await c.publicKey('rsa');
    expect(pk.keySpec).toBe('RSA_2048');
    expect(pk.spki.equals(pub('rsa').export({ type: 'spki', format: 'der' }))).toBe(true);
    const ping = await c.ping();
    expect(ping).toMatchObject({ service: 'keyless-key-service', protocol: 2 });
    expect(ping.keys.map((k) => k.name)).toEqual(['rsa', 'p256', 'p384']);
  });
});

describe('failures', () => {
  test('service error responses become KeyOperationError with the typed code', async () => {
    const c = client();
    await expect(
      codeOf(c.signTls13CertificateVerify('nope', 'rsa_pss_rsae_sha256', crypto.randomBytes(32))),
    ).resolves.toBe('unknown_key');
    await expect(codeOf(c.publicKey('nope'))).resolves.toBe('unknown_key');
    // The service's own compatibility check (no certificate key registered on the client).
    await expect(
      codeOf(
        client({ fetchUnregisteredKeys: true }).signTls13CertificateVerify(
          'p256',
          'rsa_pss_rsae_sha256',
          crypto.randomBytes(32),
        ),
      ),
    ).resolves.toBe('unsupported');
  });

  test('a slow key service → timeout at the deadline', async () => {
    newGate();
    const c = client({ functionName: 'slow', timeoutMs: 250, certificateKeys: { rsa: pub('rsa') } });
    const started = Date.now();
    const err = await c
      .signTls13CertificateVerify('rsa', 'rsa_pss_rsae_sha256', crypto.randomBytes(32))
      .catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    expect(err).toBeInstanceOf(KeyOperationError);
    expect(err).toMatchObject({ code: 'timeout' });
    expect(elapsed).toBeGreaterThanOrEqual(240);
    expect(elapsed).toBeLessThan(5000); // generous: the point is that it does not wait for the handler
    expect(c.inFlight).toBe(0);
    gate.open();
  });

  test('a crashing function → function_error', async () => {
    const c = client({ functionName: 'thrower', certificateKeys: { rsa: pub('rsa') } });
    const err = await c
      .signTls13CertificateVerify('rsa', 'rsa_pss_rsae_sha256', crypto.randomBytes(32))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'function_error', message: 'key-service function error (Error)' });
  });

  test('an unknown function → unavailable (ResourceNotFoundException)', async () => {
    const c = client({ functionName: 'no-such-function' });
    const err = await c.ping().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'unavailable', message: 'Lambda Invoke failed: ResourceNotFoundException' });
  });

  test('an unreachable endpoint → unavailable', async () => {
    const dead = await startLocalLambda({ functions: {} });
    const url = dead.url;
    await dead.close();
    const err = await client({ endpoint: url })
      .ping()
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'unavailable', message: expect.stringMatching(/ECONNREFUSED/) });
  });

  test('a signature by a different key → bad_signature', async () => {
    const c = client({ functionName: 'impostor', certificateKeys: { rsa: pub('rsa') } });
    await expect(
      codeOf(c.signTls13CertificateVerify('rsa', 'rsa_pss_rsae_sha256', crypto.randomBytes(32))),
    ).resolves.toBe('bad_signature');
    const g = client({ functionName: 'garbage', certificateKeys: { rsa: pub('rsa') } });
    await expect(
      codeOf(g.signTls13CertificateVerify('rsa', 'rsa_pss_rsae_sha256', crypto.randomBytes(32))),
    ).resolves.toBe('bad_signature');
    // Verified against the service-reported key when none is registered: garbage still fails.
    const g2 = client({ functionName: 'garbage' });
    await expect(
      codeOf(g2.signTls13CertificateVerify('rsa', 'rsa_pss_rsae_sha256', crypto.randomBytes(32))),
    ).resolves.toBe('bad_signature');
  });

  test('malformed responses → internal', async () => {
    for (const functionName of ['malformed', 'wrongId', 'notBase64', 'unknownCode']) {
      const c = client({ functionName, certificateKeys: { rsa: pub('rsa') } });
      await expect(
        codeOf(c.signTls13CertificateVerify('rsa', 'rsa_pss_rsae_sha256', crypto.randomBytes(32))),
      ).resolves.toBe('internal');
    }
  });

  test('operations beyond the in-flight cap are rejected at once with overloaded', async () => {
    newGate();
    const c = client({ functionName: 'slow', maxInFlight: 2, timeoutMs: 10_000, certificateKeys: { rsa: pub('rsa') } });
    const hashes = [crypto.randomBytes(32), crypto.randomBytes(32)];
    const first = c.signTls13CertificateVerify('rsa', 'rsa_pss_rsae_sha256', hashes[0]);
    const second = c.signTls13CertificateVerify('rsa', 'rsa_pss_rsae_sha256', hashes[1]);
    expect(c.inFlight).toBe(2);
    await expect(
      codeOf(c.signTls13CertificateVerify('rsa', 'rsa_pss_rsae_sha256', crypto.randomBytes(32))),
    ).resolves.toBe('overloaded');
    await expect(codeOf(c.ping())).resolves.toBe('overloaded');
    gate.open();
    const results = await Promise.all([first, second]);
    results.forEach((r, i) =>
      expect(verifyTls13CertificateVerify(pub('rsa'), 'rsa_pss_rsae_sha256', hashes[i], r.signature)).toBe(true),
    );
    expect(c.inFlight).toBe(0);
    await c.signTls13CertificateVerify('rsa', 'rsa_pss_rsae_sha256', crypto.randomBytes(32));
  });

  test('requests the service would refuse are refused locally, without an invocation', async () => {
    lambda.resetStats();
    const c = client({ certificateKeys: { rsa: pub('rsa') } });
    await expect(
      codeOf(c.signTls13CertificateVerify('rsa', 'rsa_pss_rsae_sha384', crypto.randomBytes(40))),
    ).resolves.toBe('bad_request');
    await expect(codeOf(c.signTls13CertificateVerify('rsa', 'rsa_pkcs1_sha256', crypto.randomBytes(32)))).resolves.toBe(
      'unsupported',
    );
    await expect(
      codeOf(c.signTls13CertificateVerify('rsa', 'ecdsa_secp256r1_sha256', crypto.randomBytes(32))),
    ).resolves.toBe('unsupported');
    await expect(
      codeOf(c.signTls13CertificateVerify('bad name', 'rsa_pss_rsae_sha256', crypto.randomBytes(32))),
    ).resolves.toBe('bad_request');
    const strict = client({ fetchUnregisteredKeys: false });
    await expect(
      codeOf(strict.signTls13CertificateVerify('p256', 'ecdsa_secp256r1_sha256', crypto.randomBytes(32))),
    ).resolves.toBe('bad_request');
    expect(lambda.stats()['keyless-key-service'].invocations).toBe(0);
  });
});
