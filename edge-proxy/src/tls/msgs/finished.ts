/** Finished (RFC 8446 §4.4.4, RFC 5246 §7.4.9): verify_data only; how it is checked is in ../finished.ts. */
import { HandshakeType, handshakeMessage } from '../handshake-joiner';

export function encodeFinished(verifyData: Buffer): Buffer {
  return handshakeMessage(HandshakeType.finished, verifyData);
}
