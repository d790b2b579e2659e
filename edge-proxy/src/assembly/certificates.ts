/**
 * The certificates the edge serves, read from their files and from the certificate store (public
 * data only: every PEM is checked to hold no private key).
 */
import * as fs from 'node:fs';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { openCertificateStore, type CertificateStoreBackend, type StoredCertificate } from '../cert-store';
import { assertNoPrivateKey, type ClientAuthConfig, ConfigError, type EdgeConfig } from '../config';
import { loadClientAuthPolicy, type ClientAuthPolicy } from '../tls/client-auth';
import { loadCertificate, type ServerCertificate } from '../tls/certificates';
import { ocspResponseProblem } from '../tls/ocsp-stapling';
import type { KeyDescription } from '../../../contract/key-service-protocol';

export function loadCertificates(config: EdgeConfig): ServerCertificate[] {
  return config.certificates.map((c, i) => {
    let pem: string;
    try {
      pem = fs.readFileSync(c.chainFile, 'utf8');
    } catch (e) {
      throw new ConfigError(
        `certificates[${i}].chainFile`,
        `cannot read ${c.chainFile} (${(e as NodeJS.ErrnoException).code})`,
        'Check the path, or run `npm start` once to create the local dev certificate.',
      );
    }
    assertNoPrivateKey(pem, `certificates[${i}].chainFile`);
    let cert: ServerCertificate;
    try {
      cert = loadCertificate(pem, c.keyName, c.hostnames);
    } catch (e) {
      throw new ConfigError(
        `certificates[${i}].chainFile`,
        (e as Error).message,
        'Give a PEM chain with the leaf certificate first.',
      );
    }
    const clientAuth = loadClientAuth(c.clientAuth, `certificates[${i}].clientAuth.caFile`);
    const ocspResponse = loadOcspResponse(c.ocspResponseFile, `certificates[${i}].ocspResponseFile`);
    return { ...cert, ...(clientAuth ? { clientAuth } : {}), ...(ocspResponse ? { ocspResponse } : {}) };
  });
}

/** The OCSP response stapled for a certificate (TLS engine: tls/ocsp-stapling.ts), re-read on reload. */
function loadOcspResponse(file: string | undefined, field: string): Buffer | undefined {
  if (!file) return undefined;
  let der: Buffer;
  try {
    der = fs.readFileSync(file);
  } catch (e) {
    throw new ConfigError(
      field,
      `cannot read ${file} (${(e as NodeJS.ErrnoException).code})`,
      'Check the path, or remove the field to serve without OCSP stapling.',
    );
  }
  const problem = ocspResponseProblem(der);
  if (problem)
    throw new ConfigError(
      field,
      `${file} ${problem}`,
      'Fetch a fresh response in DER form, e.g. `openssl ocsp -issuer ca.pem -cert leaf.pem -url <responder> -respout ocsp.der`.',
    );
  return der;
}

/** The CA bundle of an mTLS certificate entry, read at startup and on every SIGHUP reload. */
function loadClientAuth(config: ClientAuthConfig | undefined, field: string): ClientAuthPolicy | undefined {
  if (!config || config.mode === 'none' || !config.caFile) return undefined;
  let pem: string;
  try {
    pem = fs.readFileSync(config.caFile, 'utf8');
  } catch (e) {
    throw new ConfigError(
      field,
      `cannot read ${config.caFile} (${(e as NodeJS.ErrnoException).code})`,
      'Check the path of the PEM bundle of client-certificate CAs.',
    );
  }
  assertNoPrivateKey(pem, field);
  try {
    return loadClientAuthPolicy(config.mode, pem);
  } catch (e) {
    throw new ConfigError(
      field,
      `${config.caFile} ${(e as Error).message}`,
      'Give a PEM bundle of the CA certificates that issue your client certificates.',
    );
  }
}

/**
 * Turns store entries into served certificates: `live` and `retiring` ones (the TLS engine prefers
 * live, see CertificateStore.candidates); `staged` entries are never served. Errors name the entry.
 */
export function certificatesFromStore(entries: readonly StoredCertificate[]): ServerCertificate[] {
  return entries.flatMap((e) => {
    if (e.state === 'staged') return [];
    try {
      return [{ ...loadCertificate(e.chainPem, e.keyName, e.hostnames), state: e.state }];
    } catch (err) {
      throw new ConfigError(
        `${e.source}.chainPem`,
        (err as Error).message,
        'Give a PEM chain with the leaf certificate first.',
      );
    }
  });
}

/** Where the certificate store is read from (overridable for tests). */
export interface CertificateSources {
  /** SSM client for `certificateStore` (default: one from the environment's region and credentials). */
  ssmClient?: SSMClient;
  /** The certificate store backend (tests); default: the one `certificateStore` names. */
  certificateStore?: CertificateStoreBackend;
}

/** What the edge holds: the certificates it serves, and the store's staged entries (checked, never served). */
export interface CertificateSet {
  served: ServerCertificate[];
  staged: StoredCertificate[];
}

/**
 * Every certificate the edge serves: those from files first (in order), then the live and retiring
 * entries of the certificate store (by entry id). Fails when there is none at all.
 */
export async function loadCertificateSet(config: EdgeConfig, deps: CertificateSources = {}): Promise<CertificateSet> {
  const served = loadCertificates(config);
  const store = config.certificateStore;
  if (!store) return { served, staged: [] };
  const opened = deps.certificateStore
    ? { store: deps.certificateStore, close: () => undefined }
    : openCertificateStore(store, deps.ssmClient);
  let entries: StoredCertificate[];
  try {
    entries = await opened.store.list();
  } finally {
    opened.close();
  }
  served.push(...certificatesFromStore(entries));
  const staged = entries.filter((e) => e.state === 'staged');
  if (served.length === 0) {
    const stagedNote =
      staged.length > 0
        ? ` (${staged.length} staged, never served: promote one with \`keyless rotate <slot> promote\`)`
        : '';
    if (store.ssmPrefix !== undefined) {
      throw new ConfigError(
        'certificateStore.ssmPrefix',
        `no certificate parameter found under ${store.ssmPrefix}${stagedNote}`,
        'Deploy the certificates (the CDK edge stack writes one String parameter per certificate under this prefix), check KEYLESS_CERT_SSM_PREFIX and the region, and that the task role may call ssm:GetParametersByPath on it.',
      );
    }
    throw new ConfigError(
      'certificateStore.directory',
      `no certificate found in ${store.directory}${stagedNote}`,
      'Import one with `keyless cert import` (one <key name>.json per certificate), or check KEYLESS_CERT_DIR.',
    );
  }
  return { served, staged };
}

/** The certificates the edge serves (see loadCertificateSet). */
export async function loadAllCertificates(
  config: EdgeConfig,
  deps: CertificateSources = {},
): Promise<ServerCertificate[]> {
  return (await loadCertificateSet(config, deps)).served;
}

/** Where the certificate store is, for logs. */
export function storeLocation(config: EdgeConfig): Record<string, string> {
  const s = config.certificateStore;
  if (!s) return {};
  return s.ssmPrefix !== undefined ? { ssmPrefix: s.ssmPrefix } : { directory: s.directory };
}

/** A fingerprint of what is served and staged, to log a refresh only when something changed. */
export function setFingerprint(set: CertificateSet): string {
  return JSON.stringify([
    set.served.map((c) => [c.keyName, c.state ?? 'live', c.leaf.fingerprint256, c.hostnames]),
    set.staged.map((e) => [e.id, e.keyName, e.chainPem.length]),
  ]);
}

/**
 * TLS 1.2 RSA key exchange is offered only for RSA keys the key service holds in `sealed` or `file`
 * custody (KMS cannot decrypt PKCS#1 v1.5); the service's `ping` says which custody each key has.
 */
export function applyCustody(certs: ServerCertificate[], keys: readonly KeyDescription[]): void {
  for (const c of certs) {
    const custody = keys.find((k) => k.name === c.keyName)?.custody;
    c.allowRsaKeyExchange = c.shape.keyType === 'rsa' && (custody === 'sealed' || custody === 'file');
  }
}
