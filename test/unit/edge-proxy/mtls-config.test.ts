/**
 * mTLS configuration (`certificates[i].clientAuth`): validation messages that name the field and the
 * fix, CA bundles loaded with the certificates, and the client-certificate facts and headers the
 * proxy derives from a connection.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, parseEdgeConfig } from '../../../edge-proxy/src/config';
import { loadCertificates } from '../../../edge-proxy/src/edge';
import { describeConnection } from '../../../edge-proxy/src/proxy/connection-facts';
import { buildOriginRequestHeaders, keylessHeaders } from '../../../edge-proxy/src/proxy/headers';
import type { SecureConnection } from '../../../edge-proxy/src/proxy/types';
import { makeClientPki, makeTestPki, type TestClientPki, type TestPki } from '../../helpers/certs';

let pki: TestPki;
let clients: TestClientPki;
let chainFile: string;

beforeAll(() => {
  pki = makeTestPki();
  clients = makeClientPki();
  chainFile = path.join(pki.dir, 'web-chain.pem');
  fs.writeFileSync(chainFile, pki.leaf('web', 'p256', ['localhost']).chainPem);
  fs.writeFileSync(path.join(pki.dir, 'clients-ca.pem'), clients.caPem);
});

afterAll(() => {
  pki.cleanup();
  clients.cleanup();
});

const config = (clientAuth: unknown) =>
  parseEdgeConfig(
    {
      certificates: [{ chainFile: 'web-chain.pem', keyName: 'web', clientAuth }],
      keyServices: [{ functionName: 'keyless' }],
      origin: 'http://127.0.0.1:8080',
    },
    pki.dir,
  );

function configError(f: () => unknown): ConfigError {
  try {
    f();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('no ConfigError');
}

describe('clientAuth configuration', () => {
  it('resolves caFile against the configuration folder', () => {
    expect(config({ mode: 'required', caFile: 'clients-ca.pem' }).certificates[0].clientAuth).toEqual({
      mode: 'required',
      caFile: path.join(pki.dir, 'clients-ca.pem'),
    });
    expect(config({ mode: 'none' }).certificates[0].clientAuth).toEqual({ mode: 'none' });
    expect(config(undefined).certificates[0].clientAuth).toBeUndefined();
  });

  it.each([
    ['"yes"', 'certificates[0].clientAuth', /must be an object/],
    [{ mode: 'always', caFile: 'x.pem' }, 'certificates[0].clientAuth.mode', /"none", "optional".*"required"/],
    [{ mode: 'required' }, 'certificates[0].clientAuth.caFile', /PEM bundle of the CA certificates/],
    [{ mode: 'none', caFile: 'x.pem' }, 'certificates[0].clientAuth.caFile', /Remove caFile/],
    [{ mode: 'optional', caFile: 'x.pem', crlFile: 'y' }, 'certificates[0].clientAuth.crlFile', /unknown field/],
  ])('%j is refused, naming %s', (value, field, fix) => {
    const e = configError(() => config(value));
    expect(e.field).toBe(field);
    expect(e.message).toMatch(fix);
  });

  it('loads the CA bundle with the certificates (startup and SIGHUP reload)', () => {
    const [cert] = loadCertificates(config({ mode: 'optional', caFile: 'clients-ca.pem' }));
    expect(cert.clientAuth?.mode).toBe('optional');
    expect(cert.clientAuth?.anchors).toHaveLength(1);
    expect(cert.clientAuth?.authorities[0].length).toBeGreaterThan(10);
    expect(loadCertificates(config({ mode: 'none' }))[0].clientAuth).toBeUndefined();
  });

  it('names caFile when it is missing, empty of certificates, or holds a private key', () => {
    expect(configError(() => loadCertificates(config({ mode: 'required', caFile: 'missing.pem' }))).message).toMatch(
      /certificates\[0\]\.clientAuth\.caFile: cannot read .*missing\.pem \(ENOENT\)/,
    );
    fs.writeFileSync(path.join(pki.dir, 'empty.pem'), 'nothing\n');
    expect(configError(() => loadCertificates(config({ mode: 'required', caFile: 'empty.pem' }))).message).toMatch(
      /clientAuth\.caFile: .*no PEM CERTIFICATE block/,
    );
    const marker = ['-----BEGIN', 'PRIVATE KEY-----'].join(' ');
    fs.writeFileSync(path.join(pki.dir, 'withkey.pem'), `${clients.caPem}${marker}\nAAAA\n`);
    expect(configError(() => loadCertificates(config({ mode: 'required', caFile: 'withkey.pem' }))).field).toBe(
      'certificates[0].clientAuth.caFile',
    );
  });
});

describe('client-certificate headers', () => {
  const conn = (clientAuth?: object) =>
    ({
      encrypted: true,
      alpnProtocol: 'h2',
      servername: 'a.test',
      getProtocol: () => 'TLSv1.3',
      getCipher: () => ({ name: 'x', standardName: 'TLS_AES_128_GCM_SHA256', version: 'TLSv1.3' }),
      handshakeInfo: { clientAuth },
    }) as unknown as SecureConnection;

  it('a verified client: 1, subject, SAN, fingerprint', () => {
    const facts = describeConnection(
      conn({
        verified: true,
        subject: 'CN=alice,O=Example',
        san: 'email:a@example.com',
        fingerprint256: 'ab'.repeat(32),
      }),
    );
    const h = keylessHeaders(facts, '2');
    const get = (n: string) => h[h.indexOf(n) + 1];
    expect(get('x-keyless-client-cert-verified')).toBe('1');
    expect(get('x-keyless-client-cert-subject')).toBe('CN=alice,O=Example');
    expect(get('x-keyless-client-cert-san')).toBe('email:a@example.com');
    expect(get('x-keyless-client-cert-fingerprint-sha256')).toBe('ab'.repeat(32));
  });

  it('without a verified client certificate, mTLS host or not: verified 0 and nothing else', () => {
    for (const auth of [{ verified: false }, undefined]) {
      const h = keylessHeaders(describeConnection(conn(auth)), '2');
      expect(h.filter((x) => x.startsWith('x-keyless-client'))).toEqual(['x-keyless-client-cert-verified']);
      expect(h[h.indexOf('x-keyless-client-cert-verified') + 1]).toBe('0');
    }
  });

  it('client-sent x-keyless-client-cert-* headers never reach the origin', () => {
    const out = buildOriginRequestHeaders({
      rawHeaders: ['X-Keyless-Client-Cert-Verified', '1', 'x-keyless-client-cert-subject', 'CN=admin', 'accept', '*/*'],
      authority: 'a.test',
      facts: describeConnection(conn()),
      httpVersion: '1.1',
      hasBody: false,
    });
    expect(out.filter((x) => /client-cert|CN=admin/i.test(x))).toEqual(['x-keyless-client-cert-verified']);
    expect(out[out.indexOf('x-keyless-client-cert-verified') + 1]).toBe('0');
    expect(out).toContain('accept');
  });
});
