/** The TLS listener: the engine (edge-proxy/src/tls/) configured from the edge's settings. */
import type { EdgeConfig } from '../config';
import type { KeyOperations } from '../keyless/key-operations';
import type { Logger } from '../observability/log';
import type { CertificateStore } from '../tls/certificates';
import { groupByName } from '../tls/groups';
import { TlsServer } from '../tls/server';
import type { TicketProtector } from '../tls/tickets';

export interface TlsServerParts {
  certificates: CertificateStore;
  keyOperations: KeyOperations;
  tickets?: TicketProtector;
}

export function createTlsServer(config: EdgeConfig, parts: TlsServerParts, log: Logger): TlsServer {
  const server = new TlsServer({
    certificates: parts.certificates,
    keyOperations: parts.keyOperations,
    alpnProtocols: config.alpn,
    groups: config.groups.map((name) => groupByName(name)!),
    // tcp mode: the client's FIN ends only the client → origin direction (see proxy/tcp-forward.ts).
    allowHalfOpen: config.proxy.mode === 'tcp',
    handshakeTimeoutMs: config.handshakeTimeoutMs,
    tickets: parts.tickets,
    ticketSettings: { count: config.tickets.count, lifetimeSeconds: config.tickets.lifetimeSeconds },
  }, config.proxyProtocol);
  // Connections beyond the cap are closed at accept (before any TLS work): bounds memory and file descriptors.
  server.tcp.maxConnections = config.limits.maxConnections;
  server.on('proxyProtocolError', (err, remote) => log.log('warn', 'PROXY protocol header rejected', { remote, error: err.message }));
  return server;
}
