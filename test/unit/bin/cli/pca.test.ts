/**
 * `keyless cert issue --pca-arn` against a small fake ACM PCA endpoint (AWS JSON 1.1, reached through
 * the SDK's own AWS_ENDPOINT_URL_ACM_PCA). What this proves: the production @aws-sdk/client-acm-pca
 * calls the CLI makes, with the request it sends (the KMS-signed CSR, the CA's signing algorithm,
 * the validity, an idempotency token), the polling of GetCertificate through
 * RequestInProgressException, and the checks on what comes back. What it does not prove: AWS Private
 * CA's own policies (templates, name constraints, quotas) — the certificate is signed here by a test
 * CA whose key exists only in this process's memory.
 */
import 'reflect-metadata';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import * as x509 from '@peculiar/x509';
import { EXIT } from '../../../../bin/cli/errors';
import { type CliEnv, startCliEnv } from '../../cli-harness';

const CA_ARN = 'arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/11111111-2222-3333-4444-555555555555';
const webcrypto = crypto.webcrypto as unknown as NonNullable<
  Parameters<typeof x509.X509CertificateGenerator.create>[1]
>;

interface Call {
  op: string;
  body: Record<string, unknown>;
}

interface FakePca {
  url: string;
  calls: Call[];
  caPem: string;
  /** Test knobs. */
  status: string;
  inProgressPolls: number;
  issueError?: string;
  getError?: string;
  /** Sign this public key instead of the CSR's (a misbehaving CA). */
  substituteKey?: Uint8Array;
  close(): Promise<void>;
}

async function startFakePca(): Promise<FakePca> {
  const caKeys = (await crypto.webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
    'sign',
    'verify',
  ])) as crypto.webcrypto.CryptoKeyPair;
  const now = Date.now();
  const caCert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      name: 'CN=fake private CA',
      keys: caKeys as never,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      notBefore: new Date(now - 3_600_000),
      notAfter: new Date(now + 365 * 86_400_000),
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
      ],
    },
    webcrypto,
  );
  const issued = new Map<string, { pem: string; polls: number }>();
  const fake: FakePca = {
    url: '',
    calls: [],
    caPem: caCert.toString('pem'),
    status: 'ACTIVE',
    inProgressPolls: 1,
    close: async () => undefined,
  };
  const fail = (res: http.ServerResponse, type: string, message: string): void => {
    res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': type });
    res.end(JSON.stringify({ __type: type, message }));
  };
  const ok = (res: http.ServerResponse, body: unknown): void => {
    res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const op = String(req.headers['x-amz-target'] ?? '').replace(/^ACMPrivateCA\./, '');
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
        fake.calls.push({ op, body });
        if (body.CertificateAuthorityArn !== CA_ARN) return fail(res, 'ResourceNotFoundException', 'no such CA');
        switch (op) {
          case 'DescribeCertificateAuthority':
            return ok(res, {
              CertificateAuthority: {
                Arn: CA_ARN,
                Status: fake.status,
                Type: 'SUBORDINATE',
                CertificateAuthorityConfiguration: {
                  KeyAlgorithm: 'EC_prime256v1',
                  SigningAlgorithm: 'SHA256WITHECDSA',
                  Subject: { CommonName: 'fake private CA' },
                },
              },
            });
          case 'IssueCertificate': {
            if (fake.issueError) return fail(res, fake.issueError, 'refused by the test');
            const csr = new x509.Pkcs10CertificateRequest(Buffer.from(String(body.Csr), 'base64').toString('utf8'));
            if (!(await csr.verify(webcrypto))) return fail(res, 'MalformedCSRException', 'bad signature');
            const validity = body.Validity as { Type: string; Value: number };
            const leaf = await x509.X509CertificateGenerator.create(
              {
                subject: csr.subject,
                issuer: caCert.subject,
                serialNumber: crypto.randomBytes(8).toString('hex'),
                notBefore: new Date(Date.now() - 60_000),
                notAfter: new Date(Date.now() + validity.Value * 86_400_000),
                publicKey: fake.substituteKey ?? csr.publicKey.rawData,
                signingKey: caKeys.privateKey as never,
                signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
                extensions: [
                  ...csr.extensions,
                  new x509.BasicConstraintsExtension(false),
                  new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
                ],
              },
              webcrypto,
            );
            const arn = `${CA_ARN}/certificate/${crypto.randomBytes(8).toString('hex')}`;
            issued.set(arn, { pem: leaf.toString('pem'), polls: 0 });
            return ok(res, { CertificateArn: arn });
          }
          case 'GetCertificate': {
            if (fake.getError) return fail(res, fake.getError, 'refused by the test');
            const cert = issued.get(String(body.CertificateArn));
            if (!cert) return fail(res, 'ResourceNotFoundException', 'no such certificate');
            if (cert.polls++ < fake.inProgressPolls) return fail(res, 'RequestInProgressException', 'not yet');
            return ok(res, { Certificate: cert.pem, CertificateChain: fake.caPem });
          }
          default:
            return fail(res, 'UnknownOperationException', op);
        }
      })().catch((e: Error) => fail(res, 'InternalFailure', e.message));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.close = () => new Promise((r) => server.close(() => r()));
  return fake;
}

let env: CliEnv;
let pca: FakePca;
const saved: Record<string, string | undefined> = {};
const ENV = {
  AWS_ENDPOINT_URL_ACM_PCA: '',
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  AWS_REGION: 'us-east-1',
};

beforeAll(async () => {
  env = await startCliEnv();
  pca = await startFakePca();
  ENV.AWS_ENDPOINT_URL_ACM_PCA = pca.url;
  for (const [k, v] of Object.entries(ENV)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  expect(
    (await env.run('keys', 'create', '--local', '--name', 'site-1', '--key-spec', 'ECC_NIST_P256', '--quiet')).code,
  ).toBe(EXIT.ok);
  expect(
    (
      await env.run(
        'csr',
        '--local',
        '--key',
        'site-1',
        '--dns',
        'example.com',
        '--dns',
        'www.example.com',
        '--out',
        'site-1.csr',
        '--quiet',
      )
    ).code,
  ).toBe(EXIT.ok);
  fs.writeFileSync(path.join(env.dir, 'pca-ca.pem'), pca.caPem);
});
afterAll(async () => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await pca?.close();
  await env?.close();
});
beforeEach(() => {
  pca.calls = [];
  pca.status = 'ACTIVE';
  pca.inProgressPolls = 1;
  pca.issueError = undefined;
  pca.getError = undefined;
  pca.substituteKey = undefined;
});

const issue = (...extra: string[]) =>
  env.run('cert', 'issue', '--pca-arn', CA_ARN, '--csr', 'site-1.csr', '--region', 'us-east-1', ...extra);

test("IssueCertificate with the CSR, the CA's algorithm and the validity; polls until issued; the chain imports", async () => {
  const r = await issue('--days', '30', '--out', 'site-1.chain.pem', '--json');
  expect(r.code).toBe(EXIT.ok);
  expect(pca.calls.map((c) => c.op)).toEqual([
    'DescribeCertificateAuthority',
    'IssueCertificate',
    'GetCertificate',
    'GetCertificate',
  ]);
  const req = pca.calls[1].body;
  expect(Buffer.from(String(req.Csr), 'base64').toString('utf8')).toBe(
    fs.readFileSync(path.join(env.dir, 'site-1.csr'), 'utf8'),
  );
  expect(req).toMatchObject({ SigningAlgorithm: 'SHA256WITHECDSA', Validity: { Type: 'DAYS', Value: 30 } });
  expect(req.IdempotencyToken).toMatch(/^[0-9a-f]{36}$/);
  expect(req.TemplateArn).toBeUndefined();
  const out = r.json<{ certificateArn: string; dnsNames: string[]; chainPem: string }>();
  expect(out.certificateArn).toMatch(new RegExp(`^${CA_ARN}/certificate/`));
  expect(out.dnsNames).toEqual(['example.com', 'www.example.com']);
  expect(r.stderr).toMatch(/not issued yet; waiting/);
  // The same chain passes import's checks (key match, chain to the CA).
  const imported = await env.run(
    'cert',
    'import',
    '--local',
    '--key',
    'site-1',
    '--slot',
    'site',
    '--chain',
    'site-1.chain.pem',
    '--ca',
    'pca-ca.pem',
    '--live',
    '--json',
    '--quiet',
  );
  expect(imported.code).toBe(EXIT.ok);
  expect(imported.json()).toMatchObject({ issuer: 'CN=fake private CA', state: 'live' });
});

test('--signing-algorithm and --template-arn are passed through', async () => {
  const template = 'arn:aws:acm-pca:::template/EndEntityServerAuthCertificate/V1';
  const r = await issue('--signing-algorithm', 'SHA384WITHECDSA', '--template-arn', template, '--quiet');
  expect(r.code).toBe(EXIT.ok);
  expect(pca.calls[1].body).toMatchObject({
    SigningAlgorithm: 'SHA384WITHECDSA',
    TemplateArn: template,
    Validity: { Type: 'DAYS', Value: 90 },
  });
});

test('a CA that is not ACTIVE is refused before any request', async () => {
  pca.status = 'DISABLED';
  const r = await issue();
  expect(r.code).toBe(EXIT.refused);
  expect(r.stderr).toMatch(/is DISABLED, not ACTIVE/);
  expect(pca.calls.map((c) => c.op)).toEqual(['DescribeCertificateAuthority']);
});

test('an unknown CA is refused', async () => {
  const r = await env.run(
    'cert',
    'issue',
    '--pca-arn',
    CA_ARN.replace('1111-2222', '9999-2222'),
    '--csr',
    'site-1.csr',
  );
  expect(r.code).toBe(EXIT.refused);
  expect(r.stderr).toMatch(/there is no private CA/);
});

test('the CA refusing the request is a refusal with what to check', async () => {
  pca.issueError = 'MalformedCSRException';
  const r = await issue();
  expect(r.code).toBe(EXIT.refused);
  expect(r.stderr).toMatch(/AWS Private CA refused the request: MalformedCSRException/);
});

test('GetCertificate failing otherwise is not retried until the deadline', async () => {
  pca.getError = 'AccessDeniedException';
  const r = await issue();
  expect(r.code).toBe(EXIT.failed);
  expect(r.stderr).toMatch(/ACM PCA GetCertificate: access denied/);
  expect(pca.calls.filter((c) => c.op === 'GetCertificate')).toHaveLength(1);
});

test('not issued within --wait-seconds: exit 69 and how to fetch it later', async () => {
  pca.inProgressPolls = 1000;
  const r = await issue('--wait-seconds', '1');
  expect(r.code).toBe(EXIT.unavailable);
  expect(r.stderr).toMatch(/was not issued within 1 s/);
  expect(r.stderr).toMatch(/aws acm-pca get-certificate/);
});

test('a certificate for another public key than the request is rejected', async () => {
  const other = await crypto.webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ]);
  pca.substituteKey = new Uint8Array(
    await crypto.webcrypto.subtle.exportKey('spki', (other as crypto.webcrypto.CryptoKeyPair).publicKey),
  );
  const r = await issue();
  expect(r.code).toBe(EXIT.failed);
  expect(r.stderr).toMatch(/certificate for another public key than the request/);
});
