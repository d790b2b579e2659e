/**
 * The certificates an edge serves, each bound to a key *name* at the key service. Public data only:
 * the edge holds certificate chains and public keys, never a private key.
 */
import * as crypto from 'node:crypto';
import { keyShape, KeyShape } from './sigalgs';
import type { ClientAuthPolicy } from './client-auth';

export interface ServerCertificate {
  /** Hostnames this certificate answers for (exact names or `*.example.com` wildcards), lower-case. */
  hostnames: string[];
  /** DER certificates, leaf first. */
  chain: Buffer[];
  leaf: crypto.X509Certificate;
  publicKey: crypto.KeyObject;
  shape: KeyShape;
  /** The key-service key name that signs for this certificate. */
  keyName: string;
  /**
   * TLS 1.2 RSA key exchange may be offered: only for RSA keys in `sealed` or `file` custody
   * (KMS cannot decrypt PKCS#1 v1.5). Set from what the key service reports for the key name.
   */
  allowRsaKeyExchange?: boolean;
  /**
   * Rotation state from the certificate store (docs/rotation.md): `retiring` certificates are served
   * only when no live one fits the client. Absent = live (file certificates).
   */
  state?: 'live' | 'retiring';
  /** Leaf validity in ms since the epoch (set by loadCertificate; read from `leaf` when absent). */
  notBefore?: number;
  notAfter?: number;
  /** Client certificates (mTLS) requested on this certificate's hosts; absent = none requested. */
  clientAuth?: ClientAuthPolicy;
  /** DER OCSPResponse stapled for clients that send status_request (see ocsp-stapling.ts). */
  ocspResponse?: Buffer;
}

/** Splits a PEM bundle into DER certificates, leaf first as written. */
export function pemChainToDer(pem: string): Buffer[] {
  const out: Buffer[] = [];
  const re = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;
  for (let m = re.exec(pem); m; m = re.exec(pem)) out.push(Buffer.from(m[1].replace(/\s+/g, ''), 'base64'));
  return out;
}

/** DNS names from the leaf's subjectAltName, the default hostnames of a certificate. */
export function dnsNames(leaf: crypto.X509Certificate): string[] {
  const san = leaf.subjectAltName ?? '';
  return san
    .split(/,\s*/)
    .filter((e) => e.startsWith('DNS:'))
    .map((e) => e.slice(4).toLowerCase());
}

export function loadCertificate(chainPem: string, keyName: string, hostnames?: string[]): ServerCertificate {
  const chain = pemChainToDer(chainPem);
  if (chain.length === 0) throw new Error(`certificate for key "${keyName}" contains no PEM CERTIFICATE block`);
  const leaf = new crypto.X509Certificate(chain[0]);
  const names = (hostnames && hostnames.length > 0 ? hostnames : dnsNames(leaf)).map((h) => h.toLowerCase());
  if (names.length === 0) throw new Error(`certificate for key "${keyName}" has no hostnames (no DNS subjectAltName and none configured)`);
  return { hostnames: names, chain, leaf, publicKey: leaf.publicKey, shape: keyShape(leaf.publicKey), keyName, notBefore: Date.parse(leaf.validFrom), notAfter: Date.parse(leaf.validTo) };
}

/** Is the leaf inside its validity period at `now`? Expired and not-yet-valid certificates are never served. */
export function isCurrentlyValid(cert: ServerCertificate, now = Date.now()): boolean {
  const notBefore = cert.notBefore ?? Date.parse(cert.leaf.validFrom);
  const notAfter = cert.notAfter ?? Date.parse(cert.leaf.validTo);
  return notBefore <= now && now <= notAfter;
}

/**
 * Within one group, certificates of the same key type are put newest first (latest notBefore: the
 * one a rotation just promoted), each key type keeping the positions it had, so the configured
 * preference between RSA and EC certificates is unchanged. Sorting is stable.
 */
function newestFirstPerKeyType(certs: ServerCertificate[]): ServerCertificate[] {
  const out = [...certs];
  const notBefore = (c: ServerCertificate): number => c.notBefore ?? Date.parse(c.leaf.validFrom);
  for (const type of new Set(certs.map((c) => c.shape.keyType))) {
    const positions = out.flatMap((c, i) => (c.shape.keyType === type ? [i] : []));
    const sorted = positions.map((i) => out[i]).sort((a, b) => notBefore(b) - notBefore(a));
    positions.forEach((pos, k) => (out[pos] = sorted[k]));
  }
  return out;
}

function matches(pattern: string, host: string): boolean {
  if (pattern === host) return true;
  // A wildcard covers exactly one left-most label (RFC 6125 §6.4.3).
  if (pattern.startsWith('*.')) {
    const dot = host.indexOf('.');
    return dot > 0 && host.slice(dot + 1) === pattern.slice(2);
  }
  return false;
}
/** Certificate name matching, shared with the proxy's 421 check and its routes. */
export { matches as hostnameMatches };

export class CertificateStore {
  constructor(private readonly certs: readonly ServerCertificate[]) {
    if (certs.length === 0) throw new Error('at least one certificate is required');
  }

  get all(): readonly ServerCertificate[] {
    return this.certs;
  }

  /**
   * Certificates for a server name, best first (the engine takes the first one whose key the client's
   * signature algorithms accept). Only certificates inside their validity period are candidates.
   * Live ones come first — exact matches, then wildcards, newest first within a key type — and
   * `retiring` ones (being rotated out) only after them, as a fallback. When nothing matches or there
   * is no SNI: every certificate in configured order (live first), the first being the default.
   */
  candidates(serverName: string | undefined): { certs: ServerCertificate[]; matched: boolean } {
    const now = Date.now();
    const usable = this.certs.filter((c) => isCurrentlyValid(c, now));
    const live = usable.filter((c) => c.state !== 'retiring');
    const retiring = usable.filter((c) => c.state === 'retiring');
    if (serverName) {
      const exact = (list: ServerCertificate[]): ServerCertificate[] => list.filter((c) => c.hostnames.includes(serverName));
      const wild = (list: ServerCertificate[]): ServerCertificate[] => list.filter((c) => !c.hostnames.includes(serverName) && c.hostnames.some((p) => matches(p, serverName)));
      const ordered = [live, retiring].flatMap((group) => [...newestFirstPerKeyType(exact(group)), ...newestFirstPerKeyType(wild(group))]);
      if (ordered.length > 0) return { certs: ordered, matched: true };
    }
    return { certs: [...live, ...retiring], matched: false };
  }
}
