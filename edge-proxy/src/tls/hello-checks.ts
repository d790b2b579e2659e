/**
 * ClientHello rules of RFC 8446 that do not depend on what we negotiate: which extensions may appear
 * in a ClientHello (§4.2), and what a ClientHello sent after a HelloRetryRequest may change (§4.1.2).
 * Version negotiation and legacy_version are in server-handshake.ts (§4.2.1, Appendix D).
 */
import { AlertDescription, TlsAlert } from './alerts';
import { ExtensionType } from './extensions';
import type { ClientHello } from './msgs/client-hello';

/**
 * Extensions we recognise whose home is another message (RFC 8446 §4.2 table): oid_filters lives in
 * CertificateRequest only. §4.2: "If an implementation receives an extension which it recognizes and
 * which is not specified for the message in which it appears, it MUST abort the handshake with an
 * illegal_parameter alert." (Unknown extensions are ignored, as §4.1.2 requires.)
 */
const NOT_IN_CLIENT_HELLO: ReadonlyMap<number, string> = new Map([[ExtensionType.oid_filters, 'oid_filters']]);

export function checkClientHelloExtensions13(hello: ClientHello): void {
  for (const type of hello.extensions.keys()) {
    const name = NOT_IN_CLIENT_HELLO.get(type);
    if (name) throw new TlsAlert(AlertDescription.illegal_parameter, `${name} is not allowed in a ClientHello`);
  }
}

/** Extensions the retried ClientHello may change or drop (RFC 8446 §4.1.2). */
const MAY_CHANGE_AFTER_RETRY = new Set<number>([
  ExtensionType.key_share, // replaced by a share for the group we asked for
  ExtensionType.early_data, // removed
  ExtensionType.cookie, // echoed if we sent one
  ExtensionType.pre_shared_key, // ages and binders recomputed, identities may be dropped
  ExtensionType.padding, // may be added, removed or resized
]);

/**
 * RFC 8446 §4.1.2: after a HelloRetryRequest "the client MUST send the same ClientHello without
 * modification", except for the extensions above. Anything else differing is illegal_parameter.
 */
export function checkRetriedClientHello(first: ClientHello, second: ClientHello): void {
  const fail = (what: string): never => {
    throw new TlsAlert(AlertDescription.illegal_parameter, `second ClientHello changed ${what}`);
  };
  if (second.legacyVersion !== first.legacyVersion) fail('legacy_version');
  if (!second.random.equals(first.random)) fail('random');
  if (!second.sessionId.equals(first.sessionId)) fail('legacy_session_id');
  if (
    second.cipherSuites.length !== first.cipherSuites.length ||
    second.cipherSuites.some((s, i) => s !== first.cipherSuites[i])
  )
    fail('cipher_suites');
  if (!second.compressionMethods.equals(first.compressionMethods)) fail('legacy_compression_methods');
  // §4.2.10: "A client MUST NOT include the early_data extension in its followup ClientHello."
  if (second.earlyData) fail('early_data (it must be removed)');
  for (const [type, data] of first.extensions) {
    if (MAY_CHANGE_AFTER_RETRY.has(type)) continue;
    const again = second.extensions.get(type);
    if (!again || !again.equals(data)) fail(`extension ${type}`);
  }
  for (const type of second.extensions.keys()) {
    if (!first.extensions.has(type) && !MAY_CHANGE_AFTER_RETRY.has(type)) fail(`extension ${type} (added)`);
  }
}
