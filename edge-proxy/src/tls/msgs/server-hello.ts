/** ServerHello (RFC 8446 §4.1.3, RFC 5246 §7.4.1.3), also the HelloRetryRequest form. */
import { Writer } from '../codec';
import { encodeExtensions, Extension } from '../extensions';
import { HandshakeType, handshakeMessage } from '../handshake-joiner';

export interface ServerHello {
  version: number;
  random: Buffer;
  sessionId: Buffer;
  cipherSuite: number;
  extensions: Extension[];
}

export function encodeServerHello(sh: ServerHello): Buffer {
  const body = new Writer()
    .u16(sh.version)
    .bytes(sh.random)
    .vec8(sh.sessionId)
    .u16(sh.cipherSuite)
    .u8(0)
    .bytes(encodeExtensions(sh.extensions))
    .finish();
  return handshakeMessage(HandshakeType.server_hello, body);
}
