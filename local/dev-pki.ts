/**
 * Development PKI whose private keys exist only in KMS (the local endpoint, LocalStack, or AWS).
 *
 * A dev CA and a `localhost` leaf certificate are issued with @peculiar/x509, whose generator signs
 * through WebCrypto's `subtle.sign`. We hand it a crypto provider whose `sign()` recognises
 * KMS-backed key handles and calls KMS Sign (MessageType=RAW over the TBS, which KMS hashes) instead;
 * every other WebCrypto call goes to node's implementation. No private key is ever created outside
 * KMS, written to disk, or held in this process.
 *
 * `ensureDevPki` is what `npm start` calls: on the first run it creates the keys (idempotently, by
 * alias) and the certificates; on later runs it reuses `ca.pem` and `localhost.chain.pem` as long as
 * they are still valid for more than a day, still match the KMS keys, still chain, and still cover
 * the requested names — otherwise it reissues.
 */
import 'reflect-metadata';

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import {
  CreateAliasCommand,
  CreateKeyCommand,
  DeleteAliasCommand,
  DescribeKeyCommand,
  GetPublicKeyCommand,
  type KMSClient,
  type KeyMetadata,
  SignCommand,
  type SigningAlgorithmSpec,
} from '@aws-sdk/client-kms';
import * as x509 from '@peculiar/x509';
import { canonicalDnsName, dnsNames as certificateDnsNames, namesCover, pemCertificateBlocks } from '../contract/x509';

/** Asymmetric key specs usable for dev certificates (KMS SIGN_VERIFY keys). */
export type DevKeySpec = 'RSA_2048' | 'RSA_3072' | 'RSA_4096' | 'ECC_NIST_P256' | 'ECC_NIST_P384';

type X509Crypto = NonNullable<Parameters<typeof x509.X509CertificateGenerator.create>[1]>;
type X509CryptoKey = x509.X509CertificateCreateWithKeyParams['signingKey'];

const DAY_MS = 86_400_000;
/** PEM with exactly one trailing newline (x509 and node differ), so reused and issued PEMs compare equal. */
const normalizePem = (pem: string): string => `${pem.trim()}\n`;
/** Backdate notBefore a little so clocks that lag slightly still accept a fresh certificate. */
const BACKDATE_MS = 3_600_000;

// ---------------------------------------------------------------------------------------------
// KMS keys

export interface CreateKmsKeyOptions {
  alias: string;
  keySpec: DevKeySpec;
  description?: string;
}

async function describe(kms: KMSClient, keyId: string): Promise<KeyMetadata | undefined> {
  try {
    return (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata;
  } catch (err) {
    if ((err as Error).name === 'NotFoundException') return undefined;
    throw err;
  }
}

/**
 * The id of the SIGN_VERIFY key behind `alias`, creating key and alias if needed (idempotent).
 * An alias pointing at a key of another spec or usage, or at a key pending deletion, is moved to a
 * new key. A disabled key is an error: someone disabled it on purpose.
 */
function deploymentTagOf(alias: string): Array<{ TagKey: string; TagValue: string }> {
  const m = /^alias\/keyless\/([a-z][a-z0-9-]{0,31})\//.exec(alias);
  return m ? [{ TagKey: 'keyless:deployment', TagValue: m[1] }] : [];
}

export async function createKmsKey(kms: KMSClient, opts: CreateKmsKeyOptions): Promise<string> {
  const existing = await describe(kms, opts.alias);
  if (existing) {
    const usable = existing.KeySpec === opts.keySpec && existing.KeyUsage === 'SIGN_VERIFY';
    if (usable && existing.KeyState === 'Enabled') return existing.KeyId as string;
    if (usable && existing.KeyState === 'Disabled') {
      throw new Error(`KMS key ${existing.KeyId} behind ${opts.alias} is disabled; enable it or delete the alias`);
    }
  }
  const created = await kms.send(
    new CreateKeyCommand({
      KeySpec: opts.keySpec,
      KeyUsage: 'SIGN_VERIFY',
      Description: opts.description ?? `keyless-tls development key ${opts.alias}`,
      // Keys in a deployment's namespace carry its tag, as `keyless keys create` gives them (the
      // key-service policy requires it): alias/keyless/<deployment>/...
      Tags: [{ TagKey: 'keyless:purpose', TagValue: 'dev-pki' }, ...deploymentTagOf(opts.alias)],
    }),
  );
  const keyId = created.KeyMetadata?.KeyId as string;
  if (existing) await kms.send(new DeleteAliasCommand({ AliasName: opts.alias }));
  await kms.send(new CreateAliasCommand({ AliasName: opts.alias, TargetKeyId: keyId }));
  return keyId;
}

interface KmsPublicKey {
  keyId: string;
  keySpec: DevKeySpec;
  /** SubjectPublicKeyInfo DER */
  spki: Buffer;
}

async function kmsPublicKey(kms: KMSClient, keyId: string): Promise<KmsPublicKey> {
  const out = await kms.send(new GetPublicKeyCommand({ KeyId: keyId }));
  if (out.KeyUsage !== 'SIGN_VERIFY') throw new Error(`KMS key ${keyId} is not a SIGN_VERIFY key`);
  return {
    keyId: (out.KeyId as string).replace(/^.*:key\//, ''),
    keySpec: out.KeySpec as DevKeySpec,
    spki: Buffer.from(out.PublicKey as Uint8Array),
  };
}

// ---------------------------------------------------------------------------------------------
// A WebCrypto provider whose sign() goes to KMS

interface KmsKeyHandle {
  kms: KMSClient;
  keyId: string;
  signingAlgorithm: SigningAlgorithmSpec;
  hash: 'sha256' | 'sha384';
  /** ECDSA: bytes per coordinate of the P1363 signature WebCrypto returns; 0 for RSA. */
  ecCoordinateBytes: number;
}

const kmsKeyHandles = new WeakMap<object, KmsKeyHandle>();

/** A CryptoKey-shaped handle for a KMS key; only the provider from `kmsCrypto()` can sign with it. */
export function kmsSigningKey(kms: KMSClient, keyId: string, keySpec: DevKeySpec): X509CryptoKey {
  let algorithm: Record<string, unknown>;
  let handle: KmsKeyHandle;
  switch (keySpec) {
    case 'ECC_NIST_P256':
      algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: { name: 'SHA-256' } };
      handle = { kms, keyId, signingAlgorithm: 'ECDSA_SHA_256', hash: 'sha256', ecCoordinateBytes: 32 };
      break;
    case 'ECC_NIST_P384':
      algorithm = { name: 'ECDSA', namedCurve: 'P-384', hash: { name: 'SHA-384' } };
      handle = { kms, keyId, signingAlgorithm: 'ECDSA_SHA_384', hash: 'sha384', ecCoordinateBytes: 48 };
      break;
    default:
      algorithm = {
        name: 'RSASSA-PKCS1-v1_5',
        hash: { name: 'SHA-256' },
        modulusLength: Number(keySpec.slice('RSA_'.length)),
        publicExponent: new Uint8Array([1, 0, 1]),
      };
      handle = { kms, keyId, signingAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_256', hash: 'sha256', ecCoordinateBytes: 0 };
  }
  const key = Object.freeze({ type: 'private', extractable: false, algorithm, usages: ['sign'] });
  kmsKeyHandles.set(key, handle);
  return key as unknown as X509CryptoKey;
}

/** DER ECDSA-Sig-Value → IEEE P1363 r‖s, the signature format WebCrypto (and x509's formatter) expect. */
function derToP1363(der: Buffer, size: number): Buffer {
  const fail = (): never => {
    throw new Error('KMS returned a malformed ECDSA signature');
  };
  let pos = 0;
  const len = (): number => {
    const b = der[pos++];
    if (b < 0x80) return b;
    if (b !== 0x81) fail();
    return der[pos++];
  };
  const int = (): Buffer => {
    if (der[pos++] !== 0x02) fail();
    const l = len();
    let v = der.subarray(pos, pos + l);
    pos += l;
    while (v.length > size && v[0] === 0) v = v.subarray(1);
    if (v.length > size) fail();
    return Buffer.concat([Buffer.alloc(size - v.length), v]);
  };
  if (der[pos++] !== 0x30) fail();
  len();
  return Buffer.concat([int(), int()]);
}

/** KMS Sign's largest RAW message (bytes). */
const KMS_RAW_MESSAGE_LIMIT = 4096;

/** node's WebCrypto, except that sign() with a `kmsSigningKey` handle is a KMS Sign call. */
export function kmsCrypto(): X509Crypto {
  const base = crypto.webcrypto;
  const subtle = base.subtle;
  const sign = async (algorithm: unknown, key: object, data: ArrayBuffer | ArrayBufferView): Promise<ArrayBuffer> => {
    const handle = kmsKeyHandles.get(key);
    if (!handle) return subtle.sign(algorithm as never, key as never, data as never);
    const bytes = ArrayBuffer.isView(data)
      ? Buffer.from(data.buffer, data.byteOffset, data.byteLength)
      : Buffer.from(data as ArrayBuffer);
    // KMS hashes RAW messages of up to 4096 bytes itself, and RAW is what the CDK's key policies
    // allow operators (lib/kms-keys.ts): every CSR and certificate we sign fits. Only a larger one is
    // hashed here and sent as a DIGEST, which those policies would refuse.
    const raw = bytes.length <= KMS_RAW_MESSAGE_LIMIT;
    const message = raw ? bytes : crypto.createHash(handle.hash).update(bytes).digest();
    const out = await handle.kms.send(
      new SignCommand({
        KeyId: handle.keyId,
        Message: message,
        MessageType: raw ? 'RAW' : 'DIGEST',
        SigningAlgorithm: handle.signingAlgorithm,
      }),
    );
    const der = Buffer.from(out.Signature as Uint8Array);
    const sig = handle.ecCoordinateBytes ? derToP1363(der, handle.ecCoordinateBytes) : der;
    return new Uint8Array(sig).buffer;
  };
  const proxiedSubtle = new Proxy(subtle, {
    get(target, prop) {
      if (prop === 'sign') return sign;
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return {
    subtle: proxiedSubtle,
    getRandomValues: <T extends ArrayBufferView | null>(array: T): T => base.getRandomValues(array as never) as T,
    randomUUID: () => base.randomUUID(),
  } as unknown as X509Crypto;
}

// ---------------------------------------------------------------------------------------------
// Certificates

export interface IssueDevCaOptions {
  subject?: string;
  years?: number;
  now?: Date;
}

async function describeOrThrow(kms: KMSClient, keyId: string): Promise<KmsPublicKey> {
  if (!(await describe(kms, keyId))) throw new Error(`no KMS key ${keyId}`);
  return kmsPublicKey(kms, keyId);
}

/** Self-signed dev CA certificate (PEM) for the KMS key behind `caAlias`. */
export async function issueDevCa(kms: KMSClient, caAlias: string, opts: IssueDevCaOptions = {}): Promise<string> {
  const ca = await describeOrThrow(kms, caAlias);
  const prov = kmsCrypto();
  const now = opts.now ?? new Date();
  const name = opts.subject ?? 'CN=keyless-tls development CA, O=keyless-tls (development only)';
  const notAfter = new Date(now.getTime());
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + (opts.years ?? 10));
  const cert = await x509.X509CertificateGenerator.create(
    {
      subject: name,
      issuer: name,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter,
      publicKey: new Uint8Array(ca.spki),
      signingKey: kmsSigningKey(kms, ca.keyId, ca.keySpec),
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(new Uint8Array(ca.spki), false, prov),
      ],
    },
    prov,
  );
  const pem = normalizePem(cert.toString('pem'));
  // Belt and braces: the signature KMS produced must verify under the CA's own key.
  if (!new crypto.X509Certificate(pem).verify(crypto.createPublicKey({ key: ca.spki, format: 'der', type: 'spki' }))) {
    throw new Error('issued CA certificate does not verify under the KMS CA key');
  }
  return pem;
}

/** A leaf public key that is not a KMS signing key (e.g. a `sealed` custody key pair). */
export interface LeafPublicKey {
  spki: Buffer;
  keySpec: string;
}

export interface IssueLeafOptions {
  caAlias: string;
  caCertPem: string;
  /** The leaf's KMS key; or give `leafPublicKey` for a key that KMS does not hold as a signing key. */
  leafAlias?: string;
  leafPublicKey?: LeafPublicKey;
  dnsNames: string[];
  ipAddresses?: string[];
  /** Validity in days (capped at the CA's own expiry). Default 397. */
  days?: number;
  now?: Date;
}

/** TLS server certificate (PEM) for the KMS key behind `leafAlias`, signed through KMS by the CA key. */
export async function issueLeaf(kms: KMSClient, opts: IssueLeafOptions): Promise<string> {
  if (opts.dnsNames.length === 0 && (opts.ipAddresses ?? []).length === 0)
    throw new Error('a leaf needs at least one name');
  const ca = await describeOrThrow(kms, opts.caAlias);
  if (!opts.leafPublicKey && !opts.leafAlias) throw new Error('issueLeaf needs leafAlias or leafPublicKey');
  const leaf = opts.leafPublicKey ?? (await describeOrThrow(kms, opts.leafAlias!));
  const caCert = new x509.X509Certificate(opts.caCertPem);
  const caSpki = Buffer.from(caCert.publicKey.rawData);
  if (!caSpki.equals(ca.spki)) throw new Error(`CA certificate does not belong to the KMS key ${opts.caAlias}`);
  const prov = kmsCrypto();
  const now = opts.now ?? new Date();
  const wanted = new Date(now.getTime() + (opts.days ?? 397) * DAY_MS);
  const notAfter = wanted < caCert.notAfter ? wanted : caCert.notAfter;
  const caSki = caCert.getExtension(x509.SubjectKeyIdentifierExtension);
  const isRsa = leaf.keySpec.startsWith('RSA_');
  const names: x509.JsonGeneralName[] = [
    ...opts.dnsNames.map((value) => ({ type: 'dns' as const, value })),
    ...(opts.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const cert = await x509.X509CertificateGenerator.create(
    {
      subject: `CN=${opts.dnsNames[0] ?? opts.ipAddresses?.[0]}`,
      issuer: caCert.subjectName,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter,
      publicKey: new Uint8Array(leaf.spki),
      signingKey: kmsSigningKey(kms, ca.keyId, ca.keySpec),
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | (isRsa ? x509.KeyUsageFlags.keyEncipherment : 0),
          true,
        ),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
        new x509.SubjectAlternativeNameExtension(names, false),
        await x509.SubjectKeyIdentifierExtension.create(new Uint8Array(leaf.spki), false, prov),
        caSki
          ? new x509.AuthorityKeyIdentifierExtension(caSki.keyId, false)
          : await x509.AuthorityKeyIdentifierExtension.create(new Uint8Array(ca.spki), false, prov),
      ],
    },
    prov,
  );
  const pem = normalizePem(cert.toString('pem'));
  const check = new crypto.X509Certificate(pem);
  if (!check.verify(crypto.createPublicKey({ key: ca.spki, format: 'der', type: 'spki' }))) {
    throw new Error('issued leaf certificate does not verify under the KMS CA key');
  }
  return pem;
}

// ---------------------------------------------------------------------------------------------
// ensureDevPki

export interface EnsureDevPkiOptions {
  kms: KMSClient;
  /** Output directory (default `.keyless/dev`). */
  dir?: string;
  leafKeySpec?: DevKeySpec;
  caKeySpec?: DevKeySpec;
  caAlias?: string;
  /** Default `alias/keyless/dev/localhost-<spec>` so switching specs never reuses a mismatched certificate. */
  leafAlias?: string;
  /** Certify this public key instead of a KMS signing key (`sealed` custody); no leaf KMS key is made. */
  leafPublicKey?: LeafPublicKey;
  /** File name of the chain in `dir` (default `localhost.chain.pem`). */
  chainFileName?: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  /** Leaf validity in days (default 397). */
  days?: number;
  now?: Date;
}

export interface DevPki {
  caPem: string;
  /** Leaf then CA. */
  chainPem: string;
  leafPem: string;
  /** The alias of the leaf key: what the key service should sign with (absent for `leafPublicKey`). */
  keyAlias?: string;
  keyId?: string;
  caAlias: string;
  caKeyId: string;
  paths: { ca: string; chain: string };
  /** What was reused from disk rather than (re)issued. */
  reused: { ca: boolean; leaf: boolean };
}

export const DEFAULT_CA_ALIAS = 'alias/keyless/dev/ca';
export const defaultLeafAlias = (spec: DevKeySpec): string =>
  `alias/keyless/dev/localhost-${spec.toLowerCase().replace(/_/g, '-')}`;

function readCerts(file: string): crypto.X509Certificate[] {
  try {
    return pemCertificateBlocks(fs.readFileSync(file, 'utf8')).map((pem) => new crypto.X509Certificate(pem));
  } catch {
    return [];
  }
}

const spkiOf = (cert: crypto.X509Certificate): Buffer => cert.publicKey.export({ type: 'spki', format: 'der' });
const validFor = (cert: crypto.X509Certificate, now: Date, ms: number): boolean =>
  new Date(cert.validTo).getTime() - now.getTime() > ms && new Date(cert.validFrom).getTime() <= now.getTime();

function writeAtomic(file: string, content: string): void {
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, content, { mode: 0o644 });
  fs.renameSync(tmp, file);
}

/** Create or reuse the dev CA and `localhost` certificate (see the module comment). */
export async function ensureDevPki(opts: EnsureDevPkiOptions): Promise<DevPki> {
  const { kms } = opts;
  const dir = opts.dir ?? path.join('.keyless', 'dev');
  const leafKeySpec = opts.leafKeySpec ?? 'ECC_NIST_P256';
  const caKeySpec = opts.caKeySpec ?? 'ECC_NIST_P256';
  const caAlias = opts.caAlias ?? DEFAULT_CA_ALIAS;
  const keyAlias = opts.leafPublicKey ? undefined : (opts.leafAlias ?? defaultLeafAlias(leafKeySpec));
  const dnsNames = opts.dnsNames ?? ['localhost'];
  const ipAddresses = opts.ipAddresses ?? ['127.0.0.1', '::1'];
  const now = opts.now ?? new Date();
  const paths = { ca: path.join(dir, 'ca.pem'), chain: path.join(dir, opts.chainFileName ?? 'localhost.chain.pem') };
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });

  const caKeyId = await createKmsKey(kms, {
    alias: caAlias,
    keySpec: caKeySpec,
    description: 'keyless-tls development CA',
  });
  const keyId = keyAlias
    ? await createKmsKey(kms, {
        alias: keyAlias,
        keySpec: leafKeySpec,
        description: 'keyless-tls development localhost',
      })
    : undefined;
  const caKey = await kmsPublicKey(kms, caKeyId);
  const leafKey = keyId ? await kmsPublicKey(kms, keyId) : opts.leafPublicKey!;

  // CA: reuse if it is our CA key's, a CA, self-signed, and valid for more than a day.
  let caPem: string;
  const [oldCa] = readCerts(paths.ca);
  const caReused =
    !!oldCa &&
    oldCa.ca &&
    spkiOf(oldCa).equals(caKey.spki) &&
    oldCa.verify(oldCa.publicKey) &&
    validFor(oldCa, now, DAY_MS);
  if (caReused) {
    caPem = normalizePem(oldCa.toString());
  } else {
    caPem = await issueDevCa(kms, caAlias, { now });
    writeAtomic(paths.ca, caPem);
  }
  const ca = new crypto.X509Certificate(caPem);

  // Leaf: reuse if issued by this CA for the leaf key, covering every name, valid for more than a day.
  let leafPem: string;
  const [oldLeaf] = readCerts(paths.chain);
  const leafReused =
    caReused &&
    !!oldLeaf &&
    spkiOf(oldLeaf).equals(leafKey.spki) &&
    oldLeaf.checkIssued(ca) &&
    oldLeaf.verify(ca.publicKey) &&
    validFor(oldLeaf, now, DAY_MS) &&
    dnsNames.every((n) => certificateDnsNames(oldLeaf).includes(canonicalDnsName(n))) &&
    ipAddresses.every((ip) => oldLeaf.checkIP(ip) !== undefined);
  if (leafReused) {
    leafPem = normalizePem(oldLeaf.toString());
  } else {
    leafPem = await issueLeaf(kms, {
      caAlias,
      caCertPem: caPem,
      leafAlias: keyAlias,
      leafPublicKey: opts.leafPublicKey,
      dnsNames,
      ipAddresses,
      days: opts.days,
      now,
    });
  }
  const chainPem = leafPem + caPem;
  if (!leafReused || fs.readFileSync(paths.chain, 'utf8') !== chainPem) writeAtomic(paths.chain, chainPem);

  return {
    caPem,
    chainPem,
    leafPem,
    keyAlias,
    keyId,
    caAlias,
    caKeyId,
    paths,
    reused: { ca: caReused, leaf: leafReused },
  };
}

// ---------------------------------------------------------------------------------------------
// ensureOriginPki: the demo TLS origin's own CA (not KMS: an origin holds its own key)

export interface OriginPki {
  /** The origin CA (`caFile` of the edge's route to the origin). */
  caPath: string;
  /** The origin's key and certificate (its name: `hostname`). */
  key: string;
  cert: string;
}

/**
 * A separate dev CA for the demo TLS origin and a P-256 server certificate for `hostname`, in
 * `dir/origin-pki/` (key files 0600). Unlike the edge's certificates this key is an ordinary file:
 * an origin holds its own key. Reused while valid for more than a day and covering the name.
 */
export async function ensureOriginPki(dir: string, hostname: string, now = new Date()): Promise<OriginPki> {
  const out = path.join(dir, 'origin-pki');
  const files = {
    caKey: path.join(out, 'ca.key'),
    ca: path.join(out, 'ca.pem'),
    key: path.join(out, 'origin.key'),
    cert: path.join(out, 'origin.pem'),
  };
  try {
    const cert = new crypto.X509Certificate(fs.readFileSync(files.cert));
    const ca = new crypto.X509Certificate(fs.readFileSync(files.ca));
    if (
      Date.parse(cert.validTo) - now.getTime() > DAY_MS &&
      namesCover(certificateDnsNames(cert), hostname) &&
      cert.verify(ca.publicKey)
    ) {
      return { caPath: files.ca, key: fs.readFileSync(files.key, 'utf8'), cert: fs.readFileSync(files.cert, 'utf8') };
    }
  } catch {
    // missing or unreadable: issue below
  }
  fs.mkdirSync(out, { recursive: true });
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const prov = crypto.webcrypto as unknown as X509Crypto;
  const subtle = crypto.webcrypto.subtle;
  const caKeys = (await subtle.generateKey(alg, true, ['sign', 'verify'])) as crypto.webcrypto.CryptoKeyPair;
  const leafKeys = (await subtle.generateKey(alg, true, ['sign', 'verify'])) as crypto.webcrypto.CryptoKeyPair;
  const caName = 'CN=keyless-tls demo origin CA, O=keyless-tls (development only)';
  const notBefore = new Date(now.getTime() - BACKDATE_MS);
  const caCert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      name: caName,
      notBefore,
      notAfter: new Date(now.getTime() + 3650 * DAY_MS),
      keys: caKeys,
      signingAlgorithm: alg,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ],
    } as x509.X509CertificateCreateSelfSignedParams,
    prov,
  );
  const leaf = await x509.X509CertificateGenerator.create(
    {
      subject: `CN=${hostname}`,
      issuer: caName,
      notBefore,
      notAfter: new Date(now.getTime() + 397 * DAY_MS),
      publicKey: leafKeys.publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: alg,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
        new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: hostname }], false),
      ],
    } as x509.X509CertificateCreateParams,
    prov,
  );
  const pkcs8 = async (k: crypto.webcrypto.CryptoKey): Promise<string> =>
    crypto
      .createPrivateKey({ key: Buffer.from(await subtle.exportKey('pkcs8', k)), format: 'der', type: 'pkcs8' })
      .export({ format: 'pem', type: 'pkcs8' }) as string;
  fs.writeFileSync(files.caKey, await pkcs8(caKeys.privateKey), { mode: 0o600 });
  fs.writeFileSync(files.key, await pkcs8(leafKeys.privateKey), { mode: 0o600 });
  writeAtomic(files.ca, normalizePem(caCert.toString('pem')));
  writeAtomic(files.cert, normalizePem(leaf.toString('pem')));
  return { caPath: files.ca, key: fs.readFileSync(files.key, 'utf8'), cert: fs.readFileSync(files.cert, 'utf8') };
}
