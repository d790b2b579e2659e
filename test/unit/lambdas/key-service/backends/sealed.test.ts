/**
 * Key service against the local KMS endpoint (local/kms) through the production @aws-sdk/client-kms:
 *   - `sealed` custody: provisioning with GenerateDataKeyPairWithoutPlaintext under a wrapping key
 *     with the encryption context {"keyless:key-name": name}; unsealing with Decrypt once per
 *     container; signatures and RSA key exchange; failures (wrong context, wrong public key,
 *     disabled wrapping key) as typed errors;
 *   - `kms` custody refuses RSA key exchange (KMS cannot decrypt PKCS#1 v1.5);
 *   - KMS calls reach the metrics sink (per-request KMS latency).
 */
import * as crypto from 'node:crypto';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  type KMSClient,
  type KeySpec,
  type KeyUsageType,
} from '@aws-sdk/client-kms';
import { startLocalKms, type LocalKms } from '../../../../../local/kms';
import { createKmsClient } from '../../../../../lambdas/key-service/backends/kms';
import type { SealedKeyConfig } from '../../../../../contract/keyless-keys-entry';
import { SEALED_ENCRYPTION_CONTEXT_KEY, provisionSealedKey } from '../../../../../contract/sealed-key-envelope';
import { SealedBackend } from '../../../../../lambdas/key-service/backends/sealed';
import { KeyServiceError } from '../../../../../contract/key-service-errors';
import { createHandler } from '../../../../../lambdas/key-service/handler';
import type { RequestMetrics } from '../../../../../lambdas/key-service/observability';
import type {
  KeyServiceResponse,
  MasterSecretResult,
  OkResponse,
  PingResult,
  PublicKeyResult,
  SignatureResult,
} from '../../../../../contract/key-service-protocol';
import { prf12 } from '../../../../../contract/tls12-prf';
import { SEALED_CONTEXT_KEY } from '../../../../../lib/naming';
import {
  encryptPreMaster,
  newPreMaster,
  pkcs1Block,
  rawRsaEncrypt,
  seededServerRandom,
} from '../../../../helpers/rsa-kex';

const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
let kms: LocalKms;
let client: KMSClient;
const ids: Record<string, string> = {};
let sealed: SealedKeyConfig;
let sealedPub: crypto.KeyObject;

async function createKey(alias: string, keySpec: KeySpec, keyUsage: KeyUsageType): Promise<string> {
  const out = await client.send(
    new CreateKeyCommand({ KeySpec: keySpec, KeyUsage: keyUsage, Description: `test ${alias}` }),
  );
  const keyId = out.KeyMetadata!.KeyId!;
  await client.send(new CreateAliasCommand({ AliasName: `alias/${alias}`, TargetKeyId: keyId }));
  return keyId;
}

beforeAll(async () => {
  kms = await startLocalKms({ port: 0 });
  client = createKmsClient({ endpoint: kms.url, region: 'us-east-1', credentials });
  ids.wrapping = await createKey('keyless/test/sealed-wrapping', 'SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
  ids.otherWrapping = await createKey('keyless/test/other-wrapping', 'SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
  ids.hmac = await createKey('keyless/test/hmac-not-wrapping', 'HMAC_256', 'GENERATE_VERIFY_MAC'); // wrong key usage
  ids.kmsRsa = await createKey('keyless/test/keys/kms-rsa', 'RSA_2048', 'SIGN_VERIFY');
  sealed = await provisionSealedKey(client, {
    name: 'legacy',
    wrappingKeyId: 'alias/keyless/test/sealed-wrapping',
    keySpec: 'RSA_2048',
  });
  sealedPub = crypto.createPublicKey({ key: Buffer.from(sealed.publicKey, 'base64'), format: 'der', type: 'spki' });
});

afterAll(async () => {
  client?.destroy();
  await kms?.close();
});

function ok<T>(res: KeyServiceResponse): OkResponse<T> {
  if (!res.ok) throw new Error(`expected ok, got ${res.error.code}: ${res.error.message}`);
  return res as OkResponse<T>;
}

function errCode(res: KeyServiceResponse): string {
  if (res.ok) throw new Error('expected an error response');
  return res.error.code;
}

const b64 = (b: Buffer) => b.toString('base64');
const decrypts = () => kms.stats.operations.Decrypt ?? 0;

function rsaRequest(key: string, preMaster = newPreMaster(), publicKey: crypto.KeyObject = sealedPub) {
  const clientRandom = crypto.randomBytes(32);
  const { seed, serverRandom } = seededServerRandom();
  const ciphertext = encryptPreMaster(publicKey, preMaster);
  return {
    request: {
      v: 2,
      id: 'rsa',
      op: 'tls12.rsa_master_secret',
      key,
      encryptedPreMasterSecret: b64(ciphertext),
      clientVersion: 0x0303,
      clientRandom: b64(clientRandom),
      serverRandom: b64(serverRandom),
      serverRandomSeed: b64(seed),
      prfHash: 'sha256',
    },
    expected: prf12('sha256', preMaster, 'master secret', Buffer.concat([clientRandom, serverRandom]), 48),
  };
}

describe('sealed custody', () => {
  test('the encryption-context key is the one the CDK key policy conditions on', () => {
    expect(SEALED_ENCRYPTION_CONTEXT_KEY).toBe(SEALED_CONTEXT_KEY);
  });

  test('provisioning returns a KEYLESS_KEYS entry: KMS ciphertext and the SPKI, no plaintext key', () => {
    expect(Object.keys(sealed).sort()).toEqual(['custody', 'name', 'publicKey', 'sealedKey', 'wrappingKeyId']);
    expect(sealed).toMatchObject({
      name: 'legacy',
      custody: 'sealed',
      wrappingKeyId: 'alias/keyless/test/sealed-wrapping',
    });
    expect(sealedPub.asymmetricKeyType).toBe('rsa');
    expect(sealedPub.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(kms.stats.operations.GenerateDataKeyPairWithoutPlaintext).toBe(1);
    expect(kms.stats.operations.GenerateDataKeyPair).toBeUndefined();
    // The sealed key is not a DER private key in the clear.
    expect(() =>
      crypto.createPrivateKey({ key: Buffer.from(sealed.sealedKey, 'base64'), format: 'der', type: 'pkcs8' }),
    ).toThrow();
  });

  test('provisioning input and KMS errors are typed', async () => {
    await expect(
      provisionSealedKey(client, { name: 'x', wrappingKeyId: ids.wrapping, keySpec: 'ECC_NIST_P256' as never }),
    ).rejects.toThrow(TypeError);
    await expect(
      provisionSealedKey(client, { name: 'bad name', wrappingKeyId: ids.wrapping, keySpec: 'RSA_2048' }),
    ).rejects.toThrow(TypeError);
    const e = await provisionSealedKey(client, {
      name: 'x',
      wrappingKeyId: 'alias/keyless/test/missing',
      keySpec: 'RSA_2048',
    }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(KeyServiceError);
    expect((e as KeyServiceError).code).toBe('unknown_key');
    const e2 = await provisionSealedKey(client, { name: 'x', wrappingKeyId: ids.hmac, keySpec: 'RSA_2048' }).catch(
      (x: unknown) => x,
    );
    expect((e2 as KeyServiceError).code).toBe('unsupported'); // InvalidKeyUsageException
  });

  test('serves public_key and ping from configuration, unseals once, signs and decrypts', async () => {
    kms.resetStats();
    const metrics: RequestMetrics[] = [];
    const handler = createHandler({
      keys: [sealed],
      kmsClient: client,
      ticketKeys: null,
      logger: () => undefined,
      metrics: { request: (m) => metrics.push(m) },
    });

    const pk = ok<PublicKeyResult>(await handler({ v: 2, id: 'pk', op: 'public_key', key: 'legacy' }));
    expect(pk.result).toEqual({ spki: sealed.publicKey, keySpec: 'RSA_2048' });
    const ping = ok<PingResult>(await handler({ v: 2, id: 'p', op: 'ping' }));
    expect(ping.result.keys).toEqual([{ name: 'legacy', custody: 'sealed', keySpec: 'RSA_2048' }]);
    expect(decrypts()).toBe(0);

    // Concurrent first operations share one Decrypt.
    const hash = crypto.randomBytes(32);
    const clientRandom = crypto.randomBytes(32);
    // The key service derives the server random from the seed: SHA-256(seed)[0..24] ‖ "DOWNGRD\x01".
    const { seed: skeSeed, serverRandom } = seededServerRandom(Buffer.from('DOWNGRD\x01', 'latin1'));
    const params = Buffer.concat([
      Buffer.from([3, 0, 29, 32]),
      Buffer.from(crypto.generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' }).x as string, 'base64url'),
    ]);
    const rsa = rsaRequest('legacy');
    const [cv, ske, ms] = await Promise.all([
      handler({
        v: 2,
        id: 'cv',
        op: 'tls13.certificate_verify',
        key: 'legacy',
        scheme: 'rsa_pss_rsae_sha256',
        transcriptHash: b64(hash),
      }),
      handler({
        v: 2,
        id: 'ske',
        op: 'tls12.server_key_exchange',
        key: 'legacy',
        scheme: 'rsa_pkcs1_sha256',
        clientRandom: b64(clientRandom),
        serverRandomSeed: b64(skeSeed),
        params: b64(params),
      }),
      handler(rsa.request),
    ]);
    expect(decrypts()).toBe(1);
    const cvContent = Buffer.concat([
      Buffer.alloc(64, 0x20),
      Buffer.from('TLS 1.3, server CertificateVerify'),
      Buffer.from([0]),
      hash,
    ]);
    const cvSig = Buffer.from(ok<SignatureResult>(cv).result.signature, 'base64');
    expect(
      crypto.verify(
        'sha256',
        cvContent,
        { key: sealedPub, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
        cvSig,
      ),
    ).toBe(true);
    const skeSig = Buffer.from(ok<SignatureResult>(ske).result.signature, 'base64');
    expect(
      crypto.verify(
        'sha256',
        Buffer.concat([clientRandom, serverRandom, params]),
        { key: sealedPub, padding: crypto.constants.RSA_PKCS1_PADDING },
        skeSig,
      ),
    ).toBe(true);
    expect(Buffer.from(ok<MasterSecretResult>(ms).result.masterSecret, 'base64').equals(rsa.expected)).toBe(true);

    // Implicit rejection through the sealed key as well; and no further Decrypt.
    const bad = rsaRequest('legacy');
    bad.request.encryptedPreMasterSecret = b64(rawRsaEncrypt(sealedPub, pkcs1Block(256, newPreMaster(), 0x01)));
    const rejected = ok<MasterSecretResult>(await handler(bad.request));
    expect(Buffer.from(rejected.result.masterSecret, 'base64').length).toBe(48);
    for (let i = 0; i < 3; i++) ok<MasterSecretResult>(await handler(rsaRequest('legacy').request));
    expect(decrypts()).toBe(1);

    // The unseal's Decrypt shows up as KMS latency of the request that made it.
    const withKms = metrics.filter((m) => m.kms.length > 0);
    expect(withKms.length).toBe(1);
    expect(withKms[0].kms).toEqual([{ operation: 'Decrypt', ms: expect.any(Number) }]);
    expect(metrics.every((m) => m.outcome === 'ok')).toBe(true);
  });

  test('a sealed key configured under another name does not open (encryption context), and is not retried', async () => {
    kms.resetStats();
    const handler = createHandler({
      keys: [{ ...sealed, name: 'renamed' }],
      kmsClient: client,
      ticketKeys: null,
      logger: () => undefined,
    });
    expect(errCode(await handler(rsaRequest('renamed').request))).toBe('internal');
    expect(errCode(await handler(rsaRequest('renamed').request))).toBe('internal');
    expect(decrypts()).toBe(0);
    expect(kms.stats.errors.InvalidCiphertextException).toBe(1);
  });

  test('a sealed key under the wrong wrapping key id is an internal error', async () => {
    const handler = createHandler({
      keys: [{ ...sealed, wrappingKeyId: ids.otherWrapping }],
      kmsClient: client,
      ticketKeys: null,
      logger: () => undefined,
    });
    expect(errCode(await handler(rsaRequest('legacy').request))).toBe('internal');
  });

  test('a sealed key that is not the configured public key is refused, once', async () => {
    kms.resetStats();
    const otherSpki = crypto
      .generateKeyPairSync('rsa', { modulusLength: 2048 })
      .publicKey.export({ type: 'spki', format: 'der' });
    const handler = createHandler({
      keys: [{ ...sealed, publicKey: b64(otherSpki) }],
      kmsClient: client,
      ticketKeys: null,
      logger: () => undefined,
    });
    const res = await handler({
      v: 2,
      id: 'cv',
      op: 'tls13.certificate_verify',
      key: 'legacy',
      scheme: 'rsa_pss_rsae_sha256',
      transcriptHash: b64(crypto.randomBytes(32)),
    });
    expect(res).toEqual({
      v: 2,
      id: 'cv',
      ok: false,
      error: { code: 'internal', message: 'sealed key "legacy" does not match its configured public key' },
    });
    expect(errCode(await handler(rsaRequest('legacy').request))).toBe('internal');
    expect(decrypts()).toBe(1);
  });

  test('a disabled wrapping key is `unavailable`, and the next request after re-enabling succeeds', async () => {
    const backend = new SealedBackend({ config: sealed, client });
    const handler = createHandler({ backends: [backend], ticketKeys: null, logger: () => undefined });
    await client.send(new DisableKeyCommand({ KeyId: ids.wrapping }));
    try {
      expect(errCode(await handler(rsaRequest('legacy').request))).toBe('unavailable');
      expect(backend.isUnsealed).toBe(false);
    } finally {
      await client.send(new EnableKeyCommand({ KeyId: ids.wrapping }));
    }
    const r = rsaRequest('legacy');
    expect(
      Buffer.from(ok<MasterSecretResult>(await handler(r.request)).result.masterSecret, 'base64').equals(r.expected),
    ).toBe(true);
    expect(backend.isUnsealed).toBe(true);
  });

  test('RSA-3072 sealed keys work end to end', async () => {
    const cfg = await provisionSealedKey(client, { name: 'big', wrappingKeyId: ids.wrapping, keySpec: 'RSA_3072' });
    const pub = crypto.createPublicKey({ key: Buffer.from(cfg.publicKey, 'base64'), format: 'der', type: 'spki' });
    const handler = createHandler({ keys: [cfg], kmsClient: client, ticketKeys: null, logger: () => undefined });
    const r = rsaRequest('big', newPreMaster(), pub);
    expect(
      Buffer.from(ok<MasterSecretResult>(await handler(r.request)).result.masterSecret, 'base64').equals(r.expected),
    ).toBe(true);
  });
});

describe('kms custody and RSA key exchange', () => {
  test('tls12.rsa_master_secret is unsupported: KMS cannot decrypt PKCS#1 v1.5', async () => {
    const handler = createHandler({
      keys: [{ name: 'k', custody: 'kms', keyId: 'alias/keyless/test/keys/kms-rsa' }],
      kmsClient: client,
      ticketKeys: null,
      logger: () => undefined,
    });
    const pub = crypto.createPublicKey({
      key: Buffer.from(
        ok<PublicKeyResult>(await handler({ v: 2, id: 'pk', op: 'public_key', key: 'k' })).result.spki,
        'base64',
      ),
      format: 'der',
      type: 'spki',
    });
    const res = await handler(rsaRequest('k', newPreMaster(), pub).request);
    expect(errCode(res)).toBe('unsupported');
    expect(JSON.stringify(res)).toMatch(/sealed/);
  });

  test('but it signs TLS 1.2 ServerKeyExchange with PKCS#1 v1.5 SHA-256 through KMS Sign', async () => {
    const handler = createHandler({
      keys: [{ name: 'k', custody: 'kms', keyId: ids.kmsRsa }],
      kmsClient: client,
      ticketKeys: null,
      logger: () => undefined,
    });
    const pub = crypto.createPublicKey({
      key: Buffer.from(
        ok<PublicKeyResult>(await handler({ v: 2, id: 'pk', op: 'public_key', key: 'k' })).result.spki,
        'base64',
      ),
      format: 'der',
      type: 'spki',
    });
    const cr = crypto.randomBytes(32);
    const { seed, serverRandom: sr } = seededServerRandom(Buffer.from('DOWNGRD\x01', 'latin1'));
    const params = Buffer.concat([Buffer.from([3, 0, 23, 65]), crypto.createECDH('prime256v1').generateKeys()]);
    for (const scheme of ['rsa_pkcs1_sha256', 'rsa_pkcs1_sha384', 'rsa_pss_rsae_sha256'] as const) {
      const res = ok<SignatureResult>(
        await handler({
          v: 2,
          id: 's',
          op: 'tls12.server_key_exchange',
          key: 'k',
          scheme,
          clientRandom: b64(cr),
          serverRandomSeed: b64(seed),
          params: b64(params),
        }),
      );
      const hash = scheme.endsWith('384') ? 'sha384' : 'sha256';
      const opts = scheme.startsWith('rsa_pss')
        ? { key: pub, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }
        : { key: pub, padding: crypto.constants.RSA_PKCS1_PADDING };
      expect(
        crypto.verify(hash, Buffer.concat([cr, sr, params]), opts, Buffer.from(res.result.signature, 'base64')),
      ).toBe(true);
    }
  });
});
