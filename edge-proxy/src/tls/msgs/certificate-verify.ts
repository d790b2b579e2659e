/** CertificateVerify (RFC 8446 §4.4.3, RFC 5246 §7.4.8): ours, and the client's (mTLS). */
import { Reader, Writer } from '../codec';
import { HandshakeType, handshakeMessage } from '../handshake-joiner';

export function encodeCertificateVerify(scheme: number, signature: Buffer): Buffer {
  return handshakeMessage(HandshakeType.certificate_verify, new Writer().u16(scheme).vec16(signature).finish());
}

/** CertificateVerify (the same layout in TLS 1.2 and 1.3): scheme and signature. */
export function parseCertificateVerify(body: Buffer): { scheme: number; signature: Buffer } {
  const r = new Reader(body, 'CertificateVerify');
  const scheme = r.u16();
  const signature = Buffer.from(r.vec16('signature', 1));
  r.end();
  return { scheme, signature };
}
