/**
 * Observability: the edge's Prometheus `/metrics` on the admin listener — handshakes
 * by protocol, suite, group, kind and result/alert, admission rejections, active connections, bytes
 * in/out, next to the key-service client's metrics from the same registry — and JSON log lines that
 * carry a connection id.
 */
import * as net from 'node:net';
import { EdgeMetrics } from '../../../../edge-proxy/src/observability/edge-metrics';
import { connectOnce, startInProcessEdge, type InProcessEdge } from '../../../helpers/in-process-edge';

/** Parses Prometheus text into `name{labels}` → value (label order as rendered). */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

function sum(m: Map<string, number>, name: string, ...parts: string[]): number {
  let total = 0;
  for (const [k, v] of m) if ((k === name || k.startsWith(`${name}{`)) && parts.every((p) => k.includes(p))) total += v;
  return total;
}

describe('EdgeMetrics', () => {
  it('labels handshakes by protocol, suite, group, kind, result and alert', () => {
    const m = new EdgeMetrics();
    m.handshakeSucceeded({ protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', group: 'x25519', resumed: false });
    m.handshakeSucceeded({ protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', group: 'x25519', resumed: true });
    m.handshakeFailed({ sentAlert: 'handshake_failure' });
    m.handshakeFailed({ receivedAlert: 'bad_certificate' });
    m.handshakeFailed({});
    m.admissionRejected('key_budget');
    const text = m.renderPrometheus();
    expect(text).toContain('# TYPE keyless_edge_handshakes_total counter');
    expect(text).toContain(
      'keyless_edge_handshakes_total{protocol="TLSv1.3",suite="TLS_AES_128_GCM_SHA256",group="x25519",kind="full",result="ok",alert=""} 1',
    );
    expect(text).toContain('kind="resumed",result="ok"');
    expect(text).toContain('kind="unknown",result="alert_sent",alert="handshake_failure"} 1');
    expect(text).toContain('result="alert_received",alert="bad_certificate"} 1');
    expect(text).toContain('result="error",alert=""} 1');
    expect(text).toContain('keyless_edge_admission_rejections_total{reason="key_budget"} 1');
    expect(text).toContain('keyless_edge_active_connections 0');
    expect(text).toContain('keyless_edge_draining 0');
  });

  it('counts sockets, their bytes both ways while open and after close', async () => {
    const m = new EdgeMetrics();
    let serverSide: net.Socket | undefined;
    const server = net.createServer((s) => {
      serverSide = s;
      m.trackSocket(s);
      s.on('data', (d) => s.write(Buffer.concat([d, d])));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const c = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    c.write('hello');
    await new Promise<void>((r) => c.once('data', () => r()));
    let p = parse(m.renderPrometheus());
    expect(p.get('keyless_edge_active_connections')).toBe(1);
    expect(p.get('keyless_edge_connections_total')).toBe(1);
    expect(p.get('keyless_edge_bytes_total{direction="in"}')).toBe(5);
    expect(p.get('keyless_edge_bytes_total{direction="out"}')).toBe(10);
    c.end('!!');
    await new Promise<void>((r) => serverSide!.once('close', () => r()));
    await new Promise<void>((r) => server.close(() => r()));
    p = parse(m.renderPrometheus());
    expect(p.get('keyless_edge_active_connections')).toBe(0);
    expect(p.get('keyless_edge_bytes_total{direction="in"}')).toBe(7);
    expect(p.get('keyless_edge_bytes_total{direction="out"}')).toBe(14);
  });
});

describe('/metrics on the admin listener', () => {
  let e: InProcessEdge;
  beforeAll(async () => {
    // One full handshake per client address, then handshake_failure.
    e = await startInProcessEdge({ admission: { perClientRatePerSecond: 1, perClientBurst: 2 } });
  });
  afterAll(() => e.stop());

  it('reports handshakes, resumptions, admission rejections, connections, bytes and key operations', async () => {
    const first = await connectOnce(e.port, e.pki.caPem, { request: true });
    expect(first).toMatchObject({ ok: true, resumed: false, protocol: 'TLSv1.3' });
    const tls12 = await connectOnce(e.port, e.pki.caPem, { maxVersion: 'TLSv1.2' });
    expect(tls12).toMatchObject({ ok: true, protocol: 'TLSv1.2' });
    const refused = await connectOnce(e.port, e.pki.caPem);
    expect(refused.ok).toBe(false);
    expect(refused.error).toMatch(/handshake failure/i);
    // A resumption is not a full handshake: admission never sees it (when tickets are issued).
    const resumed = first.session ? await connectOnce(e.port, e.pki.caPem, { session: first.session }) : undefined;

    const r = await fetch(`http://127.0.0.1:${e.edge.adminPort}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await r.text();
    const m = parse(text);
    // Node 24 (OpenSSL 3.5) offers the post-quantum hybrid by default; TLS 1.2 has no hybrid.
    expect(
      sum(
        m,
        'keyless_edge_handshakes_total',
        'protocol="TLSv1.3"',
        'kind="full"',
        'result="ok"',
        'group="X25519MLKEM768"',
      ),
    ).toBe(1);
    expect(
      sum(m, 'keyless_edge_handshakes_total', 'protocol="TLSv1.2"', 'kind="full"', 'result="ok"', 'group="x25519"'),
    ).toBe(1);
    expect(sum(m, 'keyless_edge_handshakes_total', 'protocol="TLSv1.2"', 'kind="full"', 'result="ok"')).toBe(1);
    expect(sum(m, 'keyless_edge_handshakes_total', 'result="alert_sent"', 'alert="handshake_failure"')).toBe(1);
    expect(m.get('keyless_edge_admission_rejections_total{reason="client_rate"}')).toBe(1);
    if (resumed?.ok && resumed.resumed)
      expect(sum(m, 'keyless_edge_handshakes_total', 'kind="resumed"', 'result="ok"')).toBe(1);
    expect(m.get('keyless_edge_connections_total')).toBeGreaterThanOrEqual(3);
    expect(m.get('keyless_edge_active_connections')).toBeGreaterThanOrEqual(0);
    expect(m.get('keyless_edge_bytes_total{direction="in"}')).toBeGreaterThan(500);
    expect(m.get('keyless_edge_bytes_total{direction="out"}')).toBeGreaterThan(1000);
    expect(m.get('keyless_edge_admission_pending')).toBe(0);
    // The key-service client's metrics are on the same page.
    expect(
      sum(m, 'keyless_key_operations_total', 'outcome="ok"') -
        sum(m, 'keyless_key_operations_total', 'op="ticket_keys"'),
    ).toBe(2);
    expect(text).toContain('# TYPE keyless_key_operation_duration_seconds histogram');
    // Exactly two signatures reached the key service: the refusal cost nothing.
    expect(e.invocations.filter((i) => i.op !== 'ping' && i.op !== 'ticket_keys')).toHaveLength(2);
  });

  it('writes JSON log lines with a connection id', async () => {
    const before = e.logs.length;
    const ok = await connectOnce(e.port, e.pki.caPem);
    void ok;
    const lines = e.logs.slice(before).filter((l) => l.msg === 'handshake' || l.msg === 'handshake failed');
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l.conn).toMatch(/^[0-9a-f]{6}-[0-9a-z]+$/);
    // The group of a completed handshake is in its log line (the TLS 1.3 one of the test above).
    expect(e.logs.find((l) => l.msg === 'handshake' && l.protocol === 'TLSv1.3')).toMatchObject({
      group: 'X25519MLKEM768',
      keyExchange: 'ECDHE-MLKEM (X25519MLKEM768)',
    });
    const ids = e.logs.filter((l) => typeof l.conn === 'string').map((l) => l.conn);
    expect(new Set(ids).size).toBeGreaterThan(1);
    // Never a secret in a log line.
    expect(JSON.stringify(e.logs)).not.toMatch(/PRIVATE KEY|masterSecret|premaster/i);
  });

  it('answers 404 elsewhere and keeps /healthz', async () => {
    expect((await fetch(`http://127.0.0.1:${e.edge.adminPort}/nope`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${e.edge.adminPort}/healthz`)).status).toBe(200);
  });
});
