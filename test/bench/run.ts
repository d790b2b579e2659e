/**
 * `npm run bench`: full TLS 1.3 handshake rate and latency of the keyless edge, measured in one run
 * against references on the same machine, with the results printed and written to
 * docs/benchmarks.md (+ a chart). Not part of `npm test`; nothing here asserts timings.
 *
 *   1. new-connection rate (one small HTTP/1.1 request per connection, `Connection: close`) at fixed
 *      client concurrencies with h2load `--h1 -n N -c C -t 1` (Node client pool if h2load is missing),
 *      against: the edge of the local stack (`keyless dev`) with 1 and with 2 worker processes
 *      (KEYLESS_WORKERS=2), the engine alone with an in-process signer, `openssl s_server -no_ticket
 *      -no_cache`, nginx with 1 and 2 workers (no session cache, no tickets, no keep-alive) proxying
 *      each request to the edge's own origin (`proxy_pass`, upstream keep-alive) as the edge does, and
 *      nginx 1 worker answering itself (`return 200`, "direct") as an extra reference. Full handshakes
 *      are counted on the server side.
 *   2. handshake latency at concurrency 1 (Node/OpenSSL client), and for the edge the key-operation
 *      latency as the edge, the key-service handler and its KMS call each see it (from the JSON logs);
 *      then the edge's handshake by phase, from a separate edge traced from inside
 *      (phase-trace-preload.ts, phases.ts).
 *   3. CPU milliseconds per handshake of every process involved (/proc), and the machine's load.
 *
 * Environment: BENCH_RUN_SECONDS (target length of one measured run, default 3), BENCH_REPS
 * (default 3), BENCH_CONCURRENCY (default "8,32"), BENCH_LATENCY_COUNT (default 300),
 * BENCH_BUDGET_SECONDS (skip what would start after this, default 540; the key-service section, last, ends by budget + 60 s),
 * BENCH_KEEPALIVE_REQUESTS (requests per kept-alive connection, default 500), BENCH_BULK_MIB (MiB per
 * bulk run, default 256), BENCH_NO_DOCS=1 (print only), BENCH_DOCS_DIR (write the report there),
 * BENCH_PROFILE=0 (no sampled CPU profiles), BENCH_KEEP_PROFILES=1 (keep the .cpuprofile files),
 * BENCH_LOADGEN=node (the Node client pool even when h2load is installed), BENCH_KEY_SERVICE=0 (skip
 * the key-service path section, test/bench/key-service.ts, which has its own BENCH_KS_* knobs),
 * BENCH_TLS12=0 (skip section 4).
 *   4. full TLS 1.2 handshakes/s (ECDHE-RSA and RSA key exchange, AES128-GCM) of the local stack in
 *      sealed custody next to `openssl s_server -tls1_2 -no_ticket -no_cache`, Node client pool
 *      (h2load cannot cap the version), at the highest concurrency, with CPU per process and the
 *      key operation's latency; the key service's invocation delta verifies every handshake was full.
 *   5. resumed handshakes/s, TLS 1.3 (h2load, which resumes by itself) and TLS 1.2 (Node
 *      client pool offering each loop's newest session), of the local stack with session tickets on
 *      next to `openssl s_server` with tickets and nginx with a ticket key file; the share actually
 *      resumed is counted on the server (edge /metrics `keyless_edge_handshakes_total{kind}` and the
 *      key service's invocations, nginx `$ssl_session_reused`) or, for s_server, by the client.
 *   6. HTTP requests/s over kept-alive connections and 7. bulk MB/s through the edge and through
 *      nginx (proxy_pass, upstream keep-alive) to one origin (test/bench/proxy-bench.ts).
 *   9. CPU per full TLS 1.3 handshake with X25519MLKEM768 next to X25519, same run, engine only
 *      (test/bench/groups-bench.ts; BENCH_GROUPS=0 skips it, BENCH_GROUPS_CONNECTIONS per run).
 *   8. the edge's own latency per full handshake with the key operation taken out, at c=1 (from the
 *      latency probe of 2 and the edge's per-handshake `keyOperationMs`), next to nginx's and the
 *      engine's with their local signature taken out.
 *
 * Short runs while developing: KEYLESS_BENCH_QUICK=1 (1 run of ~1 s per cell, c=32 only, smaller
 * counts) and KEYLESS_BENCH_ONLY=<sections> (comma-separated: full, latency, tls12, resume,
 * keepalive, bulk, profile, keyservice, groups). Either one leaves docs/benchmarks.md alone unless
 * BENCH_DOCS_DIR names a folder to write the report into.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeTestPki } from '../helpers/certs';
import { measureLatency, LatencySample } from './latency';
import { phaseBreakdown, PhaseRow, readPhaseTraces } from './phases';
import { LoadOptions, LoadResult, LoadTool, pickLoadTool, runLoad } from './loadgen';
import { HAVE_PROC, startCpuWindow } from './proc';
import { CATEGORIES, ProfileSummary, summarizeProfile } from './profile';
import { ChartPanel, fmt, fmtMs, pct, ratio, renderMarkdown, renderText, stackedBarChartsSvg, Table } from './report';
import { median, summarize, Summary } from './stats';
import type { StackProcess } from '../helpers/dev-stack-process';
import {
  bulkRate,
  bulkTable,
  kaRate,
  keepAliveTable,
  pairBulk,
  pairKeepAlive,
  runBulkBench,
  runKeepAliveBench,
  type ProxyBenchResults,
} from './proxy-bench';
import {
  directOriginTarget,
  ProxyTarget,
  ReferencePki,
  startBenchOrigin,
  startEdgeTarget,
  startEngineTarget,
  startNginxProxyTarget,
  startNginxTarget,
  startProxyEdgeTarget,
  startSServerTarget,
  Target,
  WindowCheck,
} from './targets';
import { have, missingReason, versionOf } from './tools';

// ---------------------------------------------------------------------------------------------
// Configuration

function envNum(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return process.env[name] && Number.isFinite(v) && v > 0 ? v : fallback;
}

const SECTIONS = [
  'full',
  'latency',
  'tls12',
  'groups',
  'resume',
  'keepalive',
  'bulk',
  'profile',
  'keyservice',
] as const;
type Section = (typeof SECTIONS)[number];

/** KEYLESS_BENCH_ONLY: the sections to run (all when unset). A typo stops the run before anything starts. */
function parseOnly(v: string | undefined): Set<Section> | undefined {
  if (!v || !v.trim()) return undefined;
  const names = v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  const bad = names.filter((n) => !(SECTIONS as readonly string[]).includes(n));
  if (bad.length)
    throw new Error(
      `KEYLESS_BENCH_ONLY: unknown section${bad.length > 1 ? 's' : ''} ${bad.join(', ')}; use a comma-separated list of ${SECTIONS.join(', ')}`,
    );
  return new Set(names as Section[]);
}

const QUICK = process.env.KEYLESS_BENCH_QUICK === '1';
const ONLY = parseOnly(process.env.KEYLESS_BENCH_ONLY);
const wants = (s: Section): boolean => !ONLY || ONLY.has(s);
/** Partial or quick runs must not replace the committed report, unless told where to write. */
const DOCS_DIR = process.env.BENCH_DOCS_DIR;

const CONFIG = {
  runSeconds: envNum('BENCH_RUN_SECONDS', QUICK ? 1 : 3),
  reps: Math.round(envNum('BENCH_REPS', QUICK ? 1 : 3)),
  concurrency: (process.env.BENCH_CONCURRENCY ?? (QUICK ? '32' : '8,32'))
    .split(',')
    .map((s) => Number(s.trim()))
    .filter((n) => Number.isInteger(n) && n > 0),
  latencyCount: Math.round(envNum('BENCH_LATENCY_COUNT', QUICK ? 60 : 300)),
  latencyMaxMs: 6000,
  full: wants('full'),
  latency: wants('latency'),
  profile: process.env.BENCH_PROFILE !== '0' && wants('profile'),
  keyService: process.env.BENCH_KEY_SERVICE !== '0' && wants('keyservice'),
  tls12: process.env.BENCH_TLS12 !== '0' && wants('tls12'),
  groups: process.env.BENCH_GROUPS !== '0' && wants('groups'),
  /** Groups section: full handshakes per run and client concurrency. */
  groupsConnections: Math.round(envNum('BENCH_GROUPS_CONNECTIONS', QUICK ? 200 : 600)),
  resume: wants('resume'),
  keepAlive: wants('keepalive'),
  bulk: wants('bulk'),
  /** Keep-alive runs: connections, and requests each connection carries. */
  keepAliveConnections: 8,
  requestsPerConnection: Math.round(envNum('BENCH_KEEPALIVE_REQUESTS', QUICK ? 200 : 500)),
  /** Bulk runs: bytes per run (split over the run's connections) and the connection counts. */
  bulkBytes: Math.round(envNum('BENCH_BULK_MIB', QUICK ? 64 : 256) * 2 ** 20),
  bulkConnections: [1, 4],
  /** Skip what would start after this; the whole run (after the build) should end by hardStopMs (~10 minutes). */
  budgetMs: envNum('BENCH_BUDGET_SECONDS', QUICK ? 240 : 540) * 1000,
  get hardStopMs(): number {
    return this.budgetMs + 60_000;
  },
  writeDocs: process.env.BENCH_NO_DOCS !== '1' && ((!QUICK && !ONLY) || DOCS_DIR !== undefined),
};

function findRepoRoot(from: string): string {
  for (let d = from; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'package.json')) && fs.existsSync(path.join(d, 'edge-proxy'))) return d;
    if (path.dirname(d) === d) throw new Error(`no repository root above ${from}`);
  }
}

const REPO_ROOT = findRepoRoot(__dirname);
const STARTED = Date.now();
const elapsed = (): number => Date.now() - STARTED;
const say = (s: string): void => void process.stdout.write(`${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Results

interface Cell {
  c: number;
  n: number;
  runs: LoadResult[];
  checks: WindowCheck[];
  /** CPU ms per process group, summed over the runs. */
  cpu: Record<string, number>;
  machineBusy: number[];
  /** CPU ms of the benchmark process itself (it receives the local stack's log lines). */
  runnerMs: number;
  /** Busy CPU ms of the whole machine over the runs, and its total (all cores). */
  machineBusyMs: number;
  machineTotalMs: number;
  verified: 'ok' | 'mismatch' | 'n/a';
  error?: string;
}

interface TargetResult {
  id: string;
  label: string;
  cells: Cell[];
  latency?: { handshake: Summary; total: Summary };
  latencyWindow?: WindowCheck;
  /**
   * Edge only: per latency-probe connection, the client's handshake time minus the key operation
   * the edge logged for that very handshake (ms), and how many connections could not be paired.
   */
  ownMs?: number[];
  ownUnpaired?: number;
  skipped?: string;
  error?: string;
}

const handshakes = (cell: Cell): number => cell.runs.reduce((a, r) => a + r.succeeded, 0);
const rateMedian = (cell: Cell | undefined): number | undefined =>
  cell && cell.runs.length ? median(cell.runs.map((r) => r.rate)) : undefined;
const cpuTotalPerHs = (cell: Cell): number =>
  Object.values(cell.cpu).reduce((a, b) => a + b, 0) / Math.max(1, handshakes(cell));
const clientCpuPerHs = (cell: Cell): number =>
  cell.runs.reduce((a, r) => a + r.clientCpuMs, 0) / Math.max(1, handshakes(cell));
const cellOf = (r: TargetResult | undefined, c: number): Cell | undefined =>
  r?.cells.find((x) => x.c === c && x.runs.length > 0);

// ---------------------------------------------------------------------------------------------
// Measurement

const RUNNER = '(bench runner)';

function emptyCell(c: number): Cell {
  return {
    c,
    n: 0,
    runs: [],
    checks: [],
    cpu: {},
    machineBusy: [],
    runnerMs: 0,
    machineBusyMs: 0,
    machineTotalMs: 0,
    verified: 'n/a',
  };
}

/** Share of the machine's CPU during the runs that none of the measured processes used. */
function foreignShare(cell: Cell): number {
  const ours =
    Object.values(cell.cpu).reduce((a, b) => a + b, 0) +
    cell.runs.reduce((a, r) => a + r.clientCpuMs, 0) +
    cell.runnerMs;
  return cell.machineTotalMs > 0 ? Math.max(0, cell.machineBusyMs - ours) / cell.machineTotalMs : NaN;
}

/**
 * `full`: the server counted exactly the client's successful connections as full handshakes and
 * resumed none. `resume`: full + resumed add up to them (the share resumed is reported separately).
 */
function verify(run: LoadResult, check: WindowCheck, expect: 'full' | 'resume' = 'full'): 'ok' | 'mismatch' | 'n/a' {
  if (check.fullHandshakes === undefined) return 'n/a';
  if (expect === 'resume')
    return run.failed === 0 && check.fullHandshakes + (check.resumed ?? 0) === run.succeeded ? 'ok' : 'mismatch';
  return run.failed === 0 && check.fullHandshakes === run.succeeded && (check.resumed ?? 0) === 0 ? 'ok' : 'mismatch';
}

interface Active {
  target: Target;
  result: TargetResult;
  /** Extra load-generator options (TLS 1.2: version cap and suite; resumption). */
  load?: Pick<LoadOptions, 'tls12Ciphers' | 'resume' | 'forceNode'>;
  /** What the server-side count must show (default: every handshake full). */
  expect?: 'full' | 'resume';
}

/** Calibration run (also the warm-up: JIT, connection pools, the key service's SDK clients). */
async function calibrate(a: Active, tool: LoadTool, c: number): Promise<Cell> {
  const cell = emptyCell(c);
  a.result.cells.push(cell);
  const calN = Math.max(4 * c, 60);
  try {
    const cal = await runLoad(tool, { url: a.target.url, n: calN, c, timeoutMs: 60_000, ...a.load });
    if (cal.succeeded === 0) cell.error = `calibration run failed (${cal.failed} of ${calN} failed)`;
    else cell.n = Math.min(200_000, Math.max(2 * c, 100, Math.round(cal.rate * CONFIG.runSeconds)));
    say(
      `  ${a.target.label}: calibration ${fmt(cal.rate)}/s → ${cell.n} connections per run${cell.error ? ` (${cell.error})` : ''}`,
    );
  } catch (e) {
    cell.error = (e as Error).message;
  }
  return cell;
}

async function measuredRun(a: Active, tool: LoadTool, cell: Cell, rep: number): Promise<void> {
  const t = a.target;
  const timeoutMs = Math.max(30_000, 10 * CONFIG.runSeconds * 1000);
  const window = await t.beginWindow();
  const cpu = startCpuWindow({ ...t.processes, [RUNNER]: () => [process.pid] });
  const run = await runLoad(tool, { url: t.url, n: cell.n, c: cell.c, timeoutMs, ...a.load });
  const d = cpu();
  const check = await window(run.succeeded);
  cell.runs.push(run);
  cell.checks.push(check);
  for (const [k, v] of Object.entries(d.groups)) {
    if (k === RUNNER) cell.runnerMs += v;
    else cell.cpu[k] = (cell.cpu[k] ?? 0) + v;
  }
  cell.machineBusy.push(d.machineBusy);
  cell.machineBusyMs += d.machineBusyMs;
  cell.machineTotalMs += d.machineTotalMs;
  const v = verify(run, check, a.expect);
  cell.verified = cell.verified === 'mismatch' || v === 'mismatch' ? 'mismatch' : v === 'ok' ? 'ok' : cell.verified;
  say(
    `  run ${rep + 1}/${CONFIG.reps} ${t.label}: ${fmt(run.rate)} handshakes/s (${run.succeeded}/${run.requested} ok in ${run.seconds.toFixed(2)} s${run.failed ? `, ${run.failed} FAILED` : ''}) — ${check.detail}${v === 'mismatch' ? '  ✗ MISMATCH' : v === 'ok' ? '  ✓' : ''}`,
  );
}

function mergeChecks(a: WindowCheck | undefined, b: WindowCheck): WindowCheck {
  if (!a) return b;
  return {
    detail: b.detail,
    keyOperationMs: [...(a.keyOperationMs ?? []), ...(b.keyOperationMs ?? [])],
    serverOwnMs: [...(a.serverOwnMs ?? []), ...(b.serverOwnMs ?? [])],
    keyServiceHandlerMs: [...(a.keyServiceHandlerMs ?? []), ...(b.keyServiceHandlerMs ?? [])],
    kmsCallMs: [...(a.kmsCallMs ?? []), ...(b.kmsCallMs ?? [])],
  };
}

/**
 * Every target runs at the same time (idle ones cost nothing) and the measured runs take turns,
 * target after target, in an order that rotates each round. On a machine that other work shares,
 * slow drifts in the background load then touch every target alike, which keeps the ratios fair.
 */
async function measureAll(active: Active[], tool: LoadTool): Promise<void> {
  if (CONFIG.full) await measureRates(active, tool, CONFIG.concurrency);
  if (CONFIG.latency) await measureLatencies(active);
}

async function measureRates(active: Active[], tool: LoadTool, concurrencies: number[]): Promise<void> {
  for (const c of concurrencies) {
    say(`\n== concurrency ${c}`);
    const cells = new Map<Active, Cell>();
    for (const a of active) cells.set(a, await calibrate(a, tool, c));
    for (let rep = 0; rep < CONFIG.reps; rep++) {
      if (rep > 0 && elapsed() > CONFIG.budgetMs) {
        say(
          `  the time budget (${CONFIG.budgetMs / 1000} s) is spent: ${rep} run${rep === 1 ? '' : 's'} per target at c=${c}`,
        );
        break;
      }
      const order = active.map((_, i) => active[(i + rep) % active.length]);
      for (const a of order) {
        const cell = cells.get(a)!;
        if (cell.error || cell.n === 0) continue;
        try {
          await measuredRun(a, tool, cell, rep);
        } catch (e) {
          cell.error = (e as Error).message;
          say(`  run ${rep + 1} ${a.target.label}: failed: ${cell.error}`);
        }
      }
    }
  }
}

/**
 * At c=1 the connections run one after another, so the edge's `handshake` log lines of the window
 * come in the same order as the probe's connections (warm-up first): pair them and take the key
 * operation out of each handshake. A window whose counts differ is not paired (and is counted).
 */
function pairOwnLatency(r: TargetResult, got: LatencySample[], keyOpMs: number[], warmup: number): void {
  r.ownMs ??= [];
  if (keyOpMs.length !== got.length + warmup) {
    r.ownUnpaired = (r.ownUnpaired ?? 0) + got.length;
    return;
  }
  got.forEach((x, i) => r.ownMs!.push(x.handshakeMs - keyOpMs[warmup + i]));
}

async function measureLatencies(active: Active[]): Promise<void> {
  say('\n== latency at concurrency 1');
  const rounds = 3;
  const samples = new Map<Active, LatencySample[]>();
  for (let round = 0; round < rounds; round++) {
    for (const a of active) {
      const t = a.target;
      try {
        const window = await t.beginWindow();
        const warmup = round === 0 ? 10 : 2;
        const got = await measureLatency({
          port: t.port,
          path: t.path,
          ca: t.caPem,
          count: Math.ceil(CONFIG.latencyCount / rounds),
          warmup,
          maxMs: CONFIG.latencyMaxMs / rounds,
        });
        const check = await window(got.length + warmup);
        a.result.latencyWindow = mergeChecks(a.result.latencyWindow, check);
        samples.set(a, [...(samples.get(a) ?? []), ...got]);
        if (check.keyOperationMs) pairOwnLatency(a.result, got, check.keyOperationMs, warmup);
      } catch (e) {
        say(`  ${t.label}: latency probe failed: ${(e as Error).message}`);
      }
    }
  }
  for (const a of active) {
    const got = samples.get(a) ?? [];
    if (!got.length) continue;
    a.result.latency = {
      handshake: summarize(got.map((x) => x.handshakeMs)),
      total: summarize(got.map((x) => x.totalMs)),
    };
    say(
      `  ${a.target.label}: handshake p50 ${fmtMs(a.result.latency.handshake.p50)} ms, p99 ${fmtMs(a.result.latency.handshake.p99)} ms over ${got.length} connections`,
    );
  }
}

/**
 * The edge's c=1 handshake by phase: a fresh local stack whose edge loads phase-trace-preload.js
 * (it times accept, reads, writes, the key operation and its HTTP hop from inside the process), probed
 * like the latency section. A separate stack, so the tracing costs nothing in any other figure.
 */
async function measurePhases(): Promise<PhaseRow[] | undefined> {
  say("\n== the edge's handshake by phase (c=1, traced edge)");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-phases-'));
  const preload = path.join(__dirname, 'phase-trace-preload.js');
  let target: Target | undefined;
  try {
    target = await startEdgeTarget(
      {
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${JSON.stringify(preload)}`.trim(),
        BENCH_PHASE_TRACE_DIR: dir,
      },
      { id: 'edge-traced', label: 'keyless edge (phase-traced)' },
    );
    running.add(target);
    const warmup = 10;
    await measureLatency({
      port: target.port,
      path: target.path,
      ca: target.caPem,
      count: Math.max(60, Math.ceil(CONFIG.latencyCount / 3)),
      warmup,
      maxMs: CONFIG.latencyMaxMs,
    });
    await target.stop();
    running.delete(target);
    const rows = phaseBreakdown(readPhaseTraces(dir).slice(warmup));
    for (const r of rows) say(`  ${r.phase}: p50 ${fmtMs(r.p50)} p90 ${fmtMs(r.p90)} (${r.n})`);
    return rows.length ? rows : undefined;
  } catch (e) {
    say(`  phase trace failed: ${(e as Error).message}`);
    return undefined;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function phaseTable(rows: PhaseRow[]): Table {
  return {
    title: "The edge's full TLS 1.3 handshake by phase, as the edge sees it (c=1, ms)",
    head: ['phase', 'p50', 'p90', 'n', "in the edge's own time"],
    rows: rows.map((r) => [
      r.phase,
      fmtMs(r.p50),
      fmtMs(r.p90),
      String(r.n),
      r.phase.startsWith('edge own total') ? 'the sum' : r.own ? 'yes' : 'no',
    ]),
    left: [0, 4],
    note:
      "From a separate local stack whose edge loads test/bench/phase-trace-preload.js (through NODE_OPTIONS), probed one connection at a time like the latency section. Inside the edge it timestamps accept, every inbound chunk (the first is the ClientHello, the next carries the client's Finished), every write reaching the socket, the key operation (`KeyServiceClient.signTls13CertificateVerify`, which is what the edge logs as `keyOperationMs`), its Lambda Invoke and the HTTP request under it (node:diagnostics_channel). " +
      '"edge own total" is accept → client Finished minus the key operation: the server-side counterpart of the own-latency row above. Two socket writes per handshake means the first flight (ServerHello … Certificate) goes out before the key operation and CertificateVerify + Finished in one write after it — no split writes to wait on delayed ACKs (the listener sets TCP_NODELAY). Percentiles of each phase separately, so the rows do not add up exactly.',
  };
}

// ---------------------------------------------------------------------------------------------
// Machine facts and a micro-benchmark of the one private-key operation

interface Facts {
  date: string;
  cpuModel: string;
  cores: number;
  memGiB: number;
  kernel: string;
  node: string;
  nodeOpenssl: string;
  opensslCli?: string;
  h2load?: string;
  nginx?: string;
  commit?: string;
  /** Machine busy share over one second before anything of the benchmark ran (background load). */
  backgroundBusy?: number;
  loadAverage: string;
}

function machineFacts(): Facts {
  let commit: string | undefined;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    const dirty =
      spawnSync('git', ['status', '--porcelain'], { cwd: REPO_ROOT, encoding: 'utf8' }).stdout.trim() !== '';
    if (dirty) commit += ' + uncommitted changes';
  } catch {
    commit = undefined;
  }
  const cpus = os.cpus();
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    cpuModel: cpus[0]?.model?.trim() ?? 'unknown',
    cores: cpus.length,
    memGiB: os.totalmem() / 2 ** 30,
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    nodeOpenssl: process.versions.openssl,
    opensslCli: versionOf('openssl', ['version'], /^(OpenSSL \S+)/m),
    h2load: versionOf('h2load', ['--version'], /(nghttp2\/\S+)/),
    nginx: versionOf('nginx', ['-v'], /(nginx\/\S+)/),
    commit,
    loadAverage: os
      .loadavg()
      .map((v) => v.toFixed(2))
      .join(' '),
  };
}

/** Operations per second of CPU time (not wall time, so a busy machine does not skew it). */
function opsPerSecond(fn: () => void, ms = 1000): number {
  for (let i = 0; i < 20; i++) fn();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < ms) {
    fn();
    n++;
  }
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  return (n * 1000) / (cpuMs > 0 ? cpuMs : performance.now() - t0);
}

interface Micro {
  rsaSignPerSec: number;
  x25519PerSec: number;
  /** µs to import a peer X25519 share as DER SubjectPublicKeyInfo vs. as a JWK (raw key). */
  x25519ImportDerUs: number;
  x25519ImportJwkUs: number;
}

function microBench(key: crypto.KeyObject): Micro {
  const msg = crypto.randomBytes(130);
  const rsaSignPerSec = opsPerSecond(() =>
    crypto.sign('sha256', msg, {
      key,
      padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
      saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST,
    }),
  );
  const peer = crypto.generateKeyPairSync('x25519').publicKey;
  const x25519PerSec = opsPerSecond(() => {
    const { privateKey } = crypto.generateKeyPairSync('x25519');
    crypto.diffieHellman({ privateKey, publicKey: peer });
  });
  const raw = peer.export({ format: 'der', type: 'spki' }).subarray(-32);
  const der = Buffer.concat([Buffer.from('302a300506032b656e032100', 'hex'), raw]);
  const x = raw.toString('base64url');
  const x25519ImportDerUs =
    1e6 / opsPerSecond(() => crypto.createPublicKey({ key: der, format: 'der', type: 'spki' }), 300);
  const x25519ImportJwkUs =
    1e6 / opsPerSecond(() => crypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' }), 300);
  return { rsaSignPerSec, x25519PerSec, x25519ImportDerUs, x25519ImportJwkUs };
}

// ---------------------------------------------------------------------------------------------
// Sampled CPU profiles (a separate run, so the profiler's overhead never touches the figures above)

interface Profiles {
  c: number;
  handshakes: number;
  /** By role: edge, key service, kms+origin, engine only. */
  byRole: Record<string, ProfileSummary>;
  notes: string[];
}

/** Profile file name → role in the report, and the CPU group (targets.ts) of that process. */
const PROFILE_ROLES: Array<[RegExp, string, string]> = [
  [/edge-proxy_src_main/, 'edge', 'edge'],
  [/local_lambda_main/, 'key service', 'key service'],
  [/bin_keyless/, 'kms+origin', 'kms+origin'],
  [/engine-server/, 'engine only', 'engine'],
];

/**
 * One profiled run. `cpuPerHs(group)` is the CPU ms per handshake that process group spent in the
 * unprofiled measurement at the same concurrency (undefined when there is none).
 */
async function profiledRun(
  label: string,
  start: (env: Record<string, string>) => Promise<Target>,
  tool: LoadTool,
  c: number,
  rate: number,
  cpuPerHs: (group: string) => number | undefined,
  into: Profiles,
): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-bench-prof-'));
  const preload = path.join(__dirname, 'profile-preload.js');
  const env = {
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${JSON.stringify(preload)}`.trim(),
    BENCH_CPU_PROFILE_DIR: dir,
  };
  let t: Target | undefined;
  let handshakesDone = 0;
  let cpuMs: Record<string, number> = {};
  try {
    t = await start(env);
    running.add(t);
    await runLoad(tool, { url: t.url, n: Math.max(4 * c, 60), c, timeoutMs: 60_000 });
    const pids = Object.values(t.processes)
      .flatMap((f) => f())
      .filter((pid) => fs.existsSync(path.join(dir, `ready-${pid}`)));
    for (const pid of pids) process.kill(pid, 'SIGUSR2');
    await sleep(200);
    const cpu = startCpuWindow(t.processes);
    const run = await runLoad(tool, {
      url: t.url,
      n: Math.max(2 * c, 100, Math.round(rate * CONFIG.runSeconds)),
      c,
      timeoutMs: 120_000,
    });
    cpuMs = cpu().groups;
    handshakesDone = run.succeeded;
  } finally {
    if (t) {
      await t.stop().catch(() => undefined);
      running.delete(t);
    }
  }
  for (let i = 0; i < 50 && !fs.readdirSync(dir).some((f) => f.endsWith('.cpuprofile')); i++) await sleep(100);
  await sleep(300);
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  for (const f of files) {
    const role = PROFILE_ROLES.find(([re]) => re.test(f));
    if (!role) continue;
    const sum = summarizeProfile(path.join(dir, f));
    // Samples measure wall time on the main thread, which a busy machine inflates, and the profiler
    // costs CPU itself: turn the profile into shares and apply them to the process's CPU ms per
    // handshake measured without the profiler (or, failing that, in this run).
    const hs = Math.max(1, handshakesDone);
    const total = cpuPerHs(role[2]) ?? (cpuMs[role[2]] !== undefined ? cpuMs[role[2]] / hs : sum.busyMs / hs);
    const perHs = (v: number): number => (sum.busyMs > 0 ? (v / sum.busyMs) * total : 0);
    into.byRole[role[1]] = {
      busyMs: perHs(sum.busyMs),
      byCategory: Object.fromEntries(
        Object.entries(sum.byCategory).map(([k, v]) => [k, perHs(v)]),
      ) as ProfileSummary['byCategory'],
      topFunctions: sum.topFunctions.map((x) => ({ name: x.name, ms: perHs(x.ms) })),
    };
  }
  into.notes.push(
    `${label}: ${handshakesDone} handshakes profiled, ${files.length} profile${files.length === 1 ? '' : 's'}`,
  );
  if (process.env.BENCH_KEEP_PROFILES === '1') into.notes.push(`${label}: profiles kept in ${dir}`);
  else fs.rmSync(dir, { recursive: true, force: true });
}

async function profilePhase(pki: ReferencePki, tool: LoadTool, results: TargetResult[]): Promise<Profiles | undefined> {
  const c = CONFIG.concurrency[CONFIG.concurrency.length - 1];
  const out: Profiles = { c, handshakes: 0, byRole: {}, notes: [] };
  const rateOf = (id: string): number =>
    rateMedian(
      cellOf(
        results.find((r) => r.id === id),
        c,
      ),
    ) ?? 100;
  const cpuOf =
    (id: string) =>
    (group: string): number | undefined => {
      const cell = cellOf(
        results.find((r) => r.id === id),
        c,
      );
      return cell && cell.cpu[group] !== undefined ? cell.cpu[group] / Math.max(1, handshakes(cell)) : undefined;
    };
  say(`\n== sampled CPU profiles (separate runs at c=${c}; BENCH_PROFILE=0 skips them)`);
  try {
    await profiledRun('edge stack', (env) => startEdgeTarget(env), tool, c, rateOf('edge'), cpuOf('edge'), out);
    await profiledRun(
      'engine only',
      (env) => startEngineTarget(pki, env),
      tool,
      c,
      rateOf('engine'),
      cpuOf('engine'),
      out,
    );
  } catch (e) {
    say(`  profiling failed: ${(e as Error).message}`);
  }
  for (const n of out.notes) say(`  ${n}`);
  return Object.keys(out.byRole).length ? out : undefined;
}

function profileTables(p: Profiles): Table[] {
  const roles = ['edge', 'key service', 'kms+origin', 'engine only'].filter((r) => p.byRole[r]);
  const rows = CATEGORIES.filter((cat) => roles.some((r) => p.byRole[r].byCategory[cat] >= 0.005)).map((cat) => [
    cat,
    ...roles.map((r) => fmtMs(p.byRole[r].byCategory[cat])),
  ]);
  rows.push(['total (CPU ms/hs of the process, /proc)', ...roles.map((r) => fmtMs(p.byRole[r].busyMs))]);
  const top: string[][] = [];
  for (const r of roles) for (const f of p.byRole[r].topFunctions.slice(0, 5)) top.push([r, f.name, fmtMs(f.ms)]);
  return [
    {
      title: `Sampled CPU profile, c=${p.c} (separate run; CPU ms per handshake by category and process)`,
      head: ['category', ...roles],
      rows,
      note: "V8 sampling profiler (0.5 ms) on each Node process's main thread, self time grouped by what the function does (native frames count with their caller), the profiler's own work left out. The shares are applied to the process's CPU ms per handshake measured without the profiler at the same concurrency (table above), so columns add up to it; work on other threads (libuv pool, GC helpers) is spread in proportion. The edge, key-service and kms+origin columns come from one run of the local stack, the engine-only column from one run of the engine with its in-process signer.",
    },
    {
      title: 'Top functions by self time (CPU ms per handshake)',
      head: ['process', 'function', 'ms/hs'],
      rows: top,
      left: [0, 1],
    },
  ];
}

function profileInterpretation(p: Profiles, micro: Micro | undefined): string | undefined {
  const top = (role: string, n: number): string | undefined => {
    const s = p.byRole[role];
    if (!s) return undefined;
    return (Object.entries(s.byCategory) as Array<[string, number]>)
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `${k} ${fmtMs(v)} ms`)
      .join(', ');
  };
  const e = top('edge', 5);
  const g = top('engine only', 4);
  if (!e && !g) return undefined;
  const keyObj = p.byRole['engine only']?.byCategory['X25519 + key objects'];
  const keyNote =
    keyObj !== undefined && micro && keyObj >= 0.2
      ? ` X25519 costs the engine ${fmtMs(keyObj)} ms per handshake although keygen + derive alone take ${fmtMs(1000 / micro.x25519PerSec)} ms: the shares cross KeyObject boundaries as DER SubjectPublicKeyInfo (OpenSSL 3 encoders/decoders), and importing a share that way takes ${fmt(micro.x25519ImportDerUs)} µs against ${fmt(micro.x25519ImportJwkUs)} µs as a JWK.`
      : '';
  return `**Inside the processes (sampled profile).** ${e ? `Edge, per handshake: ${e}. ` : ''}${g ? `Engine alone: ${g}.` : ''}${keyNote}`;
}

// ---------------------------------------------------------------------------------------------
// Full TLS 1.2 handshakes: ECDHE-RSA and RSA key exchange, the local stack in sealed custody next to
// openssl s_server, both driven by the Node client pool (h2load cannot cap the version at TLS 1.2).

interface Tls12Row {
  server: 'edge' | 's_server';
  kx: 'ECDHE-RSA' | 'RSA';
  /** OpenSSL name of the one suite the client offers. */
  cipher: string;
  /** The key-service op every full handshake of this row needs (edge only). */
  op?: string;
  result: TargetResult;
}

interface Tls12Results {
  c: number;
  rows: Tls12Row[];
  notes: string[];
}

const TLS12_SUITES: Array<{ kx: Tls12Row['kx']; cipher: string; op: string }> = [
  { kx: 'ECDHE-RSA', cipher: 'ECDHE-RSA-AES128-GCM-SHA256', op: 'tls12.server_key_exchange' },
  { kx: 'RSA', cipher: 'AES128-GCM-SHA256', op: 'tls12.rsa_master_secret' },
];

async function tls12Phase(pki: ReferencePki): Promise<Tls12Results | undefined> {
  const c = CONFIG.concurrency[CONFIG.concurrency.length - 1];
  const out: Tls12Results = { c, rows: [], notes: [] };
  say(`\n== full TLS 1.2 handshakes at c=${c} (Node client pool; BENCH_TLS12=0 skips this)`);
  const active: Active[] = [];
  const servers: Array<{ server: Tls12Row['server']; name: string; needs?: string; start: () => Promise<Target> }> = [
    {
      server: 'edge',
      name: 'keyless edge (sealed custody)',
      start: () =>
        startEdgeTarget(
          { KEYLESS_DEV_CUSTODY: 'sealed' },
          { id: 'edge-tls12', label: 'keyless edge (sealed custody)' },
        ),
    },
    {
      server: 's_server',
      name: 'openssl s_server -tls1_2',
      needs: 'openssl',
      start: () => startSServerTarget(pki, { tls12: true }),
    },
  ];
  try {
    for (const sv of servers) {
      if (sv.needs && !have(sv.needs)) {
        out.notes.push(`${sv.name}: skipped: ${missingReason(sv.needs, `the ${sv.name} reference`)}`);
        continue;
      }
      let target: Target;
      try {
        target = await sv.start();
      } catch (e) {
        out.notes.push(`${sv.name}: failed to start: ${(e as Error).message}`);
        continue;
      }
      running.add(target);
      say(`  ${target.label}: ${target.url}`);
      for (const suite of TLS12_SUITES) {
        const label = `${sv.server === 'edge' ? 'keyless edge' : 'openssl s_server'}, ${suite.kx === 'RSA' ? 'RSA key exchange' : suite.kx} (${suite.cipher})`;
        const result: TargetResult = { id: `${target.id}-${suite.kx}`, label, cells: [] };
        out.rows.push({
          server: sv.server,
          kx: suite.kx,
          cipher: suite.cipher,
          op: sv.server === 'edge' ? suite.op : undefined,
          result,
        });
        // The same server process serves both suites; only the client's offer differs.
        active.push({ target: { ...target, id: result.id, label }, result, load: { tls12Ciphers: suite.cipher } });
      }
    }
    if (active.length) await measureRates(active, 'node', [c]);
  } finally {
    await stopAll();
  }
  for (const n of out.notes) say(`  ${n}`);
  return out.rows.length ? out : undefined;
}

/** Every run of the cell: TLS 1.2 with the offered suite, and (edge) one key op of the right kind per handshake. */
function tls12Check(row: Tls12Row, cell: Cell): string {
  const want = `TLSv1.2`;
  const wrongProto = cell.runs.find((r) => r.protocol !== want);
  if (wrongProto) return `✗ negotiated ${wrongProto.protocol ?? '?'}`;
  if (row.server !== 'edge') return `TLSv1.2 ${cell.runs[0]?.cipher ?? ''}; server cannot count (-no_cache -no_ticket)`;
  if (cell.verified !== 'ok') return '✗ mismatch';
  const okOps = cell.runs.every(
    (r, i) =>
      (cell.checks[i]?.keyOps?.[row.op!] ?? 0) === r.succeeded &&
      Object.keys(cell.checks[i]?.keyOps ?? {}).every((k) => k === row.op),
  );
  return okOps
    ? `✓ all full (${row.op} = handshakes)`
    : `✗ key ops ≠ handshakes (${cell.checks.map((x) => JSON.stringify(x.keyOps ?? {})).join(' ')})`;
}

function tls12Tables(t: Tls12Results): Table[] {
  const find = (server: Tls12Row['server'], kx: Tls12Row['kx']): Tls12Row | undefined =>
    t.rows.find((r) => r.server === server && r.kx === kx);
  const rows: string[][] = [];
  for (const r of t.rows) {
    const cell = cellOf(r.result, t.c);
    const err = r.result.cells.find((x) => x.error)?.error;
    if (!cell) {
      rows.push([r.result.label, err ? `failed: ${err}` : '–', '', '', '', '', '']);
      continue;
    }
    const rates = cell.runs.map((x) => x.rate);
    const peer = r.server === 'edge' ? find('s_server', r.kx) : find('edge', r.kx);
    const peerCell = cellOf(peer?.result, t.c);
    const edgeRate = r.server === 'edge' ? rateMedian(cell) : rateMedian(peerCell);
    const refRate = r.server === 'edge' ? rateMedian(peerCell) : rateMedian(cell);
    rows.push([
      r.result.label,
      `${fmt(rateMedian(cell))} (${fmt(Math.min(...rates))}–${fmt(Math.max(...rates))})`,
      r.server === 'edge' ? ratio(edgeRate, refRate) : '',
      fmtMs(cpuTotalPerHs(cell)),
      Object.entries(cell.cpu)
        .map(([k, v]) => `${k} ${fmtMs(v / handshakes(cell))}`)
        .join(' + '),
      fmtMs(clientCpuPerHs(cell)),
      tls12Check(r, cell),
    ]);
  }
  // Ratios between the suites and against TLS 1.3 (same server, same client kind).
  const ratios: string[][] = [];
  for (const server of ['edge', 's_server'] as const) {
    const e = cellOf(find(server, 'ECDHE-RSA')?.result, t.c);
    const k = cellOf(find(server, 'RSA')?.result, t.c);
    if (e && k)
      ratios.push([
        `${server === 'edge' ? 'keyless edge' : 'openssl s_server'}: RSA kx ÷ ECDHE-RSA`,
        ratio(rateMedian(k), rateMedian(e)),
        ratio(cpuTotalPerHs(k), cpuTotalPerHs(e)),
      ]);
  }
  for (const kx of ['ECDHE-RSA', 'RSA'] as const) {
    const e = cellOf(find('edge', kx)?.result, t.c);
    const o = cellOf(find('s_server', kx)?.result, t.c);
    if (e && o)
      ratios.push([
        `${kx === 'RSA' ? 'RSA key exchange' : kx}: keyless edge ÷ s_server`,
        ratio(rateMedian(e), rateMedian(o)),
        ratio(cpuTotalPerHs(e), cpuTotalPerHs(o)),
      ]);
  }
  const tables: Table[] = [
    {
      title: `Full TLS 1.2 handshakes per second (c=${t.c}; new connection + one small HTTP/1.1 request each)`,
      head: [
        'target, key exchange (suite)',
        'hs/s (min–max)',
        'edge ÷ s_server',
        'server CPU ms/hs',
        'by process',
        'client ms/hs',
        'check (server side)',
      ],
      rows,
      left: [0, 4, 6],
      note: `Median of ${CONFIG.reps} runs of ~${CONFIG.runSeconds} s each, all four rows interleaved in rotating order. Client: the Node client pool (\`tls.connect\`, \`maxVersion: 'TLSv1.2'\`, one suite offered, no session reuse) for every row — h2load cannot cap the version — so these rates are not comparable with the TLS 1.3 table's h2load rates. The edge runs the local stack in sealed custody (\`KEYLESS_DEV_CUSTODY=sealed\`): ECDHE-RSA costs one key-service \`tls12.server_key_exchange\` signature, RSA key exchange one \`tls12.rsa_master_secret\` (the key service decrypts the premaster with the unsealed key and returns the master secret). The check compares, per run, the key service's \`/_local/stats\` invocation delta (minus health pings) and its logged ops with the client's successful connections. s_server: \`-tls1_2 -no_ticket -no_cache\`, the same RSA-2048 key as in the TLS 1.3 table.`,
    },
  ];
  if (ratios.length)
    tables.push({
      title: 'TLS 1.2 ratios (rate, and CPU ms per handshake of the server side)',
      head: ['comparison', 'hs/s ratio', 'server CPU/hs ratio'],
      rows: ratios,
    });
  const lat: string[][] = [];
  for (const r of t.rows.filter((x) => x.server === 'edge')) {
    const cell = cellOf(r.result, t.c);
    if (!cell) continue;
    const k = summarize(cell.checks.flatMap((x) => x.keyOperationMs ?? []));
    const h = summarize(cell.checks.flatMap((x) => x.keyServiceHandlerMs ?? []));
    const m = summarize(cell.checks.flatMap((x) => x.kmsCallMs ?? []));
    lat.push([
      r.result.label,
      r.op ?? '',
      `${fmtMs(k.p50)} / ${fmtMs(k.p99)}`,
      `${fmtMs(h.p50)} / ${fmtMs(h.p99)}`,
      `${fmtMs(m.p50)} / ${fmtMs(m.p99)}`,
      fmtMs(k.p50 - h.p50),
      pct(median(cell.machineBusy)),
    ]);
  }
  if (lat.length)
    tables.push({
      title: `Where a keyless TLS 1.2 handshake waits (c=${t.c}, ms p50 / p99, from the JSON logs)`,
      head: [
        'row',
        'key-service op',
        'key op as the edge sees it',
        'key-service handler',
        'its backend',
        'edge↔key service hop (p50 diff)',
        'machine busy',
      ],
      rows: lat,
      left: [0, 1],
      note: "backend = the handler's backendMs (sealed custody: the RSA private-key operation with the unsealed key, the KMS Decrypt that unseals the key runs once per key-service container, before these runs).",
    });
  return tables;
}

function tls12Interpretation(t: Tls12Results, micro: Micro | undefined, facts: Facts): string | undefined {
  const get = (server: Tls12Row['server'], kx: Tls12Row['kx']): Cell | undefined =>
    cellOf(t.rows.find((r) => r.server === server && r.kx === kx)?.result, t.c);
  const parts: string[] = [];
  for (const kx of ['ECDHE-RSA', 'RSA'] as const) {
    const e = get('edge', kx);
    const o = get('s_server', kx);
    if (!e) continue;
    const hs = handshakes(e);
    const procs = Object.entries(e.cpu)
      .map(([k, v]) => `${k} ${fmtMs(v / hs)} ms`)
      .join(', ');
    parts.push(
      `${kx === 'RSA' ? 'RSA key exchange' : 'ECDHE-RSA'}: the edge completes ${fmt(rateMedian(e))} full handshakes/s` +
        (o
          ? ` against ${fmt(rateMedian(o))}/s for s_server (${ratio(rateMedian(e), rateMedian(o))}); per handshake the stack spends ${fmtMs(cpuTotalPerHs(e))} ms of CPU (${procs}) against s_server's ${fmtMs(cpuTotalPerHs(o))} ms (${ratio(cpuTotalPerHs(e), cpuTotalPerHs(o))})`
          : ` (${procs} CPU ms per handshake)`) +
        `, the Node client ${fmtMs(clientCpuPerHs(e))} ms; machine ${pct(median(e.machineBusy))} of ${facts.cores} cores busy.`,
    );
  }
  if (!parts.length) return undefined;
  const where: string[] = [];
  for (const kx of ['ECDHE-RSA', 'RSA'] as const) {
    const e = get('edge', kx);
    if (!e) continue;
    const hs = handshakes(e);
    const k = summarize(e.checks.flatMap((x) => x.keyOperationMs ?? []));
    const h = summarize(e.checks.flatMap((x) => x.keyServiceHandlerMs ?? []));
    const ks = ((e.cpu['key service'] ?? 0) + (e.cpu['kms+origin'] ?? 0)) / hs;
    where.push(
      `${kx === 'RSA' ? 'RSA kx' : kx}: edge process ${fmtMs((e.cpu.edge ?? 0) / hs)} ms, key service + local KMS/origin ${fmtMs(ks)} ms of CPU per handshake; the key op waits ${fmtMs(k.p50)} ms p50 at the edge of which the handler accounts for ${fmtMs(h.p50)} ms`,
    );
  }
  const sign = micro
    ? ` For scale, one RSA-2048 private-key operation (PSS sign; the premaster decrypt is the same exponentiation) costs ${fmtMs(1000 / micro.rsaSignPerSec)} ms of CPU in Node.`
    : '';
  return `**Full TLS 1.2 handshakes (c=${t.c}, Node client for every row).** ${parts.join(' ')} Where the time goes — ${where.join('; ')}.${sign}`;
}

// ---------------------------------------------------------------------------------------------
// Resumed handshakes: the local stack with session tickets on, next to openssl s_server
// with tickets and nginx with a ticket key file, TLS 1.3 and TLS 1.2, in the same run.

type ResumeServer = 'edge' | 's_server' | 'nginx';

interface ResumeRow {
  version: 'TLSv1.3' | 'TLSv1.2';
  server: ResumeServer;
  mode: 'resumed' | 'full';
  tool: LoadTool;
  result: TargetResult;
}

interface ResumeResults {
  c: number;
  rows: ResumeRow[];
  /** TLS 1.3: a short Node-client probe per server (client-side count of resumed connections). */
  probes: Partial<Record<ResumeServer, { n: number; resumed: number }>>;
  notes: string[];
}

const RESUME_SERVER_LABEL: Record<ResumeServer, string> = {
  edge: 'keyless edge (tickets on)',
  s_server: 'openssl s_server (tickets)',
  nginx: 'nginx 1 worker (ticket key file, proxy_pass)',
};
/** Where the same server's full TLS 1.3 handshakes are in the main table (h2load, tickets off). */
const FULL_TLS13_ID: Record<ResumeServer, string> = { edge: 'edge', s_server: 's_server', nginx: 'nginx-1w' };
const TLS12_RESUME_SUITE = 'ECDHE-RSA-AES128-GCM-SHA256';

async function resumePhase(
  pki: ReferencePki,
  tool: LoadTool,
  edge: Target & { stack: StackProcess },
): Promise<ResumeResults | undefined> {
  const c = CONFIG.concurrency[CONFIG.concurrency.length - 1];
  const out: ResumeResults = { c, rows: [], probes: {}, notes: [] };
  say(
    `\n== resumed handshakes at c=${c} (TLS 1.3 with ${tool === 'h2load' ? 'h2load' : 'the Node client pool'}, TLS 1.2 with the Node client pool)`,
  );
  const servers: Array<{ server: ResumeServer; target: Target }> = [{ server: 'edge', target: edge }];
  const refs: Array<{ server: ResumeServer; needs: string; start: () => Promise<Target> }> = [
    { server: 's_server', needs: 'openssl', start: () => startSServerTarget(pki, { tickets: true }) },
    // Like the edge, nginx proxies each request to the local stack's demo origin.
    {
      server: 'nginx',
      needs: 'nginx',
      start: () => startNginxTarget(pki, 1, { tickets: true, origin: edge.stack.state.originUrl }),
    },
  ];
  for (const r of refs) {
    if (!have(r.needs)) {
      out.notes.push(
        `${RESUME_SERVER_LABEL[r.server]}: skipped: ${missingReason(r.needs, `the ${RESUME_SERVER_LABEL[r.server]} reference`)}`,
      );
      continue;
    }
    try {
      const target = await r.start();
      running.add(target);
      servers.push({ server: r.server, target });
      say(`  ${RESUME_SERVER_LABEL[r.server]}: ${target.url}`);
    } catch (e) {
      out.notes.push(`${RESUME_SERVER_LABEL[r.server]}: failed to start: ${(e as Error).message}`);
    }
  }
  const actives = (version: ResumeRow['version'], modes: Array<ResumeRow['mode']>, rowTool: LoadTool): Active[] =>
    servers.flatMap(({ server, target }) =>
      modes.map((mode) => {
        const label = `${RESUME_SERVER_LABEL[server]}, ${version} ${mode}`;
        const result: TargetResult = { id: `${target.id}-${version}-${mode}`, label, cells: [] };
        out.rows.push({ version, server, mode, tool: rowTool, result });
        const load: Active['load'] = {
          resume: mode === 'resumed',
          ...(version === 'TLSv1.2' ? { tls12Ciphers: TLS12_RESUME_SUITE } : {}),
        };
        return {
          target: { ...target, id: result.id, label },
          result,
          load,
          expect: mode === 'resumed' ? 'resume' : 'full',
        } satisfies Active;
      }),
    );
  // TLS 1.3: h2load resumes by itself but cannot say whether it did; the servers count (edge,
  // nginx). s_server cannot, so a short Node-client probe shows that every server resumes at all.
  for (const { server, target } of servers) {
    try {
      const p = await runLoad('node', {
        url: target.url,
        n: 4 * 15,
        c: 4,
        resume: true,
        forceNode: true,
        timeoutMs: 60_000,
      });
      out.probes[server] = { n: p.succeeded, resumed: p.resumed ?? 0 };
      say(
        `  probe ${RESUME_SERVER_LABEL[server]}: ${p.resumed ?? 0} of ${p.succeeded} TLS 1.3 connections resumed (Node client, 4 loops)`,
      );
    } catch (e) {
      out.notes.push(`${RESUME_SERVER_LABEL[server]}: resumption probe failed: ${(e as Error).message}`);
    }
  }
  await measureRates(actives('TLSv1.3', ['resumed'], tool), tool, [c]);
  if (elapsed() < CONFIG.budgetMs) await measureRates(actives('TLSv1.2', ['resumed', 'full'], 'node'), 'node', [c]);
  else out.notes.push('TLS 1.2 resumption skipped: time budget spent');
  for (const { target } of servers) {
    if (target !== edge) {
      await target.stop().catch(() => undefined);
      running.delete(target);
    }
  }
  for (const n of out.notes) say(`  ${n}`);
  return out.rows.length ? out : undefined;
}

/** Share of a cell's handshakes that were resumed, and who counted it. */
function resumedShare(
  row: ResumeRow,
  cell: Cell,
  probe?: { n: number; resumed: number },
): { share?: number; how: string } {
  const ok = cell.runs.reduce((a, r) => a + r.succeeded, 0);
  const metrics = cell.checks.every((x) => x.metrics)
    ? cell.checks.reduce((a, x) => ({ full: a.full + x.metrics!.full, resumed: a.resumed + x.metrics!.resumed }), {
        full: 0,
        resumed: 0,
      })
    : undefined;
  if (metrics && metrics.full + metrics.resumed > 0)
    return { share: metrics.resumed / (metrics.full + metrics.resumed), how: 'edge /metrics' };
  if (cell.checks.every((x) => x.fullHandshakes !== undefined && x.resumed !== undefined)) {
    const resumed = cell.checks.reduce((a, x) => a + (x.resumed ?? 0), 0);
    return { share: ok ? resumed / ok : undefined, how: row.server === 'nginx' ? '$ssl_session_reused' : 'server' };
  }
  if (cell.runs.every((r) => r.resumed !== undefined))
    return { share: ok ? cell.runs.reduce((a, r) => a + (r.resumed ?? 0), 0) / ok : undefined, how: 'client' };
  if (probe && probe.n) return { share: undefined, how: `not countable (probe: ${pct(probe.resumed / probe.n)})` };
  return { how: 'not countable' };
}

function resumeRate(
  t: ResumeResults,
  version: ResumeRow['version'],
  server: ResumeServer,
  mode: ResumeRow['mode'],
): number | undefined {
  return rateMedian(
    cellOf(t.rows.find((r) => r.version === version && r.server === server && r.mode === mode)?.result, t.c),
  );
}

/** The same server's full-handshake rate with the same client: TLS 1.3 from the main table (tickets off), TLS 1.2 from this section. */
function fullRateFor(
  t: ResumeResults,
  results: TargetResult[],
  version: ResumeRow['version'],
  server: ResumeServer,
): number | undefined {
  if (version === 'TLSv1.2') return resumeRate(t, version, server, 'full');
  return rateMedian(
    cellOf(
      results.find((r) => r.id === FULL_TLS13_ID[server]),
      t.c,
    ),
  );
}

function resumeTable(t: ResumeResults, results: TargetResult[]): Table {
  const rows: string[][] = [];
  for (const row of t.rows) {
    const cell = cellOf(row.result, t.c);
    const err = row.result.cells.find((x) => x.error)?.error;
    if (!cell) {
      rows.push([
        row.version,
        RESUME_SERVER_LABEL[row.server],
        row.mode,
        err ? `failed: ${err}` : '–',
        '',
        '',
        '',
        '',
        '',
        '',
      ]);
      continue;
    }
    const rates = cell.runs.map((x) => x.rate);
    const rate = rateMedian(cell);
    const edgeRate = resumeRate(t, row.version, 'edge', row.mode);
    const share =
      row.mode === 'resumed'
        ? resumedShare(row, cell, row.version === 'TLSv1.3' ? t.probes[row.server] : undefined)
        : undefined;
    const full = row.mode === 'resumed' ? fullRateFor(t, results, row.version, row.server) : undefined;
    const keyOps = row.server === 'edge' ? cell.checks.reduce((a, x) => a + (x.fullHandshakes ?? 0), 0) : undefined;
    const check =
      cell.verified === 'mismatch'
        ? '✗ mismatch'
        : cell.verified === 'ok'
          ? `✓ counted${keyOps !== undefined ? ` (${fmt(keyOps)} key ops)` : ''}`
          : cell.runs.some((r) => r.failed)
            ? '✗ failures'
            : 'n/a';
    rows.push([
      row.version,
      RESUME_SERVER_LABEL[row.server],
      `${row.mode} (${row.tool === 'h2load' ? 'h2load' : 'Node'})`,
      `${fmt(rate)} (${fmt(Math.min(...rates))}–${fmt(Math.max(...rates))})`,
      row.server === 'edge' ? '1.00×' : ratio(edgeRate, rate),
      share
        ? `${share.share !== undefined ? pct(share.share) : '–'} (${share.how})`
        : row.mode === 'full'
          ? 'none offered'
          : '–',
      full !== undefined ? ratio(rate, full) : row.mode === 'full' ? '' : '–',
      fmtMs(cpuTotalPerHs(cell)),
      Object.entries(cell.cpu).length > 1
        ? Object.entries(cell.cpu)
            .map(([k, v]) => `${k} ${fmtMs(v / handshakes(cell))}`)
            .join(' + ')
        : '',
      check,
    ]);
  }
  return {
    title: `Resumed handshakes per second (c=${t.c}; new connection + one small HTTP/1.1 request each)`,
    head: [
      'version',
      'server',
      'handshakes (client)',
      'hs/s (min–max)',
      'edge ÷ server',
      'share resumed (counted by)',
      'resumed ÷ full (same server)',
      'server CPU ms/hs',
      'by process',
      'check (server side)',
    ],
    rows,
    left: [0, 1, 2, 5, 8, 9],
    note:
      `Median of ${CONFIG.reps} runs of ~${CONFIG.runSeconds} s each, the servers' runs interleaved in rotating order. TLS 1.3: h2load as in the full-handshake table; each of its ${t.c} clients resumes with the ticket of its previous connection, so all but its first connection can resume. TLS 1.2 (${TLS12_RESUME_SUITE}): the Node client pool, which offers each loop's newest session ("resumed") or none ("full", the same server process). ` +
      `"resumed ÷ full" divides by the same server's full-handshake rate with the same client: for TLS 1.3 the full-handshake table above (tickets off, h2load), for TLS 1.2 the "full" row. The edge counts on its admin /metrics (\`keyless_edge_handshakes_total{kind}\`), its JSON logs and the key service's invocations (key ops = full handshakes: a resumed handshake needs none); nginx logs \`$ssl_session_reused\`; s_server cannot count, so for TLS 1.3 a 60-connection Node-client probe shows it resumes, and for TLS 1.2 the Node client counts (\`isSessionReused()\`). As in the full-handshake table, the edge and nginx both proxy each request to the local stack's demo origin (nginx with \`proxy_pass\` and an upstream keep-alive pool; the origin's CPU counts under the edge's kms+origin), while s_server answers it itself. Tickets: the edge's fleet ticket keys come from the key service (KMS HMAC key); nginx uses one 80-byte \`ssl_session_ticket_key\` file, no session cache; s_server its built-in ticket key, \`-no_cache\`.`,
  };
}

function resumeInterpretation(t: ResumeResults, results: TargetResult[]): string | undefined {
  const parts: string[] = [];
  for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
    const e = resumeRate(t, version, 'edge', 'resumed');
    if (e === undefined) continue;
    const n = resumeRate(t, version, 'nginx', 'resumed');
    const o = resumeRate(t, version, 's_server', 'resumed');
    const eFull = fullRateFor(t, results, version, 'edge');
    const eCell = cellOf(
      t.rows.find((r) => r.version === version && r.server === 'edge' && r.mode === 'resumed')?.result,
      t.c,
    );
    const sh = eCell
      ? resumedShare(
          t.rows.find((r) => r.version === version && r.server === 'edge' && r.mode === 'resumed')!,
          eCell,
        )
      : undefined;
    parts.push(
      `${version}: the edge resumes ${fmt(e)} handshakes/s${sh?.share !== undefined ? ` (${pct(sh.share)} of them resumed, by its /metrics)` : ''}` +
        (eCell?.runs.some((r) => r.failed)
          ? ` — **some of its runs had failed handshakes** (the run lines name the cause; the figure is not a clean measurement)`
          : '') +
        (eFull !== undefined ? `, ${ratio(e, eFull)} its full-handshake rate` : '') +
        (n !== undefined
          ? `; nginx ${fmt(n)}/s → edge ÷ nginx ${ratio(e, n)} (target ≥ 1.0×: ${e / n >= 1 ? '**met**' : '**not met**'})`
          : '') +
        (o !== undefined ? `; s_server ${fmt(o)}/s (${ratio(e, o)})` : '') +
        '.',
    );
  }
  if (!parts.length) return undefined;
  return `**Resumption.** ${parts.join(' ')} A resumed handshake costs the edge no key operation (the key-op count stays at the clients' first connections), so its rate is bounded by the edge process's own CPU — the TLS engine, the HTTP proxy hop and the JSON log line per handshake — where nginx runs C code end to end.`;
}

// ---------------------------------------------------------------------------------------------
// Requests over kept-alive connections and bulk downloads (test/bench/proxy-bench.ts).

async function proxyPhase(pki: ReferencePki, edgeStack: StackProcess): Promise<ProxyBenchResults | undefined> {
  say(`\n== proxy benchmarks: kept-alive requests and bulk downloads through the edge and nginx to one origin`);
  const origin = await startBenchOrigin();
  const targets: ProxyTarget[] = [];
  const stops: Array<() => Promise<void>> = [() => origin.stop()];
  const cfg = {
    reps: CONFIG.reps,
    keepAliveConnections: CONFIG.keepAliveConnections,
    requestsPerConnection: CONFIG.requestsPerConnection,
    bulkConnections: CONFIG.bulkConnections,
    bulkBytes: CONFIG.bulkBytes,
    log: (line: string) => say(`  ${line}`),
    outOfTime: () => elapsed() > CONFIG.budgetMs,
  };
  const results: ProxyBenchResults = {
    config: {
      reps: cfg.reps,
      keepAliveConnections: cfg.keepAliveConnections,
      requestsPerConnection: cfg.requestsPerConnection,
      bulkConnections: cfg.bulkConnections,
      bulkBytes: cfg.bulkBytes,
    },
    keepAlive: [],
    bulk: [],
  };
  try {
    const edge = await startProxyEdgeTarget(edgeStack, origin);
    stops.push(() => edge.stop());
    targets.push(edge);
    if (have('nginx')) {
      const nginx = await startNginxProxyTarget(pki, origin, 1);
      stops.push(() => nginx.stop());
      targets.push(nginx);
    } else say(`  ${missingReason('nginx', 'the nginx proxy reference')}`);
    targets.push(directOriginTarget(origin));
    for (const t of targets) say(`  ${t.label}: ${t.base}`);
    if (!have('h2load')) say(`  keep-alive: ${missingReason('h2load', 'the keep-alive benchmark')}`);
    else if (CONFIG.keepAlive) results.keepAlive = await runKeepAliveBench(targets, cfg);
    if (CONFIG.bulk && elapsed() < CONFIG.budgetMs) {
      if (!have('curl'))
        say('  bulk: curl is not installed, so the bulk benchmark is skipped (apt-get install -y curl)');
      else results.bulk = await runBulkBench(targets, cfg);
    } else if (CONFIG.bulk) say('  bulk: skipped, time budget spent');
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
  return results.keepAlive.length || results.bulk.length ? results : undefined;
}

function proxyInterpretation(p: ProxyBenchResults): string[] {
  const out: string[] = [];
  const ka: string[] = [];
  for (const mode of ['http/1.1', 'h2'] as const) {
    const x = pairKeepAlive(p.keepAlive, mode);
    if (!x.edge) continue;
    ka.push(
      `${mode === 'h2' ? 'HTTP/2 (10 streams per connection)' : 'HTTP/1.1'}: edge ${fmt(kaRate(x.edge))} requests/s` +
        (x.nginx ? `, nginx ${fmt(kaRate(x.nginx))}/s (edge ÷ nginx ${ratio(kaRate(x.edge), kaRate(x.nginx))})` : '') +
        (x.origin ? `, the origin alone ${fmt(kaRate(x.origin))}/s` : ''),
    );
  }
  if (ka.length)
    out.push(
      `**Requests over kept-alive connections** (target ≥ 0.8× nginx; the handshake is out of the picture here). ${ka.join('; ')}. Per request the edge does the record layer (AES-GCM), Node's HTTP parser on both sides and a pooled origin request in JavaScript; nginx does the same in C.`,
    );
  const bulk: string[] = [];
  let met: boolean | undefined;
  for (const c of p.config.bulkConnections) {
    const x = pairBulk(p.bulk, c);
    if (!x.edge) continue;
    const r = x.nginx ? (bulkRate(x.edge) ?? 0) / (bulkRate(x.nginx) ?? Infinity) : undefined;
    if (r !== undefined) met = (met ?? true) && r >= 0.7;
    bulk.push(
      `${c} connection${c > 1 ? 's' : ''}: edge ${fmt(bulkRate(x.edge))} MB/s` +
        (x.nginx
          ? `, nginx ${fmt(bulkRate(x.nginx))} MB/s (edge ÷ nginx ${ratio(bulkRate(x.edge), bulkRate(x.nginx))})`
          : '') +
        (x.origin ? `, origin alone ${fmt(bulkRate(x.origin))} MB/s` : ''),
    );
  }
  if (bulk.length)
    out.push(
      `**Bulk throughput** (target: edge ≥ 0.7× nginx — ${met === undefined ? 'no nginx reference' : met ? '**met**' : '**not met**'}). ${bulk.join('; ')}. Both proxies encrypt with AES-128-GCM through OpenSSL; the edge's cost per MB is in its stream pipeline (16 KiB records, Buffer copies, backpressure between the origin socket and the TLS socket).`,
    );
  return out;
}

// ---------------------------------------------------------------------------------------------
// The edge's own latency per full handshake, key operation excluded (c=1).

interface OwnLatency {
  table: Table;
  /** Edge (hs − key op) p50 minus nginx 1 worker's (hs − local signature) p50, ms. */
  addedOverNginx?: number;
  edgeOwnP50?: number;
  note?: string;
}

function ownLatency(results: TargetResult[], micro: Micro | undefined): OwnLatency | undefined {
  const edge = results.find((r) => r.id === 'edge');
  if (!edge?.latency) return undefined;
  const own = summarize(edge.ownMs ?? []);
  const keyOp = summarize(edge.latencyWindow?.keyOperationMs ?? []);
  const signMs = micro ? 1000 / micro.rsaSignPerSec : undefined;
  const rows: string[][] = [];
  const edgeOwn = own.n ? own.p50 : edge.latency.handshake.p50 - keyOp.p50;
  rows.push([
    'keyless edge (local stack)',
    fmtMs(edge.latency.handshake.p50),
    `${fmtMs(keyOp.p50)} (remote key op, edge's log)`,
    fmtMs(edgeOwn),
    own.n ? `${fmtMs(own.p99)}` : '–',
    own.n
      ? `client handshake − key op, per connection (${own.n} paired${edge.ownUnpaired ? `, ${edge.ownUnpaired} unpaired` : ''})`
      : 'client p50 − key op p50 (no pairing)',
    '',
  ]);
  const server = summarize(edge.latencyWindow?.serverOwnMs ?? []);
  if (server.n)
    rows.push([
      'keyless edge, as the edge sees it',
      '–',
      `${fmtMs(keyOp.p50)} (same)`,
      fmtMs(server.p50),
      fmtMs(server.p99),
      `edge's handshakeMs (accept → client Finished) − key op, per handshake (${server.n})`,
      '',
    ]);
  let nginxOwn: number | undefined;
  for (const id of ['nginx-1w', 'engine', 's_server', 'nginx-2w', 'nginx-1w-direct']) {
    const r = results.find((x) => x.id === id);
    if (!r?.latency || signMs === undefined) continue;
    const o = r.latency.handshake.p50 - signMs;
    if (id === 'nginx-1w') nginxOwn = o;
    rows.push([
      r.label,
      fmtMs(r.latency.handshake.p50),
      `${fmtMs(signMs)} (local RSA-2048 sign, CPU time)`,
      fmtMs(o),
      '–',
      'p50 − signature',
      fmtMs(edgeOwn - o),
    ]);
  }
  rows[0][6] = '';
  const addedOverNginx = nginxOwn !== undefined ? edgeOwn - nginxOwn : undefined;
  return {
    table: {
      title: "The edge's own latency per full TLS 1.3 handshake, key operation excluded (c=1, ms)",
      head: [
        'target',
        'handshake p50 (client)',
        'private-key operation p50',
        'handshake − key op, p50',
        'p99',
        'how',
        'edge − this (added by the edge)',
      ],
      rows,
      left: [0, 2, 5],
      note:
        "The second edge row needs no client: the edge logs, per handshake, the time from accepting the TCP connection to the client's Finished (`handshakeMs`) and the key operation; it still contains the client's second flight (certificate and signature verification, Finished) but not the TCP connect. " +
        "From the c=1 latency probe above (Node client, certificate verified, no resumption). Edge: for every probe connection the client's handshake time (TCP connect → server Finished) minus the key operation the edge logged for that same handshake (`keyOperationMs`: the whole remote call — Lambda Invoke over HTTP, key service, KMS, signature verification), paired by order (one connection at a time); the p50 of those differences. References: their handshake p50 minus one RSA-2048 PSS signature as Node/OpenSSL computes it on this machine (CPU time, micro-benchmark) — what a server holding the key spends on it. " +
        "What remains in every row is the same client work (key share, certificate chain and signature verification, Finished), the TCP connect on loopback and the server's own TLS work; the last column subtracts the reference from the edge, which leaves what the keyless edge adds on top of that server when the key operation itself is taken out.",
    },
    addedOverNginx,
    edgeOwnP50: edgeOwn,
  };
}

// ---------------------------------------------------------------------------------------------
// Report

const SERIES_COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759'];

function throughputTable(results: TargetResult[], edge: TargetResult | undefined): Table {
  const head = ['target'];
  for (const c of CONFIG.concurrency) head.push(`c=${c} hs/s (min–max)`, `edge ÷ target c=${c}`);
  const cMax = CONFIG.concurrency[CONFIG.concurrency.length - 1];
  head.push(`server CPU ms/hs (c=${cMax})`, 'edge ÷ target (CPU/hs)', 'server-side check');
  const edgeCpu = cellOf(edge, cMax) && cpuTotalPerHs(cellOf(edge, cMax)!);
  const rows = results.map((r) => {
    const row = [r.label];
    for (const c of CONFIG.concurrency) {
      const cell = cellOf(r, c);
      const rate = rateMedian(cell);
      const rates = cell?.runs.map((x) => x.rate) ?? [];
      row.push(
        cell
          ? `${fmt(rate)} (${fmt(Math.min(...rates))}–${fmt(Math.max(...rates))})`
          : r.skipped
            ? 'skipped'
            : r.cells.find((x) => x.c === c)?.error
              ? 'failed'
              : '–',
      );
      row.push(ratio(rateMedian(cellOf(edge, c)), rate));
    }
    const cpuCell = cellOf(r, cMax);
    row.push(cpuCell ? fmtMs(cpuTotalPerHs(cpuCell)) : '–', cpuCell ? ratio(edgeCpu, cpuTotalPerHs(cpuCell)) : '–');
    const v = r.cells.map((x) => x.verified);
    row.push(
      v.includes('mismatch')
        ? '✗ mismatch'
        : v.length && v.every((x) => x === 'ok')
          ? '✓ all full'
          : v.some((x) => x === 'ok')
            ? '✓ (partial)'
            : 'n/a',
    );
    return row;
  });
  return {
    title: 'Full TLS 1.3 handshakes per second (new connection + one small HTTP/1.1 request each)',
    head,
    rows,
    note: `Median of ${CONFIG.reps} runs of ~${CONFIG.runSeconds} s each; "edge ÷ target" is the edge's rate divided by that target's. Server CPU ms/hs is the CPU time all the target's server processes spent per handshake (the local stack: edge + key service + local KMS and origin); unlike the rates it hardly moves with background load, so "edge ÷ target (CPU/hs)" is the steadiest comparison on a shared machine. Server-side check: full handshakes counted by the server equal the client's successful requests, none resumed.`,
  };
}

function cpuTable(results: TargetResult[]): Table {
  const rows: string[][] = [];
  for (const r of results) {
    for (const cell of r.cells) {
      if (!cell.runs.length) continue;
      const hs = handshakes(cell);
      const parts = Object.entries(cell.cpu).map(([k, v]) => `${k} ${fmtMs(v / hs)}`);
      rows.push([
        r.label,
        String(cell.c),
        fmtMs(cpuTotalPerHs(cell)),
        parts.length > 1 ? parts.join(' + ') : '',
        fmtMs(clientCpuPerHs(cell)),
        fmtMs(cell.runnerMs / hs),
        pct(median(cell.machineBusy)),
        pct(foreignShare(cell)),
      ]);
    }
  }
  return {
    title: 'CPU time per handshake (ms of CPU, from /proc) and machine load',
    head: [
      'target',
      'c',
      'server ms/hs',
      'by process',
      'client ms/hs',
      'bench runner ms/hs',
      'machine busy',
      'other processes',
    ],
    rows,
    left: [0, 3],
    note: `"machine busy" is the share of all ${os.cpus().length} cores' time that was not idle during the runs (client and server share the machine); "other processes" is the share used by processes outside this benchmark (noise: anything above a few % means the machine was not quiet). The bench runner receives the local stack's log lines.`,
  };
}

function latencyTable(results: TargetResult[], edge: TargetResult | undefined): Table {
  const rows = results
    .filter((r) => r.latency)
    .map((r) => [
      r.label,
      fmtMs(r.latency!.handshake.p50),
      fmtMs(r.latency!.handshake.p99),
      fmtMs(r.latency!.total.p50),
      fmtMs(r.latency!.total.p99),
      String(r.latency!.handshake.n),
      ratio(edge?.latency?.handshake.p50, r.latency!.handshake.p50),
    ]);
  return {
    title: 'Latency at concurrency 1 (ms; Node/OpenSSL client, certificate verified, no resumption)',
    head: [
      'target',
      'handshake p50',
      'handshake p99',
      'connect→response p50',
      'connect→response p99',
      'n',
      'edge ÷ target (p50 hs)',
    ],
    rows,
    note: 'handshake = TCP connect start until the client has the server Finished; connect→response adds one GET and the close.',
  };
}

interface Breakdown {
  window: string;
  check: WindowCheck;
  clientHandshakeP50?: number;
}

function edgeBreakdownTable(edge: TargetResult): { table: Table; rows: Breakdown[] } {
  const rows: Breakdown[] = [];
  if (edge.latencyWindow)
    rows.push({
      window: 'c=1 (latency probe)',
      check: edge.latencyWindow,
      clientHandshakeP50: edge.latency?.handshake.p50,
    });
  for (const cell of edge.cells) {
    if (!cell.runs.length) continue;
    const merged: WindowCheck = {
      detail: '',
      keyOperationMs: cell.checks.flatMap((c) => c.keyOperationMs ?? []),
      keyServiceHandlerMs: cell.checks.flatMap((c) => c.keyServiceHandlerMs ?? []),
      kmsCallMs: cell.checks.flatMap((c) => c.kmsCallMs ?? []),
    };
    rows.push({ window: `c=${cell.c} (throughput runs)`, check: merged });
  }
  const table: Table = {
    title: 'Where a keyless handshake waits: the key operation, from the JSON logs (ms, p50 / p99)',
    head: [
      'window',
      'client handshake p50',
      'key op as the edge sees it',
      'key-service handler',
      'its KMS call',
      'edge↔key service hop (p50 diff)',
      'key op share of handshake (p50)',
    ],
    rows: rows.map((b) => {
      const k = summarize(b.check.keyOperationMs ?? []);
      const h = summarize(b.check.keyServiceHandlerMs ?? []);
      const m = summarize(b.check.kmsCallMs ?? []);
      return [
        b.window,
        fmtMs(b.clientHandshakeP50),
        `${fmtMs(k.p50)} / ${fmtMs(k.p99)}`,
        `${fmtMs(h.p50)} / ${fmtMs(h.p99)}`,
        `${fmtMs(m.p50)} / ${fmtMs(m.p99)}`,
        fmtMs(k.p50 - h.p50),
        b.clientHandshakeP50 ? pct(k.p50 / b.clientHandshakeP50) : '–',
      ];
    }),
    note: "key op = the edge key-service client call (Lambda Invoke over HTTP + response checks + signature verification); handler = the key-service Lambda handler's own latencyMs; KMS call = its backendMs (AWS SDK KMS client → local KMS endpoint → RSA-PSS sign).",
  };
  return { table, rows };
}

function interpretation(results: TargetResult[], micro: Micro | undefined, facts: Facts): string[] {
  const by = (id: string): TargetResult | undefined => results.find((r) => r.id === id);
  const edge = by('edge');
  const engine = by('engine');
  const refs = results.filter((r) => r.id !== 'edge' && r.id !== 'engine');
  const cMax = CONFIG.concurrency[CONFIG.concurrency.length - 1];
  const out: string[] = [];
  const eCell = cellOf(edge, cMax);
  const eRate = rateMedian(eCell);
  if (eRate !== undefined && eCell) {
    const comps = [engine, ...refs]
      .filter((r) => cellOf(r, cMax))
      .map(
        (r) => `${ratio(eRate, rateMedian(cellOf(r, cMax)))} of ${r!.label} (${fmt(rateMedian(cellOf(r, cMax)))}/s)`,
      );
    const cpuRefs = [engine, ...refs]
      .filter((r) => cellOf(r, cMax))
      .map((r) => `${ratio(cpuTotalPerHs(eCell), cpuTotalPerHs(cellOf(r, cMax)!))} that of ${r!.label}`);
    out.push(
      `**Throughput.** At c=${cMax} the keyless edge completes ${fmt(eRate)} full handshakes/s${comps.length ? `: ${comps.join(', ')}` : ''}.` +
        (cpuRefs.length
          ? ` Measured in CPU time per handshake, which background load hardly moves, the local keyless stack costs ${cpuRefs.join(', ')}.`
          : ''),
    );
    const hs = handshakes(eCell);
    const parts = Object.entries(eCell.cpu).map(([k, v]) => `${k} ${fmtMs(v / hs)} ms`);
    const busy = median(eCell.machineBusy);
    out.push(
      (busy >= 0.85
        ? `**CPU, not waiting, is the limit on this machine.** The ${facts.cores} cores were ${pct(busy)} busy during the edge runs. `
        : `**The edge runs left CPU idle** (${pct(busy)} of ${facts.cores} cores busy): at c=${cMax} the edge is bounded by how long each handshake waits (key operation), not by CPU. `) +
        `Every handshake costs the stack ${fmtMs(cpuTotalPerHs(eCell))} ms of CPU (${parts.join(', ')}) plus ${fmtMs(clientCpuPerHs(eCell))} ms in the client` +
        (micro
          ? `, while the one RSA-2048 PSS signature it needs costs ${fmtMs(1000 / micro.rsaSignPerSec)} ms (Node/OpenSSL: ${fmt(micro.rsaSignPerSec)} signatures per CPU second).`
          : '.'),
    );
    const ref = refs.map((r) => ({ r, cell: cellOf(r, cMax) })).filter((x) => x.cell);
    if (ref.length)
      out.push(
        `For comparison the references spend ${ref.map((x) => `${fmtMs(cpuTotalPerHs(x.cell!))} ms (${x.r.label})`).join(', ')} per handshake — essentially the signature, the key exchange and the kernel's TCP work.`,
      );
    const engCell = cellOf(engine, cMax);
    const edgeMs = eCell.cpu.edge !== undefined ? eCell.cpu.edge / hs : undefined;
    if (engCell && edgeMs !== undefined && micro) {
      const engMs = cpuTotalPerHs(engCell);
      const engOwn = engMs - 1000 / micro.rsaSignPerSec;
      out.push(
        `**Engine vs. hop.** Alone with an in-process signer the engine process spends ${fmtMs(engMs)} ms per handshake, ~${fmtMs(engOwn)} ms of it outside the RSA signature (X25519, HKDF, AES-GCM, records, certificate message, JS). The edge process spends ${fmtMs(edgeMs)} ms without signing anything, so ~${fmtMs(edgeMs - engOwn)} ms per handshake in the edge goes to the key-service client (Lambda Invoke: SigV4, HTTP, JSON, signature verification), the HTTP proxy hop to the origin and a JSON log line. The key service (${fmtMs((eCell.cpu['key service'] ?? NaN) / hs)} ms: handler + AWS SDK KMS client + HTTP) and the local KMS with the demo origin (${fmtMs((eCell.cpu['kms+origin'] ?? NaN) / hs)} ms, of which the signature is ~${fmtMs(1000 / micro.rsaSignPerSec)} ms) are each a further Node process with its own HTTP and SDK overhead.`,
      );
    }
  }
  const bd = edge && edgeBreakdownTable(edge).rows;
  const lat = bd?.find((b) => b.window.startsWith('c=1'));
  if (edge?.latency && lat) {
    const k = summarize(lat.check.keyOperationMs ?? []).p50;
    const h = summarize(lat.check.keyServiceHandlerMs ?? []).p50;
    const m = summarize(lat.check.kmsCallMs ?? []).p50;
    const hs = edge.latency.handshake.p50;
    const engLat = engine?.latency?.handshake.p50;
    out.push(
      `**Latency.** With one connection at a time an edge handshake takes ${fmtMs(hs)} ms at p50 (p99 ${fmtMs(edge.latency.handshake.p99)} ms)` +
        (engLat !== undefined ? ` against ${fmtMs(engLat)} ms for the engine alone` : '') +
        `. The key operation is ${fmtMs(k)} ms of it (${pct(k / hs)}): ${fmtMs(k - h)} ms edge↔key-service hop (Lambda Invoke client, HTTP on loopback, local Lambda endpoint, response checks, signature verification), ${fmtMs(h - m)} ms in the handler itself and ${fmtMs(m)} ms for its KMS call (AWS SDK client, HTTP, local KMS, RSA signature).`,
    );
    const loaded = bd!.filter((b) => !b.window.startsWith('c=1'));
    const busyMax = Math.max(...(edge.cells.flatMap((c) => c.machineBusy).filter(Number.isFinite) as number[]), 0);
    if (loaded.length) {
      out.push(
        `Under load the key operation stretches (${loaded.map((b) => `${b.window.split(' ')[0]}: p50 ${fmtMs(summarize(b.check.keyOperationMs ?? []).p50)} ms, p99 ${fmtMs(summarize(b.check.keyOperationMs ?? []).p99)} ms`).join('; ')})` +
          (busyMax >= 0.85
            ? ': with the cores saturated, requests queue for CPU shared by the edge, the key service, the local KMS and the client — the key service itself waits on nothing.'
            : ': the cores were not saturated, so part of this is queueing in the key-service path itself (in-flight cap, HTTP connection pool).'),
      );
    }
  }
  const cells = results.flatMap((r) => r.cells.filter((c) => c.runs.length));
  const busyAll = cells.reduce((a, c) => a + c.machineTotalMs, 0);
  const foreign = busyAll > 0 ? cells.reduce((a, c) => a + foreignShare(c) * c.machineTotalMs, 0) / busyAll : NaN;
  if (Number.isFinite(foreign)) {
    out.push(
      foreign > 0.1
        ? `**Noise.** This machine was shared: ${pct(foreign)} of all CPU time during the measured runs went to processes outside the benchmark (${pct(facts.backgroundBusy)} busy before it started). Absolute rates are lower than on a quiet machine; the runs were interleaved across targets so the ratios stay comparable, and the min–max spread shows how much the background moved.`
        : `**Noise.** The machine was quiet: ${pct(foreign)} of CPU time during the runs went to processes outside the benchmark.`,
    );
  }
  out.push(
    "**What this does and does not say about AWS.** Locally the key service and KMS are Node processes on the same cores, so their CPU competes with the edge; in AWS they run elsewhere, and instead each key operation pays a Lambda invocation and a KMS Sign request across the network (not measured here) and counts against the KMS request quota (500 RSA requests/s per account and region by default). Every handshake measured here was a full one (see the server-side counts); session resumption is what takes the key operation out of returning clients' handshakes.",
  );
  return out;
}

function machineTable(facts: Facts, tool: LoadTool, micro: Micro | undefined): Table {
  const rows: string[][] = [
    ['date (UTC)', facts.date],
    ['CPU', `${facts.cores} × ${facts.cpuModel}`],
    ['memory', `${facts.memGiB.toFixed(1)} GiB`],
    ['kernel', facts.kernel],
    ['Node.js', `${facts.node} (OpenSSL ${facts.nodeOpenssl})`],
    ['openssl CLI', facts.opensslCli ?? 'not installed'],
    [
      'load generator',
      tool === 'h2load'
        ? `h2load ${facts.h2load ?? ''} (--h1 -t 1, Connection: close)`
        : 'Node client pool (h2load not installed)',
    ],
    ['nginx', facts.nginx ?? 'not installed'],
    ['commit', facts.commit ?? 'unknown'],
    [
      'background load before the run',
      `${pct(facts.backgroundBusy)} of all cores busy (load average ${facts.loadAverage})`,
    ],
  ];
  if (micro) {
    rows.push([
      'RSA-2048 PSS sign, per CPU second (Node)',
      `${fmt(micro.rsaSignPerSec)}/s (${fmtMs(1000 / micro.rsaSignPerSec)} ms each)`,
    ]);
    rows.push(['X25519 keygen + derive, per CPU second (Node)', `${fmt(micro.x25519PerSec)}/s`]);
    rows.push([
      'X25519 public key import: DER SPKI vs JWK',
      `${fmt(micro.x25519ImportDerUs)} µs vs ${fmt(micro.x25519ImportJwkUs)} µs`,
    ]);
  }
  return { title: 'Machine', head: ['fact', 'value'], rows, left: [0, 1] };
}

interface TargetsSummary {
  table: Table;
  /** edge ÷ nginx per measure, with its target (for the chart). */
  ratios: Array<{ label: string; value?: number; target?: number }>;
  ownAddedMs?: number;
}

/**
 * The performance targets in one table: the edge next to nginx 1 worker (proxying to the same origin),
 * the ratio, the target, met or not. Targets: resumed handshakes ≥ 0.7×, kept-alive requests and
 * bulk MB/s ≥ 0.8×, CPU per full handshake ≤ 2× nginx's without its local RSA signature, own added
 * latency < 1 ms; full-handshake rates and Lambda invocations per key operation are reported.
 */
function targetsSummary(
  results: TargetResult[],
  resume: ResumeResults | undefined,
  proxy: ProxyBenchResults | undefined,
  own: OwnLatency | undefined,
  micro: Micro | undefined,
): TargetsSummary {
  const cMax = CONFIG.concurrency[CONFIG.concurrency.length - 1];
  const rows: string[][] = [];
  const ratios: TargetsSummary['ratios'] = [];
  const add = (
    measure: string,
    chartLabel: string,
    e: number | undefined,
    n: number | undefined,
    unit: (v: number | undefined) => string,
    target?: number,
  ): void => {
    // A rate of 0 is a run in which every request failed (listed under "problems"), not a measurement.
    const failed = e === 0 || n === 0;
    const r = e !== undefined && n !== undefined && !failed ? e / n : undefined;
    const verdict = failed
      ? '✗ run failed (see the problems above)'
      : target === undefined
        ? 'no target'
        : r === undefined
          ? 'not measured'
          : r >= target
            ? '✓ met'
            : '✗ not met';
    rows.push([
      measure,
      unit(e),
      unit(n),
      ratio(e, n),
      target === undefined ? '–' : `≥ ${target.toFixed(1)}×`,
      verdict,
    ]);
    ratios.push({ label: chartLabel, value: r, target });
  };
  const rate = (id: string): number | undefined =>
    rateMedian(
      cellOf(
        results.find((r) => r.id === id),
        cMax,
      ),
    );
  const perS = (v: number | undefined): string => (v === undefined ? '–' : `${fmt(v)}/s`);
  const mbs = (v: number | undefined): string => (v === undefined ? '–' : `${fmt(v)} MB/s`);
  add(
    `Full TLS 1.3 handshakes/s (c=${cMax}, h2load)`,
    'full TLS 1.3 handshakes/s',
    rate('edge'),
    rate('nginx-1w'),
    perS,
  );
  if (rate('edge-2w') !== undefined)
    add(
      `Full TLS 1.3 handshakes/s, 2 workers each (c=${cMax})`,
      'full TLS 1.3 handshakes/s, 2 workers',
      rate('edge-2w'),
      rate('nginx-2w'),
      perS,
    );
  if (resume) {
    add(
      `Full TLS 1.2 ECDHE handshakes/s (c=${resume.c}, Node client)`,
      'full TLS 1.2 ECDHE handshakes/s',
      resumeRate(resume, 'TLSv1.2', 'edge', 'full'),
      resumeRate(resume, 'TLSv1.2', 'nginx', 'full'),
      perS,
    );
    add(
      `Resumed TLS 1.3 handshakes/s (c=${resume.c}, h2load)`,
      'resumed TLS 1.3 handshakes/s',
      resumeRate(resume, 'TLSv1.3', 'edge', 'resumed'),
      resumeRate(resume, 'TLSv1.3', 'nginx', 'resumed'),
      perS,
      0.7,
    );
    add(
      `Resumed TLS 1.2 handshakes/s (c=${resume.c}, Node client)`,
      'resumed TLS 1.2 handshakes/s',
      resumeRate(resume, 'TLSv1.2', 'edge', 'resumed'),
      resumeRate(resume, 'TLSv1.2', 'nginx', 'resumed'),
      perS,
      0.7,
    );
  }
  if (proxy?.keepAlive.length) {
    for (const mode of ['http/1.1', 'h2'] as const) {
      const p = pairKeepAlive(proxy.keepAlive, mode);
      add(
        `Requests/s over kept-alive connections, ${mode === 'h2' ? 'HTTP/2 -m 10' : 'HTTP/1.1'}`,
        `kept-alive requests/s, ${mode === 'h2' ? 'HTTP/2' : 'HTTP/1.1'}`,
        kaRate(p.edge),
        kaRate(p.nginx),
        perS,
        0.8,
      );
    }
  }
  if (proxy?.bulk.length) {
    for (const c of proxy.config.bulkConnections) {
      const p = pairBulk(proxy.bulk, c);
      add(
        `Bulk download, ${c} connection${c > 1 ? 's' : ''}`,
        `bulk MB/s, ${c} connection${c > 1 ? 's' : ''}`,
        bulkRate(p.edge),
        bulkRate(p.nginx),
        mbs,
        0.8,
      );
    }
  }
  const eCell = cellOf(
    results.find((r) => r.id === 'edge'),
    cMax,
  );
  const nCell = cellOf(
    results.find((r) => r.id === 'nginx-1w'),
    cMax,
  );
  if (eCell && HAVE_PROC) {
    // The edge never signs; nginx does, locally: compare with nginx's CPU minus one RSA signature.
    const edgeOnly = eCell.cpu.edge !== undefined ? eCell.cpu.edge / handshakes(eCell) : undefined;
    const signMs = micro ? 1000 / micro.rsaSignPerSec : undefined;
    const nginxNoSign = nCell && signMs !== undefined ? cpuTotalPerHs(nCell) - signMs : undefined;
    const r =
      edgeOnly !== undefined && nginxNoSign !== undefined && nginxNoSign > 0 ? edgeOnly / nginxNoSign : undefined;
    rows.push([
      `CPU per full TLS 1.3 handshake (c=${cMax}): edge process (whole local stack) vs nginx without its RSA signature`,
      `${fmtMs(edgeOnly)} ms (${fmtMs(cpuTotalPerHs(eCell))} ms)`,
      nginxNoSign !== undefined ? `${fmtMs(nginxNoSign)} ms (${fmtMs(cpuTotalPerHs(nCell!))} − ${fmtMs(signMs)})` : '–',
      r === undefined ? '–' : `${r.toFixed(2)}×`,
      '≤ 2.0×',
      r === undefined ? 'not measured' : r <= 2 ? '✓ met' : '✗ not met',
    ]);
    // Without batching every key operation is one Lambda invocation; batching would bring this below 1.
    const invocations = eCell.checks.reduce((a, x) => a + (x.fullHandshakes ?? 0), 0);
    const keyOps = eCell.checks.reduce((a, x) => a + Object.values(x.keyOps ?? {}).reduce((m, v) => m + v, 0), 0);
    rows.push([
      `Lambda invocations per key operation (c=${cMax})`,
      keyOps ? `${(invocations / keyOps).toFixed(2)} (${fmt(invocations)} ÷ ${fmt(keyOps)})` : '–',
      '–',
      '–',
      'report',
      'reported',
    ]);
  }
  if (own) {
    const met = own.addedOverNginx === undefined ? 'not measured' : own.addedOverNginx < 1 ? '✓ met' : '✗ not met';
    rows.push([
      'Own added latency per full handshake, key op excluded (c=1, p50)',
      `${fmtMs(own.edgeOwnP50)} ms`,
      own.addedOverNginx !== undefined ? `${fmtMs((own.edgeOwnP50 ?? 0) - own.addedOverNginx)} ms` : '–',
      own.addedOverNginx !== undefined
        ? `${own.addedOverNginx >= 0 ? '+' : '−'}${fmtMs(Math.abs(own.addedOverNginx))} ms`
        : '–',
      '< 1 ms added',
      met,
    ]);
  }
  return {
    table: {
      title: 'Edge vs nginx (1 worker, local key, proxy_pass to the same origin), same run, same client',
      head: ['measure', 'keyless edge', 'nginx', 'edge ÷ nginx', 'target', 'met?'],
      rows,
      left: [0, 5],
      note: 'In every row nginx proxies each request to the same origin as the edge (`proxy_pass`, upstream keep-alive); "nginx direct" (return 200) appears only as an extra reference row in the tables below. Latency row: "keyless edge" = its handshake minus its key operation, "nginx" = its handshake minus one local RSA signature; the difference is what the edge adds (section "The edge\'s own latency" below explains it, with a breakdown by phase). CPU row: the edge process alone (all its workers), and in brackets the whole local stack (edge + key service + local KMS/origin), against nginx\'s CPU per handshake minus one local RSA-2048 signature (micro-benchmark). Lambda invocations per key operation: the key service\'s invocation count (health pings taken out) over the key operations it logged.',
    },
    ratios,
    ownAddedMs: own?.addedOverNginx,
  };
}

function renderChart(
  results: TargetResult[],
  date: string,
  summary: TargetsSummary,
  resume: ResumeResults | undefined,
  proxy: ProxyBenchResults | undefined,
): string {
  const day = date.slice(0, 10);
  const cores = os.cpus().length;
  const panels: ChartPanel[] = [];
  const measured = summary.ratios.filter((r) => r.value !== undefined);
  if (measured.length) {
    panels.push({
      title: 'Keyless edge ÷ nginx (1 worker, local key): higher is better for the edge',
      subtitle: `${day}: same machine (${cores} cores shared with the client), same run; dashed line = the target${summary.ownAddedMs !== undefined ? `; own added latency ${fmtMs(summary.ownAddedMs)} ms p50 (target < 1 ms)` : ''}`,
      series: [{ name: 'edge ÷ nginx', color: SERIES_COLORS[0] }],
      groups: measured.map((r) => ({ label: r.label, values: [r.value] })),
      markers: measured.map((r) =>
        r.target !== undefined ? { value: r.target, label: `target ${r.target.toFixed(1)}×` } : undefined,
      ),
      unit: 'ratio (1.0 = as fast as nginx)',
      format: (v) => `${v.toFixed(2)}×`,
    });
  }
  const full = results.filter((r) => !r.skipped && r.cells.some((c) => c.runs.length));
  if (full.length) {
    panels.push({
      title: 'Full TLS 1.3 handshakes per second (RSA-2048, X25519)',
      subtitle: `new connection + one HTTP/1.1 request each, no resumption possible; h2load`,
      series: CONFIG.concurrency.map((c, i) => ({
        name: `concurrency ${c}`,
        color: SERIES_COLORS[i % SERIES_COLORS.length],
      })),
      groups: full.map((r) => ({ label: r.label, values: CONFIG.concurrency.map((c) => rateMedian(cellOf(r, c))) })),
      unit: 'handshakes per second (median)',
    });
  }
  if (resume) {
    const servers = (['edge', 's_server', 'nginx'] as const).filter((s) => resume.rows.some((r) => r.server === s));
    panels.push({
      title: `Resumed vs full handshakes per second (c=${resume.c})`,
      subtitle:
        'session tickets on; TLS 1.3 with h2load (full = the table above, tickets off), TLS 1.2 with the Node client',
      series: [
        { name: 'TLS 1.3 resumed', color: SERIES_COLORS[0] },
        { name: 'TLS 1.3 full', color: '#a0cbe8' },
        { name: 'TLS 1.2 resumed', color: SERIES_COLORS[1] },
        { name: 'TLS 1.2 full', color: '#ffbe7d' },
      ],
      groups: servers.map((s) => ({
        label: RESUME_SERVER_LABEL[s],
        values: [
          resumeRate(resume, 'TLSv1.3', s, 'resumed'),
          fullRateFor(resume, results, 'TLSv1.3', s),
          resumeRate(resume, 'TLSv1.2', s, 'resumed'),
          resumeRate(resume, 'TLSv1.2', s, 'full'),
        ],
      })),
      unit: 'handshakes per second (median)',
    });
  }
  if (proxy?.keepAlive.length) {
    const targets = [...new Map(proxy.keepAlive.map((c) => [c.target.id, c.target])).values()];
    panels.push({
      title: 'HTTP requests per second over kept-alive connections',
      subtitle: `${proxy.config.keepAliveConnections} connections × ${fmt(proxy.config.requestsPerConnection)} requests, 3-byte responses from the same origin; h2load`,
      series: [
        { name: 'HTTP/1.1', color: SERIES_COLORS[2] },
        { name: 'HTTP/2, 10 streams', color: SERIES_COLORS[3] },
      ],
      groups: targets.map((t) => ({
        label: t.label,
        values: (['http/1.1', 'h2'] as const).map((m) =>
          kaRate(proxy.keepAlive.find((c) => c.target.id === t.id && c.mode === m)),
        ),
      })),
      unit: 'requests per second (median)',
    });
  }
  if (proxy?.bulk.length) {
    const targets = [...new Map(proxy.bulk.map((c) => [c.target.id, c.target])).values()];
    panels.push({
      title: 'Bulk download throughput',
      subtitle: `${fmt(proxy.config.bulkBytes / 2 ** 20)} MiB per run streamed by the same origin; curl, HTTP/1.1, TLS_AES_128_GCM_SHA256`,
      series: proxy.config.bulkConnections.map((c, i) => ({
        name: `${c} connection${c > 1 ? 's' : ''}`,
        color: [SERIES_COLORS[0], SERIES_COLORS[1]][i % 2],
      })),
      groups: targets.map((t) => ({
        label: t.label,
        values: proxy.config.bulkConnections.map((c) =>
          bulkRate(proxy.bulk.find((x) => x.target.id === t.id && x.c === c)),
        ),
      })),
      unit: 'MB/s (median, 10^6 bytes per second)',
    });
  }
  return stackedBarChartsSvg(panels);
}

function writeDocs(md: string, svg: string): string {
  const docs = path.resolve(DOCS_DIR ?? path.join(REPO_ROOT, 'docs'));
  fs.mkdirSync(docs, { recursive: true });
  const svgPath = path.join(docs, 'benchmarks.svg');
  const pngPath = path.join(docs, 'benchmarks.png');
  fs.writeFileSync(svgPath, svg);
  let image = 'benchmarks.svg';
  const rel = path.relative(REPO_ROOT, docs).startsWith('..') ? docs : path.relative(REPO_ROOT, docs) || '.';
  let chartNote = `chart: ${rel}/benchmarks.svg`;
  const converters: Array<[string, string[]]> = [
    ['rsvg-convert', ['-f', 'png', '-o', pngPath, svgPath]],
    ['convert', [svgPath, pngPath]],
  ];
  const conv = converters.find(([cmd]) => have(cmd));
  if (conv && spawnSync(conv[0], conv[1], { stdio: 'ignore', timeout: 30_000 }).status === 0) {
    image = 'benchmarks.png';
    chartNote = `chart: ${rel}/benchmarks.png (rendered by ${conv[0]}) and ${rel}/benchmarks.svg`;
  } else {
    chartNote = `chart: ${rel}/benchmarks.svg only — ${missingReason('rsvg-convert', 'the PNG rendering')}`;
  }
  fs.writeFileSync(
    path.join(docs, 'benchmarks.md'),
    md.replace(
      '{{CHART}}',
      `![Keyless edge vs nginx: ratios against the targets, full and resumed handshakes per second, kept-alive requests per second, bulk MB/s](${image})`,
    ),
  );
  return chartNote;
}

// ---------------------------------------------------------------------------------------------
// Main

const running = new Set<Target>();

async function stopAll(): Promise<void> {
  for (const t of running) await t.stop().catch(() => undefined);
  running.clear();
}

function makeReferencePki(): ReferencePki & { key: crypto.KeyObject; cleanup(): void } {
  const pki = makeTestPki();
  const leaf = pki.leaf('localhost', 'rsa2048', ['localhost']);
  const chainPath = path.join(pki.dir, 'localhost.chain.pem');
  fs.writeFileSync(chainPath, leaf.chainPem);
  return {
    dir: pki.dir,
    caPem: pki.caPem,
    chainPath,
    leafPath: leaf.certPath,
    caPath: pki.caPath,
    keyPath: leaf.keyPath,
    key: leaf.key,
    cleanup: () => pki.cleanup(),
  };
}

async function main(): Promise<number> {
  const facts = machineFacts();
  const load = pickLoadTool();
  say(
    `keyless TLS benchmark — ${facts.date} — ${facts.cores} × ${facts.cpuModel}, Node ${facts.node}, ${facts.opensslCli ?? 'no openssl CLI'}`,
  );
  say(
    `plan: concurrency ${CONFIG.concurrency.join(', ')}; ${CONFIG.reps} runs of ~${CONFIG.runSeconds} s per cell; latency probe ${CONFIG.latencyCount} connections at c=1; budget ${CONFIG.budgetMs / 1000} s${QUICK ? '; QUICK (KEYLESS_BENCH_QUICK=1)' : ''}`,
  );
  const ran = SECTIONS.filter(
    (x) =>
      ({
        full: CONFIG.full,
        latency: CONFIG.latency,
        tls12: CONFIG.tls12,
        groups: CONFIG.groups,
        resume: CONFIG.resume,
        keepalive: CONFIG.keepAlive,
        bulk: CONFIG.bulk,
        profile: CONFIG.profile,
        keyservice: CONFIG.keyService,
      })[x],
  );
  say(
    `sections: ${ran.join(', ')}${CONFIG.writeDocs ? `; the report goes to ${DOCS_DIR ?? 'docs/'}` : '; the report is printed only (quick/partial run or BENCH_NO_DOCS=1; BENCH_DOCS_DIR=<folder> writes it there)'}`,
  );
  if (load.reason) say(`note: ${load.reason}`);
  if (!HAVE_PROC) say('note: no /proc here, so CPU time per process is not reported');
  if (process.platform === 'linux' && !have('openssl'))
    say(`note: ${missingReason('openssl', 'the openssl s_server reference')}`);

  if (HAVE_PROC) {
    const w = startCpuWindow({});
    await sleep(1000);
    facts.backgroundBusy = w().machineBusy;
    const quiet = facts.backgroundBusy < 0.1;
    say(
      `background load before the benchmark: ${pct(facts.backgroundBusy)} of ${facts.cores} cores busy (load average ${facts.loadAverage})${quiet ? '' : ' — the machine is NOT quiet: expect noisy absolute numbers; the interleaved runs keep the ratios fair'}`,
    );
  }

  const pki = makeReferencePki();
  let micro: Micro | undefined;
  try {
    micro = microBench(pki.key);
    say(
      `micro (per CPU second): RSA-2048 PSS sign ${fmt(micro.rsaSignPerSec)}/s (${fmtMs(1000 / micro.rsaSignPerSec)} ms each); X25519 keygen+derive ${fmt(micro.x25519PerSec)}/s; X25519 import DER ${fmt(micro.x25519ImportDerUs)} µs vs JWK ${fmt(micro.x25519ImportJwkUs)} µs`,
    );
  } catch (e) {
    say(`micro-benchmark failed: ${(e as Error).message}`);
  }

  // nginx proxies each request to the edge's own origin (the local stack's demo origin), as the edge
  // does; the "direct" rows (return 200) are an extra reference.
  let edgeOrigin: string | undefined;
  const plan: Array<{ id: string; label: string; needs?: string; start: () => Promise<Target> }> = [
    {
      id: 'edge',
      label: 'keyless edge (local stack)',
      start: async () => {
        const t = await startEdgeTarget();
        edgeOrigin = t.stack.state.originUrl;
        return t;
      },
    },
    {
      id: 'edge-2w',
      label: 'keyless edge, 2 workers (KEYLESS_WORKERS=2)',
      start: () =>
        startEdgeTarget(
          { KEYLESS_WORKERS: '2' },
          { id: 'edge-2w', label: 'keyless edge, 2 workers (KEYLESS_WORKERS=2)' },
        ),
    },
    { id: 'engine', label: 'engine only (in-process signer)', start: () => startEngineTarget(pki) },
    {
      id: 's_server',
      label: 'openssl s_server -no_ticket -no_cache',
      needs: 'openssl',
      start: () => startSServerTarget(pki),
    },
    {
      id: 'nginx-1w',
      label: 'nginx 1 worker, no cache/tickets, proxy_pass',
      needs: 'nginx',
      start: () => startNginxTarget(pki, 1, { origin: edgeOrigin }),
    },
    {
      id: 'nginx-2w',
      label: 'nginx 2 workers, no cache/tickets, proxy_pass',
      needs: 'nginx',
      start: () => startNginxTarget(pki, 2, { origin: edgeOrigin }),
    },
    {
      id: 'nginx-1w-direct',
      label: 'nginx 1 worker, direct (return 200)',
      needs: 'nginx',
      start: () => startNginxTarget(pki, 1),
    },
  ];
  const results: TargetResult[] = [];
  const active: Active[] = [];
  if (CONFIG.full || CONFIG.latency) say(`\n== starting ${plan.length} targets`);
  for (const p of CONFIG.full || CONFIG.latency ? plan : []) {
    if (p.needs && !have(p.needs)) {
      const why = missingReason(p.needs, `the ${p.label} reference`);
      say(`  ${p.label}: skipped: ${why}`);
      results.push({ id: p.id, label: p.label, cells: [], skipped: why });
      continue;
    }
    try {
      const target = await p.start();
      running.add(target);
      const result: TargetResult = { id: p.id, label: p.label, cells: [] };
      results.push(result);
      active.push({ target, result });
      say(`  ${p.label}: ${target.url}`);
    } catch (e) {
      say(`  ${p.label}: failed to start: ${(e as Error).message}`);
      results.push({ id: p.id, label: p.label, cells: [], error: (e as Error).message });
    }
  }
  try {
    await measureAll(active, load.tool);
  } finally {
    await stopAll();
  }
  const phases = CONFIG.latency && elapsed() < CONFIG.budgetMs ? await measurePhases() : undefined;
  let tls12: Tls12Results | undefined;
  if (CONFIG.tls12 && elapsed() < CONFIG.budgetMs) {
    try {
      tls12 = await tls12Phase(pki);
    } catch (e) {
      say(`  TLS 1.2 section failed: ${(e as Error).message}`);
    }
  } else if (CONFIG.tls12) say('\nTLS 1.2 section skipped: time budget spent');
  let groupsTab: Table | undefined;
  if (CONFIG.groups && elapsed() < CONFIG.budgetMs) {
    say(
      `\n== key-exchange groups: X25519MLKEM768 vs X25519, engine only, ${CONFIG.reps} interleaved runs of ${CONFIG.groupsConnections} full handshakes each`,
    );
    try {
      const { runGroupsBench, groupsTable } = await import('./groups-bench');
      groupsTab = groupsTable(
        await runGroupsBench({
          pki,
          reps: CONFIG.reps,
          connections: CONFIG.groupsConnections,
          c: 8,
          log: (line) => say(`  ${line}`),
          loadAverage: () =>
            os
              .loadavg()
              .map((v) => v.toFixed(2))
              .join(' '),
        }),
      );
    } catch (e) {
      say(`  groups section failed: ${(e as Error).message}`);
    }
  } else if (CONFIG.groups) say('\nkey-exchange groups section skipped: time budget spent');
  // Resumption and the proxy benchmarks share one local stack with session tickets on.
  let resume: ResumeResults | undefined;
  let proxy: ProxyBenchResults | undefined;
  if ((CONFIG.resume || CONFIG.keepAlive || CONFIG.bulk) && elapsed() < CONFIG.budgetMs) {
    try {
      const edgeT = await startEdgeTarget(
        { KEYLESS_TICKETS: '1' },
        { id: 'edge-tickets', label: 'keyless edge (tickets on)' },
      );
      running.add(edgeT);
      try {
        if (CONFIG.resume) resume = await resumePhase(pki, load.tool, edgeT);
        if ((CONFIG.keepAlive || CONFIG.bulk) && elapsed() < CONFIG.budgetMs)
          proxy = await proxyPhase(pki, edgeT.stack);
        else if (CONFIG.keepAlive || CONFIG.bulk) say('\nproxy benchmarks skipped: time budget spent');
      } finally {
        await stopAll();
      }
    } catch (e) {
      say(`  resumption / proxy sections failed: ${(e as Error).message}`);
    }
  } else if (CONFIG.resume || CONFIG.keepAlive || CONFIG.bulk)
    say('\nresumption and proxy sections skipped: time budget spent');
  let profiles: Profiles | undefined;
  if (CONFIG.profile && elapsed() < CONFIG.budgetMs && results.some((r) => r.cells.some((c) => c.runs.length)))
    profiles = await profilePhase(pki, load.tool, results);
  else if (CONFIG.profile) say('\nsampled CPU profiles skipped: time budget spent or nothing measured');
  pki.cleanup();

  // The key-service path on its own (test/bench/key-service.ts: client, SDK hop, handler, backends).
  let keyServiceText: string | undefined;
  if (CONFIG.keyService) {
    const budgetSeconds = Math.min(85, Math.floor((CONFIG.hardStopMs - elapsed()) / 1000) - 5);
    if (budgetSeconds < 20)
      say(`\nkey-service path benchmark skipped: only ${Math.max(0, budgetSeconds)} s of the run's time left`);
    else {
      say(`\n== key-service path (test/bench/key-service.ts, up to ${budgetSeconds} s; BENCH_KEY_SERVICE=0 skips it)`);
      try {
        // As the dev stack does for its children: the AWS SDK's Node-version notice is noise here.
        process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
        const ks = await import('./key-service');
        keyServiceText = ks.renderKeyServiceBench(
          await ks.runKeyServiceBench({ budgetSeconds, log: (line) => say(`  ${line}`) }),
        );
      } catch (e) {
        say(`  failed: ${(e as Error).message}`);
      }
    }
  }

  const edge = results.find((r) => r.id === 'edge');
  const ranMain = results.some((r) => r.cells.some((c) => c.runs.length) || r.latency);
  const tables: Table[] = ranMain ? [throughputTable(results, edge), latencyTable(results, edge)] : [];
  if (edge && (edge.latencyWindow || edge.cells.some((c) => c.runs.length)))
    tables.push(edgeBreakdownTable(edge).table);
  if (HAVE_PROC && ranMain) tables.push(cpuTable(results));
  if (profiles) tables.push(...profileTables(profiles));
  const tls12Tabs = tls12 ? tls12Tables(tls12) : [];
  const resumeTab = resume && resumeTable(resume, results);
  const resumeNote = resume && resumeInterpretation(resume, results);
  const kaTab = proxy?.keepAlive.length ? keepAliveTable(proxy) : undefined;
  const bulkTab = proxy?.bulk.length ? bulkTable(proxy) : undefined;
  const proxyNotes = proxy ? proxyInterpretation(proxy) : [];
  const own = ownLatency(results, micro);
  const summary = targetsSummary(results, resume, proxy, own, micro);
  const mTable = machineTable(facts, load.tool, micro);
  const notes = ranMain ? interpretation(results, micro, facts) : [];
  const pNote = profiles && profileInterpretation(profiles, micro);
  if (pNote) notes.splice(Math.max(0, notes.length - 1), 0, pNote);
  const t12Note = tls12 && tls12Interpretation(tls12, micro, facts);
  const plain = (x: string): string => x.replace(/\*\*/g, '');
  say('');
  say(renderText(mTable));
  for (const t of tables) say(renderText(t));
  for (const t of tls12Tabs) say(renderText(t));
  if (groupsTab) say(renderText(groupsTab));
  if (t12Note) say(`\n${plain(t12Note)}`);
  if (resumeTab) say(renderText(resumeTab));
  if (resumeNote) say(`\n${plain(resumeNote)}`);
  if (kaTab) say(renderText(kaTab));
  if (bulkTab) say(renderText(bulkTab));
  for (const n of proxyNotes) say(`\n${plain(n)}`);
  if (own) say(renderText(own.table));
  if (phases) say(renderText(phaseTable(phases)));
  if (keyServiceText) say(`\nKey-service path\n${keyServiceText}`);
  if (notes.length) {
    say('\nInterpretation:');
    for (const n of notes) say(`- ${plain(n)}`);
  }
  say(renderText(summary.table));

  const problems: string[] = [];
  for (const r of results) {
    if (r.error) problems.push(`${r.label}: ${r.error}`);
    for (const c of r.cells) {
      if (c.error) problems.push(`${r.label} c=${c.c}: ${c.error}`);
      if (c.verified === 'mismatch')
        problems.push(
          `${r.label} c=${c.c}: server-side full-handshake count does not match the client's (see the run lines above)`,
        );
    }
  }
  for (const row of tls12?.rows ?? []) {
    const cell = cellOf(row.result, tls12!.c);
    const err = row.result.cells.find((x) => x.error)?.error;
    if (err) problems.push(`TLS 1.2 ${row.result.label}: ${err}`);
    else if (cell && tls12Check(row, cell).startsWith('✗'))
      problems.push(`TLS 1.2 ${row.result.label}: ${tls12Check(row, cell)}`);
  }
  for (const row of resume?.rows ?? []) {
    const err = row.result.cells.find((x) => x.error)?.error;
    if (err) problems.push(`${row.result.label}: ${err}`);
    if (row.result.cells.some((c) => c.verified === 'mismatch'))
      problems.push(
        `${row.result.label}: the server's full + resumed count does not match the client's successful connections`,
      );
  }
  for (const cell of [...(proxy?.keepAlive ?? []), ...(proxy?.bulk ?? [])]) {
    if (cell.error) problems.push(`${cell.target.label}: ${cell.error}`);
    const failed = (cell.runs as Array<{ failed: number }>).reduce((a, r) => a + r.failed, 0);
    if (failed)
      problems.push(
        `${cell.target.label} (${'mode' in cell ? cell.mode : `bulk ×${cell.c}`}): ${failed} failed request${failed === 1 ? '' : 's'}`,
      );
  }

  if (CONFIG.writeDocs) {
    const cMax = CONFIG.concurrency[CONFIG.concurrency.length - 1];
    const md = [
      '# Benchmarks',
      '',
      `_Generated by \`npm run bench\` on ${facts.date} (commit ${facts.commit ?? 'unknown'}). Do not edit by hand: run the benchmark again._`,
      '',
      "What is measured, in one run on one machine, the keyless edge next to OpenSSL (`s_server`) and nginx holding a local RSA-2048 key: **full** TLS 1.3 and TLS 1.2 handshakes per second (every connection new, its one key operation going through the local key service and KMS) and the CPU each costs; **resumed** handshakes per second with session tickets (no key operation at all); **HTTP requests per second over kept-alive connections** and **bulk download MB/s** through the edge and through nginx to the same origin; and handshake **latency** at concurrency 1, with the edge's own share once the key operation is taken out.",
      '',
      '## At a glance: the performance targets',
      '',
      'How to read this: each row puts the edge next to nginx (1 worker, local key, proxying each request to the same origin as the edge) measured in the same run by the same client; "edge ÷ nginx" above 1 means the edge did more (for CPU, above 1 means the edge spent more). The targets are the project\'s performance targets; "met" is judged on the medians of this run. On this machine the key service, the local KMS, the load generator and the servers share 2 cores, so the full-handshake rows measure the whole local stack\'s CPU, not a remote KMS (see "What this does and does not say about AWS" below).',
      '',
      renderMarkdown(summary.table, '###'),
      '',
      '{{CHART}}',
      '',
      ...(ranMain
        ? [
            '## Full TLS 1.3 handshakes',
            '',
            'How to read this: every connection is new and resumption is impossible (tickets off everywhere), so every row pays one private-key operation per connection — the edge through the key service and the local KMS, the others with the key in memory. Rates are medians of interleaved runs; "server CPU ms/hs" is the steadiest comparison on a shared machine. The server-side check proves each handshake was full.',
            '',
            renderMarkdown(tables[0]),
            '',
            '### Interpretation',
            '',
            ...notes.map((n) => `- ${n}`),
            '',
            ...tables.slice(1).flatMap((t) => [renderMarkdown(t), '']),
          ]
        : []),
      ...(tls12Tabs.length
        ? [
            '## Full TLS 1.2 handshakes per second',
            '',
            'How to read this: TLS 1.2 with ECDHE-RSA and with RSA key exchange (AES128-GCM), every connection new, against the local stack in sealed custody and `openssl s_server -tls1_2 -no_ticket -no_cache` with the local RSA-2048 key, measured in the same run by the same Node client. The comparison with nginx for TLS 1.2 ECDHE is in the resumption section below ("full" rows, same client).',
            '',
            ...(t12Note ? [`- ${t12Note}`, ''] : []),
            ...tls12Tabs.flatMap((t) => [renderMarkdown(t), '']),
          ]
        : []),
      ...(groupsTab
        ? [
            '## Post-quantum key exchange: X25519MLKEM768 vs X25519',
            '',
            'How to read this: the same engine and client, full TLS 1.3 handshakes, the client offering only the group under test (the server prefers the hybrid; [TLS engine](tls-engine.md#key-exchange-groups)). The difference row is what the hybrid adds per handshake on each side: an ML-KEM-768 encapsulation (server) or key generation and decapsulation (client), and 1.2 KB more each way.',
            '',
            renderMarkdown(groupsTab),
            '',
          ]
        : []),
      ...(resumeTab
        ? [
            '## Resumed handshakes',
            '',
            `How to read this: the same kind of connection as above (new TCP connection, one small request, close), but the client offers the session ticket of its previous connection and every server accepts tickets, so a resumed handshake needs no private-key operation and no certificate. "share resumed" says how many handshakes really resumed and who counted them (for the edge its \`/metrics\` and the key service: key ops = full handshakes = the clients' first connections). "resumed ÷ full" is how much cheaper resumption is on that server. Target: edge resumed ≥ 1.0× nginx.`,
            '',
            ...(resumeNote ? [`- ${resumeNote}`, ''] : []),
            renderMarkdown(resumeTab),
            '',
          ]
        : []),
      ...(kaTab
        ? [
            '## HTTP requests over kept-alive connections',
            '',
            'How to read this: a few long-lived connections, each carrying the same fixed number of small GETs, so the TLS handshake is out of the picture and what counts is the cost per request: decrypting the request, parsing it, one request to the origin over a pooled keep-alive connection, relaying and encrypting the answer. Both proxies forward to the same origin process; "origin direct" is that origin without TLS or proxy — the ceiling, not a competitor. The issue sets no target for this figure.',
            '',
            ...proxyNotes.filter((n) => n.startsWith('**Requests')).map((n) => `- ${n}`),
            '',
            renderMarkdown(kaTab),
            '',
          ]
        : []),
      ...(bulkTab
        ? [
            '## Bulk throughput',
            '',
            'How to read this: one, then a few connections each download a large body that the origin streams; MB/s is the total over the run\'s wall time. What limits it is the proxy\'s per-byte cost — AES-GCM, copies between the origin socket and the TLS records, backpressure — so "server CPU ms/MB" explains the rates. Target: edge ≥ 0.7× nginx.',
            '',
            ...proxyNotes.filter((n) => n.startsWith('**Bulk')).map((n) => `- ${n}`),
            '',
            renderMarkdown(bulkTab),
            '',
          ]
        : []),
      ...(own
        ? [
            "## The edge's own latency per handshake, key operation excluded",
            '',
            `How to read this: at concurrency 1 the edge's handshake is the client's work + TCP + the edge's own TLS and proxy work + the key operation. Taking out the key operation that the edge logged for each handshake leaves "handshake − key op"; a server with a local key pays the same client and TCP time, so the same figure for nginx (its handshake minus one local RSA signature) is the floor, and the difference is **what the keyless edge itself adds** — computed as edge (handshake − key op) p50 − nginx 1 worker (handshake − signature) p50. Target: under 1 ms p50.${own.addedOverNginx !== undefined ? ` This run: ${fmtMs(own.edgeOwnP50)} ms − nginx ${fmtMs((own.edgeOwnP50 ?? 0) - own.addedOverNginx)} ms = **${fmtMs(own.addedOverNginx)} ms** (${own.addedOverNginx < 1 ? 'met' : 'not met'}).` : ''}`,
            '',
            renderMarkdown(own.table),
            '',
            ...(phases ? [renderMarkdown(phaseTable(phases)), ''] : []),
          ]
        : []),
      renderMarkdown(mTable),
      '',
      ...(keyServiceText
        ? [
            '### The key-service path alone (test/bench/key-service.ts)',
            '',
            "The edge's key-service client driven directly, without TLS: the same CertificateVerify signature through the local Lambda endpoint, through the client's Lambda target alone, with the handler in-process, and the backend alone, for the `file` and `kms` backends.",
            '',
            '```text',
            keyServiceText,
            '```',
            '',
          ]
        : []),
      '## Method',
      '',
      `- **Load**: ${load.tool === 'h2load' ? `\`h2load --h1 -n N -c C -t 1 -H 'Connection: close'\` (nghttp2-client)` : 'a Node client pool (h2load was not installed)'}; each request opens a new connection. For each target and concurrency a calibration run (also the warm-up) picks N so that one run lasts ~${CONFIG.runSeconds} s, then ${CONFIG.reps} runs are measured and the median is reported. All targets are up at the same time (idle ones cost nothing) and the measured runs take turns, target after target, in an order that rotates each round, so a change in background load touches every target alike. h2load resumes sessions whenever a server allows it, so for full handshakes every server allows none, and the server side counts: the edge through the key service's \`/_local/stats\` invocation delta (minus health pings) and the edge's \`handshake\` log lines (\`resumed\`), the engine-only server through its signer's count, nginx through \`$ssl_session_reused\` in its access log; \`openssl s_server -no_ticket -no_cache\` cannot resume.`,
      "- **Targets**: the edge of `keyless dev` (edge, key-service and dev-stack processes: the real key-service handler behind the local Lambda endpoint, the local KMS with an RSA_2048 `SIGN_VERIFY` key, the demo origin; the request is proxied to the origin's `/healthz`); the engine alone (`TlsServer` with the in-process signer of the unit tests, one process, answering itself); `openssl s_server -tls1_3 -no_ticket -no_cache -HTTP`; nginx with `ssl_session_cache off; ssl_session_tickets off; keepalive_timeout 0;` and 1 or 2 workers. All use an RSA-2048 certificate (+ CA), `rsa_pss_rsae_sha256`, X25519, loopback only.",
      `- **Resumption**: a second local stack with session tickets on (the edge's default: fleet ticket keys from the key service), \`openssl s_server\` without \`-no_ticket\` (still \`-no_cache\`), nginx 1 worker with \`ssl_session_tickets on; ssl_session_ticket_key <80-byte file>; ssl_session_cache off;\`, at c=${cMax}. TLS 1.3 with h2load (it resumes by itself: each client offers the ticket of its previous connection), TLS 1.2 with the Node client pool (\`session\` of the previous connection, or none for the "full" rows).`,
      `- **Proxying**: a separate origin process (test/bench/bench-origin.ts: \`/small\` 3 bytes, \`/bulk/<n>\` streamed); a second edge process of that stack pointed at it; nginx 1 worker with \`proxy_pass\` to an \`upstream\` with \`keepalive 64\`, \`proxy_http_version 1.1\`, HTTP/2 on the listener, \`proxy_max_temp_file_size 0\`, no access log. Keep-alive: h2load \`-c ${CONFIG.keepAliveConnections} -m 1 --h1\` and \`-c ${CONFIG.keepAliveConnections} -m 10\` (HTTP/2), ${CONFIG.requestsPerConnection} requests per connection. Bulk: curl \`--http1.1 --tls13-ciphers TLS_AES_128_GCM_SHA256\`, ${fmt(CONFIG.bulkBytes / 2 ** 20)} MiB per run over ${CONFIG.bulkConnections.join(' or ')} connection(s).`,
      '- **Latency**: a Node (OpenSSL) client in the benchmark process, one connection at a time, certificate verified, no session reuse; 10 warm-up connections, then up to ' +
        `${CONFIG.latencyCount} measured (at most ${CONFIG.latencyMaxMs / 1000} s).` +
        " The edge's `keyOperationMs` and the key service's `latencyMs`/`backendMs` come from their JSON log lines.",
      "- **CPU**: user+system time of every server process from `/proc/<pid>/stat` before and after each run; the client's from its shell's `cutime`/`cstime`; machine load from `/proc/stat`.",
      `- **Profiles**: ${CONFIG.profile ? 'after the measurements, one more run at the highest concurrency of a fresh local stack and of the engine alone, with the V8 sampling profiler started by SIGUSR2 in each Node process (loaded through `NODE_OPTIONS=--require dist/test/bench/profile-preload.js`) once the warm-up is done; these runs are not part of any figure above.' : 'skipped in this run.'}`,
      '- Client and servers share the same cores, so absolute numbers are lower than on a dedicated machine; the ratios are what carries over. Nothing here runs in `npm test`.',
      '',
      '## Reproduce',
      '',
      '```sh',
      'apt-get install -y --no-install-recommends nghttp2-client nginx librsvg2-bin curl   # h2load, nginx reference, PNG chart, bulk client',
      'npm run bench                                       # everything, ~10 minutes, writes this file',
      'KEYLESS_BENCH_QUICK=1 KEYLESS_BENCH_ONLY=resume,bulk npm run bench   # short partial run, prints only',
      '```',
      '',
      "Missing tools are skipped with a printed reason (no h2load → Node client pool, no keep-alive rows; no nginx → no nginx rows; no rsvg-convert → SVG chart only). Sections: `KEYLESS_BENCH_ONLY` takes a comma-separated list of `full`, `latency`, `tls12`, `resume`, `keepalive`, `bulk`, `profile`, `keyservice`; `KEYLESS_BENCH_QUICK=1` shortens every run; both print only, unless `BENCH_DOCS_DIR=<folder>` says where to write the report. Knobs: `BENCH_RUN_SECONDS`, `BENCH_REPS`, `BENCH_CONCURRENCY`, `BENCH_LATENCY_COUNT`, `BENCH_BUDGET_SECONDS`, `BENCH_KEEPALIVE_REQUESTS` (per connection), `BENCH_BULK_MIB` (per run), `BENCH_NO_DOCS=1`, `BENCH_PROFILE=0`, `BENCH_KEEP_PROFILES=1`, `BENCH_LOADGEN=node`, `BENCH_KEY_SERVICE=0` (and the key-service section's own `BENCH_KS_*`), `BENCH_TLS12=0`.",
      '',
    ];
    if (problems.length) md.splice(4, 0, '> **This run had problems:**', ...problems.map((p) => `> - ${p}`), '');
    const chartNote = writeDocs(md.join('\n'), renderChart(results, facts.date, summary, resume, proxy));
    say(`\nwrote ${path.join(DOCS_DIR ?? 'docs', 'benchmarks.md')} (${chartNote})`);
  }
  say(`\ndone in ${(elapsed() / 1000).toFixed(0)} s`);
  if (problems.length) {
    say(`\nPROBLEMS:\n${problems.map((p) => `- ${p}`).join('\n')}`);
    return 1;
  }
  return 0;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    say(`\n${sig}: stopping the servers started by the benchmark`);
    void stopAll().then(() => process.exit(130));
  });
}

main().then(
  (code) => stopAll().then(() => process.exit(code)),
  (e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    void stopAll().then(() => process.exit(1));
  },
);
