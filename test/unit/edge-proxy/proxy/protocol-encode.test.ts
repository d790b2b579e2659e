/**
 * PROXY protocol v2, sending side (haproxy proxy-protocol spec §2.2): the encoder against a byte
 * sequence written out by hand from the spec, round trips through our decoder (IPv4, IPv6, mixed),
 * the PP2_TYPE_SSL value, and the header the edge builds for one TLS connection.
 */
import {
  decodeProxySsl,
  decodeProxyTlvs,
  encodeProxySsl,
  encodeProxyV2,
  parseProxyV2,
  PP2_CLIENT,
  PP2_SUBTYPE_SSL,
  PP2_TYPE,
  ProxyProtocolError,
} from '../../../../edge-proxy/src/proxy/proxy-protocol-v2';
import { commonName, originProxyHeader } from '../../../../edge-proxy/src/proxy/origin-proxy-header';
import type { SecureConnection } from '../../../../edge-proxy/src/proxy/types';
import { tlsFacts } from '../../../helpers/proxy-origin';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const ascii = (s: string): string => Buffer.from(s, 'ascii').toString('hex');

describe('encodeProxyV2', () => {
  test('matches a header written out by hand from the spec (IPv4, ALPN, AUTHORITY, SSL)', () => {
    const ssl = encodeProxySsl({
      client: PP2_CLIENT.SSL,
      verify: 1,
      tlvs: [
        { type: PP2_SUBTYPE_SSL.VERSION, value: Buffer.from('TLSv1.3') },
        { type: PP2_SUBTYPE_SSL.CIPHER, value: Buffer.from('TLS_AES_128_GCM_SHA256') },
      ],
    });
    const got = encodeProxyV2({
      source: { address: '192.0.2.10', port: 51234 },
      destination: { address: '198.51.100.1', port: 443 },
      tlvs: [
        { type: PP2_TYPE.ALPN, value: Buffer.from('h2') },
        { type: PP2_TYPE.AUTHORITY, value: Buffer.from('example.com') },
        { type: PP2_TYPE.SSL, value: ssl },
      ],
    });
    const expected = hex(`
      0d0a0d0a000d0a515549540a
      21
      11
      004a
      c000020a c6336401 c822 01bb
      01 0002 ${ascii('h2')}
      02 000b ${ascii('example.com')}
      20 0028 01 00000001
        21 0007 ${ascii('TLSv1.3')}
        23 0016 ${ascii('TLS_AES_128_GCM_SHA256')}
    `);
    // signature (12) · version 2 + PROXY (0x21) · AF_INET + STREAM (0x11) · length 74 =
    // addresses (12) + ALPN (3+2) + AUTHORITY (3+11) + SSL (3 + 5 + 3+7 + 3+22)
    expect(got.toString('hex')).toBe(expected.toString('hex'));
  });

  test('IPv4 round trip through the decoder, TLVs and following bytes kept', () => {
    const tlvs = [
      { type: PP2_TYPE.AUTHORITY, value: Buffer.from('www.example.com') },
      { type: PP2_TYPE.UNIQUE_ID, value: Buffer.from('abc-1') },
    ];
    const h = encodeProxyV2({
      source: { address: '203.0.113.7', port: 40000 },
      destination: { address: '10.0.0.1', port: 8443 },
      tlvs,
    });
    expect(h[13]).toBe(0x11);
    const parsed = parseProxyV2(Buffer.concat([h, Buffer.from('after')]));
    expect(parsed).toEqual({
      source: { address: '203.0.113.7', port: 40000 },
      destination: { address: '10.0.0.1', port: 8443 },
      tlvs,
      rest: Buffer.from('after'),
    });
  });

  test('IPv6 round trip (compressed, full and embedded-IPv4 forms)', () => {
    const h = encodeProxyV2({
      source: { address: '2001:db8::1', port: 1 },
      destination: { address: 'fe80::1:2%eth0', port: 65535 },
    });
    expect(h[13]).toBe(0x21);
    expect(h.readUInt16BE(14)).toBe(36);
    const p = parseProxyV2(h)!;
    expect(p.source).toEqual({ address: '2001:db8:0:0:0:0:0:1', port: 1 });
    expect(p.destination).toEqual({ address: 'fe80:0:0:0:0:0:1:2', port: 65535 });
    expect(p.tlvs).toBeUndefined();
    const full = parseProxyV2(
      encodeProxyV2({
        source: { address: '2001:db8:1:2:3:4:5:6', port: 2 },
        destination: { address: '::ffff:7f00:1', port: 3 },
      }),
    )!;
    expect(full.source?.address).toBe('2001:db8:1:2:3:4:5:6');
    const tail = parseProxyV2(
      encodeProxyV2({ source: { address: '64:ff9b::192.0.2.33', port: 4 }, destination: { address: '::', port: 5 } }),
    )!;
    expect(tail.source?.address).toBe('64:ff9b:0:0:0:0:c000:221');
    expect(tail.destination?.address).toBe('0:0:0:0:0:0:0:0');
  });

  test('IPv4-mapped addresses become AF_INET; mixed families become AF_INET6 with the IPv4 one mapped', () => {
    const mapped = encodeProxyV2({
      source: { address: '::ffff:127.0.0.1', port: 5000 },
      destination: { address: '::FFFF:127.0.0.2', port: 443 },
    });
    expect(mapped[13]).toBe(0x11);
    expect(parseProxyV2(mapped)?.source).toEqual({ address: '127.0.0.1', port: 5000 });
    const mixed = encodeProxyV2({
      source: { address: '192.0.2.1', port: 5000 },
      destination: { address: '2001:db8::2', port: 443 },
    });
    expect(mixed[13]).toBe(0x21);
    expect(parseProxyV2(mixed)?.source).toEqual({ address: '0:0:0:0:0:ffff:c000:201', port: 5000 });
  });

  test.each([
    ['a host name', { address: 'example.com', port: 1 }],
    ['a port out of range', { address: '192.0.2.1', port: 70000 }],
    ['a fractional port', { address: '192.0.2.1', port: 1.5 }],
  ])('refuses %s', (_n, source) => {
    expect(() => encodeProxyV2({ source, destination: { address: '192.0.2.2', port: 443 } })).toThrow(RangeError);
  });
});

describe('TLVs', () => {
  test('PP2_TYPE_SSL value round trip', () => {
    const v = encodeProxySsl({
      client: PP2_CLIENT.SSL | PP2_CLIENT.CERT_CONN,
      verify: 0xfffffffe,
      tlvs: [{ type: PP2_SUBTYPE_SSL.CN, value: Buffer.from('client') }],
    });
    expect(decodeProxySsl(v)).toEqual({
      client: 0x03,
      verify: 0xfffffffe,
      tlvs: [{ type: 0x22, value: Buffer.from('client') }],
    });
  });

  test('malformed TLV areas are rejected, not misread', () => {
    expect(() => decodeProxyTlvs(hex('01 0005 6832'))).toThrow(ProxyProtocolError);
    expect(() => decodeProxyTlvs(hex('01 00'))).toThrow(ProxyProtocolError);
    expect(() => decodeProxySsl(hex('01 0000'))).toThrow(ProxyProtocolError);
    // A whole header whose TLV runs past its declared length.
    const h = encodeProxyV2({
      source: { address: '192.0.2.1', port: 1 },
      destination: { address: '192.0.2.2', port: 2 },
      tlvs: [{ type: PP2_TYPE.NOOP, value: Buffer.alloc(4) }],
    });
    h.writeUInt16BE(h.readUInt16BE(14) - 2, 14);
    expect(() => parseProxyV2(h)).toThrow(ProxyProtocolError);
  });
});

function fakeConnection(over: Partial<Record<keyof SecureConnection, unknown>>): SecureConnection {
  return {
    alpnProtocol: false,
    servername: false,
    remoteAddress: '198.51.100.9',
    remotePort: 50123,
    localAddress: '10.0.0.5',
    localPort: 443,
    getProtocol: () => 'TLSv1.3',
    getCipher: () => ({
      name: 'TLS_CHACHA20_POLY1305_SHA256',
      standardName: 'TLS_CHACHA20_POLY1305_SHA256',
      version: 'TLSv1.3',
    }),
    ...over,
  } as unknown as SecureConnection;
}

describe('originProxyHeader', () => {
  test('client address, SNI, ALPN and the SSL TLV of one TLS connection', () => {
    const p = parseProxyV2(originProxyHeader(fakeConnection({ alpnProtocol: 'h2', servername: 'api.example.com' })))!;
    expect(p.source).toEqual({ address: '198.51.100.9', port: 50123 });
    expect(p.destination).toEqual({ address: '10.0.0.5', port: 443 });
    expect(tlsFacts(p)).toEqual({
      alpn: 'h2',
      authority: 'api.example.com',
      sslClient: PP2_CLIENT.SSL,
      sslVerify: 1,
      version: 'TLSv1.3',
      cipher: 'TLS_CHACHA20_POLY1305_SHA256',
    });
  });

  test('no SNI and no ALPN: those TLVs are left out; an IPv6 client gives an AF_INET6 header', () => {
    const h = originProxyHeader(fakeConnection({ remoteAddress: '2001:db8::7', localAddress: '::ffff:10.0.0.5' }));
    expect(h[13]).toBe(0x21);
    const p = parseProxyV2(h)!;
    expect(p.source?.address).toBe('2001:db8:0:0:0:0:0:7');
    expect(p.destination?.address).toBe('0:0:0:0:0:ffff:a00:5');
    expect(p.tlvs?.map((t) => t.type)).toEqual([PP2_TYPE.SSL]);
  });

  test('a connection already torn down (no addresses, getters throwing) still yields a valid header', () => {
    const h = originProxyHeader(
      fakeConnection({
        remoteAddress: undefined,
        remotePort: undefined,
        localAddress: undefined,
        getProtocol: () => {
          throw new Error('gone');
        },
      }),
    );
    const p = parseProxyV2(h)!;
    expect(p.source).toEqual({ address: '0.0.0.0', port: 0 });
    expect(tlsFacts(p).version).toBeUndefined();
  });
});

describe('originProxyHeader with client certificates (mTLS)', () => {
  const ssl = (conn: SecureConnection) => {
    const t = (parseProxyV2(originProxyHeader(conn))!.tlvs ?? []).find((x) => x.type === PP2_TYPE.SSL)!;
    const info = decodeProxySsl(t.value);
    const cn = info.tlvs.find((x) => x.type === PP2_SUBTYPE_SSL.CN)?.value.toString();
    return { client: info.client, verify: info.verify, cn };
  };

  test('a verified client certificate sets CERT_CONN, verify 0 and the CN', () => {
    const conn = fakeConnection({
      handshakeInfo: { clientAuth: { verified: true, subject: 'CN=client-1,O=Example' } },
    });
    expect(ssl(conn)).toEqual({ client: PP2_CLIENT.SSL | PP2_CLIENT.CERT_CONN, verify: 0, cn: 'client-1' });
  });

  test('a resumed session reports the certificate as presented earlier in the session (CERT_SESS)', () => {
    const conn = fakeConnection({
      handshakeInfo: { resumed: true, clientAuth: { verified: true, subject: 'O=Example,CN=svc\\,a' } },
    });
    expect(ssl(conn)).toEqual({ client: PP2_CLIENT.SSL | PP2_CLIENT.CERT_SESS, verify: 0, cn: 'svc,a' });
  });

  test('no certificate on an optional host: verify non-zero and no CN', () => {
    const conn = fakeConnection({ handshakeInfo: { clientAuth: { verified: false } } });
    expect(ssl(conn)).toEqual({ client: PP2_CLIENT.SSL, verify: 1, cn: undefined });
  });

  test('commonName reads the first CN of an RFC 4514 subject', () => {
    expect(commonName('O=A,CN=b+UID=3')).toBe('b');
    expect(commonName('O=ACN=x')).toBeUndefined();
    expect(commonName(undefined)).toBeUndefined();
  });
});
