/**
 * Real TLS 1.3 clients against the whole local stack started as `npm start` starts it: every
 * CertificateVerify is signed by the key service through the local KMS. Peers: OpenSSL s_client,
 * curl (HTTP/1.1 and HTTP/2), Node's tls/https, Python's ssl.
 */
import * as https from 'node:https';
import * as tls from 'node:tls';
import { startStackProcess, StackProcess } from '../helpers/dev-stack-process';
import { havePeer, httpGet, httpJsonBody, pythonGetApiTls, runPeer } from '../helpers/peers';

let stack: StackProcess;
let port: number;

beforeAll(async () => {
  stack = await startStackProcess();
  port = stack.state.edgePort;
}, 90_000);

afterAll(async () => {
  await stack?.stop();
});

function sClient(extra: string[]): Promise<import('../helpers/peers').PeerResult> {
  return runPeer(
    'openssl',
    [
      's_client',
      '-connect',
      `127.0.0.1:${port}`,
      '-servername',
      'localhost',
      '-CAfile',
      stack.state.caPath,
      '-tls1_3',
      '-ign_eof',
      ...extra,
    ],
    { input: httpGet('/api/tls') },
  );
}

const edgeView = httpJsonBody;

describe('openssl s_client -tls1_3', () => {
  const haveOpenssl = havePeer('openssl');
  const maybe = haveOpenssl ? it : it.skip;

  maybe.each(['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'])(
    'completes a verified handshake with %s',
    async (suite) => {
      const r = await sClient(['-ciphersuites', suite]);
      expect(r.stdout).toContain('Verify return code: 0 (ok)');
      expect(r.stdout).toMatch(new RegExp(`New, TLSv1.3, Cipher is ${suite}`));
      const view = edgeView(r.stdout);
      expect(view).toMatchObject({
        protocol: 'TLSv1.3',
        cipher: suite,
        signatureScheme: 'rsa_pss_rsae_sha256',
        sni: 'localhost',
        viaEdge: true,
      });
      expect(view.keyOperationMs).toEqual(expect.any(Number));
    },
  );

  maybe.each([
    ['X25519', 'x25519'],
    ['P-256', 'secp256r1'],
  ])('uses group %s', async (group, name) => {
    const r = await sClient(['-groups', group]);
    expect(r.stdout).toContain('Verify return code: 0 (ok)');
    expect(edgeView(r.stdout).group).toBe(name);
  });

  maybe('answers an X448-only key share with HelloRetryRequest and completes on X25519', async () => {
    const before = stack.edgeLogs().filter((l) => l.msg === 'handshake' && l.helloRetry === true).length;
    const r = await sClient(['-groups', 'X448:X25519']);
    expect(r.stdout).toContain('Verify return code: 0 (ok)');
    expect(edgeView(r.stdout).group).toBe('x25519');
    await new Promise((res) => setTimeout(res, 200));
    const after = stack.edgeLogs().filter((l) => l.msg === 'handshake' && l.helloRetry === true).length;
    expect(after).toBe(before + 1);
  });
});

describe('curl', () => {
  const maybe = havePeer('curl') ? it : it.skip;
  maybe.each([
    ['--http1.1', '1.1', 'http/1.1'],
    ['--http2', '2', 'h2'],
  ])('%s through the edge to the origin', async (flag, httpVersion, alpn) => {
    const r = await runPeer('curl', [
      '-sS',
      '--fail',
      flag,
      '--tlsv1.3',
      '--cacert',
      stack.state.caPath,
      `https://localhost:${port}/api/tls`,
    ]);
    expect(r.stderr).toBe('');
    const view = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(view).toMatchObject({
      protocol: 'TLSv1.3',
      alpn,
      httpVersion,
      forwardedProto: 'https',
      clientAddress: '127.0.0.1',
    });
  });

  maybe('gets the demo page showing the negotiated parameters', async () => {
    const r = await runPeer('curl', ['-sS', '--fail', '--cacert', stack.state.caPath, `https://localhost:${port}/`]);
    for (const s of ['TLSv1.3', 'TLS_AES_128_GCM_SHA256', 'x25519', 'rsa_pss_rsae_sha256', 'localhost', 'h2'])
      expect(r.stdout).toContain(s);
  });
});

describe('Node tls and https', () => {
  it('https.get verifies the chain and reaches the origin', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      https
        .get({ host: 'localhost', port, path: '/api/tls', ca: stack.caPem, minVersion: 'TLSv1.3' }, (res) => {
          let b = '';
          res.on('data', (d: Buffer) => (b += d.toString()));
          res.on('end', () => resolve(b));
        })
        .on('error', reject);
    });
    expect(JSON.parse(body)).toMatchObject({ protocol: 'TLSv1.3', httpVersion: '1.1' });
  });

  it('tls.connect negotiates h2 by ALPN and sees the certificate for localhost', async () => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: stack.caPem,
      ALPNProtocols: ['h2', 'http/1.1'],
    });
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    expect(socket.getProtocol()).toBe('TLSv1.3');
    expect(socket.alpnProtocol).toBe('h2');
    expect(socket.getPeerCertificate().subjectaltname).toContain('DNS:localhost');
    socket.destroy();
  });
});

describe('Python ssl', () => {
  const maybe = havePeer('python3') ? it : it.skip;
  maybe('completes a TLS 1.3 handshake and an HTTP request', async () => {
    const script = pythonGetApiTls({
      ca: stack.state.caPath,
      port,
      setup: 'ctx.minimum_version = ssl.TLSVersion.TLSv1_3',
      reportVersion: true,
    });
    const r = await runPeer('python3', ['-c', script]);
    expect(r.stderr).toBe('');
    const first = JSON.parse(r.stdout.split('\n')[0]) as { version: string; cipher: string };
    expect(first.version).toBe('TLSv1.3');
    expect(r.stdout).toMatch(/"protocol": ?"TLSv1.3"/);
  });
});
