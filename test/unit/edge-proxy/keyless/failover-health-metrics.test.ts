/**
 * The pieces under FailoverTarget: the per-key-service health record (EWMA of errors and latency with
 * time decay, hand-driven clock) and the small metrics registry (counters, gauges, fixed-bucket
 * histograms, Prometheus text), plus the Lambda targets the edge builds from its configuration.
 */
import { TargetHealth } from '../../../../edge-proxy/src/keyless/target-health';
import { MetricsRegistry } from '../../../../edge-proxy/src/observability/metrics-registry';
import { KeyClientMetrics, LATENCY_BUCKETS_SECONDS } from '../../../../edge-proxy/src/keyless/client-metrics';
import { createLambdaTargets } from '../../../../edge-proxy/src/keyless/lambda-targets';

describe('TargetHealth', () => {
  const clock = { t: 0 };
  const health = (o: ConstructorParameters<typeof TargetHealth>[0] = {}) =>
    new TargetHealth({ halfLifeMs: 1000, slowMs: 200, now: () => clock.t, ...o });

  it('starts healthy and unknown', () => {
    const h = health();
    expect(h.healthy).toBe(true);
    expect(h.errorRate).toBe(0);
    expect(h.latencyMs).toBeUndefined();
  });

  it('takes the first sample as is, then smooths with alpha', () => {
    const h = health({ alpha: 0.5 });
    h.record(true, 100);
    expect(h.errorRate).toBe(1);
    expect(h.healthy).toBe(false);
    h.record(false, 50);
    expect(h.errorRate).toBe(0.5);
    expect(h.latencyMs).toBe(75);
    h.record(false, 50);
    expect(h.errorRate).toBe(0.25);
    expect(h.healthy).toBe(false); // hysteresis: healthy again only below half the threshold
    h.record(false, 50);
    expect(h.healthy).toBe(true);
  });

  it('turns unhealthy when a sample reaches the threshold, whatever the clock does afterwards', () => {
    const h = health({ alpha: 0.3 });
    h.record(false, 10);
    h.record(true, 10);
    expect(h.errorRate).toBeCloseTo(0.3, 9);
    expect(h.healthy).toBe(true);
    h.record(true, 10);
    expect(h.errorRate).toBeCloseTo(0.51, 9);
    clock.t += 100; // decays just below 0.5: still unhealthy
    expect(h.errorRate).toBeLessThan(0.5);
    expect(h.healthy).toBe(false);
  });

  it('is unhealthy when slow (after enough samples), and forgets with its half-life', () => {
    const h = health();
    h.record(false, 400);
    h.record(false, 400);
    expect(h.healthy).toBe(true); // one or two slow answers are not evidence yet
    h.record(false, 400);
    expect(h.healthy).toBe(false);
    clock.t += 1000;
    expect(h.latencyMs).toBe(200);
    expect(h.healthy).toBe(false);
    clock.t += 1000;
    expect(h.latencyMs).toBe(100);
    expect(h.healthy).toBe(false);
    clock.t += 1;
    expect(h.healthy).toBe(true);
    h.record(true, 10);
    clock.t += 2000;
    expect(h.errorRate).toBeCloseTo(0.3 / 4, 6);
  });

  it('reset forgets everything; options are validated', () => {
    const h = health();
    h.record(true, 10);
    h.reset();
    expect(h.errorRate).toBe(0);
    expect(h.healthy).toBe(true);
    expect(() => new TargetHealth({ alpha: 0 })).toThrow(/alpha/);
    expect(() => new TargetHealth({ halfLifeMs: 0 })).toThrow(/halfLifeMs/);
    expect(() => new TargetHealth({ unhealthyErrorRate: 2 })).toThrow(/unhealthyErrorRate/);
    expect(() => new TargetHealth({ slowMs: -1 })).toThrow(/slowMs/);
    expect(() => new TargetHealth({ minLatencySamples: 0 })).toThrow(/minLatencySamples/);
  });
});

describe('MetricsRegistry', () => {
  it('counts by labels and sums partially', () => {
    const r = new MetricsRegistry();
    const c = r.counter('ops_total', 'Ops.', ['op', 'outcome']);
    c.inc({ op: 'sign', outcome: 'ok' });
    c.inc({ op: 'sign', outcome: 'ok' }, 2);
    c.inc({ op: 'sign', outcome: 'timeout' });
    c.inc({ op: 'ping', outcome: 'ok' });
    expect(c.get({ op: 'sign', outcome: 'ok' })).toBe(3);
    expect(c.sum({ op: 'sign' })).toBe(4);
    expect(c.sum({ outcome: 'ok' })).toBe(4);
    expect(c.sum()).toBe(5);
    expect(() => c.inc({ op: 'x', outcome: 'y' }, -1)).toThrow(/only goes up/);
  });

  it('keeps fixed cumulative histogram buckets', () => {
    const r = new MetricsRegistry();
    const h = r.histogram('lat_seconds', 'Latency.', ['target'], [0.01, 0.1, 1]);
    for (const v of [0.005, 0.01, 0.05, 0.5, 3]) h.observe({ target: 'a' }, v);
    const snap = r.snapshot()[0];
    expect(snap.type).toBe('histogram');
    if (snap.type !== 'histogram') return;
    expect(snap.samples[0].buckets).toEqual([
      { le: 0.01, count: 2 },
      { le: 0.1, count: 3 },
      { le: 1, count: 4 },
      { le: Infinity, count: 5 },
    ]);
    expect(snap.samples[0].count).toBe(5);
    expect(snap.samples[0].sum).toBeCloseTo(3.565, 9);
    expect(() => r.histogram('bad', 'x', [], [1, 1])).toThrow(/increasing/);
  });

  it('collects read-time gauges and renders the Prometheus text format', () => {
    const r = new MetricsRegistry();
    const g = r.gauge('state', 'State "now".', ['target']);
    let v = 1;
    g.collect = (gauge) => gauge.set({ target: 'a"b' }, v);
    v = 2;
    const h = r.histogram('lat_seconds', 'Latency.', [], [0.5]);
    h.observe({}, 0.25);
    const text = r.renderPrometheus();
    expect(text).toContain('# TYPE state gauge\nstate{target="a\\"b"} 2\n');
    expect(text).toContain(
      'lat_seconds_bucket{le="0.5"} 1\nlat_seconds_bucket{le="+Inf"} 1\nlat_seconds_sum 0.25\nlat_seconds_count 1\n',
    );
    expect(() => r.gauge('state', 'again')).toThrow(/already registered/);
    expect(() => r.counter('bad name', 'x')).toThrow(/invalid metric name/);
  });

  it('registers the key-client metric set with its documented names', () => {
    const m = new KeyClientMetrics();
    expect(m.snapshot().map((s) => s.name)).toEqual([
      'keyless_key_operations_total',
      'keyless_key_operation_duration_seconds',
      'keyless_key_service_requests_total',
      'keyless_key_service_request_duration_seconds',
      'keyless_key_service_errors_total',
      'keyless_key_service_retries_total',
      'keyless_key_service_failovers_total',
      'keyless_key_service_breaker_state',
      'keyless_key_service_breaker_transitions_total',
    ]);
    expect(m.requestDuration.buckets).toEqual(LATENCY_BUCKETS_SECONDS);
  });
});

describe('createLambdaTargets', () => {
  it('builds one named target per key service, distinct when one function is configured twice', () => {
    const targets = createLambdaTargets(
      [
        { functionName: 'ks', region: 'eu-west-1' },
        { functionName: 'ks', region: 'eu-central-1' },
        { functionName: 'other', endpoint: 'http://127.0.0.1:1' },
        { functionName: 'twice', region: 'us-east-1' },
        { functionName: 'twice', region: 'us-east-1' },
      ],
      { deadlineMs: 500, connectTimeoutMs: 100, credentials: { accessKeyId: 'x', secretAccessKey: 'y' } },
    );
    expect(targets.map((t) => t.name)).toEqual([
      'lambda:ks@eu-west-1',
      'lambda:ks@eu-central-1',
      'lambda:other',
      'lambda:twice@us-east-1#4',
      'lambda:twice@us-east-1#5',
    ]);
    for (const t of targets) t.close();
  });
});
