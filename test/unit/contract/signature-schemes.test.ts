/** The signature-scheme table (contract/signature-schemes.ts) and what the deployables derive from it. */
import * as crypto from 'node:crypto';
import {
  KMS_SIGNING_ALGORITHMS_BY_KEY_SPEC,
  KMS_SIGNING_KEY_SPECS,
  kmsSigningAlgorithmsFor,
  SCHEME_HASH,
  SCHEME_TO_KMS_ALGORITHM,
  schemeById,
  schemeMatchesKeySpec,
  SIGNATURE_SCHEME_NAMES,
  SIGNATURE_SCHEMES,
  TLS13_SCHEME_NAMES,
} from '../../../contract/signature-schemes';
import * as protocol from '../../../contract/key-service-protocol';
import { SIGNING_ALGORITHMS } from '../../../lib/config';
import { signingAlgorithmsFor, signingHash, type KeySpec, type SigningAlgorithm } from '../../../local/kms/specs';

describe('the signature-scheme table', () => {
  it('has the RFC 8446 §4.2.3 code points, each once', () => {
    expect(Object.fromEntries(SIGNATURE_SCHEMES.map((s) => [s.name, s.id]))).toEqual({
      ecdsa_secp256r1_sha256: 0x0403,
      ecdsa_secp384r1_sha384: 0x0503,
      ecdsa_secp521r1_sha512: 0x0603,
      rsa_pss_rsae_sha256: 0x0804,
      rsa_pss_rsae_sha384: 0x0805,
      rsa_pss_rsae_sha512: 0x0806,
      rsa_pkcs1_sha256: 0x0401,
      rsa_pkcs1_sha384: 0x0501,
      rsa_pkcs1_sha512: 0x0601,
    });
    expect(new Set(SIGNATURE_SCHEMES.map((s) => s.id)).size).toBe(SIGNATURE_SCHEMES.length);
    expect(schemeById(0x0804)?.name).toBe('rsa_pss_rsae_sha256');
    expect(schemeById(0x0201)).toBeUndefined(); // rsa_pkcs1_sha1: never (RFC 9155)
  });

  it('never uses SHA-1, and TLS 1.3 gets no PKCS#1 v1.5 (RFC 8446 §4.4.3)', () => {
    for (const s of SIGNATURE_SCHEMES) {
      expect([s.name, s.hash]).not.toEqual([s.name, 'sha1']);
      expect([s.name, s.tls13]).toEqual([s.name, s.padding !== 'pkcs1']);
      expect([s.name, crypto.createHash(s.hash).digest().length]).toEqual([s.name, s.hashLength]);
      expect(s.name.endsWith(s.hash.slice(3))).toBe(true);
    }
    expect(TLS13_SCHEME_NAMES).not.toContain('rsa_pkcs1_sha256');
    expect(TLS13_SCHEME_NAMES).toHaveLength(6);
  });

  it('derives the per-name records', () => {
    expect(SCHEME_HASH.rsa_pss_rsae_sha384).toEqual({ hash: 'sha384', length: 48 });
    expect(SCHEME_TO_KMS_ALGORITHM.rsa_pkcs1_sha512).toBe('RSASSA_PKCS1_V1_5_SHA_512');
    expect(SCHEME_TO_KMS_ALGORITHM.ecdsa_secp384r1_sha384).toBe('ECDSA_SHA_384');
    expect(schemeMatchesKeySpec('rsa_pss_rsae_sha256', 'RSA_3072')).toBe(true);
    expect(schemeMatchesKeySpec('ecdsa_secp256r1_sha256', 'ECC_NIST_P384')).toBe(false);
    expect(schemeMatchesKeySpec('ecdsa_secp521r1_sha512', 'ECC_NIST_P521')).toBe(true);
    expect(schemeMatchesKeySpec('rsa_pss_rsae_sha256', 'ECC_NIST_P256')).toBe(false);
  });

  it('gives the CDK key policies PSS then PKCS#1 v1.5 for RSA, one ECDSA hash per curve', () => {
    const rsa = [
      'RSASSA_PSS_SHA_256',
      'RSASSA_PSS_SHA_384',
      'RSASSA_PSS_SHA_512',
      'RSASSA_PKCS1_V1_5_SHA_256',
      'RSASSA_PKCS1_V1_5_SHA_384',
      'RSASSA_PKCS1_V1_5_SHA_512',
    ];
    expect(SIGNING_ALGORITHMS).toEqual({
      RSA_2048: rsa,
      RSA_3072: rsa,
      RSA_4096: rsa,
      ECC_NIST_P256: ['ECDSA_SHA_256'],
      ECC_NIST_P384: ['ECDSA_SHA_384'],
    });
    expect(KMS_SIGNING_ALGORITHMS_BY_KEY_SPEC).toEqual(SIGNING_ALGORITHMS);
    expect(kmsSigningAlgorithmsFor('ECC_NIST_P521')).toEqual(['ECDSA_SHA_512']);
  });

  // The local KMS models AWS KMS's own catalogue (a superset: secp256k1, SM2, ML-DSA...), so it is not
  // derived from this table; it must offer every algorithm the table needs, with the same hash.
  it('the local KMS offers every KMS algorithm of the table for each of its key specs', () => {
    for (const s of SIGNATURE_SCHEMES) {
      for (const spec of s.kmsKeySpecs) {
        expect([s.name, spec, signingAlgorithmsFor(spec as KeySpec)]).toEqual([
          s.name,
          spec,
          expect.arrayContaining([s.kmsSigningAlgorithm]),
        ]);
        expect(signingHash(s.kmsSigningAlgorithm as SigningAlgorithm).node).toBe(s.hash);
      }
    }
    expect(
      KMS_SIGNING_KEY_SPECS.every((spec) =>
        SIGNATURE_SCHEMES.some((s) => (s.kmsKeySpecs as readonly string[]).includes(spec)),
      ),
    ).toBe(true);
  });

  // Until the key-service protocol imports these facts from the table, it must agree with it.
  it('the key-service protocol agrees with the table', () => {
    expect([...protocol.SIGNATURE_SCHEMES].sort()).toEqual([...SIGNATURE_SCHEME_NAMES].sort());
    expect(protocol.SCHEME_HASH).toEqual(SCHEME_HASH);
    expect(protocol.SCHEME_TO_KMS_ALGORITHM).toEqual(SCHEME_TO_KMS_ALGORITHM);
    expect([...protocol.TLS13_CERTIFICATE_VERIFY_SCHEMES].sort()).toEqual([...TLS13_SCHEME_NAMES].sort());
    for (const name of SIGNATURE_SCHEME_NAMES) {
      for (const spec of [
        'RSA_2048',
        'RSA_3072',
        'RSA_4096',
        'ECC_NIST_P256',
        'ECC_NIST_P384',
        'ECC_NIST_P521',
        'ECC_SECG_P256K1',
      ]) {
        expect([name, spec, protocol.schemeMatchesKeySpec(name, spec)]).toEqual([
          name,
          spec,
          schemeMatchesKeySpec(name, spec),
        ]);
      }
    }
  });
});
