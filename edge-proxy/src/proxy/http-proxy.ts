/**
 * The HTTP frontend of the edge (docs/architecture.md, "Deployables", `src/proxy/`): takes each
 * handshaken `SecureConnection` from the TLS engine, serves it with Node's own HTTP/1.1 or HTTP/2
 * server (chosen by ALPN), and reverse-proxies every request over HTTP/1.1 (plain or TLS) to the
 * origin its route chooses. Every stream and socket has an 'error' handler: no client or origin
 * behaviour crashes the process.
 *
 * - http1-frontend.ts, http2-frontend.ts: the two servers; upgrade.ts: WebSocket-style tunnels.
 * - forward-request.ts: one request to the origin and its response back (502/504, retries).
 * - request-routing.ts (routing.ts, origin-pool.ts): the route and the 421 rule.
 * - frontend-connections.ts: the connections owned; frontend-drain.ts: graceful shutdown.
 * - `sendProxyProtocol`: every origin connection starts with a PROXY v2 header naming the client, so
 *   origin connections belong to one client connection (an agent each) rather than a shared pool.
 */
import { describeConnection } from './connection-facts';
import type { ForwardEnv } from './forward-request';
import { drainFrontend } from './frontend-drain';
import { FrontendConnections, type ConnState } from './frontend-connections';
import { createHttp1Frontend } from './http1-frontend';
import { createHttp2Frontend } from './http2-frontend';
import { createProxyProtocolAgent, type ForwardContext } from './origin';
import { originProxyHeader } from './origin-proxy-header';
import { RequestRouter } from './request-routing';
import { createRouting } from './routing';
import type { HttpFrontend, HttpFrontendOptions, ProxyLog, ProxyRequestEvent, SecureConnection } from './types';

const noop = (): void => undefined;

export function createHttpFrontend(options: HttpFrontendOptions): HttpFrontend {
  const log: ProxyLog = options.log ?? noop;
  const routing = createRouting(options, log);
  const connections = new FrontendConnections();
  const env: ForwardEnv = {
    ctx: forwardContext(options, log),
    router: new RequestRouter(routing.table, options.certificateEntries),
    connections,
    metrics: options.metrics,
    report: reporter(options, log),
  };
  const h1 = createHttp1Frontend(options, env);
  const h2 = createHttp2Frontend(options, env);
  let closed: Promise<void> | undefined;

  return {
    get connectionCount() {
      return connections.size;
    },
    ready: routing.ready,
    originStatus: routing.status,

    handle(conn: SecureConnection): void {
      conn.on('error', (err: Error) => log('debug', 'proxy: client connection error', { err: String(err) }));
      if (connections.closing || conn.destroyed) {
        conn.destroy();
        return;
      }
      const st = connectionState(conn, options, log);
      if (!st) return;
      connections.add(st);
      if (st.kind === 'h1') h1.adopt(st);
      else h2.adopt(st);
    },

    close(): Promise<void> {
      closed ??= drainFrontend({
        connections,
        closeTimeoutMs: options.closeTimeoutMs ?? 10_000,
        closeServers: () => {
          h1.close();
          h2.close();
          routing.close();
        },
      });
      return closed;
    },
  };
}

/** Deadlines towards the origin and the client, shared by forwarding and upgrades. */
function forwardContext(options: HttpFrontendOptions, log: ProxyLog): ForwardContext {
  return {
    connectTimeoutMs: options.connectTimeoutMs ?? 5000,
    originTimeoutMs: options.originTimeoutMs ?? 60_000,
    idleTimeoutMs: options.idleTimeoutMs ?? 120_000,
    log,
  };
}

/** `options.onRequest`, guarded: a throwing hook is logged, never breaks a request. */
function reporter(options: HttpFrontendOptions, log: ProxyLog): (event: ProxyRequestEvent) => void {
  return (event) => {
    if (!options.onRequest) return;
    try {
      options.onRequest(event);
    } catch (err) {
      log('warn', 'proxy: onRequest hook threw', { err: String(err) });
    }
  };
}

/** The state of a new connection, or undefined (connection destroyed) for an ALPN protocol we do not serve. */
function connectionState(conn: SecureConnection, options: HttpFrontendOptions, log: ProxyLog): ConnState | undefined {
  const alpn = conn.alpnProtocol;
  const kind = alpn === 'h2' ? 'h2' : !alpn || alpn === 'http/1.1' ? 'h1' : undefined;
  if (!kind) {
    log('warn', 'proxy: unsupported ALPN protocol', { alpn });
    conn.destroy();
    return undefined;
  }
  // Request/response traffic: never wait for Nagle (Node's own listeners do this for their sockets;
  // injected connections and the JSStreamSocket wrapper around them do not).
  try {
    conn.setNoDelay(true);
  } catch {
    // best effort
  }
  const facts = describeConnection(conn);
  const entry = options.certificateEntries?.forConnection(conn);
  const st: ConnState = { conn, facts, kind, sni: facts.sni?.toLowerCase(), entry, active: 0, requests: 0 };
  if (options.sendProxyProtocol) {
    // The PROXY header names this client, so its origin sockets are its own: a keep-alive agent
    // per client connection (HTTP/2 streams of one client may use several), destroyed with it.
    st.agent = createProxyProtocolAgent(originProxyHeader(conn), {
      maxSockets: Math.min(options.maxOriginSockets ?? 256, options.maxConcurrentStreams ?? 100),
      idleSocketTimeoutMs: options.originIdleSocketTimeoutMs ?? 4000,
    });
  }
  return st;
}
