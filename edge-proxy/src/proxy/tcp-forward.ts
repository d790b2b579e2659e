/**
 * Raw TCP forwarding (`proxy.mode: "tcp"`): the decrypted stream of each TLS connection is piped to
 * its own TCP connection to the origin, both directions, the way haproxy's `mode tcp` or nginx's
 * `stream` module terminate TLS.
 *
 * - Backpressure both ways (`pipe`): a slow reader on one side pauses the other; nothing is buffered
 *   beyond the streams' high-water marks, so memory per connection is bounded.
 * - Half-close (RFC 8446 §6.1): the client's close_notify ends our write side towards the origin
 *   (TCP FIN), and the origin's FIN becomes our close_notify to the client; the other direction
 *   keeps flowing until it ends too.
 * - An origin that resets or fails mid-stream is passed on as an abrupt close (no close_notify), so
 *   the client can tell a truncated stream from a complete one.
 * - Origin connect refused / unreachable / too slow: the TLS connection is closed politely with
 *   close_notify, counted (`keyless_edge_tcp_origin_connect_failures_total{reason}`), logged. Never a crash.
 * - Idle timeout: no byte in either direction for `idleTimeoutMs` closes both sides.
 * - With `sendProxyProtocol`, a PROXY v2 header (see `origin-proxy-header.ts`) is the first thing
 *   written on the origin connection.
 * - Routes (SNI routing): the client's SNI picks the route and its origin pool (least pending
 *   connections, passive health, see origin-pool.ts); `tls://` origins are reached over TLS with
 *   verification. A name no route serves never gets here: the handshake already failed with
 *   `unrecognized_name` (see `edge.ts`).
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { parseOrigin as parseOriginConfig, type RoutingConfig } from '../routing-config';
import { OriginPool } from './origin-pool';
import { originProxyHeader } from './origin-proxy-header';
import { RouteTable } from './routes';
import type { RouteStatus } from './routing';
import type { ProxyLog, SecureConnection } from './types';

export interface TcpOrigin {
  /** Host name or IP literal (IPv6 without brackets). */
  host: string;
  port: number;
}

/** Parse `tcp://host:port` (port required; no path, query or credentials). Throws on anything else. */
export function parseTcpOrigin(origin: string): TcpOrigin {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    throw new Error(`proxy: origin must be a tcp://host:port URL, got ${JSON.stringify(origin)}`);
  }
  if (url.protocol !== 'tcp:') throw new Error(`proxy: origin must use tcp:// in tcp mode, got ${url.protocol}`);
  if (
    !url.hostname ||
    !url.port ||
    (url.pathname !== '' && url.pathname !== '/') ||
    url.search ||
    url.hash ||
    url.username ||
    url.password
  ) {
    throw new Error(`proxy: origin must be tcp://host:port with a port and nothing else, got ${origin}`);
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { host, port: Number(url.port) };
}

/** Why an origin connection could not be made (metric label). */
export type OriginConnectFailure = 'refused' | 'timeout' | 'unreachable' | 'error';

/** What the forwarder reports; `EdgeMetrics` implements it. */
export interface TcpForwardMetrics {
  originConnectFailed(reason: OriginConnectFailure): void;
  /** Plaintext bytes forwarded (`to_origin`: client → origin; `to_client`: origin → client), PROXY header excluded. */
  tcpBytes(direction: 'to_origin' | 'to_client', bytes: number): void;
  /** One TLS connection handed to the forwarder, by how its origin connection went. */
  tcpConnection(result: 'connected' | 'connect_failed'): void;
}

export interface TcpForwarderOptions {
  /** `tcp://host:port` or `tls://host:port`: everything goes there. */
  origin?: string;
  /** Routes by SNI (routing-config.ts); replaces `origin`. */
  routing?: RoutingConfig;
  /** Origin TCP connect deadline. Default 5000. */
  connectTimeoutMs?: number;
  /** No byte in either direction for this long closes the connection. Default 300000. */
  idleTimeoutMs?: number;
  /** Send a PROXY protocol v2 header first on every origin connection. Default false. */
  sendProxyProtocol?: boolean;
  /** `close()` waits this long for open tunnels to finish, then cuts them. Default 10000. */
  closeTimeoutMs?: number;
  log?: ProxyLog;
  metrics?: TcpForwardMetrics;
}

export interface TcpForwarder {
  /** Take ownership of one handshaken connection and connect it to the origin. */
  handle(conn: SecureConnection): void;
  /** Stop taking connections; wait (bounded by `closeTimeoutMs`) for open tunnels, then cut the rest. */
  close(): Promise<void>;
  /** Connections currently owned. */
  readonly connectionCount: number;
  /** Settles when origin names are resolved. */
  readonly ready: Promise<void>;
  /** Health of every route's origin addresses (for /healthz). */
  originStatus(): RouteStatus[];
}

/** After a polite close (close_notify sent), how long a client that does not close its side may linger. */
const LINGER_MS = 5000;

const noop = (): void => undefined;

function failureReason(err: NodeJS.ErrnoException | undefined, timedOut: boolean): OriginConnectFailure {
  if (timedOut) return 'timeout';
  switch (err?.code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'ETIMEDOUT':
      return 'timeout';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'unreachable';
    default:
      return 'error';
  }
}

function tcpOriginConfig(origin: string | undefined): RoutingConfig['routes'][number]['origin'] {
  if (!origin) throw new Error('proxy: give `origin` or `routing`');
  try {
    return parseOriginConfig(origin, 'origin', 'tcp', process.cwd());
  } catch (err) {
    throw new Error(`proxy: ${(err as Error).message}`);
  }
}

export function createTcpForwarder(options: TcpForwarderOptions): TcpForwarder {
  const routing = options.routing ?? {
    routes: [],
    defaultRoute: { name: 'default', hosts: [], origin: tcpOriginConfig(options.origin), retryIdempotent: false },
  };
  const log: ProxyLog = options.log ?? noop;
  const pool = (r: RoutingConfig['routes'][number]): { name: string; hosts: string[]; pool: OriginPool } => ({
    name: r.name,
    hosts: r.hosts,
    pool: new OriginPool({ route: r.name, origin: r.origin, maxSockets: 1, idleSocketTimeoutMs: 0, log }),
  });
  const routes = routing.routes.map(pool);
  const fallback = routing.defaultRoute ? pool(routing.defaultRoute) : undefined;
  const all = fallback ? [...routes, fallback] : routes;
  const table = new RouteTable(routes, fallback);
  const ready = Promise.all(all.map((r) => r.pool.start())).then(() => undefined);
  ready.catch(() => undefined);
  const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 300_000;
  const closeTimeoutMs = options.closeTimeoutMs ?? 10_000;
  const metrics = options.metrics;
  const open = new Map<SecureConnection, net.Socket | undefined>();
  let closing = false;
  let onAllClosed: (() => void) | undefined;
  let closePromise: Promise<void> | undefined;

  const release = (conn: SecureConnection): void => {
    if (!open.delete(conn)) return;
    if (open.size === 0) onAllClosed?.();
  };

  /** close_notify, discard whatever the client still sends, and cut it if it never closes. */
  const closePolitely = (conn: SecureConnection): void => {
    conn.resume();
    conn.end();
    setTimeout(() => conn.destroy(), LINGER_MS).unref();
  };

  function handle(conn: SecureConnection): void {
    conn.on('error', (err: Error) => log('debug', 'proxy: client connection error', { err: String(err) }));
    if (closing || conn.destroyed) {
      conn.destroy();
      return;
    }
    // Interactive protocols (SSH, databases, line protocols) must not wait for Nagle.
    try {
      conn.setNoDelay(true);
    } catch {
      // best effort
    }
    // The header is computed now, while the connection's facts are certainly readable.
    const header = options.sendProxyProtocol ? originProxyHeader(conn) : undefined;
    const sni = typeof conn.servername === 'string' && conn.servername ? conn.servername.toLowerCase() : undefined;
    const route = table.match(sni);
    const address = route?.pool.pick();
    if (!route || !address) {
      metrics?.tcpConnection('connect_failed');
      log('warn', route ? 'proxy: every origin address is down' : 'proxy: no route for this server name', {
        route: route?.name,
        sni,
      });
      closePolitely(conn);
      return;
    }
    const originPool = route.pool;
    const secure = originPool.tls !== undefined;
    // allowHalfOpen: the origin's FIN ends only the origin → client direction.
    const upstream = secure
      ? tls.connect({
          ...originPool.tls,
          host: address.host,
          port: address.port,
          allowHalfOpen: true,
          noDelay: true,
        } as tls.ConnectionOptions)
      : net.connect({ host: address.host, port: address.port, allowHalfOpen: true, noDelay: true });
    address.pending++;
    upstream.once('close', () => address.pending--);
    open.set(conn, upstream);
    // Written before anything else, so it is the first thing on the wire once connected.
    if (header) upstream.write(header);
    let connected = false;
    let timedOut = false;
    /** The client went away before the origin answered: not the origin's failure. */
    let abandoned = false;
    const connectTimer = setTimeout(() => {
      timedOut = true;
      upstream.destroy();
    }, connectTimeoutMs);
    connectTimer.unref();

    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected) return; // reported on 'close' below
      log('debug', 'proxy: origin connection error', { err: String(err), code: err.code });
    });

    upstream.once(secure ? 'secureConnect' : 'connect', () => {
      clearTimeout(connectTimer);
      connected = true;
      originPool.succeeded(address);
      metrics?.tcpConnection('connected');
      if (conn.destroyed) {
        upstream.destroy();
        return;
      }
      upstream.setTimeout(idleTimeoutMs, () => {
        log('debug', 'proxy: tcp idle timeout', { idleTimeoutMs });
        upstream.destroy();
        conn.destroy();
      });
      conn.pipe(upstream);
      upstream.pipe(conn);
      if (metrics) {
        conn.on('data', (d: Buffer) => metrics.tcpBytes('to_origin', d.length));
        upstream.on('data', (d: Buffer) => metrics.tcpBytes('to_client', d.length));
      }
    });

    upstream.once('close', (hadError: boolean) => {
      clearTimeout(connectTimer);
      if (!connected && abandoned) return;
      if (!connected) {
        const reason = failureReason(upstream.errored as NodeJS.ErrnoException | undefined, timedOut);
        originPool.failed(address, reason);
        metrics?.originConnectFailed(reason);
        metrics?.tcpConnection('connect_failed');
        log('warn', 'proxy: origin connect failed', {
          route: route.name,
          origin: originPool.origin.url,
          address: address.label,
          reason,
          err: upstream.errored ? String(upstream.errored) : undefined,
        });
        if (!conn.destroyed) closePolitely(conn);
        return;
      }
      // A clean close means the origin's FIN was seen and piped on as close_notify; the client closes
      // its side in turn (TLS 1.2 requires it, RFC 5246 §7.2.1), or is cut shortly after. A reset or
      // error must not look like a complete stream: no close_notify then.
      if (hadError || !upstream.readableEnded) conn.destroy();
      else setTimeout(() => conn.destroy(), LINGER_MS).unref();
    });

    conn.once('close', () => {
      release(conn);
      if (upstream.destroyed) return;
      if (!connected) {
        abandoned = true;
        upstream.destroy();
        return;
      }
      // Clean TLS close: the client's close_notify already ended our write side (pipe); let the
      // origin finish. Anything else (reset, TLS error, truncation) cuts the origin connection.
      const clean = conn.readableEnded && conn.writableFinished && !(conn as { lastError?: Error }).lastError;
      if (clean) setTimeout(() => upstream.destroy(), LINGER_MS).unref();
      else upstream.destroy();
    });
  }

  return {
    handle,
    get connectionCount() {
      return open.size;
    },
    ready,
    originStatus: () => all.map((r) => ({ route: r.name, origin: r.pool.origin.url, addresses: r.pool.status() })),
    close(): Promise<void> {
      closePromise ??= (async () => {
        closing = true;
        if (open.size > 0) {
          // A raw byte stream has no way to ask the application to stop: open tunnels get until the
          // deadline to finish on their own.
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, closeTimeoutMs);
            timer.unref();
            onAllClosed = () => {
              clearTimeout(timer);
              resolve();
            };
          });
        }
        for (const [conn, upstream] of [...open]) {
          upstream?.destroy();
          conn.destroy();
        }
        for (const r of all) r.pool.close();
      })();
      return closePromise;
    },
  };
}
