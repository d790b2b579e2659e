/** Server-wide TLS settings shared by every connection. */
import type { KeyOperations } from './key-operations';
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
  /** Largest handshake message accepted other than the ClientHello, which may be any legal size (msgs/limits.ts). Default 64 KiB. */
  maxHandshakeMessageSize?: number;
  /** Input buffered while a handshake is in progress (e.g. waiting for the key service). */
  maxBufferedHandshakeInput?: number;
  tls13Suites?: readonly CipherSuite[];
  groups?: readonly NamedGroup[];
  /** Session tickets (resumption); absent = no resumption. */
  tickets?: TicketProtector;
  ticketSettings?: Partial<TicketSettings>;
  /**
   * TLS 1.3: records sent under one traffic key before we switch with a KeyUpdate (RFC 8446 §5.5
   * puts the AES-GCM limit at 2^24.5 full-size records). Also the point at which we ask the client to
   * update its keys. Default 2^24.
   */
  keyUpdateAfterRecords?: number;
  /** Bytes of 0-RTT data skipped after declining it (RFC 8446 §4.2.10) before giving up. Default 16 KiB. */
  maxSkippedEarlyData?: number;
  /**
   * Keep our TCP write side open after the client's FIN (raw TCP forwarding: a client that sends
   * close_notify and FIN still receives the rest of the origin's answer). Default false.
   */
  allowHalfOpen?: boolean;
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
  keyUpdateAfterRecords: number;
  maxSkippedEarlyData: number;
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
    keyUpdateAfterRecords: o.keyUpdateAfterRecords ?? 2 ** 24,
    maxSkippedEarlyData: o.maxSkippedEarlyData ?? 16_384,
  };
}
