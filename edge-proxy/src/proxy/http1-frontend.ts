/**
 * The HTTP/1.1 side of the frontend (ALPN `http/1.1` or none): Node's `http.Server`, fed each
 * connection with `emit('connection', conn)`. Requests are forwarded (forward-request.ts);
 * WebSocket-style `Upgrade` requests are tunnelled to the origin (upgrade.ts).
 */
import * as http from 'node:http';
import { hostOfAuthority } from './authority';
import { forwardRequest, type ForwardEnv } from './forward-request';
import type { ConnState } from './frontend-connections';
import { proxyUpgrade } from './upgrade';
import type { HttpFrontendOptions, SecureConnection } from './types';

export interface Http1Frontend {
  /** Serve this connection's requests. */
  adopt(st: ConnState): void;
  /** Stops the header/request deadline checker (connections are ended by the drain). */
  close(): void;
}

export function createHttp1Frontend(options: HttpFrontendOptions, env: ForwardEnv): Http1Frontend {
  const states = new WeakMap<object, ConnState>();
  const server = http.createServer({
    headersTimeout: options.headersTimeoutMs ?? 30_000,
    maxHeaderSize: options.maxHeaderBytes ?? 16_384,
    requestTimeout: options.requestTimeoutMs ?? 300_000,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 5000,
    connectionsCheckingInterval: options.connectionsCheckingIntervalMs ?? 1000,
    requireHostHeader: true,
  });
  server.timeout = env.ctx.idleTimeoutMs;
  // A client that sends its request and then close_notify (TLS 1.3 half-close, RFC 8446 §6.1 — e.g.
  // gnutls-cli on end of input) still gets its response; the connection ends after it.
  // (`httpAllowHalfOpen` is set by Node's http.Server constructor but missing from @types/node.)
  (server as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const st = states.get(req.socket);
    if (!st) {
      res.destroy();
      return;
    }
    forwardRequest(req, res, st, env);
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: SecureConnection, head: Buffer) => {
    const st = states.get(socket);
    if (!st) {
      socket.destroy();
      return;
    }
    st.active++;
    st.requests++;
    const authority = typeof req.headers.host === 'string' ? req.headers.host : undefined;
    const host = authority === undefined ? undefined : hostOfAuthority(authority);
    proxyUpgrade(req, socket, head, st.facts, env.ctx, env.router.upgradeTarget(st, host), (event) => {
      st.active--;
      env.report(event);
    });
  });
  // Node starts the HTTP/1.1 header/request deadline checks (slowloris protection, 408) and the
  // connection list behind closeIdleConnections() when a server emits 'listening'. This server never
  // listens — connections are injected — so start them the same way.
  server.emit('listening');

  return {
    adopt(st: ConnState): void {
      states.set(st.conn, st);
      server.emit('connection', st.conn);
    },
    close(): void {
      server.close();
    },
  };
}
