/**
 * Key service with `kms` custody through the production @aws-sdk/client-kms against the local KMS
 * endpoint (local/kms): signing with KMS Sign (RAW, PSS salt = hash length, DER ECDSA), GetPublicKey
 * caching, and the mapping of KMS errors to the protocol's typed errors.
 */
import * as crypto from 'node:crypto';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  ScheduleKeyDeletionCommand,
  type KMSClient,
  type KeySpec,
  type KeyUsageType,
} from '@aws-sdk/client-kms';
import { startLocalKms, type LocalKms } from '../../../../../local/kms';
import { mapKmsError } from '../../../../../contract/kms-errors';
import { createKmsClient } from '../../../../../lambdas/key-service/backends/kms';
import { createHandler, type KeyServiceHandler } from '../../../../../lambdas/key-service/handler';
import type {
  KeyServiceResponse,
  OkResponse,
  PingResult,
  PublicKeyResult,
  SignatureResult,
} from '../../../../../contract/key-service-protocol';

const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
let kms: LocalKms;
let client: KMSClient;
let handler: KeyServiceHandler;

async function createKey(alias: string, keySpec: KeySpec, keyUsage: KeyUsageType = 'SIGN_VERIFY'): Promise<string> {
  const out = await client.send(
    new CreateKeyCommand({ KeySpec: keySpec, KeyUsage: keyUsage, Description: `test ${alias}` }),
  );
  const keyId = out.KeyMetadata!.KeyId!;
  await client.send(new CreateAliasCommand({ AliasName: `alias/${alias}`, TargetKeyId: keyId }));
  return keyId;
}

const keyIds: Record<string, string> = {};

beforeAll(async () => {
  kms = await startLocalKms({ port: 0 });
  client = createKmsClient({ endpoint: kms.url, region: 'us-east-1', credentials });
  keyIds.rsa = await createKey('keyless-rsa', 'RSA_2048');
  keyIds.p256 = await createKey('keyless-p256', 'ECC_NIST_P256');
  keyIds.p384 = await createKey('keyless-p384', 'ECC_NIST_P384');
  keyIds.enc = await createKey('keyless-enc', 'RSA_2048', 'ENCRYPT_DECRYPT');
  keyIds.disabled = await createKey('keyless-disabled', 'ECC_NIST_P256');
  keyIds.later = await createKey('keyless-later', 'ECC_NIST_P256');
  keyIds.deleted = await createKey('keyless-deleted', 'ECC_NIST_P256');
  await client.send(new DisableKeyCommand({ KeyId: keyIds.disabled }));
  await client.send(new ScheduleKeyDeletionCommand({ KeyId: keyIds.deleted, PendingWindowInDays: 7 }));
  handler = createHandler({
    keys: [
      { name: 'rsa', custody: 'kms', keyId: 'alias/keyless-rsa' },
      { name: 'p256', custody: 'kms', keyId: 'alias/keyless-p256' },
      { name: 'p384', custody: 'kms', keyId: keyIds.p384 },
      { name: 'enc', custody: 'kms', keyId: 'alias/keyless-enc' },
      { name: 'disabled', custody: 'kms', keyId: 'alias/keyless-disabled' },
      { name: 'later', custody: 'kms', keyId: 'alias/keyless-later' },
      { name: 'deleted', custody: 'kms', keyId: 'alias/keyless-deleted' },
      { name: 'missing', custody: 'kms', keyId: 'alias/keyless-does-not-exist' },
    ],
    kmsClient: client,
    logger: () => undefined,
  });
});

afterAll(async () => {
  client?.destroy();
  await kms?.close();
});

function ok<T>(res: KeyServiceResponse): OkResponse<T> {
  if (!res.ok) throw new Error(`expected ok, got ${res.error.code}: ${res.error.message}`);
  return res as OkResponse<T>;
}

async function sign(key: string, scheme: string, hashLen: number, id = 'kms-1') {
  const transcriptHash = crypto.randomBytes(hashLen);
  const res = await handler({
    v: 2,
    id,
    op: 'tls13.certificate_verify',
    key,
    scheme,
    transcriptHash: transcriptHash.toString('base64'),
  });
  return { res, transcriptHash };
}

const content = (hash: Buffer) =>
  Buffer.concat([Buffer.alloc(64, 0x20), Buffer.from('TLS 1.3, server CertificateVerify'), Buffer.from([0]), hash]);

describe('kms custody', () => {
  const cases = [
    { key: 'rsa', scheme: 'rsa_pss_rsae_sha256', hash: 'sha256', len: 32 },
    { key: 'rsa', scheme: 'rsa_pss_rsae_sha384', hash: 'sha384', len: 48 },
    { key: 'rsa', scheme: 'rsa_pss_rsae_sha512', hash: 'sha512', len: 48 },
    { key: 'p256', scheme: 'ecdsa_secp256r1_sha256', hash: 'sha256', len: 32 },
    { key: 'p384', scheme: 'ecdsa_secp384r1_sha384', hash: 'sha384', len: 48 },
  ] as const;

  test.each(cases)('$scheme via KMS Sign verifies against the KMS public key', async ({ key, scheme, hash, len }) => {
    const pk = ok<PublicKeyResult>(await handler({ v: 2, id: 'pk', op: 'public_key', key }));
    const pub = crypto.createPublicKey({ key: Buffer.from(pk.result.spki, 'base64'), format: 'der', type: 'spki' });
    const { res, transcriptHash } = await sign(key, scheme, len);
    const sig = Buffer.from(ok<SignatureResult>(res).result.signature, 'base64');
    const opts = scheme.startsWith('rsa_pss')
      ? {
          key: pub,
          padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
          saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST,
        }
      : { key: pub, dsaEncoding: 'der' as const };
    expect(crypto.verify(hash, content(transcriptHash), opts, sig)).toBe(true);
  });

  test('GetPublicKey is cached per container; ping reports the learned key specs', async () => {
    kms.resetStats();
    for (let i = 0; i < 3; i++) ok((await sign('rsa', 'rsa_pss_rsae_sha256', 32)).res);
    expect(kms.stats.operations.Sign).toBe(3);
    expect(kms.stats.operations.GetPublicKey ?? 0).toBe(0); // fetched by the earlier tests, still cached
    const ping = ok<PingResult>(await handler({ v: 2, id: 'p', op: 'ping' }));
    expect(ping.result.keys.find((k) => k.name === 'rsa')).toEqual({
      name: 'rsa',
      custody: 'kms',
      keySpec: 'RSA_2048',
    });
    expect(ping.result.keys.find((k) => k.name === 'missing')).toEqual({
      name: 'missing',
      custody: 'kms',
      keySpec: 'UNKNOWN',
    });
  });

  test('incompatible scheme is refused before KMS is asked to sign', async () => {
    kms.resetStats();
    const { res } = await sign('p256', 'ecdsa_secp384r1_sha384', 48);
    expect(res).toMatchObject({ ok: false, error: { code: 'unsupported' } });
    expect(kms.stats.operations.Sign ?? 0).toBe(0);
  });

  test('a disabled key → unavailable (DisabledException)', async () => {
    const { res } = await sign('disabled', 'ecdsa_secp256r1_sha256', 32);
    expect(res).toMatchObject({ ok: false, id: 'kms-1', error: { code: 'unavailable' } });
    expect(!res.ok && res.error.message).toMatch(/DisabledException/);
  });

  test('a key disabled after its public key was cached → unavailable, then recovers', async () => {
    ok((await sign('later', 'ecdsa_secp256r1_sha256', 32)).res);
    await client.send(new DisableKeyCommand({ KeyId: keyIds.later }));
    const { res } = await sign('later', 'ecdsa_secp256r1_sha256', 32);
    expect(res).toMatchObject({
      ok: false,
      error: { code: 'unavailable', message: 'KMS Sign failed: DisabledException' },
    });
    await client.send(new EnableKeyCommand({ KeyId: keyIds.later }));
    ok((await sign('later', 'ecdsa_secp256r1_sha256', 32)).res);
  });

  test('a key pending deletion → unavailable (KMSInvalidStateException)', async () => {
    const { res } = await sign('deleted', 'ecdsa_secp256r1_sha256', 32);
    expect(res).toMatchObject({ ok: false, error: { code: 'unavailable' } });
    expect(!res.ok && res.error.message).toMatch(/KMSInvalidStateException/);
  });

  test('a missing alias → unknown_key (NotFoundException), message without the ARN', async () => {
    const { res } = await sign('missing', 'ecdsa_secp256r1_sha256', 32);
    expect(res).toMatchObject({ ok: false, error: { code: 'unknown_key' } });
    expect(!res.ok && res.error.message).not.toMatch(/arn:|alias\//);
  });

  test('an ENCRYPT_DECRYPT key → unsupported', async () => {
    const { res } = await sign('enc', 'rsa_pss_rsae_sha256', 32);
    expect(res).toMatchObject({ ok: false, error: { code: 'unsupported' } });
  });

  test('KMS unreachable → unavailable', async () => {
    const dead = await startLocalKms({ port: 0 });
    const url = dead.url;
    await dead.close();
    const deadClient = createKmsClient({ endpoint: url, region: 'us-east-1', credentials, maxAttempts: 1 });
    try {
      const h = createHandler({
        keys: [{ name: 'k', custody: 'kms', keyId: 'alias/x' }],
        kmsClient: deadClient,
        logger: () => undefined,
      });
      const res = await h({ v: 2, id: 'd', op: 'public_key', key: 'k' });
      expect(res).toMatchObject({
        ok: false,
        error: { code: 'unavailable', message: expect.stringMatching(/unreachable \(ECONNREFUSED\)/) },
      });
    } finally {
      deadClient.destroy();
    }
  });
});

describe('mapKmsError', () => {
  const named = (name: string, extra: Record<string, unknown> = {}) =>
    Object.assign(new Error('arn:aws:kms:secret-detail'), { name, ...extra });
  test.each([
    ['DisabledException', 'unavailable'],
    ['KMSInvalidStateException', 'unavailable'],
    ['KeyUnavailableException', 'unavailable'],
    ['DependencyTimeoutException', 'unavailable'],
    ['KMSInternalException', 'unavailable'],
    ['NotFoundException', 'unknown_key'],
    ['ThrottlingException', 'throttled'],
    ['LimitExceededException', 'throttled'],
    ['InvalidKeyUsageException', 'unsupported'],
    ['UnsupportedOperationException', 'unsupported'],
    ['AccessDeniedException', 'internal'],
    ['IncorrectKeyException', 'internal'],
  ])('%s → %s', (name, code) => {
    const e = mapKmsError(named(name), 'Sign');
    expect(e.code).toBe(code);
    expect(e.message).toBe(`KMS Sign failed: ${name}`);
  });

  test('network errors and 5xx are unavailable; odd names are not echoed', () => {
    expect(mapKmsError(named('Error', { code: 'ECONNRESET' }), 'Sign').code).toBe('unavailable');
    expect(mapKmsError(named('TimeoutError'), 'GetPublicKey').code).toBe('unavailable');
    expect(mapKmsError(named('Weird', { $metadata: { httpStatusCode: 503 } }), 'Sign').code).toBe('unavailable');
    const odd = mapKmsError(named('<script>alert(1)</script>'), 'Sign');
    expect(odd).toMatchObject({ code: 'internal', message: 'KMS Sign failed: Error' });
    expect(mapKmsError('string thrown', 'Sign').code).toBe('internal');
  });
});
