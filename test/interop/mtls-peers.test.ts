/**
 * Client certificates (mTLS) with real TLS clients through the real edge assembly (`startEdge`: the
 * configuration file's `clientAuth`, the engine, the HTTP proxy) in front of the real key-service
 * handler behind a local Lambda endpoint: OpenSSL `s_client -cert/-key`, curl `--cert/--key`,
 * Node's tls, and a Go crypto/tls client that signs with the wrong key. The origin echoes the
 * `x-keyless-client-cert-*` headers it receives.
 */
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { parseEdgeConfig } from '../../edge-proxy/src/config';
import { startEdge, type RunningEdge } from '../../edge-proxy/src/edge';
import type { Logger } from '../../edge-proxy/src/observability/log';
import { createLocalHandler } from '../../local/lambda/local-key-service';
import { epochOf, type TicketKeySource } from '../../lambdas/key-service/ticket-keys';
import { startLocalLambda, type LocalLambda } from '../../local/lambda';
import { makeClientPki, makeTestPki, type TestClientCert, type TestClientPki, type TestPki } from '../helpers/certs';
import { havePeer, runPeer, type PeerResult } from '../helpers/peers';

const FUNCTION = 'keyless-key-service';

let pki: TestPki;
let clients: TestClientPki;
let lambda: LocalLambda;
let origin: http.Server;
let edge: RunningEdge;
let port: number;
let caFile: string;
const logs: Array<Record<string, unknown>> = [];
let alice: TestClientCert;
let stranger: TestClientCert;
let expired: TestClientCert;

const ticketKeys: TicketKeySource = {
  epochSeconds: 3600,
  get() {
    const epoch = epochOf(Date.now(), 3600);
    const key = (e: number) => crypto.createHash('sha256').update(`mtls test ticket key ${e}`).digest();
    return Promise.resolve({
      epochSeconds: 3600,
      current: { epoch, key: key(epoch) },
      previous: { epoch: epoch - 1, key: key(epoch - 1) },
      backendMs: 0,
    });
  },
};

beforeAll(async () => {
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  pki = makeTestPki();
  clients = makeClientPki();
  const day = 86_400_000;
  alice = clients.issue('alice', { subject: '/O=Example/CN=alice', san: 'email:alice@example.com' });
  stranger = clients.issue('stranger', { subject: '/CN=stranger', issuer: 'unknown' });
  expired = clients.issue('expired', {
    subject: '/CN=expired',
    notBefore: new Date(Date.now() - 10 * day),
    notAfter: new Date(Date.now() - day),
  });

  const required = pki.leaf('required', 'rsa2048', ['required.test']);
  const optional = pki.leaf('optional', 'p256', ['optional.test']);
  fs.writeFileSync(path.join(pki.dir, 'required-chain.pem'), required.chainPem);
  fs.writeFileSync(path.join(pki.dir, 'optional-chain.pem'), optional.chainPem);
  caFile = path.join(pki.dir, 'clients-ca.pem');
  fs.writeFileSync(caFile, clients.caPem);
  const handler = createLocalHandler({
    keys: [
      { name: 'required', custody: 'file', path: required.keyPath },
      { name: 'optional', custody: 'file', path: optional.keyPath },
    ],
    ticketKeys,
    logger: () => undefined,
  });
  lambda = await startLocalLambda({ port: 0, functions: { [FUNCTION]: (event, context) => handler(event, context) } });
  origin = http.createServer((req, res) => {
    const seen: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (k.startsWith('x-keyless-client-cert') && v !== undefined) seen[k] = v;
    const body = `HEADERS ${JSON.stringify(seen)}\n`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)) });
    res.end(body);
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  const logger = (base: Record<string, unknown>): Logger => ({
    log: (level, msg, fields) => logs.push({ level, msg, ...base, ...fields }),
    child: (f) => logger({ ...base, ...f }),
  });
  // As an operator writes it: relative paths against the configuration file's folder.
  const config = parseEdgeConfig(
    {
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      certificates: [
        {
          chainFile: 'required-chain.pem',
          keyName: 'required',
          clientAuth: { mode: 'required', caFile: 'clients-ca.pem' },
        },
        {
          chainFile: 'optional-chain.pem',
          keyName: 'optional',
          clientAuth: { mode: 'optional', caFile: 'clients-ca.pem' },
        },
      ],
      keyServices: [{ functionName: FUNCTION, region: 'us-east-1', endpoint: `http://127.0.0.1:${lambda.port}` }],
      origin: `http://127.0.0.1:${(origin.address() as AddressInfo).port}`,
      // curl negotiates h2 (the HTTP/2 frontend); s_client, gnutls-cli and Node send no ALPN (HTTP/1.1).
      alpn: ['h2', 'http/1.1'],
      handshakeTimeoutMs: 10_000,
    },
    pki.dir,
  );
  edge = await startEdge(config, logger({}));
  port = edge.tlsPort;
}, 60_000);

afterAll(async () => {
  await edge?.close();
  await lambda?.close();
  await new Promise<void>((r) => (origin ? origin.close(() => r()) : r()));
  pki?.cleanup();
  clients?.cleanup();
});

function headersIn(output: string): Record<string, string> | undefined {
  const m = /HEADERS (\{.*\})/.exec(output);
  return m ? (JSON.parse(m[1]) as Record<string, string>) : undefined;
}

function request(host: string, extraHeaders = ''): string {
  return `GET / HTTP/1.1\r\nHost: ${host}\r\n${extraHeaders}Connection: close\r\n\r\n`;
}

function sClient(
  host: string,
  version: '-tls1_3' | '-tls1_2',
  cert?: TestClientCert,
  extraHeaders = '',
): Promise<PeerResult> {
  const certArgs = cert ? ['-cert', cert.chainPath, '-key', cert.keyPath] : [];
  return runPeer(
    'openssl',
    [
      's_client',
      '-connect',
      `127.0.0.1:${port}`,
      '-servername',
      host,
      '-CAfile',
      pki.caPath,
      version,
      '-ign_eof',
      ...certArgs,
    ],
    { input: request(host, extraHeaders), timeoutMs: 30_000 },
  );
}

function curl(
  host: string,
  version: '1.3' | '1.2',
  cert?: TestClientCert,
  headers: string[] = [],
): Promise<PeerResult> {
  return runPeer(
    'curl',
    [
      '-sS',
      '--http2',
      '-w',
      'HTTP %{http_version}\n',
      `--tlsv${version}`,
      '--tls-max',
      version,
      '--cacert',
      pki.caPath,
      '--resolve',
      `${host}:${port}:127.0.0.1`,
      ...(cert ? ['--cert', cert.chainPath, '--key', cert.keyPath] : []),
      ...headers.flatMap((h) => ['-H', h]),
      `https://${host}:${port}/`,
    ],
    { timeoutMs: 30_000 },
  );
}

const aliceHeaders = (): Record<string, string> => ({
  'x-keyless-client-cert-verified': '1',
  'x-keyless-client-cert-subject': 'CN=alice,O=Example',
  'x-keyless-client-cert-san': 'email:alice@example.com',
  'x-keyless-client-cert-fingerprint-sha256': crypto
    .createHash('sha256')
    .update(new crypto.X509Certificate(alice.certPem).raw)
    .digest('hex'),
});

/** The alert the edge logged for its most recent failed handshake after `before` log lines. */
async function loggedAlert(before: number): Promise<unknown> {
  const deadline = Date.now() + 10_000;
  const find = () =>
    logs
      .slice(before)
      .filter((l) => l.msg === 'handshake failed')
      .pop();
  while (!find() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return find()?.alertSent;
}

describe('openssl s_client -cert/-key', () => {
  const maybe = havePeer('openssl') ? it : it.skip;

  maybe.each(['-tls1_3', '-tls1_2'] as const)('%s: the origin receives the verified identity', async (version) => {
    const r = await sClient('required.test', version, alice);
    expect(r.stdout).toContain('Verify return code: 0 (ok)');
    expect(headersIn(r.stdout)).toEqual(aliceHeaders());
  });

  maybe.each([
    ['-tls1_3', /alert certificate required/i, 'certificate_required'],
    ['-tls1_2', /alert handshake failure/i, 'handshake_failure'],
  ] as const)('%s: required without a certificate is refused', async (version, message, alert) => {
    const before = logs.length;
    const r = await sClient('required.test', version);
    expect(headersIn(r.stdout)).toBeUndefined();
    expect(r.stdout + r.stderr).toMatch(message);
    expect(await loggedAlert(before)).toBe(alert);
  });

  maybe.each([
    ['unknown CA', () => stranger, /alert unknown ca/i, 'unknown_ca'],
    ['expired', () => expired, /alert certificate expired/i, 'certificate_expired'],
  ] as const)('%s client certificate is refused', async (_what, cert, message, alert) => {
    for (const version of ['-tls1_3', '-tls1_2'] as const) {
      const before = logs.length;
      const r = await sClient('required.test', version, cert());
      expect(headersIn(r.stdout)).toBeUndefined();
      expect(r.stdout + r.stderr).toMatch(message);
      expect(await loggedAlert(before)).toBe(alert);
    }
  });
});

describe('curl --cert/--key', () => {
  const maybe = havePeer('curl') ? it : it.skip;

  maybe.each(['1.3', '1.2'] as const)(
    'TLS %s over HTTP/2: verified identity, and forged headers are replaced',
    async (version) => {
      const r = await curl('required.test', version, alice, [
        'x-keyless-client-cert-subject: CN=admin',
        'X-Keyless-Client-Cert-Verified: 1',
        'x-keyless-client-cert-fingerprint-sha256: 00',
      ]);
      expect(r.stderr).toBe('');
      expect(r.stdout).toContain('HTTP 2\n');
      expect(headersIn(r.stdout)).toEqual(aliceHeaders());
    },
  );

  maybe.each(['1.3', '1.2'] as const)(
    'TLS %s: optional host without a certificate passes with verified 0; forgeries are stripped',
    async (version) => {
      const r = await curl('optional.test', version, undefined, [
        'x-keyless-client-cert-verified: 1',
        'x-keyless-client-cert-subject: CN=admin',
      ]);
      expect(r.stderr).toBe('');
      expect(headersIn(r.stdout)).toEqual({ 'x-keyless-client-cert-verified': '0' });
    },
  );

  maybe('TLS 1.3: optional host with a certificate verifies it', async () => {
    const r = await curl('optional.test', '1.3', alice);
    expect(headersIn(r.stdout)).toEqual(aliceHeaders());
  });
});

describe('gnutls-cli --x509certfile/--x509keyfile', () => {
  const maybe = havePeer('gnutls-cli') ? it : it.skip;
  maybe.each([
    ['TLS 1.3', 'NORMAL:-VERS-ALL:+VERS-TLS1.3', '(TLS1.3-X.509)'],
    ['TLS 1.2 ECDHE', 'NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+ECDHE-RSA', '(TLS1.2-X.509)-(ECDHE-'],
    // RSA key exchange with EMS: the key service derives the master secret from the messages through
    // ClientKeyExchange, the client's Certificate included and its CertificateVerify not.
    ['TLS 1.2 RSA key exchange', 'NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+RSA', '(TLS1.2-X.509)-(RSA)'],
  ])('%s: the origin receives the verified identity', async (_name, priority, description) => {
    const r = await runPeer(
      'gnutls-cli',
      [
        `--x509cafile=${pki.caPath}`,
        `--x509certfile=${alice.chainPath}`,
        `--x509keyfile=${alice.keyPath}`,
        '-p',
        String(port),
        '127.0.0.1',
        '--sni-hostname',
        'required.test',
        '--verify-hostname',
        'required.test',
        '--priority',
        priority,
      ],
      { input: request('required.test'), timeoutMs: 30_000 },
    );
    expect(r.stdout).toContain(`- Description: ${description}`);
    expect(headersIn(r.stdout)).toEqual(aliceHeaders());
  });
});

describe('Node tls', () => {
  function get(
    opts: tls.ConnectionOptions,
  ): Promise<{ body: string; session?: Buffer; reused: boolean; error?: string }> {
    return new Promise((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port, servername: 'required.test', ca: pki.caPem, ...opts });
      let body = '';
      let session: Buffer | undefined;
      const timer = setTimeout(() => s.destroy(new Error('client timeout')), 15_000);
      s.on('session', (b: Buffer) => (session = b));
      s.on('secureConnect', () => s.write(request('required.test')));
      s.on('data', (d: Buffer) => (body += d.toString()));
      s.on('error', (e) => {
        clearTimeout(timer);
        resolve({ body, reused: false, error: e.message });
      });
      s.on('end', () => {
        clearTimeout(timer);
        const reused = s.isSessionReused();
        s.destroy();
        resolve({ body, session, reused });
      });
    });
  }

  it('presents a client certificate, and a resumed session keeps the identity', async () => {
    const key = alice.key.export({ type: 'pkcs8', format: 'pem' }) as string;
    const first = await get({ cert: alice.chainPem, key, minVersion: 'TLSv1.3' });
    expect(first.error).toBeUndefined();
    expect(headersIn(first.body)).toEqual(aliceHeaders());
    expect(first.session).toBeDefined();
    // Without a certificate: the identity can only come from the ticket (a PSK handshake asks for none).
    const again = await get({ minVersion: 'TLSv1.3', session: first.session });
    expect(again.reused).toBe(true);
    expect(headersIn(again.body)).toEqual(aliceHeaders());
  });

  it('SIGHUP reload picks up a new CA bundle', async () => {
    const key = (c: TestClientCert) => c.key.export({ type: 'pkcs8', format: 'pem' }) as string;
    const original = fs.readFileSync(caFile, 'utf8');
    try {
      fs.writeFileSync(caFile, fs.readFileSync(path.join(clients.dir, 'unknown', 'ca.pem'), 'utf8'));
      await edge.reloadCertificates();
      const nowTrusted = await get({ cert: stranger.chainPem, key: key(stranger), maxVersion: 'TLSv1.2' });
      expect(headersIn(nowTrusted.body)?.['x-keyless-client-cert-subject']).toBe('CN=stranger');
      const before = logs.length;
      const refused = await get({ cert: alice.chainPem, key: key(alice), maxVersion: 'TLSv1.2' });
      expect(headersIn(refused.body)).toBeUndefined();
      expect(await loggedAlert(before)).toBe('unknown_ca');
    } finally {
      fs.writeFileSync(caFile, original);
      await edge.reloadCertificates();
    }
  });
});

/** A Go crypto/tls client whose certificate is paired with a different private key of the same type. */
const WRONG_KEY_CLIENT = `package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

func main() {
	addr, name, caFile, certFile, version := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5]
	caPem, _ := os.ReadFile(caFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPem)
	certPem, _ := os.ReadFile(certFile)
	block, _ := pem.Decode(certPem)
	wrong, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cfg := &tls.Config{ServerName: name, RootCAs: pool, Certificates: []tls.Certificate{{Certificate: [][]byte{block.Bytes}, PrivateKey: wrong}}}
	if version == "1.2" {
		cfg.MaxVersion = tls.VersionTLS12
	} else {
		cfg.MinVersion = tls.VersionTLS13
	}
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		fmt.Println("ERR", err)
		return
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\\r\\nHost: %s\\r\\nConnection: close\\r\\n\\r\\n", name)
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		fmt.Println("ERR", err)
		return
	}
	fmt.Println("OK", string(buf[:n]))
}
`;

function buildWrongKeyClient(): string | undefined {
  if (!havePeer('go', 'the wrong-key client-certificate test is skipped')) return undefined;
  const dir = path.join(
    os.tmpdir(),
    `keyless-mtls-wrongkey-${crypto.createHash('sha256').update(WRONG_KEY_CLIENT).digest('hex').slice(0, 12)}`,
  );
  const bin = path.join(dir, 'client');
  if (fs.existsSync(bin)) return bin;
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'main.go'), WRONG_KEY_CLIENT);
  const env = {
    ...process.env,
    GOFLAGS: '-mod=mod',
    GOPROXY: 'off',
    GOCACHE: path.join(dir, 'cache'),
    GOPATH: path.join(dir, 'gopath'),
    HOME: dir,
  };
  if (!fs.existsSync(path.join(dir, 'go.mod')))
    execFileSync('go', ['mod', 'init', 'wrongkey'], { cwd: dir, env, stdio: 'ignore' });
  execFileSync('go', ['build', '-o', bin, '.'], {
    cwd: dir,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 240_000,
  });
  return bin;
}

describe('Go crypto/tls with the wrong key for its certificate', () => {
  let bin: string | undefined;
  beforeAll(() => {
    bin = buildWrongKeyClient();
  }, 300_000);

  it.each(['1.3', '1.2'])('TLS %s: decrypt_error', async (version) => {
    if (!bin) return; // reason printed by havePeer
    const before = logs.length;
    const r = await runPeer(bin, [`127.0.0.1:${port}`, 'required.test', pki.caPath, alice.certPath, version], {
      timeoutMs: 30_000,
    });
    expect(r.stdout).toMatch(/^ERR .*error decrypting message/m);
    expect(await loggedAlert(before)).toBe('decrypt_error');
  });
});
