/**
 * Unknown key names under the alias-prefix entry: KMS is asked once (GetPublicKey → NotFoundException
 * → `unknown_key`), then the answer is remembered for a short TTL in a bounded negative cache, and
 * the name takes no backend slot. A key created meanwhile is served once the TTL has passed.
 * Real handler, local KMS, production SDK client.
 */
import { CreateAliasCommand, CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  createHandler,
  DEFAULT_UNKNOWN_KEY_CACHE,
  type KeyServiceHandler,
} from '../../../../lambdas/key-service/handler';
import { PROTOCOL_VERSION, type KeyServiceResponse } from '../../../../contract/key-service-protocol';
import { startLocalKms, type LocalKms } from '../../../../local/kms';

const PREFIX = 'alias/keyless/test/keys/';
let local: LocalKms;
let kms: KMSClient;
let seq = 0;

beforeAll(async () => {
  local = await startLocalKms({ region: 'us-east-1' });
  kms = new KMSClient({
    endpoint: local.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
});

afterAll(async () => {
  kms.destroy();
  await local.close();
});

function service(cache: { ttlMs?: number; maxEntries?: number; now?: () => number }): KeyServiceHandler {
  return createHandler({
    keys: [{ name: '*', custody: 'kms', aliasPrefix: PREFIX }],
    kmsClient: kms,
    ticketKeys: null,
    logger: () => undefined,
    unknownKeyCache: cache,
  });
}

const publicKey = (h: KeyServiceHandler, key: string) =>
  h({ v: PROTOCOL_VERSION, id: `r-${seq++}`, op: 'public_key', key });
const code = (r: KeyServiceResponse) => (r.ok ? 'ok' : r.error.code);
const kmsCalls = () => local.stats.requests; // every KMS request, failed ones included

async function createAliasedKey(name: string): Promise<void> {
  const created = await kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }));
  await kms.send(new CreateAliasCommand({ AliasName: `${PREFIX}${name}`, TargetKeyId: created.KeyMetadata!.KeyId! }));
}

test('defaults: a minute, 1024 names', () => {
  expect(DEFAULT_UNKNOWN_KEY_CACHE).toMatchObject({ ttlMs: 60_000, maxEntries: 1024 });
});

test('an unknown name costs one KMS call per TTL; a key created meanwhile is served after the TTL', async () => {
  let now = 0;
  const h = service({ ttlMs: 30_000, now: () => now });
  local.resetStats();
  expect(code(await publicKey(h, 'later'))).toBe('unknown_key');
  expect(kmsCalls()).toBe(1);
  for (let i = 0; i < 5; i++) expect(code(await publicKey(h, 'later'))).toBe('unknown_key');
  expect(
    code(
      await h({
        v: PROTOCOL_VERSION,
        id: 'sig',
        op: 'tls13.certificate_verify',
        key: 'later',
        scheme: 'ecdsa_secp256r1_sha256',
        transcriptHash: Buffer.alloc(32).toString('base64'),
      }),
    ),
  ).toBe('unknown_key');
  expect(kmsCalls()).toBe(1);

  await createAliasedKey('later');
  local.resetStats();
  now += 29_999;
  expect(code(await publicKey(h, 'later'))).toBe('unknown_key'); // still within the TTL
  expect(kmsCalls()).toBe(0);
  now += 1;
  expect(code(await publicKey(h, 'later'))).toBe('ok');
  expect(kmsCalls()).toBe(1);
  expect(code(await publicKey(h, 'later'))).toBe('ok'); // positive cache as before
  expect(kmsCalls()).toBe(1);
});

test('bounded: beyond maxEntries the oldest unknown name is asked about again', async () => {
  const h = service({ maxEntries: 3, ttlMs: 60_000 });
  local.resetStats();
  for (const n of ['u1', 'u2', 'u3', 'u4']) expect(code(await publicKey(h, n))).toBe('unknown_key');
  expect(kmsCalls()).toBe(4);
  for (const n of ['u2', 'u3', 'u4']) await publicKey(h, n);
  expect(kmsCalls()).toBe(4); // remembered
  await publicKey(h, 'u1'); // evicted when u4 came in
  expect(kmsCalls()).toBe(5);
});

test('names outside the alias alphabet are refused without KMS and without an entry', async () => {
  const h = service({});
  local.resetStats();
  expect(code(await publicKey(h, 'has.dot'))).toBe('unknown_key');
  expect(kmsCalls()).toBe(0);
});
