/**
 * Rolling deploy from derived ticket keys to random stored ones: an edge of the old release and one
 * of the new release hold different keys for the same epoch. A ticket from one presented to the
 * other does not open, the client gets a full handshake (never an alert), and the new edge counts
 * it in keyless_edge_tickets_rejected_total. Same for a ticket from an epoch outside the window.
 */
import * as crypto from 'node:crypto';
import * as tls from 'node:tls';
import { TicketProtector, type TicketRejection } from '../../../../edge-proxy/src/tls/tickets';
import { CertificateStore, loadCertificate } from '../../../../edge-proxy/src/tls/certificates';
import { EdgeMetrics } from '../../../../edge-proxy/src/observability/edge-metrics';
import { makeTestPki, type TestPki } from '../../../helpers/certs';
import { InProcessKeys } from '../../../helpers/in-process-keys';
import { connectForResumption, ResumptionEdges, type ResumptionOutcome } from '../../../helpers/resumption';

let pki: TestPki;
let keys: InProcessKeys;
let certs: CertificateStore;
let edges: ResumptionEdges;
const EPOCH = Math.floor(Date.now() / 3_600_000);

const fleetKeys = (current = crypto.randomBytes(32), epoch = EPOCH) => ({
  epochSeconds: 3600,
  current: { epoch, key: current },
  previous: { epoch: epoch - 1, key: crypto.randomBytes(32) },
});

const serve = (tickets: TicketProtector): Promise<number> => edges.serve(tickets);
const connect = (port: number, opts: tls.ConnectionOptions = {}): Promise<ResumptionOutcome> =>
  connectForResumption(port, pki.caPem, opts);

beforeAll(() => {
  pki = makeTestPki();
  const leaf = pki.leaf('rsa', 'rsa2048', ['localhost']);
  keys = new InProcessKeys(new Map([['k', leaf.key]]));
  certs = new CertificateStore([loadCertificate(leaf.chainPem, 'k')]);
  edges = new ResumptionEdges(certs, keys);
});

afterAll(async () => {
  await edges.close();
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
