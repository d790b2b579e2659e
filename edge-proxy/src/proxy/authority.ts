/**
 * Is this connection authoritative for the host a request names? (RFC 9110 §7.4, §15.5.20)
 *
 * A TLS connection is bound to the certificate entry its SNI selected, and with it to that entry's
 * client-certificate (mTLS) policy. A request whose host (Host or `:authority`, without the port) is
 * not served by that entry is answered `421 Misdirected Request`; otherwise a client could connect to
 * a host without mTLS and name an mTLS host in `Host`, and reach it without a certificate.
 *
 * - HTTP/1.1: the host must be the SNI name. Without SNI (the default entry served the connection),
 *   the host must be covered by that entry and carry the same mTLS policy as it would on its own.
 * - HTTP/2 may coalesce (RFC 9113 §9.1.1): any host the connection's certificate covers, provided a
 *   connection for that host would have had the same mTLS policy.
 * - A request without any host (HTTP/1.0), or whose host is an IP address (which SNI cannot carry,
 *   RFC 6066 §3, and no certificate entry names), is treated as addressed to the SNI name.
 */
import { isIP } from 'node:net';
import { namesCover } from '../../../contract/x509';

/** What the 421 check needs to know about a certificate entry. */
export interface CertificateEntryView {
  /** Names the entry serves (exact or `*.` wildcards), lower-case. */
  readonly hostnames: readonly string[];
  /** The entry's client-certificate policy as a comparable key (`''` = no client certificates). */
  readonly clientAuth: string;
}

/** Where the frontend learns which entry served a connection and which one would serve a host. */
export interface CertificateEntries {
  /** The entry the connection's handshake used (undefined: not known, nothing is checked). */
  forConnection(conn: {
    servername?: string | false | null;
    handshakeInfo?: { keyName?: string };
  }): CertificateEntryView | undefined;
  /** The entry a handshake with this SNI name would use (a name no certificate serves: the default entry). */
  forHost(host: string): CertificateEntryView;
}

/** `Example.COM:8443` → `example.com`; `[::1]:443` → `::1`; a trailing root dot is dropped. */
export function hostOfAuthority(authority: string): string {
  let host = authority;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    host = end > 0 ? host.slice(1, end) : host;
  } else {
    const colon = host.lastIndexOf(':');
    if (colon >= 0) host = host.slice(0, colon);
  }
  host = host.toLowerCase();
  return host.endsWith('.') ? host.slice(0, -1) : host;
}

/**
 * True when the request must get 421: `host` (lower-case, no port; undefined when the request named
 * none) is not served by `entry`, the certificate entry of a connection whose SNI was `sni`.
 */
export function isMisdirected(
  host: string | undefined,
  sni: string | undefined,
  entry: CertificateEntryView,
  http2: boolean,
  entries: CertificateEntries,
): boolean {
  if (host === undefined || host === sni || isIP(host) !== 0) return false;
  if (sni !== undefined && !http2) return true;
  if (!namesCover(entry.hostnames, host)) return true;
  return entries.forHost(host).clientAuth !== entry.clientAuth;
}

/** How many `Host` fields a request carries (RFC 9112 §3.2: more than one makes it invalid). */
export function hostFieldCount(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i].length === 4 && raw[i].toLowerCase() === 'host') n++;
  return n;
}
