/**
 * The log-noise bug: "peer closed the connection during the handshake" was logged as a failed
 * handshake (warn) for clients whose handshake had succeeded from their side — a TLS 1.3 client
 * that closes right after connecting never sends its Finished (Node's `tls` destroyed in
 * 'secureConnect' does exactly that) — and for TCP probes that send nothing (load-balancer health
 * checks). Both are routine now: a sampled debug line and `result="closed"`; a client that gives up
 * in the middle of the handshake is still a warning.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { startInProcessEdge, type InProcessEdge } from '../helpers/in-process-edge';
import { clientHelloBody, handshakeRecord } from '../helpers/client-hello';

let e: InProcessEdge;
beforeAll(async () => {
  // Generous deadlines: the key service shares this process, and a loaded machine must not turn a
  // routine close into a timeout.
  e = await startInProcessEdge({
    admission: { perClientRatePerSecond: 1000, perClientBurst: 1000 },
    handshakeTimeoutMs: 30_000,
    keyOperationTimeoutMs: 20_000,
    keyServiceConnectTimeoutMs: 5000,
  });
});
afterAll(() => e.stop());

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const closedCount = (): number => e.edge.edgeMetrics.handshakes.sum({ result: 'closed' });
const linesAbout = (before: number) =>
  e.logs.slice(before).filter((l) => l.msg === 'handshake failed' || l.msg === 'handshake abandoned');

/**
 * A TLS 1.3 client whose Finished never reaches the edge: a relay forwards the client's first flight
 * (the ClientHello) only, and closes towards the edge once the client reports success.
 */
async function clientWhoseFinishedIsLost(): Promise<boolean> {
  const relay = net.createServer((c) => {
    const up = net.connect(e.port, '127.0.0.1');
    let forwarded = false;
    c.on('data', (d) => {
      if (!forwarded) up.write(d);
      forwarded = true;
    });
    up.on('data', (d) => c.write(d));
    c.on('close', () => up.end());
    c.on('error', () => undefined);
    up.on('error', () => undefined);
    up.on('close', () => c.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  try {
    return await new Promise<boolean>((resolve) => {
      const s = tls.connect(
        {
          host: '127.0.0.1',
          port: (relay.address() as net.AddressInfo).port,
          servername: 'localhost',
          ca: e.pki.caPem,
          minVersion: 'TLSv1.3',
        },
        () => {
          s.destroy();
          resolve(true);
        },
      );
      s.on('error', () => resolve(false));
    });
  } finally {
    relay.close();
  }
}

it('a TLS 1.3 client that leaves after our Finished is not a failed handshake', async () => {
  const before = e.logs.length;
  const closed = closedCount();
  expect(await clientWhoseFinishedIsLost()).toBe(true); // the client saw a successful handshake
  await until(() => closedCount() === closed + 1, 'the abandoned handshake to be counted');
  const lines = linesAbout(before);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatchObject({
    level: 'debug',
    msg: 'handshake abandoned',
    error: 'peer closed the connection after the server Finished without sending its own',
  });
  expect(lines[0].conn).toMatch(/^[0-9a-f]{6}-[0-9a-z]+$/);
  expect(e.edge.edgeMetrics.handshakes.sum({ result: 'error' })).toBe(0);
});

it('a TCP probe that sends nothing is not a failed handshake', async () => {
  const before = e.logs.length;
  const closed = closedCount();
  await new Promise<void>((resolve) => {
    const s = net.connect(e.port, '127.0.0.1', () => s.end());
    s.on('close', () => resolve());
    s.resume();
  });
  await until(() => closedCount() === closed + 1, 'the probe to be counted');
  expect(linesAbout(before)).toEqual([
    expect.objectContaining({
      level: 'debug',
      msg: 'handshake abandoned',
      error: 'peer closed the connection before sending a ClientHello',
    }),
  ]);
});

it('a client that gives up in the middle of the handshake is still a warning', async () => {
  const before = e.logs.length;
  const closed = closedCount();
  // Half a ClientHello, then FIN.
  const hello = handshakeRecord(clientHelloBody({ serverName: 'localhost' }));
  await new Promise<void>((resolve) => {
    const s = net.connect(e.port, '127.0.0.1', () => s.end(hello.subarray(0, 40)));
    s.on('close', () => resolve());
    s.resume();
  });
  await until(() => closedCount() === closed + 1, 'the failed handshake to be counted');
  expect(linesAbout(before)).toEqual([
    expect.objectContaining({
      level: 'warn',
      msg: 'handshake failed',
      error: 'peer closed the connection during the handshake',
    }),
  ]);
});

it('a complete handshake still logs one info line and no failure', async () => {
  const before = e.logs.length;
  await new Promise<void>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: e.port, servername: 'localhost', ca: e.pki.caPem }, () => s.end());
    s.on('close', () => resolve());
    s.on('error', reject);
    s.resume();
  });
  await until(() => e.logs.slice(before).some((l) => l.msg === 'connection closed'), 'the connection to close');
  expect(linesAbout(before)).toEqual([]);
  expect(e.logs.slice(before).filter((l) => l.msg === 'handshake')).toEqual([
    expect.objectContaining({ level: 'info', protocol: 'TLSv1.3' }),
  ]);
});
