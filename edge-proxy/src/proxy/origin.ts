/** Origin agents, deadlines and the small error types of forwarding to an origin. */
import * as http from 'node:http';
import * as net from 'node:net';
import type { ProxyLog } from './types';

/** Keep-alive settings of every origin agent (a route's pool, or one client connection's). */
export function originAgentOptions(opts: { maxSockets: number; idleSocketTimeoutMs: number }): http.AgentOptions {
  return {
    keepAlive: true,
    keepAliveMsecs: 1000,
    maxSockets: opts.maxSockets,
    maxFreeSockets: Math.min(opts.maxSockets, 256),
    // Closes free (idle) sockets; keep it below the origin's own keep-alive timeout so the edge
    // never sends a request on a socket the origin is closing.
    timeout: opts.idleSocketTimeoutMs,
    scheduling: 'lifo',
  };
}

/**
 * Keep-alive agent whose every new socket starts with `header` (a PROXY v2 header), for one client
 * connection only: the header names that client, so these sockets must never carry another
 * client's requests. The socket queues the write until it is connected, before any request bytes.
 */
export function createProxyProtocolAgent(
  header: Buffer,
  opts: { maxSockets: number; idleSocketTimeoutMs: number },
): http.Agent {
  const agent = new http.Agent(originAgentOptions(opts));
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

/** Settings resolved from `HttpFrontendOptions`, shared by `forward-request.ts` and `upgrade.ts`. */
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
