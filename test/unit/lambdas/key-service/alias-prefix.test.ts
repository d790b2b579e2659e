/**
 * The key service's alias-prefix entry (`{"name":"*","custody":"kms","aliasPrefix":...}`): names it was
 * not configured with resolve to `<aliasPrefix><name>` in KMS at request time, so key generations made
 * after deployment are served without a redeploy; a missing alias is the typed `unknown_key`.
 * Runs the real handler against the local KMS endpoint through the production SDK client.
 */
import * as crypto from 'node:crypto';
import { CreateAliasCommand, CreateKeyCommand, DisableKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { parseKeysConfig } from '../../../../lambdas/key-service/config';
import { ConfigError } from '../../../../contract/key-service-errors';
import { createHandler, type KeyServiceHandler } from '../../../../lambdas/key-service/handler';
import {
  PROTOCOL_VERSION,
  type PingResult,
  type PublicKeyResult,
  type SignatureResult,
} from '../../../../contract/key-service-protocol';
import { startLocalKms, type LocalKms } from '../../../../local/kms';

const PREFIX = 'alias/keyless/test/keys/';

describe('KEYLESS_KEYS alias-prefix entry', () => {
  it('parses one "*" entry next to configured keys', () => {
    const keys = parseKeysConfig(
      JSON.stringify([
        { name: 'fixed', custody: 'kms', keyId: 'alias/x' },
        { name: '*', custody: 'kms', aliasPrefix: PREFIX },
      ]),
    );
    expect(keys).toEqual([
      { name: 'fixed', custody: 'kms', keyId: 'alias/x' },
      { name: '*', custody: 'kms', aliasPrefix: PREFIX },
    ]);
  });

  it.each<[unknown[], RegExp]>([
    [[{ name: '*', custody: 'sealed', aliasPrefix: PREFIX }], /\[0\]\.custody: .*must be "kms"/],
    [[{ name: '*', custody: 'kms' }], /\[0\]\.aliasPrefix: expected an alias name prefix/],
    [[{ name: '*', custody: 'kms', aliasPrefix: 'alias/keyless/test' }], /\[0\]\.aliasPrefix/],
    [[{ name: '*', custody: 'kms', aliasPrefix: 'keyless/test/' }], /\[0\]\.aliasPrefix/],
    [[{ name: '*', custody: 'kms', aliasPrefix: 'alias/aws/' }], /\[0\]\.aliasPrefix/],
    [[{ name: '*', custody: 'kms', aliasPrefix: 'alias/a b/' }], /\[0\]\.aliasPrefix/],
    [[{ name: '*', custody: 'kms', aliasPrefix: PREFIX, keyId: 'k' }], /\[0\]: unknown field "keyId"/],
    [
      [
        { name: '*', custody: 'kms', aliasPrefix: PREFIX },
        { name: '*', custody: 'kms', aliasPrefix: 'alias/other/' },
      ],
      /\[1\]\.name: only one "\*"/,
    ],
  ])('refuses %j', (entries, message) => {
    expect(() => parseKeysConfig(JSON.stringify(entries))).toThrow(ConfigError);
    expect(() => parseKeysConfig(JSON.stringify(entries))).toThrow(message);
  });
});

describe('key service resolving names by alias prefix (local KMS)', () => {
  let local: LocalKms;
  let kms: KMSClient;
  let handler: KeyServiceHandler;
  let spki: Buffer;
  let keyId: string;
  let seq = 0;
  const call = (op: Record<string, unknown>) => handler({ v: PROTOCOL_VERSION, id: `req-${seq++}`, ...op });

  beforeAll(async () => {
    local = await startLocalKms({ region: 'us-east-1' });
    kms = new KMSClient({
      endpoint: local.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
    });
    const created = await kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }));
    keyId = created.KeyMetadata!.KeyId!;
    await kms.send(new CreateAliasCommand({ AliasName: `${PREFIX}site-2`, TargetKeyId: keyId }));
    handler = createHandler({
      keys: [{ name: '*', custody: 'kms', aliasPrefix: PREFIX }],
      kmsClient: kms,
      ticketKeys: null,
      logger: () => undefined,
    });
    const pk = await call({ op: 'public_key', key: 'site-2' });
    expect(pk.ok).toBe(true);
    spki = Buffer.from((pk as { result: PublicKeyResult }).result.spki, 'base64');
  });

  afterAll(async () => {
    kms.destroy();
    await local.close();
  });

  it('ping reports the pattern', async () => {
    const r = await call({ op: 'ping' });
    expect(r.ok).toBe(true);
    const ping = (r as { result: PingResult }).result;
    expect(ping.keys).toEqual([]);
    expect(ping.keyPattern).toEqual({ name: '*', custody: 'kms', aliasPrefix: PREFIX });
  });

  it('signs a TLS 1.3 CertificateVerify with the key behind <prefix><name>, created after the service started', async () => {
    const transcriptHash = crypto.randomBytes(32);
    const r = await call({
      op: 'tls13.certificate_verify',
      key: 'site-2',
      scheme: 'ecdsa_secp256r1_sha256',
      transcriptHash: transcriptHash.toString('base64'),
    });
    expect(r.ok).toBe(true);
    const sig = Buffer.from((r as { result: SignatureResult }).result.signature, 'base64');
    const content = Buffer.concat([
      Buffer.alloc(64, 0x20),
      Buffer.from('TLS 1.3, server CertificateVerify'),
      Buffer.from([0]),
      transcriptHash,
    ]);
    expect(
      crypto.verify('sha256', content, crypto.createPublicKey({ key: spki, format: 'der', type: 'spki' }), sig),
    ).toBe(true);

    // A key generation made now is served at once: no redeploy, no restart.
    const next = await kms.send(new CreateKeyCommand({ KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' }));
    await kms.send(new CreateAliasCommand({ AliasName: `${PREFIX}site-3`, TargetKeyId: next.KeyMetadata!.KeyId! }));
    const r3 = await call({ op: 'public_key', key: 'site-3' });
    expect(r3).toMatchObject({ ok: true, result: { keySpec: 'RSA_2048' } });
  });

  it('an alias that does not exist is unknown_key; names an alias cannot hold are unknown_key without a KMS call', async () => {
    const before = local.stats.requests;
    expect(await call({ op: 'public_key', key: 'no-such-key' })).toMatchObject({
      ok: false,
      error: { code: 'unknown_key' },
    });
    expect(local.stats.requests).toBe(before + 1);
    const r = await call({
      op: 'tls13.certificate_verify',
      key: 'no-such-key',
      scheme: 'ecdsa_secp256r1_sha256',
      transcriptHash: crypto.randomBytes(32).toString('base64'),
    });
    expect(r).toMatchObject({ ok: false, error: { code: 'unknown_key' } });
    // "." and ":" are valid key names but not alias characters.
    const mid = local.stats.requests;
    expect(await call({ op: 'public_key', key: 'a.b' })).toMatchObject({ ok: false, error: { code: 'unknown_key' } });
    expect(await call({ op: 'public_key', key: 'a:b' })).toMatchObject({ ok: false, error: { code: 'unknown_key' } });
    expect(local.stats.requests).toBe(mid);
  });

  it('configured names win over the pattern', async () => {
    const other = await kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P384', KeyUsage: 'SIGN_VERIFY' }));
    const h = createHandler({
      keys: [
        { name: 'site-2', custody: 'kms', keyId: other.KeyMetadata!.KeyId! },
        { name: '*', custody: 'kms', aliasPrefix: PREFIX },
      ],
      kmsClient: kms,
      ticketKeys: null,
      logger: () => undefined,
    });
    const r = await h({ v: PROTOCOL_VERSION, id: 'x', op: 'public_key', key: 'site-2' });
    expect(r).toMatchObject({ ok: true, result: { keySpec: 'ECC_NIST_P384' } });
    const ping = await h({ v: PROTOCOL_VERSION, id: 'y', op: 'ping' });
    expect((ping as { result: PingResult }).result.keys.map((k) => k.name)).toEqual(['site-2']);
  });

  it('a disabled key (retired) is refused as unavailable', async () => {
    const k = await kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }));
    await kms.send(new CreateAliasCommand({ AliasName: `${PREFIX}old-1`, TargetKeyId: k.KeyMetadata!.KeyId! }));
    expect((await call({ op: 'public_key', key: 'old-1' })).ok).toBe(true);
    await kms.send(new DisableKeyCommand({ KeyId: k.KeyMetadata!.KeyId! }));
    const r = await call({
      op: 'tls13.certificate_verify',
      key: 'old-1',
      scheme: 'ecdsa_secp256r1_sha256',
      transcriptHash: crypto.randomBytes(32).toString('base64'),
    });
    expect(r).toMatchObject({ ok: false, error: { code: 'unavailable' } });
  });
});
