/**
 * Handshake-duration histogram and KMS operations avoided, end to
 * end through the in-process edge in front of the demo origin: a full handshake, then a resumed one
 * that costs no key operation, is counted as one avoided, and is shown as resumed by the demo page.
 */
import * as tls from 'node:tls';
import { startDemoOrigin, type DemoOrigin } from '../../local/demo-origin';
import { startInProcessEdge, type InProcessEdge } from '../helpers/in-process-edge';

let origin: DemoOrigin;
let e: InProcessEdge;
beforeAll(async () => {
  origin = await startDemoOrigin();
  e = await startInProcessEdge({
    origin: origin.url,
    handshakeTimeoutMs: 30_000,
    keyOperationTimeoutMs: 20_000,
    keyServiceConnectTimeoutMs: 5000,
  });
});
afterAll(async () => {
  await e.stop();
  await origin.close();
});

/** GET `path` on a new TLS connection; resolves with the body, whether TLS resumed, and the newest session. */
function get(path: string, session?: Buffer): Promise<{ body: string; reused: boolean; session?: Buffer }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      host: '127.0.0.1',
      port: e.port,
      servername: 'localhost',
      ca: e.pki.caPem,
      ALPNProtocols: ['http/1.1'],
      session,
      maxVersion: 'TLSv1.3',
    });
    let latest: Buffer | undefined;
    let text = '';
    let reused = false;
    const timer = setTimeout(() => reject(new Error('client timeout')), 10_000);
    s.on('session', (b: Buffer) => (latest = b));
    s.on('error', reject);
    s.once('secureConnect', () => {
      reused = s.isSessionReused();
      s.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
    });
    s.on('data', (d: Buffer) => (text += d.toString()));
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ body: text.slice(text.indexOf('\r\n\r\n') + 4), reused, session: latest });
    });
  });
}

const signatures = (): number => e.invocations.filter((i) => i.op.startsWith('tls')).length;

it('counts the resumed handshake as one key operation avoided, and the demo page says it was resumed', async () => {
  const m = e.edge.edgeMetrics;
  const first = await get('/api/tls');
  expect(first.reused).toBe(false);
  expect(JSON.parse(first.body)).toMatchObject({ viaEdge: true, resumed: false, protocol: 'TLSv1.3' });
  expect(first.session).toBeDefined();
  const signed = signatures();
  expect(signed).toBe(1);
  expect(m.keyOperationsAvoided.get({})).toBe(0);

  const second = await get('/', first.session);
  expect(second.reused).toBe(true);
  expect(second.body).toMatch(/<th>Resumed<\/th><td><code>yes<\/code>/);
  expect(second.body).toContain('session resumed, no private-key operation');
  expect(signatures()).toBe(signed); // no key operation for the resumption
  expect(m.keyOperationsAvoided.get({})).toBe(1);

  // The handshake-duration histogram has one full and one resumed TLS 1.3 handshake.
  expect(m.handshakeDuration.count({ protocol: 'TLSv1.3', kind: 'full' })).toBe(1);
  expect(m.handshakeDuration.count({ protocol: 'TLSv1.3', kind: 'resumed' })).toBe(1);
  const text = await (await fetch(`http://127.0.0.1:${e.edge.adminPort}/metrics`)).text();
  expect(text).toContain('# TYPE keyless_edge_handshake_duration_seconds histogram');
  expect(text).toMatch(
    /keyless_edge_handshake_duration_seconds_bucket\{protocol="TLSv1.3",kind="resumed",le="\+Inf"\} 1/,
  );
  expect(text).toMatch(
    /keyless_edge_handshake_duration_seconds_bucket\{protocol="TLSv1.3",kind="full",le="0.001"\} \d/,
  );
  expect(text).toContain('keyless_edge_key_operations_avoided_total 1');
  // The full handshake's key operation is in the key-operation latency histogram.
  expect(text).toMatch(/keyless_key_operation_duration_seconds_count\{op="tls13.certificate_verify"\} 1/);
  // The handshake log line carries its duration.
  const line = e.logs.find((l) => l.msg === 'handshake' && l.resumed === true);
  expect(typeof line?.handshakeMs).toBe('number');
});
