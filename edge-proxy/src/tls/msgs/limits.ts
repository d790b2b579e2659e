/**
 * Size bounds for the handshake messages we receive, checked from the 4-byte header before the body
 * is buffered (so memory per connection stays bounded).
 *
 * A ClientHello may legally be 131,396 bytes: version (2) + random (32) + session id (1 + 32) +
 * cipher suites (2 + 65,534) + compression methods (1 + 255) + extensions (2 + 65,535). That is
 * also what OpenSSL accepts, so every legal ClientHello is read. Every other message has the
 * configured bound (`maxHandshakeMessageSize`, default 64 KiB); the client's Certificate chain
 * (mTLS) is the only one that comes near it.
 */
import { HandshakeType } from '../handshake-joiner';

export const MAX_CLIENT_HELLO = 2 + 32 + (1 + 32) + (2 + 65_534) + (1 + 255) + (2 + 65_535);

export function handshakeMessageLimit(type: number, otherMessages: number): number {
  return type === HandshakeType.client_hello ? MAX_CLIENT_HELLO : otherMessages;
}
