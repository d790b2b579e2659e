/**
 * `keyless keys create` and `keyless csr` against the local KMS endpoint, through the real command
 * line (in-process `main`, `--local` via a temporary stack.json). CSRs are checked by openssl
 * (`openssl req -verify`) and by @peculiar/x509, and their public key against KMS's.
 */
import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  GetKeyPolicyCommand,
  GetPublicKeyCommand,
  ListResourceTagsCommand,
} from '@aws-sdk/client-kms';
import * as x509 from '@peculiar/x509';
import { parseKeysConfig } from '../../../../lambdas/key-service/config';
import { createCsr } from '../../../../bin/cli/csr';
import { createKey } from '../../../../bin/cli/keys';
import { CliError, EXIT } from '../../../../bin/cli/errors';
import { type CliEnv, haveTool, startCliEnv } from '../../cli-harness';

const PREFIX = 'alias/keyless/dev/keys/';
const OPENSSL = haveTool('openssl');
if (!OPENSSL) console.log('cli-keys-csr: openssl not installed; the openssl CSR checks are skipped');

let env: CliEnv;
beforeAll(async () => {
  env = await startCliEnv();
});
afterAll(async () => {
  await env?.close();
});

const spkiOf = async (keyId: string): Promise<Buffer> =>
  Buffer.from((await env.kmsClient.send(new GetPublicKeyCommand({ KeyId: keyId }))).PublicKey!);

describe('keyless keys create', () => {
  test.each([
    ['site-rsa-1', 'RSA_2048'],
    ['site-rsa4k-1', 'RSA_4096'],
    ['site-ec-1', 'ECC_NIST_P256'],
    ['site-ec384-1', 'ECC_NIST_P384'],
  ])('kms %s (%s): key, alias, tags, printed public key', async (name, spec) => {
    const r = await env.run(
      'keys',
      'create',
      '--local',
      '--name',
      name,
      '--key-spec',
      spec,
      '--tag',
      'team=edge',
      '--json',
      '--quiet',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(EXIT.ok);
    const out = r.json<{
      alias: string;
      keyId: string;
      keySpec: string;
      created: boolean;
      publicKey: string;
      publicKeySha256: string;
      custody: string;
    }>();
    expect(out).toMatchObject({ alias: `${PREFIX}${name}`, keySpec: spec, created: true, custody: 'kms' });
    const meta = (await env.kmsClient.send(new DescribeKeyCommand({ KeyId: `${PREFIX}${name}` }))).KeyMetadata!;
    expect(meta.KeyId).toBe(out.keyId);
    expect(meta.KeySpec).toBe(spec);
    expect(meta.KeyUsage).toBe('SIGN_VERIFY');
    const spki = await spkiOf(out.keyId);
    expect(Buffer.from(out.publicKey, 'base64').equals(spki)).toBe(true);
    expect(out.publicKeySha256).toBe(crypto.createHash('sha256').update(spki).digest('hex'));
    const tags = (await env.kmsClient.send(new ListResourceTagsCommand({ KeyId: out.keyId }))).Tags ?? [];
    expect(tags).toEqual(
      expect.arrayContaining([
        { TagKey: 'team', TagValue: 'edge' },
        { TagKey: 'keyless:key-name', TagValue: name },
        { TagKey: 'keyless:deployment', TagValue: 'dev' },
      ]),
    );
  });

  test('human output names the alias, key id and the next step', async () => {
    const r = await env.run('keys', 'create', '--local', '--name', 'human-1', '--key-spec', 'ECC_NIST_P256');
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toMatch(/created kms key human-1 \(ECC_NIST_P256\)/);
    expect(r.stdout).toContain(`alias:      ${PREFIX}human-1`);
    expect(r.stdout).toMatch(/next: keyless csr --key human-1/);
    expect(r.stderr).toMatch(/creating KMS key ECC_NIST_P256/); // progress on stderr
  });

  test('an existing name is refused (exit 2); --if-exists reuse returns the same key', async () => {
    const first = (
      await env.run('keys', 'create', '--local', '--name', 'dup-1', '--key-spec', 'ECC_NIST_P256', '--json')
    ).json<{ keyId: string }>();
    const again = await env.run('keys', 'create', '--local', '--name', 'dup-1', '--key-spec', 'ECC_NIST_P256');
    expect(again.code).toBe(EXIT.refused);
    expect(again.stderr).toMatch(/key name dup-1 already exists/);
    expect(again.stderr).toMatch(/immutable/);
    const reused = await env.run(
      'keys',
      'create',
      '--local',
      '--name',
      'dup-1',
      '--key-spec',
      'ECC_NIST_P256',
      '--if-exists',
      'reuse',
      '--json',
    );
    expect(reused.code).toBe(EXIT.ok);
    expect(reused.json()).toMatchObject({ keyId: first.keyId, created: false });
    // Reuse never papers over a different spec.
    const other = await env.run(
      'keys',
      'create',
      '--local',
      '--name',
      'dup-1',
      '--key-spec',
      'RSA_2048',
      '--if-exists',
      'reuse',
    );
    expect(other.code).toBe(EXIT.refused);
    expect(other.stderr).toMatch(/is a ECC_NIST_P256 SIGN_VERIFY key, not RSA_2048/);
  });

  test('sealed: a KMS-generated RSA pair, printed as the KEYLESS_KEYS entry the key service accepts', async () => {
    const wrap = await env.kmsClient.send(
      new CreateKeyCommand({ KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT' }),
    );
    await env.kmsClient.send(
      new CreateAliasCommand({ AliasName: 'alias/keyless/dev/sealed-wrapping', TargetKeyId: wrap.KeyMetadata!.KeyId! }),
    );
    const r = await env.run(
      'keys',
      'create',
      '--local',
      '--custody',
      'sealed',
      '--name',
      'legacy-1',
      '--key-spec',
      'RSA_2048',
      '--out',
      'legacy-1.json',
      '--json',
      '--quiet',
    );
    expect(r.code).toBe(EXIT.ok);
    const out = r.json<{
      custody: string;
      keyServiceEntry: Record<string, string>;
      publicKey: string;
      alias?: string;
    }>();
    expect(out.custody).toBe('sealed');
    expect(out.alias).toBeUndefined();
    // The key service's own validator accepts the entry as is.
    const [entry] = parseKeysConfig(JSON.stringify([out.keyServiceEntry]));
    expect(entry).toMatchObject({
      name: 'legacy-1',
      custody: 'sealed',
      wrappingKeyId: 'alias/keyless/dev/sealed-wrapping',
    });
    const pub = crypto.createPublicKey({ key: Buffer.from(out.publicKey, 'base64'), format: 'der', type: 'spki' });
    expect(pub.asymmetricKeyDetails?.modulusLength).toBe(2048);
    const file = path.join(env.dir, 'legacy-1.json');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual(out.keyServiceEntry);
    // Never overwritten.
    const again = await env.run(
      'keys',
      'create',
      '--local',
      '--custody',
      'sealed',
      '--name',
      'legacy-2',
      '--out',
      'legacy-1.json',
    );
    expect(again.code).toBe(EXIT.refused);
    expect(again.stderr).toMatch(/legacy-1.json already exists/);
    // Human output says what to do with it.
    const human = await env.run('keys', 'create', '--local', '--custody', 'sealed', '--name', 'legacy-3');
    expect(human.code).toBe(EXIT.ok);
    expect(human.stdout).toMatch(/add this entry to the key service's KEYLESS_KEYS and redeploy/);
  });

  test.each([
    [['--name', 'bad.name'], /key name "bad.name" is not valid/],
    [['--name', 'x', '--key-spec', 'RSA_1024'], /--key-spec RSA_1024 is not one of/],
    [['--name', 'x', '--custody', 'file'], /--custody file is not one of kms, sealed/],
    [['--name', 'x', '--custody', 'sealed', '--key-spec', 'ECC_NIST_P256'], /sealed keys are RSA key pairs/],
    [['--name', 'x', '--tag', 'novalue'], /--tag "novalue" is not KEY=VALUE/],
    [['--name', 'x', '--tag', 'keyless:x=1'], /reserved/],
    [['--key-spec', 'RSA_2048'], /--name is required/],
    [['--name', 'x', '--alias-prefix', 'alias/aws/'], /alias prefix "alias\/aws\/" is not valid/],
  ])('usage error %j → exit 64', async (argv, message) => {
    const r = await env.run('keys', 'create', '--local', ...(argv as string[]));
    expect(r.code).toBe(EXIT.usage);
    expect(r.stderr).toMatch(message as RegExp);
    expect(r.stdout).toBe('');
  });

  test('the core refuses through CliError, for rotate to build on', async () => {
    await expect(
      createKey(
        { name: 'dup-1', custody: 'kms', keySpec: 'ECC_NIST_P256', aliasPrefix: PREFIX },
        { kms: env.kmsClient },
      ),
    ).rejects.toMatchObject({ exitCode: EXIT.refused });
  });
});

describe('keyless csr', () => {
  const csrFor = async (name: string, spec: string, dns: string[]): Promise<{ pem: string; keyId: string }> => {
    const created = (await env.run('keys', 'create', '--local', '--name', name, '--key-spec', spec, '--json')).json<{
      keyId: string;
    }>();
    const r = await env.run('csr', '--local', '--key', name, ...dns.flatMap((d) => ['--dns', d]));
    expect(r.code).toBe(EXIT.ok);
    return { pem: r.stdout, keyId: created.keyId };
  };

  test.each([
    ['RSA_2048', 'csr-rsa-1', '1.2.840.113549.1.1.11'], // sha256WithRSAEncryption
    ['RSA_3072', 'csr-rsa3k-1', '1.2.840.113549.1.1.11'],
    ['ECC_NIST_P256', 'csr-ec-1', '1.2.840.10045.4.3.2'], // ecdsa-with-SHA256
    ['ECC_NIST_P384', 'csr-ec384-1', '1.2.840.10045.4.3.3'], // ecdsa-with-SHA384
  ])('%s: signed by the KMS key, verified by x509 and openssl', async (spec, name, sigOid) => {
    const { pem, keyId } = await csrFor(name, spec, ['Example.com', 'www.example.com', '*.api.example.com']);
    expect(pem).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----\n[\s\S]+-----END CERTIFICATE REQUEST-----\n$/);
    const csr = new x509.Pkcs10CertificateRequest(pem);
    expect(await csr.verify()).toBe(true);
    expect(Buffer.from(csr.publicKey.rawData).equals(await spkiOf(keyId))).toBe(true);
    expect(csr.subject).toBe('CN=example.com');
    expect(csr.signatureAlgorithm).toMatchObject({ name: spec.startsWith('RSA') ? 'RSASSA-PKCS1-v1_5' : 'ECDSA' });
    const san = csr.extensions.find(
      (e): e is x509.SubjectAlternativeNameExtension => e instanceof x509.SubjectAlternativeNameExtension,
    )!;
    expect(san.names.items.map((n) => n.value)).toEqual(['example.com', 'www.example.com', '*.api.example.com']);
    if (OPENSSL) {
      const file = path.join(env.dir, `${name}.csr`);
      fs.writeFileSync(file, pem);
      const text = execFileSync('openssl', ['req', '-in', file, '-verify', '-noout', '-text'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      expect(text).toMatch(/DNS:example.com, DNS:www.example.com, DNS:\*.api.example.com/);
      // openssl prints "verify OK" (to stderr in 3.0); the exit status is the check.
      const asn1 = execFileSync('openssl', ['asn1parse', '-in', file], { encoding: 'utf8' });
      expect(asn1).toContain(
        sigOid === '1.2.840.113549.1.1.11'
          ? 'sha256WithRSAEncryption'
          : sigOid === '1.2.840.10045.4.3.2'
            ? 'ecdsa-with-SHA256'
            : 'ecdsa-with-SHA384',
      );
    }
  });

  test('--out writes the file; --json describes the request; --subject is used', async () => {
    await env.run('keys', 'create', '--local', '--name', 'csr-out-1', '--key-spec', 'ECC_NIST_P256');
    const r = await env.run(
      'csr',
      '--local',
      '--key',
      'csr-out-1',
      '--dns',
      'a.example',
      '--subject',
      'CN=a.example, O=Example Ltd',
      '--out',
      'out/a.csr',
      '--json',
    );
    expect(r.code).toBe(EXIT.ok);
    const out = r.json<{ file: string; dnsNames: string[]; keySpec: string; subject: string }>();
    expect(out.file).toBe(path.join(env.dir, 'out/a.csr'));
    expect(out).toMatchObject({ dnsNames: ['a.example'], keySpec: 'ECC_NIST_P256' });
    expect(out.subject).toMatch(/O=Example Ltd/);
    expect(await new x509.Pkcs10CertificateRequest(fs.readFileSync(out.file, 'utf8')).verify()).toBe(true);
  });

  test('refusals and usage errors', async () => {
    const missing = await env.run('csr', '--local', '--key', 'nope-1', '--dns', 'example.com');
    expect(missing.code).toBe(EXIT.refused);
    expect(missing.stderr).toMatch(/there is no key named nope-1 \(no alias alias\/keyless\/dev\/keys\/nope-1\)/);
    expect(missing.stderr).toMatch(/keyless keys create --name nope-1/);
    const noDns = await env.run('csr', '--local', '--key', 'csr-out-1');
    expect(noDns.code).toBe(EXIT.usage);
    expect(noDns.stderr).toMatch(/--dns is required/);
    const badDns = await env.run('csr', '--local', '--key', 'csr-out-1', '--dns', 'exa mple.com');
    expect(badDns.code).toBe(EXIT.usage);
    expect(badDns.stderr).toMatch(/is not a DNS name/);
    const badWildcard = await env.run('csr', '--local', '--key', 'csr-out-1', '--dns', 'www.*.example.com');
    expect(badWildcard.code).toBe(EXIT.usage);
  });

  test('an unreachable KMS is exit 69 with what to check, for keys create and csr alike', async () => {
    const dead = path.join(env.dir, 'dead');
    fs.mkdirSync(dead, { recursive: true });
    fs.writeFileSync(path.join(dead, 'stack.json'), JSON.stringify({ kmsUrl: 'http://127.0.0.1:9' }));
    for (const argv of [
      ['keys', 'create', '--name', 'x-1'],
      ['csr', '--key', 'x-1', '--dns', 'example.com'],
    ]) {
      const r = await env.run(...argv, '--local', '--dev-dir', dead, '--quiet');
      expect(r.code).toBe(EXIT.unavailable);
      expect(r.stderr).toMatch(
        /the endpoint is unreachable \(ECONNREFUSED\)\n {2}Check --region and the AWS_ENDPOINT_URL_\* variables/,
      );
    }
  });

  test('a disabled key cannot sign a request', async () => {
    const created = (
      await env.run('keys', 'create', '--local', '--name', 'csr-disabled-1', '--key-spec', 'ECC_NIST_P256', '--json')
    ).json<{ keyId: string }>();
    const { DisableKeyCommand } = await import('@aws-sdk/client-kms');
    await env.kmsClient.send(new DisableKeyCommand({ KeyId: created.keyId }));
    const err = await createCsr(
      { keyName: 'csr-disabled-1', aliasPrefix: PREFIX, dnsNames: ['example.com'] },
      { kms: env.kmsClient },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect(err).toMatchObject({
      exitCode: EXIT.refused,
      message: expect.stringMatching(/is Disabled and cannot sign/),
    });
  });
});

describe('keyless keys create --key-policy', () => {
  test('the policy document is given to KMS with the new key', async () => {
    const policy = {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'KeyService',
          Effect: 'Allow',
          Principal: { AWS: 'arn:aws:iam::111122223333:role/key-service' },
          Action: 'kms:Sign',
          Resource: '*',
        },
      ],
    };
    const file = path.join(env.dir, 'policy.json');
    fs.writeFileSync(file, JSON.stringify(policy));
    const r = await env.run(
      'keys',
      'create',
      '--local',
      '--name',
      'pinned-1',
      '--key-spec',
      'ECC_NIST_P256',
      '--key-policy',
      file,
      '--json',
      '--quiet',
    );
    expect(r.code).toBe(EXIT.ok);
    const stored = await env.kmsClient.send(
      new GetKeyPolicyCommand({ KeyId: r.json<{ keyId: string }>().keyId, PolicyName: 'default' }),
    );
    expect(JSON.parse(stored.Policy!)).toEqual(policy);
  });

  test.each([
    ['not JSON', '{"Statement": [', /is not valid JSON/],
    ['no statement', '{"Version": "2012-10-17"}', /has no Statement/],
  ])('a policy file that is %s is a usage error (exit 64) and no key is made', async (_what, text, message) => {
    const file = path.join(env.dir, `bad-policy-${crypto.randomUUID()}.json`);
    fs.writeFileSync(file, text);
    const r = await env.run(
      'keys',
      'create',
      '--local',
      '--name',
      'unpinned-1',
      '--key-spec',
      'ECC_NIST_P256',
      '--key-policy',
      file,
    );
    expect(r.code).toBe(EXIT.usage);
    expect(r.stderr).toMatch(message);
    await expect(env.kmsClient.send(new DescribeKeyCommand({ KeyId: `${PREFIX}unpinned-1` }))).rejects.toThrow(
      /not found|NotFound|is not found/i,
    );
  });
});
