/**
 * HTTP mode with `proxy.sendProxyProtocol`: the real edge (in process) in front of an HTTP origin
 * that first parses the PROXY v2 header of each connection. Every origin connection starts with
 * exactly one header naming the client connection it serves (origin connections are per client
 * connection, never shared), over HTTP/1.1 and HTTP/2.
 */
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { parseProxyV2, type ProxyHeader } from '../../../../edge-proxy/src/proxy/proxy-protocol-v2';
import { startInProcessEdge, type InProcessEdge } from '../../../helpers/in-process-edge';
import { tlsFacts } from '../../../helpers/proxy-origin';

interface Seen {
  /** Origin connection number (1, 2, …). */
  conn: number;
  source?: { address: string; port: number };
  alpn?: string;
  authority?: string;
  version?: string;
  forwardedFor?: string;
}

let origin: net.Server;
let edge: InProcessEdge;
const originSockets: Array<{ id: number; closed: Promise<void> }> = [];

beforeAll(async () => {
  const app = http.createServer((req, res) => {
    const meta = (req.socket as net.Socket & { proxy?: { id: number; header: ProxyHeader } }).proxy!;
    const f = tlsFacts(meta.header);
    const body = JSON.stringify({
      conn: meta.id,
      source: meta.header.source,
      alpn: f.alpn,
      authority: f.authority,
      version: f.version,
      forwardedFor: req.headers['x-forwarded-for'] as string | undefined,
    } satisfies Seen);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  let next = 0;
  origin = net.createServer((socket) => {
    socket.on('error', () => undefined);
    const id = ++next;
    originSockets.push({ id, closed: new Promise((r) => socket.once('close', () => r())) });
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      let h: ProxyHeader | null;
      try {
        h = parseProxyV2(buf);
      } catch {
        socket.destroy(); // no header: the test's requests would fail
        return;
      }
      if (!h) return;
      socket.off('data', onData);
      socket.pause();
      (socket as net.Socket & { proxy?: unknown }).proxy = { id, header: h };
      if (h.rest.length) socket.unshift(h.rest);
      app.emit('connection', socket);
      socket.resume();
    };
    socket.on('data', onData);
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  edge = await startInProcessEdge({
    origin: `http://127.0.0.1:${(origin.address() as AddressInfo).port}`,
    proxy: { sendProxyProtocol: true },
    alpn: ['h2', 'http/1.1'],
  });
});

afterAll(async () => {
  await edge?.stop();
  await new Promise<void>((r) => origin.close(() => r()));
});

function get(agent: https.Agent): Promise<{ seen: Seen; localPort: number }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: edge.port,
        servername: 'localhost',
        ca: edge.pki.caPem,
        agent,
        path: '/',
        ALPNProtocols: ['http/1.1'],
      } as https.RequestOptions,
      (res) => {
        const localPort = res.socket.localPort!; // the socket goes back to the agent at 'end'
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ seen: JSON.parse(text) as Seen, localPort }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test('HTTP/1.1: one header per origin connection, naming this client; a second client gets its own', async () => {
  const a = new https.Agent({ keepAlive: true, maxSockets: 1 });
  const b = new https.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const a1 = await get(a);
    const a2 = await get(a);
    const b1 = await get(b);
    expect(a2.localPort).toBe(a1.localPort); // one client connection…
    expect(a2.seen.conn).toBe(a1.seen.conn); // …one origin connection, its header sent once
    expect(a1.seen.source).toEqual({ address: '127.0.0.1', port: a1.localPort });
    expect(a1.seen).toMatchObject({
      alpn: 'http/1.1',
      authority: 'localhost',
      version: 'TLSv1.3',
      forwardedFor: '127.0.0.1',
    });
    expect(b1.seen.conn).not.toBe(a1.seen.conn); // never a socket with another client's header
    expect(b1.seen.source).toEqual({ address: '127.0.0.1', port: b1.localPort });
  } finally {
    a.destroy();
    b.destroy();
  }
});

test('the origin connections of a client connection close with it', async () => {
  const a = new https.Agent({ keepAlive: true, maxSockets: 1 });
  const r = await get(a);
  a.destroy(); // the client goes away
  await originSockets.find((s) => s.id === r.seen.conn)!.closed;
});

test('HTTP/2: the header carries ALPN h2 and the client connection', async () => {
  const session = http2.connect(`https://localhost:${edge.port}`, {
    ca: edge.pki.caPem,
    host: '127.0.0.1',
    servername: 'localhost',
  } as http2.SecureClientSessionOptions);
  try {
    await new Promise<void>((resolve, reject) => {
      session.once('connect', () => resolve());
      session.once('error', reject);
    });
    const localPort = session.socket.localPort;
    const ask = (): Promise<Seen> =>
      new Promise((resolve, reject) => {
        const s = session.request({ ':path': '/' });
        let text = '';
        s.on('data', (d: Buffer) => (text += d.toString()));
        s.on('end', () => resolve(JSON.parse(text) as Seen));
        s.on('error', reject);
        s.end();
      });
    const [x, y] = await Promise.all([ask(), ask()]);
    for (const seen of [x, y]) {
      expect(seen.source).toEqual({ address: '127.0.0.1', port: localPort });
      expect(seen).toMatchObject({ alpn: 'h2', authority: 'localhost', version: 'TLSv1.3' });
    }
  } finally {
    session.close();
  }
});
