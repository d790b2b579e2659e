/**
 * The load generator for the new-connection rate: h2load when installed (`--h1 -n N -c C -t 1`,
 * every request with `Connection: close`, so each request is a new connection and a new full
 * handshake when the server allows no resumption), else a small Node client pool in a child
 * process. PEERS.md: use -n, never -D (h2load hangs on -D when the server closes).
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { have } from './tools';
import { clockTicks } from './proc';

export type LoadTool = 'h2load' | 'node';

export interface LoadResult {
  tool: LoadTool;
  requested: number;
  succeeded: number;
  failed: number;
  seconds: number;
  /** Successful requests (= new connections = full handshakes) per second. */
  rate: number;
  /** CPU milliseconds spent by the load generator itself. */
  clientCpuMs: number;
  protocol?: string;
  cipher?: string;
  tempKey?: string;
  /** Node client pool only: connections the server resumed (client side, `isSessionReused()`). */
  resumed?: number;
}

export interface LoadOptions {
  url: string;
  n: number;
  c: number;
  /** Hard deadline; the run is killed and reported as failed after it. */
  timeoutMs: number;
  /** Node client pool only: cap the version at TLS 1.2 and offer these (OpenSSL-named) suites. */
  tls12Ciphers?: string;
  /**
   * Node client pool only: offer each loop's newest session on its next connection (resumption).
   * h2load needs no flag: it resumes by itself whenever the server hands out tickets.
   */
  resume?: boolean;
  /** Use the Node client pool even when h2load is installed (client-side resumption counts). */
  forceNode?: boolean;
  /** Node client pool only: the key-exchange groups to offer (OpenSSL names, colon-separated). */
  groups?: string;
}

export function pickLoadTool(): { tool: LoadTool; reason?: string } {
  if (process.env.BENCH_LOADGEN === 'node')
    return { tool: 'node', reason: 'BENCH_LOADGEN=node: using the Node client pool instead of h2load' };
  if (have('h2load')) return { tool: 'h2load' };
  return {
    tool: 'node',
    reason:
      'h2load is not installed (apt-get install -y nghttp2-client): using the Node client pool fallback, which spends more client CPU per connection',
  };
}

const CPU_MARK = '__bench_child_cpu__';

export function runCapture(
  cmd: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

function seconds(value: string, unit: string): number {
  const v = Number(value);
  return unit === 'us' ? v / 1e6 : unit === 'ms' ? v / 1e3 : unit === 'm' ? v * 60 : v;
}

export function parseH2load(out: string): Omit<LoadResult, 'tool' | 'requested' | 'clientCpuMs' | 'rate'> | undefined {
  const fin = /finished in ([\d.]+)(us|ms|s|m),/.exec(out);
  const req =
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      out,
    );
  if (!fin || !req) return undefined;
  return {
    seconds: seconds(fin[1], fin[2]),
    succeeded: Number(req[4]),
    failed: Number(req[5]),
    protocol: /TLS Protocol: (\S+)/.exec(out)?.[1],
    cipher: /Cipher: (\S+)/.exec(out)?.[1],
    tempKey: /Server Temp Key: (.+)/.exec(out)?.[1]?.trim(),
  };
}

async function runH2load(o: LoadOptions): Promise<LoadResult> {
  // Run h2load under a shell that, once h2load has been reaped, prints its own cutime+cstime:
  // the load generator's CPU time, so the report can show that it does not dominate.
  const script = `h2load "$@"; rc=$?; echo "${CPU_MARK} $(cut -d' ' -f16,17 /proc/$$/stat)"; exit $rc`;
  const args = ['--h1', '-n', String(o.n), '-c', String(o.c), '-t', '1', '-H', 'Connection: close', '-N', '10s', o.url];
  const r = await runCapture('sh', ['-c', script, 'sh', ...args], o.timeoutMs);
  const parsed = parseH2load(r.stdout);
  const cpu = new RegExp(`${CPU_MARK} (\\d+) (\\d+)`).exec(r.stdout);
  const clientCpuMs = cpu ? ((Number(cpu[1]) + Number(cpu[2])) * 1000) / clockTicks() : NaN;
  if (!parsed || r.timedOut) {
    return {
      tool: 'h2load',
      requested: o.n,
      succeeded: parsed?.succeeded ?? 0,
      failed: o.n - (parsed?.succeeded ?? 0),
      seconds: o.timeoutMs / 1000,
      rate: 0,
      clientCpuMs,
    };
  }
  return {
    tool: 'h2load',
    requested: o.n,
    ...parsed,
    rate: parsed.seconds > 0 ? parsed.succeeded / parsed.seconds : 0,
    clientCpuMs,
  };
}

async function runNodePool(o: LoadOptions): Promise<LoadResult> {
  const script = path.join(__dirname, 'node-loadgen.js');
  const args = {
    url: o.url,
    n: o.n,
    c: o.c,
    ...(o.tls12Ciphers ? { maxVersion: 'TLSv1.2', ciphers: o.tls12Ciphers } : {}),
    ...(o.resume ? { resume: true } : {}),
    ...(o.groups ? { groups: o.groups } : {}),
  };
  const r = await runCapture(process.execPath, [script, JSON.stringify(args)], o.timeoutMs);
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  if (!line)
    return {
      tool: 'node',
      requested: o.n,
      succeeded: 0,
      failed: o.n,
      seconds: o.timeoutMs / 1000,
      rate: 0,
      clientCpuMs: NaN,
    };
  const j = JSON.parse(line) as {
    succeeded: number;
    failed: number;
    resumed: number;
    seconds: number;
    cpuMs: number;
    protocol?: string;
    cipher?: string;
  };
  return {
    tool: 'node',
    requested: o.n,
    succeeded: j.succeeded,
    failed: j.failed,
    resumed: j.resumed,
    seconds: j.seconds,
    rate: j.seconds > 0 ? j.succeeded / j.seconds : 0,
    clientCpuMs: j.cpuMs,
    protocol: j.protocol,
    cipher: j.cipher,
  };
}

export function runLoad(tool: LoadTool, o: LoadOptions): Promise<LoadResult> {
  // h2load cannot cap the version at TLS 1.2: TLS 1.2 runs always use the Node client pool.
  return tool === 'h2load' && !o.tls12Ciphers && !o.forceNode && !o.groups ? runH2load(o) : runNodePool(o);
}

// ---------------------------------------------------------------------------------------------
// Requests over kept-alive connections (h2load) and bulk downloads (curl).

export interface KeepAliveOptions {
  url: string;
  /** Total requests; each of the `c` connections makes n / c of them (a fixed number per connection). */
  n: number;
  c: number;
  /** Concurrent streams per connection (HTTP/2; 1 for HTTP/1.1). */
  m: number;
  proto: 'http/1.1' | 'h2';
  timeoutMs: number;
}

/** The same counts as a handshake run; `rate` is successful requests per second. */
export type KeepAliveResult = Pick<
  LoadResult,
  'requested' | 'succeeded' | 'failed' | 'seconds' | 'rate' | 'clientCpuMs' | 'protocol' | 'cipher'
>;

/**
 * `h2load -n N -c C -m M -t 1` with keep-alive (no `Connection: close`): C connections, each
 * handshaking once and then carrying N/C requests, M in flight at a time. The handshakes are part
 * of the run but at N/C ≥ 500 requests per connection they weigh little.
 */
export async function runKeepAlive(o: KeepAliveOptions): Promise<KeepAliveResult> {
  const script = `h2load "$@"; rc=$?; echo "${CPU_MARK} $(cut -d' ' -f16,17 /proc/$$/stat)"; exit $rc`;
  const args = [
    ...(o.proto === 'http/1.1' ? ['--h1'] : []),
    '-n',
    String(o.n),
    '-c',
    String(o.c),
    '-m',
    String(o.m),
    '-t',
    '1',
    '-N',
    '10s',
    o.url,
  ];
  const r = await runCapture('sh', ['-c', script, 'sh', ...args], o.timeoutMs);
  const parsed = parseH2load(r.stdout);
  const cpu = new RegExp(`${CPU_MARK} (\\d+) (\\d+)`).exec(r.stdout);
  const clientCpuMs = cpu ? ((Number(cpu[1]) + Number(cpu[2])) * 1000) / clockTicks() : NaN;
  if (!parsed || r.timedOut)
    return {
      requested: o.n,
      succeeded: parsed?.succeeded ?? 0,
      failed: o.n - (parsed?.succeeded ?? 0),
      seconds: o.timeoutMs / 1000,
      rate: 0,
      clientCpuMs,
    };
  return {
    requested: o.n,
    succeeded: parsed.succeeded,
    failed: parsed.failed,
    seconds: parsed.seconds,
    rate: parsed.seconds > 0 ? parsed.succeeded / parsed.seconds : 0,
    clientCpuMs,
    protocol: parsed.protocol,
    cipher: parsed.cipher,
  };
}

export interface BulkOptions {
  url: string;
  /** Parallel downloads (one connection each). */
  c: number;
  /** Bytes each download must receive. */
  bytes: number;
  timeoutMs: number;
  /** TLS 1.3 suite curl offers (the same for every server, so the AEAD is the same). */
  tls13Cipher?: string;
}

export interface BulkResult {
  /** Bytes received by all downloads together. */
  bytes: number;
  /** Wall time from the first start to the last end. */
  seconds: number;
  /** MB/s (10^6 bytes per second) of all downloads together. */
  mbPerSecond: number;
  failed: number;
  clientCpuMs: number;
}

/** `c` curl processes started together, each downloading `url` to /dev/null (HTTP/1.1). */
export async function runBulk(o: BulkOptions): Promise<BulkResult> {
  // One shell runs the curls and reports their CPU time (cutime+cstime once they are reaped).
  const one = `curl -sS -k --http1.1 ${o.tls13Cipher ? `--tls13-ciphers ${o.tls13Cipher} ` : ''}-o /dev/null -w '%{http_code} %{size_download}\\n' "$1"`;
  const script = `for i in $(seq ${o.c}); do ${one} & done; wait; echo "${CPU_MARK} $(cut -d' ' -f16,17 /proc/$$/stat)"`;
  const t0 = performance.now();
  const r = await runCapture('sh', ['-c', script, 'sh', o.url], o.timeoutMs);
  const seconds = (performance.now() - t0) / 1000;
  const lines = r.stdout.split('\n').filter((l) => /^\d{3} \d+$/.test(l));
  const ok = lines.filter((l) => l.startsWith('200 ') && Number(l.split(' ')[1]) === o.bytes);
  const bytes = lines.reduce((a, l) => a + Number(l.split(' ')[1]), 0);
  const cpu = new RegExp(`${CPU_MARK} (\\d+) (\\d+)`).exec(r.stdout);
  return {
    bytes,
    seconds,
    mbPerSecond: r.timedOut ? 0 : bytes / 1e6 / seconds,
    failed: o.c - ok.length,
    clientCpuMs: cpu ? ((Number(cpu[1]) + Number(cpu[2])) * 1000) / clockTicks() : NaN,
  };
}
