/**
 * CloudWatch embedded metric format ("in ECS the same figures go to CloudWatch"):
 * the JSON shape CloudWatch requires, deltas between flushes, low-cardinality dimensions, the names
 * the CDK dashboard reads, and the `metrics` configuration.
 */
import { loadEdgeConfig, parseEdgeConfig } from '../../../../edge-proxy/src/config';
import { EdgeMetrics } from '../../../../edge-proxy/src/observability/edge-metrics';
import {
  EMF_METRICS,
  EmfPublisher,
  MAX_VALUES_PER_METRIC,
  type EmfDocument,
} from '../../../../edge-proxy/src/observability/emf';
import { KeyClientMetrics } from '../../../../edge-proxy/src/keyless/client-metrics';
import { MetricsRegistry } from '../../../../edge-proxy/src/observability/metrics-registry';
import { EMF_DIMENSIONS } from '../../../../lib/monitoring';
import { METRICS } from '../../../../lib/naming';
import { connectOnce, startInProcessEdge } from '../../../helpers/in-process-edge';

/** A seeded generator (mulberry32), so the reservoir test never depends on luck. */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function setup() {
  const registry = new MetricsRegistry();
  const keys = new KeyClientMetrics(registry);
  const edge = new EdgeMetrics(registry);
  const lines: string[] = [];
  const emf = new EmfPublisher(edge, keys, {
    namespace: 'Keyless/Edge',
    deployment: 'prod',
    intervalMs: 60_000,
    write: (l) => lines.push(l),
    now: () => 1_700_000_000_000,
    random: seeded(42),
  });
  return { edge, keys, emf, lines };
}

/** Checks a document against the EMF specification's rules that CloudWatch enforces. */
function expectValidEmf(d: EmfDocument): void {
  expect(Object.keys(d._aws).sort()).toEqual(['CloudWatchMetrics', 'Timestamp']);
  expect(Number.isInteger(d._aws.Timestamp)).toBe(true);
  expect(d._aws.CloudWatchMetrics.length).toBeGreaterThan(0);
  for (const directive of d._aws.CloudWatchMetrics) {
    expect(Object.keys(directive).sort()).toEqual(['Dimensions', 'Metrics', 'Namespace']);
    expect(directive.Namespace).toMatch(/^[A-Za-z0-9.\-_/#:]{1,255}$/);
    expect(directive.Metrics.length).toBeGreaterThan(0);
    expect(directive.Metrics.length).toBeLessThanOrEqual(100);
    for (const set of directive.Dimensions) {
      expect(set.length).toBeGreaterThan(0);
      expect(set.length).toBeLessThanOrEqual(30);
      for (const dim of set) expect(typeof d[dim]).toBe('string'); // every dimension is a string member
    }
    for (const m of directive.Metrics) {
      expect(Object.keys(m).sort()).toEqual(['Name', 'Unit']);
      expect(['Count', 'Milliseconds']).toContain(m.Unit);
      const v = d[m.Name];
      if (Array.isArray(v)) {
        expect(v.length).toBeGreaterThan(0);
        expect(v.length).toBeLessThanOrEqual(MAX_VALUES_PER_METRIC);
        for (const x of v) expect(Number.isFinite(x)).toBe(true);
      } else {
        expect(Number.isFinite(v)).toBe(true);
      }
    }
  }
}

const find = (docs: EmfDocument[], dims: string[]): EmfDocument[] =>
  docs.filter((d) => JSON.stringify(d._aws.CloudWatchMetrics[0].Dimensions) === JSON.stringify([dims]));

describe('EmfPublisher', () => {
  it('writes one valid EMF JSON line per document, deltas of counters since the last flush', () => {
    const { edge, keys, emf, lines } = setup();
    const ok = { protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', group: 'x25519' };
    edge.handshakeSucceeded({ ...ok, resumed: false, handshakeMs: 12.5 });
    edge.handshakeSucceeded({ ...ok, resumed: true, handshakeMs: 1.25 });
    edge.handshakeSucceeded({ ...ok, resumed: true, handshakeMs: 2 });
    edge.handshakeFailed({ sentAlert: 'handshake_failure' });
    edge.handshakeFailed({ sentAlert: 'handshake_failure' });
    edge.handshakeFailed({ receivedAlert: 'bad_certificate' });
    edge.handshakeFailed({});
    edge.admissionRejected('key_budget');
    edge.admissionRejected('client_rate');
    edge.admissionRejected('client_rate');
    keys.operations.inc({ op: 'tls13.certificate_verify', outcome: 'ok' });
    keys.operations.inc({ op: 'tls13.certificate_verify', outcome: 'timeout' });
    keys.operations.inc({ op: 'ticket_keys', outcome: 'unavailable' }); // not a handshake's key operation
    keys.operationDuration.observe({ op: 'tls13.certificate_verify' }, 0.0421);
    keys.operationDuration.observe({ op: 'ping' }, 0.5);

    const docs = emf.flush();
    expect(lines).toHaveLength(docs.length);
    for (const l of lines) {
      expect(l.endsWith('\n')).toBe(true);
      expect(l.slice(0, -1)).not.toContain('\n');
      expectValidEmf(JSON.parse(l) as EmfDocument);
    }
    const [main] = find(docs, ['Deployment']);
    expect(main).toMatchObject({
      Deployment: 'prod',
      [EMF_METRICS.handshakesFull]: 1,
      [EMF_METRICS.handshakesResumed]: 2,
      [EMF_METRICS.keyOperationsAvoided]: 2,
      [EMF_METRICS.handshakeFailures]: 4,
      [EMF_METRICS.handshakesAbandoned]: 0,
      [EMF_METRICS.admissionRejections]: 3,
      [EMF_METRICS.keyOperationErrors]: 1,
      [EMF_METRICS.activeConnections]: 0,
      [EMF_METRICS.keyOperationLatency]: [42.1],
    });
    expect(main._aws).toMatchObject({
      Timestamp: 1_700_000_000_000,
      CloudWatchMetrics: [{ Namespace: 'Keyless/Edge' }],
    });
    const units = Object.fromEntries(main._aws.CloudWatchMetrics[0].Metrics.map((m) => [m.Name, m.Unit]));
    expect(units[EMF_METRICS.keyOperationLatency]).toBe('Milliseconds');
    expect(units[EMF_METRICS.handshakesFull]).toBe('Count');

    const alerts = Object.fromEntries(
      find(docs, ['Deployment', 'Alert']).map((d) => [d.Alert, d[EMF_METRICS.handshakeFailures]]),
    );
    expect(alerts).toEqual({ handshake_failure: 2, 'received:bad_certificate': 1, none: 1 });
    const reasons = Object.fromEntries(
      find(docs, ['Deployment', 'Reason']).map((d) => [d.Reason, d[EMF_METRICS.admissionRejections]]),
    );
    expect(reasons).toEqual({ key_budget: 1, client_rate: 2 });
    const durations = Object.fromEntries(
      find(docs, ['Deployment', 'Kind']).map((d) => [d.Kind, d[EMF_METRICS.handshakeDuration]]),
    );
    expect(durations).toEqual({ full: [12.5], resumed: [1.25, 2] });

    // Second flush: only what happened since the first.
    edge.handshakeSucceeded({ ...ok, resumed: false });
    const next = emf.flush();
    const [main2] = find(next, ['Deployment']);
    expect(main2).toMatchObject({
      [EMF_METRICS.handshakesFull]: 1,
      [EMF_METRICS.handshakesResumed]: 0,
      [EMF_METRICS.handshakeFailures]: 0,
      [EMF_METRICS.admissionRejections]: 0,
    });
    expect(main2).not.toHaveProperty(EMF_METRICS.keyOperationLatency); // no observations: no empty array
    expect(find(next, ['Deployment', 'Alert'])).toEqual([]);
    expect(find(next, ['Deployment', 'Reason'])).toEqual([]);
  });

  it('keeps at most 100 latency values per interval, a uniform sample of them', () => {
    const { keys, emf } = setup();
    for (let i = 0; i < 10_000; i++)
      keys.operationDuration.observe({ op: 'tls12.server_key_exchange' }, i < 5000 ? 0.001 : 0.1);
    const [main] = find(emf.flush(), ['Deployment']);
    const values = main[EMF_METRICS.keyOperationLatency] as number[];
    expect(values).toHaveLength(100);
    const slow = values.filter((v) => v === 100).length;
    expect(slow).toBeGreaterThan(25); // half of the observations were slow: the sample agrees
    expect(slow).toBeLessThan(75);
    expectValidEmf(main);
  });

  it('flushes on a timer and once more on stop', () => {
    jest.useFakeTimers();
    try {
      const { edge, emf, lines } = setup();
      emf.start();
      edge.handshakeSucceeded({ protocol: 'TLSv1.2', resumed: false });
      jest.advanceTimersByTime(60_000);
      expect(lines.length).toBeGreaterThan(0);
      const n = lines.length;
      edge.handshakeSucceeded({ protocol: 'TLSv1.2', resumed: true });
      emf.stop();
      expect(lines.length).toBeGreaterThan(n);
      expect(JSON.parse(lines[n]) as EmfDocument).toMatchObject({
        [EMF_METRICS.handshakesResumed]: 1,
        [EMF_METRICS.handshakesFull]: 0,
      });
      jest.advanceTimersByTime(120_000);
      const after = lines.length;
      jest.advanceTimersByTime(120_000);
      expect(lines.length).toBe(after); // stopped
    } finally {
      jest.useRealTimers();
    }
  });

  it('emits every metric the CDK dashboard and alarms read, with the dimension sets they search', () => {
    expect(METRICS.edgeNamespace).toBe(
      parseEdgeConfig({
        certificates: [{ chainFile: 'c.pem', keyName: 'k' }],
        keyServices: [{ functionName: 'ks' }],
        origin: 'http://127.0.0.1:1',
      }).metrics.namespace,
    );
    expect(METRICS.deploymentDimension).toBe('Deployment');
    const { edge, keys, emf } = setup();
    const ok = { protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', group: 'x25519' };
    edge.handshakeSucceeded({ ...ok, resumed: false, handshakeMs: 3 });
    edge.handshakeFailed({ sentAlert: 'handshake_failure' });
    edge.admissionRejected('key_budget');
    keys.operationDuration.observe({ op: 'tls13.certificate_verify' }, 0.01);
    // What was emitted: metric name → the dimension sets it came with.
    const emitted = new Map<string, string[]>();
    for (const d of emf.collect()) {
      for (const directive of d._aws.CloudWatchMetrics) {
        for (const m of directive.Metrics)
          emitted.set(m.Name, [...(emitted.get(m.Name) ?? []), ...directive.Dimensions.map((set) => set.join('+'))]);
      }
    }
    // The dashboard reads HandshakeDuration per Kind, every other edge metric per Deployment alone.
    for (const name of Object.values(METRICS.edge)) {
      const dims = name === METRICS.edge.handshakeDuration ? 'Deployment+Kind' : 'Deployment';
      expect([name, emitted.get(name)]).toEqual([name, expect.arrayContaining([dims])]);
    }
    expect(emitted.get(METRICS.edge.handshakeFailures)).toContain(EMF_DIMENSIONS.edgeByAlert.join('+'));
    expect(emitted.get(METRICS.edge.admissionRejections)).toContain(EMF_DIMENSIONS.edgeByReason.join('+'));
  });
});

describe('metrics configuration', () => {
  const env = {
    KEYLESS_KEY_SERVICES: 'ks',
    KEYLESS_ORIGIN: 'http://127.0.0.1:1',
    KEYLESS_CERT_SSM_PREFIX: '/x/certs/',
  };

  it('is off outside ECS, on inside ECS, and KEYLESS_EMF decides either way', () => {
    expect(loadEdgeConfig(undefined, env).metrics).toEqual({
      emf: false,
      namespace: 'Keyless/Edge',
      intervalSeconds: 60,
      deployment: 'default',
    });
    const ecs = { ...env, ECS_CONTAINER_METADATA_URI_V4: 'http://169.254.170.2/v4/abc', KEYLESS_DEPLOYMENT: 'prod' };
    expect(loadEdgeConfig(undefined, ecs).metrics).toMatchObject({ emf: true, deployment: 'prod' });
    expect(loadEdgeConfig(undefined, { ...ecs, KEYLESS_EMF: '0' }).metrics.emf).toBe(false);
    expect(loadEdgeConfig(undefined, { ...env, KEYLESS_EMF: '1' }).metrics.emf).toBe(true);
    expect(() => loadEdgeConfig(undefined, { ...env, KEYLESS_EMF: 'yes' })).toThrow(/KEYLESS_EMF: yes is not 0 or 1/);
  });

  it('validates the fields, naming each', () => {
    const base = {
      certificates: [{ chainFile: 'c.pem', keyName: 'k' }],
      keyServices: [{ functionName: 'ks' }],
      origin: 'http://127.0.0.1:1',
    };
    expect(
      parseEdgeConfig({ ...base, metrics: { emf: true, namespace: 'KeylessTLS/Edge', intervalSeconds: 10 } }).metrics,
    ).toEqual({ emf: true, namespace: 'KeylessTLS/Edge', intervalSeconds: 10, deployment: 'default' });
    expect(() => parseEdgeConfig({ ...base, metrics: { namespace: 'AWS/Edge' } })).toThrow(
      /metrics\.namespace: "AWS\/Edge" is not a CloudWatch namespace/,
    );
    expect(() => parseEdgeConfig({ ...base, metrics: { namespace: 'has space' } })).toThrow(/metrics\.namespace/);
    expect(() => parseEdgeConfig({ ...base, metrics: { intervalSeconds: 0 } })).toThrow(
      /metrics\.intervalSeconds: 0 is out of range/,
    );
    expect(() => parseEdgeConfig({ ...base, metrics: { emf: 'on' } })).toThrow(/metrics\.emf/);
    expect(() => parseEdgeConfig({ ...base, metrics: { region: 'x' } })).toThrow(/metrics\.region: unknown field/);
  });
});

describe('the running edge', () => {
  it('writes the figures as EMF lines on stdout, and flushes the last interval when it stops', async () => {
    const e = await startInProcessEdge({
      metrics: { emf: true, intervalSeconds: 3600, deployment: 'it' },
      keyOperationTimeoutMs: 20_000,
      keyServiceConnectTimeoutMs: 5000,
      handshakeTimeoutMs: 30_000,
    });
    const lines: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      const first = await connectOnce(e.port, e.pki.caPem, { request: true });
      expect(first.ok).toBe(true);
      if (first.session) await connectOnce(e.port, e.pki.caPem, { session: first.session });
      await e.stop(); // the interval is an hour: only the flush on stop can have written anything
    } finally {
      spy.mockRestore();
    }
    const docs = lines.filter((l) => l.startsWith('{"_aws"')).map((l) => JSON.parse(l) as EmfDocument);
    for (const d of docs) expectValidEmf(d);
    const [main] = find(docs, ['Deployment']);
    expect(main).toMatchObject({ Deployment: 'it', [EMF_METRICS.handshakesFull]: 1 });
    expect(main[EMF_METRICS.handshakesResumed]).toBe(main[EMF_METRICS.keyOperationsAvoided]);
    expect((main[EMF_METRICS.keyOperationLatency] as number[]).length).toBe(1);
  });
});
