/**
 * The client connections an HTTP frontend owns, and the state kept per connection. Shared by the
 * HTTP/1.1 and HTTP/2 frontends, request forwarding (which ends a connection's last request during
 * a drain) and the drain itself (frontend-drain.ts).
 */
import type * as http from 'node:http';
import type * as http2 from 'node:http2';
import type { CertificateEntryView } from './authority';
import type { ConnectionFacts } from './connection-facts';
import type { SecureConnection } from './types';

/** Per-connection state. */
export interface ConnState {
  readonly conn: SecureConnection;
  readonly facts: ConnectionFacts;
  readonly kind: 'h1' | 'h2';
  /** SNI, lower-case; absent when the client sent none. */
  readonly sni?: string;
  /** The certificate entry the handshake used (absent: not known, no 421 check). */
  readonly entry?: CertificateEntryView;
  /** In-flight requests (HTTP/1.1) — an upgraded tunnel counts as one until it closes. */
  active: number;
  /** Requests seen so far (a connection with none yet is not idle: its first request may be on its way). */
  requests: number;
  session?: http2.ServerHttp2Session;
  /** With `sendProxyProtocol`: this connection's own origin agent (http:// origins only). */
  agent?: http.Agent;
}

export class FrontendConnections {
  private readonly states = new Set<ConnState>();
  private onEmpty: (() => void) | undefined;
  /** Set by the drain: new connections are refused, every response closes its HTTP/1.1 connection. */
  closing = false;

  get size(): number {
    return this.states.size;
  }

  [Symbol.iterator](): IterableIterator<ConnState> {
    return this.states.values();
  }

  /** Own `st` until its connection closes; its origin agent goes with it. */
  add(st: ConnState): void {
    this.states.add(st);
    st.conn.once('close', () => this.release(st));
  }

  /** Resolves when no connection is left, or after `timeoutMs`. */
  whenEmpty(timeoutMs: number): Promise<void> {
    if (this.states.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      timer.unref();
      this.onEmpty = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private release(st: ConnState): void {
    if (!this.states.delete(st)) return;
    st.agent?.destroy();
    if (this.states.size === 0 && this.onEmpty) this.onEmpty();
  }
}
