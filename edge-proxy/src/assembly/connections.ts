/**
 * Every connection's way through the edge after the TLS engine: counted, logged under its own id,
 * and, once handshaken, handed to the frontend.
 */
import { randomBytes } from 'node:crypto';
import type { EdgeConfig } from '../config';
import type { EdgeMetrics } from '../observability/edge-metrics';
import { LogSampler, type Logger } from '../observability/log';
import type { SecureConnection } from '../proxy/types';
import { PeerClosedError, type TlsServerConnection } from '../tls/connection';
import type { TlsServer } from '../tls/server';
import type { Frontend } from './frontend';

export function routeConnections(
  server: TlsServer,
  frontend: Frontend,
  config: EdgeConfig,
  log: Logger,
  metrics: EdgeMetrics,
): void {
  const connId = connectionIds();
  // Per-connection lines are sampled (logging.sampleRate); warnings and errors never are.
  const logSampler = new LogSampler(config.logging.sampleRate);
  server.tcp.on('connection', (socket) => metrics.trackSocket(socket));
  server.on('secureConnection', (conn: TlsServerConnection) => {
    const i = conn.handshakeInfo;
    const clog = logSampler.forConnection(log, connId(conn));
    metrics.handshakeSucceeded({
      protocol: i?.protocol,
      cipher: i?.cipher,
      group: i?.group,
      resumed: i?.resumed,
      handshakeMs: conn.handshakeMs,
    });
    const openedAt = Date.now();
    conn.once('close', () =>
      clog.log('debug', 'connection closed', {
        remote: conn.remoteAddress,
        durationMs: Date.now() - openedAt,
        error: conn.lastError?.message,
      }),
    );
    clog.log('info', 'handshake', {
      remote: conn.remoteAddress,
      protocol: i?.protocol,
      cipher: i?.cipher,
      group: i?.group,
      signatureScheme: i?.signatureScheme,
      keyExchange: i?.keyExchange,
      sni: i?.serverName,
      alpn: i?.alpn,
      helloRetry: i?.helloRetry,
      resumed: i?.resumed,
      keyName: i?.keyName,
      keyOperationMs: i?.keyOperationMs,
      // mTLS hosts: the verified client certificate's SHA-256 (an identifier, not a secret), or "none".
      clientCert: i?.clientAuth ? (i.clientAuth.fingerprint256 ?? 'none') : undefined,
      handshakeMs: conn.handshakeMs === undefined ? undefined : Math.round(conn.handshakeMs * 1000) / 1000,
    });
    frontend.handle(conn as SecureConnection);
  });
  server.on('tlsClientError', (err, conn) => {
    metrics.handshakeFailed(err);
    // A TCP probe (no ClientHello) or a client that left after our whole flight — for it the
    // handshake succeeded — is routine: debug, sampled. Anything else is worth a warning.
    const routine = err.cause instanceof PeerClosedError && err.cause.stage !== 'during_handshake';
    logSampler
      .forConnection(log, connId(conn))
      .log(routine ? 'debug' : 'warn', routine ? 'handshake abandoned' : 'handshake failed', {
        remote: conn.remoteAddress,
        error: err.message,
        alertSent: err.sentAlert,
        alertReceived: err.receivedAlert,
      });
  });
}

/** Every log line about a connection carries its id: a per-process random prefix and a counter. */
function connectionIds(): (conn: TlsServerConnection) => string {
  const idPrefix = randomBytes(3).toString('hex');
  let nextId = 0;
  const connIds = new WeakMap<TlsServerConnection, string>();
  return (conn) => {
    let id = connIds.get(conn);
    if (!id) {
      id = `${idPrefix}-${(nextId++).toString(36)}`;
      connIds.set(conn, id);
    }
    return id;
  };
}
