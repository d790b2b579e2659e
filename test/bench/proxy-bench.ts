/**
 * The proxy benchmarks of `npm run bench`: what the edge does once the
 * handshake is over, next to nginx doing the same job on the same machine in the same run.
 *
 *   keep-alive  HTTP requests/s over kept-alive connections: h2load `-c C -m 1` over HTTP/1.1 and
 *               `-c C -m 10` over HTTP/2, every connection carrying the same fixed number of small
 *               GETs (`/small`, 3 bytes), through the edge and through nginx (`proxy_pass` with an
 *               upstream keep-alive pool) to one origin; the origin alone (HTTP/1.1, no TLS) is the
 *               ceiling.
 *   bulk        MB/s of one and of a few connections each downloading a large streamed body
 *               (`/bulk/<bytes>`, curl over HTTP/1.1, the same TLS 1.3 suite everywhere) through
 *               the edge, through nginx, and straight from the origin (no TLS: the ceiling).
 *
 * The origin is test/bench/bench-origin.ts in its own process; the edge is a second edge process of
 * the local stack (tickets on, key service and certificates of the stack) pointed at that origin.
 * Runs are interleaved target after target in an order that rotates each round, as in run.ts.
 * Nothing here asserts timings.
 */
import { runBulk, runKeepAlive, type BulkResult, type KeepAliveResult } from './loadgen';
import { startCpuWindow } from './proc';
import { fmt, fmtMs, ratio, type Table } from './report';
import { median } from './stats';
import type { ProxyTarget } from './targets';

export interface ProxyBenchConfig {
  reps: number;
  /** Concurrent connections of the keep-alive runs. */
  keepAliveConnections: number;
  /** Requests each connection carries (the same for every target, so the handshakes weigh alike). */
  requestsPerConnection: number;
  /** Parallel downloads of the bulk runs, e.g. [1, 4]. */
  bulkConnections: number[];
  /** Bytes downloaded per bulk run, split evenly over its connections. */
  bulkBytes: number;
  log: (line: string) => void;
  /** True once the run's time budget is spent: later rounds are skipped. */
  outOfTime: () => boolean;
}

export type Mode = 'http/1.1' | 'h2';

export interface KeepAliveCell {
  target: ProxyTarget;
  mode: Mode;
  streams: number;
  runs: KeepAliveResult[];
  /** Server-side CPU ms by process group, summed over the runs. */
  cpu: Record<string, number>;
  error?: string;
}

export interface BulkCell {
  target: ProxyTarget;
  c: number;
  runs: BulkResult[];
  cpu: Record<string, number>;
  error?: string;
}

export interface ProxyBenchResults {
  config: Omit<ProxyBenchConfig, 'log' | 'outOfTime'>;
  keepAlive: KeepAliveCell[];
  bulk: BulkCell[];
}

const TLS13_SUITE = 'TLS_AES_128_GCM_SHA256';

function addCpu(into: Record<string, number>, groups: Record<string, number>): void {
  for (const [k, v] of Object.entries(groups)) into[k] = (into[k] ?? 0) + v;
}

const rotate = <T>(xs: T[], by: number): T[] => xs.map((_, i) => xs[(i + by) % xs.length]);

export async function runKeepAliveBench(targets: ProxyTarget[], cfg: ProxyBenchConfig): Promise<KeepAliveCell[]> {
  const c = cfg.keepAliveConnections;
  const n = c * cfg.requestsPerConnection;
  const cells: KeepAliveCell[] = [];
  for (const mode of ['http/1.1', 'h2'] as const) {
    for (const target of targets) {
      // The origin alone speaks cleartext HTTP/1.1 only (h2load cannot do h2c with prior knowledge here).
      if (mode === 'h2' && !target.h2) continue;
      cells.push({ target, mode, streams: mode === 'h2' ? 10 : 1, runs: [], cpu: {} });
    }
  }
  cfg.log(
    `keep-alive: ${cells.length} cells, ${c} connections × ${cfg.requestsPerConnection} requests each (${n} per run), ${cfg.reps} runs per cell`,
  );
  // Warm-up: JIT, the origin pools, the key service's clients (one short run per cell, not measured).
  for (const cell of cells) {
    const w = await runKeepAlive({
      url: `${cell.target.base}/small`,
      n: Math.min(n, c * 100),
      c,
      m: cell.streams,
      proto: cell.mode,
      timeoutMs: 60_000,
    });
    if (w.succeeded === 0) cell.error = `warm-up failed (${w.failed} failed)`;
  }
  for (let rep = 0; rep < cfg.reps; rep++) {
    if (rep > 0 && cfg.outOfTime()) {
      cfg.log(`keep-alive: time budget spent after ${rep} run${rep === 1 ? '' : 's'} per cell`);
      break;
    }
    for (const cell of rotate(cells, rep)) {
      if (cell.error) continue;
      const cpu = startCpuWindow(cell.target.processes);
      const r = await runKeepAlive({
        url: `${cell.target.base}/small`,
        n,
        c,
        m: cell.streams,
        proto: cell.mode,
        timeoutMs: 120_000,
      });
      addCpu(cell.cpu, cpu().groups);
      cell.runs.push(r);
      cfg.log(
        `run ${rep + 1}/${cfg.reps} ${cell.target.label} ${cell.mode} -m ${cell.streams}: ${fmt(r.rate)} requests/s (${r.succeeded}/${r.requested} ok in ${r.seconds.toFixed(2)} s${r.failed ? `, ${r.failed} FAILED` : ''}${r.protocol ? `, ${r.protocol}` : ''})`,
      );
    }
  }
  return cells;
}

export async function runBulkBench(targets: ProxyTarget[], cfg: ProxyBenchConfig): Promise<BulkCell[]> {
  const cells: BulkCell[] = [];
  for (const c of cfg.bulkConnections) for (const target of targets) cells.push({ target, c, runs: [], cpu: {} });
  const per = (c: number): number => Math.floor(cfg.bulkBytes / c);
  cfg.log(
    `bulk: ${cells.length} cells, ${fmt(cfg.bulkBytes / 2 ** 20)} MiB per run (split over the run's connections), ${cfg.reps} runs per cell`,
  );
  for (const cell of cells) {
    const w = await runBulk({
      url: `${cell.target.base}/bulk/${2 ** 20}`,
      c: cell.c,
      bytes: 2 ** 20,
      timeoutMs: 60_000,
      tls13Cipher: TLS13_SUITE,
    });
    if (w.failed) cell.error = `warm-up download failed (${w.failed} of ${cell.c})`;
  }
  for (let rep = 0; rep < cfg.reps; rep++) {
    if (rep > 0 && cfg.outOfTime()) {
      cfg.log(`bulk: time budget spent after ${rep} run${rep === 1 ? '' : 's'} per cell`);
      break;
    }
    for (const cell of rotate(cells, rep)) {
      if (cell.error) continue;
      const bytes = per(cell.c);
      const cpu = startCpuWindow(cell.target.processes);
      const r = await runBulk({
        url: `${cell.target.base}/bulk/${bytes}`,
        c: cell.c,
        bytes,
        timeoutMs: 300_000,
        tls13Cipher: TLS13_SUITE,
      });
      addCpu(cell.cpu, cpu().groups);
      cell.runs.push(r);
      cfg.log(
        `run ${rep + 1}/${cfg.reps} ${cell.target.label} ×${cell.c}: ${fmt(r.mbPerSecond)} MB/s (${fmt(r.bytes / 2 ** 20)} MiB in ${r.seconds.toFixed(2)} s${r.failed ? `, ${r.failed} FAILED` : ''})`,
      );
    }
  }
  return cells;
}

// ---------------------------------------------------------------------------------------------
// Report

export const kaRate = (cell: KeepAliveCell | undefined): number | undefined =>
  cell && cell.runs.length ? median(cell.runs.map((r) => r.rate)) : undefined;
export const bulkRate = (cell: BulkCell | undefined): number | undefined =>
  cell && cell.runs.length ? median(cell.runs.map((r) => r.mbPerSecond)) : undefined;
const spread = (xs: number[]): string => (xs.length > 1 ? ` (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})` : '');
const sumCpu = (cpu: Record<string, number>, without: string[] = []): number =>
  Object.entries(cpu).reduce((a, [k, v]) => (without.includes(k) ? a : a + v), 0);
const byProcess = (cpu: Record<string, number>, per: number, unit: (v: number) => string): string =>
  Object.entries(cpu)
    .map(([k, v]) => `${k} ${unit(v / per)}`)
    .join(' + ');

/** The edge's cell and nginx's for the same mode / concurrency (by target id). */
export function pairKeepAlive(
  cells: KeepAliveCell[],
  mode: Mode,
): { edge?: KeepAliveCell; nginx?: KeepAliveCell; origin?: KeepAliveCell } {
  const of = (pred: (id: string) => boolean): KeepAliveCell | undefined =>
    cells.find((x) => x.mode === mode && pred(x.target.id) && x.runs.length);
  return {
    edge: of((id) => id === 'edge'),
    nginx: of((id) => id.startsWith('nginx')),
    origin: of((id) => id === 'origin'),
  };
}

export function pairBulk(cells: BulkCell[], c: number): { edge?: BulkCell; nginx?: BulkCell; origin?: BulkCell } {
  const of = (pred: (id: string) => boolean): BulkCell | undefined =>
    cells.find((x) => x.c === c && pred(x.target.id) && x.runs.length);
  return {
    edge: of((id) => id === 'edge'),
    nginx: of((id) => id.startsWith('nginx')),
    origin: of((id) => id === 'origin'),
  };
}

export function keepAliveTable(r: ProxyBenchResults): Table {
  const rows: string[][] = [];
  for (const mode of ['http/1.1', 'h2'] as const) {
    const p = pairKeepAlive(r.keepAlive, mode);
    for (const cell of r.keepAlive.filter((x) => x.mode === mode)) {
      if (!cell.runs.length) {
        rows.push([
          cell.target.label,
          mode,
          String(cell.streams),
          cell.error ? `failed: ${cell.error}` : '–',
          '',
          '',
          '',
          '',
          '',
        ]);
        continue;
      }
      const reqs = cell.runs.reduce((a, x) => a + x.succeeded, 0);
      const failed = cell.runs.reduce((a, x) => a + x.failed, 0);
      const us = (v: number): string => fmt(v * 1000, 0);
      rows.push([
        cell.target.label,
        mode,
        String(cell.streams),
        `${fmt(kaRate(cell))}${spread(cell.runs.map((x) => x.rate))}`,
        cell.target.id === 'edge' ? '1.00×' : ratio(kaRate(p.edge), kaRate(cell)),
        us(sumCpu(cell.cpu, ['key service']) / Math.max(1, reqs)),
        byProcess(cell.cpu, Math.max(1, reqs), us),
        us(cell.runs.reduce((a, x) => a + x.clientCpuMs, 0) / Math.max(1, reqs)),
        failed ? `✗ ${failed} failed` : '✓ all 200',
      ]);
    }
  }
  const c = r.config.keepAliveConnections;
  return {
    title: `HTTP requests per second over kept-alive connections (${c} connections × ${fmt(r.config.requestsPerConnection)} requests each, 3-byte response)`,
    head: [
      'target',
      'protocol',
      'streams per conn',
      'requests/s (min–max)',
      'edge ÷ target',
      'server CPU µs/request',
      'by process (µs/request)',
      'client µs/request',
      'check',
    ],
    rows,
    left: [0, 1, 6, 8],
    note: `Median of ${r.config.reps} runs; every run opens ${c} new connections (one full TLS handshake each, which the edge's key service signs) and then carries ${fmt(r.config.requestsPerConnection)} GETs on each, so handshakes are under 0.1% of the work. h2load \`-n ${c * r.config.requestsPerConnection} -c ${c} -m M -t 1\` (\`--h1\` for HTTP/1.1, ALPN h2 for HTTP/2). Both proxies forward to the same origin process over HTTP/1.1 with a keep-alive pool; server CPU counts the proxy and the origin (the edge's key service is left out: it only signs the ${c} handshakes). "origin direct" is the origin alone over cleartext HTTP/1.1: the ceiling, not a competitor.`,
  };
}

export function bulkTable(r: ProxyBenchResults): Table {
  const rows: string[][] = [];
  for (const c of r.config.bulkConnections) {
    const p = pairBulk(r.bulk, c);
    for (const cell of r.bulk.filter((x) => x.c === c)) {
      if (!cell.runs.length) {
        rows.push([cell.target.label, String(c), cell.error ? `failed: ${cell.error}` : '–', '', '', '', '', '']);
        continue;
      }
      const mb = cell.runs.reduce((a, x) => a + x.bytes, 0) / 1e6;
      const failed = cell.runs.reduce((a, x) => a + x.failed, 0);
      rows.push([
        cell.target.label,
        String(c),
        `${fmt(bulkRate(cell))}${spread(cell.runs.map((x) => x.mbPerSecond))}`,
        cell.target.id === 'edge' ? '1.00×' : ratio(bulkRate(p.edge), bulkRate(cell)),
        fmtMs(sumCpu(cell.cpu, ['key service']) / Math.max(1e-9, mb)),
        byProcess(cell.cpu, Math.max(1e-9, mb), fmtMs),
        fmtMs(cell.runs.reduce((a, x) => a + x.clientCpuMs, 0) / Math.max(1e-9, mb)),
        failed ? `✗ ${failed} incomplete` : '✓ every byte',
      ]);
    }
  }
  return {
    title: `Bulk download throughput (MB/s = 10^6 bytes/s; ${fmt(r.config.bulkBytes / 2 ** 20)} MiB per run, split over the connections)`,
    head: [
      'target',
      'connections',
      'MB/s (min–max)',
      'edge ÷ target',
      'server CPU ms/MB',
      'by process (ms/MB)',
      'client ms/MB',
      'check',
    ],
    rows,
    left: [0, 5, 7],
    note: `Median of ${r.config.reps} runs. curl \`--http1.1 --tls13-ciphers ${TLS13_SUITE}\` to /dev/null, the connections started together; MB/s = all bytes received ÷ wall time from the first start to the last end (handshake included, ~0.01 s). The origin streams the body from one preallocated buffer with backpressure; nginx relays it through its memory buffers (\`proxy_max_temp_file_size 0\`: no temporary files), the edge through its stream pipeline (record layer → HTTP proxy → origin socket). "origin direct" is cleartext: the ceiling of this machine with this client, not a competitor. The check requires every download to return 200 with exactly the requested number of bytes.`,
  };
}
