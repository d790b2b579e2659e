/**
 * Regression test for an interop-matrix finding: with TLS 1.2 RSA key exchange (a `sealed` key) the
 * edge chose h2 by ALPN, and Chromium refused the connection (ERR_HTTP2_INADEQUATE_TRANSPORT_SECURITY)
 * because RFC 9113 §9.2.2 requires an ephemeral key exchange for HTTP/2 over TLS 1.2. Now h2 is
 * chosen only with ECDHE; RSA key exchange gets http/1.1.
 */
import * as tls from 'node:tls';
import { CertificateStore, loadCertificate } from '../../edge-proxy/src/tls/certificates';
import type { TestPki } from '../helpers/certs';
import { InProcessKeys } from '../helpers/in-process-keys';
import { startTlsServerFixture, type TlsServerFixture } from '../helpers/tls-server-fixture';

let fixture: TlsServerFixture;
let pki: TestPki;
let port: number;

beforeAll(async () => {
  fixture = await startTlsServerFixture(
    (testPki) => {
      const rsa = testPki.leaf('rsa', 'rsa2048', ['localhost']);
      return {
        certificates: new CertificateStore([
          { ...loadCertificate(rsa.chainPem, 'rsa-key'), allowRsaKeyExchange: true },
        ]),
        keyOperations: new InProcessKeys(new Map([['rsa-key', rsa.key]])),
      };
    },
    (c) => c.end(),
  );
  ({ pki, port } = fixture);
});

afterAll(() => fixture.close());

function alpnWith(ciphers: string, protocols: string[]): Promise<string | false | null> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: pki.caPem,
      maxVersion: 'TLSv1.2',
      ciphers,
      ALPNProtocols: protocols,
    });
    s.once('secureConnect', () => {
      resolve(s.alpnProtocol);
      s.destroy();
    });
    s.once('error', reject);
  });
}

it('chooses http/1.1, not h2, with RSA key exchange', async () => {
  expect(await alpnWith('AES128-GCM-SHA256', ['h2', 'http/1.1'])).toBe('http/1.1');
});

it('still chooses h2 with ECDHE', async () => {
  expect(await alpnWith('ECDHE-RSA-AES128-GCM-SHA256', ['h2', 'http/1.1'])).toBe('h2');
});

it('refuses a client that offers only h2 with only RSA key exchange (no_application_protocol)', async () => {
  await expect(alpnWith('AES128-GCM-SHA256', ['h2'])).rejects.toThrow(/no application protocol/i);
});
