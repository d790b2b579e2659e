/**
 * Rolling deploy from derived ticket keys to random stored ones: an edge of the old release and one
 * of the new release hold different keys for the same epoch. A ticket from one presented to the
 * other does not open, the client gets a full handshake (never an alert), and the new edge counts
 * it in keyless_edge_tickets_rejected_total. Same for a ticket from an epoch outside the window.
 */
import * as crypto from 'node:crypto';
import * as tls from 'node:tls';
import { TlsServer } from '../../edge-proxy/src/tls/server';
import { TicketProtector, type TicketRejection } from '../../edge-proxy/src/tls/tickets';
import { CertificateStore, loadCertificate } from '../../edge-proxy/src/tls/certificates';
import type { TlsServerConnection } from '../../edge-proxy/src/tls/connection';
import { EdgeMetrics } from '../../edge-proxy/src/observability/edge-metrics';
import { makeTestPki, type TestPki } from '../helpers/certs';
import { InProcessKeys } from '../helpers/in-process-keys';

let pki: TestPki;
let keys: InProcessKeys;
let certs: CertificateStore;
const servers: TlsServer[] = [];
const EPOCH = Math.floor(Date.now() / 3_600_000);

const fleetKeys = (current = crypto.randomBytes(32), epoch = EPOCH) => ({ epochSeconds: 3600, current: { epoch, key: current }, previous: { epoch: epoch - 1, key: crypto.randomBytes(32) } });

async function serve(tickets: TicketProtector): Promise<number> {
  const s = new TlsServer({ certificates: certs, keyOperations: keys, tickets, ticketSettings: { lifetimeSeconds: 3600 } });
  s.on('secureConnection', (c: TlsServerConnection) => c.end(c.handshakeInfo?.resumed ? 'resumed' : 'full'));
  servers.push(s);
  return (await s.listen(0)).port;
}

function connect(port: number, opts: tls.ConnectionOptions = {}): Promise<{ said: string; session?: Buffer }> {
  return new Promise((resolve, reject) => {
    let session: Buffer | undefined;
    let said = '';
    const s = tls.connect({ host: '127.0.0.1', port, ca: pki.caPem, servername: 'localhost', ...opts });
    s.on('session', (b: Buffer) => (session = b));
    s.on('data', (d: Buffer) => (said += d.toString()));
    s.on('error', reject);
    s.on('end', () => {
      s.destroy();
      setTimeout(() => resolve({ said, session }), 20); // TLS 1.3 tickets follow the handshake
    });
  });
}

beforeAll(() => {
  pki = makeTestPki();
  const leaf = pki.leaf('rsa', 'rsa2048', ['localhost']);
  keys = new InProcessKeys(new Map([['k', leaf.key]]));
  certs = new CertificateStore([loadCertificate(leaf.chainPem, 'k')]);
});

afterAll(async () => {
  for (const s of servers) await s.close(true);
  pki.cleanup();
});

describe.each([
  ['TLS 1.3 PSK', { minVersion: 'TLSv1.3' as const }],
  ['TLS 1.2 ticket', { maxVersion: 'TLSv1.2' as const, ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' }],
])('%s', (_name, version) => {
  test('a ticket of an old-release edge on a new-release edge: full handshake, counted as undecryptable', async () => {
    const oldEdge = new TicketProtector();
    oldEdge.setKeys(fleetKeys()); // stands in for the GenerateMac-derived key of this epoch
    const metrics = new EdgeMetrics();
    const newEdge = new TicketProtector({ onRejected: (r) => metrics.ticketRejected(r) });
    newEdge.setKeys(fleetKeys()); // the random stored key of the same epoch
    const [oldPort, newPort] = [await serve(oldEdge), await serve(newEdge)];

    const first = await connect(oldPort, version);
    expect(first.said).toBe('full');
    expect(first.session).toBeDefined();
    const signaturesBefore = keys.signatures;
    const again = await connect(newPort, { ...version, session: first.session });
    expect(again.said).toBe('full');
    expect(keys.signatures).toBe(signaturesBefore + 1); // the fallback is a real full handshake
    expect(metrics.renderPrometheus()).toMatch(/^keyless_edge_tickets_rejected_total\{reason="undecryptable"\} 1$/m);

    // The new edge's own ticket resumes on the new edge.
    expect((await connect(newPort, { ...version, session: again.session })).said).toBe('resumed');
  });

  test('a ticket from an epoch outside the window: full handshake, counted as expired_epoch', async () => {
    const rejected: TicketRejection[] = [];
    const edge = new TicketProtector({ onRejected: (r) => rejected.push(r) });
    const k = crypto.randomBytes(32);
    edge.setKeys(fleetKeys(k, EPOCH - 2));
    const port = await serve(edge);
    const first = await connect(port, version);
    edge.setKeys(fleetKeys(crypto.randomBytes(32), EPOCH)); // two epochs on: EPOCH - 2 is not accepted
    expect((await connect(port, { ...version, session: first.session })).said).toBe('full');
    expect(rejected).toEqual(['expired_epoch']);
  });
});
