/**
 * The edge's key-service client (edge-proxy/src/keyless) for the TLS 1.2 operations and ticket keys:
 * request building, strict response decoding (master secret exactly 48 bytes, ticket keys exactly
 * 32, no unexpected fields, canonical base64), ServerKeyExchange signatures verified against the
 * certificate key over client_random ‖ server_random ‖ params, the deadline and the in-flight cap.
 * Through the real key-service handler (directly, and once end to end over the local Lambda
 * endpoint), and through hostile targets. Also checks that the in-process test double
 * (test/helpers/in-process-keys) agrees with the service byte for byte.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KeyServiceClient, type KeyServiceTarget } from '../../../../edge-proxy/src/keyless';
import { LambdaKeyClient } from '../../../helpers/lambda-key-client';
import { verifyTls12ServerKeyExchange } from '../../../../edge-proxy/src/keyless/verify';
import { type KeyServiceHandler } from '../../../../lambdas/key-service/handler';
import { createLocalHandler } from '../../../../local/lambda/local-key-service';
import {
  tls12ServerRandom,
  type KeyServiceRequest,
  type SignatureSchemeName,
} from '../../../../contract/key-service-protocol';
import type { TicketKeySource } from '../../../../lambdas/key-service/ticket-keys';
import { prf12 } from '../../../../contract/tls12-prf';
import { startLocalLambda, type LocalLambda } from '../../../../local/lambda';
import { InProcessKeys } from '../../../helpers/in-process-keys';
import {
  MALFORMED_PREMASTER_CASES,
  encryptPreMaster,
  newPreMaster,
  rsaHandshakeMessages,
  seededServerRandom,
} from '../../../helpers/rsa-kex';
import { keyOperationCode } from '../../../helpers/rejection';

const priv = {
  rsa: crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
  p256: crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
  p384: crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey,
  other: crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
};
type KeyName = keyof typeof priv;
const pub = (k: KeyName) => crypto.createPublicKey(priv[k]);
const TICKET_SECRET = crypto.randomBytes(32);
const EPOCH_SECONDS = 600;

/** Deterministic test ticket keys (HMAC of the epoch under a local secret), as the in-process double makes them. */
const hmacTickets: TicketKeySource = {
  epochSeconds: EPOCH_SECONDS,
  async get() {
    const epoch = Math.floor(Date.now() / 1000 / EPOCH_SECONDS);
    const derive = (e: number) => crypto.createHmac('sha256', TICKET_SECRET).update(`test ticket key ${e}`).digest();
    return {
      epochSeconds: EPOCH_SECONDS,
      current: { epoch, key: derive(epoch) },
      previous: { epoch: epoch - 1, key: derive(epoch - 1) },
      backendMs: 0,
    };
  },
};

let dir: string;
let real: KeyServiceHandler;
let impostor: KeyServiceHandler;
let lambda: LocalLambda;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-kc12-'));
  const file = (name: KeyName) => {
    const p = path.join(dir, `${name}.pem`);
    fs.writeFileSync(p, priv[name].export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    return p;
  };
  real = createLocalHandler({
    keys: [
      { name: 'rsa', custody: 'file', path: file('rsa') },
      { name: 'p256', custody: 'file', path: file('p256') },
      { name: 'p384', custody: 'file', path: file('p384') },
    ],
    ticketKeys: hmacTickets,
    logger: () => undefined,
  });
  impostor = createLocalHandler({
    keys: [{ name: 'rsa', custody: 'file', path: file('other') }],
    ticketKeys: null,
    logger: () => undefined,
  });
  lambda = await startLocalLambda({ functions: { 'keyless-key-service': (event, context) => real(event, context) } });
});

afterAll(async () => {
  await lambda.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A target that calls a handler in process, through a JSON round trip like Lambda Invoke. */
function direct(h: (event: unknown) => unknown, onRequest?: (r: KeyServiceRequest) => void): KeyServiceTarget {
  return {
    name: 'direct',
    async invoke(request) {
      onRequest?.(request);
      return JSON.parse(JSON.stringify(await h(JSON.parse(JSON.stringify(request)))));
    },
  };
}

/** A target that answers every request with a result computed from the request. */
function answering(result: (r: KeyServiceRequest) => unknown): KeyServiceTarget {
  return { name: 'fake', invoke: async (r) => ({ v: 2, id: r.id, ok: true, result: result(r) }) };
}

const codeOf = keyOperationCode;

const x25519Params = () =>
  Buffer.concat([
    Buffer.from([3, 0, 29, 32]),
    Buffer.from(crypto.generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' }).x as string, 'base64url'),
  ]);
const p256Params = () => Buffer.concat([Buffer.from([3, 0, 23, 65]), crypto.createECDH('prime256v1').generateKeys()]);

function rsaInput(opts: { ems?: boolean; prfHash?: 'sha256' | 'sha384'; ciphertext?: Buffer } = {}) {
  const preMaster = newPreMaster();
  const encryptedPreMasterSecret = opts.ciphertext ?? encryptPreMaster(pub('rsa'), preMaster);
  const clientRandom = crypto.randomBytes(32);
  const { seed, serverRandom } = seededServerRandom();
  const prfHash = opts.prfHash ?? 'sha256';
  const handshakeMessages = opts.ems
    ? rsaHandshakeMessages({ clientVersion: 0x0303, clientRandom, serverRandom, ciphertext: encryptedPreMasterSecret })
    : undefined;
  const expected = handshakeMessages
    ? prf12(
        prfHash,
        preMaster,
        'extended master secret',
        crypto.createHash(prfHash).update(handshakeMessages).digest(),
        48,
      )
    : prf12(prfHash, preMaster, 'master secret', Buffer.concat([clientRandom, serverRandom]), 48);
  return {
    input: {
      encryptedPreMasterSecret,
      clientVersion: 0x0303,
      clientRandom,
      serverRandom,
      serverRandomSeed: seed,
      prfHash,
      handshakeMessages,
    },
    expected,
  };
}

describe('signTls12ServerKeyExchange', () => {
  test.each([
    ['rsa', 'rsa_pkcs1_sha256'],
    ['rsa', 'rsa_pkcs1_sha512'],
    ['rsa', 'rsa_pss_rsae_sha384'],
    ['p256', 'ecdsa_secp256r1_sha256'],
    ['p384', 'ecdsa_secp384r1_sha384'],
  ] as const)(
    '%s / %s: the signature over client_random ‖ server_random ‖ params is verified before it is returned',
    async (key, scheme) => {
      const c = new KeyServiceClient({ target: direct(real), certificateKeys: { [key]: pub(key) } });
      const cr = crypto.randomBytes(32);
      const sr = crypto.randomBytes(32); // the server-random seed
      const params = p256Params();
      const { signature, latencyMs } = await c.signTls12ServerKeyExchange(key, scheme, cr, sr, params);
      expect(latencyMs).toBeGreaterThanOrEqual(0);
      expect(verifyTls12ServerKeyExchange(pub(key), scheme, cr, tls12ServerRandom(sr), params, signature)).toBe(true);
      expect(verifyTls12ServerKeyExchange(pub(key), scheme, tls12ServerRandom(sr), cr, params, signature)).toBe(false);
    },
  );

  test('the request carries exactly the documented fields', async () => {
    const seen: KeyServiceRequest[] = [];
    const c = new KeyServiceClient({ target: direct(real, (r) => seen.push(r)), certificateKeys: { rsa: pub('rsa') } });
    const cr = crypto.randomBytes(32);
    const sr = crypto.randomBytes(32); // the server-random seed
    const params = x25519Params();
    await c.signTls12ServerKeyExchange('rsa', 'rsa_pkcs1_sha256', cr, sr, params);
    expect(seen[0]).toEqual({
      v: 2,
      id: expect.any(String),
      op: 'tls12.server_key_exchange',
      key: 'rsa',
      scheme: 'rsa_pkcs1_sha256',
      clientRandom: cr.toString('base64'),
      serverRandomSeed: sr.toString('base64'),
      params: params.toString('base64'),
    });
  });

  test('against a key service of the previous release (protocol v1): unsupported, never a signature', async () => {
    // What a v1 service answers a v2 request: its own version, and unsupported.
    const v1Service: KeyServiceTarget = {
      name: 'v1',
      invoke: async (r) => ({
        v: 1,
        id: r.id,
        ok: false,
        error: { code: 'unsupported', message: 'v: protocol version not supported (this service speaks v1)' },
      }),
    };
    const c = new KeyServiceClient({ target: v1Service, certificateKeys: { rsa: pub('rsa') } });
    await expect(
      codeOf(
        c.signTls12ServerKeyExchange(
          'rsa',
          'rsa_pkcs1_sha256',
          crypto.randomBytes(32),
          crypto.randomBytes(32),
          x25519Params(),
        ),
      ),
    ).resolves.toBe('unsupported');
    // And one that (wrongly) answered a v2 request with a v1 signature is refused before the signature is looked at.
    const lenient: KeyServiceTarget = {
      name: 'v1-ok',
      invoke: async (r) => ({ v: 1, id: r.id, ok: true, result: { signature: 'AAAA', backendMs: 1 } }),
    };
    const c2 = new KeyServiceClient({ target: lenient, certificateKeys: { rsa: pub('rsa') } });
    await expect(
      codeOf(
        c2.signTls12ServerKeyExchange(
          'rsa',
          'rsa_pkcs1_sha256',
          crypto.randomBytes(32),
          crypto.randomBytes(32),
          x25519Params(),
        ),
      ),
    ).resolves.toBe('unsupported');
  });

  test('a signature by another key → bad_signature (registered key, or the service-reported one)', async () => {
    const c = new KeyServiceClient({ target: direct(impostor), certificateKeys: { rsa: pub('rsa') } });
    await expect(
      codeOf(
        c.signTls12ServerKeyExchange(
          'rsa',
          'rsa_pkcs1_sha256',
          crypto.randomBytes(32),
          crypto.randomBytes(32),
          x25519Params(),
        ),
      ),
    ).resolves.toBe('bad_signature');
    // A service that signs the wrong content with the right key is caught too.
    const wrongContent = answering(() => ({
      signature: crypto
        .sign('sha256', Buffer.from('something else'), { key: priv.rsa, padding: crypto.constants.RSA_PKCS1_PADDING })
        .toString('base64'),
      backendMs: 1,
    }));
    const c2 = new KeyServiceClient({ target: wrongContent, certificateKeys: { rsa: pub('rsa') } });
    await expect(
      codeOf(
        c2.signTls12ServerKeyExchange(
          'rsa',
          'rsa_pkcs1_sha256',
          crypto.randomBytes(32),
          crypto.randomBytes(32),
          x25519Params(),
        ),
      ),
    ).resolves.toBe('bad_signature');
  });

  test("invalid requests are refused locally with the service's codes, without an invocation", async () => {
    let invocations = 0;
    const c = new KeyServiceClient({
      target: direct(real, () => invocations++),
      certificateKeys: { rsa: pub('rsa'), p256: pub('p256') },
    });
    const r = () => crypto.randomBytes(32);
    await expect(
      codeOf(c.signTls12ServerKeyExchange('rsa', 'rsa_pkcs1_sha256', crypto.randomBytes(31), r(), x25519Params())),
    ).resolves.toBe('bad_request');
    await expect(
      codeOf(c.signTls12ServerKeyExchange('rsa', 'rsa_pkcs1_sha256', r(), r(), Buffer.from([3, 0, 25, 1, 4]))),
    ).resolves.toBe('unsupported');
    await expect(
      codeOf(
        c.signTls12ServerKeyExchange(
          'rsa',
          'rsa_pkcs1_sha256',
          r(),
          r(),
          Buffer.concat([x25519Params(), Buffer.from([0])]),
        ),
      ),
    ).resolves.toBe('bad_request');
    await expect(
      codeOf(c.signTls12ServerKeyExchange('rsa', 'rsa_pkcs1_sha1' as SignatureSchemeName, r(), r(), x25519Params())),
    ).resolves.toBe('unsupported');
    await expect(
      codeOf(c.signTls12ServerKeyExchange('p256', 'rsa_pkcs1_sha256', r(), r(), x25519Params())),
    ).resolves.toBe('unsupported');
    await expect(
      codeOf(c.signTls12ServerKeyExchange('bad name', 'rsa_pkcs1_sha256', r(), r(), x25519Params())),
    ).resolves.toBe('bad_request');
    expect(invocations).toBe(0);
  });
});

describe('rsaMasterSecret', () => {
  test.each([
    { ems: false, prfHash: 'sha256' },
    { ems: true, prfHash: 'sha384' },
  ] as const)('returns the 48-byte master secret (EMS $ems, $prfHash)', async ({ ems, prfHash }) => {
    const seen: KeyServiceRequest[] = [];
    const c = new KeyServiceClient({ target: direct(real, (r) => seen.push(r)) });
    const { input, expected } = rsaInput({ ems, prfHash });
    const { masterSecret, latencyMs } = await c.rsaMasterSecret('rsa', input);
    expect(masterSecret.equals(expected)).toBe(true);
    expect(latencyMs).toBeGreaterThanOrEqual(0);
    expect(Object.keys(seen[0]).sort()).toEqual(
      [
        'v',
        'id',
        'op',
        'key',
        'encryptedPreMasterSecret',
        'clientVersion',
        'clientRandom',
        'serverRandom',
        'serverRandomSeed',
        'prfHash',
        ...(ems ? ['handshakeMessages'] : []),
      ].sort(),
    );
  });

  test('a malformed ciphertext is answered like a good one (implicit rejection), never as an error', async () => {
    const c = new KeyServiceClient({ target: direct(real) });
    for (const bad of MALFORMED_PREMASTER_CASES) {
      const { input, expected } = rsaInput({ ciphertext: bad.ciphertext(pub('rsa'), 0x0303) });
      const { masterSecret } = await c.rsaMasterSecret('rsa', input);
      expect(masterSecret.length).toBe(48);
      expect(masterSecret.equals(expected)).toBe(false);
    }
  });

  test('service refusals keep their typed codes', async () => {
    const c = new KeyServiceClient({ target: direct(real) });
    const { input } = rsaInput();
    await expect(
      codeOf(c.rsaMasterSecret('rsa', { ...input, serverRandomSeed: crypto.randomBytes(32) })),
    ).resolves.toBe('bad_request');
    await expect(codeOf(c.rsaMasterSecret('p256', input))).resolves.toBe('unsupported');
    await expect(codeOf(c.rsaMasterSecret('nope', input))).resolves.toBe('unknown_key');
  });

  test('invalid input is refused locally', async () => {
    let invocations = 0;
    const c = new KeyServiceClient({ target: direct(real, () => invocations++) });
    const { input } = rsaInput();
    await expect(
      codeOf(c.rsaMasterSecret('rsa', { ...input, encryptedPreMasterSecret: Buffer.alloc(0) })),
    ).resolves.toBe('bad_request');
    await expect(
      codeOf(c.rsaMasterSecret('rsa', { ...input, encryptedPreMasterSecret: Buffer.alloc(513) })),
    ).resolves.toBe('bad_request');
    await expect(codeOf(c.rsaMasterSecret('rsa', { ...input, clientVersion: 0x0301 }))).resolves.toBe('bad_request');
    await expect(codeOf(c.rsaMasterSecret('rsa', { ...input, clientRandom: Buffer.alloc(16) }))).resolves.toBe(
      'bad_request',
    );
    await expect(codeOf(c.rsaMasterSecret('rsa', { ...input, serverRandomSeed: Buffer.alloc(33) }))).resolves.toBe(
      'bad_request',
    );
    await expect(codeOf(c.rsaMasterSecret('rsa', { ...input, prfHash: 'sha512' as never }))).resolves.toBe(
      'bad_request',
    );
    await expect(codeOf(c.rsaMasterSecret('rsa', { ...input, handshakeMessages: Buffer.alloc(0) }))).resolves.toBe(
      'bad_request',
    );
    expect(invocations).toBe(0);
  });

  test('malformed master-secret responses → internal', async () => {
    const bodies: unknown[] = [
      { masterSecret: crypto.randomBytes(47).toString('base64'), backendMs: 1 },
      { masterSecret: crypto.randomBytes(49).toString('base64'), backendMs: 1 },
      // base64url alphabet: 0xfb bytes encode to '-' and '_' (random bytes would only sometimes differ).
      { masterSecret: Buffer.alloc(48, 0xfb).toString('base64url'), backendMs: 1 },
      { masterSecret: ` ${crypto.randomBytes(48).toString('base64')}`, backendMs: 1 },
      { masterSecret: crypto.randomBytes(48).toString('base64'), backendMs: -1 },
      { masterSecret: crypto.randomBytes(48).toString('base64') },
      {
        masterSecret: crypto.randomBytes(48).toString('base64'),
        backendMs: 1,
        preMasterSecret: crypto.randomBytes(48).toString('base64'),
      },
      { masterSecret: 48, backendMs: 1 },
    ];
    const { input } = rsaInput();
    for (const body of bodies) {
      const c = new KeyServiceClient({ target: answering(() => body) });
      await expect(codeOf(c.rsaMasterSecret('rsa', input))).resolves.toBe('internal');
    }
  });

  test('the deadline and the in-flight cap apply', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow: KeyServiceTarget = {
      name: 'slow',
      invoke: async (r, signal) => {
        await Promise.race([gate, new Promise((resolve) => signal.addEventListener('abort', resolve))]);
        return real(JSON.parse(JSON.stringify(r)));
      },
    };
    const timed = new KeyServiceClient({ target: slow, timeoutMs: 100 });
    await expect(codeOf(timed.rsaMasterSecret('rsa', rsaInput().input))).resolves.toBe('timeout');
    await expect(codeOf(timed.ticketKeys())).resolves.toBe('timeout');
    expect(timed.inFlight).toBe(0);

    const capped = new KeyServiceClient({
      target: slow,
      timeoutMs: 10_000,
      maxInFlight: 1,
      certificateKeys: { rsa: pub('rsa') },
    });
    const first = rsaInput();
    const pending = capped.rsaMasterSecret('rsa', first.input);
    await expect(codeOf(capped.rsaMasterSecret('rsa', rsaInput().input))).resolves.toBe('overloaded');
    await expect(
      codeOf(
        capped.signTls12ServerKeyExchange(
          'rsa',
          'rsa_pkcs1_sha256',
          crypto.randomBytes(32),
          crypto.randomBytes(32),
          x25519Params(),
        ),
      ),
    ).resolves.toBe('overloaded');
    await expect(codeOf(capped.ticketKeys())).resolves.toBe('overloaded');
    release();
    expect((await pending).masterSecret.equals(first.expected)).toBe(true);
  });
});

describe('ticketKeys', () => {
  test('current and previous keys, 32 bytes each, as the service hands them out', async () => {
    const c = new KeyServiceClient({ target: direct(real) });
    const t = await c.ticketKeys();
    expect(t.epochSeconds).toBe(EPOCH_SECONDS);
    expect(t.previous.epoch).toBe(t.current.epoch - 1);
    expect(
      t.current.key.equals(
        crypto.createHmac('sha256', TICKET_SECRET).update(`test ticket key ${t.current.epoch}`).digest(),
      ),
    ).toBe(true);
    expect(t.previous.key.length).toBe(32);
  });

  test('malformed ticket-key responses → internal; an unconfigured service → unavailable', async () => {
    const key = () => crypto.randomBytes(32).toString('base64');
    const bodies: unknown[] = [
      {
        epochSeconds: 3600,
        current: { epoch: 10, key: crypto.randomBytes(31).toString('base64') },
        previous: { epoch: 9, key: key() },
      },
      { epochSeconds: 3600, current: { epoch: 10, key: key() }, previous: { epoch: 8, key: key() } },
      { epochSeconds: 0, current: { epoch: 10, key: key() }, previous: { epoch: 9, key: key() } },
      { epochSeconds: 3600, current: { epoch: 10.5, key: key() }, previous: { epoch: 9.5, key: key() } },
      { epochSeconds: 3600, current: { epoch: 10, key: key() } },
      { epochSeconds: 3600, current: { epoch: 10, key: key(), extra: 1 }, previous: { epoch: 9, key: key() } },
      { epochSeconds: 3600, current: { epoch: 10, key: 'AAAA' }, previous: { epoch: 9, key: 'AAAA' } },
    ];
    const same = key();
    bodies.push({ epochSeconds: 3600, current: { epoch: 10, key: same }, previous: { epoch: 9, key: same } });
    for (const body of bodies) {
      await expect(codeOf(new KeyServiceClient({ target: answering(() => body) }).ticketKeys())).resolves.toBe(
        'internal',
      );
    }
    await expect(codeOf(new KeyServiceClient({ target: direct(impostor) }).ticketKeys())).resolves.toBe('unavailable');
  });
});

describe('end to end over the local Lambda endpoint', () => {
  test('all three operations through LambdaKeyClient', async () => {
    const c = new LambdaKeyClient({
      functionName: 'keyless-key-service',
      region: 'us-east-1',
      endpoint: lambda.url,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      certificateKeys: { rsa: pub('rsa') },
    });
    try {
      const cr = crypto.randomBytes(32);
      const sr = crypto.randomBytes(32); // the server-random seed
      const params = x25519Params();
      const { signature } = await c.signTls12ServerKeyExchange('rsa', 'rsa_pss_rsae_sha256', cr, sr, params);
      expect(
        verifyTls12ServerKeyExchange(pub('rsa'), 'rsa_pss_rsae_sha256', cr, tls12ServerRandom(sr), params, signature),
      ).toBe(true);
      const { input, expected } = rsaInput({ ems: true });
      expect((await c.rsaMasterSecret('rsa', input)).masterSecret.equals(expected)).toBe(true);
      expect((await c.ticketKeys()).current.key.length).toBe(32);
    } finally {
      c.close();
    }
  });
});

describe('the in-process test double agrees with the service', () => {
  const keys = new InProcessKeys(
    new Map([
      ['rsa', priv.rsa],
      ['p256', priv.p256],
    ]),
    { ticketSecret: TICKET_SECRET, epochSeconds: EPOCH_SECONDS },
  );
  const service = () => new KeyServiceClient({ target: direct(real) });

  test('RSA key exchange: the same master secret for good and bad ciphertexts, with and without EMS', async () => {
    for (const ems of [false, true]) {
      const good = rsaInput({ ems });
      expect((await keys.rsaMasterSecret('rsa', good.input)).masterSecret.equals(good.expected)).toBe(true);
      const bad = rsaInput({ ems, ciphertext: encryptPreMaster(pub('other'), newPreMaster()) });
      const fromDouble = (await keys.rsaMasterSecret('rsa', bad.input)).masterSecret;
      const fromService = (await service().rsaMasterSecret('rsa', bad.input)).masterSecret;
      expect(fromDouble.equals(fromService)).toBe(true); // same implicit-rejection code and per-key secret
    }
    await expect(
      codeOf(keys.rsaMasterSecret('rsa', { ...rsaInput().input, serverRandomSeed: crypto.randomBytes(32) })),
    ).resolves.toBe('bad_request');
    await expect(codeOf(keys.rsaMasterSecret('p256', rsaInput().input))).resolves.toBe('unsupported');
  });

  test('ServerKeyExchange signatures verify; params are validated the same way', async () => {
    const cr = crypto.randomBytes(32);
    const sr = crypto.randomBytes(32); // the server-random seed
    for (const [key, scheme] of [
      ['rsa', 'rsa_pkcs1_sha384'],
      ['rsa', 'rsa_pss_rsae_sha256'],
      ['p256', 'ecdsa_secp256r1_sha256'],
    ] as const) {
      const params = x25519Params();
      const { signature } = await keys.signTls12ServerKeyExchange(key, scheme, cr, sr, params);
      expect(verifyTls12ServerKeyExchange(pub(key), scheme, cr, tls12ServerRandom(sr), params, signature)).toBe(true);
    }
    await expect(
      codeOf(keys.signTls12ServerKeyExchange('rsa', 'rsa_pkcs1_sha256', cr, sr, Buffer.from([3, 0, 25, 1, 4]))),
    ).resolves.toBe('unsupported');
    await expect(
      codeOf(keys.signTls12ServerKeyExchange('p256', 'rsa_pkcs1_sha256', cr, sr, x25519Params())),
    ).resolves.toBe('unsupported');
  });

  test('ticket keys: the same keys as the service for the same test secret', async () => {
    expect(await keys.ticketKeys()).toEqual(await service().ticketKeys());
  });
});
