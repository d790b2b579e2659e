/**
 * `keyless cert issue` (local dev CA, key in the local KMS) and `keyless cert import` with every
 * refusal, through the real command line against the local KMS endpoint and a temporary directory
 * certificate store. Issued chains are checked by `openssl verify`; stored entries by the edge's own
 * parser (edge-proxy/src/cert-store).
 */
import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DirectoryCertificateStore } from '../../../../edge-proxy/src/cert-store';
import { issueCertificate } from '../../../../bin/cli/cert-issue';
import { checkCertificateChain, importCertificate } from '../../../../bin/cli/cert-import';
import { EXIT } from '../../../../bin/cli/errors';
import { DEFAULT_CA_ALIAS, issueLeaf } from '../../../../local/dev-pki';
import { type CliEnv, haveTool, startCliEnv } from '../../cli-harness';

const PREFIX = 'alias/keyless/dev/keys/';
const DAY = 86_400_000;
const OPENSSL = haveTool('openssl');
if (!OPENSSL) console.log('cli-cert: openssl not installed; the openssl verify checks are skipped');

let env: CliEnv;
let caPem: string;
let otherCaPem: string;

const write = (name: string, text: string): string => {
  fs.writeFileSync(path.join(env.dir, name), text);
  return name;
};
const read = (name: string): string => fs.readFileSync(path.join(env.dir, name), 'utf8');
const certsOf = (pem: string): string[] =>
  pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? [];

/** key + CSR through the CLI; returns the CSR file name. */
async function keyWithCsr(name: string, spec: string, dns: string[]): Promise<string> {
  expect((await env.run('keys', 'create', '--local', '--name', name, '--key-spec', spec, '--quiet')).code).toBe(
    EXIT.ok,
  );
  const r = await env.run(
    'csr',
    '--local',
    '--key',
    name,
    ...dns.flatMap((d) => ['--dns', d]),
    '--out',
    `${name}.csr`,
    '--quiet',
  );
  expect(r.code).toBe(EXIT.ok);
  return `${name}.csr`;
}

/** A chain issued by the dev CA with a chosen clock (for expired / not-yet-valid certificates). */
async function chainAt(csrFile: string, now: Date, days: number): Promise<string> {
  const issued = await issueCertificate(
    { csrPem: read(csrFile), ca: { kind: 'dev', caAlias: DEFAULT_CA_ALIAS, caCertPem: caPem }, days, now },
    { kms: env.kmsClient },
  );
  return issued.chainPem;
}

beforeAll(async () => {
  env = await startCliEnv();
  caPem = await env.devCa();
  otherCaPem = await env.devCa('alias/keyless/dev/other-ca', 'other-ca.pem');
  await keyWithCsr('site-1', 'ECC_NIST_P256', ['example.com', 'www.example.com']);
  await keyWithCsr('site-2', 'RSA_2048', ['example.com', 'www.example.com']);
  await keyWithCsr('api-1', 'ECC_NIST_P384', ['api.example.com']);
});
afterAll(async () => {
  await env?.close();
});

describe('keyless cert issue --dev-ca', () => {
  test.each([['site-1'], ['site-2'], ['api-1']])(
    '%s: a chain the CA verifies, for the CSR key and names',
    async (name) => {
      const r = await env.run(
        'cert',
        'issue',
        '--local',
        '--dev-ca',
        '--csr',
        `${name}.csr`,
        '--days',
        '30',
        '--out',
        `${name}.chain.pem`,
        '--json',
      );
      expect(r.code).toBe(EXIT.ok);
      const out = r.json<{ file: string; notBefore: string; notAfter: string; dnsNames: string[] }>();
      const chain = certsOf(read(`${name}.chain.pem`));
      expect(chain).toHaveLength(2);
      expect(chain[1].trim()).toBe(caPem.trim());
      const leaf = new crypto.X509Certificate(chain[0]);
      expect(leaf.verify(new crypto.X509Certificate(caPem).publicKey)).toBe(true);
      const kmsKey = (
        await env.run(
          'keys',
          'create',
          '--local',
          '--name',
          name,
          '--if-exists',
          'reuse',
          '--key-spec',
          name === 'site-2' ? 'RSA_2048' : name === 'api-1' ? 'ECC_NIST_P384' : 'ECC_NIST_P256',
          '--json',
        )
      ).json<{ publicKey: string }>();
      expect(leaf.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')).toBe(kmsKey.publicKey);
      expect(leaf.subjectAltName).toBe(out.dnsNames.map((d) => `DNS:${d}`).join(', '));
      const days = (new Date(out.notAfter).getTime() - Date.now()) / DAY;
      expect(days).toBeGreaterThan(29);
      expect(days).toBeLessThanOrEqual(30);
      if (OPENSSL) {
        write(`${name}.leaf.pem`, chain[0]);
        const verified = execFileSync(
          'openssl',
          [
            'verify',
            '-CAfile',
            path.join(env.dir, 'ca.pem'),
            '-purpose',
            'sslserver',
            path.join(env.dir, `${name}.leaf.pem`),
          ],
          { encoding: 'utf8' },
        );
        expect(verified.trim()).toBe(`${path.join(env.dir, `${name}.leaf.pem`)}: OK`);
      }
    },
  );

  test('stdout without --out is the PEM chain', async () => {
    const r = await env.run('cert', 'issue', '--local', '--dev-ca', '--csr', 'site-1.csr', '--quiet');
    expect(r.code).toBe(EXIT.ok);
    expect(certsOf(r.stdout)).toHaveLength(2);
  });

  test('a request with a broken signature is refused before the CA signs anything', async () => {
    const der = Buffer.from(read('site-1.csr').replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
    der[der.length - 5] ^= 0x01; // inside the signature value
    write(
      'tampered.csr',
      `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`,
    );
    const signsBefore = env.kms.stats.operations.Sign ?? 0;
    const r = await env.run('cert', 'issue', '--local', '--dev-ca', '--csr', 'tampered.csr');
    expect(r.code).toBe(EXIT.refused);
    expect(r.stderr).toMatch(/invalid signature/);
    expect(env.kms.stats.operations.Sign ?? 0).toBe(signsBefore);
  });

  test('usage errors: no CA, two CAs, missing file, bad ARN, bad days', async () => {
    const cases: [string[], RegExp][] = [
      [['--csr', 'site-1.csr'], /give exactly one CA/],
      [
        [
          '--csr',
          'site-1.csr',
          '--dev-ca',
          '--pca-arn',
          'arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/abc',
        ],
        /give exactly one CA/,
      ],
      [['--csr', 'nope.csr', '--dev-ca'], /cannot read certificate request nope.csr: ENOENT/],
      [['--dev-ca'], /--csr is required/],
      [['--csr', 'site-1.csr', '--pca-arn', 'not-an-arn'], /is not a private CA ARN/],
      [['--csr', 'site-1.csr', '--dev-ca', '--days', '0'], /--days 0 is not a whole number from 1 to 3650/],
      [['--csr', 'site-1.csr', '--dev-ca', '--days', 'ten'], /--days ten/],
    ];
    for (const [argv, message] of cases) {
      const r = await env.run('cert', 'issue', '--local', ...argv);
      expect({ argv, code: r.code }).toEqual({ argv, code: EXIT.usage });
      expect(r.stderr).toMatch(message);
    }
  });

  test("a CA certificate that is not the KMS CA key's is refused", async () => {
    const r = await env.run('cert', 'issue', '--local', '--dev-ca', '--csr', 'site-1.csr', '--ca-cert', 'other-ca.pem');
    expect(r.code).toBe(EXIT.refused);
    expect(r.stderr).toMatch(/CA certificate does not belong to the KMS key alias\/keyless\/dev\/ca/);
  });
});

describe('keyless cert import', () => {
  const store = (): DirectoryCertificateStore => new DirectoryCertificateStore(env.certDir);
  const entry = async (id: string) => (await store().list()).find((e) => e.id === id);

  beforeAll(async () => {
    for (const name of ['site-1', 'site-2', 'api-1']) {
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
          )
        ).code,
      ).toBe(EXIT.ok);
    }
  });

  test('first certificate of a slot with --live; the edge parser reads the entry back', async () => {
    const r = await env.run(
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
      '--ca',
      'ca.pem',
      '--json',
    );
    expect(r.code).toBe(EXIT.ok);
    expect(r.json()).toMatchObject({
      id: 'site-1',
      slot: 'site',
      state: 'live',
      hostnames: ['example.com', 'www.example.com'],
      publicKeySource: 'kms',
      replaced: false,
    });
    // The slot's live alias is created with the first live certificate.
    const { DescribeKeyCommand } = await import('@aws-sdk/client-kms');
    const alias = (await env.kmsClient.send(new DescribeKeyCommand({ KeyId: `${PREFIX}site` }))).KeyMetadata!.KeyId;
    expect(alias).toBe(
      (await env.kmsClient.send(new DescribeKeyCommand({ KeyId: `${PREFIX}site-1` }))).KeyMetadata!.KeyId,
    );
    expect(r.json()).toMatchObject({ liveAlias: `${PREFIX}site` });
    const stored = await entry('site-1');
    expect(stored).toMatchObject({
      keyName: 'site-1',
      slot: 'site',
      state: 'live',
      hostnames: ['example.com', 'www.example.com'],
    });
    expect(stored!.chainPem).toBe(read('site-1.chain.pem'));
  });

  test('the next generation goes in staged; a second live certificate for the slot is refused', async () => {
    const live = await env.run(
      'cert',
      'import',
      '--local',
      '--key',
      'site-2',
      '--slot',
      'site',
      '--chain',
      'site-2.chain.pem',
      '--live',
    );
    expect(live.code).toBe(EXIT.refused);
    expect(live.stderr).toMatch(/slot site already has a live certificate \(site-1\)/);
    expect(live.stderr).toMatch(/keyless rotate site/);
    expect(await entry('site-2')).toBeUndefined();
    const staged = await env.run(
      'cert',
      'import',
      '--local',
      '--key',
      'site-2',
      '--slot',
      'site',
      '--chain',
      'site-2.chain.pem',
    );
    expect(staged.code).toBe(EXIT.ok);
    expect(staged.stdout).toMatch(/stored staged certificate site-2 \(slot site\)/);
    expect(staged.stdout).toMatch(/promote it with keyless rotate site/);
    expect(await entry('site-2')).toMatchObject({ state: 'staged', slot: 'site' });
  });

  test("re-importing a live key's certificate as staged is refused; --live renews it in place", async () => {
    const staged = await env.run(
      'cert',
      'import',
      '--local',
      '--key',
      'site-1',
      '--slot',
      'site',
      '--chain',
      'site-1.chain.pem',
    );
    expect(staged.code).toBe(EXIT.refused);
    expect(staged.stderr).toMatch(/site-1's certificate is live; importing it as staged would stop serving it/);
    const renewed = await env.run(
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
      '--json',
    );
    expect(renewed.code).toBe(EXIT.ok);
    expect(renewed.json()).toMatchObject({ replaced: true, state: 'live' });
    const otherSlot = await env.run(
      'cert',
      'import',
      '--local',
      '--key',
      'site-1',
      '--slot',
      'other',
      '--chain',
      'site-1.chain.pem',
      '--live',
    );
    expect(otherSlot.code).toBe(EXIT.refused);
    expect(otherSlot.stderr).toMatch(/is in slot site, not other/);
  });

  describe('refusals (exit 2, nothing stored)', () => {
    const refusedImport = async (
      key: string,
      chainFile: string,
      message: RegExp,
      extra: string[] = [],
    ): Promise<void> => {
      const before = fs.existsSync(env.certDir) ? fs.readdirSync(env.certDir).sort() : [];
      const r = await env.run(
        'cert',
        'import',
        '--local',
        '--key',
        key,
        '--slot',
        'api',
        '--chain',
        chainFile,
        ...extra,
      );
      expect(r.stdout).toBe('');
      expect(r.code).toBe(EXIT.refused);
      expect(r.stderr).toMatch(message);
      // The error line is followed by a hint: what to do.
      const lines = r.stderr.split('\n');
      const at = lines.findIndex((l) => l.startsWith('keyless cert import: '));
      expect(lines[at + 1]).toMatch(/^ {2}\S/);
      expect(fs.existsSync(env.certDir) ? fs.readdirSync(env.certDir).sort() : []).toEqual(before);
    };

    test('wrong key', async () => {
      await refusedImport(
        'api-1',
        'site-1.chain.pem',
        /the certificate is not for key api-1: its public key \(sha256 [0-9a-f]{16}…\) is not the key's/,
      );
    });

    test('expired', async () => {
      write('expired.chain.pem', await chainAt('api-1.csr', new Date(Date.now() - 100 * DAY), 30));
      await refusedImport('api-1', 'expired.chain.pem', /the certificate expired on \d{4}-\d\d-\d\dT/);
    });

    test('not yet valid', async () => {
      write('future.chain.pem', await chainAt('api-1.csr', new Date(Date.now() + 5 * DAY), 30));
      await refusedImport('api-1', 'future.chain.pem', /the certificate is not valid yet: valid from/);
    });

    test('broken chain (issuer certificate of another CA)', async () => {
      write('broken.chain.pem', certsOf(read('api-1.chain.pem'))[0] + otherCaPem);
      await refusedImport(
        'api-1',
        'broken.chain.pem',
        /the chain is broken: certificate 2 did not issue certificate 1/,
      );
    });

    test('chain in the wrong order', async () => {
      const [leaf, ca] = certsOf(read('api-1.chain.pem'));
      write('reversed.chain.pem', ca + leaf);
      await refusedImport('api-1', 'reversed.chain.pem', /not for key api-1|first certificate is a CA/);
    });

    test('does not lead to the given --ca', async () => {
      await refusedImport('api-1', 'api-1.chain.pem', /the chain does not lead to the given CA/, [
        '--ca',
        'other-ca.pem',
      ]);
    });

    test('a private key in the file, even after valid certificates', async () => {
      const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
      write('with-key.pem', read('api-1.chain.pem') + privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
      await refusedImport('api-1', 'with-key.pem', /the certificate file contains a private key/);
      // ...and before any KMS call: even for a key that does not exist.
      await refusedImport('no-such-key', 'with-key.pem', /contains a private key/);
    });

    test('anything but certificates', async () => {
      write('with-csr.pem', read('api-1.chain.pem') + read('api-1.csr'));
      await refusedImport('api-1', 'with-csr.pem', /holds a CERTIFICATE REQUEST block/);
      write('empty.pem', '\n');
      await refusedImport('api-1', 'empty.pem', /holds no certificate/);
    });

    test('a host name the certificate does not cover', async () => {
      await refusedImport('api-1', 'api-1.chain.pem', /does not cover host name other.example.com/, [
        '--hostname',
        'other.example.com',
      ]);
    });

    test('a key that does not exist', async () => {
      await refusedImport('missing-1', 'api-1.chain.pem', /there is no key named missing-1/);
    });
  });

  test('the pure check accepts a good chain and reports its facts', () => {
    const leaf = new crypto.X509Certificate(certsOf(read('api-1.chain.pem'))[0]);
    const checked = checkCertificateChain(read('api-1.chain.pem'), {
      spki: leaf.publicKey.export({ type: 'spki', format: 'der' }),
      keyName: 'api-1',
      caPem,
    });
    expect(checked.hostnames).toEqual(['api.example.com']);
    expect(checked.endsAtRoot).toBe(true);
    expect(checked.certificates).toHaveLength(2);
  });

  test('the pure check covers host names by the DNS subjectAltNames only, never the subject CN (RFC 6125 §6.4.4)', () => {
    if (!OPENSSL) return;
    // A certificate without extensions: CN=cn-only.example.com and no subjectAltName.
    write('bare.cnf', '[req]\ndistinguished_name = dn\n[dn]\n');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        'cn-only.key',
        '-out',
        'cn-only.pem',
        '-days',
        '1',
        '-subj',
        '/CN=cn-only.example.com',
        '-config',
        'bare.cnf',
      ],
      { cwd: env.dir, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const leaf = new crypto.X509Certificate(read('cn-only.pem'));
    expect(leaf.checkHost('cn-only.example.com')).toBe('cn-only.example.com'); // what the CN fallback would have accepted
    const check = (): unknown =>
      checkCertificateChain(read('cn-only.pem'), {
        spki: leaf.publicKey.export({ type: 'spki', format: 'der' }),
        keyName: 'cn-only',
        hostnames: ['cn-only.example.com'],
      });
    expect(check).toThrow(/does not cover host name cn-only\.example\.com \(it names nothing\)/);
  });

  test('a sealed key: the public key comes from the key service (public_key)', async () => {
    const made = await env
      .run(
        'keys',
        'create',
        '--local',
        '--custody',
        'sealed',
        '--name',
        'legacy-1',
        '--wrapping-key',
        'alias/keyless/dev/wrap',
        '--json',
      )
      .catch((e) => e);
    // The wrapping key must exist first: the refusal names it and what to do.
    expect(made.code).toBe(EXIT.refused);
    expect(made.stderr).toMatch(/the wrapping key alias\/keyless\/dev\/wrap does not exist\n {2}Sealed keys need/);
    const { CreateKeyCommand, CreateAliasCommand } = await import('@aws-sdk/client-kms');
    const wrap = await env.kmsClient.send(
      new CreateKeyCommand({ KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT' }),
    );
    await env.kmsClient.send(
      new CreateAliasCommand({ AliasName: 'alias/keyless/dev/wrap', TargetKeyId: wrap.KeyMetadata!.KeyId! }),
    );
    const sealed = (
      await env.run(
        'keys',
        'create',
        '--local',
        '--custody',
        'sealed',
        '--name',
        'legacy-1',
        '--wrapping-key',
        'alias/keyless/dev/wrap',
        '--json',
      )
    ).json<{ keyServiceEntry: never; publicKey: string }>();
    await env.startKeyService([sealed.keyServiceEntry, { name: '*', custody: 'kms', aliasPrefix: PREFIX } as never]);
    const leafPem = await issueLeaf(env.kmsClient, {
      caAlias: DEFAULT_CA_ALIAS,
      caCertPem: caPem,
      leafPublicKey: { spki: Buffer.from(sealed.publicKey, 'base64'), keySpec: 'RSA_2048' },
      dnsNames: ['legacy.example.com'],
    });
    write('legacy-1.chain.pem', leafPem + caPem);
    const r = await env.run(
      'cert',
      'import',
      '--local',
      '--key',
      'legacy-1',
      '--slot',
      'legacy',
      '--chain',
      'legacy-1.chain.pem',
      '--live',
      '--json',
    );
    expect(r.code).toBe(EXIT.ok);
    expect(r.json()).toMatchObject({ publicKeySource: 'key-service', state: 'live' });
    // And a certificate for another key is refused by the same path.
    const { lambdaKeyService } = await import('../../../../bin/cli/key-service');
    const { LambdaClient } = await import('@aws-sdk/client-lambda');
    const stack = JSON.parse(read('stack.json')) as { keyServiceUrl: string };
    const lambda = new LambdaClient({
      endpoint: stack.keyServiceUrl,
      region: 'us-east-1',
      credentials: { accessKeyId: 'l', secretAccessKey: 'l' },
    });
    try {
      const keyService = lambdaKeyService(lambda, 'keyless-key-service');
      await expect(
        importCertificate(
          { keyName: 'legacy-1', slot: 'legacy', chainText: read('api-1.chain.pem'), state: 'live' },
          { store: store(), keyService },
        ),
      ).rejects.toMatchObject({
        exitCode: EXIT.refused,
        message: expect.stringMatching(/not for key legacy-1/),
      });
      // A name the key service does not know: its typed unknown_key becomes a refusal.
      await expect(
        importCertificate(
          { keyName: 'ghost', slot: 'legacy', chainText: read('api-1.chain.pem') },
          { store: store(), keyService },
        ),
      ).rejects.toMatchObject({
        exitCode: EXIT.refused,
        message: expect.stringMatching(/does not serve key ghost \(unknown_key\)/),
      });
    } finally {
      lambda.destroy();
    }
  });
});
