/**
 * The certificates an edge serves, each bound to a key *name* at the key service. Public data only:
 * the edge holds certificate chains and public keys, never a private key.
 */
import * as crypto from 'node:crypto';
import { keyShape, KeyShape } from './sigalgs';

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
  return { hostnames: names, chain, leaf, publicKey: leaf.publicKey, shape: keyShape(leaf.publicKey), keyName };
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

export class CertificateStore {
  constructor(private readonly certs: readonly ServerCertificate[]) {
    if (certs.length === 0) throw new Error('at least one certificate is required');
  }

  get all(): readonly ServerCertificate[] {
    return this.certs;
  }

  /**
   * Certificates for a server name, best first: exact matches, then wildcards, then (when nothing
   * matches or there is no SNI) every certificate in configured order, the first being the default.
   */
  candidates(serverName: string | undefined): { certs: ServerCertificate[]; matched: boolean } {
    if (serverName) {
      const exact = this.certs.filter((c) => c.hostnames.includes(serverName));
      const wild = this.certs.filter((c) => !exact.includes(c) && c.hostnames.some((p) => matches(p, serverName)));
      if (exact.length + wild.length > 0) return { certs: [...exact, ...wild], matched: true };
    }
    return { certs: [...this.certs], matched: false };
  }
}
