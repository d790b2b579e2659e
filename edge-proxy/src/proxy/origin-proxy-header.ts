/**
 * The PROXY protocol v2 header the edge sends at the start of every origin connection when
 * `proxy.sendProxyProtocol` is on (haproxy proxy-protocol spec §2.2). It tells the origin who the
 * client really is and how its TLS connection was terminated, without any HTTP header:
 *
 * - addresses: the client's (from the NLB's own PROXY v2 header when that was accepted, else the
 *   TCP peer) and the address the client connected to;
 * - `PP2_TYPE_ALPN`: the negotiated ALPN protocol (absent when none was negotiated);
 * - `PP2_TYPE_AUTHORITY`: the SNI host name (absent when the client sent none);
 * - `PP2_TYPE_SSL` with `PP2_CLIENT_SSL` set and the sub-TLVs `PP2_SUBTYPE_SSL_VERSION`
 *   (`TLSv1.3` / `TLSv1.2`) and `PP2_SUBTYPE_SSL_CIPHER` (OpenSSL name, e.g.
 *   `ECDHE-ECDSA-AES128-GCM-SHA256`, as haproxy sends). On hosts with client certificates (mTLS)
 *   a verified client sets `PP2_CLIENT_CERT_CONN` (full handshake) or `PP2_CLIENT_CERT_SESS`
 *   (resumed: the certificate was presented earlier in the session), `verify` = 0 and the
 *   `PP2_SUBTYPE_SSL_CN` sub-TLV; otherwise `verify` is non-zero, which the spec reserves for "no
 *   certificate presented and verified" (§2.2.5).
 */
import { isIP } from 'node:net';
import {
  encodeProxySsl,
  encodeProxyV2,
  PP2_CLIENT,
  PP2_SUBTYPE_SSL,
  PP2_TYPE,
  type ProxyTlv,
} from './proxy-protocol-v2';
import type { SecureConnection } from './types';

/** `verify` when no client certificate was verified (any non-zero value means that, §2.2.5). */
const VERIFY_NO_CLIENT_CERTIFICATE = 1;
/** ALPN ids and host names are at most 255 bytes (RFC 7301 §3.1, RFC 6066 §3); longer is not ours. */
const MAX_NAME = 255;

function text(v: string | false | null | undefined): Buffer | undefined {
  if (typeof v !== 'string' || v.length === 0) return undefined;
  const b = Buffer.from(v, 'utf8');
  return b.length <= MAX_NAME ? b : undefined;
}

function safely<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

/** An address usable in the header; the unspecified address when the socket is already gone. */
function address(a: string | undefined, fallbackV6: boolean): string {
  if (a && isIP(a.replace(/%.*$/, '')) !== 0) return a;
  return fallbackV6 ? '::' : '0.0.0.0';
}

/** The first CN attribute of an RFC 4514 subject (`CN=client-1,O=Example`), unescaped. */
export function commonName(subject: string | undefined): string | undefined {
  if (!subject) return undefined;
  // RFC 4514 §2.4: "," "+" and "\\" inside a value are escaped with a backslash.
  const m = /(?:^|[,+])\s*CN=((?:\\.|[^,+\\])*)/i.exec(subject);
  return m ? m[1].replace(/\\(.)/g, '$1') : undefined;
}

/** The TLVs describing the client's TLS connection. */
export function tlsTlvs(conn: SecureConnection): ProxyTlv[] {
  const tlvs: ProxyTlv[] = [];
  const alpn = text(conn.alpnProtocol);
  if (alpn) tlvs.push({ type: PP2_TYPE.ALPN, value: alpn });
  const sni = text(conn.servername);
  if (sni) tlvs.push({ type: PP2_TYPE.AUTHORITY, value: sni });
  const sub: ProxyTlv[] = [];
  const version = text(safely(() => conn.getProtocol()));
  if (version) sub.push({ type: PP2_SUBTYPE_SSL.VERSION, value: version });
  const c = safely(() => conn.getCipher());
  const cipher = text(c?.name) ?? text(c?.standardName);
  if (cipher) sub.push({ type: PP2_SUBTYPE_SSL.CIPHER, value: cipher });
  const auth = conn.handshakeInfo?.clientAuth;
  let client: number = PP2_CLIENT.SSL;
  let verify = VERIFY_NO_CLIENT_CERTIFICATE;
  if (auth?.verified === true) {
    client |= conn.handshakeInfo?.resumed ? PP2_CLIENT.CERT_SESS : PP2_CLIENT.CERT_CONN;
    verify = 0;
    const cn = text(commonName(auth.subject));
    if (cn) sub.push({ type: PP2_SUBTYPE_SSL.CN, value: cn });
  }
  tlvs.push({ type: PP2_TYPE.SSL, value: encodeProxySsl({ client, verify, tlvs: sub }) });
  return tlvs;
}

/** The complete header for one origin connection made on behalf of `conn`. Never throws. */
export function originProxyHeader(conn: SecureConnection): Buffer {
  const v6 = isIP(conn.remoteAddress ?? '') === 6 && !/^::ffff:\d/i.test(conn.remoteAddress ?? '');
  const tlvs = tlsTlvs(conn);
  const port = (p: number | undefined): number => (Number.isInteger(p) && p! >= 0 && p! <= 0xffff ? p! : 0);
  try {
    return encodeProxyV2({
      source: { address: address(conn.remoteAddress, v6), port: port(conn.remotePort) },
      destination: { address: address(conn.localAddress, v6), port: port(conn.localPort) },
      tlvs,
    });
  } catch {
    // Addresses Node reported but we could not encode: still a valid header, unspecified addresses.
    return encodeProxyV2({
      source: { address: '0.0.0.0', port: 0 },
      destination: { address: '0.0.0.0', port: 0 },
      tlvs,
    });
  }
}
