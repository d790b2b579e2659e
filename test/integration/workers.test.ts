/**
 * The edge with two worker processes (KEYLESS_WORKERS=2, edge-proxy/src/workers.ts) in the whole
 * local stack (`keyless dev`): both workers serve the one TLS port, a session ticket issued by one
 * resumes on the other (both fetched the same fleet ticket keys), the admin port's /metrics is the sum
 * of the workers' own figures, and SIGTERM to the primary drains both workers before it exits.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as tls from 'node:tls';
import { isAlive, startStackProcess, type StackProcess } from '../helpers/dev-stack-process';

let stack: StackProcess;

beforeAll(async () => {
  stack = await startStackProcess({ KEYLESS_WORKERS: '2' });
});

afterAll(async () => {
  await stack?.stop();
  if (stack) fs.rmSync(stack.dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One TLS 1.3 connection with one GET; resolves with whether it resumed and the session to offer next. */
function getOnce(session?: Buffer): Promise<{ resumed: boolean; status: string; session?: Buffer }> {
  return new Promise((resolve, reject) => {
    let next: Buffer | undefined;
    let head = '';
    let resumed = false;
    const socket = tls.connect({
      host: '127.0.0.1',
      port: stack.state.edgePort,
      servername: 'localhost',
      ca: stack.caPem,
      session,
      minVersion: 'TLSv1.3',
      ALPNProtocols: ['http/1.1'],
    });
    socket.setTimeout(15_000, () => socket.destroy(new Error('client timeout')));
    socket.on('session', (s: Buffer) => (next ??= s));
    socket.once('secureConnect', () => {
      resumed = socket.isSessionReused();
      socket.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    });
    socket.on('data', (d: Buffer) => (head += d.toString('latin1')));
    socket.once('error', reject);
    socket.once('close', () => resolve({ resumed, status: head.slice(0, 12), session: next }));
  });
}

function getText(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

/** Sum of one metric's samples in Prometheus text, optionally only those whose labels contain `match`. */
function total(text: string, name: string, match = ''): number {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .filter((l) => l.includes(match))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

const handshakeLines = () => stack.edgeLogs().filter((l) => l.msg === 'handshake');

async function waitFor<T>(what: string, get: () => T | undefined, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

it('two workers start, each with its own admin listener, under one primary', async () => {
  const listening = await waitFor('two worker listening lines', () => {
    const l = stack.edgeLogs().filter((x) => x.msg === 'worker listening');
    return l.length >= 2 ? l : undefined;
  });
  expect(new Set(listening.map((l) => l.worker))).toEqual(new Set([0, 1]));
  expect(listening.every((l) => l.tlsPort === stack.state.edgePort)).toBe(true);
  const primary = stack.edgeLogs().find((l) => l.msg === 'edge listening');
  expect(primary).toMatchObject({ workers: 2, adminPort: stack.state.adminPort });
  expect(primary?.worker).toBeUndefined();
});

/**
 * At least `min` new connections, more until both workers have served one (at most `max`): the
 * kernel spreads them by a hash of their addresses (reuseport, the default on Linux), or the primary
 * hands them out in turn.
 */
async function untilBothWorkersServe(min: number, max: number): Promise<Array<Record<string, unknown>>> {
  const before = handshakeLines().length;
  for (
    let i = 0;
    i < max &&
    (i < min ||
      new Set(
        handshakeLines()
          .slice(before)
          .map((l) => l.worker),
      ).size < 2);
    i++
  ) {
    expect((await getOnce()).status).toBe('HTTP/1.1 200');
    await waitFor('its handshake line', () => (handshakeLines().length > before + i ? true : undefined));
  }
  return handshakeLines().slice(before);
}

it('both workers serve handshakes on the one TLS port', async () => {
  const lines = await untilBothWorkersServe(6, 40);
  expect(new Set(lines.map((l) => l.worker))).toEqual(new Set([0, 1]));
});

it('a session ticket issued by one worker resumes on the other', async () => {
  const before = handshakeLines().length;
  const first = await getOnce();
  expect(first.session).toBeDefined();
  const issuer = (await waitFor('the full handshake line', () => handshakeLines()[before]))?.worker;
  // Connections are spread over the workers: of the next few, some land on the other worker.
  const resumedOn = new Set<unknown>();
  for (let i = 0; i < 30 && (i < 4 || ![...resumedOn].some((w) => w !== issuer)); i++) {
    const at = handshakeLines().length;
    const r = await getOnce(first.session);
    expect(r.status).toBe('HTTP/1.1 200');
    expect(r.resumed).toBe(true);
    resumedOn.add((await waitFor('a resumed handshake line', () => handshakeLines()[at]))?.worker);
  }
  expect([...resumedOn].some((w) => w !== issuer)).toBe(true);
  expect(
    handshakeLines()
      .slice(before + 1)
      .every((l) => l.resumed === true),
  ).toBe(true);
});

it("/metrics on the admin port is the sum of the workers' own figures", async () => {
  const ports = stack
    .edgeLogs()
    .filter((x) => x.msg === 'worker listening')
    .map((l) => l.adminPort as number);
  const own = await Promise.all(ports.map((p) => getText(p, '/metrics')));
  const merged = await getText(stack.state.adminPort, '/metrics');
  expect(merged.status).toBe(200);
  for (const [name, match] of [
    ['keyless_edge_handshakes_total', 'result="ok"'],
    ['keyless_edge_handshakes_total', 'kind="resumed"'],
    ['keyless_edge_connections_total', ''],
    ['keyless_edge_key_operations_avoided_total', ''],
    ['keyless_edge_handshake_duration_seconds_count', ''],
  ] as const) {
    const sum = own.reduce((n, o) => n + total(o.body, name, match), 0);
    expect({ name, match, value: total(merged.body, name, match) }).toEqual({ name, match, value: sum });
  }
  expect(total(merged.body, 'keyless_edge_handshakes_total', 'result="ok"')).toBe(handshakeLines().length);
  expect(total(merged.body, 'keyless_edge_workers')).toBe(2);
  const health = await getText(stack.state.adminPort, '/healthz');
  expect(health.status).toBe(200);
  expect(JSON.parse(health.body)).toMatchObject({ ok: true, workers: [{ ok: true }, { ok: true }] });
});

it('a worker that dies is replaced, and the edge keeps serving meanwhile', async () => {
  const listening = () => stack.edgeLogs().filter((x) => x.msg === 'worker listening');
  const victim = listening().find((l) => l.worker === 0)!;
  const before = listening().length;
  const logged = stack.edgeLogs().length;
  process.kill(victim.pid as number, 'SIGKILL');
  await waitFor('the primary noticing', () =>
    stack
      .edgeLogs()
      .slice(logged)
      .find((l) => l.msg === 'worker exited; starting another' && l.worker === 0 && l.signal === 'SIGKILL'),
  );
  // The other worker takes the connections until the replacement listens.
  for (let i = 0; i < 3; i++) expect((await getOnce()).status).toBe('HTTP/1.1 200');
  const replacement = await waitFor(
    'a replacement worker 0',
    () =>
      listening()
        .slice(before)
        .find((l) => l.worker === 0),
    30_000,
  );
  expect(replacement.pid).not.toBe(victim.pid);
  const lines = await untilBothWorkersServe(4, 40);
  expect(new Set(lines.map((l) => l.worker))).toEqual(new Set([0, 1]));
});

it('SIGTERM to the primary drains both workers, then the edge exits', async () => {
  const pid = stack.state.pids.edge;
  expect(isAlive(pid)).toBe(true);
  // An idle kept-alive connection on each worker is closed politely by the drain.
  const idle = await Promise.all(
    [0, 1].map(
      () =>
        new Promise<tls.TLSSocket>((resolve, reject) => {
          const s = tls.connect(
            {
              host: '127.0.0.1',
              port: stack.state.edgePort,
              servername: 'localhost',
              ca: stack.caPem,
              ALPNProtocols: ['http/1.1'],
            },
            () => resolve(s),
          );
          s.once('error', reject);
        }),
    ),
  );
  const closed = idle.map((s) => new Promise<void>((r) => s.once('close', () => r())));
  const since = stack.edgeLogs().length;
  process.kill(pid, 'SIGTERM');
  const drained = await waitFor(
    'both workers drained',
    () => {
      const l = stack
        .edgeLogs()
        .slice(since)
        .filter((x) => x.msg === 'drained');
      return l.length >= 2 ? l : undefined;
    },
    30_000,
  );
  expect(new Set(drained.map((l) => l.worker))).toEqual(new Set([0, 1]));
  await Promise.all(closed);
  const until = Date.now() + 15_000;
  while (isAlive(pid) && Date.now() < until) await sleep(50);
  expect(isAlive(pid)).toBe(false);
});
