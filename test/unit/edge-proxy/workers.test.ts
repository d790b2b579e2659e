/**
 * The pure parts of the multi-core edge (edge-proxy/src/workers.ts): how many workers, how
 * connections reach them, each worker's share of the budgets, and how the workers' metrics and health merge into the task's.
 * The processes themselves are tested in test/integration/workers.test.ts.
 */
import { ConfigError, parseEdgeConfig } from '../../../edge-proxy/src/config';
import type { EdgeHealth } from '../../../edge-proxy/src/edge';
import { MetricsRegistry } from '../../../edge-proxy/src/observability/metrics-registry';
import {
  acceptMode,
  cgroupCpuQuota,
  mergeHealth,
  mergeSnapshots,
  workerCount,
  workerShare,
} from '../../../edge-proxy/src/workers';

describe('workerCount (KEYLESS_WORKERS)', () => {
  it('is 1 when unset or empty, a whole number as given, and one per vCPU for auto', () => {
    expect(workerCount(undefined, () => 8)).toBe(1);
    expect(workerCount('', () => 8)).toBe(1);
    expect(workerCount('3', () => 8)).toBe(3);
    expect(workerCount('auto', () => 4)).toBe(4);
    expect(workerCount('auto', () => 500)).toBe(64);
  });

  it.each(['0', '-1', '1.5', 'two', '65', 'auto2'])('refuses %j with an error naming the variable and the fix', (v) => {
    let err: unknown;
    try {
      workerCount(v, () => 2);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe('KEYLESS_WORKERS');
    expect((err as Error).message).toMatch(/whole number from 1 to 64, or auto/);
  });
});

describe('acceptMode (KEYLESS_WORKER_ACCEPT)', () => {
  it('is reuseport on Linux and round-robin elsewhere by default; either when asked for where it works', () => {
    expect(acceptMode(undefined, 'linux')).toBe('reuseport');
    expect(acceptMode(' ', 'linux')).toBe('reuseport');
    expect(acceptMode(undefined, 'darwin')).toBe('round-robin');
    expect(acceptMode(undefined, 'win32')).toBe('round-robin');
    expect(acceptMode('round-robin', 'linux')).toBe('round-robin');
    expect(acceptMode('round-robin', 'darwin')).toBe('round-robin');
    expect(acceptMode('reuseport', 'linux')).toBe('reuseport');
  });

  it.each([
    ['reuseport', 'darwin', /reuseport needs Linux/],
    ['rr', 'linux', /Use reuseport .* or round-robin/],
  ] as const)('refuses %j on %s with an error naming the variable and the fix', (v, platform, message) => {
    let err: unknown;
    try {
      acceptMode(v, platform);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe('KEYLESS_WORKER_ACCEPT');
    expect((err as Error).message).toMatch(message);
  });
});

describe('cgroupCpuQuota', () => {
  const files = (m: Record<string, string>) => (f: string) => {
    if (f in m) return m[f];
    throw new Error('ENOENT');
  };
  it('reads cgroup v2 cpu.max, v1 cfs quota/period, and nothing when unlimited or absent', () => {
    expect(cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu.max': '200000 100000\n' }))).toBe(2);
    expect(cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu.max': '50000 100000\n' }))).toBe(0.5);
    expect(cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu.max': 'max 100000\n' }))).toBeUndefined();
    expect(
      cgroupCpuQuota(
        files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '400000', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' }),
      ),
    ).toBe(4);
    expect(
      cgroupCpuQuota(
        files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' }),
      ),
    ).toBeUndefined();
    expect(cgroupCpuQuota(files({}))).toBeUndefined();
  });
});

describe('workerShare', () => {
  const base = parseEdgeConfig({
    certificates: [{ chainFile: 'c.pem', keyName: 'k' }],
    keyServices: [{ functionName: 'ks' }],
    origin: 'http://127.0.0.1:8080',
  });

  it('splits the per-edge budgets so the workers together keep the configured figures', () => {
    const w = workerShare(base, 2, 40000);
    expect(w.admin).toEqual({ host: '127.0.0.1', port: 40000 });
    expect(w.admission.keyOperationsPerSecond).toBe(base.admission.keyOperationsPerSecond / 2);
    expect(w.admission.keyOperationBurst).toBe(Math.ceil(base.admission.keyOperationBurst / 2));
    expect(w.admission.maxPendingFullHandshakes).toBe(Math.ceil(base.admission.maxPendingFullHandshakes / 2));
    expect(w.admission.perClientRatePerSecond).toBe(base.admission.perClientRatePerSecond / 2);
    expect(w.admission.maxTrackedClients).toBe(base.admission.maxTrackedClients);
    expect(w.limits.maxConnections).toBe(Math.ceil(base.limits.maxConnections / 2));
    expect(w.maxKeyOperationsInFlight).toBe(Math.ceil(base.maxKeyOperationsInFlight / 2));
    expect(w.listen).toEqual(base.listen);
    expect(w.admission.keyOperationWindow).toBe(0); // no fleet budget: the bucket
  });

  it('splits a fleet share’s one-second window rounding down, so the workers never exceed the task’s share', () => {
    const fleet = { ...base, admission: { ...base.admission, keyOperationWindow: 13 } };
    expect(workerShare(fleet, 2, 40000).admission.keyOperationWindow).toBe(6);
    expect(workerShare(fleet, 4, 40000).admission.keyOperationWindow).toBe(3);
  });

  it('listens on the port the primary chose for every worker (reuseport with a configured port 0)', () => {
    const any = { ...base, listen: { host: '0.0.0.0', port: 0 } };
    expect(workerShare(any, 2, 40000, 43210).listen).toEqual({ host: '0.0.0.0', port: 43210 });
  });

  it('never rounds a budget down to zero', () => {
    const tiny = {
      ...base,
      maxKeyOperationsInFlight: 1,
      admission: { ...base.admission, keyOperationBurst: 1, perClientBurst: 1, maxPendingFullHandshakes: 1 },
    };
    const w = workerShare(tiny, 8, 1);
    expect([
      w.maxKeyOperationsInFlight,
      w.admission.keyOperationBurst,
      w.admission.perClientBurst,
      w.admission.maxPendingFullHandshakes,
    ]).toEqual([1, 1, 1, 1]);
  });
});

describe('mergeSnapshots', () => {
  function worker(handshakes: number, active: number, draining: number, durations: number[]) {
    const r = new MetricsRegistry();
    r.counter('keyless_edge_handshakes_total', 'h', ['kind']).inc({ kind: 'full' }, handshakes);
    r.gauge('keyless_edge_active_connections', 'a').set({}, active);
    r.gauge('keyless_edge_draining', 'd').set({}, draining);
    const h = r.histogram('keyless_edge_handshake_duration_seconds', 'd', ['kind'], [0.01, 0.1]);
    for (const d of durations) h.observe({ kind: 'full' }, d);
    return r.snapshot();
  }

  it('sums counters, histograms and counting gauges; takes the highest state gauge', () => {
    const merged = mergeSnapshots([worker(3, 2, 0, [0.005, 0.05]), worker(4, 5, 1, [0.5])]);
    const by = Object.fromEntries(merged.map((m) => [m.name, m]));
    expect(by.keyless_edge_handshakes_total.samples).toEqual([{ labels: { kind: 'full' }, value: 7 }]);
    expect(by.keyless_edge_active_connections.samples[0]).toMatchObject({ value: 7 });
    expect(by.keyless_edge_draining.samples[0]).toMatchObject({ value: 1 });
    const h = by.keyless_edge_handshake_duration_seconds.samples[0] as {
      count: number;
      sum: number;
      buckets: Array<{ le: number; count: number }>;
    };
    expect(h.count).toBe(3);
    expect(h.sum).toBeCloseTo(0.555);
    expect(h.buckets.map((b) => b.count)).toEqual([1, 2, 3]);
  });

  it('keeps label sets apart and does not change the inputs', () => {
    const a = worker(1, 0, 0, []);
    const b = new MetricsRegistry();
    b.counter('keyless_edge_handshakes_total', 'h', ['kind']).inc({ kind: 'resumed' }, 2);
    const merged = mergeSnapshots([a, b.snapshot()]);
    expect(merged.find((m) => m.name === 'keyless_edge_handshakes_total')?.samples).toEqual([
      { labels: { kind: 'full' }, value: 1 },
      { labels: { kind: 'resumed' }, value: 2 },
    ]);
    expect(a[0].samples).toEqual([{ labels: { kind: 'full' }, value: 1 }]);
  });
});

describe('mergeHealth', () => {
  const h = (ok: boolean, connections: number, draining?: boolean): EdgeHealth => ({
    ok,
    keyService: ok ? 'reachable' : 'unreachable',
    connections,
    keyServices: [],
    runtime: 'node/24.22.3',
    origins: [],
    ...(draining ? { draining } : {}),
  });

  it('is ok only when every worker answered ok, and sums connections', () => {
    expect(mergeHealth([h(true, 2), h(true, 3)], false)).toMatchObject({
      ok: true,
      connections: 5,
      workers: [
        { ok: true, connections: 2 },
        { ok: true, connections: 3 },
      ],
    });
    expect(mergeHealth([h(true, 2), h(false, 3)], false).ok).toBe(false);
    expect(mergeHealth([h(true, 2), undefined], false)).toMatchObject({
      ok: false,
      workers: [{ ok: true }, { ok: false }],
    });
    expect(mergeHealth([], false).ok).toBe(false);
  });

  it('reports draining when the primary stops or any worker drains', () => {
    expect(mergeHealth([h(true, 0), h(true, 0)], true).draining).toBe(true);
    expect(mergeHealth([h(true, 0), h(true, 0, true)], false).draining).toBe(true);
    expect(mergeHealth([h(true, 0), h(true, 0)], false).draining).toBeUndefined();
  });
});
