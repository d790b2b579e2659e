/**
 * What a handshake state machine sees of its connection: ordered handshake messages in, flights
 * out, and key changes at the points the protocol defines. Implemented by `connection.ts`.
 */
import type { HandshakeMessage, HandshakeType } from './handshake-joiner';
import type { RecordProtection } from './record-layer';
import type { ClientAuthResult } from './client-auth';

export interface HandshakeIo {
  /**
   * The next complete handshake message, which must be of the `expected` type, else
   * unexpected_message (resolves across records; alerts and CCS are handled below).
   */
  readHandshakeMessage(expected: HandshakeType): Promise<HandshakeMessage>;
  /** Queue a handshake message under the current write protection. */
  sendHandshake(raw: Buffer): void;
  /** Queue a change_cipher_spec record (TLS 1.3 middlebox compatibility, TLS 1.2 key change). */
  sendChangeCipherSpec(): void;
  /** Write everything queued to the socket. */
  flush(): void;
  /**
   * Write everything queued together with the first application data, or on its own at the end of
   * this turn of the event loop if there is none: one socket write fewer for messages that may wait
   * (TLS 1.3 NewSessionTicket, RFC 8446 §4.6.1: any time after the client's Finished).
   */
  flushWithApplicationData(): void;
  /** Install new read keys. A handshake message may not straddle a key change (RFC 8446 §5.1). */
  setReadProtection(p: RecordProtection): void;
  /** Install new write keys; what was queued before stays under the old ones. */
  setWriteProtection(p: RecordProtection): void;
  /** Switch record handling to TLS 1.2 rules (CCS is a real message; alerts are encrypted). */
  useTls12Records(): void;
  /** TLS 1.2: the next record must be change_cipher_spec (RFC 5246 §7.1). */
  readChangeCipherSpec(): Promise<void>;
  /** Send a warning-level alert now (e.g. no_renegotiation). */
  sendWarningAlert(description: number): void;
  /**
   * We declined 0-RTT: skip the client's early data (RFC 8446 §4.2.10) — `application_data` after a
   * HelloRetryRequest (until the second ClientHello), `undecryptable` once handshake keys are set
   * (until a record decrypts) — at most `maxSkippedEarlyData` bytes.
   */
  skipRejectedEarlyData(mode: 'application_data' | 'undecryptable'): void;
  /** The peer's record_size_limit (RFC 8449 §4), as plaintext bytes per protected record we send. */
  limitRecordPlaintext(maxPlaintext: number): void;
}

/** Facts about a finished handshake, for logs, metrics, headers and the demo page. */
export interface HandshakeInfo {
  protocol: 'TLSv1.3' | 'TLSv1.2';
  /** IANA name of the cipher suite. */
  cipher: string;
  /** OpenSSL's name for it (what `TLSSocket.getCipher().name` shows). */
  cipherOpenssl: string;
  /** TLS 1.2: extended master secret (RFC 7627) was used. */
  extendedMasterSecret?: boolean;
  group?: string;
  signatureScheme?: string;
  keyExchange: string;
  serverName?: string;
  alpn?: string;
  helloRetry: boolean;
  resumed: boolean;
  /** Wall-clock milliseconds of the key operation (signature / master secret), as seen by the edge. */
  keyOperationMs?: number;
  keyName?: string;
  /** Hosts with client certificates (mTLS) configured: who the client is, if it said. */
  clientAuth?: ClientAuthResult;
}
