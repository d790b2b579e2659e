/**
 * `npm run bench`: full TLS 1.3 handshake rate and latency of the keyless edge, measured in one run
 * against references on the same machine, with the results printed and written to
 * docs/benchmarks.md (+ a chart). Not part of `npm test`; nothing here asserts timings.
 *
 *   1. new-connection rate (one small HTTP/1.1 request per connection, `Connection: close`) at fixed
 *      client concurrencies with h2load `--h1 -n N -c C -t 1` (Node client pool if h2load is missing),
 *      against: the edge of the local stack (`keyless dev`), the engine alone with an in-process
 *      signer, `openssl s_server -no_ticket -no_cache`, nginx with 1 and 2 workers (no session
 *      cache, no tickets, no keep-alive). Full handshakes are counted on the server side.
 *   2. handshake latency at concurrency 1 (Node/OpenSSL client), and for the edge the key-operation
 *      latency as the edge, the key-service handler and its KMS call each see it (from the JSON logs).
 *   3. CPU milliseconds per handshake of every process involved (/proc), and the machine's load.
 *
 * Environment: BENCH_RUN_SECONDS (target length of one measured run, default 3), BENCH_REPS
 * (default 3), BENCH_CONCURRENCY (default "8,32"), BENCH_LATENCY_COUNT (default 300),
 * BENCH_BUDGET_SECONDS (skip what would start after this, default 300), BENCH_NO_DOCS=1 (print only),
 * BENCH_PROFILE=0 (no sampled CPU profiles), BENCH_KEEP_PROFILES=1 (keep the .cpuprofile files),
 * BENCH_LOADGEN=node (the Node client pool even when h2load is installed), BENCH_KEY_SERVICE=0 (skip
 * the key-service path section, test/bench/key-service.ts, which has its own BENCH_KS_* knobs),
 * BENCH_TLS12=0 (skip section 4).
 *   4. full TLS 1.2 handshakes/s (ECDHE-RSA and RSA key exchange, AES128-GCM) of the local stack in
 *      sealed custody next to `openssl s_server -tls1_2 -no_ticket -no_cache`, Node client pool
 *      (h2load cannot cap the version), at the highest concurrency, with CPU per process and the
 *      key operation's latency; the key service's invocation delta verifies every handshake was full.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeTestPki } from '../helpers/certs';
import { measureLatency, LatencySample } from './latency';
import { LoadOptions, LoadResult, LoadTool, pickLoadTool, runLoad } from './loadgen';
import { HAVE_PROC, startCpuWindow } from './proc';
import { CATEGORIES, ProfileSummary, summarizeProfile } from './profile';
import { barChartSvg, fmt, fmtMs, pct, ratio, renderMarkdown, renderText, Table } from './report';
import { median, summarize, Summary } from './stats';
import { ReferencePki, startEdgeTarget, startEngineTarget, startNginxTarget, startSServerTarget, Target, WindowCheck } from './targets';
import { have, missingReason, versionOf } from './tools';

// ---------------------------------------------------------------------------------------------
// Configuration

function envNum(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return process.env[name] && Number.isFinite(v) && v > 0 ? v : fallback;
}

const CONFIG = {
  runSeconds: envNum('BENCH_RUN_SECONDS', 3),
  reps: Math.round(envNum('BENCH_REPS', 3)),
  concurrency: (process.env.BENCH_CONCURRENCY ?? '8,32')
    .split(',')
    .map((s) => Number(s.trim()))
    .filter((n) => Number.isInteger(n) && n > 0),
  latencyCount: Math.round(envNum('BENCH_LATENCY_COUNT', 300)),
  latencyMaxMs: 6000,
  profile: process.env.BENCH_PROFILE !== '0',
  keyService: process.env.BENCH_KEY_SERVICE !== '0',
  tls12: process.env.BENCH_TLS12 !== '0',
  /** The whole run (after the build) should end by then: `npm run bench` stays under ~6 minutes. */
  hardStopMs: 330_000,
  budgetMs: envNum('BENCH_BUDGET_SECONDS', 300) * 1000,
  writeDocs: process.env.BENCH_NO_DOCS !== '1',
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
  skipped?: string;
  error?: string;
}

const handshakes = (cell: Cell): number => cell.runs.reduce((a, r) => a + r.succeeded, 0);
const rateMedian = (cell: Cell | undefined): number | undefined => (cell && cell.runs.length ? median(cell.runs.map((r) => r.rate)) : undefined);
const cpuTotalPerHs = (cell: Cell): number => Object.values(cell.cpu).reduce((a, b) => a + b, 0) / Math.max(1, handshakes(cell));
const clientCpuPerHs = (cell: Cell): number => cell.runs.reduce((a, r) => a + r.clientCpuMs, 0) / Math.max(1, handshakes(cell));
const cellOf = (r: TargetResult | undefined, c: number): Cell | undefined => r?.cells.find((x) => x.c === c && x.runs.length > 0);

// ---------------------------------------------------------------------------------------------
// Measurement

const RUNNER = '(bench runner)';

function emptyCell(c: number): Cell {
  return { c, n: 0, runs: [], checks: [], cpu: {}, machineBusy: [], runnerMs: 0, machineBusyMs: 0, machineTotalMs: 0, verified: 'n/a' };
}

/** Share of the machine's CPU during the runs that none of the measured processes used. */
function foreignShare(cell: Cell): number {
  const ours = Object.values(cell.cpu).reduce((a, b) => a + b, 0) + cell.runs.reduce((a, r) => a + r.clientCpuMs, 0) + cell.runnerMs;
  return cell.machineTotalMs > 0 ? Math.max(0, cell.machineBusyMs - ours) / cell.machineTotalMs : NaN;
}

function verify(run: LoadResult, check: WindowCheck): 'ok' | 'mismatch' | 'n/a' {
  if (check.fullHandshakes === undefined) return 'n/a';
  return run.failed === 0 && check.fullHandshakes === run.succeeded && (check.resumed ?? 0) === 0 ? 'ok' : 'mismatch';
}

interface Active {
  target: Target;
  result: TargetResult;
  /** Extra load-generator options (the TLS 1.2 section: version cap and suite). */
  load?: Pick<LoadOptions, 'tls12Ciphers'>;
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
    say(`  ${a.target.label}: calibration ${fmt(cal.rate)}/s → ${cell.n} connections per run${cell.error ? ` (${cell.error})` : ''}`);
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
  const v = verify(run, check);
  cell.verified = cell.verified === 'mismatch' || v === 'mismatch' ? 'mismatch' : v === 'ok' ? 'ok' : cell.verified;
  say(`  run ${rep + 1}/${CONFIG.reps} ${t.label}: ${fmt(run.rate)} handshakes/s (${run.succeeded}/${run.requested} ok in ${run.seconds.toFixed(2)} s${run.failed ? `, ${run.failed} FAILED` : ''}) — ${check.detail}${v === 'mismatch' ? '  ✗ MISMATCH' : v === 'ok' ? '  ✓' : ''}`);
}

function mergeChecks(a: WindowCheck | undefined, b: WindowCheck): WindowCheck {
  if (!a) return b;
  return {
    detail: b.detail,
    keyOperationMs: [...(a.keyOperationMs ?? []), ...(b.keyOperationMs ?? [])],
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
  await measureRates(active, tool, CONFIG.concurrency);
  await measureLatencies(active);
}

async function measureRates(active: Active[], tool: LoadTool, concurrencies: number[]): Promise<void> {
  for (const c of concurrencies) {
    say(`\n== concurrency ${c}`);
    const cells = new Map<Active, Cell>();
    for (const a of active) cells.set(a, await calibrate(a, tool, c));
    for (let rep = 0; rep < CONFIG.reps; rep++) {
      if (rep > 0 && elapsed() > CONFIG.budgetMs) {
        say(`  the time budget (${CONFIG.budgetMs / 1000} s) is spent: ${rep} run${rep === 1 ? '' : 's'} per target at c=${c}`);
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
        const got = await measureLatency({ port: t.port, path: t.path, ca: t.caPem, count: Math.ceil(CONFIG.latencyCount / rounds), warmup, maxMs: CONFIG.latencyMaxMs / rounds });
        a.result.latencyWindow = mergeChecks(a.result.latencyWindow, await window(got.length + warmup));
        samples.set(a, [...(samples.get(a) ?? []), ...got]);
      } catch (e) {
        say(`  ${t.label}: latency probe failed: ${(e as Error).message}`);
      }
    }
  }
  for (const a of active) {
    const got = samples.get(a) ?? [];
    if (!got.length) continue;
    a.result.latency = { handshake: summarize(got.map((x) => x.handshakeMs)), total: summarize(got.map((x) => x.totalMs)) };
    say(`  ${a.target.label}: handshake p50 ${fmtMs(a.result.latency.handshake.p50)} ms, p99 ${fmtMs(a.result.latency.handshake.p99)} ms over ${got.length} connections`);
  }
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
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = spawnSync('git', ['status', '--porcelain'], { cwd: REPO_ROOT, encoding: 'utf8' }).stdout.trim() !== '';
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
    loadAverage: os.loadavg().map((v) => v.toFixed(2)).join(' '),
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
  const rsaSignPerSec = opsPerSecond(() => crypto.sign('sha256', msg, { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST }));
  const peer = crypto.generateKeyPairSync('x25519').publicKey;
  const x25519PerSec = opsPerSecond(() => {
    const { privateKey } = crypto.generateKeyPairSync('x25519');
    crypto.diffieHellman({ privateKey, publicKey: peer });
  });
  const raw = peer.export({ format: 'der', type: 'spki' }).subarray(-32);
  const der = Buffer.concat([Buffer.from('302a300506032b656e032100', 'hex'), raw]);
  const x = raw.toString('base64url');
  const x25519ImportDerUs = 1e6 / opsPerSecond(() => crypto.createPublicKey({ key: der, format: 'der', type: 'spki' }), 300);
  const x25519ImportJwkUs = 1e6 / opsPerSecond(() => crypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' }), 300);
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
async function profiledRun(label: string, start: (env: Record<string, string>) => Promise<Target>, tool: LoadTool, c: number, rate: number, cpuPerHs: (group: string) => number | undefined, into: Profiles): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-bench-prof-'));
  const preload = path.join(__dirname, 'profile-preload.js');
  const env = { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${JSON.stringify(preload)}`.trim(), BENCH_CPU_PROFILE_DIR: dir };
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
    const run = await runLoad(tool, { url: t.url, n: Math.max(2 * c, 100, Math.round(rate * CONFIG.runSeconds)), c, timeoutMs: 120_000 });
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
    into.byRole[role[1]] = { busyMs: perHs(sum.busyMs), byCategory: Object.fromEntries(Object.entries(sum.byCategory).map(([k, v]) => [k, perHs(v)])) as ProfileSummary['byCategory'], topFunctions: sum.topFunctions.map((x) => ({ name: x.name, ms: perHs(x.ms) })) };
  }
  into.notes.push(`${label}: ${handshakesDone} handshakes profiled, ${files.length} profile${files.length === 1 ? '' : 's'}`);
  if (process.env.BENCH_KEEP_PROFILES === '1') into.notes.push(`${label}: profiles kept in ${dir}`);
  else fs.rmSync(dir, { recursive: true, force: true });
}

async function profilePhase(pki: ReferencePki, tool: LoadTool, results: TargetResult[]): Promise<Profiles | undefined> {
  const c = CONFIG.concurrency[CONFIG.concurrency.length - 1];
  const out: Profiles = { c, handshakes: 0, byRole: {}, notes: [] };
  const rateOf = (id: string): number => rateMedian(cellOf(results.find((r) => r.id === id), c)) ?? 100;
  const cpuOf = (id: string) => (group: string): number | undefined => {
    const cell = cellOf(results.find((r) => r.id === id), c);
    return cell && cell.cpu[group] !== undefined ? cell.cpu[group] / Math.max(1, handshakes(cell)) : undefined;
  };
  say(`\n== sampled CPU profiles (separate runs at c=${c}; BENCH_PROFILE=0 skips them)`);
  try {
    await profiledRun('edge stack', (env) => startEdgeTarget(env), tool, c, rateOf('edge'), cpuOf('edge'), out);
    await profiledRun('engine only', (env) => startEngineTarget(pki, env), tool, c, rateOf('engine'), cpuOf('engine'), out);
  } catch (e) {
    say(`  profiling failed: ${(e as Error).message}`);
  }
  for (const n of out.notes) say(`  ${n}`);
  return Object.keys(out.byRole).length ? out : undefined;
}

function profileTables(p: Profiles): Table[] {
  const roles = ['edge', 'key service', 'kms+origin', 'engine only'].filter((r) => p.byRole[r]);
  const rows = CATEGORIES.filter((cat) => roles.some((r) => p.byRole[r].byCategory[cat] >= 0.005)).map((cat) => [cat, ...roles.map((r) => fmtMs(p.byRole[r].byCategory[cat]))]);
  rows.push(['total (CPU ms/hs of the process, /proc)', ...roles.map((r) => fmtMs(p.byRole[r].busyMs))]);
  const top: string[][] = [];
  for (const r of roles) for (const f of p.byRole[r].topFunctions.slice(0, 5)) top.push([r, f.name, fmtMs(f.ms)]);
  return [
    {
      title: `Sampled CPU profile, c=${p.c} (separate run; CPU ms per handshake by category and process)`,
      head: ['category', ...roles],
      rows,
      note: 'V8 sampling profiler (0.5 ms) on each Node process\'s main thread, self time grouped by what the function does (native frames count with their caller), the profiler\'s own work left out. The shares are applied to the process\'s CPU ms per handshake measured without the profiler at the same concurrency (table above), so columns add up to it; work on other threads (libuv pool, GC helpers) is spread in proportion. The edge, key-service and kms+origin columns come from one run of the local stack, the engine-only column from one run of the engine with its in-process signer.',
    },
    { title: 'Top functions by self time (CPU ms per handshake)', head: ['process', 'function', 'ms/hs'], rows: top, left: [0, 1] },
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
    { server: 'edge', name: 'keyless edge (sealed custody)', start: () => startEdgeTarget({ KEYLESS_DEV_CUSTODY: 'sealed' }, { id: 'edge-tls12', label: 'keyless edge (sealed custody)' }) },
    { server: 's_server', name: 'openssl s_server -tls1_2', needs: 'openssl', start: () => startSServerTarget(pki, { tls12: true }) },
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
        out.rows.push({ server: sv.server, kx: suite.kx, cipher: suite.cipher, op: sv.server === 'edge' ? suite.op : undefined, result });
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
  const okOps = cell.runs.every((r, i) => (cell.checks[i]?.keyOps?.[row.op!] ?? 0) === r.succeeded && Object.keys(cell.checks[i]?.keyOps ?? {}).every((k) => k === row.op));
  return okOps ? `✓ all full (${row.op} = handshakes)` : `✗ key ops ≠ handshakes (${cell.checks.map((x) => JSON.stringify(x.keyOps ?? {})).join(' ')})`;
}

function tls12Tables(t: Tls12Results): Table[] {
  const find = (server: Tls12Row['server'], kx: Tls12Row['kx']): Tls12Row | undefined => t.rows.find((r) => r.server === server && r.kx === kx);
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
      Object.entries(cell.cpu).map(([k, v]) => `${k} ${fmtMs(v / handshakes(cell))}`).join(' + '),
      fmtMs(clientCpuPerHs(cell)),
      tls12Check(r, cell),
    ]);
  }
  // Ratios between the suites and against TLS 1.3 (same server, same client kind).
  const ratios: string[][] = [];
  for (const server of ['edge', 's_server'] as const) {
    const e = cellOf(find(server, 'ECDHE-RSA')?.result, t.c);
    const k = cellOf(find(server, 'RSA')?.result, t.c);
    if (e && k) ratios.push([`${server === 'edge' ? 'keyless edge' : 'openssl s_server'}: RSA kx ÷ ECDHE-RSA`, ratio(rateMedian(k), rateMedian(e)), ratio(cpuTotalPerHs(k), cpuTotalPerHs(e))]);
  }
  for (const kx of ['ECDHE-RSA', 'RSA'] as const) {
    const e = cellOf(find('edge', kx)?.result, t.c);
    const o = cellOf(find('s_server', kx)?.result, t.c);
    if (e && o) ratios.push([`${kx === 'RSA' ? 'RSA key exchange' : kx}: keyless edge ÷ s_server`, ratio(rateMedian(e), rateMedian(o)), ratio(cpuTotalPerHs(e), cpuTotalPerHs(o))]);
  }
  const tables: Table[] = [
    {
      title: `Full TLS 1.2 handshakes per second (c=${t.c}; new connection + one small HTTP/1.1 request each)`,
      head: ['target, key exchange (suite)', 'hs/s (min–max)', 'edge ÷ s_server', 'server CPU ms/hs', 'by process', 'client ms/hs', 'check (server side)'],
      rows,
      left: [0, 4, 6],
      note: `Median of ${CONFIG.reps} runs of ~${CONFIG.runSeconds} s each, all four rows interleaved in rotating order. Client: the Node client pool (\`tls.connect\`, \`maxVersion: 'TLSv1.2'\`, one suite offered, no session reuse) for every row — h2load cannot cap the version — so these rates are not comparable with the TLS 1.3 table's h2load rates. The edge runs the local stack in sealed custody (\`KEYLESS_DEV_CUSTODY=sealed\`): ECDHE-RSA costs one key-service \`tls12.server_key_exchange\` signature, RSA key exchange one \`tls12.rsa_master_secret\` (the key service decrypts the premaster with the unsealed key and returns the master secret). The check compares, per run, the key service's \`/_local/stats\` invocation delta (minus health pings) and its logged ops with the client's successful connections. s_server: \`-tls1_2 -no_ticket -no_cache\`, the same RSA-2048 key as in the TLS 1.3 table.`,
    },
  ];
  if (ratios.length) tables.push({ title: 'TLS 1.2 ratios (rate, and CPU ms per handshake of the server side)', head: ['comparison', 'hs/s ratio', 'server CPU/hs ratio'], rows: ratios });
  const lat: string[][] = [];
  for (const r of t.rows.filter((x) => x.server === 'edge')) {
    const cell = cellOf(r.result, t.c);
    if (!cell) continue;
    const k = summarize(cell.checks.flatMap((x) => x.keyOperationMs ?? []));
    const h = summarize(cell.checks.flatMap((x) => x.keyServiceHandlerMs ?? []));
    const m = summarize(cell.checks.flatMap((x) => x.kmsCallMs ?? []));
    lat.push([r.result.label, r.op ?? '', `${fmtMs(k.p50)} / ${fmtMs(k.p99)}`, `${fmtMs(h.p50)} / ${fmtMs(h.p99)}`, `${fmtMs(m.p50)} / ${fmtMs(m.p99)}`, fmtMs(k.p50 - h.p50), pct(median(cell.machineBusy))]);
  }
  if (lat.length)
    tables.push({
      title: `Where a keyless TLS 1.2 handshake waits (c=${t.c}, ms p50 / p99, from the JSON logs)`,
      head: ['row', 'key-service op', 'key op as the edge sees it', 'key-service handler', 'its backend', 'edge↔key service hop (p50 diff)', 'machine busy'],
      rows: lat,
      left: [0, 1],
      note: 'backend = the handler\'s backendMs (sealed custody: the RSA private-key operation with the unsealed key, the KMS Decrypt that unseals the key runs once per key-service container, before these runs).',
    });
  return tables;
}

function tls12Interpretation(t: Tls12Results, micro: Micro | undefined, facts: Facts): string | undefined {
  const get = (server: Tls12Row['server'], kx: Tls12Row['kx']): Cell | undefined => cellOf(t.rows.find((r) => r.server === server && r.kx === kx)?.result, t.c);
  const parts: string[] = [];
  for (const kx of ['ECDHE-RSA', 'RSA'] as const) {
    const e = get('edge', kx);
    const o = get('s_server', kx);
    if (!e) continue;
    const hs = handshakes(e);
    const procs = Object.entries(e.cpu).map(([k, v]) => `${k} ${fmtMs(v / hs)} ms`).join(', ');
    parts.push(
      `${kx === 'RSA' ? 'RSA key exchange' : 'ECDHE-RSA'}: the edge completes ${fmt(rateMedian(e))} full handshakes/s` +
        (o ? ` against ${fmt(rateMedian(o))}/s for s_server (${ratio(rateMedian(e), rateMedian(o))}); per handshake the stack spends ${fmtMs(cpuTotalPerHs(e))} ms of CPU (${procs}) against s_server's ${fmtMs(cpuTotalPerHs(o))} ms (${ratio(cpuTotalPerHs(e), cpuTotalPerHs(o))})` : ` (${procs} CPU ms per handshake)`) +
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
    where.push(`${kx === 'RSA' ? 'RSA kx' : kx}: edge process ${fmtMs((e.cpu.edge ?? 0) / hs)} ms, key service + local KMS/origin ${fmtMs(ks)} ms of CPU per handshake; the key op waits ${fmtMs(k.p50)} ms p50 at the edge of which the handler accounts for ${fmtMs(h.p50)} ms`);
  }
  const sign = micro ? ` For scale, one RSA-2048 private-key operation (PSS sign; the premaster decrypt is the same exponentiation) costs ${fmtMs(1000 / micro.rsaSignPerSec)} ms of CPU in Node.` : '';
  return `**Full TLS 1.2 handshakes (c=${t.c}, Node client for every row).** ${parts.join(' ')} Where the time goes — ${where.join('; ')}.${sign}`;
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
      row.push(cell ? `${fmt(rate)} (${fmt(Math.min(...rates))}–${fmt(Math.max(...rates))})` : r.skipped ? 'skipped' : r.cells.find((x) => x.c === c)?.error ? 'failed' : '–');
      row.push(ratio(rateMedian(cellOf(edge, c)), rate));
    }
    const cpuCell = cellOf(r, cMax);
    row.push(cpuCell ? fmtMs(cpuTotalPerHs(cpuCell)) : '–', cpuCell ? ratio(edgeCpu, cpuTotalPerHs(cpuCell)) : '–');
    const v = r.cells.map((x) => x.verified);
    row.push(v.includes('mismatch') ? '✗ mismatch' : v.length && v.every((x) => x === 'ok') ? '✓ all full' : v.some((x) => x === 'ok') ? '✓ (partial)' : 'n/a');
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
      rows.push([r.label, String(cell.c), fmtMs(cpuTotalPerHs(cell)), parts.length > 1 ? parts.join(' + ') : '', fmtMs(clientCpuPerHs(cell)), fmtMs(cell.runnerMs / hs), pct(median(cell.machineBusy)), pct(foreignShare(cell))]);
    }
  }
  return {
    title: 'CPU time per handshake (ms of CPU, from /proc) and machine load',
    head: ['target', 'c', 'server ms/hs', 'by process', 'client ms/hs', 'bench runner ms/hs', 'machine busy', 'other processes'],
    rows,
    left: [0, 3],
    note: `"machine busy" is the share of all ${os.cpus().length} cores' time that was not idle during the runs (client and server share the machine); "other processes" is the share used by processes outside this benchmark (noise: anything above a few % means the machine was not quiet). The bench runner receives the local stack's log lines.`,
  };
}

function latencyTable(results: TargetResult[], edge: TargetResult | undefined): Table {
  const rows = results
    .filter((r) => r.latency)
    .map((r) => [r.label, fmtMs(r.latency!.handshake.p50), fmtMs(r.latency!.handshake.p99), fmtMs(r.latency!.total.p50), fmtMs(r.latency!.total.p99), String(r.latency!.handshake.n), ratio(edge?.latency?.handshake.p50, r.latency!.handshake.p50)]);
  return {
    title: 'Latency at concurrency 1 (ms; Node/OpenSSL client, certificate verified, no resumption)',
    head: ['target', 'handshake p50', 'handshake p99', 'connect→response p50', 'connect→response p99', 'n', 'edge ÷ target (p50 hs)'],
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
  if (edge.latencyWindow) rows.push({ window: 'c=1 (latency probe)', check: edge.latencyWindow, clientHandshakeP50: edge.latency?.handshake.p50 });
  for (const cell of edge.cells) {
    if (!cell.runs.length) continue;
    const merged: WindowCheck = { detail: '', keyOperationMs: cell.checks.flatMap((c) => c.keyOperationMs ?? []), keyServiceHandlerMs: cell.checks.flatMap((c) => c.keyServiceHandlerMs ?? []), kmsCallMs: cell.checks.flatMap((c) => c.kmsCallMs ?? []) };
    rows.push({ window: `c=${cell.c} (throughput runs)`, check: merged });
  }
  const table: Table = {
    title: 'Where a keyless handshake waits: the key operation, from the JSON logs (ms, p50 / p99)',
    head: ['window', 'client handshake p50', 'key op as the edge sees it', 'key-service handler', 'its KMS call', 'edge↔key service hop (p50 diff)', 'key op share of handshake (p50)'],
    rows: rows.map((b) => {
      const k = summarize(b.check.keyOperationMs ?? []);
      const h = summarize(b.check.keyServiceHandlerMs ?? []);
      const m = summarize(b.check.kmsCallMs ?? []);
      return [b.window, fmtMs(b.clientHandshakeP50), `${fmtMs(k.p50)} / ${fmtMs(k.p99)}`, `${fmtMs(h.p50)} / ${fmtMs(h.p99)}`, `${fmtMs(m.p50)} / ${fmtMs(m.p99)}`, fmtMs(k.p50 - h.p50), b.clientHandshakeP50 ? pct(k.p50 / b.clientHandshakeP50) : '–'];
    }),
    note: 'key op = the edge key-service client call (Lambda Invoke over HTTP + response checks + signature verification); handler = the key-service Lambda handler\'s own latencyMs; KMS call = its backendMs (AWS SDK KMS client → local KMS endpoint → RSA-PSS sign).',
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
    const comps = [engine, ...refs].filter((r) => cellOf(r, cMax)).map((r) => `${ratio(eRate, rateMedian(cellOf(r, cMax)))} of ${r!.label} (${fmt(rateMedian(cellOf(r, cMax)))}/s)`);
    const cpuRefs = [engine, ...refs].filter((r) => cellOf(r, cMax)).map((r) => `${ratio(cpuTotalPerHs(eCell), cpuTotalPerHs(cellOf(r, cMax)!))} that of ${r!.label}`);
    out.push(
      `**Throughput.** At c=${cMax} the keyless edge completes ${fmt(eRate)} full handshakes/s${comps.length ? `: ${comps.join(', ')}` : ''}.` +
        (cpuRefs.length ? ` Measured in CPU time per handshake, which background load hardly moves, the local keyless stack costs ${cpuRefs.join(', ')}.` : ''),
    );
    const hs = handshakes(eCell);
    const parts = Object.entries(eCell.cpu).map(([k, v]) => `${k} ${fmtMs(v / hs)} ms`);
    const busy = median(eCell.machineBusy);
    out.push(
      (busy >= 0.85
        ? `**CPU, not waiting, is the limit on this machine.** The ${facts.cores} cores were ${pct(busy)} busy during the edge runs. `
        : `**The edge runs left CPU idle** (${pct(busy)} of ${facts.cores} cores busy): at c=${cMax} the edge is bounded by how long each handshake waits (key operation), not by CPU. `) +
        `Every handshake costs the stack ${fmtMs(cpuTotalPerHs(eCell))} ms of CPU (${parts.join(', ')}) plus ${fmtMs(clientCpuPerHs(eCell))} ms in the client` +
        (micro ? `, while the one RSA-2048 PSS signature it needs costs ${fmtMs(1000 / micro.rsaSignPerSec)} ms (Node/OpenSSL: ${fmt(micro.rsaSignPerSec)} signatures per CPU second).` : '.'),
    );
    const ref = refs.map((r) => ({ r, cell: cellOf(r, cMax) })).filter((x) => x.cell);
    if (ref.length) out.push(`For comparison the references spend ${ref.map((x) => `${fmtMs(cpuTotalPerHs(x.cell!))} ms (${x.r.label})`).join(', ')} per handshake — essentially the signature, the key exchange and the kernel's TCP work.`);
    const engCell = cellOf(engine, cMax);
    const edgeMs = eCell.cpu.edge !== undefined ? eCell.cpu.edge / hs : undefined;
    if (engCell && edgeMs !== undefined && micro) {
      const engMs = cpuTotalPerHs(engCell);
      const engOwn = engMs - 1000 / micro.rsaSignPerSec;
      out.push(
        `**Engine vs. hop.** Alone with an in-process signer the engine process spends ${fmtMs(engMs)} ms per handshake, ~${fmtMs(engOwn)} ms of it outside the RSA signature (X25519, HKDF, AES-GCM, records, certificate message, JS). The edge process spends ${fmtMs(edgeMs)} ms without signing anything, so ~${fmtMs(edgeMs - engOwn)} ms per handshake in the edge goes to the key-service client (AWS SDK Lambda Invoke: SigV4, middleware, HTTP, JSON, signature verification), the HTTP proxy hop to the origin and a JSON log line. The key service (${fmtMs((eCell.cpu['key service'] ?? NaN) / hs)} ms: handler + AWS SDK KMS client + HTTP) and the local KMS with the demo origin (${fmtMs((eCell.cpu['kms+origin'] ?? NaN) / hs)} ms, of which the signature is ~${fmtMs(1000 / micro.rsaSignPerSec)} ms) are each a further Node process with its own HTTP and SDK overhead.`,
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
    '**What this does and does not say about AWS.** Locally the key service and KMS are Node processes on the same cores, so their CPU competes with the edge; in AWS they run elsewhere, and instead each key operation pays a Lambda invocation and a KMS Sign request across the network (not measured here) and counts against the KMS request quota (500 RSA requests/s per account and region by default). Every handshake measured here was a full one (see the server-side counts); session resumption is what takes the key operation out of returning clients\' handshakes.',
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
    ['load generator', tool === 'h2load' ? `h2load ${facts.h2load ?? ''} (--h1 -t 1, Connection: close)` : 'Node client pool (h2load not installed)'],
    ['nginx', facts.nginx ?? 'not installed'],
    ['commit', facts.commit ?? 'unknown'],
    ['background load before the run', `${pct(facts.backgroundBusy)} of all cores busy (load average ${facts.loadAverage})`],
  ];
  if (micro) {
    rows.push(['RSA-2048 PSS sign, per CPU second (Node)', `${fmt(micro.rsaSignPerSec)}/s (${fmtMs(1000 / micro.rsaSignPerSec)} ms each)`]);
    rows.push(['X25519 keygen + derive, per CPU second (Node)', `${fmt(micro.x25519PerSec)}/s`]);
    rows.push(['X25519 public key import: DER SPKI vs JWK', `${fmt(micro.x25519ImportDerUs)} µs vs ${fmt(micro.x25519ImportJwkUs)} µs`]);
  }
  return { title: 'Machine', head: ['fact', 'value'], rows, left: [0, 1] };
}

function renderChart(results: TargetResult[], date: string): string {
  const series = CONFIG.concurrency.map((c, i) => ({ name: `concurrency ${c}`, color: SERIES_COLORS[i % SERIES_COLORS.length] }));
  const groups = results.filter((r) => !r.skipped).map((r) => ({ label: r.label, values: CONFIG.concurrency.map((c) => rateMedian(cellOf(r, c))) }));
  return barChartSvg('Full TLS 1.3 handshakes per second (RSA-2048, X25519)', `${date.slice(0, 10)}: new connection + one HTTP/1.1 request each; same machine, same run; ${os.cpus().length} cores shared with the client`, series, groups, 'handshakes per second (median)');
}

function writeDocs(md: string, svg: string): string {
  const docs = path.join(REPO_ROOT, 'docs');
  fs.mkdirSync(docs, { recursive: true });
  const svgPath = path.join(docs, 'benchmarks.svg');
  const pngPath = path.join(docs, 'benchmarks.png');
  fs.writeFileSync(svgPath, svg);
  let image = 'benchmarks.svg';
  let chartNote = 'chart: docs/benchmarks.svg';
  const converters: Array<[string, string[]]> = [
    ['rsvg-convert', ['-f', 'png', '-o', pngPath, svgPath]],
    ['convert', [svgPath, pngPath]],
  ];
  const conv = converters.find(([cmd]) => have(cmd));
  if (conv && spawnSync(conv[0], conv[1], { stdio: 'ignore', timeout: 30_000 }).status === 0) {
    image = 'benchmarks.png';
    chartNote = `chart: docs/benchmarks.png (rendered by ${conv[0]}) and docs/benchmarks.svg`;
  } else {
    chartNote = `chart: docs/benchmarks.svg only — ${missingReason('rsvg-convert', 'the PNG rendering')}`;
  }
  fs.writeFileSync(path.join(docs, 'benchmarks.md'), md.replace('{{CHART}}', `![Full TLS 1.3 handshakes per second](${image})`));
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
  return { dir: pki.dir, caPem: pki.caPem, chainPath, leafPath: leaf.certPath, caPath: pki.caPath, keyPath: leaf.keyPath, key: leaf.key, cleanup: () => pki.cleanup() };
}

async function main(): Promise<number> {
  const facts = machineFacts();
  const load = pickLoadTool();
  say(`keyless TLS benchmark — ${facts.date} — ${facts.cores} × ${facts.cpuModel}, Node ${facts.node}, ${facts.opensslCli ?? 'no openssl CLI'}`);
  say(`plan: concurrency ${CONFIG.concurrency.join(', ')}; ${CONFIG.reps} runs of ~${CONFIG.runSeconds} s per cell; latency probe ${CONFIG.latencyCount} connections at c=1; budget ${CONFIG.budgetMs / 1000} s`);
  if (load.reason) say(`note: ${load.reason}`);
  if (!HAVE_PROC) say('note: no /proc here, so CPU time per process is not reported');
  if (process.platform === 'linux' && !have('openssl')) say(`note: ${missingReason('openssl', 'the openssl s_server reference')}`);

  if (HAVE_PROC) {
    const w = startCpuWindow({});
    await sleep(1000);
    facts.backgroundBusy = w().machineBusy;
    const quiet = facts.backgroundBusy < 0.1;
    say(`background load before the benchmark: ${pct(facts.backgroundBusy)} of ${facts.cores} cores busy (load average ${facts.loadAverage})${quiet ? '' : ' — the machine is NOT quiet: expect noisy absolute numbers; the interleaved runs keep the ratios fair'}`);
  }

  const pki = makeReferencePki();
  let micro: Micro | undefined;
  try {
    micro = microBench(pki.key);
    say(`micro (per CPU second): RSA-2048 PSS sign ${fmt(micro.rsaSignPerSec)}/s (${fmtMs(1000 / micro.rsaSignPerSec)} ms each); X25519 keygen+derive ${fmt(micro.x25519PerSec)}/s; X25519 import DER ${fmt(micro.x25519ImportDerUs)} µs vs JWK ${fmt(micro.x25519ImportJwkUs)} µs`);
  } catch (e) {
    say(`micro-benchmark failed: ${(e as Error).message}`);
  }

  const plan: Array<{ id: string; label: string; needs?: string; start: () => Promise<Target> }> = [
    { id: 'edge', label: 'keyless edge (local stack)', start: () => startEdgeTarget() },
    { id: 'engine', label: 'engine only (in-process signer)', start: () => startEngineTarget(pki) },
    { id: 's_server', label: 'openssl s_server -no_ticket -no_cache', needs: 'openssl', start: () => startSServerTarget(pki) },
    { id: 'nginx-1w', label: 'nginx 1 worker, no cache/tickets', needs: 'nginx', start: () => startNginxTarget(pki, 1) },
    { id: 'nginx-2w', label: 'nginx 2 workers, no cache/tickets', needs: 'nginx', start: () => startNginxTarget(pki, 2) },
  ];
  const results: TargetResult[] = [];
  const active: Active[] = [];
  say(`\n== starting ${plan.length} targets`);
  for (const p of plan) {
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
  let tls12: Tls12Results | undefined;
  if (CONFIG.tls12 && elapsed() < CONFIG.budgetMs) {
    try {
      tls12 = await tls12Phase(pki);
    } catch (e) {
      say(`  TLS 1.2 section failed: ${(e as Error).message}`);
    }
  } else if (CONFIG.tls12) say('\nTLS 1.2 section skipped: time budget spent');
  let profiles: Profiles | undefined;
  if (CONFIG.profile && elapsed() < CONFIG.budgetMs && results.some((r) => r.cells.some((c) => c.runs.length))) profiles = await profilePhase(pki, load.tool, results);
  else if (CONFIG.profile) say('\nsampled CPU profiles skipped: time budget spent or nothing measured');
  pki.cleanup();

  // The key-service path on its own (test/bench/key-service.ts: client, SDK hop, handler, backends).
  let keyServiceText: string | undefined;
  if (CONFIG.keyService) {
    const budgetSeconds = Math.min(85, Math.floor((CONFIG.hardStopMs - elapsed()) / 1000) - 5);
    if (budgetSeconds < 20) say(`\nkey-service path benchmark skipped: only ${Math.max(0, budgetSeconds)} s of the run's time left`);
    else {
      say(`\n== key-service path (test/bench/key-service.ts, up to ${budgetSeconds} s; BENCH_KEY_SERVICE=0 skips it)`);
      try {
        // As the dev stack does for its children: the AWS SDK's Node-version notice is noise here.
        process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
        const ks = await import('./key-service');
        keyServiceText = ks.renderKeyServiceBench(await ks.runKeyServiceBench({ budgetSeconds, log: (line) => say(`  ${line}`) }));
      } catch (e) {
        say(`  failed: ${(e as Error).message}`);
      }
    }
  }

  const edge = results.find((r) => r.id === 'edge');
  const tables: Table[] = [throughputTable(results, edge), latencyTable(results, edge)];
  if (edge && (edge.latencyWindow || edge.cells.some((c) => c.runs.length))) tables.push(edgeBreakdownTable(edge).table);
  if (HAVE_PROC) tables.push(cpuTable(results));
  if (profiles) tables.push(...profileTables(profiles));
  const tls12Tabs = tls12 ? tls12Tables(tls12) : [];
  const mTable = machineTable(facts, load.tool, micro);
  const notes = interpretation(results, micro, facts);
  const pNote = profiles && profileInterpretation(profiles, micro);
  if (pNote) notes.splice(notes.length - 1, 0, pNote);
  const t12Note = tls12 && tls12Interpretation(tls12, micro, facts);
  say('');
  say(renderText(mTable));
  for (const t of tables) say(renderText(t));
  for (const t of tls12Tabs) say(renderText(t));
  if (t12Note) say(`\n${t12Note.replace(/\*\*/g, '')}`);
  if (keyServiceText) say(`\nKey-service path\n${keyServiceText}`);
  say('\nInterpretation:');
  for (const n of notes) say(`- ${n.replace(/\*\*/g, '')}`);

  const problems: string[] = [];
  for (const r of results) {
    if (r.error) problems.push(`${r.label}: ${r.error}`);
    for (const c of r.cells) {
      if (c.error) problems.push(`${r.label} c=${c.c}: ${c.error}`);
      if (c.verified === 'mismatch') problems.push(`${r.label} c=${c.c}: server-side full-handshake count does not match the client's (see the run lines above)`);
    }
  }
  for (const row of tls12?.rows ?? []) {
    const cell = cellOf(row.result, tls12!.c);
    const err = row.result.cells.find((x) => x.error)?.error;
    if (err) problems.push(`TLS 1.2 ${row.result.label}: ${err}`);
    else if (cell && tls12Check(row, cell).startsWith('✗')) problems.push(`TLS 1.2 ${row.result.label}: ${tls12Check(row, cell)}`);
  }

  if (CONFIG.writeDocs) {
    const md = [
      '# Benchmarks',
      '',
      `_Generated by \`npm run bench\` on ${facts.date} (commit ${facts.commit ?? 'unknown'}). Do not edit by hand: run the benchmark again._`,
      '',
      'What is measured, in one run on one machine: the rate of **full TLS 1.3 handshakes** (every connection new, no resumption possible, one small HTTP/1.1 request, then close) that the keyless edge sustains with its key operation going through the local key service and KMS, next to the same engine with a local signer and to OpenSSL and nginx with a local RSA-2048 key; the handshake latency at concurrency 1 and how much of it is the key operation; and the CPU time each process spends per handshake.',
      '',
      '{{CHART}}',
      '',
      renderMarkdown(tables[0]),
      '',
      '## Interpretation',
      '',
      ...notes.map((n) => `- ${n}`),
      '',
      ...tables.slice(1).flatMap((t) => [renderMarkdown(t), '']),
      ...(tls12Tabs.length
        ? [
            '## Full TLS 1.2 handshakes per second',
            '',
            'TLS 1.2 with ECDHE-RSA and with RSA key exchange (AES128-GCM), every connection new, against the local stack in sealed custody and `openssl s_server -tls1_2 -no_ticket -no_cache` with the local RSA-2048 key, measured in the same run by the same Node client.',
            '',
            ...(t12Note ? [`- ${t12Note}`, ''] : []),
            ...tls12Tabs.flatMap((t) => [renderMarkdown(t), '']),
          ]
        : []),
      renderMarkdown(mTable),
      '',
      ...(keyServiceText
        ? [
            '### The key-service path alone (test/bench/key-service.ts)',
            '',
            'The edge\'s key-service client driven directly, without TLS: the same CertificateVerify signature through the local Lambda endpoint, through the client\'s Lambda target alone, with the handler in-process, and the backend alone, for the `file` and `kms` backends.',
            '',
            '```text',
            keyServiceText,
            '```',
            '',
          ]
        : []),
      '## Method',
      '',
      `- **Load**: ${load.tool === 'h2load' ? `\`h2load --h1 -n N -c C -t 1 -H 'Connection: close'\` (nghttp2-client)` : 'a Node client pool (h2load was not installed)'}; each request opens a new connection. For each target and concurrency a calibration run (also the warm-up) picks N so that one run lasts ~${CONFIG.runSeconds} s, then ${CONFIG.reps} runs are measured and the median is reported. All targets are up at the same time (idle ones cost nothing) and the measured runs take turns, target after target, in an order that rotates each round, so a change in background load touches every target alike. h2load resumes sessions whenever a server allows it, so every server here allows none, and the server side counts: the edge through the key service's \`/_local/stats\` invocation delta (minus health pings) and the edge's \`handshake\` log lines (\`resumed\`), the engine-only server through its signer's count, nginx through \`$ssl_session_reused\` in its access log; \`openssl s_server -no_ticket -no_cache\` cannot resume.`,
      '- **Targets**: the edge of `keyless dev` (edge, key-service and dev-stack processes: the real key-service handler behind the local Lambda endpoint, the local KMS with an RSA_2048 `SIGN_VERIFY` key, the demo origin; the request is proxied to the origin\'s `/healthz`); the engine alone (`TlsServer` with the in-process signer of the unit tests, one process, answering itself); `openssl s_server -tls1_3 -no_ticket -no_cache -HTTP`; nginx with `ssl_session_cache off; ssl_session_tickets off; keepalive_timeout 0;` and 1 or 2 workers. All use an RSA-2048 certificate (+ CA), `rsa_pss_rsae_sha256`, X25519, loopback only.',
      '- **Latency**: a Node (OpenSSL) client in the benchmark process, one connection at a time, certificate verified, no session reuse; 10 warm-up connections, then up to ' + `${CONFIG.latencyCount} measured (at most ${CONFIG.latencyMaxMs / 1000} s).` + ' The edge\'s `keyOperationMs` and the key service\'s `latencyMs`/`backendMs` come from their JSON log lines.',
      '- **CPU**: user+system time of every server process from `/proc/<pid>/stat` before and after each run; the client\'s from its shell\'s `cutime`/`cstime`; machine load from `/proc/stat`.',
      `- **Profiles**: ${CONFIG.profile ? 'after the measurements, one more run at the highest concurrency of a fresh local stack and of the engine alone, with the V8 sampling profiler started by SIGUSR2 in each Node process (loaded through `NODE_OPTIONS=--require dist/test/bench/profile-preload.js`) once the warm-up is done; these runs are not part of any figure above.' : 'skipped in this run (BENCH_PROFILE=0).'}`,
      '- Client and servers share the same cores, so absolute numbers are lower than on a dedicated machine; the ratios are what carries over. Nothing here runs in `npm test`.',
      '',
      '## Reproduce',
      '',
      '```sh',
      'apt-get install -y --no-install-recommends nghttp2-client nginx librsvg2-bin   # h2load, nginx reference, PNG chart',
      'npm run bench',
      '```',
      '',
      'Missing tools are skipped with a printed reason (no h2load → Node client pool; no nginx → no nginx rows; no rsvg-convert → SVG chart only). Knobs: `BENCH_RUN_SECONDS`, `BENCH_REPS`, `BENCH_CONCURRENCY`, `BENCH_LATENCY_COUNT`, `BENCH_BUDGET_SECONDS`, `BENCH_NO_DOCS=1`, `BENCH_PROFILE=0`, `BENCH_KEEP_PROFILES=1`, `BENCH_LOADGEN=node`, `BENCH_KEY_SERVICE=0` (and the key-service section\'s own `BENCH_KS_*`), `BENCH_TLS12=0` (no TLS 1.2 section).',
      '',
    ];
    if (problems.length) md.splice(4, 0, '> **This run had problems:**', ...problems.map((p) => `> - ${p}`), '');
    const chartNote = writeDocs(md.join('\n'), renderChart(results, facts.date));
    say(`\nwrote docs/benchmarks.md (${chartNote})`);
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
