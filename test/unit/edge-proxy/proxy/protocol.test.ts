/**
 * PROXY protocol v2 in front of TLS (what the NLB sends): the client address from the header becomes
 * the connection's remoteAddress, LOCAL health-check connections close quietly, and anything
 * malformed is closed without reaching the TLS engine.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { parseProxyV2, PROXY_V2_SIGNATURE } from '../../../../edge-proxy/src/proxy/proxy-protocol-v2';
import { TlsServer } from '../../../../edge-proxy/src/tls/server';
import { CertificateStore, loadCertificate } from '../../../../edge-proxy/src/tls/certificates';
import type { TlsServerConnection } from '../../../../edge-proxy/src/tls/connection';
import { makeTestPki, TestPki } from '../../../helpers/certs';
import { InProcessKeys } from '../../../helpers/in-process-keys';

function v2(command: number, family: number, body: Buffer): Buffer {
  const h = Buffer.alloc(16);
  PROXY_V2_SIGNATURE.copy(h);
  h[12] = 0x20 | command;
  h[13] = (family << 4) | 1; // STREAM
  h.writeUInt16BE(body.length, 14);
  return Buffer.concat([h, body]);
}

function inet(src: string, sport: number): Buffer {
  const b = Buffer.alloc(12);
  src.split('.').forEach((o, i) => (b[i] = Number(o)));
  Buffer.from([10, 0, 0, 1]).copy(b, 4);
  b.writeUInt16BE(sport, 8);
  b.writeUInt16BE(443, 10);
  return b;
}

describe('parseProxyV2', () => {
  it('reads an IPv4 source and keeps the bytes after the header', () => {
    const h = parseProxyV2(Buffer.concat([v2(1, 1, inet('203.0.113.7', 51000)), Buffer.from([22, 3, 1])]));
    expect(h).toEqual({
      source: { address: '203.0.113.7', port: 51000 },
      destination: { address: '10.0.0.1', port: 443 },
      rest: Buffer.from([22, 3, 1]),
    });
  });
  it('reads an IPv6 source', () => {
    const body = Buffer.alloc(36);
    body[0] = 0x20;
    body[1] = 0x01;
    body[15] = 1;
    body.writeUInt16BE(4000, 32);
    expect(parseProxyV2(v2(1, 2, body))?.source).toEqual({ address: '2001:0:0:0:0:0:0:1', port: 4000 });
  });
  it('waits for more bytes, and accepts LOCAL without an address', () => {
    const full = v2(1, 1, inet('198.51.100.2', 1));
    expect(parseProxyV2(full.subarray(0, 10))).toBeNull();
    expect(parseProxyV2(full.subarray(0, 20))).toBeNull();
    expect(parseProxyV2(v2(0, 0, Buffer.alloc(0)))).toEqual({ rest: Buffer.alloc(0) });
  });
  it.each([
    ['a TLS ClientHello instead', Buffer.from([22, 3, 1, 0, 5, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])],
    ['version 1 text', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n')],
    [
      'an unknown command',
      (() => {
        const b = v2(1, 1, inet('1.2.3.4', 1));
        b[12] = 0x2f;
        return b;
      })(),
    ],
    [
      'a wrong version',
      (() => {
        const b = v2(1, 1, inet('1.2.3.4', 1));
        b[12] = 0x11;
        return b;
      })(),
    ],
  ])('rejects %s', (_n, bytes) => {
    expect(() => parseProxyV2(bytes)).toThrow();
  });
});

describe('TlsServer behind a PROXY v2 load balancer', () => {
  let pki: TestPki;
  let server: TlsServer;
  let port: number;
  const seen: string[] = [];
  beforeAll(async () => {
    pki = makeTestPki();
    const leaf = pki.leaf('rsa', 'rsa2048', ['localhost']);
    server = new TlsServer(
      {
        certificates: new CertificateStore([loadCertificate(leaf.chainPem, 'k')]),
        keyOperations: new InProcessKeys(new Map([['k', leaf.key]])),
        handshakeTimeoutMs: 1000,
      },
      true,
    );
    server.on('secureConnection', (c: TlsServerConnection) => {
      seen.push(`${c.remoteAddress}:${c.remotePort}`);
      c.end('hi');
    });
    port = (await server.listen(0)).port;
  });
  afterAll(async () => {
    await server.close(true);
    pki.cleanup();
  });

  it('uses the client address from the header for the TLS connection', async () => {
    const raw = net.connect(port, '127.0.0.1');
    await new Promise((r) => raw.once('connect', r));
    raw.write(v2(1, 1, inet('203.0.113.9', 40000)));
    const s = tls.connect({ socket: raw, servername: 'localhost', ca: pki.caPem });
    const data = await new Promise<string>((resolve, reject) => {
      let d = '';
      s.on('data', (b: Buffer) => (d += b.toString()));
      s.on('end', () => resolve(d));
      s.on('error', reject);
    });
    expect(data).toBe('hi');
    expect(seen).toContain('203.0.113.9:40000');
  });

  it('closes LOCAL health-check connections and header-less connections', async () => {
    for (const bytes of [v2(0, 0, Buffer.alloc(0)), Buffer.from([22, 3, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])]) {
      const closed = await new Promise<boolean>((resolve) => {
        const c = net.connect(port, '127.0.0.1', () => c.write(bytes));
        c.on('error', () => undefined);
        c.on('close', () => resolve(true));
        setTimeout(() => resolve(false), 3000).unref();
      });
      expect(closed).toBe(true);
    }
  });
});
