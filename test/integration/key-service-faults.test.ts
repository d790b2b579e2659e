/**
 * Key-service faults, end to end in one process: the real edge assembly
 * (`startEdge`: TLS engine, KeyServiceClient, FailoverTarget over real AWS SDK Lambda clients) in
 * front of the real key-service handler (file keys) behind local Lambda-invoke endpoints, driven
 * with real TLS handshakes from Node's `tls`.
 *
 * Faults: the key service stopped (connection refused), slow (sleeps past the deadline), throttled
 * (a typed `throttled` answer, and the endpoint answering 429 TooManyRequestsException), garbage
 * (a malformed answer, and a payload that is not JSON), and valid signatures by the wrong key.
 * For each: new handshakes fail with an alert within 3× the deadline, the circuit breaker opens and
 * then fails fast, the edge keeps answering (/healthz, established connections), the breaker closes
 * again once the key service is back; and with a second key service configured, it takes over and
 * traffic fails back when the first recovers.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { parseEdgeConfig } from '../../edge-proxy/src/config';
import { startEdge, type EdgeHealth, type RunningEdge } from '../../edge-proxy/src/edge';
import type { Logger } from '../../edge-proxy/src/observability/log';
import { type KeyServiceHandler } from '../../lambdas/key-service/handler';
import { createLocalHandler } from '../../local/lambda/local-key-service';
import { startLocalLambda, type LocalLambda, type LocalLambdaFault, type LocalLambdaHandler } from '../../local/lambda';
import { makeTestPki, type TestPki } from '../helpers/certs';

const DEADLINE_MS = 400;
const COOLDOWN_MS = 600;
const FAIL_FAST_MS = 3 * DEADLINE_MS;
const FUNCTION = 'keyless-key-service';

type Fault = 'none' | 'stopped' | 'slow' | 'throttled' | 'http429' | 'garbage' | 'not-json' | 'wrong-key';
type Service = 'a' | 'b';

let pki: TestPki;
let chainFile: string;
let real: KeyServiceHandler;
let impostor: KeyServiceHandler;
let origin: http.Server;
let originUrl: string;
const lambdas: Partial<Record<Service, LocalLambda>> = {};
const ports: Partial<Record<Service, number>> = {};
const fault: Record<Service, Fault> = { a: 'none', b: 'none' };
const sleepers = new Set<NodeJS.Timeout>();
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};
const savedEnv = { ...process.env };

const sleep = (ms: number) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      sleepers.delete(t);
      resolve();
    }, ms);
    sleepers.add(t);
  });

/** The real handler, or what a broken key service does instead. */
function keyService(which: Service): LocalLambdaHandler {
  return async (event, context) => {
    const rawId = (event as { id?: unknown } | null)?.id;
    const id = typeof rawId === 'string' ? rawId : null;
    switch (fault[which]) {
      case 'slow':
        await sleep(3 * DEADLINE_MS);
        return real(event, context);
      case 'throttled':
        return { v: 2, id, ok: false, error: { code: 'throttled', message: 'KMS request rate exceeded' } };
      case 'garbage':
        return { v: 2, id, ok: true, result: { signature: 'this is not base64!', backendMs: 1 } };
      case 'wrong-key':
        return impostor(event, context);
      default:
        return real(event, context);
    }
  };
}

/** What the local Lambda endpoint itself answers instead of running the function (test-only hook). */
function endpointFault(which: Service): LocalLambdaFault | undefined {
  if (fault[which] === 'http429')
    return { type: 'error', status: 429, errorType: 'TooManyRequestsException', message: 'Rate exceeded' };
  if (fault[which] === 'not-json') return { type: 'raw', body: '<html><body>502 Bad Gateway</body></html>' };
  return undefined;
}

async function startService(which: Service): Promise<void> {
  const l = await startLocalLambda({
    port: ports[which] ?? 0,
    functions: { [FUNCTION]: keyService(which) },
    faultInjector: () => endpointFault(which),
  });
  lambdas[which] = l;
  ports[which] = l.port;
}

async function inject(which: Service, f: Fault): Promise<void> {
  fault[which] = f;
  if (f === 'stopped') {
    await lambdas[which]!.close();
    lambdas[which] = undefined;
  }
}

async function heal(which: Service): Promise<void> {
  fault[which] = 'none';
  if (!lambdas[which]) await startService(which);
}

const silent: Logger = { log: () => undefined, child: () => silent };

async function edge(services: Service[]): Promise<RunningEdge> {
  const config = parseEdgeConfig({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    certificates: [{ chainFile, keyName: 'web', hostnames: ['localhost'] }],
    keyServices: services.map((s) => ({
      functionName: FUNCTION,
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${ports[s]}`,
    })),
    origin: originUrl,
    alpn: ['http/1.1'],
    keyOperationTimeoutMs: DEADLINE_MS,
    keyServiceConnectTimeoutMs: 100,
    handshakeTimeoutMs: 5000,
    circuitBreaker: { failureThreshold: 3, cooldownMs: COOLDOWN_MS },
    // These tests count handshake key operations exactly; ticket-key fetches would add to the counts
    // (resumption during outages is tested in test/integration/resumption.test.ts).
    tickets: { enabled: false },
  });
  return startEdge(config, silent);
}

interface HandshakeResult {
  ok: boolean;
  error?: string;
  ms: number;
}

/** One full handshake (then closed). Never hangs the test: a 5 s client-side backstop. */
function handshake(port: number): Promise<HandshakeResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const s = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: pki.caPem,
      ALPNProtocols: ['http/1.1'],
    });
    const done = (r: Omit<HandshakeResult, 'ms'>) => {
      clearTimeout(timer);
      if (r.ok)
        s.end(); // close_notify after our Finished
      else s.destroy();
      resolve({ ...r, ms: performance.now() - started });
    };
    const timer = setTimeout(() => done({ ok: false, error: 'client timeout' }), 5000);
    s.once('secureConnect', () => done({ ok: true }));
    s.once('error', (e) => done({ ok: false, error: e.message }));
    s.once('close', () => done({ ok: false, error: 'closed without an alert' }));
  });
}

function expectAlert(r: HandshakeResult): void {
  expect(r.ok).toBe(false);
  expect(r.error).toMatch(/alert internal error/i);
  expect(r.ms).toBeLessThan(FAIL_FAST_MS);
}

/** An established connection with HTTP/1.1 keep-alive. */
async function establish(port: number): Promise<tls.TLSSocket> {
  const s = tls.connect({
    host: '127.0.0.1',
    port,
    servername: 'localhost',
    ca: pki.caPem,
    ALPNProtocols: ['http/1.1'],
  });
  await new Promise<void>((resolve, reject) => s.once('secureConnect', resolve).once('error', reject));
  return s;
}

function request(s: tls.TLSSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(
      () => finish(new Error(`no response on the established connection: ${JSON.stringify(text)}`)),
      3000,
    );
    const onData = (d: Buffer) => {
      text += d.toString();
      if (text.includes('origin-ok')) finish();
    };
    const finish = (err?: Error) => {
      clearTimeout(timer);
      s.off('data', onData);
      if (err) reject(err);
      else resolve(text);
    };
    s.on('data', onData);
    s.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n');
  });
}

async function healthz(e: RunningEdge): Promise<{ status: number; body: EdgeHealth }> {
  await e.checkHealth();
  const r = await fetch(`http://127.0.0.1:${e.adminPort}/healthz`);
  return { status: r.status, body: (await r.json()) as EdgeHealth };
}

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  // Local endpoints take any credentials; the SDK still wants some.
  process.env.AWS_ACCESS_KEY_ID = 'local';
  process.env.AWS_SECRET_ACCESS_KEY = 'local';
  delete process.env.AWS_PROFILE;
  delete process.env.AWS_ENDPOINT_URL_LAMBDA;

  pki = makeTestPki();
  const leaf = pki.leaf('web', 'p256', ['localhost']);
  chainFile = path.join(pki.dir, 'web-chain.pem');
  fs.writeFileSync(chainFile, leaf.chainPem);
  const otherKey = path.join(pki.dir, 'other.key');
  fs.writeFileSync(
    otherKey,
    crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
    { mode: 0o600 },
  );
  real = createLocalHandler({ keys: [{ name: 'web', custody: 'file', path: leaf.keyPath }], logger: () => undefined });
  // Same key name, another private key: a misconfigured (or hostile) key service.
  impostor = createLocalHandler({ keys: [{ name: 'web', custody: 'file', path: otherKey }], logger: () => undefined });

  origin = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '10' });
    res.end('origin-ok\n');
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
  await startService('a');
  await startService('b');
});

afterAll(async () => {
  for (const t of sleepers) clearTimeout(t);
  for (const l of Object.values(lambdas)) await l?.close();
  await new Promise<void>((r) => origin.close(() => r()));
  pki.cleanup();
  process.off('unhandledRejection', onUnhandled);
  process.env = savedEnv;
});

afterEach(async () => {
  await heal('a');
  await heal('b');
});

/**
 * retryable: the fault is worth one more attempt (on the same key service when it is alone), so one
 * handshake costs two breaker failures; error: how the edge classifies it; pingOk: whether the key
 * service still answers `ping` under the fault.
 */
const FAULTS: Array<{ fault: Fault; retryable: boolean; error: string; pingOk: boolean }> = [
  { fault: 'stopped', retryable: true, error: 'unavailable', pingOk: false },
  { fault: 'slow', retryable: false, error: 'timeout', pingOk: false },
  { fault: 'throttled', retryable: true, error: 'throttled', pingOk: false },
  { fault: 'http429', retryable: true, error: 'throttled', pingOk: false },
  { fault: 'garbage', retryable: false, error: 'internal', pingOk: false },
  { fault: 'not-json', retryable: false, error: 'internal', pingOk: false },
  { fault: 'wrong-key', retryable: false, error: 'bad_signature', pingOk: true },
];

describe('one key service', () => {
  it.each(FAULTS)(
    '$fault: handshakes fail fast with an alert, the breaker opens, the edge stays up, and it recovers',
    async ({ fault: f, retryable, error, pingOk }) => {
      const e = await edge(['a']);
      let established: tls.TLSSocket | undefined;
      try {
        const breaker = e.failover.breaker(0);
        const name = e.failover.targets[0].name;
        established = await establish(e.tlsPort);
        expect(await request(established)).toMatch(/^HTTP\/1\.1 200/);
        expect((await healthz(e)).status).toBe(200);

        await inject('a', f);
        // Each handshake fails with an alert within the deadline until the breaker opens: two failed
        // requests per handshake when the fault is retryable (one retry), one otherwise.
        let failed = 0;
        while (breaker.state !== 'open' && failed < 6) {
          expectAlert(await handshake(e.tlsPort));
          failed++;
        }
        expect(breaker.state).toBe('open');
        expect(failed).toBe(retryable ? 2 : 3);
        expect(e.metrics.errors.get({ target: name, type: error })).toBeGreaterThanOrEqual(3);

        // Open: the handshake fails at once, without a request to the key service.
        const sent = e.metrics.requests.sum();
        expectAlert(await handshake(e.tlsPort));
        expect(e.metrics.requests.sum()).toBe(sent);
        expect(
          e.metrics.operations.get({ op: 'tls13.certificate_verify', outcome: 'unavailable' }),
        ).toBeGreaterThanOrEqual(1);

        // The edge stays healthy: the admin listener answers (503 only when no key service answers
        // ping) with the breaker state, and the established connection still carries requests.
        const h = await healthz(e);
        expect(h.status).toBe(pingOk ? 200 : 503);
        expect(h.body.ok).toBe(pingOk);
        expect(h.body.keyServices).toEqual([expect.objectContaining({ name, breaker: 'open', reachable: pingOk })]);
        expect(await request(established)).toMatch(/^HTTP\/1\.1 200/);

        // Back: after the cool-down the breaker lets a probe through, it succeeds and closes it.
        await heal('a');
        await sleep(COOLDOWN_MS + 50);
        expect(breaker.state).toBe('half_open');
        const back = await handshake(e.tlsPort);
        expect(back).toMatchObject({ ok: true });
        expect(breaker.state).toBe('closed');
        expect((await handshake(e.tlsPort)).ok).toBe(true);
        expect((await healthz(e)).body.keyServices[0]).toMatchObject({ breaker: 'closed', reachable: true });
        expect(await request(established)).toMatch(/^HTTP\/1\.1 200/);
      } finally {
        established?.destroy();
        await e.close();
      }
    },
  );

  it('many concurrent handshakes against a hanging key service all end within the deadline', async () => {
    const e = await edge(['a']);
    try {
      await inject('a', 'slow');
      const results = await Promise.all(Array.from({ length: 12 }, () => handshake(e.tlsPort)));
      for (const r of results) expectAlert(r);
      expect(e.failover.breaker(0).state).toBe('open');
      expect(e.keys.inFlight).toBe(0);
    } finally {
      await e.close();
    }
  });
});

describe('two key services, the first one failing', () => {
  it.each(FAULTS)(
    '$fault: the second key service takes over, and traffic fails back when the first recovers',
    async ({ fault: f, retryable, pingOk }) => {
      const e = await edge(['a', 'b']);
      let established: tls.TLSSocket | undefined;
      try {
        const [nameA, nameB] = e.failover.targets.map((t) => t.name);
        established = await establish(e.tlsPort);
        expect(await request(established)).toMatch(/^HTTP\/1\.1 200/);

        await inject('a', f);
        // Until the first key service is judged unhealthy (EWMA) or its breaker opens — at the latest
        // after failureThreshold (3) failed requests — handshakes go to it first. A retryable fault is
        // retried on the second within the same deadline, so no handshake fails; otherwise those
        // handshakes fail with an alert, fast.
        let sentToA = 0;
        let failures = 0;
        while (e.failover.status()[0].preferred && sentToA < 6) {
          const r = await handshake(e.tlsPort);
          sentToA++;
          if (r.ok) expect(r.ms).toBeLessThan(FAIL_FAST_MS);
          else {
            expectAlert(r);
            failures++;
          }
        }
        expect(sentToA).toBeGreaterThanOrEqual(1);
        expect(sentToA).toBeLessThanOrEqual(3);
        expect(failures).toBe(retryable ? 0 : sentToA);
        if (retryable) expect(e.metrics.failovers.get({ from: nameA, to: nameB, reason: 'retry' })).toBe(sentToA);

        // Taken over: the second key service serves every handshake; the first is left alone.
        const aSent = e.metrics.requests.sum({ target: nameA });
        const bOk = e.metrics.requests.get({ target: nameB, outcome: 'ok' });
        for (let i = 0; i < 4; i++) {
          const r = await handshake(e.tlsPort);
          expect(r).toMatchObject({ ok: true });
          expect(r.ms).toBeLessThan(FAIL_FAST_MS);
        }
        expect(e.metrics.requests.get({ target: nameB, outcome: 'ok' })).toBe(bOk + 4);
        expect(e.metrics.requests.sum({ target: nameA })).toBe(aSent);
        expect(e.failover.status().map((s) => s.preferred)).toEqual([false, true]);
        expect(e.metrics.failovers.get({ from: nameA, to: nameB, reason: 'health' })).toBe(1);

        const h = await healthz(e);
        expect(h.status).toBe(200);
        expect(h.body.keyServices.map((s) => s.reachable)).toEqual([pingOk, true]);
        expect(await request(established)).toMatch(/^HTTP\/1\.1 200/);

        // The first recovers: once its bad record has faded (about one cool-down) or its breaker is
        // half-open, it gets traffic again and keeps it.
        await heal('a');
        const until = performance.now() + 4 * COOLDOWN_MS;
        while (!e.failover.status()[0].preferred && performance.now() < until) await sleep(25);
        const aOk = e.metrics.requests.get({ target: nameA, outcome: 'ok' });
        expect((await handshake(e.tlsPort)).ok).toBe(true);
        expect((await handshake(e.tlsPort)).ok).toBe(true);
        expect(e.metrics.requests.get({ target: nameA, outcome: 'ok' })).toBe(aOk + 2);
        expect(e.failover.status().map((s) => s.preferred)).toEqual([true, false]);
        expect(e.failover.breaker(0).state).toBe('closed');
        expect(e.metrics.failovers.get({ from: nameB, to: nameA, reason: 'health' })).toBe(1);
      } finally {
        established?.destroy();
        await e.close();
      }
    },
  );

  it('both down: fails fast, /healthz 503 naming both breakers; one back is enough', async () => {
    const e = await edge(['a', 'b']);
    try {
      await inject('a', 'stopped');
      await inject('b', 'stopped');
      for (let i = 0; i < 4; i++) expectAlert(await handshake(e.tlsPort));
      const h = await healthz(e);
      expect(h.status).toBe(503);
      expect(h.body.keyServices.map((s) => [s.breaker, s.reachable])).toEqual([
        ['open', false],
        ['open', false],
      ]);
      await heal('b');
      const healthy = await healthz(e);
      expect(healthy.status).toBe(200);
      expect(healthy.body.keyService).toBe('reachable');
      await sleep(COOLDOWN_MS + 50);
      expect((await handshake(e.tlsPort)).ok).toBe(true);
    } finally {
      await e.close();
    }
  });
});

describe('afterwards', () => {
  it('no fault left an unhandled promise rejection behind', () => {
    expect(unhandled).toEqual([]);
  });
});
