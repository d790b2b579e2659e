/**
 * Lifecycle of a real edge process in the whole local stack (`keyless dev`):
 *
 * - SIGHUP reloads the certificates from the configuration file without dropping a connection (and
 *   a broken file leaves the served certificates as they were);
 * - SIGTERM under load: the edge stops accepting, lets in-flight handshakes and requests finish
 *   (including a slow upload that spans the signal), closes idle keep-alive connections politely, and
 *   exits — and not one request that had connected before the signal fails. It runs next to a CPU
 *   burner (two busy processes on top of the stack and the load), as a rolling deploy on a busy
 *   task would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { isAlive, startStackProcess, type StackProcess } from '../helpers/dev-stack-process';

let stack: StackProcess;

beforeAll(async () => {
  stack = await startStackProcess();
});

afterAll(async () => {
  await stack?.stop();
  if (stack) fs.rmSync(stack.dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Outcome {
  ok: boolean;
  status?: number;
  body?: string;
  error?: string;
  /** When the TCP connection was established (performance.now()). */
  connectedAt?: number;
  keyType?: 'rsa' | 'ec';
  reused?: boolean;
  /** When the TLS handshake completed, if it did. */
  secureAt?: number;
  /** When the request failed, if it did. */
  failedAt?: number;
}

function get(agent: https.Agent | false, localAddress?: string): Promise<Outcome> {
  return new Promise((resolve) => {
    let connectedAt: number | undefined;
    let secureAt: number | undefined;
    const req = https.request(
      {
        host: '127.0.0.1',
        port: stack.state.edgePort,
        servername: 'localhost',
        path: '/',
        ca: stack.caPem,
        agent,
        localAddress,
        headers: { host: 'localhost' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        const sock = res.socket as TLSSocket;
        const cert = sock.getPeerCertificate();
        const keyType = cert.asn1Curve || cert.nistCurve ? 'ec' : 'rsa';
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () =>
          resolve({
            ok: res.statusCode === 200,
            status: res.statusCode,
            body: Buffer.concat(chunks).toString(),
            connectedAt,
            keyType,
            reused: req.reusedSocket,
          }),
        );
        res.on('error', (e) => resolve({ ok: false, error: e.message, connectedAt }));
      },
    );
    req.on('socket', (s) => {
      if (!(s as TLSSocket).connecting) connectedAt ??= performance.now();
      else s.once('connect', () => (connectedAt = performance.now()));
      s.once('secureConnect', () => (secureAt = performance.now()));
    });
    req.setTimeout(15_000, () => req.destroy(new Error('client timeout')));
    req.on('error', (e) =>
      resolve({ ok: false, error: e.message, connectedAt, secureAt, failedAt: performance.now() }),
    );
    req.end();
  });
}

async function waitForLog(msg: string, since: number, ms = 10_000): Promise<Record<string, unknown>> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const hit = stack
      .edgeLogs()
      .slice(since)
      .find((l) => l.msg === msg);
    if (hit) return hit;
    await sleep(20);
  }
  throw new Error(`no edge log line "${msg}"`);
}

it('SIGHUP reloads certificates without dropping connections', async () => {
  const configPath = path.join(stack.dir, 'edge.json');
  const original = fs.readFileSync(configPath, 'utf8');
  const config = JSON.parse(original) as { certificates: unknown[] };
  const keepAlive = new https.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const before = await get(keepAlive);
    expect(before.ok).toBe(true);
    // A client that accepts both gets the first certificate: RSA in the dev stack.
    expect(before.keyType).toBe('rsa');

    // Serve the ECDSA certificate first from now on.
    fs.writeFileSync(
      configPath,
      JSON.stringify({ ...config, certificates: [...config.certificates].reverse() }, null, 2),
    );
    let mark = stack.edgeLogs().length;
    process.kill(stack.state.pids.edge, 'SIGHUP');
    await waitForLog('certificates reloaded', mark);
    const fresh = await get(false);
    expect(fresh).toMatchObject({ ok: true, keyType: 'ec' });
    // The connection opened before the reload is still up and serving.
    const after = await get(keepAlive);
    expect(after).toMatchObject({ ok: true, reused: true, keyType: 'rsa' });

    // A broken file: logged, and the edge keeps serving what it had.
    fs.writeFileSync(configPath, '{ not json');
    mark = stack.edgeLogs().length;
    process.kill(stack.state.pids.edge, 'SIGHUP');
    await waitForLog('configuration reload failed; still serving the previous certificates', mark);
    expect(await get(false)).toMatchObject({ ok: true, keyType: 'ec' });

    const metrics = await (await fetch(`http://127.0.0.1:${stack.state.adminPort}/metrics`)).text();
    expect(metrics).toContain('keyless_edge_certificate_reloads_total{result="ok"} 1');
  } finally {
    keepAlive.destroy();
    fs.writeFileSync(configPath, original);
  }
});

/** Busy child processes that keep every core of a 2-core machine saturated while they run. */
function cpuBurner(processes = 2): { stop(): void } {
  const children: ChildProcess[] = Array.from({ length: processes }, () =>
    spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }),
  );
  return { stop: () => children.forEach((c) => c.kill('SIGKILL')) };
}

it('SIGTERM under load, next to a CPU burner: zero failed requests among those started before it, then the edge exits', async () => {
  const pid = stack.state.pids.edge;
  expect(isAlive(pid)).toBe(true);
  const burner = cpuBurner();
  try {
    await sigtermUnderLoad(pid);
  } finally {
    burner.stop();
  }
});

async function sigtermUnderLoad(pid: number): Promise<void> {
  // An idle keep-alive connection: closed politely (no error on our side).
  const idleAgent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  expect((await get(idleAgent)).ok).toBe(true);
  const idleSocket = Object.values(idleAgent.freeSockets).flat()[0] as TLSSocket;
  expect(idleSocket).toBeDefined();
  let idleError: Error | undefined;
  const idleClosed = new Promise<void>((r) => idleSocket.once('close', () => r()));
  idleSocket.on('error', (e) => (idleError = e));

  // A slow upload that is active across the signal.
  const slow = new Promise<Outcome>((resolve) => {
    const body = Buffer.alloc(30_000, 'x');
    const req = https.request(
      {
        host: '127.0.0.1',
        port: stack.state.edgePort,
        servername: 'localhost',
        path: '/api/echo',
        method: 'POST',
        ca: stack.caPem,
        agent: false,
        headers: { host: 'localhost', 'content-length': String(body.length) },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ ok: res.statusCode === 200, status: res.statusCode, body: text }));
      },
    );
    req.on('error', (e) => resolve({ ok: false, error: e.message }));
    req.write(body.subarray(0, 10_000));
    setTimeout(() => req.write(body.subarray(10_000, 20_000)), 600);
    setTimeout(() => req.end(body.subarray(20_000)), 1200);
  });

  // Load: workers opening a new connection (full handshake) per request, back to back, each from its
  // own loopback address (so the per-client admission limit does not refuse them).
  const results: Outcome[] = [];
  let signalAt = Infinity;
  let stop = false;
  const workers = Array.from({ length: 12 }, async (_, i) => {
    while (!stop) {
      const r = await get(false, `127.0.0.${10 + i}`);
      results.push(r);
      if (!r.ok && performance.now() > signalAt) break; // the listener is gone: expected
    }
  });

  await sleep(800);
  const mark = stack.edgeLogs().length;
  signalAt = performance.now();
  process.kill(pid, 'SIGTERM');
  await waitForLog('draining', mark);
  await sleep(1000);
  stop = true;
  await Promise.all(workers);
  const slowResult = await slow;
  await idleClosed;

  // The edge finishes draining and exits on its own.
  const until = Date.now() + 15_000;
  while (isAlive(pid) && Date.now() < until) await sleep(50);
  expect(isAlive(pid)).toBe(false);
  const drained = await waitForLog('drained', mark, 1000);
  expect(drained.forciblyClosed).toBe(0);

  const startedBefore = results.filter((r) => r.connectedAt !== undefined && r.connectedAt < signalAt);
  const failedBefore = startedBefore.filter((r) => !r.ok);
  if (failedBefore.length > 0)
    console.log(
      'edge warnings:',
      stack.edgeLogs().filter((l) => l.level !== 'info'),
    );
  expect(startedBefore.length).toBeGreaterThan(10);
  expect(
    failedBefore.map((r) => ({
      error: r.error,
      connectedMsBeforeSignal: signalAt - r.connectedAt!,
      handshakeDone: r.secureAt !== undefined,
      failedMsAfterSignal: r.failedAt === undefined ? undefined : r.failedAt - signalAt,
    })),
  ).toEqual([]);
  expect(slowResult.ok).toBe(true);
  expect(JSON.parse(slowResult.body!).body.bytes).toBe(30_000);
  expect(idleError).toBeUndefined();
  idleAgent.destroy();
}
