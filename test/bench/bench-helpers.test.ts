/**
 * The benchmark's parsers and chart (no benchmark runs here, nothing timed): what the resumption
 * rows count on the edge's /metrics page, what the latency rows take from the edge's log lines, and
 * that the stacked chart keeps every panel, marker and label, and how a traced edge's handshake splits
 * into phases.
 */
import { handshakeKinds, parseStackLogs } from './targets';
import type { PhaseTrace } from './phase-trace-preload';
import { phaseBreakdown, phasesOf, PHASES } from './phases';
import { stackedBarChartsSvg } from './report';

describe('handshakeKinds (edge /metrics)', () => {
  it('sums successful handshakes by kind over every other label and ignores failures', () => {
    const page = [
      '# HELP keyless_edge_handshakes_total TLS handshakes',
      '# TYPE keyless_edge_handshakes_total counter',
      'keyless_edge_handshakes_total{protocol="TLSv1.3",suite="TLS_AES_128_GCM_SHA256",group="x25519",kind="full",result="ok",alert=""} 7',
      'keyless_edge_handshakes_total{protocol="TLSv1.2",suite="TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",group="x25519",kind="full",result="ok",alert=""} 2',
      'keyless_edge_handshakes_total{protocol="TLSv1.3",suite="TLS_AES_128_GCM_SHA256",group="x25519",kind="resumed",result="ok",alert=""} 93',
      'keyless_edge_handshakes_total{protocol="",suite="",group="",kind="unknown",result="alert_sent",alert="handshake_failure"} 5',
      'keyless_edge_connections_total 107',
    ].join('\n');
    expect(handshakeKinds(page)).toEqual({ full: 9, resumed: 93 });
  });

  it('reads an empty page as zero', () => {
    expect(handshakeKinds('')).toEqual({ full: 0, resumed: 0 });
  });
});

describe('parseStackLogs (edge and key-service JSON lines)', () => {
  it('takes the key operation out of each full handshake that logs handshakeMs, and counts resumed ones apart', () => {
    const lines = [
      JSON.stringify({ component: 'edge', msg: 'handshake', resumed: false, keyOperationMs: 5, handshakeMs: 9.5 }),
      JSON.stringify({ component: 'edge', msg: 'handshake', resumed: true, handshakeMs: 1.2 }),
      JSON.stringify({ component: 'edge', msg: 'handshake', resumed: false, keyOperationMs: 4 }),
      JSON.stringify({
        service: 'keyless-key-service',
        msg: 'key_service_request',
        op: 'tls13.certificate_verify',
        latencyMs: 3,
        backendMs: 2.5,
      }),
      JSON.stringify({ service: 'keyless-key-service', msg: 'key_service_request', op: 'ping' }),
      JSON.stringify({
        component: 'edge',
        msg: 'handshake failed',
        error: 'key service unavailable',
        alertSent: 'internal_error',
      }),
      JSON.stringify({ component: 'edge', msg: 'handshake failed', error: 'second' }),
      'not json',
      '{"component":"edge","msg":"handshake"', // an incomplete last line is left for the next read
    ].join('\n');
    const r = parseStackLogs(lines);
    expect(r.handshakes).toBe(3);
    expect(r.resumed).toBe(1);
    expect(r.keyOperationMs).toEqual([5, 4]);
    expect(r.serverOwnMs).toEqual([4.5]);
    expect(r.signOps).toBe(1);
    expect(r.pings).toBe(1);
    expect(r.byOp).toEqual({ 'tls13.certificate_verify': 1 });
    expect(r.failed).toBe(2);
    expect(r.firstError).toBe('key service unavailable, alert sent: internal_error');
  });
});

describe('stackedBarChartsSvg', () => {
  const svg = stackedBarChartsSvg([
    {
      title: 'edge ÷ nginx',
      subtitle: 'ratios',
      series: [{ name: 'edge ÷ nginx', color: '#4e79a7' }],
      groups: [
        { label: 'resumed <TLS 1.3>', values: [0.8] },
        { label: 'bulk', values: [undefined] },
      ],
      markers: [{ value: 1, label: 'target 1.0×' }, undefined],
      unit: 'ratio',
      format: (v) => `${v.toFixed(2)}×`,
    },
    {
      title: 'Bulk',
      subtitle: 'MB/s',
      series: [{ name: '1 connection', color: '#f28e2b' }],
      groups: [{ label: 'edge', values: [120] }],
      unit: 'MB/s',
    },
  ]);

  it('is one SVG document with every panel, value, marker and an escaped label', () => {
    expect(svg.startsWith('<svg ')).toBe(true);
    expect(svg.match(/<svg /g)).toHaveLength(1);
    expect(svg).toContain('edge ÷ nginx');
    expect(svg).toContain('>Bulk<');
    expect(svg).toContain('0.80×');
    expect(svg).toContain('target 1.0×');
    expect(svg).toContain('stroke-dasharray');
    expect(svg).toContain('resumed &lt;TLS 1.3&gt;');
    expect(svg).toContain('not measured');
    expect(svg).toContain('>120<');
  });

  it('stacks the panels: the second starts below the first and the height covers both', () => {
    const offsets = [...svg.matchAll(/<g transform="translate\(0,(\d+)\)">/g)].map((m) => Number(m[1]));
    expect(offsets).toHaveLength(2);
    expect(offsets[0]).toBe(0);
    const height = Number(/height="(\d+)"/.exec(svg)![1]);
    expect(offsets[1]).toBeGreaterThan(100);
    expect(height).toBeGreaterThan(offsets[1] + 100);
  });
});

describe('phasesOf (the traced edge, phases.ts)', () => {
  // One full handshake as phase-trace-preload.ts records it: ClientHello in, first flight out, the key
  // operation with its Lambda call and HTTP request, CertificateVerify + Finished out, client Finished
  // in, then the response after the origin hop (the second HTTP request).
  const trace: PhaseTrace = {
    reads: [
      [0.1, 517],
      [9, 147],
    ],
    writes: [
      [1.5, 1400],
      [7.5, 322],
      [11, 250],
    ],
    hops: [
      [3, 5],
      [9.5, 10.5],
    ],
    marks: [
      ['signTls13CertificateVerify start', 2, 0],
      ['invoke start', 2.1, 0],
      ['http request start', 3, 0],
      ['invoke end', 6, 0],
      ['signTls13CertificateVerify end', 7, 0],
      ['http request start', 9.5, 0],
    ],
    closedMs: 12,
  };

  it('splits the handshake into phases and takes the key operation out of the own total', () => {
    const p = phasesOf(trace)!;
    const byName = Object.fromEntries(PHASES.map(([name], i) => [name.split(' (')[0], p[i]]));
    expect(byName['accept → ClientHello read']).toBeCloseTo(0.1);
    expect(byName['ClientHello read → key operation start']).toBeCloseTo(1.9);
    expect(byName['key operation: request building and SigV4 before the HTTP request']).toBeCloseTo(1);
    expect(byName['key operation: HTTP hop to the key service']).toBeCloseTo(2);
    expect(byName['key operation: response decoding and signature check']).toBeCloseTo(2);
    expect(byName['key operation end → server flight written']).toBeCloseTo(0.5);
    expect(byName['flight written → client Finished read']).toBeCloseTo(1.5);
    expect(byName['edge own total: accept → client Finished, key operation excluded']).toBeCloseTo(4);
    expect(byName['client Finished read → first response write']).toBeCloseTo(2);
    expect(byName['socket writes per handshake']).toBe(2);
  });

  it('leaves out connections without a key operation (resumed, probes) and ones that never finished', () => {
    expect(phasesOf({ ...trace, marks: [] })).toBeUndefined();
    expect(phasesOf({ ...trace, reads: [[0.1, 517]] })).toBeUndefined();
    expect(phasesOf({ ...trace, reads: [] })).toBeUndefined();
    expect(phaseBreakdown([trace, { ...trace, marks: [] }]).every((r) => r.n === 1)).toBe(true);
  });
});
