/**
 * The engine's TlsServer on a loopback port over certificates of a throw-away test PKI: what the TLS
 * engine, alert and interop tests start before all their cases and stop after them.
 */
import type { TlsServerConnection } from '../../edge-proxy/src/tls/connection';
import type { TlsServerOptions } from '../../edge-proxy/src/tls/context';
import { TlsServer } from '../../edge-proxy/src/tls/server';
import { makeTestPki, type TestPki } from './certs';

export interface TlsServerFixture {
  pki: TestPki;
  server: TlsServer;
  port: number;
  /** Closes every connection and the server, then removes the PKI. */
  close(): Promise<void>;
}

/** `options` makes the server's options from the PKI (its leaves, keys, tickets); `onConnection` serves each connection. */
export async function startTlsServerFixture(
  options: (pki: TestPki) => TlsServerOptions,
  onConnection: (c: TlsServerConnection) => void,
): Promise<TlsServerFixture> {
  const pki = makeTestPki();
  const server = new TlsServer(options(pki));
  server.on('secureConnection', onConnection);
  const port = (await server.listen(0)).port;
  return {
    pki,
    server,
    port,
    close: async () => {
      await server.close(true);
      pki.cleanup();
    },
  };
}
