/**
 * The real edge assembly (`startEdge`) serving several certificate entries (hostnames, optional
 * mTLS), in front of the real key-service handler (file keys) behind a local Lambda endpoint, with an
 * echo origin that reports the host and `x-keyless-*` headers it received. For the 421 rule and the
 * routing tests: raw TLS clients pick SNI and Host independently.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { parseEdgeConfig } from '../../edge-proxy/src/config';
import { startEdge, type RunningEdge } from '../../edge-proxy/src/edge';
import { createLocalHandler } from '../../local/lambda/local-key-service';
import { startLocalLambda, type LocalLambda } from '../../local/lambda';
import { makeClientPki, makeTestPki, type TestClientCert, type TestClientPki, type TestPki } from './certs';
import { recordingLogger } from './recording-logger';

const FUNCTION = 'keyless-key-service';

export interface HostEntry {
  name: string;
  hostnames: string[];
  clientAuth?: 'optional' | 'required';
}

/** What the echo origin saw, as it answers it (JSON body). */
export interface EchoSeen {
  origin: string;
  host?: string;
  method: string;
  url: string;
  headers: Record<string, string>;
}

export interface EchoOrigin {
  name: string;
  url: string;
  port: number;
  seen: EchoSeen[];
  server: http.Server;
  close(): Promise<void>;
}

/**
 * An HTTP/1.1 origin answering every request with JSON: its name and what it received. With `tls`,
 * an HTTPS origin; with `port`, on that port (to bring a stopped origin back).
 */
export async function startEchoOrigin(
  name: string,
  opts: { tls?: { key: string | Buffer; cert: string }; port?: number } = {},
): Promise<EchoOrigin> {
  const seen: EchoSeen[] = [];
  const handler: http.RequestListener = (req, res) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (k.startsWith('x-keyless-') && typeof v === 'string') headers[k] = v;
    const s: EchoSeen = { origin: name, host: req.headers.host, method: req.method ?? '', url: req.url ?? '', headers };
    seen.push(s);
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify(s);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
      res.end(body);
    });
  };
  const server: http.Server = opts.tls
    ? https.createServer({ key: opts.tls.key, cert: opts.tls.cert }, handler)
    : http.createServer(handler);
  await new Promise<void>((r) => server.listen(opts.port ?? 0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    seen,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface MultiHostEdge {
  edge: RunningEdge;
  port: number;
  pki: TestPki;
  clients: TestClientPki;
  /** A client certificate the mTLS entries accept. */
  alice: TestClientCert;
  logs: Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

/** Start the edge with these entries (the first is the default) and this extra configuration. */
export async function startMultiHostEdge(entries: HostEntry[], extra: Record<string, unknown>): Promise<MultiHostEdge> {
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const pki = makeTestPki();
  const clients = makeClientPki();
  const alice = clients.issue('alice', { subject: '/CN=alice' });
  const caFile = path.join(pki.dir, 'clients-ca.pem');
  fs.writeFileSync(caFile, clients.caPem);
  const leaves = entries.map((e) => {
    const leaf = pki.leaf(e.name, 'p256', e.hostnames);
    const chainFile = path.join(pki.dir, `${e.name}-chain.pem`);
    fs.writeFileSync(chainFile, leaf.chainPem);
    return { e, leaf, chainFile };
  });
  const handler = createLocalHandler({
    keys: leaves.map(({ e, leaf }) => ({ name: e.name, custody: 'file' as const, path: leaf.keyPath })),
    ticketKeys: null,
    logger: () => undefined,
  });
  const lambda: LocalLambda = await startLocalLambda({
    port: 0,
    functions: { [FUNCTION]: (event, context) => handler(event, context) },
  });
  const logs: Array<Record<string, unknown>> = [];
  const config = parseEdgeConfig({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    certificates: leaves.map(({ e, chainFile }) => ({
      chainFile,
      keyName: e.name,
      ...(e.clientAuth ? { clientAuth: { mode: e.clientAuth, caFile } } : {}),
    })),
    keyServices: [{ functionName: FUNCTION, region: 'us-east-1', endpoint: `http://127.0.0.1:${lambda.port}` }],
    alpn: ['h2', 'http/1.1'],
    handshakeTimeoutMs: 10_000,
    tickets: { enabled: false },
    ...extra,
  });
  const edge = await startEdge(config, recordingLogger(logs));
  return {
    edge,
    port: edge.tlsPort,
    pki,
    clients,
    alice,
    logs,
    async stop() {
      await edge.close();
      await lambda.close();
      pki.cleanup();
      clients.cleanup();
    },
  };
}

export interface RawResponse {
  status: number;
  head: string;
  body: string;
}

/**
 * One TLS connection (SNI `servername`, or none), one raw HTTP/1.1 request written as given, the
 * response read until the connection closes (send `Connection: close`). Never hangs: 10 s backstop.
 */
export function rawHttp1(
  port: number,
  ca: string,
  servername: string | undefined,
  request: string,
  opts: tls.ConnectionOptions = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      host: '127.0.0.1',
      port,
      ca,
      ALPNProtocols: ['http/1.1'],
      ...(servername ? { servername } : { servername: '', checkServerIdentity: () => undefined }),
      ...opts,
    });
    const timer = setTimeout(() => s.destroy(new Error('client timeout')), 10_000);
    let text = '';
    s.on('secureConnect', () => s.write(request));
    s.on('data', (d: Buffer) => (text += d.toString('latin1')));
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.on('close', () => {
      clearTimeout(timer);
      const split = text.indexOf('\r\n\r\n');
      const head = split >= 0 ? text.slice(0, split) : text;
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
      resolve({ status: m ? Number(m[1]) : 0, head, body: split >= 0 ? text.slice(split + 4) : '' });
    });
  });
}

/** HTTP/2 session over one TLS connection with this SNI. */
export function h2Session(
  port: number,
  ca: string,
  servername: string,
  opts: tls.ConnectionOptions = {},
): http2.ClientHttp2Session {
  const session = http2.connect(`https://${servername}:${port}`, {
    createConnection: () => tls.connect({ host: '127.0.0.1', port, servername, ca, ALPNProtocols: ['h2'], ...opts }),
  });
  session.on('error', () => undefined);
  return session;
}

/** One HTTP/2 GET on `session` with this `:authority`. */
export function h2Get(
  session: http2.ClientHttp2Session,
  authority: string,
  p = '/',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'GET', ':path': p, ':authority': authority });
    let body = '';
    let status = 0;
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => resolve({ status, body }));
    req.on('error', reject);
    req.end();
  });
}
