/**
 * Codecs of the client-authentication messages: CertificateRequest (TLS 1.3 RFC 8446 §4.3.2,
 * TLS 1.2 RFC 5246 §7.4.4), the client's Certificate (RFC 8446 §4.4.2, RFC 5246 §7.4.6) and
 * CertificateVerify (RFC 8446 §4.4.3, RFC 5246 §7.4.8).
 */
import { AlertDescription, TlsAlert } from './alerts';
import { Reader, Writer } from './codec';
import { encodeExtensions, Extension, ExtensionType } from './extensions';
import { HandshakeType, handshakeMessage } from './handshake-joiner';

/** A certificate_authorities list (DistinguishedName authorities<3..2^16-1>), or undefined when empty or too long. */
function authoritiesList(authorities: readonly Buffer[]): Buffer | undefined {
  const total = authorities.reduce((n, a) => n + 2 + a.length, 0);
  if (authorities.length === 0 || total > 0xffff) return undefined;
  return new Writer()
    .vec16((w) => {
      for (const a of authorities) w.vec16(a);
    })
    .finish();
}

/**
 * TLS 1.3 CertificateRequest: an empty certificate_request_context (this is the in-handshake request),
 * signature_algorithms, and certificate_authorities when the CA names fit in one extension.
 */
export function encodeCertificateRequest13(schemes: readonly number[], authorities: readonly Buffer[]): Buffer {
  const exts: Extension[] = [{ type: ExtensionType.signature_algorithms, data: new Writer().vec16((w) => schemes.forEach((s) => w.u16(s))).finish() }];
  const cas = authoritiesList(authorities);
  if (cas) exts.push({ type: ExtensionType.certificate_authorities, data: cas });
  return handshakeMessage(HandshakeType.certificate_request, new Writer().vec8(Buffer.alloc(0)).bytes(encodeExtensions(exts)).finish());
}

/** ClientCertificateType (RFC 5246 §7.4.4, RFC 8422 §5.5). */
export const CLIENT_CERTIFICATE_TYPES = { rsa_sign: 1, ecdsa_sign: 64 } as const;

/** TLS 1.2 CertificateRequest: certificate types, signature algorithms, CA names (may be empty). */
export function encodeCertificateRequest12(schemes: readonly number[], authorities: readonly Buffer[]): Buffer {
  const cas = authoritiesList(authorities) ?? new Writer().u16(0).finish();
  const body = new Writer()
    .vec8(Buffer.from([CLIENT_CERTIFICATE_TYPES.ecdsa_sign, CLIENT_CERTIFICATE_TYPES.rsa_sign]))
    .vec16((w) => schemes.forEach((s) => w.u16(s)))
    .bytes(cas)
    .finish();
  return handshakeMessage(HandshakeType.certificate_request, body);
}

/**
 * The client's TLS 1.3 Certificate: DER certificates, leaf first. Our request had an empty context
 * and asked for no per-certificate extensions, so anything else is refused.
 */
export function parseClientCertificate13(body: Buffer): Buffer[] {
  const r = new Reader(body, 'Certificate');
  const context = r.vec8('certificate_request_context');
  // RFC 8446 §4.4.2: in the handshake the context is the one we sent, i.e. empty.
  if (context.length !== 0) throw new TlsAlert(AlertDescription.illegal_parameter, 'client Certificate has a certificate_request_context we did not send');
  const list = r.sub24('certificate_list');
  r.end();
  const chain: Buffer[] = [];
  while (list.remaining > 0) {
    chain.push(Buffer.from(list.vec24('cert_data', 1)));
    const exts = list.vec16('CertificateEntry extensions');
    // RFC 8446 §4.4.2: entry extensions must answer extensions of our request, which asked for none.
    if (exts.length !== 0) throw new TlsAlert(AlertDescription.unsupported_extension, 'client CertificateEntry carries extensions we did not request');
  }
  return chain;
}

/** The client's TLS 1.2 Certificate: DER certificates, leaf first (may be empty). */
export function parseClientCertificate12(body: Buffer): Buffer[] {
  const r = new Reader(body, 'Certificate');
  const list = r.sub24('certificate_list');
  r.end();
  const chain: Buffer[] = [];
  while (list.remaining > 0) chain.push(Buffer.from(list.vec24('ASN.1Cert', 1)));
  return chain;
}

/** CertificateVerify (the same layout in TLS 1.2 and 1.3): scheme and signature. */
export function parseCertificateVerify(body: Buffer): { scheme: number; signature: Buffer } {
  const r = new Reader(body, 'CertificateVerify');
  const scheme = r.u16();
  const signature = Buffer.from(r.vec16('signature', 1));
  r.end();
  return { scheme, signature };
}
