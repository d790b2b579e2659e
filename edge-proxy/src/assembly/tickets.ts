/**
 * Fleet-wide session tickets: every edge fetches the same ticket keys from the key service, so a
 * resumed handshake costs no key operation on any edge (docs/key-service-protocol.md,
 * "Session-ticket keys").
 */
import type { EdgeConfig } from '../config';
import type { KeyOperations } from '../tls/key-operations';
import type { Logger } from '../observability/log';
import { TicketKeyRefresher } from '../ticket-key-refresher';
import { TicketProtector } from '../tls/tickets';
import type { EdgeFigures } from './metrics';

export interface SessionTickets {
  /** Undefined when tickets are off: the TLS engine issues none. */
  protector?: TicketProtector;
  stop(): void;
}

/** Resolves after the first fetch of the ticket keys, whatever its outcome. */
export async function startSessionTickets(
  config: EdgeConfig,
  keys: KeyOperations,
  log: Logger,
  figures: EdgeFigures,
): Promise<SessionTickets> {
  if (!config.tickets.enabled) return { stop: () => undefined };
  const protector = new TicketProtector({ onRejected: (reason) => figures.edge.ticketRejected(reason) });
  const refresher = new TicketKeyRefresher(keys, protector, log);
  await refresher.start();
  return { protector, stop: () => refresher.stop() };
}
