/** The TLS listener: the engine (edge-proxy/src/tls/) configured from the edge's settings. */
import type { AddressInfo } from 'node:net';
import type { EdgeConfig } from '../config';
import type { KeyOperations } from '../tls/key-operations';
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
  const server = new TlsServer(
    {
      certificates: parts.certificates,
      keyOperations: parts.keyOperations,
      alpnProtocols: config.alpn,
      groups: config.groups.map((name) => groupByName(name)!),
      // tcp mode: the client's FIN ends only the client → origin direction (see proxy/tcp-forward.ts).
      allowHalfOpen: config.proxy.mode === 'tcp',
      handshakeTimeoutMs: config.handshakeTimeoutMs,
      tickets: parts.tickets,
      ticketSettings: { count: config.tickets.count, lifetimeSeconds: config.tickets.lifetimeSeconds },
    },
    config.proxyProtocol,
  );
  // Connections beyond the cap are closed at accept (before any TLS work): bounds memory and file descriptors.
  server.tcp.maxConnections = config.limits.maxConnections;
  server.on('proxyProtocolError', (err, remote) =>
    log.log('warn', 'PROXY protocol header rejected', { remote, error: err.message }),
  );
  return server;
}

/**
 * Listens on the TLS port. With `reusePort` the socket joins the other workers' listeners on the
 * same port (SO_REUSEPORT: the kernel spreads connections over them); `exclusive` keeps node:cluster
 * from routing the listen through the primary.
 */
export function listenTls(server: TlsServer, at: EdgeConfig['listen'], reusePort: boolean): Promise<AddressInfo> {
  if (!reusePort) return server.listen(at.port, at.host);
  return new Promise((resolve, reject) => {
    server.tcp.once('error', reject);
    server.tcp.listen({ port: at.port, host: at.host, reusePort: true, exclusive: true }, () => {
      server.tcp.off('error', reject);
      resolve(server.tcp.address() as AddressInfo);
    });
  });
}
