/**
 * Test fixtures for the proxy layer: a throw-away self-signed certificate, a real Node TLS server
 * whose 'secureConnection' sockets go to the frontend (either as the TLSSocket itself, or wrapped in
 * a plain JS Duplex shaped like our engine's connection), a test origin, and small clients.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Duplex, Readable } from 'node:stream';
import * as tls from 'node:tls';
import { createHttpFrontend } from '../../edge-proxy/src/proxy/http-proxy';
import type {
  HandshakeInfo,
  HttpFrontend,
  ProxyRequestEvent,
  SecureConnection,
} from '../../edge-proxy/src/proxy/types';
import { startDemoOrigin, type DemoOrigin } from '../../local/demo-origin';

export interface TestCert {
  dir: string;
  key: Buffer;
  cert: Buffer;
  /** The self-signed certificate doubles as the CA file for clients. */
  caPath: string;
  cleanup(): void;
}

export function makeCert(): TestCert {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-proxy-test-'));
  const keyPath = path.join(dir, 'key.pem');
  const caPath = path.join(dir, 'ca.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost',
      '-days',
      '1',
      '-keyout',
      keyPath,
      '-out',
      caPath,
    ],
    { stdio: 'ignore' },
  );
  return {
    dir,
    key: fs.readFileSync(keyPath),
    cert: fs.readFileSync(caPath),
    caPath,
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * A plain JS `Duplex` over a TLSSocket with the `SecureConnection` surface — the shape of our own TLS
 * engine's connection. Node's http2 cannot use its native fast path on it (no StreamBase handle) and
 * wraps it in a JSStreamSocket, exactly as it will for the engine.
 */
export class WrappedConnection extends Duplex implements SecureConnection {
  readonly encrypted = true as const;

  constructor(
    private readonly inner: tls.TLSSocket,
    readonly handshakeInfo?: HandshakeInfo,
  ) {
    super({ allowHalfOpen: false });
    inner.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) inner.pause();
    });
    inner.on('end', () => this.push(null));
    inner.on('error', (err) => this.destroy(err));
    inner.on('close', () => {
      if (!this.destroyed) this.destroy();
    });
    inner.on('timeout', () => this.emit('timeout'));
  }

  get alpnProtocol(): string | false | null {
    return this.inner.alpnProtocol;
  }
  get servername(): string | false | null {
    return this.inner.servername;
  }
  get remoteAddress(): string | undefined {
    return this.inner.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.inner.remotePort;
  }
  getProtocol(): string | null {
    return this.inner.getProtocol();
  }
  getCipher(): { name: string; standardName: string; version: string } {
    return this.inner.getCipher();
  }
  setTimeout(ms: number, cb?: () => void): this {
    this.inner.setTimeout(ms);
    if (cb) this.once('timeout', cb);
    return this;
  }
  setNoDelay(noDelay?: boolean): this {
    this.inner.setNoDelay(noDelay);
    return this;
  }
  setKeepAlive(enable?: boolean, initialDelay?: number): this {
    this.inner.setKeepAlive(enable, initialDelay);
    return this;
  }

  override _read(): void {
    this.inner.resume();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.inner.write(chunk, (err) => cb(err ?? null));
  }
  override _final(cb: (err?: Error | null) => void): void {
    this.inner.end(() => cb());
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.inner.destroy();
    cb(err);
  }
}

export const FAKE_HANDSHAKE: HandshakeInfo = {
  group: 'x25519',
  signatureScheme: 'ecdsa_secp256r1_sha256',
  keyOperationMs: 12.3456,
  resumed: false,
  keyExchange: 'ecdhe',
};

export interface TlsEdge {
  port: number;
  close(): Promise<void>;
}

/** A real Node TLS server handing every handshaken connection to `frontend.handle`. */
export async function startTlsEdge(
  frontend: HttpFrontend,
  cert: TestCert,
  opts: { wrap?: boolean; handshakeInfo?: HandshakeInfo; alpn?: string[] } = {},
): Promise<TlsEdge> {
  const server = tls.createServer({
    key: cert.key,
    cert: cert.cert,
    ALPNProtocols: opts.alpn ?? ['h2', 'http/1.1'],
  });
  server.on('secureConnection', (sock: tls.TLSSocket) => {
    frontend.handle(opts.wrap ? new WrappedConnection(sock, opts.handshakeInfo ?? FAKE_HANDSHAKE) : sock);
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface TestServer {
  url: string;
  port: number;
  server: http.Server;
  close(): Promise<void>;
}

export async function startHttpServer(handler: http.RequestListener): Promise<TestServer> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * A port nothing listens on, that stays so for the test's life: chosen below Linux's ephemeral range
 * (ip_local_port_range starts at 32768), where no `listen(0)` of a parallel test can be given it — a
 * port bound and released would soon be handed to another test's server. Checked refused first.
 */
export async function deadPort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const refused = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(false);
      });
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
    });
    if (refused) return port;
  }
}

/** Deterministic pseudo-random bytes, produced lazily in chunks (a streamed body). */
export function patternStream(total: number, chunk = 64 * 1024): Readable {
  let sent = 0;
  let counter = 0;
  return new Readable({
    read() {
      if (sent >= total) {
        this.push(null);
        return;
      }
      const n = Math.min(chunk, total - sent);
      const buf = createHash('sha512').update(String(counter++)).digest();
      const out = Buffer.alloc(n);
      for (let i = 0; i < n; i += buf.length) buf.copy(out, i, 0, Math.min(buf.length, n - i));
      sent += n;
      this.push(out);
    },
  });
}

export async function sha256Of(stream: Readable): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream) {
    bytes += (chunk as Buffer).length;
    hash.update(chunk as Buffer);
  }
  return { bytes, sha256: hash.digest('hex') };
}

export interface SimpleResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
  alpn: string | false | null;
}

/** One HTTPS/1.1 request through the edge (no keep-alive unless an agent is given). */
export function httpsRequest(
  port: number,
  cert: TestCert,
  opts: {
    method?: string;
    path?: string;
    headers?: http.OutgoingHttpHeaders | string[];
    body?: Buffer | string | Readable;
    alpn?: string[];
    agent?: https.Agent;
  } = {},
): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const options: https.RequestOptions & { ALPNProtocols?: string[] } = {
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: cert.cert,
      method: opts.method ?? 'GET',
      path: opts.path ?? '/',
      headers: opts.headers,
      agent: opts.agent ?? false,
      ALPNProtocols: opts.alpn,
    };
    const req = https.request(options, (res) => {
      const alpn = (res.socket as tls.TLSSocket).alpnProtocol;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: Buffer.concat(chunks),
          alpn,
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.body instanceof Readable) opts.body.pipe(req);
    else req.end(opts.body);
  });
}

export interface H2Response {
  headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
}

export function h2Connect(port: number, cert: TestCert): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://localhost:${port}`, { ca: cert.cert });
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

export function h2Request(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: Buffer | string | Readable,
): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    let resHeaders: H2Response['headers'] | undefined;
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (resHeaders = h));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      if (!resHeaders) reject(new Error('no response headers'));
      else resolve({ headers: resHeaders, trailers, body: Buffer.concat(chunks) });
    });
    stream.on('error', reject);
    if (body instanceof Readable) body.pipe(stream);
    else if (body !== undefined) stream.end(body);
  });
}

/** Resolve after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The test origin:
 *   /hash         streams the request body into SHA-256, answers {bytes, sha256, method, headers}
 *   /headers      answers {headers, rawHeaders, url, method, httpVersion}
 *   /download?n=  streams n pattern bytes (chunked, no content-length)
 *   /cookies      two Set-Cookie headers plus hop-by-hop noise
 *   /trailers     a chunked body followed by trailers
 *   /slow?ms=     ten small chunks spread over ms milliseconds
 *   /hang         never answers
 *   /cut          sends the head and some body, then destroys the socket
 *   upgrade       101 + echo of every byte (a stand-in for WebSocket)
 */
export async function startTestOrigin(): Promise<TestServer & { requests: string[] }> {
  const requests: string[] = [];
  const json = (res: http.ServerResponse, value: unknown): void => {
    const body = JSON.stringify(value);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const srv = await startHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://origin');
    requests.push(`${req.method} ${req.url}`);
    switch (url.pathname) {
      case '/hash':
        sha256Of(req).then(
          (h) => json(res, { ...h, method: req.method, headers: req.headers }),
          () => requests.push(`ABORTED ${req.url}`),
        );
        return;
      case '/headers':
        req.resume();
        json(res, {
          headers: req.headers,
          rawHeaders: req.rawHeaders,
          url: req.url,
          method: req.method,
          httpVersion: req.httpVersion,
        });
        return;
      case '/download': {
        req.resume();
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        patternStream(Number(url.searchParams.get('n') ?? '0')).pipe(res);
        return;
      }
      case '/cookies':
        req.resume();
        res.writeHead(200, [
          'Set-Cookie',
          'a=1; Path=/',
          'Set-Cookie',
          'b=2; Path=/',
          'Content-Type',
          'text/plain',
          'Keep-Alive',
          'timeout=5',
          'Connection',
          'keep-alive, x-hop',
          'X-Hop',
          'secret',
          'Proxy-Connection',
          'keep-alive',
          'X-Multi',
          'one',
          'X-Multi',
          'two',
        ]);
        res.end('cookies');
        return;
      case '/trailers':
        req.resume();
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
        res.write('part one;');
        res.addTrailers({ 'x-checksum': 'abc123' });
        res.end('part two');
        return;
      case '/slow': {
        // 10 chunks spread over ?ms= milliseconds.
        req.resume();
        const ms = Number(url.searchParams.get('ms') ?? '300');
        res.writeHead(200, { 'content-type': 'text/plain' });
        let n = 0;
        const timer = setInterval(() => {
          res.write(`chunk${n};`);
          if (++n === 10) {
            clearInterval(timer);
            res.end();
          }
        }, ms / 10);
        res.on('close', () => clearInterval(timer));
        return;
      }
      case '/hang':
        req.resume();
        return;
      case '/cut':
        req.resume();
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100000' });
        res.write('x'.repeat(1000), () => setTimeout(() => res.socket?.destroy(), 20));
        return;
      default:
        req.resume();
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found');
    }
  });
  srv.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    requests.push(`UPGRADE ${req.url} ${req.headers.upgrade ?? ''}`);
    socket.on('error', () => undefined);
    if (req.url === '/bye') {
      socket.end(
        'HTTP/1.1 101 Switching Protocols\r\nupgrade: echo\r\nconnection: upgrade\r\n\r\n' + 'goodbye'.repeat(10000),
      );
      return;
    }
    if (req.url === '/refuse') {
      socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 7\r\nconnection: close\r\n\r\nrefused');
      return;
    }
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nupgrade: echo\r\nconnection: upgrade\r\n' +
        `x-saw-keyless-protocol: ${String(req.headers['x-keyless-tls-protocol'])}\r\n\r\n`,
    );
    if (head.length > 0) socket.write(head);
    socket.pipe(socket);
  });
  return Object.assign(srv, { requests });
}

/** What the HTTP/1.1 and HTTP/2 frontend tests share: a certificate, the test origin and the demo origin. */
export interface ProxyFixtures {
  cert: TestCert;
  origin: TestServer & { requests: string[] };
  demo: DemoOrigin;
  close(): Promise<void>;
}

export async function startProxyFixtures(): Promise<ProxyFixtures> {
  const cert = makeCert();
  const origin = await startTestOrigin();
  const demo = await startDemoOrigin({ port: 0, host: '127.0.0.1' });
  return {
    cert,
    origin,
    demo,
    close: async () => {
      await origin.close();
      await demo.close();
      cert.cleanup();
    },
  };
}

/** A frontend to `originUrl` behind a real TLS edge, with every request event it reports. */
export interface ProxyStack {
  frontend: HttpFrontend;
  edge: TlsEdge;
  events: ProxyRequestEvent[];
  close(): Promise<void>;
}

export async function startProxyStack(
  cert: TestCert,
  originUrl: string,
  extra: Partial<Parameters<typeof createHttpFrontend>[0]> = {},
  edgeOpts: Parameters<typeof startTlsEdge>[2] = {},
): Promise<ProxyStack> {
  const events: ProxyRequestEvent[] = [];
  const frontend = createHttpFrontend({ origin: originUrl, onRequest: (e) => events.push(e), ...extra });
  const edge = await startTlsEdge(frontend, cert, edgeOpts);
  return {
    frontend,
    edge,
    events,
    close: async () => {
      await frontend.close();
      await edge.close();
    },
  };
}
