/** The origin a frontend forwards to, and the small error types of forwarding. */
import * as http from 'node:http';
import * as net from 'node:net';
import type { ProxyLog } from './types';

export interface OriginTarget {
  /** Host name or IP literal (IPv6 without brackets), for `http.request`. */
  hostname: string;
  port: number;
  /** `host[:port]` as a `Host` header value. */
  host: string;
}

/** Parse `http://host:port` (no path, query, fragment or credentials). Throws on anything else. */
export function parseOrigin(origin: string): OriginTarget {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    throw new Error(`proxy: origin must be an http:// URL, got ${JSON.stringify(origin)}`);
  }
  if (url.protocol !== 'http:') {
    throw new Error(`proxy: origin must use http:// (plain HTTP/1.1 to the origin), got ${url.protocol}`);
  }
  if ((url.pathname !== '' && url.pathname !== '/') || url.search || url.hash || url.username || url.password) {
    throw new Error(`proxy: origin must be http://host[:port] without path, query or credentials, got ${origin}`);
  }
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port ? Number(url.port) : 80;
  return { hostname, port, host: url.host };
}

/** Keep-alive agent for origin connections. */
export function createOriginAgent(opts: { maxSockets: number; idleSocketTimeoutMs: number }): http.Agent {
  return new http.Agent({
    keepAlive: true,
    keepAliveMsecs: 1000,
    maxSockets: opts.maxSockets,
    maxFreeSockets: Math.min(opts.maxSockets, 256),
    // Closes free (idle) sockets; keep it below the origin's own keep-alive timeout so the edge
    // never sends a request on a socket the origin is closing.
    timeout: opts.idleSocketTimeoutMs,
    scheduling: 'lifo',
  });
}

/**
 * Keep-alive agent whose every new socket starts with `header` (a PROXY v2 header), for one client
 * connection only: the header names that client, so these sockets must never carry another
 * client's requests. The socket queues the write until it is connected, before any request bytes.
 */
export function createProxyProtocolAgent(header: Buffer, opts: { maxSockets: number; idleSocketTimeoutMs: number }): http.Agent {
  const agent = createOriginAgent(opts);
  agent.createConnection = (options: http.ClientRequestArgs): net.Socket => {
    const socket = net.createConnection(options as net.NetConnectOpts);
    socket.write(header);
    return socket;
  };
  return agent;
}

/** A deadline towards the origin passed: becomes 504 Gateway Timeout. */
export class OriginTimeoutError extends Error {
  readonly code = 'ORIGIN_TIMEOUT';
  constructor(readonly phase: 'connect' | 'response') {
    super(`origin ${phase} timeout`);
    this.name = 'OriginTimeoutError';
  }
}

/** Errors worth one retry of a body-less idempotent request on a fresh socket (keep-alive race). */
export function isStaleSocketError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED';
}

export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Errors of an origin certificate that did not verify (Node's TLS client codes). */
const TLS_VERIFY_CODES = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'HOSTNAME_MISMATCH',
]);

export function isTlsVerificationError(err: unknown): err is Error {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && TLS_VERIFY_CODES.has(code);
}

/**
 * Whether the request got as far as the origin: its socket connected (and, for TLS, finished the
 * handshake) or was a kept-alive one. A request that never did may go to another address.
 */
export function trackReached(req: http.ClientRequest, secure: boolean): () => boolean {
  let reached = false;
  req.once('socket', (sock) => {
    if (req.reusedSocket) {
      reached = true;
      return;
    }
    sock.once(secure ? 'secureConnect' : 'connect', () => (reached = true));
  });
  return () => reached;
}

/** Settings resolved from `HttpFrontendOptions`, shared by `http-proxy.ts` and `upgrade.ts`. */
export interface ForwardContext {
  readonly connectTimeoutMs: number;
  readonly originTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly log: ProxyLog;
}

/** Set up an origin request's two deadlines: TCP connect, and socket inactivity. */
export function armOriginTimeouts(proxyReq: http.ClientRequest, ctx: ForwardContext): void {
  let connectTimer: NodeJS.Timeout | undefined;
  const clear = (): void => {
    if (connectTimer) clearTimeout(connectTimer);
    connectTimer = undefined;
  };
  proxyReq.on('socket', (sock) => {
    const pending = (sock as { connecting?: boolean }).connecting;
    if (!pending) return;
    connectTimer = setTimeout(() => proxyReq.destroy(new OriginTimeoutError('connect')), ctx.connectTimeoutMs);
    connectTimer.unref();
    sock.once('connect', clear);
  });
  proxyReq.once('close', clear);
  proxyReq.setTimeout(ctx.originTimeoutMs, () => proxyReq.destroy(new OriginTimeoutError('response')));
}

