/** CertificateStatus (RFC 6066 §8): the TLS 1.2 message, and its body, which TLS 1.3 carries in the leaf's status_request (RFC 8446 §4.4.2.1). */
import { Writer } from '../codec';
import { HandshakeType, handshakeMessage } from '../handshake-joiner';

const STATUS_TYPE_OCSP = 1;

/** CertificateStatus body (RFC 6066 §8): status_type ocsp, then the DER OCSPResponse in a u24 vector. */
export function certificateStatusBody(ocspResponse: Buffer): Buffer {
  return new Writer().u8(STATUS_TYPE_OCSP).vec24(ocspResponse).finish();
}

/** TLS 1.2 CertificateStatus handshake message. */
export function encodeCertificateStatus(ocspResponse: Buffer): Buffer {
  return handshakeMessage(HandshakeType.certificate_status, certificateStatusBody(ocspResponse));
}
