/**
 * `keyless status` against the local KMS, a directory certificate store and the real key-service
 * handler behind a local Lambda endpoint: the --json shape scripts rely on, the facts in it (keys,
 * live alias, certificate expiry and key matches, what the key service serves), problems, and
 * `--check`.
 */
import 'reflect-metadata';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeleteAliasCommand, DescribeKeyCommand, DisableKeyCommand } from '@aws-sdk/client-kms';
import { DirectoryCertificateStore } from '../../../../edge-proxy/src/cert-store';
import { EXIT } from '../../../../bin/cli/errors';
import type { StatusReport } from '../../../../bin/cli/status';
import { type CliEnv, startCliEnv } from '../../cli-harness';

const PREFIX = 'alias/keyless/dev/keys/';
let env: CliEnv;

async function issued(name: string, spec: string, dns: string): Promise<string> {
  expect((await env.run('keys', 'create', '--local', '--name', name, '--key-spec', spec, '--quiet')).code).toBe(
    EXIT.ok,
  );
  expect((await env.run('csr', '--local', '--key', name, '--dns', dns, '--out', `${name}.csr`, '--quiet')).code).toBe(
    EXIT.ok,
  );
  expect(
    (
      await env.run(
        'cert',
        'issue',
        '--local',
        '--dev-ca',
        '--csr',
        `${name}.csr`,
        '--out',
        `${name}.chain.pem`,
        '--quiet',
        '--days',
        name === 'soon-1' ? '5' : '90',
      )
    ).code,
  ).toBe(EXIT.ok);
  return `${name}.chain.pem`;
}

beforeAll(async () => {
  env = await startCliEnv();
  await env.devCa();
  await issued('site-1', 'ECC_NIST_P256', 'example.com');
  await issued('site-2', 'RSA_2048', 'example.com');
  await issued('soon-1', 'ECC_NIST_P256', 'soon.example.com');
  expect(
    (
      await env.run(
        'cert',
        'import',
        '--local',
        '--key',
        'site-1',
        '--slot',
        'site',
        '--chain',
        'site-1.chain.pem',
        '--live',
        '--quiet',
      )
    ).code,
  ).toBe(EXIT.ok);
  expect(
    (
      await env.run(
        'cert',
        'import',
        '--local',
        '--key',
        'site-2',
        '--slot',
        'site',
        '--chain',
        'site-2.chain.pem',
        '--quiet',
      )
    ).code,
  ).toBe(EXIT.ok);
  expect(
    (
      await env.run(
        'cert',
        'import',
        '--local',
        '--key',
        'soon-1',
        '--slot',
        'soon',
        '--chain',
        'soon-1.chain.pem',
        '--live',
        '--quiet',
      )
    ).code,
  ).toBe(EXIT.ok);
  await env.startKeyService([{ name: '*', custody: 'kms', aliasPrefix: PREFIX } as never]);
});
afterAll(async () => {
  await env?.close();
});

test('--json: keys, certificates, slots, key service, problems', async () => {
  const r = await env.run('status', '--local', '--json', '--quiet');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(EXIT.ok);
  const s = r.json<StatusReport>();
  expect(Object.keys(s).sort()).toEqual(
    ['aliasPrefix', 'certificates', 'errors', 'generatedAt', 'keyService', 'keys', 'problems', 'slots', 'store'].sort(),
  );
  expect(s.aliasPrefix).toBe(PREFIX);
  expect(s.store).toBe(`dir:${path.join(env.dir, 'certs')}`);
  expect(s.errors).toEqual([]);

  expect(s.keys.map((k) => k.name)).toEqual(['site-1', 'site-2', 'soon-1']);
  const site1 = s.keys.find((k) => k.name === 'site-1')!;
  expect(site1).toMatchObject({
    custody: 'kms',
    keySpec: 'ECC_NIST_P256',
    state: 'Enabled',
    enabled: true,
    liveFor: ['site'],
    inKeyService: true,
    alias: `${PREFIX}site-1`,
  });
  expect(site1.keyId).toMatch(/^[0-9a-f-]{36}$/);
  expect(s.keys.find((k) => k.name === 'site-2')).toMatchObject({ keySpec: 'RSA_2048', liveFor: [] });

  expect(s.slots).toEqual([
    {
      slot: 'site',
      liveAlias: `${PREFIX}site`,
      liveKeyName: 'site-1',
      liveKeyId: site1.keyId,
      certificates: [
        { id: 'site-1', state: 'live' },
        { id: 'site-2', state: 'staged' },
      ],
    },
    {
      slot: 'soon',
      liveAlias: `${PREFIX}soon`,
      liveKeyName: 'soon-1',
      liveKeyId: s.keys.find((k) => k.name === 'soon-1')!.keyId,
      certificates: [{ id: 'soon-1', state: 'live' }],
    },
  ]);

  const cert = s.certificates.find((c) => c.id === 'site-2')!;
  expect(cert).toMatchObject({
    slot: 'site',
    keyName: 'site-2',
    state: 'staged',
    hostnames: ['example.com'],
    valid: true,
    matchesKms: true,
    matchesKeyService: true,
  });
  expect(cert.daysLeft).toBeGreaterThanOrEqual(89);
  expect(cert.daysLeft).toBeLessThanOrEqual(90);
  expect(new Date(cert.notAfter).getTime()).toBeGreaterThan(Date.now());
  expect(cert.publicKeySha256).toBe(s.keys.find((k) => k.name === 'site-2')!.publicKeySha256);

  expect(s.keyService).toMatchObject({
    target: 'key service keyless-key-service',
    reachable: true,
    protocol: 2,
    keys: [],
    keyPattern: { name: '*', custody: 'kms', aliasPrefix: PREFIX },
  });
  expect(s.problems).toEqual([expect.stringMatching(/^certificate soon-1 expires in [45] days/)]);
});

test('human table and --check exit code', async () => {
  const r = await env.run('status', '--local', '--quiet');
  expect(r.code).toBe(EXIT.ok);
  expect(r.stdout).toMatch(
    /^keys \(KMS aliases under alias\/keyless\/dev\/keys\/, and the key service's configured names\):\n {2}NAME +CUSTODY +KEY ID/,
  );
  expect(r.stdout).toMatch(/site-1 +kms +[0-9a-f-]{36} +ECC_NIST_P256 +Enabled +site +yes/);
  expect(r.stdout).toMatch(/site-2 +site +site-2 +staged +example.com +\d{4}-\d\d-\d\d +(89|90) +yes +yes/);
  expect(r.stdout).toMatch(/site +alias\/keyless\/dev\/keys\/site +site-1 +site-1:live site-2:staged/);
  expect(r.stdout).toMatch(/problems:\n {2}- certificate soon-1 expires in/);
  expect(r.stdout).toMatch(
    /key service:\n {2}key service keyless-key-service: version \S+, protocol 2, serves any name under alias\/keyless\/dev\/keys\//,
  );
  const check = await env.run('status', '--local', '--quiet', '--check');
  expect(check.code).toBe(EXIT.refused);
});

test('a disabled live key, a certificate the key no longer matches, and an unreadable store entry are reported', async () => {
  const store = new DirectoryCertificateStore(env.certDir);
  // A live certificate whose entry names another key (site-1's chain filed under site-2's name in a new slot).
  const site1 = (await store.list()).find((e) => e.id === 'site-1')!;
  fs.writeFileSync(
    path.join(env.certDir, 'mixed-1.json'),
    JSON.stringify({
      hostnames: ['mixed.example.com'],
      keyName: 'site-2',
      chainPem: site1.chainPem,
      slot: 'mixed',
      state: 'live',
    }),
  );
  const soonKey = (await env.kmsClient.send(new DescribeKeyCommand({ KeyId: `${PREFIX}soon-1` }))).KeyMetadata!.KeyId!;
  await env.kmsClient.send(new DisableKeyCommand({ KeyId: soonKey }));
  const s = (await env.run('status', '--local', '--json', '--quiet')).json<StatusReport>();
  expect(s.certificates.find((c) => c.id === 'mixed-1')).toMatchObject({ matchesKms: false, matchesKeyService: false });
  expect(s.problems).toEqual(
    expect.arrayContaining([
      'certificate mixed-1 does not match KMS key site-2',
      'certificate mixed-1 does not match what the key service signs with for site-2',
      expect.stringMatching(/^certificate soon-1 is live but its key soon-1 is Disabled/),
    ]),
  );
  fs.rmSync(path.join(env.certDir, 'mixed-1.json'));

  // A broken entry: the store cannot be read, KMS and the key service still are.
  fs.writeFileSync(path.join(env.certDir, 'broken.json'), '{"keyName": 1}');
  const broken = await env.run('status', '--local', '--json', '--quiet');
  expect(broken.code).toBe(EXIT.ok);
  const b = broken.json<StatusReport>();
  expect(b.errors).toEqual([expect.stringMatching(/^certificate store: .*broken.json/)]);
  expect(b.keys.length).toBeGreaterThan(0);
  expect((await env.run('status', '--local', '--quiet', '--check')).code).toBe(EXIT.refused);
  fs.rmSync(path.join(env.certDir, 'broken.json'));
});

test('a slot whose live alias is missing says so', async () => {
  await env.kmsClient.send(new DeleteAliasCommand({ AliasName: `${PREFIX}soon` }));
  const s = (await env.run('status', '--local', '--json', '--quiet')).json<StatusReport>();
  expect(s.slots.find((x) => x.slot === 'soon')).toMatchObject({ liveKeyName: null, liveKeyId: null });
  expect(s.keys.find((k) => k.name === 'soon-1')!.liveFor).toEqual([]);
  expect((await env.run('status', '--local', '--quiet')).stdout).toMatch(
    /soon +alias\/keyless\/dev\/keys\/soon +\(no alias\) +soon-1:live/,
  );
});

test('a key service configured for another prefix, and its named keys, are shown', async () => {
  const ecdsa = (await env.kmsClient.send(new DescribeKeyCommand({ KeyId: `${PREFIX}site-1` }))).KeyMetadata!.KeyId!;
  await env.startKeyService([
    { name: 'fixed', custody: 'kms', keyId: ecdsa },
    { name: '*', custody: 'kms', aliasPrefix: 'alias/keyless/prod/keys/' } as never,
  ]);
  try {
    const s = (await env.run('status', '--local', '--json', '--quiet')).json<StatusReport>();
    expect(s.keys.find((k) => k.name === 'fixed')).toMatchObject({
      custody: 'kms',
      keySpec: 'ECC_NIST_P256',
      state: 'configured',
      inKeyService: true,
    });
    expect(s.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^the key service resolves key names under alias\/keyless\/prod\/keys\/, not alias\/keyless\/dev\/keys\//,
        ),
      ]),
    );
    // Under the wrong prefix it knows none of the certificates' keys: each is a problem.
    expect(s.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^key service cannot give the public key of site-2: .*unknown_key/),
      ]),
    );
    expect(s.keys.find((k) => k.name === 'site-2')!.inKeyService).toBe(false);
  } finally {
    await env.startKeyService([{ name: '*', custody: 'kms', aliasPrefix: PREFIX } as never]);
  }
});

test('nothing reachable: exit 69, and the report still says why', async () => {
  const dir = path.join(env.dir, 'dead');
  fs.mkdirSync(dir);
  fs.writeFileSync(
    path.join(dir, 'stack.json'),
    JSON.stringify({ kmsUrl: 'http://127.0.0.1:9', keyServiceUrl: 'http://127.0.0.1:9' }),
  );
  const r = await env.run('status', '--local', '--dev-dir', dir, '--json', '--quiet');
  expect(r.code).toBe(EXIT.unavailable);
  const s = r.json<StatusReport>();
  expect(s.errors).toEqual([
    expect.stringMatching(/^kms: KMS ListAliases: the endpoint is unreachable \(ECONNREFUSED\)/),
    expect.stringMatching(/^key service: .*unreachable/),
  ]);
});

test('--local without a running stack: exit 69 with what to do', async () => {
  const r = await env.run('status', '--local', '--dev-dir', path.join(env.dir, 'nowhere'));
  expect(r.code).toBe(EXIT.unavailable);
  expect(r.stderr).toMatch(
    /the local stack is not running \(no .*nowhere\/stack.json\)\n {2}Start it with `npm start`/,
  );
});
