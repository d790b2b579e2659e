/**
 * The ticket-key store on SSM Parameter Store, through the production @aws-sdk/client-ssm against
 * the local SSM endpoint (local/ssm) and the envelope against the local KMS: one Advanced-tier
 * String parameter per epoch holding KMS ciphertext, never overwritten (PutParameter with
 * Overwrite=false), deleted by its Expiration policy; containers with their own SSM clients racing
 * on a new epoch agree on one key.
 */
import { CreateAliasCommand, CreateKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { DescribeParametersCommand, GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { startLocalKms, type LocalKms } from '../../../../local/kms';
import { startLocalSsm, type LocalSsm } from '../../../../local/ssm';
import { createKmsClient } from '../../../../lambdas/key-service/backends/kms';
import { KmsTicketKeyEnvelope } from '../../../../lambdas/key-service/ticket-key-envelope';
import { createSsmClient, expirationPolicy, SsmTicketKeyStore } from '../../../../lambdas/key-service/ticket-key-store';
import { StoredTicketKeys } from '../../../../lambdas/key-service/ticket-keys';

const REGION = 'us-east-1';
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
const PREFIX = '/keyless/test/ticket-keys/';
let kms: LocalKms;
let ssm: LocalSsm;
let kmsClient: KMSClient;
const clients: SSMClient[] = [];

function ssmClient(): SSMClient {
  const c = createSsmClient({ endpoint: ssm.url, region: REGION, credentials });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  [kms, ssm] = await Promise.all([startLocalKms({ port: 0 }), startLocalSsm({ port: 0, region: REGION })]);
  kmsClient = createKmsClient({ endpoint: kms.url, region: REGION, credentials });
  const key = await kmsClient.send(new CreateKeyCommand({ KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT' }));
  await kmsClient.send(
    new CreateAliasCommand({ AliasName: 'alias/keyless/test/ticket-keys', TargetKeyId: key.KeyMetadata!.KeyId! }),
  );
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  kmsClient?.destroy();
  await Promise.all([kms?.close(), ssm?.close()]);
});

test('one Advanced-tier parameter per epoch, created once, never overwritten, with an Expiration policy', async () => {
  const store = new SsmTicketKeyStore({ prefix: PREFIX, client: ssmClient() });
  const expiresAt = Date.now() + 3_600_000;
  expect(await store.get(100)).toBeUndefined();
  expect(await store.create(100, Buffer.from('first ciphertext'), expiresAt)).toBe(true);
  expect(await store.create(100, Buffer.from('second ciphertext'), expiresAt)).toBe(false);
  expect((await store.get(100))!.toString()).toBe('first ciphertext');

  const sdk = ssmClient();
  const got = await sdk.send(new GetParameterCommand({ Name: `${PREFIX}100` }));
  expect(got.Parameter).toMatchObject({ Type: 'String', Version: 1 });
  const described = await sdk.send(
    new DescribeParametersCommand({ ParameterFilters: [{ Key: 'Name', Values: [`${PREFIX}100`] }] }),
  );
  expect(described.Parameters?.[0]).toMatchObject({
    Tier: 'Advanced',
    Policies: [{ PolicyType: 'Expiration', PolicyText: JSON.stringify(JSON.parse(expirationPolicy(expiresAt))[0]) }],
  });

  await store.delete(100);
  expect(await store.get(100)).toBeUndefined();
  await store.delete(100); // deleting what is not there is fine
});

test('the Expiration policy deletes the parameter: after it, the epoch is gone from the store', async () => {
  const store = new SsmTicketKeyStore({ prefix: PREFIX, client: ssmClient() });
  const expiresAt = Date.now() + 1_000;
  expect(await store.create(200, Buffer.from('short-lived'), expiresAt)).toBe(true);
  while (Date.now() <= expiresAt) await new Promise((r) => setTimeout(r, 100));
  expect(await store.get(200)).toBeUndefined();
});

test('containers with their own SSM clients racing on a new epoch converge on one key', async () => {
  const envelope = new KmsTicketKeyEnvelope({
    keyId: 'alias/keyless/test/ticket-keys',
    deployment: 'test',
    client: kmsClient,
  });
  const containers = Array.from(
    { length: 6 },
    () =>
      new StoredTicketKeys({
        store: new SsmTicketKeyStore({ prefix: PREFIX, client: ssmClient() }),
        envelope,
        epochSeconds: 3600,
        epochsAccepted: 2,
      }),
  );
  const answers = await Promise.all(containers.map((c) => c.get()));
  expect(new Set(answers.map((a) => a.current.key.toString('hex'))).size).toBe(1);
  const epoch = answers[0].current.epoch;
  const stored = await new SsmTicketKeyStore({ prefix: PREFIX, client: ssmClient() }).get(epoch);
  expect((await envelope.open(epoch, stored!)).equals(answers[0].current.key)).toBe(true);
  const history = await ssmClient().send(new GetParameterCommand({ Name: `${PREFIX}${epoch}` }));
  expect(history.Parameter?.Version).toBe(1); // never overwritten
});

test('store failures are typed: an unreachable endpoint is unavailable', async () => {
  const deadClient = createSsmClient({ endpoint: 'http://127.0.0.1:9', region: REGION, credentials, maxAttempts: 1 });
  clients.push(deadClient);
  const dead = new SsmTicketKeyStore({ prefix: PREFIX, client: deadClient });
  await expect(dead.get(1)).rejects.toMatchObject({ code: 'unavailable' });
  expect(() => new SsmTicketKeyStore({ prefix: 'no-slash', client: ssmClient() })).toThrow(RangeError);
});
