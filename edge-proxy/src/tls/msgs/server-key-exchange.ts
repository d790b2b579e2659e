/** TLS 1.2 ServerKeyExchange for ECDHE (RFC 8422 §5.4). */
import { Writer } from '../codec';
import { HandshakeType, handshakeMessage } from '../handshake-joiner';

/** ServerECDHParams (RFC 8422 §5.4): curve_type named_curve(3), the group, our public point. */
export function encodeServerEcdhParams(group: number, publicShare: Buffer): Buffer {
  return new Writer().u8(3).u16(group).vec8(publicShare).finish();
}

export function encodeServerKeyExchange(params: Buffer, scheme: number, signature: Buffer): Buffer {
  return handshakeMessage(
    HandshakeType.server_key_exchange,
    new Writer().bytes(params).u16(scheme).vec16(signature).finish(),
  );
}
