/**
 * The contract between the TLS engine (`src/tls/`) and the plaintext side (`src/proxy/`), docs/architecture.md, "Deployables"
 *
 * The engine hands the proxy one `SecureConnection` per accepted, fully handshaken connection: a
 * `Duplex` carrying application data, with the familiar `tls.TLSSocket` surface. Node's own
 * `tls.TLSSocket` satisfies this interface structurally (the proxy tests run against it), so the
 * proxy layer is proven independently of our engine.
 */
import type { Duplex } from 'node:stream';
import type { CertificateEntries } from './authority';
import type { RoutingConfig } from '../routing-config';
import type { RoutingMetrics } from './routing-metrics';
import type { RouteStatus } from './routing';

/** Handshake facts only our engine knows; they become `x-keyless-tls-*` request headers. */
export interface HandshakeInfo {
  /** Key-exchange group, IANA name: `x25519`, `secp256r1`, `secp384r1`. */
  readonly group?: string;
  /** Signature scheme of CertificateVerify / ServerKeyExchange, RFC 8446 name, e.g. `ecdsa_secp256r1_sha256`. */
  readonly signatureScheme?: string;
  /** The key-service key name of the certificate served (identifies its entry for the 421 check). */
  readonly keyName?: string;
  /** Wall-clock milliseconds of the remote private-key operation (absent when none was needed). */
  readonly keyOperationMs?: number;
  /** True when the session was resumed (PSK / session ticket): no key operation happened. */
  readonly resumed?: boolean;
  /** Key-exchange kind, e.g. `ecdhe`, `rsa`, `psk_dhe`. */
  readonly keyExchange?: string;
  /** Present on hosts with client certificates (mTLS): the verified client, if any. */
  readonly clientAuth?: {
    readonly verified: boolean;
    /** Leaf subject, RFC 4514. */
    readonly subject?: string;
    /** Leaf subjectAltName, e.g. `DNS:a.example, email:ops@example.com`. */
    readonly san?: string;
    /** SHA-256 of the leaf certificate (DER), lower-case hex. */
    readonly fingerprint256?: string;
  };
}

export interface SecureConnection extends Duplex {
  readonly encrypted: true;
  /** Negotiated ALPN protocol: `'h2'`, `'http/1.1'`, or `false` when none (TLSSocket: `null` before the handshake). */
  readonly alpnProtocol: string | false | null | undefined;
  /** SNI host name sent by the client, or `false`/`undefined` when none. */
  readonly servername?: string | false | null;
  readonly remoteAddress?: string;
  readonly remotePort?: number;
  /** Address and port the client connected to (behind an NLB with PROXY v2: the balancer's listener). */
  readonly localAddress?: string;
  readonly localPort?: number;
  /** `'TLSv1.3'` / `'TLSv1.2'`. */
  getProtocol(): string | null;
  /** `standardName` is the IANA name (`TLS_AES_128_GCM_SHA256`); `name` the OpenSSL one. */
  getCipher(): { name: string; standardName: string; version: string };
  /** Our extra handshake facts for the `x-keyless-tls-*` headers and the demo page. */
  readonly handshakeInfo?: HandshakeInfo;
  /** Fallback for `handshakeInfo.resumed` (Node's TLSSocket has it). */
  isSessionReused?(): boolean;
  setTimeout(ms: number, cb?: () => void): this;
  setNoDelay(noDelay?: boolean): this;
  setKeepAlive(enable?: boolean, initialDelay?: number): this;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
/** Structured log sink; adapt the edge's JSON logger to it. Never called with secrets. */
export type ProxyLog = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

/** How a proxied request ended (for access logs and metrics). */
export type ProxyOutcome =
  | 'ok'
  | 'bad_request'
  | 'misdirected'
  | 'origin_unreachable'
  | 'origin_down'
  | 'origin_timeout'
  | 'origin_error'
  | 'client_aborted'
  | 'upgraded';

export interface ProxyRequestEvent {
  /** `'1.0'`, `'1.1'` or `'2'`, as seen at the edge. */
  httpVersion: string;
  method: string;
  authority?: string;
  path: string;
  /** Status sent to the client (0 when the client went away before any response). */
  status: number;
  outcome: ProxyOutcome;
  durationMs: number;
  clientAddress?: string;
}

export interface HttpFrontendOptions {
  /** Origin base URL, `http://host:port` or `https://host:port` (no path): everything goes there. */
  origin?: string;
  /** Per-hostname routes to origins (routing-config.ts); replaces `origin`. */
  routing?: RoutingConfig;
  /** Metrics per route and origin address. */
  metrics?: RoutingMetrics;
  /** Origin TCP connect deadline → 504. Default 5000. */
  connectTimeoutMs?: number;
  /** Origin socket inactivity (waiting for the response or mid-body) → 504 / abort. Default 60000. */
  originTimeoutMs?: number;
  /** Close keep-alive origin sockets idle this long (keep below the origin's keep-alive timeout). Default 4000. */
  originIdleSocketTimeoutMs?: number;
  /** Cap on concurrent origin sockets (the agent's `maxSockets`). Default 256. */
  maxOriginSockets?: number;
  /**
   * Start every origin connection with a PROXY protocol v2 header describing the client's connection
   * (see `origin-proxy-header.ts`). Origin connections are then per client connection (a keep-alive
   * agent each, closed with it) instead of one pool shared by all clients. Default false.
   */
  sendProxyProtocol?: boolean;
  /** Client connection inactivity: HTTP/1.1 socket timeout and HTTP/2 session idle timeout. Default 120000. */
  idleTimeoutMs?: number;
  /** HTTP/1.1 keep-alive wait between requests. Default 5000. */
  keepAliveTimeoutMs?: number;
  /** HTTP/1.1 deadline for the complete request head (slowloris) → 408. Default 30000. */
  headersTimeoutMs?: number;
  /** Largest request head: HTTP/1.1 request line + headers (→ 431), HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE. Default 16384. */
  maxHeaderBytes?: number;
  /** HTTP/1.1 deadline for the complete request (head and body) → 408. Default 300000 (0 = none). */
  requestTimeoutMs?: number;
  /** How often the HTTP/1.1 header/request deadlines are checked. Default 1000. */
  connectionsCheckingIntervalMs?: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS. Default 100. */
  maxConcurrentStreams?: number;
  /** `close()` waits this long for in-flight requests, then destroys what is left. Default 10000. */
  closeTimeoutMs?: number;
  /**
   * Which certificate entry served a connection and which would serve a host: enables the
   * `421 Misdirected Request` check (see `authority.ts`). Absent: requests are not checked.
   */
  certificateEntries?: CertificateEntries;
  log?: ProxyLog;
  /** Called once per request when it ends (access log, metrics). Must not throw. */
  onRequest?: (event: ProxyRequestEvent) => void;
}

export interface HttpFrontend {
  /** Take ownership of one handshaken connection; dispatches by ALPN (`h2` → HTTP/2, else HTTP/1.1). */
  handle(conn: SecureConnection): void;
  /** Graceful shutdown: GOAWAY / `Connection: close`, wait for in-flight requests (bounded), release origin sockets. */
  close(): Promise<void>;
  /** Connections currently owned (for metrics and tests). */
  readonly connectionCount: number;
  /** Settles when origin names are resolved and health checks started. */
  readonly ready: Promise<void>;
  /** Health of every route's origin addresses (for /healthz). */
  originStatus(): RouteStatus[];
}
