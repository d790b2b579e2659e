/**
 * OCSP stapling: the client asks with status_request (RFC 6066 §8) and we answer with the OCSP
 * response the operator configured for the certificate — in TLS 1.3 as a status_request extension
 * of the leaf's CertificateEntry (RFC 8446 §4.4.2.1), in TLS 1.2 as a CertificateStatus message after
 * Certificate, announced by an empty status_request in the ServerHello (RFC 6066 §8).
 */
import type { ClientHello } from './msgs/client-hello';

/** True when the client asked for an OCSP response (status_type ocsp; decoded with the ClientHello). */
export function clientWantsOcsp(hello: ClientHello): boolean {
  return hello.wantsOcsp;
}

/**
 * Why a configured OCSP response cannot be stapled, or undefined if it can: it must be a DER
 * OCSPResponse (RFC 6960 §4.2.1) whose responseStatus is successful(0) — the other statuses carry no
 * signed response and would only make clients fail.
 */
export function ocspResponseProblem(der: Buffer): string | undefined {
  // SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT ... }
  if (der.length < 5 || der[0] !== 0x30)
    return 'is not a DER OCSP response (expected an ASN.1 SEQUENCE; PEM or text output will not do)';
  let off = 1;
  const lenByte = der[off++];
  if (lenByte & 0x80) off += lenByte & 0x7f;
  if (der[off] !== 0x0a || der[off + 1] !== 0x01) return 'is not a DER OCSP response (no responseStatus)';
  const status = der[off + 2];
  if (status !== 0) return `has responseStatus ${status}, not successful(0)`;
  return undefined;
}
