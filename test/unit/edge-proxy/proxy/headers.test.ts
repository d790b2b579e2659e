/** Pure header rewriting and connection-fact extraction. */
import { Duplex } from 'node:stream';
import { describeConnection, normalizeAddress } from '../../../../edge-proxy/src/proxy/connection-facts';
import {
  buildOriginRequestHeaders,
  filterResponseHeaders,
  formatMs,
  keylessHeaders,
  KEYLESS_HEADERS,
  toHttp2Headers,
} from '../../../../edge-proxy/src/proxy/headers';
import type { ConnectionFacts } from '../../../../edge-proxy/src/proxy/connection-facts';
import type { SecureConnection } from '../../../../edge-proxy/src/proxy/types';

const facts: ConnectionFacts = {
  protocol: 'TLSv1.3',
  cipher: 'TLS_AES_128_GCM_SHA256',
  group: 'x25519',
  signatureScheme: 'rsa_pss_rsae_sha256',
  keyExchange: 'ecdhe',
  sni: 'www.example.com',
  alpn: 'h2',
  keyOperationMs: 7.12345,
  resumed: false,
  clientAddress: '192.0.2.10',
};

function toMap(raw: string[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i].toLowerCase();
    m.set(k, [...(m.get(k) ?? []), raw[i + 1]]);
  }
  return m;
}

describe('buildOriginRequestHeaders', () => {
  test('full rewrite', () => {
    const out = toMap(
      buildOriginRequestHeaders({
        rawHeaders: [
          ':method',
          'GET',
          ':path',
          '/',
          ':authority',
          'www.example.com',
          ':scheme',
          'https',
          'accept',
          'text/html',
          'Connection',
          'keep-alive, X-Drop-Me',
          'x-drop-me',
          '1',
          'Keep-Alive',
          'timeout=5',
          'Transfer-Encoding',
          'chunked',
          'TE',
          'trailers',
          'Trailer',
          'x',
          'Upgrade',
          'h2c',
          'Proxy-Connection',
          'keep-alive',
          'HTTP2-Settings',
          'AAA',
          'Expect',
          '100-continue',
          'Host',
          'www.example.com',
          'X-Forwarded-For',
          '203.0.113.1',
          'x-forwarded-for',
          '198.51.100.1',
          'X-Forwarded-Proto',
          'http',
          'X-Forwarded-Host',
          'evil',
          'X-Keyless-TLS-Protocol',
          'SSLv3',
          'x-keyless-custom',
          'spoof',
          'cookie',
          'a=1',
          'cookie',
          'b=2',
        ],
        authority: 'www.example.com',
        facts,
        httpVersion: '2',
        hasBody: false,
      }),
    );
    expect([...out.keys()].sort()).toEqual(
      [
        'accept',
        'cookie',
        'host',
        'x-forwarded-for',
        'x-forwarded-proto',
        'x-forwarded-host',
        ...Object.values(KEYLESS_HEADERS),
        'x-keyless-client-cert-verified',
      ].sort(),
    );
    expect(out.get('host')).toEqual(['www.example.com']);
    expect(out.get('cookie')).toEqual(['a=1; b=2']);
    expect(out.get('x-forwarded-for')).toEqual(['203.0.113.1, 198.51.100.1, 192.0.2.10']);
    expect(out.get('x-forwarded-proto')).toEqual(['https']);
    expect(out.get('x-forwarded-host')).toEqual(['www.example.com']);
    expect(out.get('x-keyless-tls-protocol')).toEqual(['TLSv1.3']);
    expect(out.get('x-keyless-tls-cipher')).toEqual(['TLS_AES_128_GCM_SHA256']);
    expect(out.get('x-keyless-tls-group')).toEqual(['x25519']);
    expect(out.get('x-keyless-tls-signature-scheme')).toEqual(['rsa_pss_rsae_sha256']);
    expect(out.get('x-keyless-tls-key-exchange')).toEqual(['ecdhe']);
    expect(out.get('x-keyless-tls-sni')).toEqual(['www.example.com']);
    expect(out.get('x-keyless-tls-alpn')).toEqual(['h2']);
    expect(out.get('x-keyless-tls-key-op-ms')).toEqual(['7.123']);
    expect(out.get('x-keyless-tls-resumed')).toEqual(['false']);
    expect(out.get('x-keyless-http-version')).toEqual(['2']);
  });

  test('body framing: content-length kept (even if nominated by Connection), else chunked', () => {
    const withLength = toMap(
      buildOriginRequestHeaders({
        rawHeaders: ['Connection', 'content-length', 'Content-Length', '10'],
        authority: 'a',
        facts: {},
        httpVersion: '1.1',
        hasBody: true,
      }),
    );
    expect(withLength.get('content-length')).toEqual(['10']);
    expect(withLength.has('transfer-encoding')).toBe(false);
    const chunked = toMap(
      buildOriginRequestHeaders({
        rawHeaders: ['Transfer-Encoding', 'chunked'],
        authority: 'a',
        facts: {},
        httpVersion: '1.1',
        hasBody: true,
      }),
    );
    expect(chunked.get('transfer-encoding')).toEqual(['chunked']);
    const none = toMap(
      buildOriginRequestHeaders({
        rawHeaders: ['content-length', '0'],
        authority: 'a',
        facts: {},
        httpVersion: '2',
        hasBody: false,
      }),
    );
    expect(none.has('content-length')).toBe(false);
    expect(none.has('transfer-encoding')).toBe(false);
  });

  test('HTTP/1.0 without Host gets the origin host, no X-Forwarded-Host; upgrade kept on request', () => {
    const out = toMap(
      buildOriginRequestHeaders({
        rawHeaders: [],
        authority: undefined,
        fallbackHost: '10.0.0.5:8080',
        facts: {},
        httpVersion: '1.0',
        hasBody: false,
      }),
    );
    expect(out.get('host')).toEqual(['10.0.0.5:8080']);
    expect(out.has('x-forwarded-host')).toBe(false);
    expect(out.has('x-forwarded-for')).toBe(false);
    const up = toMap(
      buildOriginRequestHeaders({
        rawHeaders: ['Connection', 'Upgrade', 'Upgrade', 'websocket'],
        authority: 'a',
        facts: {},
        httpVersion: '1.1',
        hasBody: false,
        upgrade: 'websocket',
      }),
    );
    expect(up.get('connection')).toEqual(['upgrade']);
    expect(up.get('upgrade')).toEqual(['websocket']);
  });
});

describe('keylessHeaders', () => {
  test('omits absent facts and unsafe values', () => {
    const raw = keylessHeaders(
      { protocol: 'TLSv1.2', sni: 'evil\r\nx-injected: 1', alpn: undefined, resumed: true },
      '1.1',
    );
    expect(toMap(raw)).toEqual(
      new Map([
        ['x-keyless-tls-protocol', ['TLSv1.2']],
        ['x-keyless-tls-resumed', ['true']],
        ['x-keyless-http-version', ['1.1']],
        ['x-keyless-edge-runtime', [`node/${process.versions.node}`]],
        // Always sent, so an origin can enforce mTLS itself.
        ['x-keyless-client-cert-verified', ['0']],
      ]),
    );
  });
  test('formatMs', () => {
    expect(formatMs(12.3456)).toBe('12.346');
    expect(formatMs(3)).toBe('3');
    expect(formatMs(0.0004)).toBe('0');
  });
});

describe('response headers', () => {
  const raw = [
    'Content-Type',
    'text/plain',
    'Set-Cookie',
    'a=1',
    'Set-Cookie',
    'b=2',
    'Connection',
    'keep-alive, X-Hop',
    'X-Hop',
    'secret',
    'Keep-Alive',
    'timeout=5',
    'Transfer-Encoding',
    'chunked',
    'Upgrade',
    'h2c',
    'Proxy-Connection',
    'x',
    'Vary',
    'accept',
    'vary',
    'cookie',
    'Content-Length',
    '5',
    'content-length',
    '5',
  ];
  test('HTTP/1.1: hop-by-hop dropped, order and duplicates kept', () => {
    expect(filterResponseHeaders(raw)).toEqual([
      'Content-Type',
      'text/plain',
      'Set-Cookie',
      'a=1',
      'Set-Cookie',
      'b=2',
      'Vary',
      'accept',
      'vary',
      'cookie',
      'Content-Length',
      '5',
      'content-length',
      '5',
    ]);
  });
  test('HTTP/2: lower-case object, set-cookie list, repeats joined, one content-length', () => {
    expect({ ...toHttp2Headers(raw) }).toEqual({
      'content-type': 'text/plain',
      'set-cookie': ['a=1', 'b=2'],
      vary: 'accept, cookie',
      'content-length': '5',
    });
  });
});

describe('describeConnection', () => {
  class FakeConn extends Duplex implements SecureConnection {
    readonly encrypted = true as const;
    alpnProtocol: string | false = false;
    servername: string | false = 'api.example.com';
    remoteAddress = '::ffff:198.51.100.7';
    remotePort = 50000;
    handshakeInfo = { group: 'secp256r1', keyOperationMs: 4.5, resumed: true };
    getProtocol(): string {
      return 'TLSv1.2';
    }
    getCipher(): { name: string; standardName: string; version: string } {
      return {
        name: 'ECDHE-ECDSA-AES128-GCM-SHA256',
        standardName: 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
        version: 'TLSv1.2',
      };
    }
    setTimeout(): this {
      return this;
    }
    setNoDelay(): this {
      return this;
    }
    setKeepAlive(): this {
      return this;
    }
    override _read(): void {}
  }

  test('reads engine facts; normalises IPv4-mapped addresses; absent ALPN', () => {
    expect(describeConnection(new FakeConn())).toEqual({
      protocol: 'TLSv1.2',
      cipher: 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
      group: 'secp256r1',
      signatureScheme: undefined,
      keyExchange: undefined,
      sni: 'api.example.com',
      alpn: undefined,
      keyOperationMs: 4.5,
      resumed: true,
      clientAddress: '198.51.100.7',
      clientPort: 50000,
      clientCertVerified: '0',
    });
  });

  test('never throws on a torn-down connection', () => {
    const c = new FakeConn();
    c.getCipher = () => {
      throw new Error('gone');
    };
    expect(describeConnection(c).cipher).toBeUndefined();
  });

  test('normalizeAddress', () => {
    expect(normalizeAddress('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(normalizeAddress('2001:db8::1')).toBe('2001:db8::1');
    expect(normalizeAddress(undefined)).toBeUndefined();
  });
});
