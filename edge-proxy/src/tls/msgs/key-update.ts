/** KeyUpdate (RFC 8446 §4.6.3). */
import { AlertDescription, TlsAlert } from '../alerts';
import { Reader } from '../codec';
import { HandshakeType, handshakeMessage } from '../handshake-joiner';

export function encodeKeyUpdate(requestUpdate: boolean): Buffer {
  return handshakeMessage(HandshakeType.key_update, Buffer.from([requestUpdate ? 1 : 0]));
}

/** KeyUpdate body: update_not_requested(0) or update_requested(1) (RFC 8446 §4.6.3). */
export function parseKeyUpdate(body: Buffer): boolean {
  const r = new Reader(body, 'KeyUpdate');
  const v = r.u8();
  r.end();
  if (v > 1) throw new TlsAlert(AlertDescription.illegal_parameter, 'KeyUpdate request_update out of range');
  return v === 1;
}
