/**
 * The TLS 1.3 engine against Node's own TLS client (OpenSSL) and against crafted bytes: every
 * suite and group, HelloRetryRequest, SNI and ALPN, large transfers, close_notify, and the alert
 * required for each kind of bad input. The key operation is an in-process test double here; the
 * interop suite drives the same engine through the real key service.
 */
import * as tls from 'node:tls';
import * as crypto from 'node:crypto';
import { TlsServer } from '../../../../edge-proxy/src/tls/server';
import { CertificateStore, loadCertificate } from '../../../../edge-proxy/src/tls/certificates';
import type { TlsServerConnection, HandshakeError } from '../../../../edge-proxy/src/tls/connection';
import { KeyOperationError } from '../../../../edge-proxy/src/tls/key-operations';
import { makeTestPki, TestPki } from '../../../helpers/certs';
import { InProcessKeys } from '../../../helpers/in-process-keys';
import { clientHelloBody, handshakeRecord, plainRecord, x25519Share } from '../../../helpers/client-hello';
import { rawExchange } from '../../../helpers/raw-peer';
import { spawn } from 'node:child_process';
import { havePeer } from '../../../helpers/peers';

let pki: TestPki;
let server: TlsServer;
let port: number;
let keys: InProcessKeys;
const clientErrors: HandshakeError[] = [];

beforeAll(async () => {
  pki = makeTestPki();
  const rsa = pki.leaf('rsa', 'rsa2048', ['localhost', 'rsa.test']);
  const ec = pki.leaf('ec', 'p256', ['ec.test']);
  keys = new InProcessKeys(
    new Map([
      ['rsa-key', rsa.key],
      ['ec-key', ec.key],
    ]),
  );
  server = new TlsServer({
    certificates: new CertificateStore([
      loadCertificate(rsa.chainPem, 'rsa-key'),
      loadCertificate(ec.chainPem, 'ec-key'),
    ]),
    keyOperations: keys,
    handshakeTimeoutMs: 1500,
  });
  server.on('secureConnection', (c: TlsServerConnection) => {
    // Echo server with a summary line first.
    c.write(
      `${c.getProtocol()} ${c.getCipher()?.name} ${c.handshakeInfo?.group} ${c.handshakeInfo?.signatureScheme} ${c.alpnProtocol} ${c.servername} hrr=${c.handshakeInfo?.helloRetry}\n`,
    );
    c.pipe(c);
  });
  server.on('tlsClientError', (e) => clientErrors.push(e));
  port = (await server.listen(0)).port;
});

afterAll(async () => {
  await server.close(true);
  pki.cleanup();
});

function connect(
  opts: tls.ConnectionOptions & { payload?: Buffer },
): Promise<{ summary: string; echoed: Buffer; socket: tls.TLSSocket; peer: tls.PeerCertificate }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      ca: pki.caPem,
      servername: 'localhost',
      minVersion: 'TLSv1.3',
      ...opts,
    });
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', reject);
    let peer: tls.PeerCertificate;
    socket.on('secureConnect', () => {
      peer = socket.getPeerCertificate();
      socket.end(opts.payload ?? Buffer.from('ping'));
    });
    socket.on('end', () => {
      const all = Buffer.concat(chunks);
      const nl = all.indexOf(10);
      resolve({ summary: all.subarray(0, nl).toString(), echoed: all.subarray(nl + 1), socket, peer });
    });
  });
}

describe('handshakes with Node/OpenSSL', () => {
  it.each(['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'])(
    'negotiates %s',
    async (suite) => {
      const r = await connect({ ciphers: suite });
      expect(r.summary.split(' ').slice(0, 2)).toEqual(['TLSv1.3', suite]);
      expect(r.echoed.toString()).toBe('ping');
    },
  );

  it.each([
    ['X25519', 'x25519'],
    ['P-256', 'secp256r1'],
    ['P-384', 'secp384r1'],
  ])('uses group %s', async (curve, name) => {
    const r = await connect({ ecdhCurve: curve });
    expect(r.summary.split(' ')[2]).toBe(name);
    expect(r.summary).toContain('hrr=false');
  });

  it('sends a HelloRetryRequest when the only key share is for a group it does not support', async () => {
    const r = await connect({ ecdhCurve: 'X448:X25519' });
    expect(r.summary).toContain('x25519');
    expect(r.summary).toContain('hrr=true');
  });

  it('selects the certificate by SNI and signs with the matching scheme', async () => {
    const rsa = await connect({ servername: 'rsa.test' });
    expect(rsa.summary).toContain('rsa_pss_rsae_sha256');
    expect(rsa.peer.subjectaltname).toContain('DNS:rsa.test');
    const ec = await connect({ servername: 'ec.test' });
    expect(ec.summary).toContain('ecdsa_secp256r1_sha256');
    expect(ec.peer.subjectaltname).toContain('DNS:ec.test');
  });

  it('negotiates ALPN and refuses a handshake with no common protocol', async () => {
    const h2 = await connect({ ALPNProtocols: ['h2', 'http/1.1'] });
    expect(h2.socket.alpnProtocol).toBe('h2');
    await expect(connect({ ALPNProtocols: ['spdy/3'] })).rejects.toThrow(/no application protocol/i);
  });

  it('carries 3 MiB both ways across many records', async () => {
    const payload = crypto.randomBytes(3 * 1024 * 1024);
    const r = await connect({ payload });
    expect(r.echoed.equals(payload)).toBe(true);
  });

  it('answers a failed key operation with internal_error, not a hang', async () => {
    keys.failWith = new KeyOperationError('unavailable', 'key service down');
    try {
      await expect(connect({})).rejects.toThrow(/internal error/i);
    } finally {
      keys.failWith = undefined;
    }
  });
});

describe('KeyUpdate (RFC 8446 §4.6.3)', () => {
  const maybe = havePeer('openssl') ? it : it.skip;
  maybe('follows the client to new keys and answers update_requested with its own KeyUpdate', async () => {
    // s_client sends KeyUpdate on a line "k" (update_not_requested) or "K" (update_requested).
    const out = await new Promise<string>((resolve) => {
      const p = spawn('openssl', [
        's_client',
        '-connect',
        `127.0.0.1:${port}`,
        '-servername',
        'localhost',
        '-CAfile',
        pki.caPath,
        '-tls1_3',
      ]);
      let text = '';
      p.stdout.on('data', (d: Buffer) => (text += d.toString()));
      p.stderr.on('data', (d: Buffer) => (text += d.toString()));
      const steps = ['one\n', 'K\n', 'two\n', 'k\n', 'three\n'];
      let i = 0;
      const timer = setInterval(() => {
        if (i < steps.length) p.stdin.write(steps[i++]);
        else {
          clearInterval(timer);
          p.stdin.end();
          setTimeout(() => p.kill(), 300);
        }
      }, 250);
      p.on('close', () => resolve(text));
    });
    expect(out).toContain('KEYUPDATE');
    // Echoes after each update prove both directions switched keys in step.
    expect(out.indexOf('two')).toBeGreaterThan(out.indexOf('KEYUPDATE'));
    for (const w of ['one', 'two', 'three']) expect(out.split(w).length - 1).toBeGreaterThanOrEqual(1);
    expect(out).not.toMatch(/alert|bad record mac/i);
  });
});

describe('bad input gets the right alert', () => {
  const cases: [string, Buffer[], number][] = [
    ['non-TLS bytes', [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')], 10],
    ['an oversized record', [Buffer.from([22, 3, 1, 0x48, 0x01]), Buffer.alloc(64)], 22],
    [
      'a truncated cipher_suites vector',
      [handshakeRecord(Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(32), Buffer.from([0, 0, 200])]))],
      50,
    ],
    ['application data first', [plainRecord(23, Buffer.from('hello'))], 10],
    ['a Finished instead of a ClientHello', [handshakeRecord(Buffer.alloc(32), 20)], 10],
    ['TLS 1.1 only', [handshakeRecord(clientHelloBody({ legacyVersion: 0x0302, versions: null }))], 70],
    [
      'TLS 1.2 only with TLS_FALLBACK_SCSV',
      [handshakeRecord(clientHelloBody({ versions: [0x0303], suites: [0xc02f, 0x5600] }))],
      86,
    ],
    ['no key_share', [handshakeRecord(clientHelloBody({ shares: null }))], 109],
    ['no signature_algorithms', [handshakeRecord(clientHelloBody({ sigalgs: null }))], 109],
    ['no common cipher suite', [handshakeRecord(clientHelloBody({ suites: [0xc02f] }))], 40],
    ['only SHA-1 signature schemes', [handshakeRecord(clientHelloBody({ sigalgs: [0x0201, 0x0203] }))], 40],
    ['non-null compression', [handshakeRecord(clientHelloBody({ compression: [1, 0] }))], 47],
    [
      'a duplicated extension',
      [
        handshakeRecord(
          clientHelloBody({
            extra: [
              { type: 0xff02, data: Buffer.alloc(0) },
              { type: 0xff02, data: Buffer.alloc(0) },
            ],
          }),
        ),
      ],
      47,
    ],
    [
      'an invalid x25519 share length',
      [handshakeRecord(clientHelloBody({ shares: [{ group: 0x1d, share: Buffer.alloc(31, 1) }] }))],
      47,
    ],
    [
      'an all-zero (low-order) x25519 share',
      [handshakeRecord(clientHelloBody({ shares: [{ group: 0x1d, share: Buffer.alloc(32) }] }))],
      47,
    ],
    [
      'a P-256 share off the curve',
      [
        handshakeRecord(
          clientHelloBody({
            groups: [0x17],
            shares: [{ group: 0x17, share: Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 7)]) }],
          }),
        ),
      ],
      47,
    ],
    [
      'a key share for a group it did not list',
      [handshakeRecord(clientHelloBody({ groups: [0x17], shares: [{ group: 0x1d, share: x25519Share() }] }))],
      47,
    ],
    ['a non-DNS server name', [handshakeRecord(clientHelloBody({ serverName: 'bad name!' }))], 47],
    [
      'an empty ALPN protocol name',
      [handshakeRecord(clientHelloBody({ extra: [{ type: 16, data: Buffer.from([0, 1, 0]) }] }))],
      50,
    ],
    ['no group in common', [handshakeRecord(clientHelloBody({ groups: [0x1e], shares: [] }))], 40],
    ['a zero-length handshake record', [plainRecord(22, Buffer.alloc(0))], 10],
    ['a malformed change_cipher_spec', [plainRecord(20, Buffer.from([1, 1]))], 10],
  ];
  it.each(cases)('%s', async (_name, chunks, alert) => {
    const r = await rawExchange(port, chunks);
    expect(r.plainAlert).toBe(alert);
    expect(r.closed).toBe(true);
  });

  it('reassembles a ClientHello sent one byte per record', async () => {
    const msg = handshakeRecord(clientHelloBody()).subarray(5);
    const records = [...msg].map((b) => plainRecord(22, Buffer.from([b])));
    const r = await rawExchange(port, [Buffer.concat(records)], 1000);
    expect(r.received[0]).toBe(22); // a ServerHello record, not an alert
    expect(r.received[5]).toBe(2);
  });

  it('reassembles a ClientHello that arrives in small TCP writes', async () => {
    const rec = handshakeRecord(clientHelloBody());
    const pieces = [];
    for (let i = 0; i < rec.length; i += 7) pieces.push(rec.subarray(i, i + 7));
    const r = await rawExchange(port, pieces, 1000, 2);
    expect(r.received[0]).toBe(22);
    expect(r.received[5]).toBe(2);
  });

  it('closes a connection that stalls mid-handshake at the deadline', async () => {
    const started = Date.now();
    const r = await rawExchange(port, [Buffer.from([22, 3, 1, 0, 100, 1])], 5000);
    expect(r.closed).toBe(true);
    expect(Date.now() - started).toBeLessThan(4500);
    expect(clientErrors.some((e) => /handshake not complete/.test(e.message))).toBe(true);
  });

  it('survives a flood of random garbage without throwing', async () => {
    const results = await Promise.all(
      Array.from({ length: 40 }, () =>
        rawExchange(port, [crypto.randomBytes(200 + Math.floor(Math.random() * 2000))], 2000),
      ),
    );
    for (const r of results) expect(r.closed).toBe(true);
    const ok = await connect({});
    expect(ok.echoed.toString()).toBe('ping');
  });
});
