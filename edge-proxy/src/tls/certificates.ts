/**
 * The certificates an edge serves, each bound to a key *name* at the key service. Public data only:
 * the edge holds certificate chains and public keys, never a private key.
 */
import * as crypto from 'node:crypto';
import {
  canonicalDnsName,
  dnsNames,
  isCurrentlyValid,
  nameCovers,
  pemCertificatesToDer,
  type Validity,
} from '../../../contract/x509';
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

export function loadCertificate(chainPem: string, keyName: string, hostnames?: string[]): ServerCertificate {
  const chain = pemCertificatesToDer(chainPem);
  if (chain.length === 0) throw new Error(`certificate for key "${keyName}" contains no PEM CERTIFICATE block`);
  const leaf = new crypto.X509Certificate(chain[0]);
  // Without configured hostnames, the leaf's DNS subjectAltNames (contract/x509.ts) are served.
  const names = (hostnames && hostnames.length > 0 ? hostnames : dnsNames(leaf)).map(canonicalDnsName);
  if (names.length === 0)
    throw new Error(`certificate for key "${keyName}" has no hostnames (no DNS subjectAltName and none configured)`);
  return {
    hostnames: names,
    chain,
    leaf,
    publicKey: leaf.publicKey,
    shape: keyShape(leaf.publicKey),
    keyName,
    notBefore: Date.parse(leaf.validFrom),
    notAfter: Date.parse(leaf.validTo),
  };
}

/** The leaf's validity period, as loadCertificate recorded it (or read from the leaf). */
export function validityOf(cert: ServerCertificate): Validity {
  return {
    notBefore: cert.notBefore ?? Date.parse(cert.leaf.validFrom),
    notAfter: cert.notAfter ?? Date.parse(cert.leaf.validTo),
  };
}

/** Expired and not-yet-valid certificates are never served. */
export function isServable(cert: ServerCertificate, now: number): boolean {
  return isCurrentlyValid(validityOf(cert), now);
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
    const usable = this.certs.filter((c) => isServable(c, now));
    const live = usable.filter((c) => c.state !== 'retiring');
    const retiring = usable.filter((c) => c.state === 'retiring');
    if (serverName) {
      const exact = (list: ServerCertificate[]): ServerCertificate[] =>
        list.filter((c) => c.hostnames.includes(serverName));
      const wild = (list: ServerCertificate[]): ServerCertificate[] =>
        list.filter((c) => !c.hostnames.includes(serverName) && c.hostnames.some((p) => nameCovers(p, serverName)));
      const ordered = [live, retiring].flatMap((group) => [
        ...newestFirstPerKeyType(exact(group)),
        ...newestFirstPerKeyType(wild(group)),
      ]);
      if (ordered.length > 0) return { certs: ordered, matched: true };
    }
    return { certs: [...live, ...retiring], matched: false };
  }
}
