/**
 * Multi-Region keys in the local KMS, through the production `@aws-sdk/client-kms`: one endpoint
 * serves every region (the region is the one each request is signed for), `ReplicateKey` makes a
 * replica with the same key id and key material but its own policy, tags and aliases, and the
 * errors are KMS's exception names.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  GetKeyPolicyCommand,
  GetPublicKeyCommand,
  KMSClient,
  ListAliasesCommand,
  ListResourceTagsCommand,
  ReplicateKeyCommand,
  SignCommand,
} from '@aws-sdk/client-kms';
import { startLocalKms, type LocalKms } from '../../../../local/kms';

const CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };
let local: LocalKms;
let east: KMSClient;
let west: KMSClient;
const client = (region: string): KMSClient =>
  new KMSClient({ endpoint: local.url, region, credentials: CREDENTIALS, maxAttempts: 1 });

beforeAll(async () => {
  local = await startLocalKms({ region: 'us-east-1' });
  east = client('us-east-1');
  west = client('us-west-2');
});

afterAll(async () => {
  east.destroy();
  west.destroy();
  await local.close();
});

async function errorName(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as Error).name;
  }
  throw new Error('expected an error');
}

async function signingKey(kms: KMSClient, multiRegion: boolean): Promise<string> {
  const out = await kms.send(
    new CreateKeyCommand({
      KeySpec: 'ECC_NIST_P256',
      KeyUsage: 'SIGN_VERIFY',
      MultiRegion: multiRegion,
      Tags: [{ TagKey: 'keyless:deployment', TagValue: 'prod' }],
    }),
  );
  return out.KeyMetadata!.KeyId!;
}

describe('regions', () => {
  test("each region has its own keys and aliases, chosen by the request's signing region", async () => {
    const keyId = await signingKey(east, false);
    await east.send(new CreateAliasCommand({ AliasName: 'alias/regional-only', TargetKeyId: keyId }));
    expect((await east.send(new DescribeKeyCommand({ KeyId: 'alias/regional-only' }))).KeyMetadata!.Arn).toBe(
      `arn:aws:kms:us-east-1:000000000000:key/${keyId}`,
    );
    expect(await errorName(west.send(new DescribeKeyCommand({ KeyId: keyId })))).toBe('NotFoundException');
    expect(await errorName(west.send(new DescribeKeyCommand({ KeyId: 'alias/regional-only' })))).toBe(
      'NotFoundException',
    );
    const westAliases = (await west.send(new ListAliasesCommand({}))).Aliases ?? [];
    expect(westAliases.map((a) => a.AliasName)).not.toContain('alias/regional-only');
  });
});

describe('ReplicateKey', () => {
  test('replicates a multi-Region primary key: same id and key material, its own policy, tags and aliases', async () => {
    const keyId = await signingKey(east, true);
    expect(keyId).toMatch(/^mrk-[0-9a-f]{32}$/);
    const policy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'west',
          Effect: 'Allow',
          Principal: { AWS: 'arn:aws:iam::000000000000:root' },
          Action: 'kms:*',
          Resource: '*',
        },
      ],
    });
    const out = await east.send(
      new ReplicateKeyCommand({
        KeyId: keyId,
        ReplicaRegion: 'us-west-2',
        Policy: policy,
        Description: 'replica',
        Tags: [{ TagKey: 'keyless:deployment', TagValue: 'prod' }],
      }),
    );
    expect(out.ReplicaKeyMetadata).toMatchObject({
      KeyId: keyId,
      Arn: `arn:aws:kms:us-west-2:000000000000:key/${keyId}`,
      KeySpec: 'ECC_NIST_P256',
      KeyUsage: 'SIGN_VERIFY',
      MultiRegion: true,
      Description: 'replica',
      MultiRegionConfiguration: {
        MultiRegionKeyType: 'REPLICA',
        PrimaryKey: { Region: 'us-east-1' },
        ReplicaKeys: [{ Region: 'us-west-2' }],
      },
    });
    expect(out.ReplicaPolicy).toBe(policy);
    expect(out.ReplicaTags).toEqual([{ TagKey: 'keyless:deployment', TagValue: 'prod' }]);

    // The primary lists its replica.
    const primary = (await east.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!;
    expect(primary.MultiRegionConfiguration).toMatchObject({
      MultiRegionKeyType: 'PRIMARY',
      ReplicaKeys: [{ Arn: `arn:aws:kms:us-west-2:000000000000:key/${keyId}`, Region: 'us-west-2' }],
    });

    // Same key material: the replica's public key is the primary's, and its signature verifies with it.
    const pubEast = (await east.send(new GetPublicKeyCommand({ KeyId: keyId }))).PublicKey!;
    const pubWest = (await west.send(new GetPublicKeyCommand({ KeyId: keyId }))).PublicKey!;
    expect(Buffer.from(pubWest).equals(Buffer.from(pubEast))).toBe(true);
    const message = Buffer.from('replicated');
    const sig = (
      await west.send(
        new SignCommand({ KeyId: keyId, Message: message, MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' }),
      )
    ).Signature!;
    expect(
      crypto.verify(
        'sha256',
        message,
        crypto.createPublicKey({ key: Buffer.from(pubEast), format: 'der', type: 'spki' }),
        Buffer.from(sig),
      ),
    ).toBe(true);

    // Policy and tags are the replica's own; aliases are per region.
    expect((await west.send(new GetKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default' }))).Policy).toBe(policy);
    expect((await west.send(new ListResourceTagsCommand({ KeyId: keyId }))).Tags).toEqual([
      { TagKey: 'keyless:deployment', TagValue: 'prod' },
    ]);
    expect(await errorName(west.send(new DescribeKeyCommand({ KeyId: 'alias/mrk-site' })))).toBe('NotFoundException');
    await west.send(new CreateAliasCommand({ AliasName: 'alias/mrk-site', TargetKeyId: keyId }));
    expect((await west.send(new DescribeKeyCommand({ KeyId: 'alias/mrk-site' }))).KeyMetadata!.KeyId).toBe(keyId);
    expect(await errorName(east.send(new DescribeKeyCommand({ KeyId: 'alias/mrk-site' })))).toBe('NotFoundException');
  });

  test.each([
    [
      'a single-Region key',
      async () => ({ keyId: await signingKey(east, false), region: 'us-west-2', via: east }),
      'UnsupportedOperationException',
    ],
    [
      'a replica',
      async () => {
        const keyId = await signingKey(east, true);
        await east.send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: 'eu-west-1' }));
        return { keyId, region: 'ap-south-1', via: client('eu-west-1') };
      },
      'UnsupportedOperationException',
    ],
    [
      'into a region that has it',
      async () => {
        const keyId = await signingKey(east, true);
        await east.send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: 'eu-west-1' }));
        return { keyId, region: 'eu-west-1', via: east };
      },
      'AlreadyExistsException',
    ],
    [
      'into its own region',
      async () => ({ keyId: await signingKey(east, true), region: 'us-east-1', via: east }),
      'AlreadyExistsException',
    ],
    [
      'into a malformed region',
      async () => ({ keyId: await signingKey(east, true), region: 'mars', via: east }),
      'ValidationException',
    ],
    [
      'by alias',
      async () => {
        const keyId = await signingKey(east, true);
        await east.send(new CreateAliasCommand({ AliasName: `alias/by-alias-${keyId}`, TargetKeyId: keyId }));
        return { keyId: `alias/by-alias-${keyId}`, region: 'us-west-1', via: east };
      },
      'NotFoundException',
    ],
  ])('refuses to replicate %s', async (_what, setup, expected) => {
    const { keyId, region, via } = await setup();
    expect(await errorName(via.send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: region })))).toBe(expected);
  });

  test('replicas persist per region in the data directory', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-kms-mr-'));
    try {
      let srv = await startLocalKms({ region: 'us-east-1', dataDir });
      let c = new KMSClient({ endpoint: srv.url, region: 'us-east-1', credentials: CREDENTIALS, maxAttempts: 1 });
      const keyId = (
        await c.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY', MultiRegion: true }))
      ).KeyMetadata!.KeyId!;
      await c.send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: 'eu-central-1' }));
      c.destroy();
      await srv.close();
      expect(fs.existsSync(path.join(dataDir, 'state.eu-central-1.json'))).toBe(true);
      srv = await startLocalKms({ region: 'us-east-1', dataDir });
      c = new KMSClient({ endpoint: srv.url, region: 'eu-central-1', credentials: CREDENTIALS, maxAttempts: 1 });
      expect(
        (await c.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.MultiRegionConfiguration!
          .MultiRegionKeyType,
      ).toBe('REPLICA');
      c.destroy();
      await srv.close();
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
