/**
 * What the edge knows about one TLS connection, read once when the connection is handed over and
 * turned into the `x-keyless-tls-*` headers the origin receives.
 */
import type { HandshakeInfo, SecureConnection } from './types';

export interface ConnectionFacts {
  /** `TLSv1.3` / `TLSv1.2`. */
  protocol?: string;
  /** IANA cipher-suite name, e.g. `TLS_AES_128_GCM_SHA256`. */
  cipher?: string;
  group?: string;
  signatureScheme?: string;
  keyExchange?: string;
  /** SNI host name; absent when the client sent none. */
  sni?: string;
  /** Negotiated ALPN protocol; absent when none was negotiated. */
  alpn?: string;
  keyOperationMs?: number;
  resumed?: boolean;
  /** Client IP as seen by the edge (IPv4-mapped IPv6 shown as plain IPv4). */
  clientAddress?: string;
  clientPort?: number;
  /** `1`: the client presented a certificate that verified (mTLS hosts); `0`: it did not, or the host has no mTLS. */
  clientCertVerified?: '1' | '0';
  clientCertSubject?: string;
  clientCertSan?: string;
  clientCertFingerprint?: string;
}

/** `::ffff:192.0.2.1` → `192.0.2.1`; other addresses unchanged. */
export function normalizeAddress(address: string | undefined): string | undefined {
  if (!address) return undefined;
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return m ? m[1] : address;
}

function nonEmpty(v: string | false | null | undefined): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

function safely<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

function clientCertFacts(
  auth: HandshakeInfo['clientAuth'],
): Pick<ConnectionFacts, 'clientCertVerified' | 'clientCertSubject' | 'clientCertSan' | 'clientCertFingerprint'> {
  // Always sent, so an origin can enforce mTLS itself whatever host the request came through.
  if (!auth?.verified) return { clientCertVerified: '0' };
  return {
    clientCertVerified: '1',
    clientCertSubject: auth.subject,
    clientCertSan: nonEmpty(auth.san),
    clientCertFingerprint: auth.fingerprint256,
  };
}

/** Read the facts; never throws (a connection that is already torn down just yields fewer facts). */
export function describeConnection(conn: SecureConnection): ConnectionFacts {
  const info = conn.handshakeInfo ?? {};
  const cipher = safely(() => conn.getCipher());
  let resumed = info.resumed;
  if (resumed === undefined && typeof conn.isSessionReused === 'function') {
    resumed = safely(() => conn.isSessionReused?.());
  }
  const keyOperationMs =
    typeof info.keyOperationMs === 'number' && Number.isFinite(info.keyOperationMs) && info.keyOperationMs >= 0
      ? info.keyOperationMs
      : undefined;
  return {
    protocol: nonEmpty(safely(() => conn.getProtocol())),
    cipher: nonEmpty(cipher?.standardName) ?? nonEmpty(cipher?.name),
    group: nonEmpty(info.group),
    signatureScheme: nonEmpty(info.signatureScheme),
    keyExchange: nonEmpty(info.keyExchange),
    sni: nonEmpty(conn.servername),
    alpn: nonEmpty(conn.alpnProtocol),
    keyOperationMs,
    resumed: typeof resumed === 'boolean' ? resumed : undefined,
    clientAddress: normalizeAddress(conn.remoteAddress),
    clientPort: conn.remotePort,
    ...clientCertFacts(info.clientAuth),
  };
}
