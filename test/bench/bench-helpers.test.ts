/**
 * The benchmark's parsers and chart (no benchmark runs here, nothing timed): what the resumption
 * rows count on the edge's /metrics page, what the latency rows take from the edge's log lines, and
 * that the stacked chart keeps every panel, marker and label.
 */
import { handshakeKinds, parseStackLogs } from './targets';
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
      JSON.stringify({ service: 'keyless-key-service', msg: 'key_service_request', op: 'tls13.certificate_verify', latencyMs: 3, backendMs: 2.5 }),
      JSON.stringify({ service: 'keyless-key-service', msg: 'key_service_request', op: 'ping' }),
      JSON.stringify({ component: 'edge', msg: 'handshake failed', error: 'key service unavailable', alertSent: 'internal_error' }),
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
    { title: 'Bulk', subtitle: 'MB/s', series: [{ name: '1 connection', color: '#f28e2b' }], groups: [{ label: 'edge', values: [120] }], unit: 'MB/s' },
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
