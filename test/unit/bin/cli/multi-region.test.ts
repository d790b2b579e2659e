/**
 * Key generations in multi-region deployments: `keyless keys create` and `keyless rotate` with
 * `--replica-region` make a multi-Region key, replicate it (ReplicateKey) with its alias, tags and key
 * policy to the other region, move the live alias there on promote and disable the replica on retire —
 * so the failover region's key service (the real handler, with a KMS client of that region) signs for
 * a rotated certificate. Also: keys carry the `keyless:deployment` tag, and `keyless status` lists a
 * key without it as a problem. Against the local KMS, which serves both regions on one endpoint.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DeleteAliasCommand,
  DescribeKeyCommand,
  GetKeyPolicyCommand,
  KMSClient,
  ListResourceTagsCommand,
} from '@aws-sdk/client-kms';
import { EXIT } from '../../../../bin/cli/errors';
import type { StatusReport } from '../../../../bin/cli/status';
import { createHandler } from '../../../../lambdas/key-service/handler';
import {
  PROTOCOL_VERSION,
  type PublicKeyResult,
  type SignatureResult,
} from '../../../../contract/key-service-protocol';
import { type CliEnv, REGION, startCliEnv } from '../../cli-harness';

const PREFIX = 'alias/keyless/dev/keys/';
const WEST = 'us-west-2';
let env: CliEnv;
let west: KMSClient;

beforeAll(async () => {
  env = await startCliEnv();
  west = new KMSClient({
    endpoint: env.kms.url,
    region: WEST,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 3,
  });
  await env.devCa();
  await env.startKeyService([{ name: '*', custody: 'kms', aliasPrefix: PREFIX }]);
});

afterAll(async () => {
  west.destroy();
  await env.close();
});

const describeIn = async (kms: KMSClient, id: string) =>
  (await kms.send(new DescribeKeyCommand({ KeyId: id }))).KeyMetadata!;
const tagsIn = async (kms: KMSClient, id: string) =>
  Object.fromEntries(
    ((await kms.send(new ListResourceTagsCommand({ KeyId: id }))).Tags ?? []).map((t) => [t.TagKey, t.TagValue]),
  );

/** The key service of the failover region: the real handler, resolving names by alias prefix in that region's KMS. */
async function failoverSigns(keyName: string, leafPem: string): Promise<void> {
  const handler = createHandler({
    keys: [{ name: '*', custody: 'kms', aliasPrefix: PREFIX }],
    kmsClient: west,
    ticketKeys: null,
    logger: () => undefined,
  });
  const pk = (await handler({ v: PROTOCOL_VERSION, id: 'pk', op: 'public_key', key: keyName })) as {
    ok: boolean;
    result: PublicKeyResult;
  };
  expect(pk.ok).toBe(true);
  const leaf = new crypto.X509Certificate(leafPem);
  expect(Buffer.from(pk.result.spki, 'base64').equals(leaf.publicKey.export({ format: 'der', type: 'spki' }))).toBe(
    true,
  );
  const transcriptHash = crypto.randomBytes(32);
  const r = (await handler({
    v: PROTOCOL_VERSION,
    id: 'cv',
    op: 'tls13.certificate_verify',
    key: keyName,
    scheme: 'ecdsa_secp256r1_sha256',
    transcriptHash: transcriptHash.toString('base64'),
  })) as { ok: boolean; result: SignatureResult };
  expect(r.ok).toBe(true);
  const content = Buffer.concat([
    Buffer.alloc(64, 0x20),
    Buffer.from('TLS 1.3, server CertificateVerify'),
    Buffer.from([0]),
    transcriptHash,
  ]);
  expect(crypto.verify('sha256', content, leaf.publicKey, Buffer.from(r.result.signature, 'base64'))).toBe(true);
}

describe('keyless keys create --replica-region', () => {
  test('makes a multi-Region key and a replica with the same alias and tags in the other region', async () => {
    const r = await env.run(
      'keys',
      'create',
      '--local',
      '--name',
      'mr-1',
      '--key-spec',
      'ECC_NIST_P256',
      '--replica-region',
      WEST,
      '--json',
      '--quiet',
    );
    expect(r.code).toBe(EXIT.ok);
    const created = r.json<{
      keyId: string;
      replicas: Array<{ region: string; keyArn: string; alias: string; created: boolean }>;
      tags: Record<string, string>;
    }>();
    expect(created.keyId).toMatch(/^mrk-/);
    expect(created.tags['keyless:deployment']).toBe('dev');
    expect(created.replicas).toEqual([
      {
        region: WEST,
        keyArn: `arn:aws:kms:${WEST}:000000000000:key/${created.keyId}`,
        alias: `${PREFIX}mr-1`,
        created: true,
      },
    ]);
    const replica = await describeIn(west, `${PREFIX}mr-1`);
    expect(replica).toMatchObject({
      KeyId: created.keyId,
      MultiRegionConfiguration: { MultiRegionKeyType: 'REPLICA', PrimaryKey: { Region: REGION } },
    });
    expect(await tagsIn(west, created.keyId)).toMatchObject({
      'keyless:deployment': 'dev',
      'keyless:key-name': 'mr-1',
    });

    // Re-run after a lost alias in the replica region: --if-exists reuse finishes it, and then has nothing to do.
    await west.send(new DeleteAliasCommand({ AliasName: `${PREFIX}mr-1` }));
    let again = await env.run(
      'keys',
      'create',
      '--local',
      '--name',
      'mr-1',
      '--key-spec',
      'ECC_NIST_P256',
      '--replica-region',
      WEST,
      '--if-exists',
      'reuse',
      '--json',
      '--quiet',
    );
    expect(again.code).toBe(EXIT.ok);
    expect(again.json<{ created: boolean; replicas: unknown[] }>()).toMatchObject({
      created: false,
      replicas: [{ region: WEST, created: true }],
    });
    again = await env.run(
      'keys',
      'create',
      '--local',
      '--name',
      'mr-1',
      '--key-spec',
      'ECC_NIST_P256',
      '--replica-region',
      WEST,
      '--if-exists',
      'reuse',
      '--json',
      '--quiet',
    );
    expect(again.json<{ replicas: unknown[] }>().replicas).toEqual([
      expect.objectContaining({ region: WEST, created: false }),
    ]);
  });

  test("gives each replica its own key policy, and refuses a primary policy without the replicas'", async () => {
    const policy = (sid: string): string =>
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Sid: sid,
            Effect: 'Allow',
            Principal: { AWS: 'arn:aws:iam::000000000000:root' },
            Action: 'kms:*',
            Resource: '*',
          },
        ],
      });
    fs.writeFileSync(path.join(env.dir, 'east.json'), policy('east'));
    fs.writeFileSync(path.join(env.dir, 'west.json'), policy('west'));
    const missing = await env.run(
      'keys',
      'create',
      '--local',
      '--name',
      'mr-2',
      '--key-spec',
      'ECC_NIST_P256',
      '--replica-region',
      WEST,
      '--key-policy',
      'east.json',
    );
    expect(missing.code).toBe(EXIT.usage);
    expect(missing.stderr).toContain(`--key-policy is for ${REGION} only: the replicas in ${WEST} need their own`);
    expect(missing.stderr).toContain(`--replica-key-policy ${WEST}=FILE`);
    await expect(describeIn(env.kmsClient, `${PREFIX}mr-2`)).rejects.toThrow(); // nothing was created

    const r = await env.run(
      'keys',
      'create',
      '--local',
      '--name',
      'mr-2',
      '--key-spec',
      'ECC_NIST_P256',
      '--replica-region',
      WEST,
      '--key-policy',
      'east.json',
      '--replica-key-policy',
      `${WEST}=west.json`,
      '--json',
      '--quiet',
    );
    expect(r.code).toBe(EXIT.ok);
    const keyId = r.json<{ keyId: string }>().keyId;
    expect((await env.kmsClient.send(new GetKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default' }))).Policy).toBe(
      policy('east'),
    );
    expect((await west.send(new GetKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default' }))).Policy).toBe(
      policy('west'),
    );
  });

  test.each([
    [['--replica-region', REGION], EXIT.usage, `--replica-region ${REGION} is the key's own region`],
    [['--replica-region', 'westeros'], EXIT.usage, '--replica-region westeros is not a region name'],
    [
      ['--replica-key-policy', 'eu-west-1=west.json', '--replica-region', WEST],
      EXIT.usage,
      'a replica key policy is given for eu-west-1, which is not a replica region',
    ],
  ])('refuses %j', async (argv, code, message) => {
    const r = await env.run('keys', 'create', '--local', '--name', 'mr-x', '--key-spec', 'ECC_NIST_P256', ...argv);
    expect(r.code).toBe(code);
    expect(r.stderr).toContain(message);
  });

  test('refuses to replicate an existing single-Region key', async () => {
    expect(
      (await env.run('keys', 'create', '--local', '--name', 'single-1', '--key-spec', 'ECC_NIST_P256', '--quiet')).code,
    ).toBe(EXIT.ok);
    const r = await env.run(
      'keys',
      'create',
      '--local',
      '--name',
      'single-1',
      '--key-spec',
      'ECC_NIST_P256',
      '--replica-region',
      WEST,
      '--if-exists',
      'reuse',
    );
    expect(r.code).toBe(EXIT.refused);
    expect(r.stderr).toContain(`key single-1 is a single-Region key and cannot be replicated to ${WEST}`);
  });
});

describe('keyless rotate in a two-region deployment', () => {
  const rotate = (...argv: string[]) =>
    env.run('rotate', 'edge', ...argv, '--local', '--replica-region', WEST, '--quiet');

  test("the failover region's key service signs for the rotated certificate; promote and retire act in both regions", async () => {
    // First generation.
    expect((await rotate('new-key', '--key-spec', 'ECC_NIST_P256', '--dns', 'edge.example.test')).code).toBe(EXIT.ok);
    let r = await rotate('issue', '--dev-ca', '--dns', 'edge.example.test');
    expect(r.code).toBe(EXIT.ok);
    expect((await rotate('promote')).code).toBe(EXIT.ok);
    const gen1 = await describeIn(env.kmsClient, `${PREFIX}edge-1`);
    expect((await describeIn(west, `${PREFIX}edge`)).KeyId).toBe(gen1.KeyId); // the live alias, there too
    expect(await tagsIn(west, gen1.KeyId!)).toMatchObject({ 'keyless:deployment': 'dev', 'keyless:slot': 'edge' });

    // Rotation to the second generation.
    r = await rotate('new-key');
    expect(r.code).toBe(EXIT.ok);
    const gen2 = await describeIn(env.kmsClient, `${PREFIX}edge-2`);
    expect(gen2.MultiRegion).toBe(true);
    expect((await describeIn(west, `${PREFIX}edge-2`)).KeyId).toBe(gen2.KeyId);
    r = await env.run('rotate', 'edge', 'issue', '--dev-ca', '--local', '--replica-region', WEST, '--json', '--quiet');
    expect(r.code).toBe(EXIT.ok);
    const chainPem = r.json<{ chainPem: string }>().chainPem;
    await failoverSigns('edge-2', chainPem);

    r = await env.run('rotate', 'edge', 'promote', '--local', '--replica-region', WEST, '--json', '--quiet');
    expect(r.code).toBe(EXIT.ok);
    expect(r.json<{ actions: string[] }>().actions).toContain(
      `point ${PREFIX}edge at edge-2 (${gen2.KeyId}) in ${WEST}`,
    );
    expect((await describeIn(west, `${PREFIX}edge`)).KeyId).toBe(gen2.KeyId);

    r = await rotate('retire', '--force');
    expect(r.code).toBe(EXIT.ok);
    expect((await describeIn(env.kmsClient, gen1.KeyId!)).KeyState).toBe('Disabled');
    expect((await describeIn(west, gen1.KeyId!)).KeyState).toBe('Disabled');
    expect((await describeIn(west, gen2.KeyId!)).KeyState).toBe('Enabled');
    await failoverSigns('edge-2', chainPem);
  });

  test('promote refuses a generation that has no replica in a configured region', async () => {
    const r = await env.run('rotate', 'edge', 'new-key', '--local', '--quiet'); // forgot the replica region
    expect(r.code).toBe(EXIT.ok);
    expect((await env.run('rotate', 'edge', 'issue', '--dev-ca', '--local', '--quiet')).code).toBe(EXIT.ok);
    const p = await rotate('promote');
    expect(p.code).toBe(EXIT.refused);
    expect(p.stderr).toContain(`edge-3 has no replica in ${WEST}`);
  });
});

describe('keyless status --replica-region', () => {
  test("shows where each key is replicated, and a certificate's key missing in a region as a problem", async () => {
    const r = await env.run('status', '--local', '--replica-region', WEST, '--json', '--quiet');
    const s = r.json<StatusReport>();
    expect(s.keys.find((k) => k.name === 'edge-2')).toMatchObject({ replicatedTo: [WEST] });
    expect(s.keys.find((k) => k.name === 'edge-3')?.replicatedTo).toBeUndefined();
    expect(s.problems).toContain(
      `key edge-3 has no replica behind ${PREFIX}edge-3 in ${WEST}: the key service there cannot sign for its certificate (failover fails); it is a single-Region key: rotate the slot to a new generation with --replica-region`,
    );
    // Keys without a certificate (mr-x, single-1) are not failover problems.
    expect(s.problems.filter((p) => p.includes('single-1'))).toEqual([]);
  });
});

describe('keyless status and the keyless:deployment tag', () => {
  test("lists a key under the prefix without its deployment's tag as a problem", async () => {
    const untagged = await env.kmsClient.send(
      new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }),
    );
    await env.kmsClient.send(
      new CreateAliasCommand({ AliasName: `${PREFIX}rogue-1`, TargetKeyId: untagged.KeyMetadata!.KeyId! }),
    );
    const r = await env.run('status', '--local', '--json', '--quiet');
    const s = r.json<StatusReport>();
    expect(s.keys.find((k) => k.name === 'rogue-1')).toMatchObject({ deploymentTag: null });
    expect(s.keys.find((k) => k.name === 'mr-1')).toMatchObject({ deploymentTag: 'dev' });
    const problems = s.problems.filter((p) => p.includes('keyless:deployment'));
    expect(problems).toEqual([
      `key rogue-1 (${untagged.KeyMetadata!.KeyId}) has no keyless:deployment tag: the key service of dev may not use it (its policy requires keyless:deployment=dev); a key administrator can add it: aws kms tag-resource --key-id ${untagged.KeyMetadata!.KeyId} --tags TagKey=keyless:deployment,TagValue=dev`,
    ]);
    expect((await env.run('status', '--local', '--check', '--quiet')).code).toBe(EXIT.refused);
  });
});
