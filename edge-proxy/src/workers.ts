/**
 * The edge on every vCPU of its task: one worker process per vCPU (node:cluster), each a whole edge
 * (TLS engine, key-service client, HTTP proxy) on the shared TLS port. The primary process owns what
 * must be one per task (docs/configuration.md, "Workers"):
 *
 * - with KEYLESS_WORKER_ACCEPT=round-robin (the default off Linux), the TLS listener, whose
 *   connections it hands to the workers in turn; by default on Linux (`reuseport`) each worker binds
 *   the TLS port itself with SO_REUSEPORT and the kernel spreads the connections;
 * - the admin port: `/metrics` sums the workers' figures, `/healthz` is 200 only while every worker
 *   is healthy;
 * - signals: SIGTERM/SIGINT drain every worker and exit once all have exited, SIGHUP reloads every
 *   worker's certificates; a worker that dies is replaced.
 *
 * What the workers share without the primary: session-ticket keys (each fetches the same fleet keys
 * from the key service, so a ticket one worker issued resumes on any other) and configuration. The
 * per-edge budgets (admission, key operations in flight, connections) are split across the workers,
 * so the task as a whole keeps the configured figures.
 *
 * KEYLESS_WORKERS: a whole number, or `auto` (one per vCPU: the CPUs this process may run on, capped
 * by the cgroup CPU quota of the container). Default 1; the container image sets `auto`.
 */
import cluster, { type Worker } from 'node:cluster';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import { ConfigError, type EdgeConfig } from './config';
import type { EdgeHealth, RunningEdge } from './edge';
import {
  renderPrometheus,
  type HistogramSample,
  type MetricSample,
  type MetricSnapshot,
} from './observability/metrics-registry';
import type { Logger } from './observability/log';

export const MAX_WORKERS = 64;
/** How long the primary waits for a worker's answer to a /metrics or /healthz question. */
const ASK_TIMEOUT_MS = 2_000;
/** More restarts than this within RESTART_WINDOW_MS and the primary gives up (the task is replaced). */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;

// ---------------------------------------------------------------------------------------------
// How many workers

/** vCPUs this process may use: the CPUs it may run on, capped by the cgroup CPU quota (containers). */
export function availableCpus(): number {
  const cpus = os.availableParallelism();
  const quota = cgroupCpuQuota();
  return quota === undefined ? cpus : Math.max(1, Math.min(cpus, Math.ceil(quota)));
}

/** The container's CPU limit in vCPUs (cgroup v2 `cpu.max`, else v1 `cpu.cfs_quota_us`), if it has one. */
export function cgroupCpuQuota(read: (file: string) => string = (f) => fs.readFileSync(f, 'utf8')): number | undefined {
  try {
    const [quota, period] = read('/sys/fs/cgroup/cpu.max').trim().split(/\s+/);
    if (quota === 'max') return undefined;
    const q = Number(quota) / Number(period);
    if (q > 0 && Number.isFinite(q)) return q;
  } catch {
    // not cgroup v2
  }
  try {
    const quota = Number(read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'));
    const period = Number(read('/sys/fs/cgroup/cpu/cpu.cfs_period_us'));
    if (quota > 0 && period > 0) return quota / period;
  } catch {
    // no cgroup CPU controller visible
  }
  return undefined;
}

/** KEYLESS_WORKERS → the worker count; 1 means no cluster at all (the edge runs in this process). */
export function workerCount(
  value: string | undefined = process.env.KEYLESS_WORKERS,
  cpus: () => number = availableCpus,
): number {
  const v = value?.trim();
  if (!v) return 1;
  if (v === 'auto') return Math.min(MAX_WORKERS, cpus());
  if (/^\d+$/.test(v) && Number(v) >= 1 && Number(v) <= MAX_WORKERS) return Number(v);
  throw new ConfigError(
    'KEYLESS_WORKERS',
    `${JSON.stringify(value)} is not a worker count`,
    `Use a whole number from 1 to ${MAX_WORKERS}, or auto (one worker per vCPU of the task).`,
  );
}

// ---------------------------------------------------------------------------------------------
// How connections reach the workers

/**
 * `reuseport`: every worker binds the TLS port itself with SO_REUSEPORT and the kernel spreads new
 * connections over the workers' listeners (by a hash of the connection's addresses); no process
 * stands between the client and its worker. `round-robin`: the primary accepts every connection and
 * hands it to the workers in turn over IPC (node:cluster), which costs the primary CPU per
 * connection. SO_REUSEPORT with load balancing is Linux's (3.9+); elsewhere round-robin.
 */
export type AcceptMode = 'reuseport' | 'round-robin';

/** KEYLESS_WORKER_ACCEPT (`reuseport` or `round-robin`; default reuseport on Linux). */
export function acceptMode(
  value: string | undefined = process.env.KEYLESS_WORKER_ACCEPT,
  platform: NodeJS.Platform = process.platform,
): AcceptMode {
  const v = value?.trim();
  if (!v) return platform === 'linux' ? 'reuseport' : 'round-robin';
  if (v === 'round-robin') return v;
  if (v === 'reuseport') {
    if (platform !== 'linux')
      throw new ConfigError(
        'KEYLESS_WORKER_ACCEPT',
        `reuseport needs Linux (this is ${platform})`,
        'Use round-robin, or leave KEYLESS_WORKER_ACCEPT unset.',
      );
    return v;
  }
  throw new ConfigError(
    'KEYLESS_WORKER_ACCEPT',
    `${JSON.stringify(value)} is not an accept mode`,
    'Use reuseport (each worker listens, the kernel spreads connections) or round-robin (the primary hands connections to the workers).',
  );
}

/**
 * The accept mode this host can run: reuseport only if a listener with SO_REUSEPORT can be bound here
 * (a kernel or sandbox may refuse it); otherwise round-robin, with a warning.
 */
export async function usableAcceptMode(mode: AcceptMode, host: string, log: Logger): Promise<AcceptMode> {
  if (mode !== 'reuseport') return mode;
  try {
    await new Promise<void>((resolve, reject) => {
      const probe = net.createServer();
      probe.once('error', reject);
      probe.listen({ port: 0, host, reusePort: true, exclusive: true }, () => probe.close(() => resolve()));
    });
    return mode;
  } catch (e) {
    log.log('warn', 'SO_REUSEPORT is not available here; the primary hands connections to the workers', {
      error: (e as Error).message,
    });
    return 'round-robin';
  }
}

// ---------------------------------------------------------------------------------------------
// One worker's share of the edge

/** Which worker this process is (undefined outside a cluster worker). */
export function workerIdentity(env: NodeJS.ProcessEnv = process.env): WorkerIdentity | undefined {
  if (!cluster.isWorker) return undefined;
  return {
    index: Number(env.KEYLESS_WORKER_INDEX),
    count: Number(env.KEYLESS_WORKER_COUNT),
    adminPort: Number(env.KEYLESS_WORKER_ADMIN_PORT),
    accept: env.KEYLESS_WORKER_ACCEPT === 'reuseport' ? 'reuseport' : 'round-robin',
    tlsPort: Number(env.KEYLESS_WORKER_TLS_PORT),
  };
}

export interface WorkerIdentity {
  index: number;
  count: number;
  /** This worker's own loopback admin port. */
  adminPort: number;
  accept: AcceptMode;
  /** The task's TLS port, chosen by the primary (a configured port 0 becomes one free port for all). */
  tlsPort: number;
}

/**
 * One worker's configuration: the per-edge budgets divided by the worker count (rounded up, at least
 * 1, so N workers together allow what one edge was configured for, give or take rounding), and its
 * own admin listener on a loopback port (the task's admin port belongs to the primary).
 */
export function workerShare(
  config: EdgeConfig,
  count: number,
  adminPort: number,
  tlsPort = config.listen.port,
): EdgeConfig {
  const part = (n: number): number => Math.max(1, Math.ceil(n / count));
  const a = config.admission;
  return {
    ...config,
    listen: { ...config.listen, port: tlsPort },
    admin: { host: '127.0.0.1', port: adminPort },
    maxKeyOperationsInFlight: part(config.maxKeyOperationsInFlight),
    limits: { ...config.limits, maxConnections: part(config.limits.maxConnections) },
    admission: {
      ...a,
      maxPendingFullHandshakes: part(a.maxPendingFullHandshakes),
      // A client's connections are spread over the workers, so each sees its share of them.
      perClientRatePerSecond: a.perClientRatePerSecond / count,
      perClientBurst: part(a.perClientBurst),
      keyOperationsPerSecond: a.keyOperationsPerSecond / count,
      keyOperationBurst: part(a.keyOperationBurst),
      // Rounded down, so the workers together never admit more than the task's window.
      keyOperationWindow: a.keyOperationWindow > 0 ? Math.max(1, Math.floor(a.keyOperationWindow / count)) : 0,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Messages between the primary and its workers (advanced serialization: Infinity survives)

type ToWorker = { keyless: 'metrics' | 'health'; id: number } | { keyless: 'stop' | 'reload' };
type FromWorker =
  | { keyless: 'ready'; tlsPort: number }
  | { keyless: 'metrics'; id: number; snapshot: MetricSnapshot[] }
  | { keyless: 'health'; id: number; health: EdgeHealth };

function isFromWorker(m: unknown): m is FromWorker {
  return typeof m === 'object' && m !== null && typeof (m as { keyless?: unknown }).keyless === 'string';
}

/**
 * In a worker: answers the primary's questions from this edge and obeys its stop and reload. Signals
 * are the primary's to handle (a terminal's Ctrl-C reaches every process of the group; only the
 * primary's word counts), and a lost primary stops the worker.
 */
export function serveWorker(edge: RunningEdge, actions: { stop(reason: string): void; reload(): void }): void {
  const send = (m: FromWorker): void => {
    if (process.connected) process.send?.(m);
  };
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => undefined);
  process.on('message', (m: ToWorker) => {
    if (m?.keyless === 'metrics') {
      edge.edgeMetrics.collect();
      send({ keyless: 'metrics', id: m.id, snapshot: edge.edgeMetrics.registry.snapshot() });
    } else if (m?.keyless === 'health') {
      void edge.checkHealth().then((health) => send({ keyless: 'health', id: m.id, health }));
    } else if (m?.keyless === 'stop') actions.stop('primary');
    else if (m?.keyless === 'reload') actions.reload();
  });
  process.on('disconnect', () => actions.stop('primary gone'));
  send({ keyless: 'ready', tlsPort: edge.tlsPort });
}

// ---------------------------------------------------------------------------------------------
// Merging the workers' figures

/** Gauges that count things (summed over workers); every other gauge is a state (the highest wins). */
const SUMMED_GAUGES = new Set(['keyless_edge_admission_pending', 'keyless_edge_active_connections']);

const labelKey = (labels: Record<string, string>): string =>
  JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));

/** The workers' metrics as one edge's: counters and histograms summed, gauges summed or maxed. */
export function mergeSnapshots(perWorker: readonly MetricSnapshot[][]): MetricSnapshot[] {
  const merged = new Map<string, { metric: MetricSnapshot; byLabels: Map<string, MetricSample | HistogramSample> }>();
  for (const snapshot of perWorker) {
    for (const m of snapshot) {
      let entry = merged.get(m.name);
      if (!entry) {
        entry = { metric: { ...m, samples: [] } as MetricSnapshot, byLabels: new Map() };
        merged.set(m.name, entry);
      }
      for (const s of m.samples) {
        const k = labelKey(s.labels);
        const seen = entry.byLabels.get(k);
        if (!seen) {
          const copy = 'buckets' in s ? { ...s, buckets: s.buckets.map((b) => ({ ...b })) } : { ...s };
          entry.byLabels.set(k, copy);
          (entry.metric.samples as Array<typeof copy>).push(copy);
        } else if ('buckets' in seen && 'buckets' in s) {
          seen.sum += s.sum;
          seen.count += s.count;
          s.buckets.forEach((b, i) => {
            if (seen.buckets[i]?.le === b.le) seen.buckets[i].count += b.count;
          });
        } else if ('value' in seen && 'value' in s) {
          seen.value =
            m.type === 'gauge' && !SUMMED_GAUGES.has(m.name) ? Math.max(seen.value, s.value) : seen.value + s.value;
        }
      }
    }
  }
  return [...merged.values()].map((e) => e.metric);
}

/** The task's health from its workers' (undefined: that worker did not answer). */
export function mergeHealth(
  perWorker: ReadonlyArray<EdgeHealth | undefined>,
  stopping: boolean,
): EdgeHealth & { workers: Array<{ ok: boolean; connections?: number }> } {
  const answered = perWorker.filter((h): h is EdgeHealth => h !== undefined);
  const ok = answered.length === perWorker.length && answered.length > 0 && answered.every((h) => h.ok);
  const draining = stopping || answered.some((h) => h.draining);
  return {
    ok,
    keyService: answered.some((h) => h.keyService === 'reachable') ? 'reachable' : 'unreachable',
    connections: answered.reduce((n, h) => n + h.connections, 0),
    ...(draining ? { draining: true } : {}),
    keyServices: answered[0]?.keyServices ?? [],
    runtime: answered[0]?.runtime ?? `node/${process.versions.node}`,
    // Every worker routes to the same origins; the first answer's view of their health stands for the task.
    origins: answered[0]?.origins ?? [],
    workers: perWorker.map((h) => (h ? { ok: h.ok && !h.draining, connections: h.connections } : { ok: false })),
  };
}

// ---------------------------------------------------------------------------------------------
// The primary

function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

interface Slot {
  index: number;
  worker?: Worker;
  ready: boolean;
}

/**
 * Runs the primary: forks `count` workers, serves the admin port, relays signals. Resolves once every
 * worker is ready (the `edge listening` line is logged then); the process exits after a drain.
 */
export async function runPrimary(
  config: EdgeConfig,
  count: number,
  log: Logger,
  keyServices: string[],
  accept: AcceptMode = acceptMode(),
): Promise<{ tlsPort: number; adminPort: number }> {
  cluster.setupPrimary({ serialization: 'advanced' });
  // Round-robin: the primary accepts and hands connections to the workers in turn, which spreads
  // handshakes evenly (a shared accept queue lets the least busy worker take nearly all at low load).
  cluster.schedulingPolicy = cluster.SCHED_RR;
  // reuseport: each worker binds the port itself, so "any free port" must be chosen once for all.
  const sharedTlsPort =
    accept === 'reuseport' && config.listen.port === 0 ? await freePort(config.listen.host) : config.listen.port;
  const slots: Slot[] = Array.from({ length: count }, (_, index) => ({ index, ready: false }));
  const pending = new Map<number, (m: FromWorker) => void>();
  let nextId = 0;
  let stopping = false;
  let started = false;
  const restarts: number[] = [];

  let onAllReady: (tlsPort: number) => void = () => undefined;
  let onStartFailure: (e: Error) => void = () => undefined;
  const allReady = new Promise<number>((resolve, reject) => {
    onAllReady = resolve;
    onStartFailure = reject;
  });
  let tlsPort = 0;

  const fork = async (slot: Slot): Promise<void> => {
    const adminPort = await freePort();
    const worker = cluster.fork({
      KEYLESS_WORKER_INDEX: String(slot.index),
      KEYLESS_WORKER_COUNT: String(count),
      KEYLESS_WORKER_ADMIN_PORT: String(adminPort),
      KEYLESS_WORKER_ACCEPT: accept,
      KEYLESS_WORKER_TLS_PORT: String(sharedTlsPort),
    });
    slot.worker = worker;
    slot.ready = false;
    // An IPC send to a worker that just died: its exit is handled below; never crash the primary.
    worker.on('error', (e: Error) => log.log('warn', 'worker channel error', { worker: slot.index, error: e.message }));
    worker.on('message', (m: unknown) => {
      if (!isFromWorker(m)) return;
      if (m.keyless === 'ready') {
        slot.ready = true;
        tlsPort = m.tlsPort;
        if (!started && slots.every((s) => s.ready)) onAllReady(tlsPort);
      } else pending.get(m.id)?.(m);
    });
    worker.on('exit', (code, signal) => {
      slot.ready = false;
      if (stopping) return;
      if (!started)
        return onStartFailure(new Error(`worker ${slot.index} exited during startup (${signal ?? `code ${code}`})`));
      const now = Date.now();
      restarts.push(now);
      while (restarts.length && restarts[0] < now - RESTART_WINDOW_MS) restarts.shift();
      if (restarts.length > MAX_RESTARTS) {
        log.log('error', 'workers keep exiting; stopping the edge', {
          worker: slot.index,
          code,
          signal,
          restarts: restarts.length,
        });
        stopAll('restarts', 1);
        return;
      }
      log.log('error', 'worker exited; starting another', { worker: slot.index, code, signal });
      fork(slot).catch((e: unknown) => {
        log.log('error', 'cannot start a worker; stopping the edge', {
          worker: slot.index,
          error: (e as Error).message,
        });
        stopAll('restarts', 1);
      });
    });
  };

  const ask = <T extends FromWorker>(slot: Slot, type: 'metrics' | 'health'): Promise<T | undefined> => {
    const w = slot.worker;
    if (!w || !slot.ready || !w.isConnected()) return Promise.resolve(undefined);
    const id = nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        resolve(undefined);
      }, ASK_TIMEOUT_MS);
      pending.set(id, (m) => {
        clearTimeout(timer);
        pending.delete(id);
        resolve(m as T);
      });
      w.send({ keyless: type, id } satisfies ToWorker);
    });
  };

  const tell = (m: ToWorker): void => {
    for (const s of slots) if (s.worker?.isConnected()) s.worker.send(m);
  };

  const admin = http.createServer((req, res) => {
    if (req.url === '/healthz') {
      void Promise.all(slots.map((s) => ask<{ keyless: 'health'; id: number; health: EdgeHealth }>(s, 'health'))).then(
        (answers) => {
          const health = mergeHealth(
            answers.map((a) => a?.health),
            stopping,
          );
          res.writeHead(health.ok && !health.draining ? 200 : 503, { 'content-type': 'application/json' });
          res.end(JSON.stringify(health));
        },
      );
      return;
    }
    if (req.url === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) {
      void Promise.all(
        slots.map((s) => ask<{ keyless: 'metrics'; id: number; snapshot: MetricSnapshot[] }>(s, 'metrics')),
      ).then((answers) => {
        const snapshots = answers.filter((a) => a !== undefined).map((a) => a.snapshot);
        const workers: MetricSnapshot = {
          name: 'keyless_edge_workers',
          help: 'Worker processes of this edge that answered (each serves the TLS port on its own vCPU).',
          type: 'gauge',
          samples: [{ labels: {}, value: snapshots.length }],
        };
        const body = renderPrometheus([...mergeSnapshots(snapshots), workers]);
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
      });
      return;
    }
    res.writeHead(404).end();
  });

  let exitCode = 0;
  const stopAll = (reason: string, code = 0): void => {
    if (stopping) {
      // A second signal: the workers stop now (their second stop exits at once), and so do we.
      log.log('warn', 'stopping now', { signal: reason });
      tell({ keyless: 'stop' });
      process.exit(1);
    }
    stopping = true;
    exitCode = code;
    log.log('info', 'stopping', { signal: reason, workers: count });
    tell({ keyless: 'stop' });
    // A worker still starting has no stop handler yet: the signal's default action ends it.
    for (const s of slots) if (!s.ready) s.worker?.process.kill('SIGTERM');
    const alive = slots
      .filter((s) => s.worker && !s.worker.isDead())
      .map((s) => new Promise<number>((r) => s.worker!.once('exit', (c) => r(c ?? 1))));
    // Workers drain within drainTimeoutMs; one that does not exit well after it is killed.
    const backstop = setTimeout(
      () => {
        for (const s of slots) if (s.worker && !s.worker.isDead()) s.worker.process.kill('SIGKILL');
      },
      config.drainTimeoutMs + config.handshakeTimeoutMs + 5_000,
    );
    backstop.unref();
    void Promise.all(alive).then((codes) => {
      admin.close();
      process.exit(codes.some((c) => c !== 0) ? 1 : exitCode);
    });
  };
  process.on('SIGTERM', () => stopAll('SIGTERM'));
  process.on('SIGINT', () => stopAll('SIGINT'));
  process.on('SIGHUP', () => {
    if (!stopping) tell({ keyless: 'reload' });
  });

  await new Promise<void>((resolve, reject) => {
    admin.once('error', reject);
    admin.listen(config.admin.port, config.admin.host, () => resolve());
  });
  await Promise.all(slots.map(fork));
  try {
    await allReady;
  } catch (e) {
    stopping = true;
    for (const s of slots) s.worker?.kill('SIGKILL');
    throw e;
  }
  started = true;
  const adminPort = (admin.address() as net.AddressInfo).port;
  log.log('info', 'edge listening', { tlsPort, adminPort, workers: count, accept, keyServices });
  return { tlsPort, adminPort };
}
