/**
 * Certificates from SSM Parameter Store: the real @aws-sdk/client-ssm client against a local HTTP
 * server speaking the SSM JSON 1.1 protocol (AmazonSSM.GetParametersByPath), plus the configuration
 * the CDK edge stack gives the edge (environment only, no file).
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { SSMClient } from '@aws-sdk/client-ssm';
import {
  createSsmClient,
  loadCertificatesFromSsm,
  SsmCertificateStore,
} from '../../../../edge-proxy/src/cert-store/ssm';
import { ConfigError, loadEdgeConfig, parseEdgeConfig } from '../../../../edge-proxy/src/config';
import { loadAllCertificates } from '../../../../edge-proxy/src/edge';
import { makeTestPki, type TestPki } from '../../../helpers/certs';
import { rejection } from '../../../helpers/rejection';

interface FakeParameter {
  Name: string;
  Value: string;
  Type?: string;
}

interface FakeSsm {
  endpoint: string;
  /** Parameters served, in the order the fake returns them. */
  parameters: FakeParameter[];
  pageSize: number;
  requests: Array<{ target: string | undefined; body: Record<string, unknown> }>;
  close(): Promise<void>;
}

/** A minimal SSM: GetParametersByPath with prefix filtering and NextToken pagination. */
async function startFakeSsm(): Promise<FakeSsm> {
  const fake: FakeSsm = { endpoint: '', parameters: [], pageSize: 1, requests: [], close: async () => undefined };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const target = req.headers['x-amz-target'] as string | undefined;
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
      fake.requests.push({ target, body });
      const reply = (status: number, payload: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify(payload));
      };
      if (req.method === 'POST' && target === 'AmazonSSM.PutParameter') {
        const name = String(body.Name);
        const existing = fake.parameters.find((p) => p.Name === name);
        if (existing && body.Overwrite !== true) {
          reply(400, { __type: 'ParameterAlreadyExists', message: 'exists' });
          return;
        }
        if (existing) existing.Value = String(body.Value);
        else fake.parameters.push({ Name: name, Value: String(body.Value), Type: String(body.Type) });
        reply(200, { Version: 1, Tier: 'Standard' });
        return;
      }
      if (req.method === 'POST' && target === 'AmazonSSM.DeleteParameters') {
        const names = body.Names as string[];
        const deleted = names.filter((n) => fake.parameters.some((p) => p.Name === n));
        fake.parameters = fake.parameters.filter((p) => !names.includes(p.Name));
        reply(200, { DeletedParameters: deleted, InvalidParameters: names.filter((n) => !deleted.includes(n)) });
        return;
      }
      if (req.method !== 'POST' || target !== 'AmazonSSM.GetParametersByPath') {
        reply(400, { __type: 'com.amazonaws.ssm#InvalidAction', message: `unsupported ${String(target)}` });
        return;
      }
      const prefix = String(body.Path);
      const matching = fake.parameters.filter((p) => p.Name.startsWith(prefix));
      const start = typeof body.NextToken === 'string' ? Number(body.NextToken.replace('page-', '')) : 0;
      const size = Math.min(fake.pageSize, typeof body.MaxResults === 'number' ? body.MaxResults : 10);
      const page = matching.slice(start, start + size);
      const next = start + size < matching.length ? `page-${start + size}` : undefined;
      reply(200, {
        Parameters: page.map((p) => ({
          Name: p.Name,
          Type: p.Type ?? 'String',
          Value: p.Value,
          Version: 1,
          LastModifiedDate: 1_700_000_000,
          ARN: `arn:aws:ssm:eu-west-1:123456789012:parameter${p.Name}`,
          DataType: 'text',
        })),
        ...(next ? { NextToken: next } : {}),
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  fake.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return fake;
}

const PREFIX = '/keyless/test/certs/';

function certValue(chainPem: string, keyName: string, hostnames: string[]): string {
  // The same shape lib/config.ts certificateParameterValue writes.
  return JSON.stringify({ hostnames, keyName, chainPem });
}

describe('certificates from SSM', () => {
  let pki: TestPki;
  let fake: FakeSsm;
  let client: SSMClient;
  let rsaPem: string;
  let ecPem: string;

  beforeAll(async () => {
    pki = makeTestPki();
    rsaPem = pki.leaf('rsa', 'rsa2048', ['www.example.com', 'example.com']).chainPem;
    ecPem = pki.leaf('ec', 'p256', ['api.example.com']).chainPem;
    fake = await startFakeSsm();
    client = createSsmClient({
      region: 'eu-west-1',
      endpoint: fake.endpoint,
      credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' },
      maxAttempts: 1,
      connectTimeoutMs: 1000,
      requestTimeoutMs: 2000,
    });
  });

  afterAll(async () => {
    client.destroy();
    await fake.close();
    pki.cleanup();
  });

  beforeEach(() => {
    fake.parameters = [];
    fake.requests = [];
    fake.pageSize = 1;
  });

  it('reads every certificate under the prefix across pages, ordered by name', async () => {
    fake.parameters = [
      {
        Name: `${PREFIX}www-example-com`,
        Value: certValue(rsaPem, 'example-com-rsa', ['www.example.com', 'example.com']),
      },
      { Name: `${PREFIX}api-example-com`, Value: certValue(ecPem, 'api-ecdsa', ['api.example.com']) },
      { Name: '/keyless/other/certs/x', Value: 'not ours' },
    ];
    const entries = await loadCertificatesFromSsm(client, PREFIX);
    expect(entries.map((e) => [e.parameter, e.keyName, e.hostnames])).toEqual([
      [`${PREFIX}api-example-com`, 'api-ecdsa', ['api.example.com']],
      [`${PREFIX}www-example-com`, 'example-com-rsa', ['www.example.com', 'example.com']],
    ]);
    expect(entries[0].chainPem).toBe(ecPem);
    // Two pages: the second request carries the first page's NextToken.
    expect(fake.requests).toHaveLength(2);
    expect(fake.requests.every((r) => r.target === 'AmazonSSM.GetParametersByPath')).toBe(true);
    expect(fake.requests[0].body).toMatchObject({ Path: PREFIX, Recursive: true, WithDecryption: false });
    expect(fake.requests[0].body.NextToken).toBeUndefined();
    expect(fake.requests[1].body).toMatchObject({ Path: PREFIX, NextToken: 'page-1' });

    // And the edge turns them into served certificates (public keys, hostnames, key names).
    fake.requests = [];
    const config = parseEdgeConfig({
      certificateStore: { ssmPrefix: PREFIX },
      keyServices: [{ functionName: 'ks', region: 'eu-west-1' }],
      origin: 'http://127.0.0.1:8080',
    });
    const certs = await loadAllCertificates(config, { ssmClient: client });
    expect(certs.map((c) => [c.keyName, c.hostnames, c.shape.keyType])).toEqual([
      ['api-ecdsa', ['api.example.com'], 'ec'],
      ['example-com-rsa', ['www.example.com', 'example.com'], 'rsa'],
    ]);
  });

  it('refuses a value carrying a private key, naming the parameter', async () => {
    const keyPem = pki
      .leaf('leaky', 'p256', ['leaky.example.com'])
      .key.export({ type: 'pkcs8', format: 'pem' }) as string;
    fake.parameters = [
      { Name: `${PREFIX}good`, Value: certValue(ecPem, 'api-ecdsa', ['api.example.com']) },
      { Name: `${PREFIX}leaky`, Value: certValue(ecPem + keyPem, 'leaky', ['leaky.example.com']) },
    ];
    const e = await rejection(loadCertificatesFromSsm(client, PREFIX));
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).field).toBe(`${PREFIX}leaky`);
    expect(e.message).toMatch(/PRIVATE KEY/);
    expect(e.message).toMatch(/private keys stay in the key service/);
    // Also when hidden in an extra field.
    fake.parameters = [
      {
        Name: `${PREFIX}sneaky`,
        Value: JSON.stringify({ hostnames: ['a.example.com'], keyName: 'k', chainPem: ecPem, keyPem }),
      },
    ];
    expect((await rejection(loadCertificatesFromSsm(client, PREFIX))).message).toMatch(
      new RegExp(`${PREFIX}sneaky: contains a PRIVATE KEY`),
    );
  });

  it('refuses malformed values, naming the parameter and field', async () => {
    fake.parameters = [{ Name: `${PREFIX}broken`, Value: '{"hostnames": ["a.example.com"], "keyName": ' }];
    let e = await rejection(loadCertificatesFromSsm(client, PREFIX));
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toMatch(
      new RegExp(`^invalid edge configuration: ${PREFIX}broken: value is not valid JSON .*\\. Store it as JSON`),
    );

    fake.parameters = [
      {
        Name: `${PREFIX}extra`,
        Value: JSON.stringify({ hostnames: [], keyName: 'k', chainPem: ecPem, colour: 'blue' }),
      },
    ];
    e = await rejection(loadCertificatesFromSsm(client, PREFIX));
    expect((e as ConfigError).field).toBe(`${PREFIX}extra.colour`);

    fake.parameters = [
      {
        Name: `${PREFIX}nopem`,
        Value: JSON.stringify({ hostnames: ['a.example.com'], keyName: 'k', chainPem: 'hello' }),
      },
    ];
    e = await rejection(loadCertificatesFromSsm(client, PREFIX));
    expect((e as ConfigError).field).toBe(`${PREFIX}nopem.chainPem`);

    fake.parameters = [
      { Name: `${PREFIX}nokey`, Value: JSON.stringify({ hostnames: ['a.example.com'], chainPem: ecPem }) },
    ];
    e = await rejection(loadCertificatesFromSsm(client, PREFIX));
    expect((e as ConfigError).field).toBe(`${PREFIX}nokey.keyName`);

    fake.parameters = [{ Name: `${PREFIX}secure`, Type: 'SecureString', Value: 'AQICAHh...' }];
    e = await rejection(loadCertificatesFromSsm(client, PREFIX));
    expect(e.message).toMatch(/SecureString.*plain String/);
  });

  it('fails startup with a clear message when the store holds no certificate', async () => {
    fake.parameters = [{ Name: '/keyless/other/certs/x', Value: certValue(ecPem, 'k', []) }];
    expect(await loadCertificatesFromSsm(client, PREFIX)).toEqual([]);
    const config = loadEdgeConfig(undefined, {
      KEYLESS_CERT_SSM_PREFIX: PREFIX,
      KEYLESS_KEY_SERVICES: 'ks',
      KEYLESS_ORIGIN: 'http://127.0.0.1:8080',
    });
    const e = await rejection(loadAllCertificates(config, { ssmClient: client }));
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toMatch(new RegExp(`no certificate parameter found under ${PREFIX}\\. Deploy the certificates`));
  });

  it('as a store backend: put writes <prefix><keyName> as a String, list reads states back, remove is re-runnable', async () => {
    const store = new SsmCertificateStore(client, PREFIX);
    expect(store.location).toBe(`ssm:${PREFIX}`);
    fake.parameters = [{ Name: `${PREFIX}site`, Value: certValue(rsaPem, 'site-1', ['www.example.com']) }];
    await store.put({
      hostnames: ['www.example.com'],
      keyName: 'site-2',
      chainPem: ecPem,
      slot: 'site',
      state: 'staged',
    });
    const put = fake.requests.find((r) => r.target === 'AmazonSSM.PutParameter');
    expect(put?.body).toMatchObject({
      Name: `${PREFIX}site-2`,
      Type: 'String',
      Overwrite: true,
      Tier: 'Intelligent-Tiering',
    });
    expect(JSON.parse(String(put?.body.Value))).toEqual({
      hostnames: ['www.example.com'],
      keyName: 'site-2',
      chainPem: ecPem,
      slot: 'site',
      state: 'staged',
    });
    fake.pageSize = 10;
    let list = await store.list();
    // The entry written before rotation has no state (live) and keeps its own id.
    expect(list.map((e) => [e.id, e.keyName, e.state, e.slot])).toEqual([
      ['site', 'site-1', 'live', undefined],
      ['site-2', 'site-2', 'staged', 'site'],
    ]);
    await store.put({ ...list[0], state: 'retiring', slot: 'site' });
    list = await store.list();
    expect(list.map((e) => [e.id, e.state])).toEqual([
      ['site', 'retiring'],
      ['site-2', 'staged'],
    ]);
    await store.remove('site');
    await store.remove('site');
    expect((await store.list()).map((e) => e.id)).toEqual(['site-2']);
    const del = fake.requests.filter((r) => r.target === 'AmazonSSM.DeleteParameters');
    expect(del.map((r) => r.body.Names)).toEqual([[`${PREFIX}site`], [`${PREFIX}site`]]);
  });

  it('as a store backend: refuses private keys, bad ids and oversize values before calling SSM', async () => {
    const store = new SsmCertificateStore(client, PREFIX);
    const keyPem = pki
      .leaf('leaky2', 'p256', ['leaky.example.com'])
      .key.export({ type: 'pkcs8', format: 'pem' }) as string;
    await expect(store.put({ hostnames: [], keyName: 'k', chainPem: ecPem + keyPem, state: 'staged' })).rejects.toThrow(
      /PRIVATE KEY/,
    );
    await expect(store.put({ hostnames: [], keyName: 'has:colon', chainPem: ecPem, state: 'staged' })).rejects.toThrow(
      /not a certificate entry id/,
    );
    const huge = Array.from({ length: 12 }, () => ecPem).join('');
    await expect(store.put({ hostnames: [], keyName: 'big', chainPem: huge, state: 'staged' })).rejects.toThrow(
      /SSM parameters hold at most 8192.*Drop the root CA/,
    );
    await expect(store.remove('../x')).rejects.toThrow(ConfigError);
    expect(fake.requests).toEqual([]);
    expect(() => new SsmCertificateStore(client, 'no-slash')).toThrow(/certificateStore\.ssmPrefix/);
  });

  it('reports an unreachable SSM endpoint with the prefix', async () => {
    const dead = createSsmClient({
      region: 'eu-west-1',
      endpoint: 'http://127.0.0.1:1',
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
      maxAttempts: 1,
      connectTimeoutMs: 500,
    });
    const e = await rejection(loadCertificatesFromSsm(dead, PREFIX));
    dead.destroy();
    expect(e.message).toMatch(new RegExp(`cannot read certificates from SSM under ${PREFIX}`));
  });
});

describe('edge configuration from the environment only (CDK edge stack)', () => {
  const env = {
    KEYLESS_CERT_SSM_PREFIX: '/keyless/prod/certs/',
    KEYLESS_KEY_SERVICES: 'arn:aws:lambda:eu-west-1:123456789012:function:ks:live',
    KEYLESS_ORIGIN: 'http://10.0.0.1:8080',
    KEYLESS_EDGE_PORT: '8443',
    KEYLESS_ADMIN_PORT: '9090',
    KEYLESS_ADMIN_HOST: '0.0.0.0',
  };

  it('needs no file and no certificates when KEYLESS_CERT_SSM_PREFIX is set', () => {
    const c = loadEdgeConfig(undefined, env);
    expect(c.certificates).toEqual([]);
    expect(c.certificateStore).toEqual({ ssmPrefix: '/keyless/prod/certs/', refreshSeconds: 60 });
    expect(c.admin).toEqual({ host: '0.0.0.0', port: 9090 });
    expect(c.listen.port).toBe(8443);
    expect(c.keyServices[0].region).toBe('eu-west-1');
  });

  it('KEYLESS_ADMIN_HOST overrides admin.host; the default stays loopback', () => {
    const rest: Record<string, string> = { ...env };
    delete rest.KEYLESS_ADMIN_HOST;
    expect(loadEdgeConfig(undefined, rest).admin.host).toBe('127.0.0.1');
    expect(loadEdgeConfig(undefined, { ...env, KEYLESS_ADMIN_HOST: '10.1.2.3' }).admin.host).toBe('10.1.2.3');
  });

  it.each(['keyless/prod/certs/', '/keyless/prod/certs', '/', '/keyless//certs/', '/keyless/pr od/'])(
    'rejects the prefix %j',
    (prefix) => {
      expect(() => loadEdgeConfig(undefined, { ...env, KEYLESS_CERT_SSM_PREFIX: prefix })).toThrow(
        /^invalid edge configuration: KEYLESS_CERT_SSM_PREFIX: .*\. [A-Z]/,
      );
    },
  );

  it('accepts certificateStore in the file and validates it', () => {
    const base = { keyServices: [{ functionName: 'ks', region: 'eu-west-1' }], origin: 'http://127.0.0.1:8080' };
    expect(parseEdgeConfig({ ...base, certificateStore: { ssmPrefix: '/a/b/' } }).certificateStore).toEqual({
      ssmPrefix: '/a/b/',
      refreshSeconds: 60,
    });
    expect(() => parseEdgeConfig({ ...base, certificateStore: { ssmPrefix: '/a/b' } })).toThrow(
      /certificateStore\.ssmPrefix: "\/a\/b" must start and end with "\/"/,
    );
    expect(() => parseEdgeConfig({ ...base, certificateStore: { ssmPrefix: '/a/', region: 'x' } })).toThrow(
      /certificateStore\.region: unknown field/,
    );
    // Without a store, certificates are still required, and the message points at the store.
    expect(() => parseEdgeConfig(base)).toThrow(
      /certificates: at least one certificate is required\. .*KEYLESS_CERT_SSM_PREFIX/,
    );
    // The environment prefix wins over the file's.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edge-ssm-config-'));
    const file = path.join(dir, 'edge.json');
    fs.writeFileSync(file, JSON.stringify({ ...base, certificateStore: { ssmPrefix: '/from/file/' } }));
    expect(loadEdgeConfig(file, {}).certificateStore?.ssmPrefix).toBe('/from/file/');
    expect(loadEdgeConfig(file, { KEYLESS_CERT_SSM_PREFIX: '/from/env/' }).certificateStore?.ssmPrefix).toBe(
      '/from/env/',
    );
    fs.rmSync(dir, { recursive: true });
  });
});
