/**
 * `keyless rotate`: every step against the local KMS endpoint (production SDK client) and a
 * directory certificate store, with certificates from the dev CA (its key only in the local KMS).
 * One slot goes through its first generation and a full rotation; every refusal is asserted with its
 * exit code (2) and advice, and every step is re-run to show it is idempotent.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DescribeKeyCommand, GetKeyPolicyCommand, KMSClient } from '@aws-sdk/client-kms';
import { DirectoryCertificateStore } from '../../../../edge-proxy/src/cert-store';
import { main } from '../../../../bin/keyless';
import type { CertificateAuthority } from '../../../../bin/cli/cert-issue';
import { issueCertificate } from '../../../../bin/cli/cert-issue';
import { createCsr } from '../../../../bin/cli/csr';
import { CliError } from '../../../../bin/cli/errors';
import {
  defaultDrainSeconds,
  rotationPlan,
  runRotationStep,
  type RotateDeps,
  type RotateOptions,
  type RotateStep,
} from '../../../../bin/cli/rotate';
import { ensureDevPki } from '../../../../local/dev-pki';
import { startLocalKms, type LocalKms } from '../../../../local/kms';

const PREFIX = 'alias/keyless/dev/keys/';
const HOST = 'site.example.test';

let local: LocalKms;
let kms: KMSClient;
let dir: string;
let store: DirectoryCertificateStore;
let ca: CertificateAuthority;
let deps: RotateDeps;

beforeAll(async () => {
  local = await startLocalKms({ region: 'us-east-1' });
  kms = new KMSClient({
    endpoint: local.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-rotate-'));
  const pki = await ensureDevPki({ kms, dir, leafKeySpec: 'ECC_NIST_P256' });
  ca = { kind: 'dev', caAlias: pki.caAlias, caCertPem: pki.caPem };
  store = new DirectoryCertificateStore(path.join(dir, 'certs'));
  deps = { kms, store };
  // The local stack's state file, so the command line can run with --local --dev-dir.
  fs.writeFileSync(path.join(dir, 'stack.json'), JSON.stringify({ kmsUrl: local.url, aliasPrefix: PREFIX }));
});

afterAll(async () => {
  kms.destroy();
  await local.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const base = (slot: string, extra: Partial<RotateOptions> = {}): RotateOptions => ({
  slot,
  aliasPrefix: PREFIX,
  ...extra,
});
const step = (s: RotateStep, slot: string, extra: Partial<RotateOptions> = {}, d: Partial<RotateDeps> = {}) =>
  runRotationStep(s, base(slot, extra), { ...deps, ...d });

async function refusal(p: Promise<unknown>): Promise<CliError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof CliError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

async function keyState(name: string): Promise<string | undefined> {
  return (await kms.send(new DescribeKeyCommand({ KeyId: `${PREFIX}${name}` }))).KeyMetadata?.KeyState;
}

async function chainFor(keyName: string, dnsNames: string[], now?: Date): Promise<string> {
  const csr = await createCsr({ keyName, aliasPrefix: PREFIX, dnsNames }, { kms });
  return (await issueCertificate({ csrPem: csr.pem, ca, days: 30, now }, { kms })).chainPem;
}

const entries = async () => (await store.list()).map((e) => [e.keyName, e.state, e.slot]);

describe('keyless rotate: first generation of a slot, then a full rotation', () => {
  const slot = 'site';

  it('plans the first generation of an empty slot', async () => {
    const plan = await rotationPlan(base(slot), deps);
    expect(plan.state).toMatchObject({
      slot,
      liveAlias: `${PREFIX}site`,
      next: 'new-key',
      orphanKeys: [],
      entries: [],
    });
    expect(plan.state.hint).toMatch(/no certificate yet/);
  });

  it('refuses a key named like the slot, and a csr without names when nothing is live', async () => {
    const named = await refusal(step('new-key', slot, { newKey: 'site' }));
    expect(named.exitCode).toBe(2);
    expect(named.hint).toMatch(/live alias/);
    expect(await refusal(step('csr', slot))).toMatchObject({
      exitCode: 2,
      message: expect.stringMatching(/no new key/),
    });
    expect(await refusal(step('promote', slot))).toMatchObject({
      exitCode: 2,
      message: expect.stringMatching(/no staged certificate/),
    });
  });

  it('new-key creates site-1 (dry run first changes nothing); re-running reuses it', async () => {
    const dry = await step('new-key', slot, { dryRun: true });
    expect(dry.actions).toEqual([expect.stringMatching(/^would create KMS key site-1 \(ECC_NIST_P256/)]);
    await expect(keyState('site-1')).rejects.toThrow(/not found|NotFound/i);
    const made = await step('new-key', slot);
    expect(made.alreadyDone).toBe(false);
    expect(made.state).toMatchObject({ pendingKey: 'site-1', next: 'import' });
    expect(await keyState('site-1')).toBe('Enabled');
    const again = await step('new-key', slot);
    expect(again.alreadyDone).toBe(true);
    // Asking for another name while site-1 waits is refused.
    expect((await refusal(step('new-key', slot, { newKey: 'other-1' }))).message).toMatch(/site-1 was already created/);
    const csrUsage = await refusal(step('csr', slot));
    expect(csrUsage.exitCode).toBe(64);
    expect(csrUsage.hint).toMatch(/--dns/);
  });

  it('issue (csr + dev CA + import) stages the certificate; promote makes it live and creates the live alias', async () => {
    const issued = await step('issue', slot, { ca, dnsNames: [HOST] });
    expect(issued.imported).toMatchObject({ keyName: 'site-1', state: 'staged', hostnames: [HOST] });
    expect(await entries()).toEqual([['site-1', 'staged', 'site']]);
    expect((await step('issue', slot, { ca, dnsNames: [HOST] })).alreadyDone).toBe(true);
    const promoted = await step('promote', slot);
    expect(promoted.actions.join('\n')).toMatch(
      /mark site-1 live[\s\S]*point alias\/keyless\/dev\/keys\/site at site-1/,
    );
    expect(promoted.state.next).toBe('new-key');
    expect(await entries()).toEqual([['site-1', 'live', 'site']]);
    expect((await step('promote', slot)).alreadyDone).toBe(true);
    expect((await step('retire', slot)).alreadyDone).toBe(true);
  });

  it('rotation: new-key makes site-2 of the live key type; the CSR takes the live names', async () => {
    const made = await step('new-key', slot);
    expect(made.state.pendingKey).toBe('site-2');
    const csr = await step('csr', slot);
    expect(csr.csrPem).toMatch(/BEGIN CERTIFICATE REQUEST/);
    expect(csr.actions[0]).toMatch(new RegExp(`for ${HOST} with key site-2 \\(ECC_NIST_P256\\)`));
  });

  it('import refuses a certificate of another key, an expired one and a broken chain', async () => {
    const site1Chain = (await store.list())[0].chainPem;
    const wrongKey = await refusal(step('import', slot, { chainText: site1Chain }));
    expect(wrongKey.exitCode).toBe(2);
    expect(wrongKey.message).toMatch(/site-2|public key|does not match/i);
    const good = await chainFor('site-2', [HOST]);
    const expired = await refusal(
      step('import', slot, { chainText: good, now: new Date(Date.now() + 60 * 86_400_000) }),
    );
    expect(expired.message).toMatch(/expired|not valid/i);
    const leafOnly = good.slice(0, good.indexOf('-----END CERTIFICATE-----') + 25);
    const broken = await refusal(
      step('import', slot, {
        chainText: leafOnly + '\n' + site1Chain.slice(0, site1Chain.indexOf('-----END CERTIFICATE-----') + 25) + '\n',
      }),
    );
    expect(broken.exitCode).toBe(2);
    expect(await entries()).toEqual([['site-1', 'live', 'site']]);
  });

  it('import refuses a certificate that drops a name the live one serves, unless --force', async () => {
    const other = await chainFor('site-2', ['other.example.test']);
    const dropped = await refusal(step('import', slot, { chainText: other }));
    expect(dropped.message).toMatch(new RegExp(`does not cover ${HOST.replace(/\./g, '\\.')}`));
    expect(await entries()).toEqual([['site-1', 'live', 'site']]);
    // --force drops them on purpose.
    const forced = await step('import', slot, { chainText: other, force: true });
    expect(forced.imported).toMatchObject({ keyName: 'site-2', state: 'staged', hostnames: ['other.example.test'] });
    await store.remove('site-2');
  });

  it('import stages site-2; a second rotation cannot start; retire before promote is refused', async () => {
    const dry = await step('import', slot, { chainText: await chainFor('site-2', [HOST]), dryRun: true });
    expect(dry.actions[0]).toMatch(/^would check/);
    expect(await entries()).toEqual([['site-1', 'live', 'site']]);
    const imported = await step('import', slot, { chainText: await chainFor('site-2', [HOST]) });
    expect(imported.state.next).toBe('promote');
    expect(await entries()).toEqual([
      ['site-1', 'live', 'site'],
      ['site-2', 'staged', 'site'],
    ]);
    expect((await refusal(step('new-key', slot))).message).toMatch(/in progress: site-2 is staged/);
    expect((await refusal(step('retire', slot))).message).toMatch(/site-2 is staged, not promoted/);
  });

  it('promote refuses while an edge has not checked the staged certificate ok', async () => {
    const metrics = (result: string) =>
      `keyless_edge_staged_certificate_check{key_name="site-2",result="${result}"} 1\nkeyless_edge_staged_certificate_check{key_name="site-2",result="ok"} 0\n`;
    const mismatch = await refusal(
      step(
        'promote',
        slot,
        { edgeAdminUrls: ['http://edge-a:9090'] },
        { fetchText: () => Promise.resolve(metrics('key_mismatch')) },
      ),
    );
    expect(mismatch.message).toMatch(/edge-a:9090: reports key_mismatch for site-2/);
    const notYet = await refusal(
      step('promote', slot, { edgeAdminUrls: ['http://edge-b:9090'] }, { fetchText: () => Promise.resolve('') }),
    );
    expect(notYet.message).toMatch(/has not loaded the staged certificate/);
    expect(notYet.hint).toMatch(/SIGHUP/);
    expect(await entries()).toEqual([
      ['site-1', 'live', 'site'],
      ['site-2', 'staged', 'site'],
    ]);
  });

  it('promote: dry run, then site-2 live, site-1 retiring, live alias → site-2; re-run does nothing', async () => {
    const dry = await step('promote', slot, { dryRun: true });
    expect(dry.actions).toEqual([
      expect.stringMatching(/^would mark site-2 live/),
      expect.stringMatching(/^would mark site-1 retiring/),
      expect.stringMatching(/^would point .*site at site-2/),
    ]);
    const ok = 'keyless_edge_staged_certificate_check{key_name="site-2",result="ok"} 1\n';
    const r = await step(
      'promote',
      slot,
      { edgeAdminUrls: ['http://edge-a:9090'] },
      { fetchText: () => Promise.resolve(ok) },
    );
    expect(r.state.next).toBe('retire');
    expect(await entries()).toEqual([
      ['site-1', 'retiring', 'site'],
      ['site-2', 'live', 'site'],
    ]);
    const site2 = (await kms.send(new DescribeKeyCommand({ KeyId: `${PREFIX}site-2` }))).KeyMetadata!.KeyId;
    expect(r.state.liveAliasTarget).toBe(site2);
    expect((await step('promote', slot)).alreadyDone).toBe(true);
  });

  it('retire refuses before the drain period, then removes site-1 and disables its key; re-run does nothing', async () => {
    const early = await refusal(step('retire', slot, { drainSeconds: 3600 }));
    expect(early.exitCode).toBe(2);
    expect(early.message).toMatch(/drain period is not over: promoted \d+ s ago, drain is 3600 s/);
    expect(early.hint).toMatch(/again in \d+ s/);
    expect(defaultDrainSeconds(60)).toBe(130);
    const dry = await step('retire', slot, { now: new Date(Date.now() + 7200_000), dryRun: true });
    expect(dry.actions).toEqual([
      expect.stringMatching(/^would remove site-1/),
      expect.stringMatching(/^would disable KMS key site-1/),
    ]);
    const r = await step('retire', slot, { now: new Date(Date.now() + 7200_000) });
    expect(r.actions).toHaveLength(2);
    expect(await entries()).toEqual([['site-2', 'live', 'site']]);
    expect(await keyState('site-1')).toBe('Disabled');
    expect(await keyState('site-2')).toBe('Enabled');
    expect(r.state.next).toBe('new-key');
    expect((await step('retire', slot)).alreadyDone).toBe(true);
  });
});

describe('keyless rotate: resuming and edge cases', () => {
  it('retire finishes a retire that stopped after removing the entry (the old key is still enabled)', async () => {
    const slot = 'api';
    await step('new-key', slot);
    await step('issue', slot, { ca, dnsNames: ['api.example.test'] });
    await step('promote', slot);
    await step('new-key', slot);
    await step('issue', slot, { ca });
    await step('promote', slot);
    // Simulate a crash between "remove entry" and "disable key".
    await store.remove('api-1');
    const plan = await rotationPlan(base(slot), deps);
    expect(plan.state).toMatchObject({ orphanKeys: ['api-1'], next: 'retire' });
    const r = await step('retire', slot, { deleteKeyAfterDays: 7 });
    expect(r.actions).toEqual([
      expect.stringMatching(/^disable KMS key api-1/),
      expect.stringMatching(/^schedule deletion of KMS key api-1 .* in 7 days/),
    ]);
    expect(await keyState('api-1')).toBe('PendingDeletion');
    expect(await keyState('api-2')).toBe('Enabled');
  });

  it('promote finishes a promote that stopped before moving the live alias', async () => {
    const slot = 'half';
    await step('new-key', slot);
    await step('issue', slot, { ca, dnsNames: ['half.example.test'] });
    await step('promote', slot);
    await step('new-key', slot);
    await step('issue', slot, { ca });
    // Simulate a crash after the store writes, before UpdateAlias.
    const all = await store.list();
    await store.put({ ...all.find((e) => e.keyName === 'half-2')!, state: 'live' });
    await store.put({ ...all.find((e) => e.keyName === 'half-1')!, state: 'retiring' });
    const half1 = (await kms.send(new DescribeKeyCommand({ KeyId: `${PREFIX}half-1` }))).KeyMetadata!.KeyId;
    expect((await rotationPlan(base(slot), deps)).state.liveAliasTarget).toBe(half1);
    // Retire refuses: the alias still points at the old key.
    expect((await refusal(step('retire', slot, { force: true }))).message).toMatch(
      /does not point at the live key half-2/,
    );
    const dry = await step('promote', slot, { dryRun: true });
    expect(dry.actions).toEqual([expect.stringMatching(/^would point alias\/keyless\/dev\/keys\/half at half-2/)]);
    const r = await step('promote', slot);
    expect(r.actions).toEqual([expect.stringMatching(/^point alias\/keyless\/dev\/keys\/half at half-2/)]);
    const half2 = (await kms.send(new DescribeKeyCommand({ KeyId: `${PREFIX}half-2` }))).KeyMetadata!.KeyId;
    expect(r.state).toMatchObject({ liveAliasTarget: half2, next: 'retire' });
  });

  it('promote refuses a staged certificate that is not valid yet', async () => {
    const slot = 'future';
    await step('new-key', slot);
    const later = new Date(Date.now() + 2 * 86_400_000);
    await step('import', slot, {
      chainText: await chainFor('future-1', ['future.example.test'], later),
      now: new Date(later.getTime() + 60_000),
    });
    const r = await refusal(step('promote', slot));
    expect(r.message).toMatch(/not valid before/);
    expect(r.hint).toMatch(/notBefore/);
  });

  it('promote refuses a staged entry whose certificate does not match its key', async () => {
    const slot = 'swap';
    await step('new-key', slot);
    await step('issue', slot, { ca, dnsNames: ['swap.example.test'] });
    // Tamper with the store: the staged entry now carries another key's certificate.
    const other = await chainFor('site-2', ['swap.example.test']);
    const [e] = (await store.list()).filter((x) => x.keyName === 'swap-1');
    await store.put({ ...e, chainPem: other });
    const r = await refusal(step('promote', slot));
    expect(r.message).toMatch(/does not match the key/);
  });

  it('promote refuses when the key service holds another public key for the name', async () => {
    const slot = 'ks';
    await step('new-key', slot);
    await step('issue', slot, { ca, dnsNames: ['ks.example.test'] });
    const wrong = (await store.list()).find((x) => x.keyName === 'site-2')!;
    const spki = new (await import('node:crypto')).X509Certificate(
      wrong.chainPem.slice(0, wrong.chainPem.indexOf('-----END CERTIFICATE-----') + 25),
    ).publicKey.export({ type: 'spki', format: 'der' });
    const keyService = {
      name: 'key service test',
      ping: () => Promise.reject(new Error('unused')),
      publicKey: () => Promise.resolve({ spki: spki.toString('base64'), keySpec: 'ECC_NIST_P256' }),
    };
    const r = await refusal(step('promote', slot, {}, { keyService }));
    expect(r.message).toMatch(/key service test holds a different public key for ks-1/);
  });
});

describe('keyless rotate on the command line', () => {
  const run = async (argv: string[]) => {
    let out = '';
    let err = '';
    const code = await main(argv, {
      streams: { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } },
    });
    return { code, out, err };
  };

  it('--help describes every step', async () => {
    const r = await run(['rotate', '--help']);
    expect(r.code).toBe(0);
    for (const s of ['new-key', 'csr', 'issue', 'import', 'promote', 'retire', '--dry-run', '--drain-seconds'])
      expect(r.out).toContain(s);
  });

  it('usage errors exit 64; refusals exit 2 with advice; the plan exits 0', async () => {
    expect((await run(['rotate'])).code).toBe(64);
    const bad = await run(['rotate', 'site', 'explode', '--local', '--dev-dir', dir]);
    expect(bad.code).toBe(64);
    expect(bad.err).toMatch(/unknown step "explode"/);
    const early = await run([
      'rotate',
      'cli',
      'promote',
      '--local',
      '--dev-dir',
      dir,
      '--edge-admin',
      'http://127.0.0.1:1',
    ]);
    expect(early.code).toBe(2);
    expect(early.err).toMatch(/keyless rotate: slot cli has no staged certificate to promote\n {2}Import one first/);
    const plan = await run(['rotate', 'site', '--local', '--dev-dir', dir, '--json']);
    expect(plan.code).toBe(0);
    expect(JSON.parse(plan.out)).toMatchObject({ step: 'plan', state: { slot: 'site', next: 'new-key' } });
    const human = await run(['rotate', 'site', '--local', '--dev-dir', dir]);
    expect(human.out).toMatch(/slot site: live alias alias\/keyless\/dev\/keys\/site → /);
    expect(human.out).toMatch(/live +site-2/);
  });

  it('a whole rotation through the command line', async () => {
    const args = ['--local', '--dev-dir', dir, '--quiet'];
    expect((await run(['rotate', 'cli', 'new-key', ...args])).code).toBe(0);
    const csrFile = path.join(dir, 'cli.csr');
    const csr = await run(['rotate', 'cli', 'csr', '--dns', 'cli.example.test', '--out', csrFile, ...args]);
    expect(csr.code).toBe(0);
    expect(fs.readFileSync(csrFile, 'utf8')).toMatch(/BEGIN CERTIFICATE REQUEST/);
    const issued = await issueCertificate({ csrPem: fs.readFileSync(csrFile, 'utf8'), ca, days: 30 }, { kms });
    const certFile = path.join(dir, 'cli.chain.pem');
    fs.writeFileSync(certFile, issued.chainPem);
    expect((await run(['rotate', 'cli', 'import', '--cert', certFile, ...args])).code).toBe(0);
    // --local checks the local edge's /metrics by default; there is none here, so name none.
    const promote = await run(['rotate', 'cli', 'promote', '--json', ...args, '--edge-admin', 'http://127.0.0.1:1']);
    expect(promote.code).toBe(2);
    expect(promote.err).toMatch(/not every edge is ready/);
    // Without --edge-admin (and no local edge in the state file) no edge is asked.
    const promoted = await run(['rotate', 'cli', 'promote', '--json', ...args]);
    expect(promoted.code).toBe(0);
    expect(JSON.parse(promoted.out)).toMatchObject({ step: 'promote', state: { next: 'new-key' } });
  });
});

describe('keyless rotate new-key --key-policy', () => {
  it('creates the generation with the given key policy (the pinning of the CDK-made keys)', async () => {
    const policy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'KeyServiceOnly',
          Effect: 'Allow',
          Principal: { AWS: 'arn:aws:iam::111122223333:role/ks' },
          Action: 'kms:Sign',
          Resource: '*',
        },
      ],
    });
    const made = await step('new-key', 'pinned', { keyPolicy: policy });
    expect(made.state).toMatchObject({ pendingKey: 'pinned-1' });
    const stored = await kms.send(
      new GetKeyPolicyCommand({
        KeyId: (await kms.send(new DescribeKeyCommand({ KeyId: `${PREFIX}pinned-1` }))).KeyMetadata!.KeyId,
        PolicyName: 'default',
      }),
    );
    expect(stored.Policy).toBe(policy);
  });
});
