/**
 * `keyless csr`: a PKCS#10 certificate request (RFC 2986) for DNS names, signed by the KMS key itself.
 *
 * @peculiar/x509 builds the CertificationRequestInfo and hands its DER to `crypto.subtle.sign`; the
 * provider from local/dev-pki.ts `kmsCrypto()` turns that into KMS Sign (MessageType=RAW over the
 * request info, which KMS hashes; RSASSA_PKCS1_V1_5_SHA_256, ECDSA_SHA_256 or ECDSA_SHA_384 by key spec, with
 * KMS's DER ECDSA signature converted to the IEEE P1363 form WebCrypto returns). The request is then
 * verified here — signature, and public key equal to KMS's — before anyone sees it.
 *
 * The names go into an extensionRequest attribute as subjectAltName (RFC 2985 §5.4.2): CAs and TLS
 * clients use the SAN, not the subject CN (RFC 6125 §6.4.4); the CN repeats the first name for humans.
 */
import 'reflect-metadata';

import * as crypto from 'node:crypto';
import type { KMSClient } from '@aws-sdk/client-kms';
import * as x509 from '@peculiar/x509';
import { type DevKeySpec, kmsCrypto, kmsSigningKey } from '../../local/dev-pki';
import { keySpecOfKeyObject } from '../../contract/key-service-protocol';
import { awsError, failed, isAwsSdkError, refused, usageError } from './errors';
import { describeKeyByName, KMS_KEY_SPECS, kmsPublicKey, spkiFingerprint } from './keys';
import { type Progress, silent } from './output';

/** node's WebCrypto as the provider type @peculiar/x509 expects (for verification only). */
const NODE_CRYPTO = crypto.webcrypto as unknown as NonNullable<Parameters<x509.Pkcs10CertificateRequest['verify']>[0]>;

/** A DNS name a public CA would accept in a SAN: LDH labels, optionally one leading `*.` label. */
const LABEL_RE = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

export function validateDnsName(raw: string): string {
  const name = raw.toLowerCase().replace(/\.$/, '');
  const labels = name.split('.');
  const wildcard = labels[0] === '*';
  const rest = wildcard ? labels.slice(1) : labels;
  const ok =
    name.length <= 253 && rest.length >= 1 && rest.every((l) => LABEL_RE.test(l)) && (!wildcard || rest.length >= 2);
  if (!ok) {
    throw usageError(
      `${JSON.stringify(raw)} is not a DNS name for a certificate`,
      'Give host names like example.com or *.example.com (a wildcard only as the whole first label).',
    );
  }
  return name;
}

/** WebCrypto import parameters of a KMS key spec's public key (for the generator's exportKey). */
function importAlgorithm(
  keySpec: DevKeySpec,
): crypto.webcrypto.RsaHashedImportParams | crypto.webcrypto.EcKeyImportParams {
  switch (keySpec) {
    case 'ECC_NIST_P256':
      return { name: 'ECDSA', namedCurve: 'P-256' };
    case 'ECC_NIST_P384':
      return { name: 'ECDSA', namedCurve: 'P-384' };
    default:
      return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  }
}

export interface CreateCsrOptions {
  keyName: string;
  aliasPrefix: string;
  dnsNames: string[];
  /** Subject DN (e.g. `CN=example.com, O=Example`); default `CN=<first DNS name>`. */
  subject?: string;
}

export interface CsrResult {
  /** PEM `CERTIFICATE REQUEST`. */
  pem: string;
  keyName: string;
  keyId: string;
  keySpec: string;
  subject: string;
  dnsNames: string[];
  /** e.g. `sha256WithRSAEncryption`-equivalent WebCrypto name: RSASSA-PKCS1-v1_5/SHA-256, ECDSA/SHA-384. */
  signatureAlgorithm: string;
  publicKeySha256: string;
}

export async function createCsr(
  opts: CreateCsrOptions,
  deps: { kms: KMSClient; progress?: Progress },
): Promise<CsrResult> {
  const progress = deps.progress ?? silent;
  if (opts.dnsNames.length === 0)
    throw usageError('a certificate request needs at least one DNS name', 'Pass --dns example.com (repeatable).');
  const dnsNames = [...new Set(opts.dnsNames.map(validateDnsName))];
  const info = await describeKeyByName(deps.kms, opts.aliasPrefix, opts.keyName);
  if (!info) {
    throw refused(
      `there is no key named ${opts.keyName} (no alias ${opts.aliasPrefix}${opts.keyName})`,
      'Create it with `keyless keys create --name ' +
        opts.keyName +
        '`, or check --deployment / --alias-prefix. A sealed key cannot sign a request: issue its certificate from its public key with your CA.',
    );
  }
  if (!info.enabled)
    throw refused(
      `key ${opts.keyName} is ${info.keyState} and cannot sign`,
      'Use an enabled key (`keyless status` lists them).',
    );
  if (info.keyUsage !== 'SIGN_VERIFY' || !(KMS_KEY_SPECS as readonly string[]).includes(info.keySpec)) {
    throw refused(
      `key ${opts.keyName} is a ${info.keySpec} ${info.keyUsage} key`,
      `A TLS certificate key is a SIGN_VERIFY key of ${KMS_KEY_SPECS.join(', ')}.`,
    );
  }
  const keySpec = info.keySpec as DevKeySpec;
  const pub = await kmsPublicKey(deps.kms, info.keyId);
  const subject = opts.subject ?? `CN=${dnsNames[0]}`;
  let name: x509.Name;
  try {
    name = new x509.Name(subject);
  } catch (e) {
    throw usageError(
      `--subject ${JSON.stringify(subject)} is not a distinguished name (${(e as Error).message})`,
      'Write e.g. --subject "CN=example.com, O=Example Ltd".',
    );
  }

  const provider = kmsCrypto();
  const publicKey = await crypto.webcrypto.subtle.importKey(
    'spki',
    new Uint8Array(pub.spki),
    importAlgorithm(keySpec),
    true,
    ['verify'],
  );
  const privateKey = kmsSigningKey(deps.kms, info.keyId, keySpec);
  const signingAlgorithm = keySpec.startsWith('ECC_')
    ? { name: 'ECDSA', hash: keySpec === 'ECC_NIST_P384' ? 'SHA-384' : 'SHA-256' }
    : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  progress(`signing the request for ${dnsNames.join(', ')} with KMS key ${info.keyId} (${keySpec})`);
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = await x509.Pkcs10CertificateRequestGenerator.create(
      {
        name,
        keys: { publicKey, privateKey } as unknown as x509.Pkcs10CertificateRequestCreateParams['keys'],
        signingAlgorithm,
        extensions: [
          new x509.SubjectAlternativeNameExtension(
            dnsNames.map((value) => ({ type: 'dns' as const, value })),
            false,
          ),
        ],
      },
      provider,
    );
  } catch (e) {
    if (isAwsSdkError(e)) throw awsError(e, `KMS Sign with ${info.keyId}`);
    throw e;
  }
  // Verify before printing: the signature under the request's own key, and that key is KMS's.
  const pem = `${csr.toString('pem').trim()}\n`;
  const check = new x509.Pkcs10CertificateRequest(pem);
  if (!Buffer.from(check.publicKey.rawData).equals(pub.spki))
    throw failed('the request does not carry the KMS public key (internal error)');
  if (!(await check.verify(NODE_CRYPTO)))
    throw failed(
      `the signature KMS made for key ${info.keyId} does not verify`,
      'Check the key spec and that KMS answered for this key.',
    );
  return {
    pem,
    keyName: opts.keyName,
    keyId: info.keyId,
    keySpec,
    subject: check.subject,
    dnsNames,
    signatureAlgorithm: `${signingAlgorithm.name}/${signingAlgorithm.hash}`,
    publicKeySha256: spkiFingerprint(pub.spki),
  };
}

export interface ParsedCsr {
  csr: x509.Pkcs10CertificateRequest;
  /** DER SubjectPublicKeyInfo. */
  spki: Buffer;
  /** KMS vocabulary: RSA_2048, ECC_NIST_P256, ... */
  keySpec: string;
  dnsNames: string[];
  subject: string;
}

const CSR_PEM_RE =
  /^\s*-----BEGIN (NEW )?CERTIFICATE REQUEST-----[A-Za-z0-9+/=\s]+-----END (NEW )?CERTIFICATE REQUEST-----\s*$/;

/** Parses and verifies a PEM certificate request (one request, nothing else in the text). */
export async function parseCsr(pem: string, source = 'the certificate request'): Promise<ParsedCsr> {
  if (/PRIVATE KEY-----/.test(pem))
    throw refused(
      `${source} contains a private key`,
      'Give only the CERTIFICATE REQUEST block; never hand a private key to keyless.',
    );
  if (!CSR_PEM_RE.test(pem))
    throw usageError(
      `${source} is not one PEM CERTIFICATE REQUEST`,
      'Give the output of `keyless csr` (or another PKCS#10 request in PEM).',
    );
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem.replace(/NEW CERTIFICATE REQUEST/g, 'CERTIFICATE REQUEST'));
  } catch (e) {
    throw usageError(`${source} cannot be parsed (${(e as Error).message})`, 'Give a PKCS#10 request in PEM.');
  }
  if (!(await csr.verify(NODE_CRYPTO))) {
    throw refused(
      `${source} has an invalid signature`,
      'Recreate it with `keyless csr`: the request must be signed by the key it names.',
    );
  }
  const spki = Buffer.from(csr.publicKey.rawData);
  const key = crypto.createPublicKey({ key: spki, format: 'der', type: 'spki' });
  const keySpec = keySpecOf(key);
  const san = csr.extensions.find(
    (e): e is x509.SubjectAlternativeNameExtension => e instanceof x509.SubjectAlternativeNameExtension,
  );
  const dnsNames = san ? san.names.items.filter((n) => n.type === 'dns').map((n) => n.value) : [];
  if (dnsNames.length === 0) {
    const cn = csr.subjectName.getField('CN')[0];
    if (cn) dnsNames.push(cn);
  }
  return { csr, spki, keySpec, dnsNames: dnsNames.map(validateDnsName), subject: csr.subject };
}

function keySpecOf(key: crypto.KeyObject): string {
  const spec = keySpecOfKeyObject(key);
  if (spec && (KMS_KEY_SPECS as readonly string[]).includes(spec)) return spec;
  const d = key.asymmetricKeyDetails ?? {};
  throw refused(
    `the request's key (${key.asymmetricKeyType} ${d.modulusLength ?? d.namedCurve ?? ''}) is not a TLS key keyless serves`,
    'Use RSA 2048/3072/4096 or ECC P-256/P-384.',
  );
}
