/**
 * Session-resumption fixtures (the resumption and ticket-migration tests): edges that answer `resumed`
 * or `full` over the connection, and a Node/OpenSSL client that reports what it heard, whether it
 * resumed, and the session to resume with next time.
 */
import * as tls from 'node:tls';
import type { KeyOperations } from '../../edge-proxy/src/tls/key-operations';
import type { CertificateStore } from '../../edge-proxy/src/tls/certificates';
import type { TlsServerConnection } from '../../edge-proxy/src/tls/connection';
import { TlsServer } from '../../edge-proxy/src/tls/server';
import type { TicketProtector } from '../../edge-proxy/src/tls/tickets';

/** Edges of one fleet sharing a certificate store and key operations; each has its own ticket keys. */
export class ResumptionEdges {
  private readonly servers: TlsServer[] = [];

  constructor(
    private readonly certificates: CertificateStore,
    private readonly keyOperations: KeyOperations,
  ) {}

  /** Starts an edge with these ticket keys; resolves to its port. */
  async serve(tickets: TicketProtector, lifetimeSeconds = 3600): Promise<number> {
    const s = new TlsServer({
      certificates: this.certificates,
      keyOperations: this.keyOperations,
      tickets,
      ticketSettings: { lifetimeSeconds },
    });
    s.on('secureConnection', (c: TlsServerConnection) => c.end(c.handshakeInfo?.resumed ? 'resumed' : 'full'));
    this.servers.push(s);
    return (await s.listen(0)).port;
  }

  async close(): Promise<void> {
    for (const s of this.servers) await s.close(true);
  }
}

export interface ResumptionOutcome {
  /** What the edge said: `resumed` or `full`. */
  said: string;
  /** Whether the client saw its session reused. */
  reused: boolean;
  /** The session to resume with next time. */
  session?: Buffer;
}

/** Connects to `localhost` on `port`, trusting `ca`; resolves once the edge has closed. */
export function connectForResumption(
  port: number,
  ca: string,
  opts: tls.ConnectionOptions = {},
): Promise<ResumptionOutcome> {
  return new Promise((resolve, reject) => {
    let session: Buffer | undefined;
    let said = '';
    const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...opts });
    s.on('session', (b: Buffer) => (session = b));
    s.on('data', (d: Buffer) => (said += d.toString()));
    s.on('error', reject);
    s.on('end', () => {
      const reused = s.isSessionReused();
      s.destroy();
      // The TLS 1.3 tickets arrive after the handshake; give the last one a moment.
      setTimeout(() => resolve({ said, reused, session }), 20);
    });
  });
}
