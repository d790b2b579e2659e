/**
 * X.509 facts every deployable reads the same way: how a PEM bundle splits into certificates, which
 * DNS names a certificate is for, which host names one of those names covers, and whether it is inside
 * its validity period. The edge serves by these rules, the CLI checks certificates by them before it
 * stores them, and the CDK app checks them at synth time, so they must never disagree.
 *
 * node:crypto only (X509Certificate): the edge must not depend on an X.509 library.
 */
import { X509Certificate } from 'node:crypto';

/* ----------------------------------------------------------------------------------------------
 * PEM
 * -------------------------------------------------------------------------------------------- */

/** One PEM CERTIFICATE block (RFC 7468 §5.1); the body is captured. A fresh RegExp each call: it is global. */
const pemCertificateRe = (): RegExp => /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;

/** The CERTIFICATE blocks of a PEM bundle, whole (BEGIN and END lines included), in the order written. */
export function pemCertificateBlocks(pem: string): string[] {
  return pem.match(pemCertificateRe()) ?? [];
}

/** The first CERTIFICATE block of a PEM bundle (the leaf of a chain written leaf first), if any. */
export function firstPemCertificate(pem: string): string | undefined {
  return pemCertificateBlocks(pem)[0];
}

/** The DER certificates of a PEM bundle, in the order written. Bodies are not checked here: parse them. */
export function pemCertificatesToDer(pem: string): Buffer[] {
  return [...pem.matchAll(pemCertificateRe())].map((m) => Buffer.from(m[1].replace(/\s+/g, ''), 'base64'));
}

/* ----------------------------------------------------------------------------------------------
 * Names
 * -------------------------------------------------------------------------------------------- */

/** A DNS name in the form names are compared in: lower case (DNS is case-insensitive), no trailing root dot. */
export function canonicalDnsName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/**
 * The DNS names a certificate is for: its subjectAltName dNSName entries (RFC 5280 §4.2.1.6), canonical.
 * The subject CN is never used: RFC 6125 §6.4.4 allows it only as a fallback that CAs no longer issue
 * for (CA/Browser Forum Baseline Requirements require the SAN), and browsers ignore it.
 */
export function dnsNames(cert: X509Certificate): string[] {
  // Node renders the extension as `DNS:a, DNS:b, IP Address:...` (a name with a comma would be quoted).
  return (cert.subjectAltName ?? '')
    .split(', ')
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => canonicalDnsName(entry.slice('DNS:'.length)));
}

/**
 * The name a `*.` wildcard must carry to cover `host`: the host without its left-most label, or
 * undefined when no wildcard may cover it (a single label, an empty first label, or a parent that is a
 * bare top-level domain — no public list is consulted here; CAs refuse public-suffix wildcards).
 * `host` must be canonical (canonicalDnsName).
 */
export function wildcardParent(host: string): string | undefined {
  const dot = host.indexOf('.');
  if (dot <= 0) return undefined;
  const parent = host.slice(dot + 1);
  return parent.includes('.') && !parent.startsWith('.') && !parent.endsWith('.') ? parent : undefined;
}

/**
 * Does a certificate name (or a configured host pattern) cover `host`? The one rule (RFC 6125 §6.4):
 * equal names match, case-insensitively and ignoring a trailing root dot; `*.parent` covers exactly
 * one more left-most label (RFC 6125 §6.4.3), never `parent` itself, two labels, or a wildcard over a
 * bare top-level domain. Partial-label wildcards (`w*.example.com`) are never matched as wildcards.
 */
export function nameCovers(pattern: string, host: string): boolean {
  const p = canonicalDnsName(pattern);
  const h = canonicalDnsName(host);
  if (p === h) return true;
  if (!p.startsWith('*.') || h.startsWith('*.')) return false;
  const parent = wildcardParent(h);
  return parent !== undefined && parent === p.slice(2);
}

/** Does any of these names cover `host`? */
export function namesCover(patterns: readonly string[], host: string): boolean {
  return patterns.some((p) => nameCovers(p, host));
}

/* ----------------------------------------------------------------------------------------------
 * Validity
 * -------------------------------------------------------------------------------------------- */

/** A certificate's validity period (RFC 5280 §4.1.2.5), in ms since the epoch; both ends inclusive. */
export interface Validity {
  notBefore: number;
  notAfter: number;
}

export function validityOf(cert: X509Certificate): Validity {
  return { notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo) };
}

/** notBefore ≤ now ≤ notAfter. The clock is always the caller's, so tests and checks can pin it. */
export function isCurrentlyValid(validity: Validity, now: number | Date): boolean {
  return !isNotYetValid(validity, now) && !hasExpired(validity, now);
}

/** Before notBefore at `now`. */
export function isNotYetValid(validity: Validity, now: number | Date): boolean {
  return millis(now) < validity.notBefore;
}

/** Past notAfter at `now` (a certificate whose notAfter is `now` is still valid, RFC 5280 §4.1.2.5). */
export function hasExpired(validity: Validity, now: number | Date): boolean {
  return millis(now) > validity.notAfter;
}

const millis = (t: number | Date): number => (typeof t === 'number' ? t : t.getTime());
