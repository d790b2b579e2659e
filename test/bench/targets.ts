/**
 * The servers the benchmark drives, each started fresh on a free loopback port and stopped after
 * its measurements: the keyless edge of the local stack (`keyless dev`), the engine alone with an
 * in-process signer, `openssl s_server`, and nginx with 1 and 2 workers. Each target can count,
 * on the server side, the full and resumed handshakes of a measurement window.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import * as readline from 'node:readline';
import * as devStackProcess from '../helpers/dev-stack-process';
import type { StackProcess } from '../helpers/dev-stack-process';
import { childPids, ProcessGroups } from './proc';

/** What the server side saw during one measurement window. */
export interface WindowCheck {
  /** Full handshakes counted on the server side (undefined when the target cannot count). */
  fullHandshakes?: number;
  resumed?: number;
  /** One line for the console: how it was counted. */
  detail: string;
  /** Edge only: latencies parsed from the stack's JSON logs for the window (ms). */
  keyOperationMs?: number[];
  keyServiceHandlerMs?: number[];
  kmsCallMs?: number[];
  /** Edge only: key-service operations logged in the window, by op. */
  keyOps?: Record<string, number>;
  /**
   * Edge only, when its `handshake` log lines carry `handshakeMs` (accept → client Finished, server
   * side): per full handshake, handshakeMs − keyOperationMs — the edge's own time plus the client's
   * second flight, without the key operation.
   */
  serverOwnMs?: number[];
  /** Edge only: successful handshakes by kind from its admin /metrics (`keyless_edge_handshakes_total`). */
  metrics?: { full: number; resumed: number };
}

export interface Target {
  id: string;
  label: string;
  /** URL for the load generator (IP literal: the same for every target). */
  url: string;
  port: number;
  path: string;
  caPem: string;
  /** Processes whose CPU time is accounted, by role. */
  processes: ProcessGroups;
  /** Marks the start of a window; the returned function counts what happened since. */
  beginWindow(): Promise<(expected: number) => Promise<WindowCheck>>;
  stop(): Promise<void>;
}

export interface ReferencePki {
  dir: string;
  caPem: string;
  /** Leaf (RSA-2048, CN/SAN localhost) followed by the CA. */
  chainPath: string;
  leafPath: string;
  caPath: string;
  keyPath: string;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export function waitForPort(port: number, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      if (child && child.exitCode !== null) return reject(new Error(`exited with ${child.exitCode} before listening`));
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

/** Sends `signal` (after `graceMs` for the child to exit by itself), then SIGKILL 5 s later. */
export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 0): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timers: NodeJS.Timeout[] = [];
    child.once('exit', () => {
      timers.forEach(clearTimeout);
      resolve();
    });
    timers.push(setTimeout(() => child.kill(signal), graceMs));
    timers.push(setTimeout(() => child.kill('SIGKILL'), graceMs + 5000));
  });
}

function getJson(url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => {
          try {
            resolve(JSON.parse(body));
          } catch (e) {
            reject(e);
          }
        });
      })
      .on('error', reject);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// The keyless edge of the local stack.

interface KsStats {
  functions: Record<string, { invocations: number }>;
}

function invocations(s: unknown): number {
  return Object.values((s as KsStats).functions ?? {}).reduce((a, f) => a + (f.invocations ?? 0), 0);
}

function completeLines(text: string): Record<string, unknown>[] {
  const end = text.lastIndexOf('\n');
  const out: Record<string, unknown>[] = [];
  for (const line of text.slice(0, end + 1).split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // not one of ours
    }
  }
  return out;
}

export interface EdgeWindowLogs {
  handshakes: number;
  resumed: number;
  /** Private-key operations the key service logged (any op but ping), and how many of each op. */
  signOps: number;
  byOp: Record<string, number>;
  pings: number;
  keyOperationMs: number[];
  keyServiceHandlerMs: number[];
  kmsCallMs: number[];
  /** handshakeMs − keyOperationMs of each full handshake whose line has both. */
  serverOwnMs: number[];
  /** Handshakes the edge logged as failed, and the first one's error (to say why a run failed). */
  failed: number;
  firstError?: string;
}

export function parseStackLogs(text: string): EdgeWindowLogs {
  const r: EdgeWindowLogs = {
    handshakes: 0,
    resumed: 0,
    signOps: 0,
    byOp: {},
    pings: 0,
    keyOperationMs: [],
    keyServiceHandlerMs: [],
    kmsCallMs: [],
    serverOwnMs: [],
    failed: 0,
  };
  for (const j of completeLines(text)) {
    if (j.component === 'edge' && j.msg === 'handshake') {
      r.handshakes++;
      if (j.resumed === true) r.resumed++;
      if (typeof j.keyOperationMs === 'number') r.keyOperationMs.push(j.keyOperationMs);
      if (typeof j.keyOperationMs === 'number' && typeof j.handshakeMs === 'number')
        r.serverOwnMs.push(j.handshakeMs - j.keyOperationMs);
    } else if (j.component === 'edge' && j.msg === 'handshake failed') {
      r.failed++;
      r.firstError ??= [j.error, j.alertSent && `alert sent: ${String(j.alertSent)}`].filter(Boolean).join(', ');
    } else if (j.service === 'keyless-key-service' && j.msg === 'key_service_request') {
      if (j.op === 'ping') r.pings++;
      else if (typeof j.op === 'string') {
        // tls13.certificate_verify, tls12.server_key_exchange (ECDHE) or tls12.rsa_master_secret.
        r.signOps++;
        r.byOp[j.op] = (r.byOp[j.op] ?? 0) + 1;
        if (typeof j.latencyMs === 'number') r.keyServiceHandlerMs.push(j.latencyMs);
        if (typeof j.backendMs === 'number') r.kmsCallMs.push(j.backendMs);
      }
    }
  }
  return r;
}

function getText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

/** Successful handshakes by kind, summed over every other label, from a Prometheus text page. */
export function handshakeKinds(metricsText: string): { full: number; resumed: number } {
  const out = { full: 0, resumed: 0 };
  for (const line of metricsText.split('\n')) {
    if (!line.startsWith('keyless_edge_handshakes_total{') || !line.includes('result="ok"')) continue;
    const kind = /kind="(\w+)"/.exec(line)?.[1];
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if ((kind === 'full' || kind === 'resumed') && Number.isFinite(v)) out[kind] += v;
  }
  return out;
}

/** The edge's handshake counters now (admin listener `/metrics`); undefined when unreachable. */
export async function edgeHandshakeKinds(adminPort: number): Promise<{ full: number; resumed: number } | undefined> {
  try {
    return handshakeKinds(await getText(`http://127.0.0.1:${adminPort}/metrics`));
  } catch {
    return undefined;
  }
}

export async function startEdgeTarget(
  extraEnv: Record<string, string> = {},
  name: { id: string; label: string } = { id: 'edge', label: 'keyless edge (local stack)' },
): Promise<Target & { stack: StackProcess }> {
  // Session tickets off: these rows measure full handshakes only (h2load resumes whenever it can).
  const stack = await devStackProcess.startStackProcess({ KEYLESS_TICKETS: '0', ...extraEnv });
  const s = stack.state;
  const statsUrl = `${s.keyServiceUrl}/_local/stats`;
  return {
    ...name,
    url: `https://127.0.0.1:${s.edgePort}/healthz`,
    port: s.edgePort,
    path: '/healthz',
    caPem: stack.caPem,
    stack,
    processes: {
      // The edge process and, with KEYLESS_WORKERS > 1, its worker processes.
      edge: () => [s.pids.edge, ...childPids(s.pids.edge)],
      'key service': () => [s.pids.keyService],
      'kms+origin': () => [s.pids.devStack],
    },
    async beginWindow() {
      const inv0 = invocations(await getJson(statsUrl));
      const off0 = stack.output().length;
      const m0 = await edgeHandshakeKinds(s.adminPort);
      return async (expected: number) => {
        // Log lines travel edge → dev stack → us through pipes: wait until they have all arrived.
        let logs = parseStackLogs(stack.output().slice(off0));
        let inv1 = invocations(await getJson(statsUrl));
        for (let i = 0; i < 30 && (logs.handshakes < expected || logs.signOps + logs.pings < inv1 - inv0); i++) {
          await sleep(100);
          logs = parseStackLogs(stack.output().slice(off0));
          inv1 = invocations(await getJson(statsUrl));
        }
        const delta = inv1 - inv0;
        const signing = delta - logs.pings;
        const ops =
          Object.entries(logs.byOp)
            .map(([op, n]) => `${n} ${op}`)
            .join(', ') || 'no key ops';
        const m1 = await edgeHandshakeKinds(s.adminPort);
        const metrics = m0 && m1 ? { full: m1.full - m0.full, resumed: m1.resumed - m0.resumed } : undefined;
        return {
          fullHandshakes: signing,
          resumed: logs.resumed,
          metrics,
          detail: `key service /_local/stats: +${delta} invocations (${logs.pings} health ping${logs.pings === 1 ? '' : 's'}) → ${signing} key ops; edge logged ${logs.handshakes} handshakes (${logs.resumed} resumed)${metrics ? `, /metrics ${metrics.full} full + ${metrics.resumed} resumed` : ''}; key service logged ${ops}${logs.failed ? `; edge logged ${logs.failed} failed handshake${logs.failed === 1 ? '' : 's'} (first: ${logs.firstError ?? '?'})` : ''}`,
          keyOperationMs: logs.keyOperationMs,
          serverOwnMs: logs.serverOwnMs,
          keyServiceHandlerMs: logs.keyServiceHandlerMs,
          kmsCallMs: logs.kmsCallMs,
          keyOps: logs.byOp,
        };
      };
    },
    async stop() {
      await stack.stop();
      // The stack's data folder (throwaway dev CA and KMS store) was made for this run only.
      fs.rmSync(stack.dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The engine alone, in its own process, with the in-process signer.

export async function startEngineTarget(pki: ReferencePki, extraEnv: Record<string, string> = {}): Promise<Target> {
  const child = spawn(process.execPath, [path.join(__dirname, 'engine-server.js'), pki.chainPath, pki.keyPath], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...extraEnv },
  });
  const lines = readline.createInterface({ input: child.stdout! });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const waiters: Array<(j: Record<string, unknown>) => void> = [];
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`engine server not ready in 15 s: ${stderr}`)), 15_000);
    child.once('exit', (code) => reject(new Error(`engine server exited (${code}): ${stderr}`)));
    lines.on('line', (line) => {
      let j: Record<string, unknown>;
      try {
        j = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if (typeof j.port === 'number') {
        clearTimeout(t);
        resolve(j.port);
      } else waiters.shift()?.(j);
    });
  });
  type EngineStats = { signatures: number; handshakes: number; failures: number; groups: Record<string, number> };
  const stats = (): Promise<EngineStats> =>
    new Promise((resolve) => {
      waiters.push((j) => resolve(j.stats as EngineStats));
      child.stdin!.write('stats\n');
    });
  return {
    id: 'engine',
    label: 'engine only (in-process signer)',
    url: `https://127.0.0.1:${port}/`,
    port,
    path: '/',
    caPem: pki.caPem,
    processes: { engine: () => [child.pid!] },
    async beginWindow() {
      const s0 = await stats();
      return async () => {
        const s1 = await stats();
        const sig = s1.signatures - s0.signatures;
        const groups = Object.entries(s1.groups)
          .map(([g, n]) => [g, n - (s0.groups[g] ?? 0)] as const)
          .filter(([, n]) => n > 0)
          .map(([g, n]) => `${g} ×${n}`);
        return {
          fullHandshakes: sig,
          resumed: 0,
          detail: `engine: ${s1.handshakes - s0.handshakes} handshakes, ${sig} in-process signatures, ${s1.failures - s0.failures} failed handshakes; groups ${groups.join(', ') || 'none'}`,
        };
      };
    },
    async stop() {
      child.stdin!.end(); // the server exits by itself on end of input
      await stopChild(child, 'SIGTERM', 3000);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// openssl s_server: single process, one connection at a time.

/**
 * `tls12`: `-tls1_2` instead of `-tls1_3`, offering ECDHE-RSA and RSA key exchange (AES128-GCM); the
 * client picks. `tickets`: session tickets on (OpenSSL's default stateless tickets, no session
 * cache), TLS 1.2 and 1.3 both allowed — the resumption reference; the client caps the version.
 */
export async function startSServerTarget(
  pki: ReferencePki,
  opts: { tls12?: boolean; tickets?: boolean } = {},
): Promise<Target> {
  const port = await freePort();
  const www = fs.mkdtempSync(path.join(pki.dir, 'www-'));
  // -HTTP serves a file that holds the complete HTTP response.
  fs.writeFileSync(
    path.join(www, 'ok'),
    'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n',
  );
  const version = opts.tickets ? [] : [opts.tls12 ? '-tls1_2' : '-tls1_3'];
  const ciphers = opts.tls12 || opts.tickets ? ['-cipher', 'ECDHE-RSA-AES128-GCM-SHA256:AES128-GCM-SHA256'] : [];
  const resumption = opts.tickets ? ['-no_cache'] : ['-no_ticket', '-no_cache'];
  const child = spawn(
    'openssl',
    [
      's_server',
      '-accept',
      `127.0.0.1:${port}`,
      '-cert',
      pki.leafPath,
      '-cert_chain',
      pki.caPath,
      '-key',
      pki.keyPath,
      ...version,
      ...ciphers,
      ...resumption,
      '-HTTP',
      '-quiet',
    ],
    { cwd: www, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    await waitForPort(port, 10_000, child);
  } catch (e) {
    await stopChild(child);
    throw new Error(`openssl s_server: ${(e as Error).message} ${stderr}`);
  }
  return {
    id: opts.tickets ? 's_server-tickets' : opts.tls12 ? 's_server-tls12' : 's_server',
    label: opts.tickets
      ? 'openssl s_server (tickets)'
      : opts.tls12
        ? 'openssl s_server -tls1_2 -no_ticket -no_cache'
        : 'openssl s_server -no_ticket -no_cache',
    url: `https://127.0.0.1:${port}/ok`,
    port,
    path: '/ok',
    caPem: pki.caPem,
    processes: { server: () => [child.pid!] },
    async beginWindow() {
      return async () => ({
        detail: opts.tickets
          ? 's_server cannot count on the server side'
          : 's_server cannot count; -no_ticket -no_cache leave nothing to resume with',
      });
    },
    async stop() {
      await stopChild(child);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// nginx: full handshakes (no session cache, no tickets, no keep-alive), or resumption with session
// tickets from a ticket key file (as a fleet shares one), or a reverse proxy in front of the origin.

/** Writes nginx.conf into `dir`, starts nginx in the foreground and waits for `port`. */
async function launchNginx(dir: string, conf: string, port: number): Promise<ChildProcess> {
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const child = spawn('nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    await waitForPort(port, 10_000, child);
  } catch (e) {
    await stopChild(child, 'SIGQUIT');
    const errLog = fs.existsSync(path.join(dir, 'error.log'))
      ? fs.readFileSync(path.join(dir, 'error.log'), 'utf8')
      : '';
    throw new Error(`nginx: ${(e as Error).message} ${stderr} ${errLog}`.trim());
  }
  return child;
}

function nginxMain(dir: string, workers: number): string {
  return `worker_processes ${workers};
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }`;
}

const nginxTempPaths = (dir: string): string =>
  `client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;`;

/**
 * `tickets`: session tickets on, sealed with a 80-byte ticket key file (how an nginx fleet shares
 * ticket keys), still no session cache, TLS 1.2 and 1.3 (the client caps the version). Without it:
 * no cache, no tickets, TLS 1.3 only. Either way one request per connection (`keepalive_timeout 0`).
 *
 * `origin` (`http://host:port`): like the edge, nginx proxies every request to that origin's
 * `/healthz` (`proxy_pass`, HTTP/1.1, an upstream keep-alive pool), so both do the same work per
 * connection. Without it nginx answers `return 200` itself ("direct": an extra reference only).
 */
export async function startNginxTarget(
  pki: ReferencePki,
  workers: number,
  opts: { tickets?: boolean; origin?: string } = {},
): Promise<Target> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(pki.dir, `nginx-${workers}w-`));
  // Worker processes may run as an unprivileged user: let them reach the folder.
  fs.chmodSync(pki.dir, 0o755);
  fs.chmodSync(dir, 0o755);
  const log = path.join(dir, 'access.log');
  let resumption = 'ssl_session_cache off;\n  ssl_session_tickets off;';
  if (opts.tickets) {
    // A throwaway ticket key for this run (AES-256 + HMAC-SHA256 keys); deleted with the folder.
    const ticketKey = path.join(dir, 'ticket.key');
    fs.writeFileSync(ticketKey, crypto.randomBytes(80), { mode: 0o644 });
    resumption = `ssl_session_cache off;\n  ssl_session_tickets on;\n  ssl_session_ticket_key ${ticketKey};`;
  }
  const upstream = opts.origin
    ? `upstream origin { server ${new URL(opts.origin).host}; keepalive 64; keepalive_requests 1000000; }`
    : '';
  const location = opts.origin
    ? 'location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; proxy_set_header X-Forwarded-Proto https; }'
    : 'location / { default_type text/plain; return 200 "ok\\n"; }';
  const conf = `${nginxMain(dir, workers)}
http {
  ${upstream}
  log_format bench '$ssl_session_reused $ssl_protocol';
  access_log ${log} bench;
  ${nginxTempPaths(dir)}
  ${resumption}
  keepalive_timeout 0;
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${pki.chainPath};
    ssl_certificate_key ${pki.keyPath};
    ssl_protocols ${opts.tickets ? 'TLSv1.2 TLSv1.3' : 'TLSv1.3'};
    ${opts.tickets ? 'ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256:AES128-GCM-SHA256;' : ''}
    ${location}
  }
}
`;
  const child = await launchNginx(dir, conf, port);
  const logSize = (): number => (fs.existsSync(log) ? fs.statSync(log).size : 0);
  return {
    id: `nginx-${workers}w${opts.tickets ? '-tickets' : ''}${opts.origin ? '' : '-direct'}`,
    label: `nginx ${workers} worker${workers > 1 ? 's' : ''}, ${opts.tickets ? 'tickets (key file)' : 'no cache/tickets'}${opts.origin ? ', proxy_pass' : ', direct (return 200)'}`,
    url: `https://127.0.0.1:${port}${opts.origin ? '/healthz' : '/'}`,
    port,
    path: opts.origin ? '/healthz' : '/',
    caPem: pki.caPem,
    processes: { nginx: () => [child.pid!, ...childPids(child.pid!)] },
    async beginWindow() {
      const off0 = logSize();
      return async (expected: number) => {
        let text = '';
        for (let i = 0; i < 20; i++) {
          const fd = fs.openSync(log, 'r');
          const len = logSize() - off0;
          const buf = Buffer.alloc(Math.max(0, len));
          fs.readSync(fd, buf, 0, buf.length, off0);
          fs.closeSync(fd);
          text = buf.toString();
          if (text.split('\n').filter(Boolean).length >= expected) break;
          await sleep(100);
        }
        const rows = text.split('\n').filter(Boolean);
        const resumed = rows.filter((r) => r.startsWith('r ')).length;
        return {
          fullHandshakes: rows.length - resumed,
          resumed,
          detail: `nginx access log: ${rows.length} requests, ${resumed} on resumed sessions ($ssl_session_reused)`,
        };
      };
    },
    async stop() {
      await stopChild(child, 'SIGQUIT');
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The proxy benchmarks (requests over kept-alive connections, bulk downloads): one origin, and the
// edge, nginx and nothing (direct) in front of it.

/** A server in front of (or being) the bench origin. */
export interface ProxyTarget {
  id: string;
  label: string;
  /** `https://127.0.0.1:P` (or `http://` for the origin itself), no trailing slash. */
  base: string;
  /** Whether it speaks HTTP/2 (by ALPN). */
  h2: boolean;
  processes: ProcessGroups;
  stop(): Promise<void>;
}

export interface BenchOrigin {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** test/bench/bench-origin.ts in its own process. */
export async function startBenchOrigin(): Promise<BenchOrigin> {
  const child = spawn(process.execPath, [path.join(__dirname, 'bench-origin.js')], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = readline.createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`bench origin not ready in 15 s: ${stderr}`)), 15_000);
    child.once('exit', (code) => reject(new Error(`bench origin exited (${code}): ${stderr}`)));
    lines.on('line', (line) => {
      const m = /^\{"port":(\d+)\}$/.exec(line.trim());
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    async stop() {
      child.stdin!.end();
      await stopChild(child, 'SIGTERM', 3000);
    },
  };
}

export function directOriginTarget(origin: BenchOrigin): ProxyTarget {
  return {
    id: 'origin',
    label: 'origin direct (no TLS)',
    base: origin.url,
    h2: false,
    processes: { origin: () => [origin.pid] },
    stop: async () => undefined,
  };
}

/**
 * A second edge process of a running local stack (same key service, same certificates, tickets on)
 * whose origin is the bench origin: `keyless dev` gives its own edge the demo origin, and passes no
 * KEYLESS_* variable through, so the benchmark starts this one itself, as the dev stack would.
 */
export async function startProxyEdgeTarget(stack: StackProcess, origin: BenchOrigin): Promise<ProxyTarget> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AWS_') && !k.startsWith('KEYLESS_')) env[k] = v;
  Object.assign(env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    AWS_ENDPOINT_URL_LAMBDA: stack.state.keyServiceUrl,
    KEYLESS_EDGE_CONFIG: path.join(stack.dir, 'edge.json'),
    KEYLESS_EDGE_PORT: '0',
    KEYLESS_ADMIN_PORT: '0',
    KEYLESS_ORIGIN: origin.url,
  });
  const child = spawn(process.execPath, [path.join(devStackProcess.REPO_ROOT, 'dist/edge-proxy/src/main.js')], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
  const lines = readline.createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`edge (bench origin) not listening in 30 s: ${out}`)), 30_000);
    child.once('exit', (code) => reject(new Error(`edge (bench origin) exited (${code}): ${out}`)));
    lines.on('line', (line) => {
      if (!line.includes('"edge listening"')) return;
      try {
        const j = JSON.parse(line) as { tlsPort?: number };
        if (j.tlsPort) {
          clearTimeout(t);
          resolve(j.tlsPort);
        }
      } catch {
        // not the line we wait for
      }
    });
  });
  // The edge logs every handshake; the readline interface keeps draining its stdout.
  return {
    id: 'edge',
    label: 'keyless edge',
    base: `https://127.0.0.1:${port}`,
    h2: true,
    processes: {
      edge: () => [child.pid!],
      'key service': () => [stack.state.pids.keyService],
      origin: () => [origin.pid],
    },
    async stop() {
      await stopChild(child, 'SIGTERM', 0);
    },
  };
}

/**
 * nginx as a TLS-terminating reverse proxy to the bench origin: HTTP/1.1 and HTTP/2 by ALPN,
 * keep-alive towards clients (any number of requests per connection) and towards the origin
 * (`upstream` keepalive pool, HTTP/1.1, `Connection` cleared), no access log (the edge logs
 * handshakes, not requests). Responses stream through nginx's memory buffers without temporary
 * files (`proxy_max_temp_file_size 0`), as the edge streams with backpressure.
 */
export async function startNginxProxyTarget(pki: ReferencePki, origin: BenchOrigin, workers = 1): Promise<ProxyTarget> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(pki.dir, `nginx-proxy-${workers}w-`));
  fs.chmodSync(pki.dir, 0o755);
  fs.chmodSync(dir, 0o755);
  const conf = `${nginxMain(dir, workers)}
http {
  access_log off;
  ${nginxTempPaths(dir)}
  ssl_session_cache off;
  ssl_session_tickets off;
  keepalive_timeout 60s;
  keepalive_requests 1000000;
  http2_max_requests 1000000;
  upstream origin {
    server ${new URL(origin.url).host};
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port} ssl http2;
    ssl_certificate ${pki.chainPath};
    ssl_certificate_key ${pki.keyPath};
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto https;
      proxy_max_temp_file_size 0;
    }
  }
}
`;
  const child = await launchNginx(dir, conf, port);
  return {
    id: `nginx-proxy-${workers}w`,
    label: `nginx ${workers} worker${workers > 1 ? 's' : ''}, proxy_pass`,
    base: `https://127.0.0.1:${port}`,
    h2: true,
    processes: { nginx: () => [child.pid!, ...childPids(child.pid!)], origin: () => [origin.pid] },
    async stop() {
      await stopChild(child, 'SIGQUIT');
    },
  };
}
