/**
 * Admission control under a flood: many clients opening full handshakes as fast as
 * they can against the real edge assembly in front of the real key-service handler. Counted on the
 * key-service side, the key-operation rate stays within the configured budget (burst + rate × time);
 * refused handshakes get `handshake_failure` at once and are counted; resumptions keep succeeding
 * (they cost no key operation); a flooding client address is limited without locking out others.
 */
import { connectOnce, startInProcessEdge, type HandshakeOutcome, type InProcessEdge } from '../helpers/in-process-edge';

const SIGNING = new Set(['tls13.certificate_verify', 'tls12.server_key_exchange', 'tls12.rsa_master_secret']);

function signings(e: InProcessEdge, since = 0): number {
  return e.invocations.filter((i) => SIGNING.has(i.op) && i.at >= since).length;
}

/** `workers` clients each opening full handshakes back to back for `ms`. */
async function flood(
  e: InProcessEdge,
  workers: number,
  ms: number,
  localAddress?: string,
): Promise<HandshakeOutcome[]> {
  const results: HandshakeOutcome[] = [];
  const until = performance.now() + ms;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (performance.now() < until) results.push(await connectOnce(e.port, e.pki.caPem, { localAddress }));
    }),
  );
  return results;
}

async function metric(e: InProcessEdge, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${e.edge.adminPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : 0;
}

describe('global key-operation budget', () => {
  const RATE = 20;
  const BURST = 2;
  let e: InProcessEdge;
  beforeAll(async () => {
    e = await startInProcessEdge({
      admission: {
        keyOperationsPerSecond: RATE,
        keyOperationBurst: BURST,
        perClientRatePerSecond: 1_000_000,
        perClientBurst: 1_000_000,
      },
    });
  });
  afterAll(() => e.stop());

  it('keeps key operations at or under the budget while legitimate resumptions succeed', async () => {
    // A legitimate client: one full handshake before the flood, and a session ticket from it.
    const legit = await connectOnce(e.port, e.pki.caPem, { request: true });
    expect(legit.ok).toBe(true);
    expect(legit.session).toBeDefined();
    await new Promise((r) => setTimeout(r, 1000 / RATE + 10)); // let a token come back

    const start = performance.now();
    const resumptions: HandshakeOutcome[] = [];
    const floodDone = flood(e, 48, 2000);
    let flooding = true;
    const resumer = (async () => {
      while (flooding) {
        resumptions.push(await connectOnce(e.port, e.pki.caPem, { session: legit.session }));
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const results = await floodDone;
    const end = performance.now();
    flooding = false;
    await resumer;

    const ops = signings(e, start);
    const ok = results.filter((r) => r.ok).length;
    const refused = results.filter((r) => !r.ok);
    // The bound: a full bucket at the start plus the steady rate for the whole flood.
    expect(ops).toBeLessThanOrEqual(BURST + Math.ceil((RATE * (end - start)) / 1000));
    expect(ok).toBe(ops); // every admitted handshake completed, every signature served one
    expect(refused.length).toBeGreaterThan(0); // the flood really was over budget
    for (const r of refused) expect(r.error).toMatch(/alert handshake failure/i);
    expect(await metric(e, 'keyless_edge_admission_rejections_total{reason="key_budget"}')).toBe(refused.length);

    // Resumptions never needed the key service and were never refused.
    expect(resumptions.length).toBeGreaterThanOrEqual(2);
    for (const r of resumptions) expect(r).toMatchObject({ ok: true, resumed: true });
  });
});

describe('per-client-address limit', () => {
  let e: InProcessEdge;
  beforeAll(async () => {
    e = await startInProcessEdge({ admission: { perClientRatePerSecond: 2, perClientBurst: 3 } });
  });
  afterAll(() => e.stop());

  it('limits a flooding address, not its neighbours', async () => {
    const start = performance.now();
    const results = await flood(e, 16, 1000, '127.0.0.1');
    const end = performance.now();
    const ok = results.filter((r) => r.ok).length;
    expect(ok).toBeLessThanOrEqual(3 + Math.ceil((2 * (end - start)) / 1000));
    expect(results.length - ok).toBeGreaterThan(0);
    expect(await metric(e, 'keyless_edge_admission_rejections_total{reason="client_rate"}')).toBe(results.length - ok);
    // Another client address still gets its full handshakes.
    const other = await connectOnce(e.port, e.pki.caPem, { localAddress: '127.0.0.2' });
    expect(other.ok).toBe(true);
    expect(signings(e)).toBe(ok + 1);
  });
});
