/**
 * Configuration: typed props and cdk.json context, validated with clear errors that name the field and the fix.
 * No synthesis here except the two cases that fail while the stacks are being built.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import {
  DEFAULT_EDGE,
  DEFAULT_KEY_SERVICE,
  KeylessConfigError,
  loadConfigFromContext,
  resolveConfig,
  SIGNING_ALGORITHMS,
} from '../../lib/config';
import { createKeylessStacks } from '../../lib/keyless-app';
import { cdkJsonContext, fakeSealedKey, makeCertificate, rsaKeysFromPkcs8, ROOT } from './helpers';

const minimal = {
  deployment: 'prod',
  keys: [{ name: 'web', custody: 'kms', keySpec: 'ECC_NIST_P256' }],
  edge: { origin: 'http://origin.example.com' },
};
const resolve = (raw: unknown, now?: Date) => resolveConfig(raw, { baseDir: ROOT, now });

function problems(raw: unknown): string[] {
  try {
    resolve(raw);
  } catch (e) {
    if (e instanceof KeylessConfigError) return [...e.problems];
    throw e;
  }
  throw new Error('expected the configuration to be rejected');
}

describe('defaults', () => {
  test('a minimal configuration gets production defaults', () => {
    const c = resolve(minimal);
    expect(c.edge).toEqual({ ...DEFAULT_EDGE, origin: 'http://origin.example.com' });
    expect(c.keyService).toEqual(DEFAULT_KEY_SERVICE);
    expect(c.regions).toBeUndefined();
    expect(c.keys).toEqual([
      { name: 'web', custody: 'kms', keySpec: 'ECC_NIST_P256', signingAlgorithms: ['ECDSA_SHA_256'] },
    ]);
    expect(c.alarms.kmsQuotaUtilizationPercent).toBe(80);
    expect(c.operators).toBeUndefined();
  });

  test('RSA keys may sign with PSS (TLS 1.3) and PKCS#1 v1.5 (TLS 1.2), never SHA-1', () => {
    expect(SIGNING_ALGORITHMS.RSA_2048).toEqual(
      expect.arrayContaining(['RSASSA_PSS_SHA_256', 'RSASSA_PKCS1_V1_5_SHA_256']),
    );
    expect(
      Object.values(SIGNING_ALGORITHMS)
        .flat()
        .some((a) => /SHA_1|SHA1/.test(a)),
    ).toBe(false);
    expect(SIGNING_ALGORITHMS.ECC_NIST_P384).toEqual(['ECDSA_SHA_384']);
  });

  test('raw TCP forwarding with PROXY protocol to the origin and sampled logs', () => {
    const c = resolve({
      ...minimal,
      edge: { origin: 'tcp://origin.internal:9000', proxyMode: 'tcp', originProxyProtocol: true, logSampleRate: 0.25 },
    });
    expect(c.edge).toMatchObject({
      origin: 'tcp://origin.internal:9000',
      proxyMode: 'tcp',
      originProxyProtocol: true,
      logSampleRate: 0.25,
    });
  });

  test('key-exchange groups: the edge default (hybrid first) unless configured', () => {
    expect(resolve(minimal).edge.groups).toEqual(['X25519MLKEM768', 'x25519', 'secp256r1', 'secp384r1']);
    expect(
      resolve({ ...minimal, edge: { origin: 'http://o.example.com', groups: ['x25519', 'X25519MLKEM768'] } }).edge
        .groups,
    ).toEqual(['x25519', 'X25519MLKEM768']);
  });

  test('the example configuration in cdk.json is valid once its operator placeholder is replaced, and refused before', () => {
    const sample = cdkJsonContext().keyless as Record<string, unknown>;
    expect(problems(sample)).toEqual([
      expect.stringMatching(
        /^keyless\.operators: still the sample placeholder: name the IAM role .*-c keyless:operators=/,
      ),
    ]);
    expect(() => resolve({ ...sample, operators: ['arn:aws:iam::111122223333:role/KeylessOperator'] })).not.toThrow();
  });

  test('first-deploy and scaling defaults: no deletion protection, readiness over HTTP, a connection target well under the cap, no reserved concurrency', () => {
    const c = resolve(minimal);
    expect(c.edge).toMatchObject({
      deletionProtection: false,
      healthCheck: 'http',
      certificatesReady: false,
      maxConnectionsPerTask: 20000,
      kmsBudget: 240,
    });
    expect(c.edge.targetConnectionsPerTask).toBeLessThanOrEqual(0.5 * c.edge.maxConnectionsPerTask);
    expect(c.keyService.reservedConcurrency).toBeUndefined();
  });
});

describe('rejections name the field and the fix', () => {
  test.each<[string, unknown, RegExp]>([
    ['deployment name', { ...minimal, deployment: 'Prod_1' }, /keyless\.deployment: required: 1–24 characters/],
    [
      'unknown top-level field',
      { ...minimal, region: 'eu-west-1' },
      /keyless\.region: unknown field \(allowed: .*regions/,
    ],
    ['no keys', { ...minimal, keys: [] }, /keyless\.keys: required: at least one key/],
    [
      'bad key spec',
      { ...minimal, keys: [{ name: 'web', custody: 'kms', keySpec: 'RSA_1024' }] },
      /keys\[0\]\.keySpec: required: one of RSA_2048/,
    ],
    [
      'key name not usable in a KMS alias',
      { ...minimal, keys: [{ name: 'web.example', custody: 'kms', keySpec: 'RSA_2048' }] },
      /keys\[0\]\.name: .*KMS alias/,
    ],
    [
      'duplicate key name',
      {
        ...minimal,
        keys: [
          { name: 'a', custody: 'kms', keySpec: 'RSA_2048' },
          { name: 'a', custody: 'kms', keySpec: 'RSA_2048' },
        ],
      },
      /keys\[1\]\.name: duplicate key name "a"/,
    ],
    [
      'file custody in AWS',
      { ...minimal, keys: [{ name: 'dev', custody: 'file' }] },
      /"file" custody is for local development only/,
    ],
    [
      'algorithm the key cannot use',
      {
        ...minimal,
        keys: [{ name: 'web', custody: 'kms', keySpec: 'ECC_NIST_P256', signingAlgorithms: ['ECDSA_SHA_384'] }],
      },
      /signingAlgorithms: expected a non-empty subset of ECDSA_SHA_256/,
    ],
    [
      'sealed key half provisioned',
      { ...minimal, keys: [{ name: 's', custody: 'sealed', sealedKey: 'A'.repeat(100) }] },
      /sealedKey and publicKey go together/,
    ],
    [
      'sealed public key that is not RSA',
      {
        ...minimal,
        keys: [
          {
            name: 's',
            custody: 'sealed',
            sealedKey: 'A'.repeat(100),
            publicKey: Buffer.from('not a key').toString('base64'),
          },
        ],
      },
      /publicKey: expected the base64 DER SubjectPublicKeyInfo of an RSA/,
    ],
    ['missing origin', { ...minimal, edge: {} }, /edge\.origin: required: an http:\/\/ or https:\/\/ URL/],
    ['origin with credentials', { ...minimal, edge: { origin: 'http://user:pw@origin.example.com' } }, /edge\.origin/],
    [
      'origin with a path',
      { ...minimal, edge: { origin: 'https://origin.example.com/app' } },
      /edge\.origin: required: an http:\/\/ or https:\/\/ URL without credentials or path/,
    ],
    [
      'route without hosts',
      { ...minimal, edge: { origin: 'http://o.example.com', routes: [{ origin: 'https://a.internal' }] } },
      /edge\.routes\[0\]\.hosts: a non-empty list/,
    ],
    [
      'route address that is a name',
      {
        ...minimal,
        edge: {
          origin: 'http://o.example.com',
          routes: [{ hosts: ['a.example.com'], origin: 'https://a.internal', addresses: ['a.internal:443'] }],
        },
      },
      /edge\.routes\[0\]\.addresses: a non-empty list of "ipv4:port"/,
    ],
    [
      'bad origin security group',
      { ...minimal, edge: { origin: 'http://o.example.com', originSecurityGroupId: 'default' } },
      /edge\.originSecurityGroupId: a security group id/,
    ],
    [
      'tcp origin in http mode',
      { ...minimal, edge: { origin: 'tcp://origin.example.com:9000' } },
      /edge\.origin: .*proxyMode "tcp"/,
    ],
    [
      'tcp mode without a port',
      { ...minimal, edge: { origin: 'tcp://origin.example.com', proxyMode: 'tcp' } },
      /edge\.origin: required in proxyMode "tcp": tcp:\/\/host:port or tls:\/\/host:port/,
    ],
    [
      'unknown proxy mode',
      { ...minimal, edge: { origin: 'http://o.example.com', proxyMode: 'udp' } },
      /edge\.proxyMode: "udp" is invalid/,
    ],
    [
      'unknown key-exchange group',
      { ...minimal, edge: { origin: 'http://o.example.com', groups: ['x25519', 'X448'] } },
      /edge\.groups: \["x25519","X448"\] is invalid: a non-empty list of X25519MLKEM768, x25519/,
    ],
    [
      'only a hybrid group',
      { ...minimal, edge: { origin: 'http://o.example.com', groups: ['X25519MLKEM768'] } },
      /edge\.groups: .* at least one classic group/,
    ],
    [
      'log sample rate above 1',
      { ...minimal, edge: { origin: 'http://o.example.com', logSampleRate: 2 } },
      /edge\.logSampleRate: 2 is invalid: a fraction 0\.\.1/,
    ],
    [
      'Fargate size',
      { ...minimal, edge: { origin: 'http://o.example.com', cpu: 256, memoryMiB: 4096 } },
      /edge\.memoryMiB: 4096 MiB is not valid with cpu 256/,
    ],
    [
      'min above max',
      { ...minimal, edge: { origin: 'http://o.example.com', minTasks: 5, maxTasks: 2 } },
      /minTasks \(5\) exceeds maxTasks \(2\)/,
    ],
    [
      'stop timeout above the Fargate limit',
      { ...minimal, edge: { origin: 'http://o.example.com', stopTimeoutSeconds: 300 } },
      /stopTimeoutSeconds: 300 is invalid: seconds 2\.\.120/,
    ],
    [
      'IPv6 client CIDR',
      { ...minimal, edge: { origin: 'http://o.example.com', allowedClientCidrs: ['::/0'] } },
      /allowedClientCidrs: .* IPv4 CIDRs/,
    ],
    [
      'provisioned above reserved',
      { ...minimal, keyService: { reservedConcurrency: 5, provisionedConcurrency: 10 } },
      /provisionedConcurrency: \(10\) cannot exceed reservedConcurrency \(5\)/,
    ],
    [
      'log retention',
      { ...minimal, keyService: { logRetentionDays: 42 } },
      /logRetentionDays: 42 is invalid: one of 1, 3, 5/,
    ],
    [
      'deletion window',
      { ...minimal, keyService: { keyDeletionWindowDays: 3 } },
      /keyDeletionWindowDays: 3 is invalid: days 7\.\.30/,
    ],
    [
      'region name',
      { ...minimal, regions: ['eu-west-1', 'Frankfurt'] },
      /regions\[1\]: "Frankfurt" is not an AWS region name/,
    ],
    [
      'duplicate region',
      { ...minimal, regions: ['eu-west-1', 'eu-west-1'] },
      /regions\[1\]: region "eu-west-1" is listed twice/,
    ],
    [
      'connection target at the cap',
      { ...minimal, edge: { origin: 'http://o.example.com', targetConnectionsPerTask: 20000 } },
      /edge\.targetConnectionsPerTask: \(20000\) must stay under 80% of maxConnectionsPerTask \(20000\), or tasks refuse connections before scale-out/,
    ],
    [
      'KMS budget too thin for the fleet',
      { ...minimal, edge: { origin: 'http://o.example.com', kmsBudget: 30, maxTasks: 20 } },
      /edge\.kmsBudget: \(30\/s\) leaves each of up to 40 tasks \(maxTasks 20, doubled during a rolling deploy\) under 2 key operations per second/,
    ],
    [
      'KMS budget too thin for the workers of large tasks',
      {
        ...minimal,
        edge: { origin: 'http://o.example.com', kmsBudget: 100, maxTasks: 20, cpu: 4096, memoryMiB: 8192 },
      },
      /edge\.kmsBudget: \(100\/s\) leaves each of up to 40 tasks \(maxTasks 20, doubled during a rolling deploy\) under 4 key operations per second \(one for each of its 4 workers\): raise it \(and the KMS quota\) to at least 160, or lower maxTasks or cpu/,
    ],
    [
      'no NAT without private endpoints',
      { ...minimal, edge: { origin: 'http://10.80.0.5', natGateways: 0, privateEndpoints: false } },
      /edge\.natGateways: 0 needs edge\.privateEndpoints true/,
    ],
    [
      'no NAT with key services in other regions',
      { ...minimal, regions: ['eu-west-1', 'eu-central-1'], edge: { origin: 'http://10.80.0.5', natGateways: 0 } },
      /edge\.natGateways: 0 cannot reach the key services of other regions/,
    ],
    [
      'operator placeholder',
      { ...minimal, operators: ['arn:aws:iam::111122223333:role/REPLACE-ME'] },
      /operators: still the sample placeholder/,
    ],
    [
      'key-service account without the edge account',
      { ...minimal, regions: ['eu-west-1'], keyServiceAccount: '222222222222' },
      /keyless\.edgeAccount: expected a 12-digit AWS account id/,
    ],
    [
      'the same account twice',
      { ...minimal, regions: ['eu-west-1'], keyServiceAccount: '222222222222', edgeAccount: '222222222222' },
      /keyServiceAccount: must differ from edgeAccount/,
    ],
    [
      'two accounts without regions',
      { ...minimal, keyServiceAccount: '222222222222', edgeAccount: '111111111111' },
      /keyless\.regions: required with keyServiceAccount/,
    ],
    [
      'two accounts without AZ names',
      { ...minimal, regions: ['eu-west-1'], keyServiceAccount: '222222222222', edgeAccount: '111111111111' },
      /availabilityZones\.eu-west-1: required with keyServiceAccount: .* would look AZs up in AWS at synth/,
    ],
    [
      'operator outside the key account',
      {
        ...minimal,
        regions: ['eu-west-1'],
        availabilityZones: { 'eu-west-1': ['eu-west-1a', 'eu-west-1b'] },
        keyServiceAccount: '222222222222',
        edgeAccount: '111111111111',
        operators: ['arn:aws:iam::111111111111:role/Ops'],
      },
      /operators: arn:aws:iam::111111111111:role\/Ops is not in the key-service account 222222222222/,
    ],
    [
      'AZs of an unlisted region',
      { ...minimal, availabilityZones: { 'us-east-1': ['us-east-1a', 'us-east-1b'] } },
      /availabilityZones\.us-east-1: AZ names can only be given for regions listed/,
    ],
    ['alarm e-mail', { ...minimal, alarms: { email: 'oncall' } }, /alarms\.email: expected an e-mail address/],
    [
      'operator ARN',
      { ...minimal, operators: ['KeylessOperator'] },
      /operators: expected a non-empty list of IAM principal ARNs/,
    ],
    [
      'certificate for an unknown key',
      { ...minimal, certificates: [{ name: 'www', hostnames: ['www.example.com'], keyName: 'nope', chainPem: 'x' }] },
      /keyName: must name one of the configured keys \(web\)/,
    ],
  ])('%s', (_name, raw, message) => {
    expect(problems(raw).join('\n')).toMatch(message);
  });

  test('every problem is reported at once', () => {
    const p = problems({
      deployment: '',
      keys: [{ name: 'x', custody: 'kms', keySpec: 'nope' }],
      edge: { origin: 'ftp://x', cpu: 3 },
    });
    expect(p.length).toBeGreaterThanOrEqual(4);
    const err = (() => {
      try {
        resolve({});
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err?.message).toMatch(/^invalid keyless configuration \(\d+ problems\):\n {2}- keyless\.deployment/);
  });
});

describe('certificates are checked at synth', () => {
  test('a chain covering the hostnames with the key type of its key is accepted', async () => {
    const cert = await makeCertificate(['www.example.com', '*.example.com'], 'ecdsa-p256');
    const c = resolve({
      ...minimal,
      certificates: [
        { name: 'www', hostnames: ['www.example.com', 'api.example.com'], keyName: 'web', chainPem: cert.pem },
      ],
    });
    expect(c.certificates[0]).toMatchObject({
      name: 'www',
      keyName: 'web',
      hostnames: ['www.example.com', 'api.example.com'],
    });
  });

  test('hostname not covered, wrong key type, expired, private key material', async () => {
    const rsa = await makeCertificate(['www.example.com'], 'rsa-2048');
    const p = problems({
      ...minimal,
      certificates: [{ name: 'www', hostnames: ['shop.example.com'], keyName: 'web', chainPem: rsa.pem }],
    }).join('\n');
    expect(p).toMatch(/does not cover "shop\.example\.com"/);
    expect(p).toMatch(/key "web" is ECC_NIST_P256 but the leaf certificate's key is RSA 2048/);

    const old = await makeCertificate(['www.example.com'], 'ecdsa-p256', {
      notAfter: new Date('2020-01-01T00:00:00Z'),
    });
    expect(
      problems({
        ...minimal,
        certificates: [{ name: 'www', hostnames: ['www.example.com'], keyName: 'web', chainPem: old.pem }],
      }).join('\n'),
    ).toMatch(/expired/);

    // Built at run time so no PEM private-key marker is ever committed (not even a fake one).
    const [begin, end] = ['BEGIN', 'END'].map((w) => `-----${w} ${'PRIVATE'} KEY-----`);
    const withKey = `${rsa.pem}${begin}\nMIIB\n${end}\n`;
    expect(
      problems({
        ...minimal,
        certificates: [{ name: 'www', hostnames: ['www.example.com'], keyName: 'web', chainPem: withKey }],
      }).join('\n'),
    ).toMatch(/PRIVATE KEY block: certificates only/);
  });

  test("a sealed key's certificate must carry exactly its public key", async () => {
    const sealed = fakeSealedKey();
    const other = fakeSealedKey();
    const good = await makeCertificate(['legacy.example.com'], 'rsa-2048', {
      keys: await rsaKeysFromPkcs8(sealed.privatePkcs8, sealed.publicKey),
    });
    const bad = await makeCertificate(['legacy.example.com'], 'rsa-2048', {
      keys: await rsaKeysFromPkcs8(other.privatePkcs8, other.publicKey),
    });
    const keys = [
      ...minimal.keys,
      { name: 'legacy', custody: 'sealed', sealedKey: sealed.sealedKey, publicKey: sealed.publicKey },
    ];
    expect(() =>
      resolve({
        ...minimal,
        keys,
        certificates: [{ name: 'l', hostnames: ['legacy.example.com'], keyName: 'legacy', chainPem: good.pem }],
      }),
    ).not.toThrow();
    expect(
      problems({
        ...minimal,
        keys,
        certificates: [{ name: 'l', hostnames: ['legacy.example.com'], keyName: 'legacy', chainPem: bad.pem }],
      }).join('\n'),
    ).toMatch(/not the public key of sealed key "legacy"/);
  });

  test('chainFile is read relative to the repository root; one of chainFile/chainPem is required', async () => {
    const cert = await makeCertificate(['www.example.com'], 'ecdsa-p256');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-cert-'));
    try {
      fs.writeFileSync(path.join(dir, 'chain.pem'), cert.pem);
      const c = resolveConfig(
        {
          ...minimal,
          certificates: [{ name: 'www', hostnames: ['www.example.com'], keyName: 'web', chainFile: 'chain.pem' }],
        },
        { baseDir: dir },
      );
      expect(c.certificates[0].chainPem).toContain('BEGIN CERTIFICATE');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(
      problems({ ...minimal, certificates: [{ name: 'www', hostnames: ['www.example.com'], keyName: 'web' }] }).join(
        '\n',
      ),
    ).toMatch(/give exactly one of chainFile/);
  });
});

describe('cdk.json context', () => {
  test('context object, config file and single-value overrides merge in that order', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-ctx-'));
    try {
      fs.writeFileSync(
        path.join(dir, 'prod.json'),
        JSON.stringify({ deployment: 'fromfile', edge: { minTasks: 4, maxTasks: 8 } }),
      );
      const app = new App({
        context: {
          keyless: JSON.stringify(minimal), // -c keyless='{...}' arrives as a string
          'keyless:configFile': 'prod.json',
          'keyless:regions': 'eu-west-1, eu-central-1',
          'keyless:origin': 'http://10.0.0.10:8080',
          'keyless:alarmEmail': 'oncall@example.com',
        },
      });
      const c = loadConfigFromContext(app.node, dir);
      expect(c.deployment).toBe('fromfile');
      expect(c.regions).toEqual(['eu-west-1', 'eu-central-1']);
      expect(c.edge).toMatchObject({
        origin: 'http://10.0.0.10:8080',
        minTasks: 4,
        maxTasks: 8,
        cpu: DEFAULT_EDGE.cpu,
      });
      expect(c.alarms.email).toBe('oncall@example.com');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('one field of a section from the command line: -c keyless:edge.maxTasks=40, numbers and booleans parsed', () => {
    const app = new App({
      context: {
        keyless: minimal,
        'keyless:edge.maxTasks': '40',
        'keyless:edge.minTasks': '4',
        'keyless:edge.targetConnectionsPerTask': '6000',
        'keyless:edge.maxConnectionsPerTask': '30000',
        'keyless:edge.kmsBudget': '400',
        'keyless:edge.certificatesReady': 'true',
        'keyless:keyService.reservedConcurrency': '50',
        'keyless:operators': 'arn:aws:iam::111122223333:role/A, arn:aws:iam::111122223333:role/B',
      },
    });
    const c = loadConfigFromContext(app.node, ROOT);
    expect(c.edge).toMatchObject({
      maxTasks: 40,
      minTasks: 4,
      targetConnectionsPerTask: 6000,
      maxConnectionsPerTask: 30000,
      kmsBudget: 400,
      certificatesReady: true,
    });
    expect(c.keyService.reservedConcurrency).toBe(50);
    expect(c.operators).toEqual(['arn:aws:iam::111122223333:role/A', 'arn:aws:iam::111122223333:role/B']);
  });

  test('a bad value from the command line is reported against its field', () => {
    const app = new App({ context: { keyless: minimal, 'keyless:edge.maxTasks': 'lots' } });
    expect(() => loadConfigFromContext(app.node, ROOT)).toThrow(
      /keyless\.edge\.maxTasks: "lots" is invalid: an integer 1\.\.1000/,
    );
  });

  test('an unreadable config file is a configuration error', () => {
    const app = new App({ context: { keyless: minimal, 'keyless:configFile': 'does-not-exist.json' } });
    expect(() => loadConfigFromContext(app.node, ROOT)).toThrow(/keyless:configFile.*cannot read/);
  });
});

describe('limits checked while building the stacks', () => {
  test("sealed keys that would overflow Lambda's 4 KB environment fail with numbers", () => {
    // An RSA-4096 PrivateKeyCiphertextBlob is about 2.5 KB (3.3 KB in base64): two do not fit.
    const big = (name: string) => ({
      name,
      custody: 'sealed',
      sealedKey: randomBytes(2500).toString('base64'),
      publicKey: fakeSealedKey().publicKey,
    });
    const app = new App({ context: cdkJsonContext() });
    const config = resolve({ ...minimal, keys: [...minimal.keys, big('a'), big('b')] });
    expect(() => createKeylessStacks(app, config)).toThrow(
      /over Lambda's 4096-byte limit \(KEYLESS_KEYS alone is \d+ bytes/,
    );
  });

  test('a deployment with nothing servable yet is refused', () => {
    const app = new App({ context: cdkJsonContext() });
    const config = resolve({ ...minimal, keys: [{ name: 'pending', custody: 'sealed' }] });
    expect(() => createKeylessStacks(app, config)).toThrow(/no key can be served yet/);
  });
});
