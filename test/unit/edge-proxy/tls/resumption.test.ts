/**
 * Session resumption in the engine, driven by Node/OpenSSL clients: TLS 1.3 PSK and TLS 1.2
 * tickets resume without a key operation; tickets under the previous epoch's key still resume;
 * a ticket that is expired, from another fleet, for another name or under a retired key leads to a
 * full handshake, never an error.
 */
import * as crypto from 'node:crypto';
import * as tls from 'node:tls';
import { TicketProtector } from '../../../../edge-proxy/src/tls/tickets';
import { CertificateStore, loadCertificate } from '../../../../edge-proxy/src/tls/certificates';
import { makeTestPki, TestPki } from '../../../helpers/certs';
import { InProcessKeys } from '../../../helpers/in-process-keys';
import { connectForResumption, ResumptionEdges, type ResumptionOutcome } from '../../../helpers/resumption';

let pki: TestPki;
let keys: InProcessKeys;
let certs: CertificateStore;
let edges: ResumptionEdges;

const epochKeys = (epoch: number, key = crypto.randomBytes(32), prev = crypto.randomBytes(32)) => ({
  epochSeconds: 3600,
  current: { epoch, key },
  previous: { epoch: epoch - 1, key: prev },
});

const serve = (tickets: TicketProtector, lifetimeSeconds?: number): Promise<number> =>
  edges.serve(tickets, lifetimeSeconds);

/** Connects, returns whether the server resumed, and the session to resume with next time. */
const connect = (port: number, opts: tls.ConnectionOptions = {}): Promise<ResumptionOutcome> =>
  connectForResumption(port, pki.caPem, opts);

beforeAll(() => {
  pki = makeTestPki();
  const leaf = pki.leaf('rsa', 'rsa2048', ['localhost', 'other.test']);
  keys = new InProcessKeys(new Map([['k', leaf.key]]));
  certs = new CertificateStore([{ ...loadCertificate(leaf.chainPem, 'k'), allowRsaKeyExchange: true }]);
  edges = new ResumptionEdges(certs, keys);
});

afterAll(async () => {
  await edges.close();
  pki.cleanup();
});

describe.each([
  ['TLS 1.3', { minVersion: 'TLSv1.3' as const }],
  ['TLS 1.2 ECDHE', { maxVersion: 'TLSv1.2' as const, ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' }],
  ['TLS 1.2 RSA key exchange', { maxVersion: 'TLSv1.2' as const, ciphers: 'AES128-GCM-SHA256' }],
])('%s', (_name, version) => {
  it('resumes on another edge of the same fleet without a key operation', async () => {
    const fleet = epochKeys(100);
    const a = new TicketProtector();
    const b = new TicketProtector();
    a.setKeys(fleet);
    b.setKeys(fleet);
    const [pa, pb] = [await serve(a), await serve(b)];
    const first = await connect(pa, version);
    expect(first).toMatchObject({ said: 'full', reused: false });
    const before = keys.signatures;
    const again = await connect(pb, { ...version, session: first.session });
    expect(again).toMatchObject({ said: 'resumed', reused: true });
    expect(keys.signatures).toBe(before);
  });

  it('accepts a ticket under the previous epoch after the keys roll over', async () => {
    const p = new TicketProtector();
    const k100 = crypto.randomBytes(32);
    p.setKeys(epochKeys(100, k100));
    const port = await serve(p);
    const first = await connect(port, version);
    p.setKeys(epochKeys(101, crypto.randomBytes(32), k100));
    expect((await connect(port, { ...version, session: first.session })).reused).toBe(true);
    p.setKeys(epochKeys(102)); // two epochs later the key is gone: full handshake, no error
    expect(await connect(port, { ...version, session: first.session })).toMatchObject({ said: 'full', reused: false });
  });

  it('falls back to a full handshake for a foreign ticket or another server name', async () => {
    const p1 = new TicketProtector();
    const p2 = new TicketProtector();
    p1.setKeys(epochKeys(7));
    p2.setKeys(epochKeys(7));
    const [port1, port2] = [await serve(p1), await serve(p2)];
    const first = await connect(port1, version);
    expect(await connect(port2, { ...version, session: first.session })).toMatchObject({ said: 'full', reused: false });
    expect(await connect(port1, { ...version, session: first.session, servername: 'other.test' })).toMatchObject({
      said: 'full',
    });
  });

  it('falls back to a full handshake for an expired ticket', async () => {
    const p = new TicketProtector();
    p.setKeys(epochKeys(9));
    const port = await serve(p, 1);
    const first = await connect(port, version);
    await new Promise((r) => setTimeout(r, 1300));
    expect(await connect(port, { ...version, session: first.session })).toMatchObject({ said: 'full', reused: false });
  });
});

describe('ticket protection', () => {
  it('seals and opens state, and rejects tampering', () => {
    const p = new TicketProtector();
    p.setKeys(epochKeys(5));
    const state = {
      protocol: 'TLSv1.3' as const,
      suite: 0x1301,
      secret: crypto.randomBytes(32),
      issuedAt: Date.now(),
      ageAdd: 7,
      lifetimeSeconds: 60,
      extendedMasterSecret: false,
      serverName: 'localhost',
      alpn: 'h2',
    };
    const t = p.seal(state)!;
    expect(p.open(t)).toEqual(state);
    const bad = Buffer.from(t);
    bad[bad.length - 20] ^= 1;
    expect(p.open(bad)).toBeUndefined();
    expect(p.open(t.subarray(0, 10))).toBeUndefined();
    expect(new TicketProtector().open(t)).toBeUndefined();
  });
});
