/** Choices made from a ClientHello the same way in TLS 1.3 and TLS 1.2: server name and ALPN. */
import { AlertDescription, TlsAlert } from './alerts';
import type { ClientHello } from './msgs/client-hello';

export function requestedServerName(hello: ClientHello): string | undefined {
  return hello.serverName;
}

/**
 * Our first protocol the client offered; no overlap is fatal (RFC 7301 §3.2). With no protocols of
 * our own (raw TCP forwarding) the extension is ignored, as by a server that does not implement ALPN.
 */
export function negotiateAlpn(hello: ClientHello, ours: readonly string[]): string | undefined {
  const offered = hello.alpn;
  if (!offered || ours.length === 0) return undefined;
  const chosen = ours.find((p) => offered.includes(p));
  if (!chosen)
    throw new TlsAlert(
      AlertDescription.no_application_protocol,
      `no common application protocol (client offered ${offered.join(', ')})`,
    );
  return chosen;
}
