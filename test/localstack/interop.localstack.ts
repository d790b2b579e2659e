/**
 * The interop scenarios of test/interop/tls13-peers.test.ts, against the stack deployed on LocalStack
 * by test/localstack/run.ts (state in KEYLESS_LOCALSTACK_STATE): every CertificateVerify is signed by
 * the key-service Lambda running in LocalStack, through LocalStack's KMS. Peers: OpenSSL s_client,
 * curl (HTTP/1.1 and HTTP/2), Node's tls/https, Python's ssl. Run with `npm run test:localstack`.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import {
  havePeer,
  httpGet,
  httpJsonBody,
  jsonLines,
  pythonGetApiTls,
  runPeer,
  type PeerResult,
} from '../helpers/peers';
import { lambdaLogLines, type LocalStackState } from './stack';

const stateFile = process.env.KEYLESS_LOCALSTACK_STATE;
if (!stateFile || !fs.existsSync(stateFile)) {
  throw new Error(
    'KEYLESS_LOCALSTACK_STATE is not set: run this suite with `npm run test:localstack`, which deploys the stack first',
  );
}
const state = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as LocalStackState;
const port = state.edgePort;
const caPem = fs.readFileSync(state.caPath, 'utf8');

function sClient(extra: string[]): Promise<PeerResult> {
  return runPeer(
    'openssl',
    [
      's_client',
      '-connect',
      `127.0.0.1:${port}`,
      '-servername',
      'localhost',
      '-CAfile',
      state.caPath,
      '-tls1_3',
      '-ign_eof',
      ...extra,
    ],
    { input: httpGet('/api/tls'), timeoutMs: 30_000 },
  );
}

/** The demo origin's JSON answer at the end of an s_client transcript. */
const edgeView = httpJsonBody;

function edgeLogs(): Record<string, unknown>[] {
  return jsonLines(fs.readFileSync(state.edgeLog, 'utf8'));
}

describe('the stack on LocalStack', () => {
  it('the edge reports healthy: its key service (the Lambda in LocalStack) answers ping', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: state.adminPort, path: '/healthz' }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
        .on('error', reject);
    });
    expect(status).toBe(200);
  });
});

describe('openssl s_client -tls1_3', () => {
  const maybe = havePeer('openssl') ? it : it.skip;

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
    const count = () => edgeLogs().filter((l) => l.msg === 'handshake' && l.helloRetry === true).length;
    const before = count();
    const r = await sClient(['-groups', 'X448:X25519']);
    expect(r.stdout).toContain('Verify return code: 0 (ok)');
    expect(edgeView(r.stdout).group).toBe('x25519');
    await new Promise((res) => setTimeout(res, 300));
    expect(count()).toBe(before + 1);
  });

  maybe('an ECDSA-only client gets the P-256 certificate, signed by the LocalStack KMS EC key', async () => {
    const r = await sClient(['-sigalgs', 'ecdsa_secp256r1_sha256']);
    expect(r.stdout).toContain('Verify return code: 0 (ok)');
    expect(r.stdout).toMatch(/Peer signature type: ECDSA/);
    expect(edgeView(r.stdout)).toMatchObject({
      protocol: 'TLSv1.3',
      signatureScheme: 'ecdsa_secp256r1_sha256',
      viaEdge: true,
    });
  });
});

describe('curl', () => {
  const maybe = havePeer('curl') ? it : it.skip;
  maybe.each([
    ['--http1.1', '1.1', 'http/1.1'],
    ['--http2', '2', 'h2'],
  ])('%s through the edge to the origin', async (flag, httpVersion, alpn) => {
    const r = await runPeer(
      'curl',
      ['-sS', '--fail', flag, '--tlsv1.3', '--cacert', state.caPath, `https://localhost:${port}/api/tls`],
      { timeoutMs: 30_000 },
    );
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
    const r = await runPeer('curl', ['-sS', '--fail', '--cacert', state.caPath, `https://localhost:${port}/`], {
      timeoutMs: 30_000,
    });
    for (const s of ['TLSv1.3', 'TLS_AES_128_GCM_SHA256', 'x25519', 'rsa_pss_rsae_sha256', 'localhost', 'h2'])
      expect(r.stdout).toContain(s);
  });
});

describe('Node tls and https', () => {
  it('https.get verifies the chain and reaches the origin', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      https
        .get({ host: 'localhost', port, path: '/api/tls', ca: caPem, minVersion: 'TLSv1.3' }, (res) => {
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
      ca: caPem,
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
      ca: state.caPath,
      port,
      setup: 'ctx.minimum_version = ssl.TLSVersion.TLSv1_3',
      reportVersion: true,
    });
    const r = await runPeer('python3', ['-c', script], { timeoutMs: 30_000 });
    expect(r.stderr).toBe('');
    const first = JSON.parse(r.stdout.split('\n')[0]) as { version: string; cipher: string };
    expect(first.version).toBe('TLSv1.3');
    expect(r.stdout).toMatch(/"protocol": ?"TLSv1.3"/);
  });
});

describe('the key operations ran in the Lambda inside LocalStack', () => {
  it("the function's CloudWatch log has one ok record per signature, for both keys, and no secrets", async () => {
    // LocalStack ships Lambda output to CloudWatch Logs asynchronously.
    let records: Record<string, unknown>[] = [];
    for (let i = 0; i < 20; i++) {
      const lines = await lambdaLogLines(state.endpoint, state.region, state.functionName);
      records = jsonLines(lines.map((l) => l.slice(l.indexOf('{'))))
        // One record per request: `msg` (plain JSON lines) or `message` (Powertools logger).
        .filter((r) => (r.msg ?? r.message) === 'key_service_request' && r.op === 'tls13.certificate_verify');
      const keys = new Set(records.filter((r) => r.outcome === 'ok').map((r) => r.key));
      if (keys.has(state.keyNames.rsa) && keys.has(state.keyNames.ecdsa)) break;
      await new Promise((res) => setTimeout(res, 500));
    }
    const ok = records.filter((r) => r.outcome === 'ok');
    expect(new Set(ok.map((r) => r.key))).toEqual(new Set([state.keyNames.rsa, state.keyNames.ecdsa]));
    for (const r of ok) {
      expect(r).toMatchObject({
        id: expect.any(String),
        awsRequestId: expect.any(String),
        latencyMs: expect.any(Number),
      });
      expect(Object.keys(r).filter((k) => /signature$|hash|secret|private/i.test(k))).toEqual([]);
    }
    // The edge saw as many full handshakes as the service signed (no other signer exists).
    const handshakes = edgeLogs().filter((l) => l.msg === 'handshake' && typeof l.keyOperationMs === 'number').length;
    expect(ok.length).toBeGreaterThanOrEqual(handshakes);
  });
});
