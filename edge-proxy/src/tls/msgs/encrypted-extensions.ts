/** EncryptedExtensions (RFC 8446 §4.3.1). */
import { encodeExtensions, Extension } from '../extensions';
import { HandshakeType, handshakeMessage } from '../handshake-joiner';

export function encodeEncryptedExtensions(exts: Extension[]): Buffer {
  return handshakeMessage(HandshakeType.encrypted_extensions, encodeExtensions(exts));
}
