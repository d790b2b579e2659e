/** Server-wide TLS settings shared by every connection. */
import type { KeyOperations } from '../keyless/key-operations';
import type { CertificateStore } from './certificates';
import { SUPPORTED_GROUPS, NamedGroup } from './groups';
import { CipherSuite, TLS13_SUITES } from './suites';
import { DEFAULT_TICKET_SETTINGS, TicketProtector, TicketSettings } from './tickets';

export interface TlsServerOptions {
  certificates: CertificateStore;
  keyOperations: KeyOperations;
  /** ALPN protocols in server preference order. */
  alpnProtocols?: string[];
  /** Whole-handshake deadline. */
  handshakeTimeoutMs?: number;
  /** Largest handshake message accepted (ClientHello with many extensions still fits in 64 KiB). */
  maxHandshakeMessageSize?: number;
  /** Input buffered while a handshake is in progress (e.g. waiting for the key service). */
  maxBufferedHandshakeInput?: number;
  tls13Suites?: readonly CipherSuite[];
  groups?: readonly NamedGroup[];
  /** Session tickets (resumption); absent = no resumption. */
  tickets?: TicketProtector;
  ticketSettings?: Partial<TicketSettings>;
}

export interface TlsContext {
  certificates: CertificateStore;
  keyOperations: KeyOperations;
  alpnProtocols: string[];
  handshakeTimeoutMs: number;
  maxHandshakeMessageSize: number;
  maxBufferedHandshakeInput: number;
  tls13Suites: readonly CipherSuite[];
  groups: readonly NamedGroup[];
  tickets?: TicketProtector;
  ticketSettings: TicketSettings;
}

export function createTlsContext(o: TlsServerOptions): TlsContext {
  return {
    certificates: o.certificates,
    keyOperations: o.keyOperations,
    alpnProtocols: o.alpnProtocols ?? ['h2', 'http/1.1'],
    handshakeTimeoutMs: o.handshakeTimeoutMs ?? 10_000,
    maxHandshakeMessageSize: o.maxHandshakeMessageSize ?? 65_536,
    maxBufferedHandshakeInput: o.maxBufferedHandshakeInput ?? 256 * 1024,
    tls13Suites: o.tls13Suites ?? TLS13_SUITES,
    groups: o.groups ?? SUPPORTED_GROUPS,
    tickets: o.tickets,
    ticketSettings: { ...DEFAULT_TICKET_SETTINGS, ...o.ticketSettings },
  };
}
