/** The one X.509 rule set every deployable uses (contract/x509.ts): PEM split, DNS names, coverage, validity. */
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  canonicalDnsName,
  dnsNames,
  firstPemCertificate,
  hasExpired,
  isCurrentlyValid,
  isNotYetValid,
  nameCovers,
  namesCover,
  pemCertificateBlocks,
  pemCertificatesToDer,
  validityOf,
  wildcardParent,
} from '../../../contract/x509';

let dir: string;
/** A self-signed certificate made by openssl (an independent encoder), with the given subject and extensions. */
function selfSigned(name: string, subject: string, ext: string[]): string {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.pem`,
      '-days',
      '1',
      '-subj',
      subject,
      ...ext.flatMap((e) => ['-addext', e]),
    ],
    { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return fs.readFileSync(path.join(dir, `${name}.pem`), 'utf8');
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-x509-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('PEM', () => {
  it('splits a bundle into its CERTIFICATE blocks, in order, ignoring other blocks and text', () => {
    const a = selfSigned('a', '/CN=a.example.com', []);
    const b = selfSigned('b', '/CN=b.example.com', []);
    const bundle = `leaf:\n${a}-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n${b}trailer\n`;
    const blocks = pemCertificateBlocks(bundle);
    expect(blocks).toHaveLength(2);
    expect(blocks.map((p) => new crypto.X509Certificate(p).subject)).toEqual(['CN=a.example.com', 'CN=b.example.com']);
    expect(firstPemCertificate(bundle)).toBe(a.trim());
    expect(pemCertificatesToDer(bundle).map((d) => new crypto.X509Certificate(d).raw.equals(d))).toEqual([true, true]);
    expect(pemCertificatesToDer(bundle)[1].equals(new crypto.X509Certificate(b).raw)).toBe(true);
  });

  it('finds nothing in text without a certificate, and is not confused by calling it twice', () => {
    expect(pemCertificateBlocks('no pem here')).toEqual([]);
    expect(firstPemCertificate('')).toBeUndefined();
    const a = selfSigned('twice', '/CN=twice.example.com', []);
    expect(pemCertificatesToDer(a)).toHaveLength(1);
    expect(pemCertificatesToDer(a)).toHaveLength(1);
  });
});

describe('dnsNames', () => {
  it('is the subjectAltName dNSName entries, lower case, without IP addresses', () => {
    const pem = selfSigned('san', '/CN=ignored.example.com', [
      'subjectAltName=DNS:WWW.Example.COM,IP:127.0.0.1,DNS:*.Api.Example.com,DNS:trailing.example.com.',
    ]);
    expect(dnsNames(new crypto.X509Certificate(pem))).toEqual([
      'www.example.com',
      '*.api.example.com',
      'trailing.example.com',
    ]);
  });

  it('never falls back to the subject CN (RFC 6125 §6.4.4)', () => {
    const pem = selfSigned('cn-only', '/CN=example.com', []);
    expect(new crypto.X509Certificate(pem).subject).toBe('CN=example.com');
    expect(dnsNames(new crypto.X509Certificate(pem))).toEqual([]);
  });
});

describe('nameCovers (RFC 6125 §6.4)', () => {
  it.each([
    ['example.com', 'example.com', true],
    ['example.com', 'www.example.com', false],
    ['*.example.com', 'a.example.com', true],
    ['*.example.com', 'example.com', false],
    ['*.example.com', 'a.b.example.com', false],
    ['*.example.com', '.example.com', false],
    ['*.example.com', 'a.example.org', false],
    ['*.example.com', 'aexample.com', false],
    ['*.EXAMPLE.com', 'A.Example.COM', true],
    ['Example.COM', 'example.com', true],
    ['example.com.', 'example.com', true],
    ['example.com', 'example.com.', true],
    ['*.example.com', 'a.example.com.', true],
    ['*.example.com.', 'a.example.com', true],
    // A wildcard over a bare top-level domain covers nothing.
    ['*.com', 'example.com', false],
    ['*.localhost', 'app.localhost', false],
    // A wildcard is not a name the wildcard covers; partial-label wildcards are only literal names.
    ['*.example.com', '*.example.com', true],
    ['*.example.com', '*.a.example.com', false],
    ['w*.example.com', 'www.example.com', false],
    ['*', 'com', false],
  ])('%s covers %s: %s', (pattern, host, covered) => {
    expect(nameCovers(pattern, host)).toBe(covered);
  });

  it('namesCover: any of the names', () => {
    expect(namesCover(['example.com', '*.example.com'], 'www.example.com')).toBe(true);
    expect(namesCover(['example.com', '*.example.com'], 'a.www.example.com')).toBe(false);
    expect(namesCover([], 'example.com')).toBe(false);
  });

  it('wildcardParent: the name a wildcard must carry, or none', () => {
    expect(wildcardParent('a.example.com')).toBe('example.com');
    expect(wildcardParent('example.com')).toBeUndefined();
    expect(wildcardParent('localhost')).toBeUndefined();
    expect(wildcardParent('.example.com')).toBeUndefined();
    expect(wildcardParent('a..com')).toBeUndefined();
  });

  it('canonicalDnsName: lower case, one trailing root dot dropped', () => {
    expect(canonicalDnsName('WWW.Example.COM.')).toBe('www.example.com');
    expect(canonicalDnsName('example.com')).toBe('example.com');
  });
});

describe('validity (RFC 5280 §4.1.2.5)', () => {
  const validity = { notBefore: Date.parse('2026-01-01T00:00:00Z'), notAfter: Date.parse('2026-04-01T00:00:00Z') };

  it.each([
    ['before notBefore (not yet valid)', '2025-12-31T23:59:59.999Z', false, false],
    ['at notBefore', '2026-01-01T00:00:00Z', true, false],
    ['inside', '2026-02-15T12:00:00Z', true, false],
    ['at notAfter', '2026-04-01T00:00:00Z', true, false],
    ['after notAfter (expired)', '2026-04-01T00:00:00.001Z', false, true],
  ])('%s', (_what, at, valid, expired) => {
    expect(isCurrentlyValid(validity, Date.parse(at))).toBe(valid);
    expect(isCurrentlyValid(validity, new Date(at))).toBe(valid);
    expect(hasExpired(validity, new Date(at))).toBe(expired);
    expect(isNotYetValid(validity, Date.parse(at))).toBe(!valid && !expired);
  });

  it('validityOf reads the certificate', () => {
    const cert = new crypto.X509Certificate(selfSigned('validity', '/CN=v.example.com', []));
    const v = validityOf(cert);
    expect(v).toEqual({ notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo) });
    expect(v.notAfter - v.notBefore).toBe(24 * 3600 * 1000);
    expect(isCurrentlyValid(v, Date.now())).toBe(true);
    expect(isCurrentlyValid(v, v.notAfter + 1)).toBe(false);
  });
});
