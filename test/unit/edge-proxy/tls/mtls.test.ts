/**
 * Client-certificate authentication (mTLS): chain verification and CertificateVerify checks on their
 * own, the message codecs, and the TLS 1.3 and TLS 1.2 engine against Node's TLS client (OpenSSL)
 * presenting client certificates — accepted, refused with the right alert, optional, resumed.
 */
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { AlertDescription, TlsAlert } from '../../../../edge-proxy/src/tls/alerts';
import { CertificateStore, loadCertificate } from '../../../../edge-proxy/src/tls/certificates';
import {
  acceptedClientSchemes,
  clientCertificateVerifyContent13,
  loadClientAuthPolicy,
  MAX_CLIENT_CHAIN,
  resumedClientAuth,
  verifyClientChain,
  verifyClientSignature,
  type ClientAuthPolicy,
} from '../../../../edge-proxy/src/tls/client-auth';
import {
  encodeCertificateRequest12,
  encodeCertificateRequest13,
} from '../../../../edge-proxy/src/tls/msgs/certificate-request';
import { parseClientCertificate12, parseClientCertificate13 } from '../../../../edge-proxy/src/tls/msgs/certificate';
import { parseCertificateVerify } from '../../../../edge-proxy/src/tls/msgs/certificate-verify';
import { Reader, Writer } from '../../../../edge-proxy/src/tls/codec';
import type { HandshakeError, TlsServerConnection } from '../../../../edge-proxy/src/tls/connection';
import { TlsServer } from '../../../../edge-proxy/src/tls/server';
import {
  decodeTicketState,
  encodeTicketState,
  TicketProtector,
  type TicketState,
} from '../../../../edge-proxy/src/tls/tickets';
import { nameToString, subjectDer, subjectString } from '../../../../edge-proxy/src/tls/x509-der';
import {
  makeClientPki,
  makeTestPki,
  type TestClientCert,
  type TestClientPki,
  type TestPki,
} from '../../../helpers/certs';
import { InProcessKeys } from '../../../helpers/in-process-keys';

let pki: TestPki;
let clients: TestClientPki;
let policy: ClientAuthPolicy;
let alice: TestClientCert; // P-256, issued by the client root
let bob: TestClientCert; // RSA, issued by the client intermediate (chain leaf + intermediate)
let stranger: TestClientCert; // issued by a CA nobody configured
let expired: TestClientCert;
let notYet: TestClientCert;
let serverOnly: TestClientCert; // extendedKeyUsage serverAuth only

const der = (pem: string): Buffer[] =>
  (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map(
    (b) => new crypto.X509Certificate(b).raw,
  );

function alertOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof TlsAlert) return AlertDescription[e.description];
    throw e;
  }
  return 'no alert';
}

beforeAll(() => {
  pki = makeTestPki();
  clients = makeClientPki();
  policy = loadClientAuthPolicy('required', clients.caPem);
  const day = 86_400_000;
  alice = clients.issue('alice', { subject: '/O=Example, Inc/CN=alice', san: 'email:alice@example.com' });
  bob = clients.issue('bob', { kind: 'rsa2048', subject: '/CN=bob', san: 'DNS:bob.example', issuer: 'intermediate' });
  stranger = clients.issue('stranger', { subject: '/CN=stranger', issuer: 'unknown' });
  expired = clients.issue('expired', {
    subject: '/CN=expired',
    notBefore: new Date(Date.now() - 10 * day),
    notAfter: new Date(Date.now() - day),
  });
  notYet = clients.issue('notyet', {
    subject: '/CN=notyet',
    notBefore: new Date(Date.now() + day),
    notAfter: new Date(Date.now() + 2 * day),
  });
  serverOnly = clients.issue('serveronly', { subject: '/CN=serveronly', eku: 'serverAuth' });
});

afterAll(() => {
  pki.cleanup();
  clients.cleanup();
});

describe('DER names', () => {
  it('renders a subject as RFC 4514, last RDN first, with escaping', () => {
    expect(subjectString(der(alice.certPem)[0])).toBe('CN=alice,O=Example\\, Inc');
  });

  it('keeps the subject bytes exactly as encoded (certificate_authorities)', () => {
    const ca = der(clients.caPem)[0];
    const subject = subjectDer(ca);
    expect(ca.includes(subject)).toBe(true);
    expect(nameToString(subject)).toBe('CN=keyless test client CA,O=Keyless Test');
  });

  it('escapes non-ASCII as UTF-8 hex pairs, so the value is always header-safe', () => {
    // SEQUENCE { SET { SEQUENCE { OID 2.5.4.3, UTF8String "é" } } }
    const name = Buffer.from('300f310d300b06035504030c04c3a92c20', 'hex');
    expect(nameToString(name)).toBe('CN=\\C3\\A9\\,\\ '); // a trailing space is escaped too
  });
});

describe('chain verification', () => {
  it('accepts a leaf issued by the CA and returns the path to the anchor', () => {
    const path = verifyClientChain(der(alice.chainPem), policy);
    expect(path.map((c) => c.subject)).toEqual(
      ['O=Example, Inc\nCN=alice', 'O=Keyless Test\nCN=keyless test client CA'].map((s) =>
        s.replace('Example, Inc', 'Example\\, Inc'),
      ),
    );
  });

  it('accepts a leaf under an intermediate the client sends', () => {
    expect(verifyClientChain(der(bob.chainPem), policy)).toHaveLength(3);
  });

  it('refuses a missing intermediate, an unknown CA, expired and not-yet-valid certificates, and server-only ones', () => {
    expect(alertOf(() => verifyClientChain(der(bob.certPem), policy))).toBe('unknown_ca');
    expect(alertOf(() => verifyClientChain(der(stranger.chainPem), policy))).toBe('unknown_ca');
    expect(alertOf(() => verifyClientChain(der(expired.chainPem), policy))).toBe('certificate_expired');
    expect(alertOf(() => verifyClientChain(der(notYet.chainPem), policy))).toBe('certificate_expired');
    expect(alertOf(() => verifyClientChain(der(serverOnly.chainPem), policy))).toBe('unsupported_certificate');
  });

  it('refuses a tampered signature as bad_certificate, garbage as bad_certificate, and overlong chains', () => {
    const leaf = Buffer.from(der(alice.certPem)[0]);
    leaf[leaf.length - 5] ^= 0x01; // inside the signature
    expect(alertOf(() => verifyClientChain([leaf], policy))).toBe('bad_certificate');
    expect(alertOf(() => verifyClientChain([Buffer.from('not a certificate')], policy))).toBe('bad_certificate');
    expect(alertOf(() => verifyClientChain(Array(MAX_CLIENT_CHAIN + 1).fill(der(alice.certPem)[0]), policy))).toBe(
      'bad_certificate',
    );
  });

  it('enforces pathLenConstraint: no CA below an intermediate with pathlen 0', () => {
    // leaf ← sub-CA ← intermediate (pathlen:0) ← root: one intermediate too many below the first.
    const dir = clients.dir;
    const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    fs.writeFileSync(path.join(dir, 'sub.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n');
    fs.writeFileSync(path.join(dir, 'deep.ext'), 'extendedKeyUsage=clientAuth\n');
    run([
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'sub.key',
      '-out',
      'sub.csr',
      '-subj',
      '/CN=sub CA',
    ]);
    run([
      'x509',
      '-req',
      '-in',
      'sub.csr',
      '-CA',
      'intermediate/ca.pem',
      '-CAkey',
      'intermediate/ca.key',
      '-CAcreateserial',
      '-out',
      'sub.pem',
      '-days',
      '2',
      '-extfile',
      'sub.ext',
    ]);
    run([
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'deep.key',
      '-out',
      'deep.csr',
      '-subj',
      '/CN=deep',
    ]);
    run([
      'x509',
      '-req',
      '-in',
      'deep.csr',
      '-CA',
      'sub.pem',
      '-CAkey',
      'sub.key',
      '-CAcreateserial',
      '-out',
      'deep.pem',
      '-days',
      '2',
      '-extfile',
      'deep.ext',
    ]);
    const chain = ['deep.pem', 'sub.pem', 'intermediate/ca.pem'].map(
      (f) => der(fs.readFileSync(path.join(dir, f), 'utf8'))[0],
    );
    expect(alertOf(() => verifyClientChain(chain, policy))).toBe('bad_certificate');
    expect(() => verifyClientChain(chain, policy)).toThrow(/pathLenConstraint \(0\)/);
    // A leaf directly under that intermediate is within its constraint.
    expect(verifyClientChain(der(bob.chainPem), policy)).toHaveLength(3);
  });

  it('does not let a leaf act as an issuer (intermediates must be CAs)', () => {
    // alice's certificate is not a CA, so nothing it "issued" can chain; here: bob with alice as intermediate.
    expect(alertOf(() => verifyClientChain([der(bob.certPem)[0], der(alice.certPem)[0]], policy))).toBe('unknown_ca');
  });

  it('re-verifies a resumed identity against the current policy', () => {
    const path = verifyClientChain(der(alice.chainPem), policy).map((c) => c.raw);
    expect(resumedClientAuth(policy, path)).toMatchObject({ verified: true, subject: 'CN=alice,O=Example\\, Inc' });
    const otherPolicy = loadClientAuthPolicy('required', new crypto.X509Certificate(stranger.certPem).toString());
    expect(resumedClientAuth(otherPolicy, path)).toBe('refuse');
    expect(resumedClientAuth(policy, undefined)).toBe('refuse');
    expect(resumedClientAuth({ ...policy, mode: 'optional' }, undefined)).toEqual({
      mode: 'optional',
      verified: false,
    });
    expect(resumedClientAuth(undefined, path)).toBeUndefined();
  });

  it('refuses a CA file without certificates', () => {
    expect(() => loadClientAuthPolicy('required', 'nothing here')).toThrow(/no PEM CERTIFICATE/);
  });
});

describe('CertificateVerify', () => {
  const hash = crypto.randomBytes(32);
  const content = clientCertificateVerifyContent13(hash);

  it('verifies ECDSA and RSA-PSS signatures over the TLS 1.3 client content', () => {
    const ec = new crypto.X509Certificate(alice.certPem);
    expect(verifyClientSignature(ec, 0x0403, content, crypto.sign('sha256', content, alice.key), true).name).toBe(
      'ecdsa_secp256r1_sha256',
    );
    const rsa = new crypto.X509Certificate(bob.certPem);
    const pss = crypto.sign('sha256', content, {
      key: bob.key,
      padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 32,
    });
    expect(verifyClientSignature(rsa, 0x0804, content, pss, true).name).toBe('rsa_pss_rsae_sha256');
  });

  it('uses the client context string, not the server one', () => {
    expect(content.subarray(64, 64 + 33).toString()).toBe('TLS 1.3, client CertificateVerify');
    expect(content[97]).toBe(0);
    expect(content.subarray(98)).toEqual(hash);
  });

  it('decrypt_error for a signature by another key or over other bytes', () => {
    const ec = new crypto.X509Certificate(alice.certPem);
    expect(
      alertOf(() => verifyClientSignature(ec, 0x0403, content, crypto.sign('sha256', content, stranger.key), true)),
    ).toBe('decrypt_error');
    expect(
      alertOf(() =>
        verifyClientSignature(ec, 0x0403, content, crypto.sign('sha256', Buffer.from('other'), alice.key), true),
      ),
    ).toBe('decrypt_error');
    // A scheme for another key type: the key does not fit, so the signature cannot verify.
    expect(alertOf(() => verifyClientSignature(ec, 0x0804, content, Buffer.alloc(256, 1), true))).toBe('decrypt_error');
  });

  it('illegal_parameter for schemes we never offer: SHA-1, and PKCS#1 v1.5 in TLS 1.3', () => {
    const rsa = new crypto.X509Certificate(bob.certPem);
    const pkcs1 = crypto.sign('sha256', content, bob.key);
    expect(alertOf(() => verifyClientSignature(rsa, 0x0401, content, pkcs1, true))).toBe('illegal_parameter');
    expect(verifyClientSignature(rsa, 0x0401, content, pkcs1, false).name).toBe('rsa_pkcs1_sha256');
    expect(alertOf(() => verifyClientSignature(rsa, 0x0201, content, pkcs1, false))).toBe('illegal_parameter');
    expect(acceptedClientSchemes(true).some((s) => s.padding === 'pkcs1')).toBe(false);
  });
});

describe('codecs', () => {
  it('TLS 1.3 CertificateRequest: empty context, signature_algorithms, certificate_authorities', () => {
    const msg = encodeCertificateRequest13([0x0403, 0x0804], policy.authorities);
    expect(msg[0]).toBe(13);
    const r = new Reader(msg.subarray(4));
    expect(r.vec8('context').length).toBe(0);
    const exts = r.sub16('extensions');
    expect(exts.u16()).toBe(13);
    expect(exts.vec16('sigalgs')).toEqual(Buffer.from([0, 4, 4, 3, 8, 4]));
    expect(exts.u16()).toBe(47);
    const cas = new Reader(exts.vec16('cas')).sub16('authorities');
    expect(cas.vec16('dn')).toEqual(policy.authorities[0]);
    expect(cas.remaining).toBe(0);
  });

  it('TLS 1.2 CertificateRequest: certificate types, algorithms, DN list', () => {
    const msg = encodeCertificateRequest12([0x0401], []);
    expect(msg.subarray(4)).toEqual(Buffer.from([2, 64, 1, 0, 2, 4, 1, 0, 0]));
  });

  it('parses client Certificates and refuses a context or entry extensions we did not ask for', () => {
    const certs = der(bob.chainPem);
    const body13 = (ctx: Buffer, ext: Buffer) =>
      new Writer()
        .vec8(ctx)
        .vec24((w) => certs.forEach((c) => w.vec24(c).vec16(ext)))
        .finish();
    expect(parseClientCertificate13(body13(Buffer.alloc(0), Buffer.alloc(0)))).toEqual(certs);
    expect(alertOf(() => parseClientCertificate13(body13(Buffer.from([1]), Buffer.alloc(0))))).toBe(
      'illegal_parameter',
    );
    expect(alertOf(() => parseClientCertificate13(body13(Buffer.alloc(0), Buffer.from([0, 5, 0, 0]))))).toBe(
      'unsupported_extension',
    );
    expect(parseClientCertificate13(Buffer.from([0, 0, 0, 0]))).toEqual([]);
    expect(parseClientCertificate12(new Writer().vec24((w) => certs.forEach((c) => w.vec24(c))).finish())).toEqual(
      certs,
    );
    expect(alertOf(() => parseClientCertificate12(Buffer.from([0, 0, 3, 0, 0, 0])))).toBe('decode_error');
    expect(parseCertificateVerify(Buffer.from([4, 3, 0, 1, 9]))).toEqual({
      scheme: 0x0403,
      signature: Buffer.from([9]),
    });
    expect(alertOf(() => parseCertificateVerify(Buffer.from([4, 3, 0, 0])))).toBe('decode_error');
  });

  it('tickets carry the client chain, and tickets without one are encoded as before', () => {
    const base: TicketState = {
      protocol: 'TLSv1.3',
      suite: 0x1301,
      secret: Buffer.alloc(32, 7),
      issuedAt: 1_700_000_000_000,
      ageAdd: 5,
      lifetimeSeconds: 60,
      extendedMasterSecret: false,
      serverName: 'a',
      alpn: '',
    };
    const plain = encodeTicketState(base);
    expect(decodeTicketState(plain)?.clientCertificateChain).toBeUndefined();
    const chain = der(bob.chainPem);
    const withChain = encodeTicketState({ ...base, clientCertificateChain: chain });
    expect(withChain.subarray(0, plain.length)).toEqual(plain);
    expect(decodeTicketState(withChain)?.clientCertificateChain).toEqual(chain);
    expect(decodeTicketState(Buffer.concat([plain, Buffer.from([0, 0, 5, 0, 0, 1])]))).toBeUndefined();
  });
});

// ---- the engine against Node's TLS client -------------------------------------------------------

let server: TlsServer;
let port: number;
const serverErrors: HandshakeError[] = [];

interface Seen {
  authorized: boolean;
  authorizationError?: string;
  resumed: boolean;
  protocol: string | null;
  clientAuth?: { mode: string; verified: boolean; subject?: string; san?: string; fingerprint256?: string };
  peer: {
    subject?: Record<string, string>;
    subjectaltname?: string;
    fingerprint256?: string;
    raw?: string;
    issuerCN?: string;
    valid_to?: string;
  };
}

beforeAll(async () => {
  const rsa = pki.leaf('srv-rsa', 'rsa2048', ['localhost', 'required.test']);
  const ec = pki.leaf('srv-ec', 'p256', ['optional.test']);
  const plain = pki.leaf('srv-plain', 'p256', ['plain.test']);
  const keys = new InProcessKeys(
    new Map([
      ['rsa', rsa.key],
      ['ec', ec.key],
      ['plain', plain.key],
    ]),
  );
  const tickets = new TicketProtector();
  tickets.setKeys({
    epochSeconds: 3600,
    current: { epoch: 10, key: crypto.randomBytes(32) },
    previous: { epoch: 9, key: crypto.randomBytes(32) },
  });
  server = new TlsServer({
    certificates: new CertificateStore([
      { ...loadCertificate(rsa.chainPem, 'rsa'), allowRsaKeyExchange: true, clientAuth: policy },
      { ...loadCertificate(ec.chainPem, 'ec'), clientAuth: { ...policy, mode: 'optional' } },
      loadCertificate(plain.chainPem, 'plain'),
    ]),
    keyOperations: keys,
    handshakeTimeoutMs: 5000,
    tickets,
  });
  server.on('secureConnection', (c: TlsServerConnection) => {
    const peer = c.getPeerCertificate(true) as Partial<tls.DetailedPeerCertificate>;
    const auth = c.handshakeInfo?.clientAuth;
    // The chain is checked through getPeerCertificate; the rest of the result is compared whole.
    const clientAuth = auth
      ? {
          mode: auth.mode,
          verified: auth.verified,
          subject: auth.subject,
          san: auth.san,
          fingerprint256: auth.fingerprint256,
        }
      : undefined;
    const seen: Seen = {
      authorized: c.authorized,
      authorizationError: c.authorizationError,
      resumed: c.isSessionReused(),
      protocol: c.getProtocol(),
      clientAuth,
      peer: {
        subject: peer.subject as unknown as Record<string, string>,
        subjectaltname: peer.subjectaltname,
        fingerprint256: peer.fingerprint256,
        raw: peer.raw?.toString('base64'),
        issuerCN: String(peer.issuerCertificate?.subject?.CN),
        valid_to: peer.valid_to,
      },
    };
    c.end(JSON.stringify(seen));
  });
  server.on('tlsClientError', (e) => serverErrors.push(e));
  port = (await server.listen(0)).port;
});

afterAll(async () => {
  await server.close(true);
});

interface Outcome {
  seen?: Seen;
  clientError?: string;
  session?: Buffer;
}

function connect(servername: string, opts: tls.ConnectionOptions = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: pki.caPem, servername, ...opts });
    let body = '';
    let session: Buffer | undefined;
    let settled = false;
    const done = (o: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      // A TLS 1.3 ticket may follow the data; it is in by the time the server's close arrives.
      resolve({ ...o, session });
    };
    const timer = setTimeout(() => done({ clientError: 'client timeout' }), 15_000);
    s.on('session', (b: Buffer) => (session = b));
    s.on('data', (d: Buffer) => (body += d.toString()));
    s.on('error', (e: NodeJS.ErrnoException) => done({ clientError: `${e.code ?? ''} ${e.message}` }));
    s.on('end', () => done(body ? { seen: JSON.parse(body) as Seen } : { clientError: 'closed without data' }));
  });
}

const withCert = (c: TestClientCert): tls.ConnectionOptions => ({
  cert: c.chainPem,
  key: c.key.export({ type: 'pkcs8', format: 'pem' }) as string,
});

/** The alert the server sent for the most recent failed handshake (waits for the event). */
async function lastServerAlert(before: number): Promise<string | undefined> {
  const deadline = Date.now() + 10_000;
  while (serverErrors.length <= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return serverErrors[serverErrors.length - 1]?.sentAlert;
}

describe.each([
  ['TLSv1.3', { minVersion: 'TLSv1.3' } as tls.ConnectionOptions],
  ['TLSv1.2 ECDHE', { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' } as tls.ConnectionOptions],
  ['TLSv1.2 RSA key exchange', { maxVersion: 'TLSv1.2', ciphers: 'AES128-GCM-SHA256' } as tls.ConnectionOptions],
])('%s with a client certificate', (name, versionOpts) => {
  const protocol = name.startsWith('TLSv1.3') ? 'TLSv1.3' : 'TLSv1.2';

  it('accepts a P-256 client certificate and exposes it like TLSSocket', async () => {
    const o = await connect('required.test', { ...versionOpts, ...withCert(alice) });
    expect(o.clientError).toBeUndefined();
    const seen = o.seen!;
    expect(seen.protocol).toBe(protocol);
    expect(seen.authorized).toBe(true);
    expect(seen.authorizationError).toBeUndefined();
    const x = new crypto.X509Certificate(alice.certPem);
    expect(seen.peer.subject).toMatchObject({ CN: 'alice', O: 'Example, Inc' });
    expect(seen.peer.subjectaltname).toBe('email:alice@example.com');
    expect(seen.peer.fingerprint256).toBe(x.fingerprint256);
    expect(seen.peer.raw).toBe(x.raw.toString('base64'));
    expect(seen.peer.valid_to).toBe(x.validTo);
    expect(seen.peer.issuerCN).toBe('keyless test client CA');
    expect(seen.clientAuth).toEqual({
      mode: 'required',
      verified: true,
      subject: 'CN=alice,O=Example\\, Inc',
      san: 'email:alice@example.com',
      fingerprint256: crypto.createHash('sha256').update(x.raw).digest('hex'),
    });
  });

  it('accepts an RSA client certificate under an intermediate', async () => {
    const o = await connect('required.test', { ...versionOpts, ...withCert(bob) });
    expect(o.seen?.authorized).toBe(true);
    expect(o.seen?.peer.subject).toMatchObject({ CN: 'bob' });
    expect(o.seen?.peer.issuerCN).toBe('keyless test client intermediate');
  });

  it(`required without a certificate: ${protocol === 'TLSv1.3' ? 'certificate_required' : 'handshake_failure'}`, async () => {
    const before = serverErrors.length;
    const o = await connect('required.test', versionOpts);
    expect(o.seen).toBeUndefined();
    const alert = protocol === 'TLSv1.3' ? 'certificate_required' : 'handshake_failure';
    expect(await lastServerAlert(before)).toBe(alert);
    expect(o.clientError?.toUpperCase()).toContain(alert.toUpperCase());
  });

  it.each([
    ['an unknown CA', 'unknown_ca', () => stranger],
    ['an expired certificate', 'certificate_expired', () => expired],
    ['a server-only certificate', 'unsupported_certificate', () => serverOnly],
  ])('refuses %s with %s', async (_what, alert, cert) => {
    const before = serverErrors.length;
    const o = await connect('required.test', { ...versionOpts, ...withCert(cert()) });
    expect(o.seen).toBeUndefined();
    expect(await lastServerAlert(before)).toBe(alert);
    expect(o.clientError?.toUpperCase()).toContain(alert.toUpperCase());
  });

  it('optional: a client without a certificate gets through, unauthenticated', async () => {
    const o = await connect('optional.test', { ...versionOpts, ciphers: versionOpts.ciphers?.replace('RSA', 'ECDSA') });
    if (name.includes('RSA key exchange')) {
      // The optional host has an EC certificate: no RSA key exchange there; the ECDHE case covers TLS 1.2.
      expect(o.clientError).toBeDefined();
      return;
    }
    expect(o.seen).toMatchObject({
      authorized: false,
      authorizationError: 'NO_PEER_CERTIFICATE',
      clientAuth: { mode: 'optional', verified: false },
      peer: {},
    });
    expect(o.seen?.peer.subject).toBeUndefined();
  });

  it('a host without mTLS does not ask, even when the client has a certificate', async () => {
    const o = await connect('plain.test', {
      ...versionOpts,
      ciphers: versionOpts.ciphers?.replace('RSA', 'ECDSA'),
      ...withCert(alice),
    });
    if (name.includes('RSA key exchange')) return; // EC certificate: covered by the ECDHE case
    expect(o.seen).toMatchObject({ authorized: false, peer: {} });
    expect(o.seen?.authorizationError).toBeUndefined();
    expect(o.seen?.clientAuth).toBeUndefined();
  });

  it('resumption keeps the client identity without asking again', async () => {
    const first = await connect('required.test', { ...versionOpts, ...withCert(alice) });
    expect(first.seen?.resumed).toBe(false);
    expect(first.session).toBeDefined();
    // No certificate this time: had the server asked again, this client would answer with an empty
    // Certificate and be refused; the identity can only come from the ticket.
    const again = await connect('required.test', { ...versionOpts, session: first.session });
    expect(again.seen?.resumed).toBe(true);
    expect(again.seen?.authorized).toBe(true);
    expect(again.seen?.peer.subject).toMatchObject({ CN: 'alice' });
    expect(again.seen?.clientAuth?.fingerprint256).toBe(first.seen?.clientAuth?.fingerprint256);
  });
});
