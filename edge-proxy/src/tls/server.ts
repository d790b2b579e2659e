/** A TCP listener whose connections are TlsServerConnections: the engine's `tls.Server` analogue. */
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import { createTlsContext, TlsContext, TlsServerOptions } from './context';
import { HandshakeError, TlsServerConnection } from './connection';
import { ProxyHeader, readProxyHeader } from '../proxy/proxy-protocol-v2';

export interface TlsServerEvents {
  proxyProtocolError: [err: Error, remoteAddress: string | undefined];
  secureConnection: [conn: TlsServerConnection];
  tlsClientError: [err: HandshakeError, conn: TlsServerConnection];
}

export class TlsServer extends EventEmitter<TlsServerEvents> {
  readonly tcp: net.Server;
  private readonly ctx: TlsContext;
  private readonly connections = new Set<TlsServerConnection>();
  /** Connections whose handshake has neither completed nor failed yet (a graceful stop waits for them). */
  private readonly handshaking = new Set<TlsServerConnection>();

  constructor(
    options: TlsServerOptions,
    /** Expect a PROXY protocol v2 header before TLS on every connection (behind an NLB). */
    private readonly proxyProtocol = false,
  ) {
    super();
    this.ctx = createTlsContext(options);
    this.tcp = net.createServer({ noDelay: true, allowHalfOpen: options.allowHalfOpen ?? false }, (socket) => {
      if (!this.proxyProtocol) return this.accept(socket);
      socket.on('error', () => undefined);
      readProxyHeader(socket, this.ctx.handshakeTimeoutMs).then(
        (header) => {
          // A LOCAL connection (the balancer's health check) carries no client: close it quietly.
          if (!header.source && header.rest.length === 0) {
            socket.end();
            return;
          }
          this.accept(socket, header);
        },
        (err: Error) => {
          this.emit('proxyProtocolError', err, socket.remoteAddress);
          socket.destroy();
        },
      );
    });
  }

  private accept(socket: net.Socket, proxied?: ProxyHeader): void {
    const conn = new TlsServerConnection(socket, this.ctx, proxied);
    this.connections.add(conn);
    this.handshaking.add(conn);
    conn.once('close', () => {
      this.connections.delete(conn);
      this.handshaking.delete(conn);
    });
    conn.once('secure', () => {
      this.handshaking.delete(conn);
      this.emit('secureConnection', conn);
    });
    conn.once('handshakeError', (err: HandshakeError) => {
      this.handshaking.delete(conn);
      this.emit('tlsClientError', err, conn);
    });
    // Errors after the handshake belong to whoever consumes the connection; never let one crash us.
    conn.on('error', () => undefined);
  }

  get activeConnections(): number {
    return this.connections.size;
  }

  /** Connections still in their handshake. */
  get handshakingConnections(): number {
    return this.handshaking.size;
  }

  listen(port: number, host = '127.0.0.1'): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      this.tcp.once('error', reject);
      this.tcp.listen(port, host, () => {
        this.tcp.off('error', reject);
        resolve(this.tcp.address() as net.AddressInfo);
      });
    });
  }

  /** Stop accepting; with `force`, also close every open connection. */
  close(force = false): Promise<void> {
    if (force) for (const c of this.connections) c.destroy();
    return new Promise((resolve) => this.tcp.close(() => resolve()));
  }
}
