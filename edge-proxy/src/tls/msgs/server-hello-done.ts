/** TLS 1.2 ServerHelloDone (RFC 5246 §7.4.5). */
import { HandshakeType, handshakeMessage } from '../handshake-joiner';

export function encodeServerHelloDone(): Buffer {
  return handshakeMessage(HandshakeType.server_hello_done, Buffer.alloc(0));
}
