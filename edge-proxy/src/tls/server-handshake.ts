/**
 * Reads the ClientHello and negotiates the protocol version (RFC 8446 §4.2.1, RFC 7507), then hands
 * over to the version's state machine.
 */
import { AlertDescription, TlsAlert } from './alerts';
import type { TlsContext } from './context';
import type { HandshakeInfo, HandshakeIo } from './handshake-io';
import { HandshakeType } from './handshake-joiner';
import { ClientHello, parseClientHello } from './msgs/client-hello';
import { TLS_FALLBACK_SCSV } from './suites';
import { serverHandshake13, TLS12, TLS13 } from './tls13/server';
import { serverHandshake12 } from './tls12/server';
import type { HandshakeMessage } from './handshake-joiner';

/** What a connection keeps after the handshake: handles post-handshake messages. */
export interface EstablishedSession {
  onPostHandshakeMessage(msg: HandshakeMessage): void;
  /** TLS 1.3: send a KeyUpdate and switch our write keys (RFC 8446 §4.6.3); absent in TLS 1.2. */
  updateWriteKeys?(requestPeerUpdate: boolean): void;
}

export interface HandshakeResult {
  info: HandshakeInfo;
  session: EstablishedSession;
}

/** The versions this server implements, best first. */
const OUR_VERSIONS = [TLS13, TLS12];

/** legacy_version of SSL 3.0; anything at or below it is refused whatever else is offered. */
const SSL3 = 0x0300;

export function negotiateVersion(hello: ClientHello): number {
  // RFC 8446 Appendix D.5: a ClientHello with legacy_version 0x0300 or less is aborted with
  // protocol_version, even when supported_versions offers TLS 1.3 (§4.1.2: legacy_version is 0x0303).
  if (hello.legacyVersion <= SSL3) {
    throw new TlsAlert(
      AlertDescription.protocol_version,
      `legacy_version 0x${hello.legacyVersion.toString(16).padStart(4, '0')} (SSL 3.0 or older)`,
    );
  }
  // Without supported_versions the client speaks TLS 1.2 at most (RFC 8446 §4.2.1).
  const offered = hello.supportedVersions ?? (hello.legacyVersion >= TLS12 ? [TLS12] : []);
  const chosen = OUR_VERSIONS.find((v) => offered.includes(v));
  const clientMax = Math.max(0, ...offered.filter((v) => (v & 0xff00) === 0x0300));
  // RFC 7507: a fallback retry from a client that could have done better than what we'd pick.
  if (hello.cipherSuites.includes(TLS_FALLBACK_SCSV) && clientMax < OUR_VERSIONS[0]) {
    throw new TlsAlert(AlertDescription.inappropriate_fallback, 'TLS_FALLBACK_SCSV with a version below our best');
  }
  if (chosen === undefined) {
    throw new TlsAlert(
      AlertDescription.protocol_version,
      `no supported protocol version offered (client max 0x${clientMax.toString(16)})`,
    );
  }
  return chosen;
}

export async function serverHandshake(io: HandshakeIo, ctx: TlsContext): Promise<HandshakeResult> {
  const first = await io.readHandshakeMessage(HandshakeType.client_hello);
  const hello = parseClientHello(first.body);
  const version = negotiateVersion(hello);
  switch (version) {
    case TLS13:
      return serverHandshake13(io, first, hello, ctx);
    default:
      return serverHandshake12(io, first, hello, ctx);
  }
}
