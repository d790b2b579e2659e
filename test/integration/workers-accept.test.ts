/**
 * How connections reach two edge workers (KEYLESS_WORKER_ACCEPT, edge-proxy/src/workers.ts), in the
 * mode the edge chooses on this platform (reuseport on Linux: each worker binds the TLS port with
 * SO_REUSEPORT; round-robin elsewhere: the primary hands connections over). Both workers accept
 * connections, and SIGTERM still lets the handshakes in flight complete before the edge exits.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { acceptMode } from '../../edge-proxy/src/workers';
import { isAlive, startStackProcess, type StackProcess } from '../helpers/dev-stack-process';

const MODE = acceptMode();
let stack: StackProcess;

beforeAll(async () => {
  stack = await startStackProcess({ KEYLESS_WORKERS: '2' });
});

afterAll(async () => {
  await stack?.stop();
  if (stack) fs.rmSync(stack.dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, get: () => T | undefined, ms = 15_000, seen?: () => string): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > until)
      throw new Error(`timed out waiting for ${what}${seen ? `; the edge logged ${seen()}` : ''}`);
    await sleep(25);
  }
}

const logsSince = (mark: number, msg: string) =>
  stack
    .edgeLogs()
    .slice(mark)
    .filter((l) => l.msg === msg);
const workerPids = () =>
  stack
    .edgeLogs()
    .filter((l) => l.msg === 'worker listening')
    .map((l) => l.pid as number);

/**
 * A TLS handshake over `socket` (already connected), then one request; resolves with the negotiated
 * protocol once the response's status line arrived. The request matters: a TLS 1.3 client counts its
 * handshake done before the server has read its Finished, so only an answer shows the edge finished
 * the handshake too (and served the connection's first request, even while draining).
 */
function handshakeOver(socket: net.Socket): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ socket, servername: 'localhost', ca: stack.caPem, ALPNProtocols: ['http/1.1'] }, () => {
      s.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    });
    let head = '';
    s.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n')) return;
      if (head.startsWith('HTTP/1.1 200 ')) resolve(s.getProtocol());
      else reject(new Error(`unexpected answer ${JSON.stringify(head.split('\r\n')[0])}`));
      s.destroy();
    });
    s.once('error', reject);
  });
}

function connectTcp(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(stack.state.edgePort, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Inodes of the sockets listening on `port` (Linux /proc/net/tcp{,6}: state 0A is LISTEN). */
function listeningInodes(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  return ['/proc/net/tcp', '/proc/net/tcp6']
    .filter((f) => fs.existsSync(f))
    .flatMap((f) => fs.readFileSync(f, 'utf8').split('\n').slice(1))
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols.length > 9 && cols[1].endsWith(`:${hexPort}`) && cols[3] === '0A')
    .map((cols) => cols[9]);
}

/** Which of `pids` hold a socket with one of these inodes. */
function owners(inodes: string[], pids: number[]): number[] {
  const wanted = new Set(inodes.map((i) => `socket:[${i}]`));
  return pids.filter((pid) => {
    try {
      return fs.readdirSync(`/proc/${pid}/fd`).some((fd) => {
        try {
          return wanted.has(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
        } catch {
          return false;
        }
      });
    } catch {
      return false;
    }
  });
}

it(`the edge says how connections reach its workers (${MODE})`, async () => {
  const primary = await waitFor('the edge listening line', () =>
    stack.edgeLogs().find((l) => l.msg === 'edge listening'),
  );
  expect(primary).toMatchObject({ workers: 2, accept: MODE });
  const workers = await waitFor('two worker listening lines', () =>
    workerPids().length >= 2 ? workerPids() : undefined,
  );
  if (process.platform !== 'linux') return; // /proc is Linux's
  const inodes = listeningInodes(stack.state.edgePort);
  if (MODE === 'reuseport') {
    // One listener per worker, in the worker, none in the primary: nothing stands between client and worker.
    expect(inodes).toHaveLength(2);
    expect(owners(inodes, workers).sort()).toEqual([...workers].sort());
    expect(owners(inodes, [stack.state.pids.edge])).toEqual([]);
  } else {
    expect(inodes).toHaveLength(1);
    expect(owners(inodes, [stack.state.pids.edge])).toEqual([stack.state.pids.edge]);
  }
});

it('both workers accept connections on the one TLS port', async () => {
  const mark = stack.edgeLogs().length;
  // The kernel spreads connections by a hash of their addresses (reuseport), or the primary in turn:
  // either way a few connections reach both workers.
  for (let i = 0; i < 40 && new Set(logsSince(mark, 'handshake').map((l) => l.worker)).size < 2; i++) {
    expect(await handshakeOver(await connectTcp())).toBe('TLSv1.3');
    await waitFor('its handshake line', () => (logsSince(mark, 'handshake').length > i ? true : undefined));
  }
  expect(new Set(logsSince(mark, 'handshake').map((l) => l.worker))).toEqual(new Set([0, 1]));
});

it('SIGTERM lets the handshakes in flight on both workers complete, then the edge exits', async () => {
  const pid = stack.state.pids.edge;
  // Connections accepted before the signal whose ClientHello comes only once both workers drain.
  const sockets = await Promise.all(Array.from({ length: 16 }, connectTcp));
  const mark = stack.edgeLogs().length;
  process.kill(pid, 'SIGTERM');
  await waitFor('both workers draining', () => (logsSince(mark, 'draining').length >= 2 ? true : undefined));
  const protocols = await Promise.all(sockets.map(handshakeOver));
  expect(protocols).toEqual(sockets.map(() => 'TLSv1.3'));
  const handshakes = await waitFor(
    '16 handshake lines',
    () => (logsSince(mark, 'handshake').length >= 16 ? logsSince(mark, 'handshake') : undefined),
    15_000,
    () => JSON.stringify(stack.edgeLogs().slice(mark)),
  );
  expect(new Set(handshakes.map((l) => l.worker))).toEqual(new Set([0, 1]));
  const drained = await waitFor(
    'both workers drained',
    () => (logsSince(mark, 'drained').length >= 2 ? logsSince(mark, 'drained') : undefined),
    30_000,
  );
  expect(drained.map((l) => l.forciblyClosed)).toEqual([0, 0]);
  const until = Date.now() + 15_000;
  while (isAlive(pid) && Date.now() < until) await sleep(50);
  expect(isAlive(pid)).toBe(false);
});
