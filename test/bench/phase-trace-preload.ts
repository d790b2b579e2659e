/**
 * Loaded with `node --require` (through NODE_OPTIONS, which reaches the local stack's children) when
 * the benchmark breaks the edge's handshake latency into phases (test/bench/phases.ts). Does nothing
 * unless BENCH_PHASE_TRACE_DIR is set and this process is the edge (`edge-proxy/src/main.js`).
 *
 * For every accepted connection it records, from outside the engine: accept, each inbound chunk (the
 * first is the ClientHello, the next the client's Finished), each write that reaches the socket's
 * handle (after cork/uncork gathering: one per write or writev), the outgoing HTTP requests
 * (node:diagnostics_channel `http.client.request.start` / `http.client.response.finish`: the hop to
 * the key service, then to the origin), and named moments inside the edge — the key operation
 * (`KeyServiceClient.signTls13CertificateVerify`) and its Lambda call (`LambdaHttpTarget.invoke`),
 * wrapped on their prototypes. Each moment also carries the process's CPU time, so a phase that waits
 * (a timer, a delayed ACK) shows wall time without CPU time. One JSON line per connection goes to
 * `$BENCH_PHASE_TRACE_DIR/phases-<pid>.jsonl` when it closes. Times are ms since accept. Meant for c=1:
 * moments are attributed to every connection open at the time.
 */
import * as dc from 'node:diagnostics_channel';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Socket } from 'node:net';

export interface PhaseTrace {
  /** Inbound chunks: [ms since accept, bytes]. */
  reads: Array<[number, number]>;
  /** Writes to the socket's handle: [ms since accept, bytes]. */
  writes: Array<[number, number]>;
  /** Outgoing HTTP requests started while this connection was open: [start, response end], ms since accept. */
  hops: Array<[number, number]>;
  /** Named moments inside the edge: [name, ms since accept, process CPU ms]. */
  marks: Array<[string, number, number]>;
  closedMs: number;
}

const dir = process.env.BENCH_PHASE_TRACE_DIR;
const isEdge = /edge-proxy[\\/]src[\\/]main\.js$/.test(process.argv[1] ?? '');

interface Open {
  t0: number;
  trace: PhaseTrace;
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000;

if (dir && isEdge) {
  const out = path.join(dir, `phases-${process.pid}.jsonl`);
  const open = new Set<Open>();
  const mark = (name: string, now = performance.now()): void => {
    const cpu = process.cpuUsage();
    const cpuMs = round((cpu.user + cpu.system) / 1000);
    for (const c of open) c.trace.marks.push([name, round(now - c.t0), cpuMs]);
  };

  // The edge's own modules, as main.js loads them (same paths, so the same module instances).
  const wrapAsync = (file: string, cls: string, method: string): void => {
    try {
      type Exports = Record<string, { prototype: Record<string, (...a: unknown[]) => Promise<unknown>> }>;
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const loaded = require(path.join(path.dirname(process.argv[1]), file)) as Exports;
      const proto = loaded[cls].prototype;
      const inner = proto[method];
      proto[method] = function (this: unknown, ...args: unknown[]) {
        mark(`${method} start`);
        return inner.apply(this, args).finally(() => mark(`${method} end`));
      };
    } catch {
      // the module moved: the trace has no such moments, and phases.ts leaves those handshakes out
    }
  };
  wrapAsync('keyless/key-service-client.js', 'KeyServiceClient', 'signTls13CertificateVerify');
  wrapAsync('keyless/lambda-http-target.js', 'LambdaHttpTarget', 'invoke');

  const hopStarts = new WeakMap<object, number>();
  dc.subscribe('http.client.request.start', (msg) => {
    const now = performance.now();
    hopStarts.set((msg as { request: object }).request, now);
    mark('http request start', now);
  });
  dc.subscribe('http.client.response.finish', (msg) => {
    const start = hopStarts.get((msg as { request: object }).request);
    if (start === undefined) return;
    const end = performance.now();
    for (const c of open) if (start >= c.t0) c.trace.hops.push([round(start - c.t0), round(end - c.t0)]);
  });

  dc.subscribe('net.server.socket', (msg) => {
    const socket = (msg as { socket: Socket }).socket;
    const entry: Open = { t0: performance.now(), trace: { reads: [], writes: [], hops: [], marks: [], closedMs: 0 } };
    open.add(entry);
    const since = (): number => round(performance.now() - entry.t0);
    socket.prependListener('data', (d: Buffer) => entry.trace.reads.push([since(), d.length]));
    const s = socket as unknown as {
      _writeGeneric(writev: boolean, data: unknown, encoding: unknown, cb: unknown): unknown;
    };
    const writeGeneric = s._writeGeneric.bind(socket);
    s._writeGeneric = (writev, data, encoding, cb) => {
      const bytes = writev
        ? (data as Array<{ chunk: Buffer }>).reduce((n, x) => n + (x.chunk?.length ?? 0), 0)
        : (data as Buffer).length;
      entry.trace.writes.push([since(), bytes]);
      return writeGeneric(writev, data, encoding, cb);
    };
    socket.once('close', () => {
      open.delete(entry);
      entry.trace.closedMs = since();
      fs.appendFileSync(out, `${JSON.stringify(entry.trace)}\n`);
    });
  });
}
