/** NewSessionTicket (TLS 1.3 RFC 8446 §4.6.1, TLS 1.2 RFC 5077 §3.3). */
import { Writer } from '../codec';
import { HandshakeType, handshakeMessage } from '../handshake-joiner';

/** TLS 1.3 NewSessionTicket (RFC 8446 §4.6.1), without extensions (no early data is offered). */
export function encodeNewSessionTicket13(lifetime: number, ageAdd: number, nonce: Buffer, ticket: Buffer): Buffer {
  const body = new Writer().u32(lifetime).u32(ageAdd).vec8(nonce).vec16(ticket).vec16(Buffer.alloc(0)).finish();
  return handshakeMessage(HandshakeType.new_session_ticket, body);
}

/** TLS 1.2 NewSessionTicket (RFC 5077 §3.3). */
export function encodeNewSessionTicket12(lifetimeHint: number, ticket: Buffer): Buffer {
  return handshakeMessage(HandshakeType.new_session_ticket, new Writer().u32(lifetimeHint).vec16(ticket).finish());
}
