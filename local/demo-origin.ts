/**
 * A tiny demo origin for the local stack: it shows what the keyless edge tells the origin about the
 * client's TLS connection (the `x-keyless-*` and `x-forwarded-*` request headers, see
 * `edge-proxy/src/proxy/headers.ts`).
 *
 *   GET /          self-contained HTML page (no external resources, strict CSP)
 *   GET /api/tls   the same facts as JSON
 *   ANY /api/echo  method, path, received headers, and length + SHA-256 of the request body
 *   GET /healthz   "ok"
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { KEYLESS_HEADERS, KEYLESS_ROUTE_HEADER } from '../edge-proxy/src/proxy/headers';

export interface DemoOriginOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Shown on the page as the origin that answered (default `demo origin`). */
  name?: string;
  /** Serve HTTPS with this key and certificate (the local stack's origin CA issues it). */
  tls?: { key: string; cert: string };
}

export interface DemoOrigin {
  /** `http://host:port` or `https://host:port` — the value for the edge's `origin` setting. */
  readonly url: string;
  readonly port: number;
  readonly host: string;
  close(): Promise<void>;
}

/** What the edge saw, as reported to the origin. `null` = the edge did not say. */
export interface EdgeView {
  /** True when the request carries the edge's headers (it came through the keyless edge). */
  viaEdge: boolean;
  protocol: string | null;
  cipher: string | null;
  group: string | null;
  signatureScheme: string | null;
  keyExchange: string | null;
  sni: string | null;
  alpn: string | null;
  keyOperationMs: number | null;
  resumed: boolean | null;
  /** Client address as seen by the edge (the last `x-forwarded-for` entry). */
  clientAddress: string | null;
  /** The whole `x-forwarded-for` chain, leftmost first. */
  forwardedFor: string[];
  forwardedProto: string | null;
  forwardedHost: string | null;
  /** HTTP version between client and edge (`2`, `1.1`, `1.0`). */
  httpVersion: string | null;
  /** Runtimes of the edge process (as it reports it) and of this origin, e.g. `node/24.22.3`. */
  edgeRuntime: string | null;
  originRuntime: string;
  /** The edge's route that chose this origin (`x-keyless-route`). */
  route: string | null;
  /** This origin's name, and whether the edge reached it over TLS. */
  origin: string;
}

function one(req: http.IncomingMessage, name: string): string | null {
  const v = req.headers[name];
  if (Array.isArray(v)) return v.length > 0 ? v.join(', ') : null;
  return typeof v === 'string' && v !== '' ? v : null;
}

export function edgeViewOf(req: http.IncomingMessage, origin = 'demo origin'): EdgeView {
  const forwardedFor = (one(req, 'x-forwarded-for') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const ms = one(req, KEYLESS_HEADERS.keyOperationMs);
  const msNum = ms === null ? NaN : Number(ms);
  const resumed = one(req, KEYLESS_HEADERS.resumed);
  const protocol = one(req, KEYLESS_HEADERS.protocol);
  return {
    viaEdge: protocol !== null,
    protocol,
    cipher: one(req, KEYLESS_HEADERS.cipher),
    group: one(req, KEYLESS_HEADERS.group),
    signatureScheme: one(req, KEYLESS_HEADERS.signatureScheme),
    keyExchange: one(req, KEYLESS_HEADERS.keyExchange),
    sni: one(req, KEYLESS_HEADERS.sni),
    alpn: one(req, KEYLESS_HEADERS.alpn),
    keyOperationMs: Number.isFinite(msNum) ? msNum : null,
    resumed: resumed === 'true' ? true : resumed === 'false' ? false : null,
    clientAddress: forwardedFor.length > 0 ? forwardedFor[forwardedFor.length - 1] : null,
    forwardedFor,
    forwardedProto: one(req, 'x-forwarded-proto'),
    forwardedHost: one(req, 'x-forwarded-host'),
    httpVersion: one(req, KEYLESS_HEADERS.httpVersion),
    edgeRuntime: one(req, KEYLESS_HEADERS.edgeRuntime),
    originRuntime: `node/${process.versions.node}`,
    route: one(req, KEYLESS_ROUTE_HEADER),
    origin: `${origin} (${(req.socket as { encrypted?: boolean }).encrypted ? 'HTTPS from the edge' : 'plain HTTP from the edge'})`,
  };
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function cell(v: string | null, none = 'not reported'): string {
  return v === null ? `<span class="none">${escapeHtml(none)}</span>` : `<code>${escapeHtml(v)}</code>`;
}

export function renderDemoPage(view: EdgeView): string {
  const keyOp =
    view.resumed === true
      ? '<span class="none">none: session resumed, no private-key operation</span>'
      : view.keyOperationMs === null
        ? cell(null)
        : `<code>${escapeHtml(view.keyOperationMs.toFixed(3))} ms</code>`;
  const rows: [string, string][] = [
    ['TLS protocol', cell(view.protocol)],
    ['Cipher suite', cell(view.cipher)],
    ['Key-exchange group', cell(view.group)],
    ['Signature scheme', cell(view.signatureScheme)],
    ['Key exchange', cell(view.keyExchange)],
    ['SNI', cell(view.sni, 'none sent')],
    ['ALPN', cell(view.alpn, 'none negotiated')],
    ['Key-operation latency', keyOp],
    ['Resumed', cell(view.resumed === null ? null : view.resumed ? 'yes' : 'no')],
    ['Client address', cell(view.clientAddress)],
    ['HTTP version at the edge', cell(view.httpVersion === null ? null : `HTTP/${view.httpVersion}`)],
    ['X-Forwarded-For', cell(view.forwardedFor.length > 0 ? view.forwardedFor.join(', ') : null)],
    ['X-Forwarded-Host', cell(view.forwardedHost)],
    ['X-Forwarded-Proto', cell(view.forwardedProto)],
    ['Edge runtime', cell(view.edgeRuntime)],
    ['Origin runtime', cell(view.originRuntime)],
    ['Route at the edge', cell(view.route)],
    ['Origin that answered', cell(view.origin)],
  ];
  const banner = view.viaEdge
    ? '<p class="ok">This request reached the origin through the keyless TLS edge. The edge terminated TLS without ever holding the certificate&#39;s private key: the one private-key operation of the handshake was done remotely by the key service.</p>'
    : '<p class="warn">This request did not come through the keyless edge (no <code>x-keyless-tls-*</code> headers).</p>';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Keyless TLS demo origin</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 46rem; padding: 0 1rem; color: #1d232a; }
h1 { font-size: 1.5rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #d8dde3; vertical-align: top; }
th { width: 40%; font-weight: 600; }
code { font: 14px ui-monospace, monospace; }
.none { color: #6b7580; font-style: italic; }
.ok { background: #e8f5ec; padding: .6rem .8rem; border-radius: 4px; }
.warn { background: #fdf2e3; padding: .6rem .8rem; border-radius: 4px; }
footer { margin-top: 1.5rem; color: #6b7580; font-size: .9rem; }
</style>
</head>
<body>
<h1>Keyless TLS &mdash; demo origin</h1>
${banner}
<table>
${rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${v}</td></tr>`).join('\n')}
</table>
<footer>The same facts as JSON: <a href="/api/tls">/api/tls</a>.</footer>
</body>
</html>
`;
}

const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

function send(
  res: http.ServerResponse,
  status: number,
  type: string,
  body: string,
  extra: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': String(Buffer.byteLength(body)),
    ...SECURITY_HEADERS,
    ...extra,
  });
  res.end(body);
}

function handle(req: http.IncomingMessage, res: http.ServerResponse, name: string): void {
  const path = (req.url ?? '/').split('?')[0];
  const method = req.method ?? 'GET';
  const readOnly = method === 'GET' || method === 'HEAD';
  if (path === '/api/echo') {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    req.on('end', () => {
      const body = JSON.stringify(
        { method, path: req.url, headers: req.headers, body: { bytes, sha256: hash.digest('hex') } },
        null,
        2,
      );
      send(res, 200, 'application/json; charset=utf-8', `${body}\n`);
    });
    return;
  }
  req.resume();
  if (!readOnly) {
    send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'GET, HEAD' });
    return;
  }
  switch (path) {
    case '/':
      send(res, 200, 'text/html; charset=utf-8', renderDemoPage(edgeViewOf(req, name)), {
        'content-security-policy':
          "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      });
      return;
    case '/api/tls':
      send(res, 200, 'application/json; charset=utf-8', `${JSON.stringify(edgeViewOf(req, name), null, 2)}\n`);
      return;
    case '/healthz':
      send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
      return;
    default:
      send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  }
}

export async function startDemoOrigin(opts: DemoOriginOptions = {}): Promise<DemoOrigin> {
  const host = opts.host ?? '127.0.0.1';
  const name = opts.name ?? 'demo origin';
  const listener = (req: http.IncomingMessage, res: http.ServerResponse): void => handle(req, res, name);
  const server = opts.tls
    ? https.createServer({ key: opts.tls.key, cert: opts.tls.cert }, listener)
    : http.createServer(listener);
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    url: `${opts.tls ? 'https' : 'http'}://${urlHost}:${port}`,
    port,
    host,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
