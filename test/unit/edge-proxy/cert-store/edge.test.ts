/**
 * The edge side of the certificate store: configuration (directory / SSM, refresh interval and the
 * environment), the serving rule (live newest-valid first, retiring only as a fallback, staged and
 * expired never), the jittered timer, staged-entry checks and their metrics, and a real in-process
 * edge that picks up store changes on its timer and keeps its last good set when the store breaks.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { DirectoryCertificateStore, type StoredCertificate } from '../../../../edge-proxy/src/cert-store';
import {
  CertificateStoreMetrics,
  checkStagedEntries,
  jitteredDelayMs,
  REFRESH_JITTER,
} from '../../../../edge-proxy/src/cert-store/edge-refresh';
import { loadEdgeConfig, parseEdgeConfig } from '../../../../edge-proxy/src/config';
import { certificatesFromStore, startEdge, type RunningEdge } from '../../../../edge-proxy/src/edge';
import { MetricsRegistry } from '../../../../edge-proxy/src/observability/metrics-registry';
import type { Logger } from '../../../../edge-proxy/src/observability/log';
import { CertificateStore, loadCertificate, type ServerCertificate } from '../../../../edge-proxy/src/tls/certificates';
import { createLocalHandler } from '../../../../local/lambda/local-key-service';
import { startLocalLambda, type LocalLambda } from '../../../../local/lambda';
import { makeTestPki, type TestPki } from '../../../helpers/certs';

const BASE = { keyServices: [{ functionName: 'ks', region: 'eu-west-1' }], origin: 'http://127.0.0.1:8080' };

describe('certificateStore configuration', () => {
  it('takes a directory (relative to the file) or an SSM prefix, with a refresh interval', () => {
    expect(
      parseEdgeConfig({ ...BASE, certificateStore: { directory: 'certs' } }, '/etc/keyless').certificateStore,
    ).toEqual({ directory: '/etc/keyless/certs', refreshSeconds: 60 });
    expect(
      parseEdgeConfig({ ...BASE, certificateStore: { ssmPrefix: '/k/p/certs/', refreshSeconds: 30 } }).certificateStore,
    ).toEqual({ ssmPrefix: '/k/p/certs/', refreshSeconds: 30 });
    expect(
      parseEdgeConfig({ ...BASE, certificateStore: { directory: '/d', refreshSeconds: 1 } }).certificateStore
        ?.refreshSeconds,
    ).toBe(1);
  });

  it.each<[unknown, RegExp]>([
    [{ directory: '/d', ssmPrefix: '/a/' }, /certificateStore: has both ssmPrefix and directory\. Keep one/],
    [{ refreshSeconds: 10 }, /certificateStore: has neither ssmPrefix nor directory/],
    [{ ssmPrefix: '/a/', refreshSeconds: 2 }, /certificateStore\.refreshSeconds: 2 is too short for SSM\. .*SIGHUP/],
    [{ directory: '/d', refreshSeconds: 0 }, /certificateStore\.refreshSeconds: 0 is out of range/],
    [{ directory: '' }, /certificateStore\.directory: missing or not a string/],
    [{ directory: '/d', colour: 1 }, /certificateStore\.colour: unknown field/],
  ])('refuses %j', (store, message) => {
    expect(() => parseEdgeConfig({ ...BASE, certificateStore: store })).toThrow(message);
  });

  it('KEYLESS_CERT_DIR and KEYLESS_CERT_REFRESH_SECONDS, exclusive with KEYLESS_CERT_SSM_PREFIX', () => {
    const env = { KEYLESS_KEY_SERVICES: 'ks', KEYLESS_ORIGIN: 'http://127.0.0.1:8080' };
    expect(
      loadEdgeConfig(undefined, { ...env, KEYLESS_CERT_DIR: '/srv/certs', KEYLESS_CERT_REFRESH_SECONDS: '15' })
        .certificateStore,
    ).toEqual({ directory: '/srv/certs', refreshSeconds: 15 });
    expect(() =>
      loadEdgeConfig(undefined, { ...env, KEYLESS_CERT_DIR: '/srv/certs', KEYLESS_CERT_SSM_PREFIX: '/a/' }),
    ).toThrow(/KEYLESS_CERT_DIR: is set together with KEYLESS_CERT_SSM_PREFIX/);
    expect(() =>
      loadEdgeConfig(undefined, { ...env, KEYLESS_CERT_DIR: '/d', KEYLESS_CERT_REFRESH_SECONDS: 'soon' }),
    ).toThrow(/KEYLESS_CERT_REFRESH_SECONDS: soon is not a whole number/);
    // The environment's location replaces the file's, whichever kind.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edge-store-config-'));
    const file = path.join(dir, 'edge.json');
    fs.writeFileSync(
      file,
      JSON.stringify({ ...BASE, certificateStore: { ssmPrefix: '/from/file/', refreshSeconds: 30 } }),
    );
    expect(loadEdgeConfig(file, { KEYLESS_CERT_DIR: '/from/env' }).certificateStore).toEqual({
      directory: '/from/env',
      refreshSeconds: 30,
    });
    fs.rmSync(dir, { recursive: true });
  });
});

describe('serving rule', () => {
  let pki: TestPki;
  beforeAll(() => (pki = makeTestPki()));
  afterAll(() => pki.cleanup());

  const cert = (
    name: string,
    kind: 'p256' | 'rsa2048',
    hosts: string[],
    extra: Partial<ServerCertificate> = {},
  ): ServerCertificate => ({ ...loadCertificate(pki.leaf(name, kind, hosts).chainPem, name), ...extra });
  const names = (r: { certs: ServerCertificate[] }): string[] => r.certs.map((c) => c.keyName);

  it('live before retiring, newest first within a key type, exact before wildcard', () => {
    const now = Date.now();
    const old = cert('old', 'p256', ['a.example.com'], { notBefore: now - 86_400_000, state: 'retiring' });
    const fresh = cert('new', 'p256', ['a.example.com'], { notBefore: now - 60_000, state: 'live' });
    const older = cert('older-live', 'p256', ['a.example.com'], { notBefore: now - 3_600_000, state: 'live' });
    const rsa = cert('rsa', 'rsa2048', ['a.example.com'], { notBefore: now - 10, state: 'live' });
    const wild = cert('wild', 'p256', ['*.example.com'], { notBefore: now - 1, state: 'live' });
    const store = new CertificateStore([old, rsa, older, wild, fresh]);
    // The RSA certificate keeps its configured position among the live exact matches; the EC ones are newest first.
    expect(names(store.candidates('a.example.com'))).toEqual(['rsa', 'new', 'older-live', 'wild', 'old']);
    // b.example.com: only the live wildcard matches.
    expect(names(store.candidates('b.example.com'))).toEqual(['wild']);
    // No SNI: configured order, live ones first, the first being the default.
    expect(names(store.candidates(undefined))).toEqual(['rsa', 'older-live', 'wild', 'new', 'old']);
  });

  it('a retiring certificate is the fallback when no live one matches the name', () => {
    const store = new CertificateStore([
      cert('retiring', 'p256', ['x.example.com'], { state: 'retiring' }),
      cert('other', 'p256', ['y.example.com']),
    ]);
    expect(store.candidates('x.example.com')).toEqual({
      certs: [expect.objectContaining({ keyName: 'retiring' })],
      matched: true,
    });
  });

  it('never an expired or not-yet-valid certificate', () => {
    const now = Date.now();
    const expired = cert('expired', 'p256', ['e.example.com'], { notAfter: now - 1000 });
    const future = cert('future', 'p256', ['e.example.com'], { notBefore: now + 60_000 });
    const valid = cert('valid', 'p256', ['v.example.com']);
    const store = new CertificateStore([expired, future, valid]);
    expect(store.candidates('e.example.com')).toEqual({
      certs: [expect.objectContaining({ keyName: 'valid' })],
      matched: false,
    });
    expect(names(store.candidates(undefined))).toEqual(['valid']);
  });

  it('store entries: staged ones are never served, the others carry their state', () => {
    const pem = pki.leaf('s', 'p256', ['s.example.com']).chainPem;
    const entry = (keyName: string, state: StoredCertificate['state']): StoredCertificate => ({
      id: keyName,
      source: keyName,
      keyName,
      hostnames: [],
      chainPem: pem,
      state,
      slot: 's',
    });
    const served = certificatesFromStore([entry('a', 'staged'), entry('b', 'live'), entry('c', 'retiring')]);
    expect(served.map((c) => [c.keyName, c.state])).toEqual([
      ['b', 'live'],
      ['c', 'retiring'],
    ]);
  });
});

describe('refresh timer and staged checks', () => {
  it('jitter stays within ±20 % of the interval', () => {
    expect(REFRESH_JITTER).toBe(0.2);
    expect(jitteredDelayMs(60, () => 0)).toBe(48_000);
    expect(jitteredDelayMs(60, () => 0.5)).toBe(60_000);
    expect(jitteredDelayMs(60, () => 0.999999)).toBeLessThanOrEqual(72_000);
    for (let i = 0; i < 100; i++) {
      const d = jitteredDelayMs(10);
      expect(d).toBeGreaterThanOrEqual(8000);
      expect(d).toBeLessThanOrEqual(12_000);
    }
  });

  it('checks staged entries against the key service and exposes the result per key', async () => {
    const pki = makeTestPki();
    try {
      const good = pki.leaf('good', 'p256', ['g.example.com']);
      const other = pki.leaf('other', 'p256', ['o.example.com']);
      const spkiOf = (k: crypto.KeyObject) => crypto.createPublicKey(k).export({ type: 'spki', format: 'der' });
      const e = (keyName: string, chainPem: string): StoredCertificate => ({
        id: keyName,
        source: keyName,
        keyName,
        hostnames: [],
        chainPem,
        state: 'staged',
      });
      const lookup = (name: string) => {
        if (name === 'good' || name === 'swapped') return Promise.resolve({ spki: spkiOf(good.key) });
        if (name === 'down') return Promise.reject(Object.assign(new Error('timeout'), { code: 'unavailable' }));
        return Promise.reject(Object.assign(new Error('unknown'), { code: 'unknown_key' }));
      };
      const checks = await checkStagedEntries(
        [
          e('good', good.chainPem),
          e('swapped', other.chainPem),
          e('missing', good.chainPem),
          e('down', good.chainPem),
          e('junk', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'),
        ],
        lookup,
      );
      expect(checks.map((c) => [c.keyName, c.result])).toEqual([
        ['good', 'ok'],
        ['swapped', 'key_mismatch'],
        ['missing', 'unknown_key'],
        ['down', 'unavailable'],
        ['junk', 'invalid'],
      ]);
      const registry = new MetricsRegistry();
      const m = new CertificateStoreMetrics(registry);
      m.recordStagedChecks(checks);
      let text = registry.renderPrometheus();
      expect(text).toContain('keyless_edge_staged_certificate_check{key_name="good",result="ok"} 1');
      expect(text).toContain('keyless_edge_staged_certificate_check{key_name="swapped",result="key_mismatch"} 1');
      expect(text).toContain('keyless_edge_staged_certificate_check{key_name="swapped",result="ok"} 0');
      // Promoted (no longer staged): every result drops to 0.
      m.recordStagedChecks(checks.filter((c) => c.keyName !== 'good'));
      text = registry.renderPrometheus();
      expect(text).toContain('keyless_edge_staged_certificate_check{key_name="good",result="ok"} 0');
    } finally {
      pki.cleanup();
    }
  });
});

describe('an edge refreshing from a directory store', () => {
  let pki: TestPki;
  let dir: string;
  let store: DirectoryCertificateStore;
  let lambda: LocalLambda;
  let origin: http.Server;
  let edge: RunningEdge;
  const logs: Array<Record<string, unknown>> = [];
  const leaves: Record<string, ReturnType<TestPki['leaf']>> = {};

  beforeAll(async () => {
    process.env.AWS_ACCESS_KEY_ID ??= 'local';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
    pki = makeTestPki();
    for (const n of ['one', 'two']) leaves[n] = pki.leaf(n, 'p256', ['refresh.localhost']);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-refresh-'));
    store = new DirectoryCertificateStore(dir);
    await store.put({ keyName: 'one', hostnames: [], chainPem: leaves.one.chainPem, slot: 'refresh', state: 'live' });
    const handler = createLocalHandler({
      keys: [
        { name: 'one', custody: 'file', path: leaves.one.keyPath },
        { name: 'two', custody: 'file', path: leaves.two.keyPath },
      ],
      ticketKeys: null,
      logger: () => undefined,
    });
    lambda = await startLocalLambda({ port: 0, functions: { ks: handler } });
    origin = http.createServer((_q, r) => r.end('ok'));
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    const logger = (b: Record<string, unknown>): Logger => ({
      log: (level, msg, f) => logs.push({ level, msg, ...b, ...f }),
      child: (f) => logger({ ...b, ...f }),
    });
    const config = parseEdgeConfig({
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      certificateStore: { directory: dir, refreshSeconds: 1 },
      keyServices: [{ functionName: 'ks', region: 'us-east-1', endpoint: `http://127.0.0.1:${lambda.port}` }],
      origin: `http://127.0.0.1:${(origin.address() as AddressInfo).port}`,
      tickets: { enabled: false },
    });
    edge = await startEdge(config, logger({}));
  });

  afterAll(async () => {
    await edge?.close();
    await lambda?.close();
    await new Promise<void>((r) => origin.close(() => r()));
    pki.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const leafServed = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const s = tls.connect(
        { host: '127.0.0.1', port: edge.tlsPort, servername: 'refresh.localhost', ca: pki.caPem },
        () => {
          const fp = s.getPeerX509Certificate()!.fingerprint256;
          s.destroy();
          resolve(fp);
        },
      );
      s.once('error', reject);
    });

  const waitFor = async (what: string, probe: () => Promise<boolean> | boolean): Promise<void> => {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (await probe()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out waiting for ${what}`);
  };
  const metrics = async (): Promise<string> => (await fetch(`http://127.0.0.1:${edge.adminPort}/metrics`)).text();
  const fp = (n: string): string => new crypto.X509Certificate(leaves[n].chainPem).fingerprint256;

  it('serves staged entries never, checks them, and picks up promotion and retirement on its timer', async () => {
    expect(await leafServed()).toBe(fp('one'));
    await store.put({ keyName: 'two', hostnames: [], chainPem: leaves.two.chainPem, slot: 'refresh', state: 'staged' });
    await waitFor('the staged check', async () =>
      (await metrics()).includes('keyless_edge_staged_certificate_check{key_name="two",result="ok"} 1'),
    );
    expect(await leafServed()).toBe(fp('one'));
    expect(await metrics()).toMatch(/keyless_edge_certificates\{state="staged"\} 1/);

    await store.put({ keyName: 'two', hostnames: [], chainPem: leaves.two.chainPem, slot: 'refresh', state: 'live' });
    await store.put({
      keyName: 'one',
      hostnames: [],
      chainPem: leaves.one.chainPem,
      slot: 'refresh',
      state: 'retiring',
    });
    await waitFor('the promoted certificate', async () => (await leafServed()) === fp('two'));
    expect(await metrics()).toMatch(/keyless_edge_certificates\{state="retiring"\} 1/);
    expect(logs.some((l) => l.msg === 'certificates reloaded' && l.trigger === 'timer' && l.changed === true)).toBe(
      true,
    );

    await store.remove('one');
    await waitFor('the retired certificate to go', async () =>
      /keyless_edge_certificates\{state="retiring"\} 0/.test(await metrics()),
    );
    expect(await leafServed()).toBe(fp('two'));
  });

  it('keeps its last good set when the store becomes unreadable, and counts the failures', async () => {
    const bad = path.join(dir, 'broken.json');
    fs.writeFileSync(bad, '{ not json');
    await waitFor('a refresh failure', async () =>
      /keyless_edge_certificate_refresh_failures_total\{trigger="timer"\} [1-9]/.test(await metrics()),
    );
    expect(await leafServed()).toBe(fp('two'));
    expect(
      logs.some(
        (l) =>
          l.msg === 'certificate reload failed; still serving the previous certificates' &&
          String(l.error).includes('broken.json'),
      ),
    ).toBe(true);
    fs.rmSync(bad);
    // A SIGHUP-style reload works again (and the failure counter does not move for it).
    const served = await edge.reloadCertificates();
    expect(served.map((c) => c.keyName)).toEqual(['two']);
  });
});
