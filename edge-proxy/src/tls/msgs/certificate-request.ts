/** CertificateRequest (TLS 1.3 RFC 8446 §4.3.2, TLS 1.2 RFC 5246 §7.4.4). */
import { Writer } from '../codec';
import { encodeExtensions, Extension, ExtensionType } from '../extensions';
import { HandshakeType, handshakeMessage } from '../handshake-joiner';

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
  const exts: Extension[] = [
    {
      type: ExtensionType.signature_algorithms,
      data: new Writer().vec16((w) => schemes.forEach((s) => w.u16(s))).finish(),
    },
  ];
  const cas = authoritiesList(authorities);
  if (cas) exts.push({ type: ExtensionType.certificate_authorities, data: cas });
  return handshakeMessage(
    HandshakeType.certificate_request,
    new Writer().vec8(Buffer.alloc(0)).bytes(encodeExtensions(exts)).finish(),
  );
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
