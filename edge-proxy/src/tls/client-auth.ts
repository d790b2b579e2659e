/**
 * Client-certificate authentication (mTLS), per served certificate / hostname: the policy, the
 * chain verification against the configured CAs, the client's CertificateVerify, and the steps the
 * TLS 1.3 and 1.2 state machines call. No private key is involved: everything here is verification
 * with public keys (node:crypto `X509Certificate`, `crypto.verify`).
 *
 * Chain checks: each certificate is issued by and signed with the key of the next one (the client
 * sends leaf first), the path ends in a certificate of the CA bundle (equal to it, or issued and
 * signed by it), every certificate in the path (anchor included) is within its validity window,
 * intermediates have basicConstraints CA:TRUE, every CA's pathLenConstraint holds, an issuer's
 * KeyUsage (when present) allows keyCertSign (OpenSSL's X509_check_issued), the leaf's KeyUsage
 * (when present) allows digitalSignature and its extended key usage (when present) clientAuth, and
 * the path is at most `MAX_CLIENT_CHAIN` certificates. Not checked: revocation (no CRL or OCSP), name constraints,
 * certificate policies.
 */
import * as crypto from 'node:crypto';
import { pemCertificateBlocks } from '../../../contract/x509';
import { AlertDescription, TlsAlert } from './alerts';
import { encodeCertificateRequest12, encodeCertificateRequest13 } from './msgs/certificate-request';
import { parseClientCertificate12, parseClientCertificate13 } from './msgs/certificate';
import { parseCertificateVerify } from './msgs/certificate-verify';
import type { HandshakeIo } from './handshake-io';
import { HandshakeType } from './handshake-joiner';
import { schemeById, SignatureScheme, SIGNATURE_SCHEMES } from './sigalgs';
import type { Transcript } from './transcript';
import { DerError, keyUsageBits, pathLenConstraint, subjectDer, subjectString } from './x509-der';

export type ClientAuthMode = 'none' | 'optional' | 'required';

/** Certificates in a client chain, leaf and anchor included (a leaf and up to 3 intermediates under a root). */
export const MAX_CLIENT_CHAIN = 5;

/** The trust configuration of one served certificate whose host asks for client certificates. */
export interface ClientAuthPolicy {
  mode: 'optional' | 'required';
  /** The CA bundle: trust anchors. */
  anchors: crypto.X509Certificate[];
  /** The anchors' subjects as encoded, for certificate_authorities. */
  authorities: Buffer[];
}

/** What a handshake learnt about the client; on `HandshakeInfo.clientAuth` for hosts with mTLS. */
export interface ClientAuthResult {
  mode: 'optional' | 'required';
  /** True when the client presented a certificate that verified. */
  verified: boolean;
  /** The verified path, leaf first, ending with the trust anchor (DER). Absent: no certificate. */
  chain?: Buffer[];
  /** Leaf subject, RFC 4514. */
  subject?: string;
  /** Leaf subjectAltName as OpenSSL prints it (`DNS:a, email:b`). */
  san?: string;
  /** SHA-256 of the leaf DER, lower-case hex. */
  fingerprint256?: string;
}

const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const OID_ANY_EKU = '2.5.29.37.0';

/** Builds a policy from a PEM CA bundle; throws Error with a message fit for a configuration error. */
export function loadClientAuthPolicy(mode: 'optional' | 'required', caPem: string): ClientAuthPolicy {
  const blocks = pemCertificateBlocks(caPem);
  if (blocks.length === 0) throw new Error('contains no PEM CERTIFICATE block');
  const anchors = blocks.map((b, i) => {
    try {
      return new crypto.X509Certificate(b);
    } catch (e) {
      throw new Error(`certificate #${i + 1} does not parse (${(e as Error).message})`);
    }
  });
  const authorities = anchors.map((a, i) => {
    try {
      pathLenConstraint(a.raw);
      keyUsageBits(a.raw);
      return subjectDer(a.raw);
    } catch (e) {
      throw new Error(`certificate #${i + 1}: ${(e as Error).message}`);
    }
  });
  return { mode, anchors, authorities };
}

/** Schemes we accept in a client CertificateVerify: never SHA-1; in TLS 1.3 no PKCS#1 v1.5 (RFC 8446 §4.4.3). */
export function acceptedClientSchemes(tls13: boolean): SignatureScheme[] {
  return SIGNATURE_SCHEMES.filter((s) => !tls13 || s.tls13);
}

function fail(description: AlertDescription, message: string): never {
  throw new TlsAlert(description, message);
}

function parseCert(der: Buffer, index: number): crypto.X509Certificate {
  try {
    const cert = new crypto.X509Certificate(der);
    // Well-formed extensions we read ourselves, or bad_certificate now rather than later.
    keyUsageBits(der);
    pathLenConstraint(der);
    return cert;
  } catch (e) {
    return fail(
      AlertDescription.bad_certificate,
      `client certificate #${index} does not parse${e instanceof DerError ? `: ${e.message}` : ''}`,
    );
  }
}

function checkValidity(cert: crypto.X509Certificate, now: number, what: string): void {
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  // certificate_expired covers "expired or not currently valid" (RFC 8446 §6.2).
  if (!(now >= from)) fail(AlertDescription.certificate_expired, `${what} is not valid before ${cert.validFrom}`);
  if (!(now <= to)) fail(AlertDescription.certificate_expired, `${what} expired ${cert.validTo}`);
}

/** `issuer` issued `child`: names/key ids/keyCertSign match (OpenSSL) and the signature verifies. */
function issued(issuer: crypto.X509Certificate, child: crypto.X509Certificate): boolean {
  try {
    return child.checkIssued(issuer) && child.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/**
 * Verifies a client's chain (leaf first) against the policy; returns the path, leaf first, ending
 * with the anchor. Throws the alert RFC 8446 §6.2 names for the failure.
 */
export function verifyClientChain(
  chainDer: readonly Buffer[],
  policy: ClientAuthPolicy,
  now = Date.now(),
): crypto.X509Certificate[] {
  if (chainDer.length === 0) fail(AlertDescription.bad_certificate, 'empty client certificate chain');
  if (chainDer.length > MAX_CLIENT_CHAIN)
    fail(
      AlertDescription.bad_certificate,
      `client sent ${chainDer.length} certificates; at most ${MAX_CLIENT_CHAIN} are accepted`,
    );
  const sent = chainDer.map((d, i) => parseCert(d, i));
  const leaf = sent[0];

  const ku = keyUsageBits(leaf.raw);
  if (ku && !ku.digitalSignature)
    fail(AlertDescription.unsupported_certificate, 'client certificate KeyUsage does not allow digitalSignature');
  // X509Certificate.keyUsage is the extended key usage list (undefined: no such extension).
  const eku = leaf.keyUsage;
  if (eku && !eku.includes(OID_CLIENT_AUTH) && !eku.includes(OID_ANY_EKU)) {
    fail(AlertDescription.unsupported_certificate, 'client certificate extended key usage does not include clientAuth');
  }

  const path: crypto.X509Certificate[] = [leaf];
  const unused = sent.slice(1);
  let current = leaf;
  while (true) {
    checkValidity(
      current,
      now,
      path.length === 1 ? 'client certificate' : `client chain certificate ${path.length - 1}`,
    );
    const equal = policy.anchors.find((a) => a.raw.equals(current.raw));
    if (equal) break; // the client sent the anchor itself (or a pinned self-issued certificate)
    const anchor = policy.anchors.find((a) => a.ca && issued(a, current));
    if (anchor) {
      checkValidity(anchor, now, 'trusted CA certificate');
      path.push(anchor);
      break;
    }
    const i = unused.findIndex((c) => issuedBy(c, current));
    if (i < 0) {
      // A certificate that names a sent issuer but whose signature does not verify is corrupt, not unknown.
      if ([...unused, ...policy.anchors].some((c) => safeCheckIssued(current, c)))
        fail(AlertDescription.bad_certificate, 'client chain signature does not verify');
      fail(
        AlertDescription.unknown_ca,
        `client certificate chain does not lead to a configured CA (issuer ${current.issuer.replace(/\n/g, ', ')})`,
      );
    }
    const next = unused.splice(i, 1)[0];
    if (!next.ca)
      fail(AlertDescription.unknown_ca, 'client chain: an intermediate certificate is not a CA (basicConstraints)');
    path.push(next);
    if (path.length > MAX_CLIENT_CHAIN)
      fail(AlertDescription.bad_certificate, `client certificate path longer than ${MAX_CLIENT_CHAIN}`);
    current = next;
  }
  if (path.length > MAX_CLIENT_CHAIN)
    fail(AlertDescription.bad_certificate, `client certificate path longer than ${MAX_CLIENT_CHAIN}`);
  // RFC 5280 §4.2.1.9: a CA with pathLenConstraint n may have at most n intermediates below it.
  for (let j = 1; j < path.length; j++) {
    const limit = pathLenConstraint(path[j].raw);
    if (limit !== undefined && j - 1 > limit)
      fail(AlertDescription.bad_certificate, `client chain exceeds the pathLenConstraint (${limit}) of a CA`);
  }
  return path;
}

function safeCheckIssued(child: crypto.X509Certificate, issuer: crypto.X509Certificate): boolean {
  try {
    return child.checkIssued(issuer);
  } catch {
    return false;
  }
}

/** `candidate` is the issuer of `child` (and not `child` itself). */
function issuedBy(candidate: crypto.X509Certificate, child: crypto.X509Certificate): boolean {
  return !candidate.raw.equals(child.raw) && issued(candidate, child);
}

/**
 * Verifies a client CertificateVerify signature with the leaf's public key. A scheme we did not offer
 * is illegal_parameter; a key that does not fit the scheme or a bad signature is decrypt_error
 * (RFC 8446 §4.4.3, as Go's crypto/tls does).
 */
export function verifyClientSignature(
  leaf: crypto.X509Certificate,
  schemeId: number,
  content: Buffer,
  signature: Buffer,
  tls13: boolean,
): SignatureScheme {
  const scheme = schemeById(schemeId);
  if (!scheme || !acceptedClientSchemes(tls13).includes(scheme)) {
    fail(
      AlertDescription.illegal_parameter,
      `client CertificateVerify uses signature scheme 0x${schemeId.toString(16).padStart(4, '0')}, which we did not offer`,
    );
  }
  const key = leaf.publicKey;
  let ok = false;
  const keyFits =
    key.asymmetricKeyType === scheme.keyType &&
    // TLS 1.3 binds each ECDSA scheme to a curve; TLS 1.2 names only the hash (RFC 8422 §5.1.3).
    (scheme.keyType !== 'ec' || !tls13 || key.asymmetricKeyDetails?.namedCurve === scheme.curve);
  if (keyFits) {
    try {
      ok =
        scheme.padding === 'pss'
          ? crypto.verify(
              scheme.hash,
              content,
              {
                key,
                padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
                saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST,
              },
              signature,
            )
          : crypto.verify(scheme.hash, content, key, signature);
    } catch {
      ok = false;
    }
  }
  if (!ok)
    fail(
      AlertDescription.decrypt_error,
      `client CertificateVerify (${scheme.name}) does not verify with the certificate's key`,
    );
  return scheme;
}

/** The content a TLS 1.3 client signs (RFC 8446 §4.4.3). */
export function clientCertificateVerifyContent13(transcriptHash: Buffer): Buffer {
  return Buffer.concat([
    Buffer.alloc(64, 0x20),
    Buffer.from('TLS 1.3, client CertificateVerify'),
    Buffer.from([0]),
    transcriptHash,
  ]);
}

/** The result for a verified path (leaf first). */
export function describeClient(
  mode: ClientAuthPolicy['mode'],
  path: readonly crypto.X509Certificate[],
): ClientAuthResult {
  const leaf = path[0];
  return {
    mode,
    verified: true,
    chain: path.map((c) => c.raw),
    subject: subjectString(leaf.raw),
    san: leaf.subjectAltName,
    fingerprint256: crypto.createHash('sha256').update(leaf.raw).digest('hex'),
  };
}

function anonymous(policy: ClientAuthPolicy): ClientAuthResult {
  return { mode: policy.mode, verified: false };
}

/**
 * Resumption: the identity a ticket carries is verified again against the host's current policy
 * (CA bundle reloaded, certificate since expired). Returns undefined when the ticket must not be
 * used for this host (a full handshake asks for a certificate again).
 */
export function resumedClientAuth(
  policy: ClientAuthPolicy | undefined,
  chain: readonly Buffer[] | undefined,
): ClientAuthResult | undefined | 'refuse' {
  if (!policy) return undefined;
  if (!chain || chain.length === 0) return policy.mode === 'required' ? 'refuse' : anonymous(policy);
  try {
    return describeClient(policy.mode, verifyClientChain(chain, policy));
  } catch {
    return 'refuse';
  }
}

// ---- TLS 1.3 (RFC 8446 §4.3.2, §4.4.2, §4.4.3) --------------------------------------------------

export function certificateRequest13(policy: ClientAuthPolicy): Buffer {
  return encodeCertificateRequest13(
    acceptedClientSchemes(true).map((s) => s.id),
    policy.authorities,
  );
}

/**
 * After our Finished: the client's Certificate, then (when it is not empty) its CertificateVerify,
 * both added to the transcript. An empty Certificate is certificate_required under `required`
 * (RFC 8446 §4.4.2.4), an anonymous client under `optional`.
 */
export async function readClientAuth13(
  io: HandshakeIo,
  transcript: Transcript,
  policy: ClientAuthPolicy,
): Promise<ClientAuthResult> {
  const certMsg = await io.readHandshakeMessage(HandshakeType.certificate);
  const chain = parseClientCertificate13(certMsg.body);
  transcript.update(certMsg.raw);
  if (chain.length === 0) {
    if (policy.mode === 'required')
      fail(AlertDescription.certificate_required, 'client sent no certificate and this host requires one');
    return anonymous(policy);
  }
  const path = verifyClientChain(chain, policy);
  const cvMsg = await io.readHandshakeMessage(HandshakeType.certificate_verify);
  const cv = parseCertificateVerify(cvMsg.body);
  verifyClientSignature(path[0], cv.scheme, clientCertificateVerifyContent13(transcript.digest()), cv.signature, true);
  transcript.update(cvMsg.raw);
  return describeClient(policy.mode, path);
}

// ---- TLS 1.2 (RFC 5246 §7.4.4, §7.4.6, §7.4.8) --------------------------------------------------

export function certificateRequest12(policy: ClientAuthPolicy): Buffer {
  return encodeCertificateRequest12(
    acceptedClientSchemes(false).map((s) => s.id),
    policy.authorities,
  );
}

/**
 * The client's Certificate, the first message of its flight. Returns the verified path, or undefined
 * for an anonymous client under `optional`; `required` without a certificate is handshake_failure
 * (RFC 5246 §7.4.6).
 */
export async function readClientCertificate12(
  io: HandshakeIo,
  policy: ClientAuthPolicy,
): Promise<{ raw: Buffer; path?: crypto.X509Certificate[] }> {
  const msg = await io.readHandshakeMessage(HandshakeType.certificate);
  const chain = parseClientCertificate12(msg.body);
  if (chain.length === 0) {
    if (policy.mode === 'required')
      fail(AlertDescription.handshake_failure, 'client sent no certificate and this host requires one');
    return { raw: msg.raw };
  }
  return { raw: msg.raw, path: verifyClientChain(chain, policy) };
}

/** The client's CertificateVerify after ClientKeyExchange: a signature over every handshake message so far. */
export async function readClientCertificateVerify12(
  io: HandshakeIo,
  leaf: crypto.X509Certificate,
  handshakeMessages: Buffer,
): Promise<Buffer> {
  const msg = await io.readHandshakeMessage(HandshakeType.certificate_verify);
  const cv = parseCertificateVerify(msg.body);
  verifyClientSignature(leaf, cv.scheme, handshakeMessages, cv.signature, false);
  return msg.raw;
}

export function anonymousClient(policy: ClientAuthPolicy): ClientAuthResult {
  return anonymous(policy);
}

// ---- TLSSocket surface --------------------------------------------------------------------------

/** Node's `tls.PeerCertificate` shape (what `TLSSocket.getPeerCertificate()` returns). */
export type LegacyPeerCertificate = ReturnType<crypto.X509Certificate['toLegacyObject']> & {
  issuerCertificate?: LegacyPeerCertificate;
};

/**
 * `getPeerCertificate(detailed)` for a verified client: the leaf in Node's legacy shape; with
 * `detailed`, `issuerCertificate` links up the path, the self-signed anchor pointing at itself as in Node.
 */
export function peerCertificateObject(chain: readonly Buffer[], detailed: boolean): LegacyPeerCertificate {
  const objs = chain.map((der) => new crypto.X509Certificate(der).toLegacyObject() as LegacyPeerCertificate);
  if (detailed) {
    for (let i = 0; i < objs.length; i++) {
      const next = objs[i + 1];
      if (next) objs[i].issuerCertificate = next;
      else if (new crypto.X509Certificate(chain[i]).checkIssued(new crypto.X509Certificate(chain[i])))
        objs[i].issuerCertificate = objs[i];
    }
  }
  return objs[0];
}
