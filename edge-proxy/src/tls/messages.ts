/** Typed parse/encode of the handshake messages the server receives and sends. */
import { AlertDescription, TlsAlert } from './alerts';
import { Reader, Writer } from './codec';
import { encodeExtensions, Extension } from './extensions';
import { HandshakeType, handshakeMessage } from './handshake-joiner';

export { parseClientHello, type ClientHello } from './msgs/client-hello';

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

export function encodeEncryptedExtensions(exts: Extension[]): Buffer {
  return handshakeMessage(HandshakeType.encrypted_extensions, encodeExtensions(exts));
}

/**
 * TLS 1.3 Certificate (RFC 8446 §4.4.2) with an empty request context; `leafExtensions` go in the
 * first CertificateEntry (e.g. a stapled OCSP response, §4.4.2.1), the others carry none.
 */
export function encodeTls13Certificate(chainDer: Buffer[], leafExtensions: Extension[] = []): Buffer {
  const body = new Writer()
    .vec8(Buffer.alloc(0))
    .vec24((w) => {
      chainDer.forEach((der, i) => w.vec24(der).bytes(encodeExtensions(i === 0 ? leafExtensions : [])));
    })
    .finish();
  return handshakeMessage(HandshakeType.certificate, body);
}

export function encodeCertificateVerify(scheme: number, signature: Buffer): Buffer {
  return handshakeMessage(HandshakeType.certificate_verify, new Writer().u16(scheme).vec16(signature).finish());
}

export function encodeFinished(verifyData: Buffer): Buffer {
  return handshakeMessage(HandshakeType.finished, verifyData);
}

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

/** TLS 1.2 Certificate (RFC 5246 §7.4.2): a list of DER certificates, leaf first. */
export function encodeTls12Certificate(chainDer: Buffer[]): Buffer {
  const body = new Writer()
    .vec24((w) => {
      for (const der of chainDer) w.vec24(der);
    })
    .finish();
  return handshakeMessage(HandshakeType.certificate, body);
}

/** ServerECDHParams (RFC 8422 §5.4): curve_type named_curve(3), the group, our public point. */
export function encodeServerEcdhParams(group: number, publicShare: Buffer): Buffer {
  return new Writer().u8(3).u16(group).vec8(publicShare).finish();
}

export function encodeServerKeyExchange(params: Buffer, scheme: number, signature: Buffer): Buffer {
  return handshakeMessage(HandshakeType.server_key_exchange, new Writer().bytes(params).u16(scheme).vec16(signature).finish());
}

export function encodeServerHelloDone(): Buffer {
  return handshakeMessage(HandshakeType.server_hello_done, Buffer.alloc(0));
}

/** ClientKeyExchange for ECDHE (RFC 8422 §5.7): the client's public point. */
export function parseEcdhClientKeyExchange(body: Buffer): Buffer {
  const r = new Reader(body, 'ClientKeyExchange');
  const point = r.vec8('ecdh_Yc', 1);
  r.end();
  return point;
}

/** ClientKeyExchange for RSA (RFC 5246 §7.4.7.1): the encrypted premaster secret. */
export function parseRsaClientKeyExchange(body: Buffer): Buffer {
  const r = new Reader(body, 'ClientKeyExchange');
  const encrypted = r.vec16('EncryptedPreMasterSecret', 1);
  r.end();
  return encrypted;
}

/** TLS 1.3 NewSessionTicket (RFC 8446 §4.6.1), without extensions (no early data is offered). */
export function encodeNewSessionTicket13(lifetime: number, ageAdd: number, nonce: Buffer, ticket: Buffer): Buffer {
  const body = new Writer().u32(lifetime).u32(ageAdd).vec8(nonce).vec16(ticket).vec16(Buffer.alloc(0)).finish();
  return handshakeMessage(HandshakeType.new_session_ticket, body);
}

/** TLS 1.2 NewSessionTicket (RFC 5077 §3.3). */
export function encodeNewSessionTicket12(lifetimeHint: number, ticket: Buffer): Buffer {
  return handshakeMessage(HandshakeType.new_session_ticket, new Writer().u32(lifetimeHint).vec16(ticket).finish());
}
