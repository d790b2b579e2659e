/**
 * TLS 1.3 completeness, with the scripted raw client where real clients cannot be
 * made to do the thing, and with OpenSSL where they can: 0-RTT declined and skipped (RFC 8446
 * §4.2.10), legacy fields (§4.1.2, §4.1.3, §4.2.1), record padding (§5.4), KeyUpdate both ways and
 * our own key rotation before the AEAD limits (§4.6.3, §5.5), record_size_limit (RFC 8449),
 * certificate_authorities ignored, secp384r1, and OCSP stapling in TLS 1.3 and 1.2 (RFC 8446
 * §4.4.2.1, RFC 6066 §8).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { execFileSync, spawn } from 'node:child_process';
import { TlsServer } from '../../../../edge-proxy/src/tls/server';
import { CertificateStore, loadCertificate } from '../../../../edge-proxy/src/tls/certificates';
import type { TlsServerConnection } from '../../../../edge-proxy/src/tls/connection';
import { TicketProtector } from '../../../../edge-proxy/src/tls/tickets';
import { ContentType } from '../../../../edge-proxy/src/tls/record-layer';
import { HandshakeType } from '../../../../edge-proxy/src/tls/handshake-joiner';
import { Reader, Writer } from '../../../../edge-proxy/src/tls/codec';
import { ocspResponseProblem } from '../../../../edge-proxy/src/tls/ocsp-stapling';
import { ConfigError, parseEdgeConfig } from '../../../../edge-proxy/src/config';
import { loadCertificates } from '../../../../edge-proxy/src/edge';
import { makeTestPki, TestPki } from '../../../helpers/certs';
import { InProcessKeys } from '../../../helpers/in-process-keys';
import { clientHelloBody, handshakeRecord, plainRecord } from '../../../helpers/client-hello';
import { rawExchange, RawTls13Client } from '../../../helpers/raw-peer';
import { havePeer } from '../../../helpers/peers';

let pki: TestPki;
let keys: InProcessKeys;
let certs: CertificateStore;
let ocspDer: Buffer;
const servers: TlsServer[] = [];
let port: number;

async function serve(extra: Partial<ConstructorParameters<typeof TlsServer>[0]> = {}): Promise<number> {
  const tickets = new TicketProtector();
  tickets.setKeys({
    epochSeconds: 3600,
    current: { epoch: 7, key: crypto.randomBytes(32) },
    previous: { epoch: 6, key: crypto.randomBytes(32) },
  });
  const s = new TlsServer({ certificates: certs, keyOperations: keys, tickets, handshakeTimeoutMs: 5000, ...extra });
  s.on('secureConnection', (c: TlsServerConnection) => {
    c.pipe(c);
  });
  servers.push(s);
  return (await s.listen(0)).port;
}

/** A real OCSP response for the leaf from `openssl ocsp`, signed by the test CA (status good). */
function makeOcspResponse(leafPath: string): Buffer {
  const dir = pki.dir;
  const serial = execFileSync('openssl', ['x509', '-in', leafPath, '-noout', '-serial'])
    .toString()
    .trim()
    .split('=')[1];
  const expiry = new Date(Date.now() + 2 * 86400_000).toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
  fs.writeFileSync(path.join(dir, 'ocsp-index.txt'), `V\t${expiry}\t\t${serial}\tunknown\t/CN=localhost\n`);
  const run = (args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run(['ocsp', '-issuer', 'ca.pem', '-cert', leafPath, '-no_nonce', '-reqout', 'ocsp-req.der']);
  run([
    'ocsp',
    '-index',
    'ocsp-index.txt',
    '-CA',
    'ca.pem',
    '-rsigner',
    'ca.pem',
    '-rkey',
    'ca.key',
    '-reqin',
    'ocsp-req.der',
    '-respout',
    'ocsp-resp.der',
    '-ndays',
    '1',
  ]);
  return fs.readFileSync(path.join(dir, 'ocsp-resp.der'));
}

beforeAll(async () => {
  pki = makeTestPki();
  const rsa = pki.leaf('rsa', 'rsa2048', ['localhost']);
  const ec384 = pki.leaf('ec384', 'p384', ['p384.test']);
  keys = new InProcessKeys(
    new Map([
      ['rsa-key', rsa.key],
      ['ec384-key', ec384.key],
    ]),
  );
  ocspDer = makeOcspResponse(rsa.certPath);
  certs = new CertificateStore([
    { ...loadCertificate(rsa.chainPem, 'rsa-key'), ocspResponse: ocspDer },
    loadCertificate(ec384.chainPem, 'ec384-key'),
  ]);
  port = await serve();
});

afterAll(async () => {
  for (const s of servers) await s.close(true);
  pki.cleanup();
});

const earlyData = { type: 42, data: Buffer.alloc(0) };
/** An offered PSK the server cannot use (not one of its tickets): it falls back to a full handshake. */
function unknownPsk(): { type: number; data: Buffer }[] {
  const identities = new Writer().vec16((w) => w.vec16(crypto.randomBytes(48)).u32(12345)).finish();
  const binders = new Writer().vec16((w) => w.vec8(crypto.randomBytes(32))).finish();
  return [
    { type: 45, data: Buffer.from([1, 1]) },
    { type: 41, data: Buffer.concat([identities, binders]) },
  ];
}
/** 0-RTT records as a client sends them: application_data under keys the server does not have. */
const zeroRtt = (n: number, size = 600): Buffer[] =>
  Array.from({ length: n }, () => plainRecord(23, crypto.randomBytes(size)));

/** Sends `data` in records of at most 2^14 bytes and returns what the echo server sent back for it. */
async function echo(c: RawTls13Client, data: Buffer): Promise<Buffer> {
  const start = c.appData.length;
  for (let off = 0; off < data.length; off += 16384)
    c.send(c.protectedRecord(ContentType.application_data, data.subarray(off, off + 16384)));
  return (await c.readAppData(start + data.length)).subarray(start, start + data.length);
}

describe('0-RTT is declined and the early data skipped (RFC 8446 §4.2.10)', () => {
  it('skips records that do not decrypt under the handshake keys, then completes the handshake', async () => {
    const c = await RawTls13Client.connect(port);
    const flight = await c.handshake({
      hello: { sessionId: crypto.randomBytes(32), extra: [earlyData, ...unknownPsk()] },
      afterClientHello: zeroRtt(3),
    });
    expect(flight.encryptedExtensions.has(42)).toBe(false); // early_data not accepted
    expect(flight.serverHelloExtensions.has(41)).toBe(false); // the PSK was not ours
    c.sendFinished();
    expect((await echo(c, Buffer.from('after 0-RTT'))).toString()).toBe('after 0-RTT');
    c.destroy();
  });

  it('after a HelloRetryRequest, skips application_data records until the second ClientHello', async () => {
    const c = await RawTls13Client.connect(port);
    const flight = await c.handshake({
      shareGroup: null,
      hello: { extra: [earlyData, ...unknownPsk()] },
      dropOnRetry: [42],
      afterClientHello: zeroRtt(2),
    });
    expect(flight.helloRetry).toBe(true);
    c.sendFinished();
    expect((await echo(c, Buffer.from('after HRR'))).toString()).toBe('after HRR');
    c.destroy();
  });

  it('treats undecryptable records as an error when the client did not offer early_data', async () => {
    const c = await RawTls13Client.connect(port);
    await c.handshake({ afterClientHello: zeroRtt(1) });
    c.sendFinished();
    expect(await c.untilClosed()).toEqual({ alert: 20, closed: true }); // bad_record_mac
  });

  const maybe = havePeer('openssl') ? it : it.skip;
  maybe('openssl s_client -early_data: not sent with our tickets; declined and skipped when sent anyway', async () => {
    const sess = path.join(pki.dir, 'sess.pem');
    const early = path.join(pki.dir, 'early.txt');
    fs.writeFileSync(early, 'GET /early HTTP/1.1\r\n'.repeat(20));
    const base = [
      's_client',
      '-connect',
      `127.0.0.1:${port}`,
      '-servername',
      'localhost',
      '-CAfile',
      pki.caPath,
      '-tls1_3',
    ];
    // s_client writes -sess_out when a ticket arrives: wait for it before closing.
    await runOpenssl([...base, '-sess_out', sess], 'first\n', /Post-Handshake New Session Ticket arrived/);
    expect(fs.readFileSync(sess, 'utf8')).toContain('BEGIN SSL SESSION PARAMETERS');
    // Our tickets carry no early_data extension, so OpenSSL does not even try.
    const plain = await runOpenssl([...base, '-sess_in', sess, '-early_data', early], 'second\n');
    expect(plain).toMatch(/Reused, TLSv1.3/);
    expect(plain).toContain('Early data was not sent');
    // A client that believes the ticket allows 0-RTT (say, one issued by a server configured
    // otherwise) sends it: give the saved session a max_early_data_size, as such a ticket would.
    const patched = path.join(pki.dir, 'sess-early.pem');
    fs.writeFileSync(patched, withMaxEarlyData(fs.readFileSync(sess, 'utf8'), 16384));
    let serverGot = '';
    const seen: TlsServerConnection[] = [];
    const listener = (conn: TlsServerConnection): void => {
      seen.push(conn);
      conn.on('data', (d: Buffer) => (serverGot += d.toString()));
    };
    servers[0].on('secureConnection', listener);
    const out = await runOpenssl([...base, '-sess_in', patched, '-early_data', early], 'after 0-RTT\n');
    servers[0].off('secureConnection', listener);
    expect(out).toContain('Early data was rejected');
    expect(out).toMatch(/Reused, TLSv1.3/); // the PSK is still good: resumed, 1-RTT
    expect(out).not.toMatch(/alert/i);
    // The server skipped the 0-RTT records and read the data sent after the handshake, and only that.
    await until(() => serverGot.includes('after 0-RTT'));
    expect(serverGot).toBe('after 0-RTT\n');
    expect(seen[0].isSessionReused()).toBe(true);
  });
});

describe('legacy fields (RFC 8446 §4.1.2, §4.1.3, §4.2.1, Appendix D)', () => {
  it('negotiates TLS 1.3 from supported_versions alone, whatever legacy_version says', async () => {
    const c = await RawTls13Client.connect(port);
    const sid = crypto.randomBytes(32);
    const flight = await c.handshake({ hello: { legacyVersion: 0x0301, sessionId: sid } });
    expect(flight.serverHello.legacyVersion).toBe(0x0303);
    expect(flight.serverHello.sessionId.equals(sid)).toBe(true); // echoed (§4.1.3)
    expect(flight.serverHello.compression).toBe(0);
    expect(flight.serverHelloExtensions.get(43)).toEqual(Buffer.from([3, 4]));
    c.destroy();
  });

  it('answers legacy_version 0x0304 without supported_versions with TLS 1.2 (§4.2.1)', async () => {
    const r = await rawExchange(
      port,
      [handshakeRecord(clientHelloBody({ legacyVersion: 0x0304, versions: null, suites: [0xc02f] }))],
      1500,
    );
    expect(r.received[0]).toBe(22);
    expect(r.received[5]).toBe(HandshakeType.server_hello);
    expect(r.received.readUInt16BE(9)).toBe(0x0303);
    // ServerHello.random ends with the TLS 1.2 downgrade sentinel (§4.1.3).
    expect(r.received.subarray(11 + 24, 11 + 32).toString('latin1')).toBe('DOWNGRD\x01');
  });

  it('ignores certificate_authorities from the client (§4.2.4)', async () => {
    const dn = new crypto.X509Certificate(pki.caPem).subject;
    const cas = new Writer().vec16((w) => w.vec16(Buffer.from(dn))).finish();
    const c = await RawTls13Client.connect(port);
    const flight = await c.handshake({ hello: { extra: [{ type: 47, data: cas }] } });
    expect(flight.messages.at(-1)?.type).toBe(HandshakeType.finished);
    c.destroy();
  });
});

describe('secp384r1', () => {
  it('takes a P-384 key share directly, and asks for one with HelloRetryRequest', async () => {
    const direct = await RawTls13Client.connect(port);
    const a = await direct.handshake({ hello: { groups: [0x18] }, shareGroup: 0x18 });
    expect(a.helloRetry).toBe(false);
    expect(a.serverHelloExtensions.get(51)!.readUInt16BE(0)).toBe(0x18);
    direct.destroy();
    const retried = await RawTls13Client.connect(port);
    const b = await retried.handshake({ hello: { groups: [0x18] }, shareGroup: null });
    expect(b.helloRetry).toBe(true);
    expect(b.serverHelloExtensions.get(51)!.readUInt16BE(0)).toBe(0x18);
    retried.destroy();
  });
});

describe('record padding (RFC 8446 §5.4)', () => {
  it('accepts padded handshake and application records', async () => {
    const c = await RawTls13Client.connect(port);
    await c.handshake();
    c.send(c.protectedRecord(ContentType.handshake, c.finishedMessage(), 200));
    c.useApplicationKeys();
    c.send(c.protectedRecord(ContentType.application_data, Buffer.from('padded'), 1000));
    expect((await c.readAppData(6)).toString()).toBe('padded');
    c.destroy();
  });
});

describe('KeyUpdate (RFC 8446 §4.6.3, §5.5)', () => {
  it('answers update_requested with its own KeyUpdate before more data', async () => {
    const c = await RawTls13Client.connect(port);
    await c.handshake();
    c.sendFinished();
    c.sendKeyUpdate(true);
    expect((await echo(c, Buffer.from('new keys'))).toString()).toBe('new keys');
    expect(c.keyUpdatesReceived).toEqual([false]);
    c.destroy();
  });

  it('rotates its own keys and asks the client to rotate before the configured record limit', async () => {
    const limited = await serve({ keyUpdateAfterRecords: 4 });
    const c = await RawTls13Client.connect(limited);
    await c.handshake();
    c.sendFinished();
    // 6 client records: the 4th reaches the limit on the server's read side.
    const chunks = Array.from({ length: 6 }, (_, i) => Buffer.from(`chunk-${i};`));
    for (const x of chunks) c.send(c.protectedRecord(ContentType.application_data, x));
    const want = Buffer.concat(chunks);
    expect((await c.readAppData(want.length)).equals(want)).toBe(true);
    // The server asked us to update (update_requested) and rotated its own write keys.
    expect(c.keyUpdatesReceived).toContain(true);
    c.sendKeyUpdate(false);
    expect((await echo(c, Buffer.from('still fine'))).toString()).toBe('still fine');
    c.destroy();
  });

  it('keeps a real client (OpenSSL via Node) in step across many of its own key updates', async () => {
    const limited = await serve({ keyUpdateAfterRecords: 8 });
    const conns: TlsServerConnection[] = [];
    servers.at(-1)!.on('secureConnection', (conn: TlsServerConnection) => conns.push(conn));
    const payload = crypto.randomBytes(600 * 1024); // ~37 full records each way: several updates
    const echoed = await new Promise<Buffer>((resolve, reject) => {
      const s = tls.connect({
        host: '127.0.0.1',
        port: limited,
        ca: pki.caPem,
        servername: 'localhost',
        minVersion: 'TLSv1.3',
      });
      const got: Buffer[] = [];
      let received = 0;
      const half = payload.length / 2;
      s.on('data', (d: Buffer) => {
        got.push(d);
        // The second half goes out after the server has asked for our key update (it has seen more
        // than 8 of our records by then): OpenSSL answers before its next application data.
        if (received < half && (received += d.length) >= half) s.end(payload.subarray(half));
      });
      s.on('error', reject);
      s.on('secureConnect', () => s.write(payload.subarray(0, half)));
      s.on('end', () => resolve(Buffer.concat(got)));
    });
    expect(echoed.equals(payload)).toBe(true);
    // We rotated our keys, and OpenSSL rotated its keys when we asked (update_requested).
    expect(conns[0].keyUpdates.sent).toBeGreaterThanOrEqual(2);
    expect(conns[0].keyUpdates.received).toBeGreaterThanOrEqual(1);
  });
});

describe('record_size_limit (RFC 8449)', () => {
  it('keeps every protected record within the client limit and announces ours (2^14 + 1 in TLS 1.3)', async () => {
    const c = await RawTls13Client.connect(port);
    const flight = await c.handshake({ hello: { extra: [{ type: 28, data: Buffer.from([0x01, 0x00]) }] } }); // 256
    expect(flight.encryptedExtensions.get(28)?.readUInt16BE(0)).toBe(16385);
    expect(Math.max(...flight.handshakeRecordSizes)).toBeLessThanOrEqual(256);
    expect(flight.handshakeRecordSizes.length).toBeGreaterThan(4); // the certificate chain was split
    c.sendFinished();
    const data = crypto.randomBytes(3000);
    expect((await echo(c, data)).equals(data)).toBe(true);
    expect(Math.max(...c.appRecordSizes)).toBeLessThanOrEqual(256);
    c.destroy();
  });

  it('without the extension, sends full-size records and no record_size_limit', async () => {
    const c = await RawTls13Client.connect(port);
    const flight = await c.handshake();
    expect(flight.encryptedExtensions.has(28)).toBe(false);
    c.sendFinished();
    const data = crypto.randomBytes(20000);
    expect((await echo(c, data)).equals(data)).toBe(true);
    expect(Math.max(...c.appRecordSizes)).toBe(16385);
    c.destroy();
  });

  it('announces 2^14 in a TLS 1.2 ServerHello', async () => {
    const r = await rawExchange(
      port,
      [
        handshakeRecord(
          clientHelloBody({
            versions: [0x0303],
            suites: [0xc02f],
            extra: [{ type: 28, data: Buffer.from([0x02, 0x00]) }],
          }),
        ),
      ],
      1500,
    );
    const exts = serverHelloExtensions(r.received);
    expect(exts.get(28)?.readUInt16BE(0)).toBe(16384);
  });
});

describe('OCSP stapling (RFC 8446 §4.4.2.1, RFC 6066 §8)', () => {
  it('the test response is a successful DER OCSP response the config check accepts', () => {
    expect(ocspResponseProblem(ocspDer)).toBeUndefined();
    expect(ocspResponseProblem(Buffer.from('not der'))).toMatch(/not a DER OCSP response/);
    expect(ocspResponseProblem(Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x01]))).toMatch(/responseStatus 1/);
  });

  it('is configured per certificate with ocspResponseFile, read and checked with the certificates', () => {
    fs.writeFileSync(path.join(pki.dir, 'good.der'), ocspDer);
    fs.writeFileSync(path.join(pki.dir, 'bad.der'), 'OCSP Response Status: successful');
    const config = (file: string) =>
      parseEdgeConfig(
        {
          certificates: [{ chainFile: 'rsa.pem', keyName: 'rsa-key', ocspResponseFile: file }],
          keyServices: [{ functionName: 'ks', region: 'eu-west-1' }],
          origin: 'http://127.0.0.1:8080',
        },
        pki.dir,
      );
    const good = config('good.der');
    expect(good.certificates[0].ocspResponseFile).toBe(path.join(pki.dir, 'good.der'));
    expect(loadCertificates(good)[0].ocspResponse?.equals(ocspDer)).toBe(true);
    const bad = (): unknown => loadCertificates(config('bad.der'));
    expect(bad).toThrow(ConfigError);
    expect(bad).toThrow(/certificates\[0\]\.ocspResponseFile.*not a DER OCSP response/);
    expect(() => loadCertificates(config('missing.der'))).toThrow(/certificates\[0\]\.ocspResponseFile.*cannot read/);
    expect(() => config(42 as unknown as string)).toThrow(/certificates\[0\]\.ocspResponseFile/);
  });

  it('staples the response in the leaf CertificateEntry only when asked (raw TLS 1.3)', async () => {
    const statusRequest = { type: 5, data: Buffer.from([1, 0, 0, 0, 0]) };
    const c = await RawTls13Client.connect(port);
    const flight = await c.handshake({ hello: { extra: [statusRequest] } });
    const cert = flight.messages.find((m) => m.type === HandshakeType.certificate)!;
    const entries = certificateEntries(cert.body);
    expect(entries[0].extensions.get(5)).toEqual(
      Buffer.concat([
        Buffer.from([1, ocspDer.length >> 16, (ocspDer.length >> 8) & 0xff, ocspDer.length & 0xff]),
        ocspDer,
      ]),
    );
    expect(entries.slice(1).every((e) => e.extensions.size === 0)).toBe(true);
    c.destroy();
    const plain = await RawTls13Client.connect(port);
    const none = await plain.handshake();
    expect(
      certificateEntries(none.messages.find((m) => m.type === HandshakeType.certificate)!.body)[0].extensions.size,
    ).toBe(0);
    plain.destroy();
  });

  const maybe = havePeer('openssl') ? it : it.skip;
  it.each([['-tls1_3'], ['-tls1_2']])(
    'openssl s_client -status %s reads "OCSP Response Status: successful"',
    async (version) => {
      if (!havePeer('openssl')) {
        console.log('skipped: openssl not installed');
        return;
      }
      const out = await runOpenssl(
        [
          's_client',
          '-connect',
          `127.0.0.1:${port}`,
          '-servername',
          'localhost',
          '-CAfile',
          pki.caPath,
          version,
          '-status',
        ],
        'Q\n',
      );
      expect(out).toContain('OCSP Response Status: successful');
      expect(out).toMatch(/Cert Status: good/);
      expect(out).toContain('Verify return code: 0 (ok)');
    },
  );
  const maybeGnutls = havePeer('gnutls-cli', 'the GnuTLS stapling check is skipped') ? it : it.skip;
  maybeGnutls.each([['TLS1.3'], ['TLS1.2']])('gnutls-cli accepts the stapled response over %s', async (version) => {
    const out = await new Promise<string>((resolve) => {
      const p = spawn('gnutls-cli', [
        '--x509cafile',
        pki.caPath,
        '-p',
        String(port),
        '--priority',
        `NORMAL:-VERS-ALL:+VERS-${version}`,
        'localhost',
      ]);
      let text = '';
      p.stdout.on('data', (d: Buffer) => (text += d.toString()));
      p.stderr.on('data', (d: Buffer) => (text += d.toString()));
      p.stdin.on('error', () => undefined);
      p.stdin.end();
      const killer = setTimeout(() => p.kill(), 15_000);
      p.on('close', () => {
        clearTimeout(killer);
        resolve(text);
      });
    });
    expect(out).toContain('Handshake was completed');
    expect(out).toMatch(/Options:.*OCSP status request/); // GnuTLS received a staple and checked it
  });
  maybe('sends no OCSP response for a certificate that has none configured', async () => {
    const out = await runOpenssl(
      ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'p384.test', '-CAfile', pki.caPath, '-status'],
      'Q\n',
    );
    expect(out).toContain('OCSP response: no response sent');
    expect(out).toContain('Verify return code: 0 (ok)');
  });
});

/**
 * An OpenSSL SSL_SESSION (PEM) with max_early_data set: field [15] of its ASN.1 SEQUENCE
 * (ssl/ssl_asn1.c), inserted in tag order. Only for making s_client attempt 0-RTT.
 */
function withMaxEarlyData(pem: string, max: number): string {
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const readLen = (off: number): [number, number] => {
    const b = der[off];
    if (b < 0x80) return [b, off + 1];
    const n = b & 0x7f;
    return [der.readUIntBE(off + 1, n), off + 1 + n];
  };
  const encLen = (n: number): Buffer =>
    n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  const [, bodyStart] = readLen(1);
  const elements: Buffer[] = [];
  for (let off = bodyStart; off < der.length;) {
    const [len, start] = readLen(off + 1);
    elements.push(der.subarray(off, start + len));
    off = start + len;
  }
  // DER INTEGER, minimal: no leading zero byte unless the next byte has its top bit set.
  let digits = Buffer.from(max.toString(16).padStart(8, '0'), 'hex');
  while (digits.length > 1 && digits[0] === 0 && digits[1] < 0x80) digits = digits.subarray(1);
  const value = Buffer.concat([Buffer.from([0x02, digits.length]), digits]);
  const field = Buffer.concat([Buffer.from([0xaf]), encLen(value.length), value]); // [15] EXPLICIT
  const at = elements.findIndex((e) => e[0] >= 0xa0 && (e[0] & 0x1f) > 15);
  elements.splice(at < 0 ? elements.length : at, 0, field);
  const body = Buffer.concat(elements);
  const out = Buffer.concat([Buffer.from([0x30]), encLen(body.length), body]);
  // Lines of at most 64 characters, each ending in a newline: a body that is a multiple of 64 long
  // must not leave an empty line before END (OpenSSL then refuses the file).
  return `-----BEGIN SSL SESSION PARAMETERS-----\n${out.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END SSL SESSION PARAMETERS-----\n`;
}

async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

function runOpenssl(
  args: string[],
  input: string,
  ready = /Verify return code|Max Early Data|---\n(Post-Handshake|read R BLOCK)/,
): Promise<string> {
  return new Promise((resolve) => {
    const p = spawn('openssl', args);
    p.stdin.on('error', () => undefined); // s_client may exit before we write
    let text = '';
    p.stdout.on('data', (d: Buffer) => (text += d.toString()));
    p.stderr.on('data', (d: Buffer) => (text += d.toString()));
    // Wait for the handshake summary before sending input and closing stdin.
    let sent = false;
    const onData = (): void => {
      if (!sent && ready.test(text)) {
        sent = true;
        setTimeout(() => {
          p.stdin.write(input);
          p.stdin.end();
        }, 200);
      }
    };
    p.stdout.on('data', onData);
    const killer = setTimeout(() => p.kill(), 15_000);
    p.on('close', () => {
      clearTimeout(killer);
      resolve(text);
    });
  });
}

function certificateEntries(body: Buffer): { der: Buffer; extensions: Map<number, Buffer> }[] {
  const r = new Reader(body, 'Certificate');
  r.vec8('context');
  const list = r.sub24('certificate_list');
  const out: { der: Buffer; extensions: Map<number, Buffer> }[] = [];
  while (list.remaining > 0) {
    const der = list.vec24('cert');
    const exts = new Map<number, Buffer>();
    const e = list.sub16('exts');
    while (e.remaining > 0) {
      const t = e.u16();
      exts.set(t, e.vec16('ext'));
    }
    out.push({ der, extensions: exts });
  }
  return out;
}

/** Extensions of the ServerHello at the start of a plaintext server flight. */
function serverHelloExtensions(flight: Buffer): Map<number, Buffer> {
  const body = flight.subarray(9, 9 + flight.readUIntBE(6, 3));
  const r = new Reader(body, 'ServerHello');
  r.u16();
  r.bytes(32);
  r.vec8('sid');
  r.u16();
  r.u8();
  const out = new Map<number, Buffer>();
  const block = r.sub16('exts');
  while (block.remaining > 0) {
    const t = block.u16();
    out.set(t, block.vec16('ext'));
  }
  return out;
}
