/**
 * Certificate: ours (TLS 1.3 RFC 8446 §4.4.2, TLS 1.2 RFC 5246 §7.4.2) and the client's (mTLS,
 * RFC 8446 §4.4.2, RFC 5246 §7.4.6).
 */
import { AlertDescription, TlsAlert } from '../alerts';
import { Reader, Writer } from '../codec';
import { encodeExtensions, Extension } from '../extensions';
import { HandshakeType, handshakeMessage } from '../handshake-joiner';

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

/** TLS 1.2 Certificate (RFC 5246 §7.4.2): a list of DER certificates, leaf first. */
export function encodeTls12Certificate(chainDer: Buffer[]): Buffer {
  const body = new Writer()
    .vec24((w) => {
      for (const der of chainDer) w.vec24(der);
    })
    .finish();
  return handshakeMessage(HandshakeType.certificate, body);
}

/**
 * The client's TLS 1.3 Certificate: DER certificates, leaf first. Our request had an empty context
 * and asked for no per-certificate extensions, so anything else is refused.
 */
export function parseClientCertificate13(body: Buffer): Buffer[] {
  const r = new Reader(body, 'Certificate');
  const context = r.vec8('certificate_request_context');
  // RFC 8446 §4.4.2: in the handshake the context is the one we sent, i.e. empty.
  if (context.length !== 0)
    throw new TlsAlert(
      AlertDescription.illegal_parameter,
      'client Certificate has a certificate_request_context we did not send',
    );
  const list = r.sub24('certificate_list');
  r.end();
  const chain: Buffer[] = [];
  while (list.remaining > 0) {
    chain.push(Buffer.from(list.vec24('cert_data', 1)));
    const exts = list.vec16('CertificateEntry extensions');
    // RFC 8446 §4.4.2: entry extensions must answer extensions of our request, which asked for none.
    if (exts.length !== 0)
      throw new TlsAlert(
        AlertDescription.unsupported_extension,
        'client CertificateEntry carries extensions we did not request',
      );
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
