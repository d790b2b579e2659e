/**
 * The TLS 1.2 engine against Node/OpenSSL clients and crafted bytes: ECDHE-RSA and ECDHE-ECDSA with
 * every AEAD suite and group, RSA key exchange only for keys whose custody allows it, extended master
 * secret, secure renegotiation indication with renegotiation refused, and the downgrade sentinel.
 * The key operations are the in-process test double; interop tests drive the real key service.
 */
import * as tls from 'node:tls';
import { spawn } from 'node:child_process';
import { CertificateStore, loadCertificate } from '../../../../edge-proxy/src/tls/certificates';
import type { TlsServerConnection } from '../../../../edge-proxy/src/tls/connection';
import { DOWNGRADE_SENTINEL_TLS12 } from '../../../../edge-proxy/src/tls/tls12/server';
import type { TestPki } from '../../../helpers/certs';
import { InProcessKeys } from '../../../helpers/in-process-keys';
import { startTlsServerFixture, type TlsServerFixture } from '../../../helpers/tls-server-fixture';
import { clientHelloBody, handshakeRecord } from '../../../helpers/client-hello';
import { rawExchange } from '../../../helpers/raw-peer';
import { havePeer } from '../../../helpers/peers';

let fixture: TlsServerFixture;
let pki: TestPki;
let port: number;

beforeAll(async () => {
  fixture = await startTlsServerFixture(
    (testPki) => {
      const rsa = testPki.leaf('rsa', 'rsa2048', ['localhost']);
      const sealed = testPki.leaf('sealed', 'rsa2048', ['sealed.test']);
      const ec = testPki.leaf('ec', 'p256', ['localhost', 'ec.test']);
      const ec384 = testPki.leaf('ec384', 'p384', ['p384.test']);
      const keys = new InProcessKeys(
        new Map([
          ['rsa-key', rsa.key],
          ['sealed-key', sealed.key],
          ['ec-key', ec.key],
          ['ec384-key', ec384.key],
        ]),
      );
      const sealedCert = { ...loadCertificate(sealed.chainPem, 'sealed-key'), allowRsaKeyExchange: true };
      return {
        certificates: new CertificateStore([
          loadCertificate(rsa.chainPem, 'rsa-key'),
          loadCertificate(ec.chainPem, 'ec-key'),
          sealedCert,
          loadCertificate(ec384.chainPem, 'ec384-key'),
        ]),
        keyOperations: keys,
      };
    },
    (c: TlsServerConnection) => {
      const i = c.handshakeInfo!;
      c.write(
        `${c.getProtocol()} ${c.getCipher().name} ${i.group} ${i.signatureScheme} ems=${i.extendedMasterSecret} ${i.keyExchange.split(' ')[0]}\n`,
      );
      c.pipe(c);
    },
  );
  ({ pki, port } = fixture);
});

afterAll(() => fixture.close());

function connect(opts: tls.ConnectionOptions): Promise<{ summary: string; echoed: string; peer: tls.PeerCertificate }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      ca: pki.caPem,
      servername: 'localhost',
      maxVersion: 'TLSv1.2',
      ...opts,
    });
    let data = '';
    let peer: tls.PeerCertificate;
    socket.on('data', (d: Buffer) => (data += d.toString()));
    socket.on('error', reject);
    socket.on('secureConnect', () => {
      peer = socket.getPeerCertificate();
      socket.end('ping');
    });
    socket.on('end', () => {
      const nl = data.indexOf('\n');
      resolve({ summary: data.slice(0, nl), echoed: data.slice(nl + 1), peer });
    });
  });
}

describe('TLS 1.2 with Node/OpenSSL', () => {
  it.each([
    ['ECDHE-RSA-AES128-GCM-SHA256', 'localhost', 'rsa_pss_rsae_sha256'],
    ['ECDHE-RSA-AES256-GCM-SHA384', 'localhost', 'rsa_pss_rsae_sha256'],
    ['ECDHE-RSA-CHACHA20-POLY1305', 'localhost', 'rsa_pss_rsae_sha256'],
    ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ec.test', 'ecdsa_secp256r1_sha256'],
    ['ECDHE-ECDSA-AES256-GCM-SHA384', 'ec.test', 'ecdsa_secp256r1_sha256'],
    ['ECDHE-ECDSA-CHACHA20-POLY1305', 'ec.test', 'ecdsa_secp256r1_sha256'],
    ['ECDHE-ECDSA-AES128-GCM-SHA256', 'p384.test', 'ecdsa_secp384r1_sha384'],
  ])('%s for %s', async (cipher, servername, scheme) => {
    const r = await connect({ ciphers: cipher, servername });
    expect(r.summary).toBe(`TLSv1.2 ${cipher} x25519 ${scheme} ems=true ECDHE`);
    expect(r.echoed).toBe('ping');
  });

  it('signs the ServerKeyExchange with PKCS#1 when the client offers only that', async () => {
    const r = await connect({ ciphers: 'ECDHE-RSA-AES128-GCM-SHA256', sigalgs: 'RSA+SHA384' });
    expect(r.summary).toContain('rsa_pkcs1_sha384');
  });

  it.each([
    ['P-256', 'secp256r1'],
    ['P-384', 'secp384r1'],
  ])('ECDHE over %s', async (curve, name) => {
    const r = await connect({ ciphers: 'ECDHE-RSA-AES128-GCM-SHA256', ecdhCurve: curve });
    expect(r.summary.split(' ')[2]).toBe(name);
  });

  it.each(['AES128-GCM-SHA256', 'AES256-GCM-SHA384'])(
    'RSA key exchange %s for a sealed/file-custody certificate',
    async (cipher) => {
      const r = await connect({ ciphers: cipher, servername: 'sealed.test' });
      expect(r.summary).toBe(`TLSv1.2 ${cipher} undefined undefined ems=true RSA`);
      expect(r.peer.subjectaltname).toContain('sealed.test');
    },
  );

  it('never offers RSA key exchange for a certificate whose key is in KMS custody', async () => {
    await expect(connect({ ciphers: 'AES128-GCM-SHA256', servername: 'localhost' })).rejects.toThrow(
      /handshake failure/i,
    );
  });

  it('prefers TLS 1.3 when the client offers both', async () => {
    const r = await connect({ maxVersion: 'TLSv1.3' });
    expect(r.summary.startsWith('TLSv1.3')).toBe(true);
  });
});

describe('TLS 1.2 protocol details', () => {
  it('puts the downgrade sentinel in ServerHello.random and signals secure renegotiation', async () => {
    const hello = clientHelloBody({ versions: null, suites: [0xc02f, 0x00ff], shares: null, sigalgs: [0x0804] });
    const r = await rawExchange(port, [handshakeRecord(hello)], 1000);
    expect(r.received[0]).toBe(22);
    expect(r.received[5]).toBe(2); // ServerHello
    const random = r.received.subarray(5 + 4 + 2, 5 + 4 + 2 + 32);
    expect(random.subarray(24)).toEqual(DOWNGRADE_SENTINEL_TLS12);
    expect(r.received.includes(Buffer.from([0xff, 0x01, 0x00, 0x01, 0x00]))).toBe(true); // empty renegotiation_info
  });

  it('refuses a client with no signature_algorithms (SHA-1 implied) when only ECDHE is possible', async () => {
    const hello = clientHelloBody({ versions: null, suites: [0xc02f], shares: null, sigalgs: null });
    const r = await rawExchange(port, [handshakeRecord(hello)]);
    expect(r.plainAlert).toBe(40);
  });

  it('rejects a non-empty renegotiation_info in an initial handshake', async () => {
    const hello = clientHelloBody({
      versions: null,
      suites: [0xc02f],
      shares: null,
      extra: [{ type: 0xff01, data: Buffer.from([1, 7]) }],
    });
    const r = await rawExchange(port, [handshakeRecord(hello)]);
    expect(r.plainAlert).toBe(40);
  });

  const maybe = havePeer('openssl') ? it : it.skip;
  maybe('shows EMS and secure renegotiation to openssl, and refuses renegotiation with no_renegotiation', async () => {
    const out = await new Promise<string>((resolve) => {
      const p = spawn('openssl', [
        's_client',
        '-connect',
        `127.0.0.1:${port}`,
        '-servername',
        'localhost',
        '-CAfile',
        pki.caPath,
        '-tls1_2',
      ]);
      let text = '';
      p.stdout.on('data', (d: Buffer) => (text += d.toString()));
      p.stderr.on('data', (d: Buffer) => (text += d.toString()));
      setTimeout(() => p.stdin.write('R\n'), 300);
      setTimeout(() => p.kill(), 1500);
      p.on('close', () => resolve(text));
    });
    expect(out).toContain('Extended master secret: yes');
    expect(out).toContain('Secure Renegotiation IS supported');
    expect(out).toContain('RENEGOTIATING');
    expect(out).toMatch(/no renegotiation/i);
  });
});
