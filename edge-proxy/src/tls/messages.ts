/** Typed parse/encode of the handshake messages the server receives and sends. */
import { AlertDescription, TlsAlert } from './alerts';
import { Reader, Writer } from './codec';
import { encodeExtensions, Extension, parseExtensions } from './extensions';
import { HandshakeType, handshakeMessage } from './handshake-joiner';

export interface ClientHello {
  legacyVersion: number;
  random: Buffer;
  sessionId: Buffer;
  cipherSuites: number[];
  compressionMethods: Buffer;
  /** Extensions by type; absent in a bare TLS 1.2 ClientHello. */
  extensions: Map<number, Buffer>;
}

export function parseClientHello(body: Buffer): ClientHello {
  const r = new Reader(body, 'ClientHello');
  const legacyVersion = r.u16();
  const random = r.bytes(32);
  const sessionId = r.vec8('legacy_session_id', 0, 32);
  const cipherSuites = r.u16List('cipher_suites');
  const compressionMethods = r.vec8('legacy_compression_methods', 1);
  // RFC 5246 §7.4.1.2: the extensions block may be absent altogether.
  const extensions = r.remaining > 0 ? parseExtensions(r, 'ClientHello') : new Map<number, Buffer>();
  r.end();
  return { legacyVersion, random, sessionId, cipherSuites, compressionMethods, extensions };
}

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

/** TLS 1.3 Certificate (RFC 8446 §4.4.2) with an empty request context and no per-entry extensions. */
export function encodeTls13Certificate(chainDer: Buffer[]): Buffer {
  const body = new Writer()
    .vec8(Buffer.alloc(0))
    .vec24((w) => {
      for (const der of chainDer) w.vec24(der).vec16(Buffer.alloc(0));
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
