/**
 * KMS fidelity suite. Drives a KMS endpoint through the production `@aws-sdk/client-kms` and checks
 * the behaviours the project relies on (docs/key-service-protocol.md): PSS salt = hash length, DIGEST honoured, OAEP-only
 * RSA decryption, data key pairs, key states, aliases and the exact exception names.
 *
 * By default it starts the local endpoint (local/kms) in memory. Set KEYLESS_KMS_FIDELITY_ENDPOINT
 * (e.g. http://localhost:4566 for LocalStack) to run the same checks against another endpoint; the
 * suite then cleans up after itself (aliases deleted, keys scheduled for deletion after 7 days).
 * Tests that inspect the local implementation itself (persistence, stats, CLI) run only locally.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';

import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  CreateKeyCommand,
  type CreateKeyCommandInput,
  DecryptCommand,
  DeleteAliasCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyPairCommand,
  GenerateDataKeyPairWithoutPlaintextCommand,
  GenerateMacCommand,
  GetPublicKeyCommand,
  KMSClient,
  ListAliasesCommand,
  ListKeysCommand,
  ListResourceTagsCommand,
  ScheduleKeyDeletionCommand,
  SignCommand,
  type SigningAlgorithmSpec,
  TagResourceCommand,
  UpdateAliasCommand,
  VerifyCommand,
  VerifyMacCommand,
} from '@aws-sdk/client-kms';

import { startLocalKms, type LocalKms } from '../../../../local/kms';
import { parseArgs } from '../../../../local/kms/main';

const REMOTE = process.env.KEYLESS_KMS_FIDELITY_ENDPOINT;
const localOnly = REMOTE ? describe.skip : describe;
const REGION = process.env.AWS_REGION ?? 'us-east-1';
const CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };

let local: LocalKms | undefined;
let kms: KMSClient;
const createdKeys: string[] = [];
const createdAliases: string[] = [];
const run = crypto.randomBytes(4).toString('hex');

const client = (endpoint: string): KMSClient =>
  new KMSClient({ endpoint, region: REGION, credentials: CREDENTIALS, maxAttempts: 1 });

beforeAll(async () => {
  let endpoint = REMOTE;
  if (!endpoint) {
    local = await startLocalKms({ region: REGION });
    endpoint = local.url;
  }
  kms = client(endpoint);
});

afterAll(async () => {
  if (REMOTE) {
    for (const alias of createdAliases)
      await kms.send(new DeleteAliasCommand({ AliasName: alias })).catch(() => undefined);
    for (const keyId of createdKeys) {
      await kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 })).catch(() => undefined);
    }
  }
  kms?.destroy();
  await local?.close();
});

// --- helpers -----------------------------------------------------------------------------------

async function createKey(input: CreateKeyCommandInput): Promise<string> {
  const out = await kms.send(new CreateKeyCommand({ Description: `keyless fidelity ${run}`, ...input }));
  const keyId = out.KeyMetadata?.KeyId as string;
  createdKeys.push(keyId);
  return keyId;
}

const keyCache = new Map<string, Promise<string>>();
/** One shared key per (spec, usage), created on first use. */
function sharedKey(
  KeySpec: CreateKeyCommandInput['KeySpec'],
  KeyUsage: CreateKeyCommandInput['KeyUsage'],
): Promise<string> {
  const id = `${KeySpec}/${KeyUsage}`;
  let p = keyCache.get(id);
  if (!p) {
    p = createKey({ KeySpec, KeyUsage });
    keyCache.set(id, p);
  }
  return p;
}

async function aliasName(suffix: string): Promise<string> {
  const name = `alias/keyless-fidelity/${run}/${suffix}`;
  createdAliases.push(name);
  return name;
}

async function publicKey(keyId: string): Promise<crypto.KeyObject> {
  const out = await kms.send(new GetPublicKeyCommand({ KeyId: keyId }));
  return crypto.createPublicKey({ key: Buffer.from(out.PublicKey as Uint8Array), format: 'der', type: 'spki' });
}

/** Assert that a KMS call fails with the given exception name. */
async function expectKmsError(p: Promise<unknown>, name: string): Promise<void> {
  await expect(p).rejects.toMatchObject({ name });
}

const HASH: Record<string, { node: string; bytes: number }> = {
  SHA_256: { node: 'sha256', bytes: 32 },
  SHA_384: { node: 'sha384', bytes: 48 },
  SHA_512: { node: 'sha512', bytes: 64 },
};
const hashOf = (alg: string) => HASH[/SHA_\d+$/.exec(alg)?.[0] as string];

/** Verify a KMS signature with node:crypto over the *original* message. */
function nodeVerify(
  alg: string,
  pub: crypto.KeyObject,
  message: Buffer,
  signature: Buffer,
  saltLength?: number,
): boolean {
  const h = hashOf(alg);
  if (alg.startsWith('RSASSA_PSS')) {
    return crypto.verify(
      h.node,
      message,
      {
        key: pub,
        padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
        saltLength: saltLength ?? h.bytes,
      },
      signature,
    );
  }
  if (alg.startsWith('RSASSA_PKCS1')) {
    return crypto.verify(h.node, message, { key: pub, padding: crypto.constants.RSA_PKCS1_PADDING }, signature);
  }
  return crypto.verify(h.node, message, { key: pub, dsaEncoding: 'der' }, signature);
}

async function kmsSign(keyId: string, alg: string, message: Buffer, type: 'RAW' | 'DIGEST' = 'RAW'): Promise<Buffer> {
  const out = await kms.send(
    new SignCommand({
      KeyId: keyId,
      Message: message,
      MessageType: type,
      SigningAlgorithm: alg as SigningAlgorithmSpec,
    }),
  );
  return Buffer.from(out.Signature as Uint8Array);
}

async function rawPost(target: string, body: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const endpoint = REMOTE ?? (local as LocalKms).url;
  const res = await fetch(`${endpoint}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': target },
    body,
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

// --- signing -----------------------------------------------------------------------------------

const RSA_ALGS = [
  'RSASSA_PSS_SHA_256',
  'RSASSA_PSS_SHA_384',
  'RSASSA_PSS_SHA_512',
  'RSASSA_PKCS1_V1_5_SHA_256',
  'RSASSA_PKCS1_V1_5_SHA_384',
  'RSASSA_PKCS1_V1_5_SHA_512',
];
const ECC_CASES: [string, string][] = [
  ['ECC_NIST_P256', 'ECDSA_SHA_256'],
  ['ECC_NIST_P384', 'ECDSA_SHA_384'],
  ['ECC_NIST_P521', 'ECDSA_SHA_512'],
];
const message = Buffer.from('TLS 1.3, server CertificateVerify — keyless fidelity');

describe('Sign / Verify', () => {
  describe.each(RSA_ALGS)('RSA_2048 %s', (alg) => {
    it.each(['RAW', 'DIGEST'] as const)(
      'MessageType %s signs the message exactly once, verifiable by node:crypto',
      async (type) => {
        const keyId = await sharedKey('RSA_2048', 'SIGN_VERIFY');
        const pub = await publicKey(keyId);
        const input = type === 'RAW' ? message : crypto.createHash(hashOf(alg).node).update(message).digest();
        const sig = await kmsSign(keyId, alg, input, type);
        expect(sig.length).toBe(256);
        expect(nodeVerify(alg, pub, message, sig)).toBe(true);
        if (type === 'DIGEST') {
          // Not hashed again: the signature is over the message, not over H(digest).
          expect(nodeVerify(alg, pub, input, sig)).toBe(false);
        }
        // KMS Verify accepts it with either message type.
        const digest = crypto.createHash(hashOf(alg).node).update(message).digest();
        for (const [m, t] of [
          [message, 'RAW'],
          [digest, 'DIGEST'],
        ] as const) {
          const v = await kms.send(
            new VerifyCommand({
              KeyId: keyId,
              Message: m,
              MessageType: t,
              Signature: sig,
              SigningAlgorithm: alg as SigningAlgorithmSpec,
            }),
          );
          expect(v.SignatureValid).toBe(true);
          expect(v.SigningAlgorithm).toBe(alg);
        }
      },
    );
  });

  it('RSASSA-PSS salt length equals the hash length (what TLS 1.3 rsa_pss_rsae_* requires)', async () => {
    const keyId = await sharedKey('RSA_2048', 'SIGN_VERIFY');
    const pub = await publicKey(keyId);
    for (const alg of ['RSASSA_PSS_SHA_256', 'RSASSA_PSS_SHA_384', 'RSASSA_PSS_SHA_512']) {
      const h = hashOf(alg);
      for (const type of ['RAW', 'DIGEST'] as const) {
        const input = type === 'RAW' ? message : crypto.createHash(h.node).update(message).digest();
        const sig = await kmsSign(keyId, alg, input, type);
        expect(nodeVerify(alg, pub, message, sig, h.bytes)).toBe(true);
        expect(nodeVerify(alg, pub, message, sig, h.bytes - 1)).toBe(false);
        expect(nodeVerify(alg, pub, message, sig, h.bytes + 1)).toBe(false);
        expect(nodeVerify(alg, pub, message, sig, 0)).toBe(false);
      }
    }
  });

  it('RSA_3072 PSS over a digest', async () => {
    const keyId = await sharedKey('RSA_3072', 'SIGN_VERIFY');
    const digest = crypto.createHash('sha384').update(message).digest();
    const sig = await kmsSign(keyId, 'RSASSA_PSS_SHA_384', digest, 'DIGEST');
    expect(sig.length).toBe(384);
    expect(nodeVerify('RSASSA_PSS_SHA_384', await publicKey(keyId), message, sig)).toBe(true);
  });

  describe.each(ECC_CASES)('%s %s', (spec, alg) => {
    it.each(['RAW', 'DIGEST'] as const)('MessageType %s: DER ECDSA signature over the message', async (type) => {
      const keyId = await sharedKey(spec as CreateKeyCommandInput['KeySpec'], 'SIGN_VERIFY');
      const pub = await publicKey(keyId);
      const input = type === 'RAW' ? message : crypto.createHash(hashOf(alg).node).update(message).digest();
      const sig = await kmsSign(keyId, alg, input, type);
      expect(sig[0]).toBe(0x30);
      expect(nodeVerify(alg, pub, message, sig)).toBe(true);
      if (type === 'DIGEST') expect(nodeVerify(alg, pub, input, sig)).toBe(false);
      const digest = crypto.createHash(hashOf(alg).node).update(message).digest();
      for (const [m, t] of [
        [message, 'RAW'],
        [digest, 'DIGEST'],
      ] as const) {
        const v = await kms.send(
          new VerifyCommand({
            KeyId: keyId,
            Message: m,
            MessageType: t,
            Signature: sig,
            SigningAlgorithm: alg as SigningAlgorithmSpec,
          }),
        );
        expect(v.SignatureValid).toBe(true);
      }
    });

    it('offers exactly the one ECDSA algorithm bound to the curve', async () => {
      const keyId = await sharedKey(spec as CreateKeyCommandInput['KeySpec'], 'SIGN_VERIFY');
      const out = await kms.send(new GetPublicKeyCommand({ KeyId: keyId }));
      expect(out.SigningAlgorithms).toEqual([alg]);
      for (const other of ['ECDSA_SHA_256', 'ECDSA_SHA_384', 'ECDSA_SHA_512'].filter((a) => a !== alg)) {
        await expectKmsError(kmsSign(keyId, other, message), 'InvalidKeyUsageException');
      }
      await expectKmsError(kmsSign(keyId, 'RSASSA_PSS_SHA_256', message), 'InvalidKeyUsageException');
    });
  });

  it('RAW messages may be 1..4096 bytes', async () => {
    const keyId = await sharedKey('ECC_NIST_P256', 'SIGN_VERIFY');
    const pub = await publicKey(keyId);
    const big = crypto.randomBytes(4096);
    expect(nodeVerify('ECDSA_SHA_256', pub, big, await kmsSign(keyId, 'ECDSA_SHA_256', big))).toBe(true);
    await expectKmsError(kmsSign(keyId, 'ECDSA_SHA_256', crypto.randomBytes(4097)), 'ValidationException');
    await expectKmsError(kmsSign(keyId, 'ECDSA_SHA_256', Buffer.alloc(0)), 'ValidationException');
  });

  it('DIGEST must be exactly the hash length of the algorithm', async () => {
    const rsa = await sharedKey('RSA_2048', 'SIGN_VERIFY');
    const ec = await sharedKey('ECC_NIST_P256', 'SIGN_VERIFY');
    for (const len of [20, 31, 33, 48, 64]) {
      await expectKmsError(
        kmsSign(rsa, 'RSASSA_PKCS1_V1_5_SHA_256', crypto.randomBytes(len), 'DIGEST'),
        'ValidationException',
      );
      await expectKmsError(kmsSign(ec, 'ECDSA_SHA_256', crypto.randomBytes(len), 'DIGEST'), 'ValidationException');
    }
    await expectKmsError(kmsSign(rsa, 'RSASSA_PSS_SHA_512', crypto.randomBytes(32), 'DIGEST'), 'ValidationException');
    await expect(kmsSign(rsa, 'RSASSA_PSS_SHA_512', crypto.randomBytes(64), 'DIGEST')).resolves.toHaveLength(256);
  });

  it('Verify of a bad signature throws KMSInvalidSignatureException', async () => {
    for (const [spec, alg] of [
      ['RSA_2048', 'RSASSA_PSS_SHA_256'],
      ['ECC_NIST_P256', 'ECDSA_SHA_256'],
    ] as const) {
      const keyId = await sharedKey(spec, 'SIGN_VERIFY');
      const sig = await kmsSign(keyId, alg, message);
      const verify = (m: Buffer, s: Buffer, type: 'RAW' | 'DIGEST' = 'RAW') =>
        kms.send(
          new VerifyCommand({ KeyId: keyId, Message: m, MessageType: type, Signature: s, SigningAlgorithm: alg }),
        );
      const flipped = Buffer.from(sig);
      flipped[flipped.length - 3] ^= 0x01;
      await expectKmsError(verify(message, flipped), 'KMSInvalidSignatureException');
      await expectKmsError(verify(Buffer.from('another message'), sig), 'KMSInvalidSignatureException');
      await expectKmsError(
        verify(crypto.createHash('sha256').update('x').digest(), sig, 'DIGEST'),
        'KMSInvalidSignatureException',
      );
      await expectKmsError(verify(message, Buffer.from([0x30, 0x00])), 'KMSInvalidSignatureException');
    }
  });

  it('keys of another usage cannot sign: InvalidKeyUsageException', async () => {
    const rsaEnc = await sharedKey('RSA_2048', 'ENCRYPT_DECRYPT');
    const sym = await sharedKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
    const mac = await sharedKey('HMAC_256', 'GENERATE_VERIFY_MAC');
    await expectKmsError(kmsSign(rsaEnc, 'RSASSA_PSS_SHA_256', message), 'InvalidKeyUsageException');
    await expectKmsError(kmsSign(sym, 'RSASSA_PSS_SHA_256', message), 'InvalidKeyUsageException');
    await expectKmsError(kmsSign(mac, 'ECDSA_SHA_256', message), 'InvalidKeyUsageException');
    const rsaSign = await sharedKey('RSA_2048', 'SIGN_VERIFY');
    await expectKmsError(kmsSign(rsaSign, 'ECDSA_SHA_256', message), 'InvalidKeyUsageException');
  });

  it('an algorithm KMS does not know is a ValidationException', async () => {
    const keyId = await sharedKey('RSA_2048', 'SIGN_VERIFY');
    await expectKmsError(kmsSign(keyId, 'RSASSA_PKCS1_V1_5_SHA_1', message), 'ValidationException');
  });
});

// --- key metadata ------------------------------------------------------------------------------

describe('CreateKey / DescribeKey / GetPublicKey', () => {
  it('describes keys the way KMS does', async () => {
    const keyId = await sharedKey('RSA_2048', 'SIGN_VERIFY');
    const { KeyMetadata: md } = await kms.send(new DescribeKeyCommand({ KeyId: keyId }));
    expect(md).toMatchObject({
      KeyId: keyId,
      KeySpec: 'RSA_2048',
      KeyUsage: 'SIGN_VERIFY',
      KeyState: 'Enabled',
      Enabled: true,
      Origin: 'AWS_KMS',
      KeyManager: 'CUSTOMER',
    });
    expect(md?.Arn).toMatch(new RegExp(`^arn:aws:kms:${REGION}:\\d{12}:key/${keyId}$`));
    expect(md?.CreationDate).toBeInstanceOf(Date);
    expect([...(md?.SigningAlgorithms ?? [])].sort()).toEqual([...RSA_ALGS].sort());
    expect(md?.EncryptionAlgorithms ?? []).toEqual([]);
  });

  it('GetPublicKey returns a DER SubjectPublicKeyInfo and the key facts', async () => {
    const keyId = await sharedKey('ECC_NIST_P256', 'SIGN_VERIFY');
    const out = await kms.send(new GetPublicKeyCommand({ KeyId: keyId }));
    const pub = crypto.createPublicKey({ key: Buffer.from(out.PublicKey as Uint8Array), format: 'der', type: 'spki' });
    expect(pub.asymmetricKeyType).toBe('ec');
    expect(pub.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(out).toMatchObject({
      KeySpec: 'ECC_NIST_P256',
      KeyUsage: 'SIGN_VERIFY',
      SigningAlgorithms: ['ECDSA_SHA_256'],
    });
    expect(out.KeyId).toMatch(/^arn:aws:kms:/);

    const enc = await kms.send(new GetPublicKeyCommand({ KeyId: await sharedKey('RSA_2048', 'ENCRYPT_DECRYPT') }));
    expect(enc.EncryptionAlgorithms).toEqual(['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256']);
    expect(enc.SigningAlgorithms ?? []).toEqual([]);
  });

  it('GetPublicKey of a symmetric key is an UnsupportedOperationException', async () => {
    await expectKmsError(
      kms.send(new GetPublicKeyCommand({ KeyId: await sharedKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT') })),
      'UnsupportedOperationException',
    );
  });

  it('rejects key usages the key spec cannot have', async () => {
    const bad: CreateKeyCommandInput[] = [
      { KeySpec: 'ECC_NIST_P256', KeyUsage: 'ENCRYPT_DECRYPT' },
      { KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'SIGN_VERIFY' },
      { KeySpec: 'HMAC_256', KeyUsage: 'SIGN_VERIFY' },
      { KeySpec: 'HMAC_256' },
      { KeySpec: 'RSA_2048', KeyUsage: 'GENERATE_VERIFY_MAC' },
    ];
    for (const input of bad) await expectKmsError(kms.send(new CreateKeyCommand(input)), 'ValidationException');
  });

  it('an unknown key is a NotFoundException, whatever the identifier form', async () => {
    const id = crypto.randomUUID();
    for (const keyId of [
      id,
      `arn:aws:kms:${REGION}:000000000000:key/${id}`,
      `alias/keyless-fidelity/${run}/none`,
      'not-a-key-id',
    ]) {
      await expectKmsError(kms.send(new DescribeKeyCommand({ KeyId: keyId })), 'NotFoundException');
    }
  });

  it('accepts Tags and the MultiRegion flag; TagResource / ListResourceTags', async () => {
    const out = await kms.send(
      new CreateKeyCommand({
        KeySpec: 'ECC_NIST_P256',
        KeyUsage: 'SIGN_VERIFY',
        MultiRegion: true,
        Tags: [{ TagKey: 'keyless:purpose', TagValue: 'fidelity' }],
      }),
    );
    const keyId = out.KeyMetadata?.KeyId as string;
    createdKeys.push(keyId);
    expect(keyId).toMatch(/^mrk-[0-9a-f]{32}$/);
    expect(out.KeyMetadata?.MultiRegion).toBe(true);
    expect(out.KeyMetadata?.MultiRegionConfiguration?.MultiRegionKeyType).toBe('PRIMARY');
    await kms.send(new TagResourceCommand({ KeyId: keyId, Tags: [{ TagKey: 'owner', TagValue: 'edge' }] }));
    const tags = await kms.send(new ListResourceTagsCommand({ KeyId: keyId }));
    expect(tags.Tags).toEqual(
      expect.arrayContaining([
        { TagKey: 'keyless:purpose', TagValue: 'fidelity' },
        { TagKey: 'owner', TagValue: 'edge' },
      ]),
    );
    await expectKmsError(
      kms.send(new TagResourceCommand({ KeyId: keyId, Tags: [{ TagKey: 'aws:reserved', TagValue: 'x' }] })),
      'TagException',
    );
    expect(
      nodeVerify('ECDSA_SHA_256', await publicKey(keyId), message, await kmsSign(keyId, 'ECDSA_SHA_256', message)),
    ).toBe(true);
  });

  it('ListKeys lists created keys', async () => {
    const keyId = await sharedKey('ECC_NIST_P256', 'SIGN_VERIFY');
    const ids: string[] = [];
    let Marker: string | undefined;
    do {
      const page = await kms.send(new ListKeysCommand({ Marker, Limit: 100 }));
      ids.push(...(page.Keys ?? []).map((k) => k.KeyId as string));
      Marker = page.Truncated ? page.NextMarker : undefined;
    } while (Marker);
    expect(ids).toContain(keyId);
  });
});

// --- encryption --------------------------------------------------------------------------------

describe('Encrypt / Decrypt', () => {
  const context = { purpose: 'keyless-test', tenant: 'a' };

  it('symmetric: the ciphertext names its key and is bound to the encryption context', async () => {
    const keyId = await sharedKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
    const plaintext = crypto.randomBytes(100);
    const enc = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext, EncryptionContext: context }));
    expect(enc.EncryptionAlgorithm).toBe('SYMMETRIC_DEFAULT');
    const blob = Buffer.from(enc.CiphertextBlob as Uint8Array);

    // No KeyId needed, as with KMS.
    const dec = await kms.send(
      new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { tenant: 'a', purpose: 'keyless-test' } }),
    );
    expect(Buffer.from(dec.Plaintext as Uint8Array)).toEqual(plaintext);
    expect(dec.KeyId).toMatch(new RegExp(`key/${keyId}$`));

    await expectKmsError(
      kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { ...context, tenant: 'b' } })),
      'InvalidCiphertextException',
    );
    await expectKmsError(kms.send(new DecryptCommand({ CiphertextBlob: blob })), 'InvalidCiphertextException');
    const tampered = Buffer.from(blob);
    tampered[tampered.length - 20] ^= 0x01;
    await expectKmsError(
      kms.send(new DecryptCommand({ CiphertextBlob: tampered, EncryptionContext: context })),
      'InvalidCiphertextException',
    );
  });

  it('symmetric: decrypting with another KeyId is an IncorrectKeyException', async () => {
    const keyId = await sharedKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
    const other = await createKey({});
    const enc = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') }));
    await expectKmsError(
      kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, KeyId: other })),
      'IncorrectKeyException',
    );
  });

  it('RSA: OAEP with SHA-1 and SHA-256 only — interoperable with node:crypto', async () => {
    const keyId = await sharedKey('RSA_2048', 'ENCRYPT_DECRYPT');
    const pub = await publicKey(keyId);
    const premaster = crypto.randomBytes(48);
    for (const [alg, hash] of [
      ['RSAES_OAEP_SHA_1', 'sha1'],
      ['RSAES_OAEP_SHA_256', 'sha256'],
    ] as const) {
      const ct = crypto.publicEncrypt(
        { key: pub, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash },
        premaster,
      );
      const dec = await kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob: ct, EncryptionAlgorithm: alg }));
      expect(Buffer.from(dec.Plaintext as Uint8Array)).toEqual(premaster);
      expect(dec.EncryptionAlgorithm).toBe(alg);
      // Encrypt through KMS, decrypt through KMS.
      const enc = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: premaster, EncryptionAlgorithm: alg }));
      const back = await kms.send(
        new DecryptCommand({ KeyId: keyId, CiphertextBlob: enc.CiphertextBlob, EncryptionAlgorithm: alg }),
      );
      expect(Buffer.from(back.Plaintext as Uint8Array)).toEqual(premaster);
    }
    // The wrong OAEP hash does not decrypt.
    const ct256 = crypto.publicEncrypt(
      { key: pub, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      premaster,
    );
    await expectKmsError(
      kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob: ct256, EncryptionAlgorithm: 'RSAES_OAEP_SHA_1' })),
      'InvalidCiphertextException',
    );
  });

  it('RSA: a PKCS#1 v1.5 ciphertext (a TLS 1.2 premaster secret) cannot be decrypted', async () => {
    const keyId = await sharedKey('RSA_2048', 'ENCRYPT_DECRYPT');
    const pub = await publicKey(keyId);
    const premaster = Buffer.concat([Buffer.from([3, 3]), crypto.randomBytes(46)]);
    const ct = crypto.publicEncrypt({ key: pub, padding: crypto.constants.RSA_PKCS1_PADDING }, premaster);
    // There is no PKCS#1 v1.5 algorithm to ask for...
    await expectKmsError(
      kms.send(
        new DecryptCommand({ KeyId: keyId, CiphertextBlob: ct, EncryptionAlgorithm: 'RSAES_PKCS1_V1_5' as never }),
      ),
      'ValidationException',
    );
    // ...and OAEP refuses the v1.5 padding.
    for (const alg of ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'] as const) {
      await expectKmsError(
        kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob: ct, EncryptionAlgorithm: alg })),
        'InvalidCiphertextException',
      );
    }
  });

  it('RSA: plaintext is limited to what OAEP can carry', async () => {
    const keyId = await sharedKey('RSA_2048', 'ENCRYPT_DECRYPT');
    await expect(
      kms.send(
        new EncryptCommand({
          KeyId: keyId,
          Plaintext: crypto.randomBytes(214),
          EncryptionAlgorithm: 'RSAES_OAEP_SHA_1',
        }),
      ),
    ).resolves.toBeDefined();
    await expectKmsError(
      kms.send(
        new EncryptCommand({
          KeyId: keyId,
          Plaintext: crypto.randomBytes(215),
          EncryptionAlgorithm: 'RSAES_OAEP_SHA_1',
        }),
      ),
      'ValidationException',
    );
    await expectKmsError(
      kms.send(
        new EncryptCommand({
          KeyId: keyId,
          Plaintext: crypto.randomBytes(191),
          EncryptionAlgorithm: 'RSAES_OAEP_SHA_256',
        }),
      ),
      'ValidationException',
    );
  });

  it('signing keys cannot encrypt or decrypt', async () => {
    const keyId = await sharedKey('RSA_2048', 'SIGN_VERIFY');
    await expectKmsError(
      kms.send(
        new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }),
      ),
      'InvalidKeyUsageException',
    );
    await expectKmsError(
      kms.send(
        new DecryptCommand({
          KeyId: keyId,
          CiphertextBlob: crypto.randomBytes(256),
          EncryptionAlgorithm: 'RSAES_OAEP_SHA_256',
        }),
      ),
      'InvalidKeyUsageException',
    );
  });
});

// --- data keys ---------------------------------------------------------------------------------

describe('data keys and data key pairs', () => {
  const context = { 'keyless:key': 'example.com' };

  it('GenerateDataKeyPair: the private key is returned in clear and sealed under the symmetric key', async () => {
    const wrap = await sharedKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
    const out = await kms.send(
      new GenerateDataKeyPairCommand({ KeyId: wrap, KeyPairSpec: 'RSA_2048', EncryptionContext: context }),
    );
    expect(out.KeyPairSpec).toBe('RSA_2048');
    const priv = crypto.createPrivateKey({
      key: Buffer.from(out.PrivateKeyPlaintext as Uint8Array),
      format: 'der',
      type: 'pkcs8',
    });
    expect(priv.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(crypto.createPublicKey(priv).export({ type: 'spki', format: 'der' })).toEqual(
      Buffer.from(out.PublicKey as Uint8Array),
    );
    const unsealed = await kms.send(
      new DecryptCommand({ CiphertextBlob: out.PrivateKeyCiphertextBlob, EncryptionContext: context }),
    );
    expect(Buffer.from(unsealed.Plaintext as Uint8Array)).toEqual(Buffer.from(out.PrivateKeyPlaintext as Uint8Array));
  });

  it.each(['RSA_2048', 'ECC_NIST_P256', 'ECC_NIST_P384'] as const)(
    'GenerateDataKeyPairWithoutPlaintext %s: unsealed via Decrypt, matches the public key',
    async (spec) => {
      const wrap = await sharedKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
      const out = await kms.send(
        new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: wrap, KeyPairSpec: spec, EncryptionContext: context }),
      );
      expect('PrivateKeyPlaintext' in out).toBe(false);
      expect(out.KeyId).toMatch(new RegExp(`key/${wrap}$`));
      const unsealed = await kms.send(
        new DecryptCommand({ CiphertextBlob: out.PrivateKeyCiphertextBlob, EncryptionContext: context }),
      );
      const priv = crypto.createPrivateKey({
        key: Buffer.from(unsealed.Plaintext as Uint8Array),
        format: 'der',
        type: 'pkcs8',
      });
      const pub = crypto.createPublicKey({
        key: Buffer.from(out.PublicKey as Uint8Array),
        format: 'der',
        type: 'spki',
      });
      expect(crypto.createPublicKey(priv).export({ type: 'spki', format: 'der' })).toEqual(
        pub.export({ type: 'spki', format: 'der' }),
      );
      const sig = crypto.sign('sha256', message, priv);
      expect(crypto.verify('sha256', message, pub, sig)).toBe(true);
      // The sealed key is bound to its context.
      await expectKmsError(
        kms.send(
          new DecryptCommand({
            CiphertextBlob: out.PrivateKeyCiphertextBlob,
            EncryptionContext: { 'keyless:key': 'evil.example' },
          }),
        ),
        'InvalidCiphertextException',
      );
    },
  );

  it('data key pairs need a symmetric encryption key', async () => {
    for (const keyId of [
      await sharedKey('RSA_2048', 'SIGN_VERIFY'),
      await sharedKey('HMAC_256', 'GENERATE_VERIFY_MAC'),
    ]) {
      await expectKmsError(
        kms.send(new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: keyId, KeyPairSpec: 'RSA_2048' })),
        'InvalidKeyUsageException',
      );
    }
  });

  it('GenerateDataKey returns a key and its sealed copy', async () => {
    const wrap = await sharedKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
    const out = await kms.send(
      new GenerateDataKeyCommand({ KeyId: wrap, KeySpec: 'AES_256', EncryptionContext: context }),
    );
    expect(out.Plaintext).toHaveLength(32);
    const dec = await kms.send(new DecryptCommand({ CiphertextBlob: out.CiphertextBlob, EncryptionContext: context }));
    expect(Buffer.from(dec.Plaintext as Uint8Array)).toEqual(Buffer.from(out.Plaintext as Uint8Array));
    const n = await kms.send(new GenerateDataKeyCommand({ KeyId: wrap, NumberOfBytes: 48 }));
    expect(n.Plaintext).toHaveLength(48);
  });
});

// --- MACs --------------------------------------------------------------------------------------

describe('GenerateMac / VerifyMac', () => {
  it('HMAC is deterministic per key and message, and verifies', async () => {
    const keyId = await sharedKey('HMAC_256', 'GENERATE_VERIFY_MAC');
    const mac = async (m: string) =>
      Buffer.from(
        (
          await kms.send(
            new GenerateMacCommand({ KeyId: keyId, Message: Buffer.from(m), MacAlgorithm: 'HMAC_SHA_256' }),
          )
        ).Mac as Uint8Array,
      );
    const a1 = await mac('ticket-epoch-42');
    const a2 = await mac('ticket-epoch-42');
    expect(a1).toHaveLength(32);
    expect(a1).toEqual(a2);
    expect(await mac('ticket-epoch-43')).not.toEqual(a1);
    const v = await kms.send(
      new VerifyMacCommand({
        KeyId: keyId,
        Message: Buffer.from('ticket-epoch-42'),
        Mac: a1,
        MacAlgorithm: 'HMAC_SHA_256',
      }),
    );
    expect(v.MacValid).toBe(true);
    const bad = Buffer.from(a1);
    bad[0] ^= 1;
    await expectKmsError(
      kms.send(
        new VerifyMacCommand({
          KeyId: keyId,
          Message: Buffer.from('ticket-epoch-42'),
          Mac: bad,
          MacAlgorithm: 'HMAC_SHA_256',
        }),
      ),
      'KMSInvalidMacException',
    );

    const other = await createKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    const b = await kms.send(
      new GenerateMacCommand({ KeyId: other, Message: Buffer.from('ticket-epoch-42'), MacAlgorithm: 'HMAC_SHA_256' }),
    );
    expect(Buffer.from(b.Mac as Uint8Array)).not.toEqual(a1);
  });

  it('the MAC algorithm must match the key spec, and only HMAC keys make MACs', async () => {
    const keyId = await sharedKey('HMAC_256', 'GENERATE_VERIFY_MAC');
    await expectKmsError(
      kms.send(new GenerateMacCommand({ KeyId: keyId, Message: Buffer.from('m'), MacAlgorithm: 'HMAC_SHA_384' })),
      'InvalidKeyUsageException',
    );
    const sym = await sharedKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
    await expectKmsError(
      kms.send(new GenerateMacCommand({ KeyId: sym, Message: Buffer.from('m'), MacAlgorithm: 'HMAC_SHA_256' })),
      'InvalidKeyUsageException',
    );
    const h512 = await createKey({ KeySpec: 'HMAC_512', KeyUsage: 'GENERATE_VERIFY_MAC' });
    const out = await kms.send(
      new GenerateMacCommand({ KeyId: h512, Message: Buffer.from('m'), MacAlgorithm: 'HMAC_SHA_512' }),
    );
    expect(out.Mac).toHaveLength(64);
  });
});

// --- aliases -----------------------------------------------------------------------------------

describe('aliases', () => {
  it('every operation takes key id, key ARN, alias name or alias ARN; UpdateAlias swaps the signer', async () => {
    const a = await createKey({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
    const b = await createKey({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
    const name = await aliasName('signer');
    await kms.send(new CreateAliasCommand({ AliasName: name, TargetKeyId: a }));
    const { KeyMetadata: md } = await kms.send(new DescribeKeyCommand({ KeyId: a }));
    const aliasArn = (md?.Arn as string).replace(/key\/.*$/, name);
    for (const id of [a, md?.Arn as string, name, aliasArn]) {
      expect((await kms.send(new DescribeKeyCommand({ KeyId: id }))).KeyMetadata?.KeyId).toBe(a);
    }
    const pubA = await publicKey(a);
    const pubB = await publicKey(b);
    const s1 = await kmsSign(name, 'ECDSA_SHA_256', message);
    expect(nodeVerify('ECDSA_SHA_256', pubA, message, s1)).toBe(true);

    await kms.send(new UpdateAliasCommand({ AliasName: name, TargetKeyId: b }));
    const s2 = await kmsSign(aliasArn, 'ECDSA_SHA_256', message);
    expect(nodeVerify('ECDSA_SHA_256', pubB, message, s2)).toBe(true);
    expect(nodeVerify('ECDSA_SHA_256', pubA, message, s2)).toBe(false);

    const listed = await kms.send(new ListAliasesCommand({ KeyId: b }));
    expect(listed.Aliases?.map((x) => x.AliasName)).toContain(name);
    expect(listed.Aliases?.find((x) => x.AliasName === name)?.TargetKeyId).toBe(b);

    await kms.send(new DeleteAliasCommand({ AliasName: name }));
    await expectKmsError(kms.send(new DescribeKeyCommand({ KeyId: name })), 'NotFoundException');
  });

  it('alias names: unique, prefixed alias/, alias/aws/ reserved', async () => {
    const keyId = await sharedKey('ECC_NIST_P256', 'SIGN_VERIFY');
    const name = await aliasName('unique');
    await kms.send(new CreateAliasCommand({ AliasName: name, TargetKeyId: keyId }));
    await expectKmsError(
      kms.send(new CreateAliasCommand({ AliasName: name, TargetKeyId: keyId })),
      'AlreadyExistsException',
    );
    await expectKmsError(
      kms.send(new CreateAliasCommand({ AliasName: `keyless-${run}`, TargetKeyId: keyId })),
      'ValidationException',
    );
    await expectKmsError(
      kms.send(new CreateAliasCommand({ AliasName: `alias/aws/keyless-${run}`, TargetKeyId: keyId })),
      'NotAuthorizedException',
    );
    await expectKmsError(
      kms.send(new UpdateAliasCommand({ AliasName: `alias/keyless-fidelity/${run}/missing`, TargetKeyId: keyId })),
      'NotFoundException',
    );
    await expectKmsError(
      kms.send(new DeleteAliasCommand({ AliasName: `alias/keyless-fidelity/${run}/missing` })),
      'NotFoundException',
    );
  });
});

// --- key states --------------------------------------------------------------------------------

describe('key states', () => {
  it('a disabled key refuses cryptographic operations with DisabledException', async () => {
    const keyId = await createKey({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
    await kms.send(new DisableKeyCommand({ KeyId: keyId }));
    const { KeyMetadata: md } = await kms.send(new DescribeKeyCommand({ KeyId: keyId }));
    expect(md).toMatchObject({ KeyState: 'Disabled', Enabled: false });
    await expectKmsError(kmsSign(keyId, 'ECDSA_SHA_256', message), 'DisabledException');
    await kms.send(new EnableKeyCommand({ KeyId: keyId }));
    await expect(kmsSign(keyId, 'ECDSA_SHA_256', message)).resolves.toBeInstanceOf(Buffer);

    const sym = await createKey({});
    await kms.send(new DisableKeyCommand({ KeyId: sym }));
    await expectKmsError(
      kms.send(new EncryptCommand({ KeyId: sym, Plaintext: Buffer.from('x') })),
      'DisabledException',
    );
  });

  it('a key pending deletion refuses everything with KMSInvalidStateException; cancelling leaves it Disabled', async () => {
    const keyId = await createKey({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
    const before = Date.now();
    const sched = await kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
    expect(sched.KeyState).toBe('PendingDeletion');
    expect(sched.PendingWindowInDays).toBe(7);
    expect(Math.abs((sched.DeletionDate as Date).getTime() - (before + 7 * 86_400_000))).toBeLessThan(86_400_000);
    const { KeyMetadata: md } = await kms.send(new DescribeKeyCommand({ KeyId: keyId }));
    expect(md).toMatchObject({ KeyState: 'PendingDeletion', Enabled: false });
    expect(md?.DeletionDate).toBeInstanceOf(Date);

    await expectKmsError(kmsSign(keyId, 'ECDSA_SHA_256', message), 'KMSInvalidStateException');
    await expectKmsError(kms.send(new GetPublicKeyCommand({ KeyId: keyId })), 'KMSInvalidStateException');
    await expectKmsError(kms.send(new EnableKeyCommand({ KeyId: keyId })), 'KMSInvalidStateException');
    await expectKmsError(
      kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 })),
      'KMSInvalidStateException',
    );

    const cancelled = await kms.send(new CancelKeyDeletionCommand({ KeyId: keyId }));
    expect(cancelled.KeyId).toMatch(new RegExp(`key/${keyId}$`));
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata?.KeyState).toBe('Disabled');
    await expectKmsError(kmsSign(keyId, 'ECDSA_SHA_256', message), 'DisabledException');
    await kms.send(new EnableKeyCommand({ KeyId: keyId }));
    await expect(kmsSign(keyId, 'ECDSA_SHA_256', message)).resolves.toBeInstanceOf(Buffer);
    await expectKmsError(kms.send(new CancelKeyDeletionCommand({ KeyId: keyId })), 'KMSInvalidStateException');
  });

  it('the pending window is 7..30 days', async () => {
    const keyId = await createKey({});
    for (const days of [6, 31]) {
      await expectKmsError(
        kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: days })),
        'ValidationException',
      );
    }
  });
});

// --- wire protocol -----------------------------------------------------------------------------

describe('AWS JSON 1.1 wire protocol', () => {
  it('an unknown operation is an UnknownOperationException', async () => {
    const r = await rawPost('TrentService.MakeCoffee', '{}');
    expect(r.status).toBe(400);
    expect(String(r.json.__type)).toMatch(/UnknownOperationException$/);
  });

  it('malformed JSON is a SerializationException', async () => {
    const r = await rawPost('TrentService.DescribeKey', '{"KeyId": ');
    expect(r.status).toBe(400);
    expect(String(r.json.__type)).toMatch(/SerializationException$/);
  });

  it('a missing required member is a ValidationException', async () => {
    const r = await rawPost(
      'TrentService.Sign',
      JSON.stringify({ Message: 'aGVsbG8=', SigningAlgorithm: 'ECDSA_SHA_256' }),
    );
    expect(r.status).toBe(400);
    expect(String(r.json.__type)).toMatch(/ValidationException$/);
    expect(String(r.json.message)).toMatch(/keyId/);
  });
});

// --- the local implementation itself -----------------------------------------------------------

localOnly('local endpoint', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-kms-'));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('persists keys and aliases atomically with mode 0600 and reuses them after a restart', async () => {
    const dataDir = path.join(tmp, 'kms');
    const first = await startLocalKms({ dataDir, region: REGION });
    const c1 = client(first.url);
    const { KeyMetadata: md } = await c1.send(
      new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }),
    );
    await c1.send(new CreateAliasCommand({ AliasName: 'alias/dev/leaf', TargetKeyId: md?.KeyId }));
    const pub1 = Buffer.from(
      (await c1.send(new GetPublicKeyCommand({ KeyId: 'alias/dev/leaf' }))).PublicKey as Uint8Array,
    );
    c1.destroy();
    await first.close();

    const files = fs.readdirSync(dataDir);
    expect(files).toEqual([`state.${REGION}.json`]); // no temp files left behind
    expect(fs.statSync(path.join(dataDir, files[0])).mode & 0o777).toBe(0o600);
    expect(fs.statSync(dataDir).mode & 0o777).toBe(0o700);

    const second = await startLocalKms({ dataDir, region: REGION });
    const c2 = client(second.url);
    const pub2 = Buffer.from(
      (await c2.send(new GetPublicKeyCommand({ KeyId: 'alias/dev/leaf' }))).PublicKey as Uint8Array,
    );
    expect(pub2).toEqual(pub1);
    const sig = Buffer.from(
      (await c2.send(new SignCommand({ KeyId: 'alias/dev/leaf', Message: message, SigningAlgorithm: 'ECDSA_SHA_256' })))
        .Signature as Uint8Array,
    );
    expect(
      crypto.verify('sha256', message, crypto.createPublicKey({ key: pub1, format: 'der', type: 'spki' }), sig),
    ).toBe(true);
    c2.destroy();
    await second.close();
  });

  it('in-memory mode writes nothing', async () => {
    const cwdBefore = fs.readdirSync(tmp);
    const mem = await startLocalKms({});
    const c = client(mem.url);
    await c.send(new CreateKeyCommand({}));
    c.destroy();
    await mem.close();
    expect(fs.readdirSync(tmp)).toEqual(cwdBefore);
  });

  it('counts operations and errors', async () => {
    const srv = await startLocalKms({});
    const c = client(srv.url);
    const { KeyMetadata: md } = await c.send(
      new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }),
    );
    await c.send(new SignCommand({ KeyId: md?.KeyId, Message: message, SigningAlgorithm: 'ECDSA_SHA_256' }));
    await c.send(new SignCommand({ KeyId: md?.KeyId, Message: message, SigningAlgorithm: 'ECDSA_SHA_256' }));
    await c.send(new DescribeKeyCommand({ KeyId: 'alias/missing' })).catch(() => undefined);
    expect(srv.stats).toEqual({ requests: 4, operations: { CreateKey: 1, Sign: 2 }, errors: { NotFoundException: 1 } });
    srv.resetStats();
    expect(srv.stats.requests).toBe(0);
    c.destroy();
    await srv.close();
  });

  it('the SDK finds it through AWS_ENDPOINT_URL_KMS', async () => {
    const saved = process.env.AWS_ENDPOINT_URL_KMS;
    process.env.AWS_ENDPOINT_URL_KMS = (local as LocalKms).url;
    try {
      const c = new KMSClient({ region: REGION, credentials: CREDENTIALS, maxAttempts: 1 });
      const keyId = await sharedKey('ECC_NIST_P256', 'SIGN_VERIFY');
      const out = await c.send(new DescribeKeyCommand({ KeyId: keyId }));
      expect(out.KeyMetadata?.KeyId).toBe(keyId);
      c.destroy();
    } finally {
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_KMS;
      else process.env.AWS_ENDPOINT_URL_KMS = saved;
    }
  });

  it('listens on loopback only and refuses non-loopback Host headers', async () => {
    await expect(startLocalKms({ host: '0.0.0.0' })).rejects.toThrow(/loopback/);
    const status = (host: string) =>
      new Promise<number>((resolve, reject) => {
        const req = http.request(
          {
            host: '127.0.0.1',
            port: (local as LocalKms).port,
            method: 'POST',
            path: '/',
            headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.ListKeys', host },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode as number);
          },
        );
        req.on('error', reject);
        req.end('{}');
      });
    expect(await status('attacker.example')).toBe(403);
    expect(await status(`attacker.example:${(local as LocalKms).port}`)).toBe(403);
    expect(await status(`localhost:${(local as LocalKms).port}`)).toBe(200);
    expect(await status(`127.0.0.1:${(local as LocalKms).port}`)).toBe(200);
  });

  it('management operations take key ids and ARNs, not aliases (as in KMS)', async () => {
    const keyId = await createKey({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
    const name = await aliasName('mgmt');
    await kms.send(new CreateAliasCommand({ AliasName: name, TargetKeyId: keyId }));
    await expectKmsError(kms.send(new DisableKeyCommand({ KeyId: name })), 'NotFoundException');
    await expectKmsError(
      kms.send(new CreateAliasCommand({ AliasName: `${name}-2`, TargetKeyId: name })),
      'ValidationException',
    );
  });

  it('CLI arguments', () => {
    expect(parseArgs(['--port', '4599', '--data-dir', '/x/kms'])).toMatchObject({
      port: 4599,
      dataDir: '/x/kms',
      host: '127.0.0.1',
    });
    expect(parseArgs(['--in-memory']).dataDir).toBeUndefined();
    expect(() => parseArgs(['--port', 'x'])).toThrow(/--port/);
    expect(() => parseArgs(['--bogus'])).toThrow(/unknown argument/);
  });
});
