/** The demo origin on its own (the end-to-end runs through the edge are in proxy-*.test.ts). */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildSync } from 'esbuild';
import {
  escapeHtml,
  renderDemoPage,
  startDemoOrigin,
  type DemoOrigin,
  type EdgeView,
} from '../../../local/demo-origin';

let origin: DemoOrigin;
beforeAll(async () => {
  origin = await startDemoOrigin({ port: 0, host: '127.0.0.1' });
});
afterAll(() => origin.close());

function get(
  url: string,
  opts: { method?: string; headers?: http.OutgoingHttpHeaders; body?: Buffer } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const EDGE_HEADERS = {
  'x-keyless-tls-protocol': 'TLSv1.3',
  'x-keyless-tls-cipher': 'TLS_CHACHA20_POLY1305_SHA256',
  'x-keyless-tls-group': 'x25519',
  'x-keyless-tls-signature-scheme': 'rsa_pss_rsae_sha256',
  'x-keyless-tls-key-exchange': 'ecdhe',
  'x-keyless-tls-sni': 'demo.example.com',
  'x-keyless-tls-alpn': 'h2',
  'x-keyless-tls-key-op-ms': '23.5',
  'x-keyless-tls-resumed': 'false',
  'x-keyless-http-version': '2',
  'x-keyless-edge-runtime': 'node/24.22.3',
  'x-forwarded-for': '203.0.113.5, 198.51.100.9',
  'x-forwarded-proto': 'https',
  'x-forwarded-host': 'demo.example.com',
  'x-keyless-route': 'demo.example.com',
};

test('startDemoOrigin returns url and port', () => {
  expect(origin.url).toBe(`http://127.0.0.1:${origin.port}`);
  expect(origin.port).toBeGreaterThan(0);
});

test('/healthz', async () => {
  const res = await get(`${origin.url}/healthz`);
  expect(res.status).toBe(200);
  expect(res.body).toBe('ok\n');
});

test('/api/tls reads the edge headers', async () => {
  const res = await get(`${origin.url}/api/tls`, { headers: EDGE_HEADERS });
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(JSON.parse(res.body)).toEqual<EdgeView>({
    viaEdge: true,
    protocol: 'TLSv1.3',
    cipher: 'TLS_CHACHA20_POLY1305_SHA256',
    group: 'x25519',
    signatureScheme: 'rsa_pss_rsae_sha256',
    keyExchange: 'ecdhe',
    sni: 'demo.example.com',
    alpn: 'h2',
    keyOperationMs: 23.5,
    resumed: false,
    clientAddress: '198.51.100.9',
    forwardedFor: ['203.0.113.5', '198.51.100.9'],
    forwardedProto: 'https',
    forwardedHost: 'demo.example.com',
    httpVersion: '2',
    edgeRuntime: 'node/24.22.3',
    originRuntime: `node/${process.versions.node}`,
    route: 'demo.example.com',
    origin: 'demo origin (plain HTTP from the edge)',
  });
});

test('/api/tls without the edge', async () => {
  const view = JSON.parse((await get(`${origin.url}/api/tls`)).body) as EdgeView;
  expect(view.viaEdge).toBe(false);
  expect(view.protocol).toBeNull();
  expect(view.forwardedFor).toEqual([]);
});

test('/ is a self-contained HTML page with every fact', async () => {
  const res = await get(`${origin.url}/`, { headers: EDGE_HEADERS });
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
  expect(res.headers['content-security-policy']).toContain("default-src 'none'");
  for (const text of [
    'TLSv1.3',
    'TLS_CHACHA20_POLY1305_SHA256',
    'x25519',
    'rsa_pss_rsae_sha256',
    'demo.example.com',
    '<code>h2</code>',
    '23.500 ms',
    '<code>no</code>',
    '<code>198.51.100.9</code>',
    '<code>HTTP/2</code>',
    'Edge runtime</th><td><code>node/24.22.3</code>',
    `Origin runtime</th><td><code>node/${process.versions.node}</code>`,
  ]) {
    expect(res.body).toContain(text);
  }
  expect(res.body).not.toMatch(/<(script|img|link|iframe)\b/i);
  expect(res.body).not.toMatch(/(src|href)="(https?:)?\/\//i);
});

test('the page escapes what it shows and explains resumption', () => {
  const html = renderDemoPage({
    viaEdge: true,
    protocol: 'TLSv1.3',
    cipher: null,
    group: null,
    signatureScheme: null,
    keyExchange: null,
    sni: '<script>alert(1)</script>',
    alpn: null,
    keyOperationMs: null,
    resumed: true,
    clientAddress: null,
    forwardedFor: [],
    forwardedProto: null,
    forwardedHost: null,
    httpVersion: '1.1',
    edgeRuntime: null,
    originRuntime: 'node/24.22.3',
    route: null,
    origin: 'api origin',
  });
  expect(html).not.toContain('<script>');
  expect(html).toContain(escapeHtml('<script>alert(1)</script>'));
  expect(html).toContain('session resumed, no private-key operation');
  expect(html).toContain('none negotiated');
  expect(html).toContain('<code>api origin</code>');
});

test('/api/echo hashes the body', async () => {
  const body = Buffer.from('keyless!'.repeat(1000));
  const res = await get(`${origin.url}/api/echo?x=1`, { method: 'POST', body, headers: { 'x-test': 'yes' } });
  const echo = JSON.parse(res.body) as {
    method: string;
    path: string;
    headers: Record<string, string>;
    body: { bytes: number; sha256: string };
  };
  expect(echo).toMatchObject({
    method: 'POST',
    path: '/api/echo?x=1',
    body: { bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') },
  });
  expect(echo.headers['x-test']).toBe('yes');
});

test('404 and 405', async () => {
  expect((await get(`${origin.url}/nope`)).status).toBe(404);
  const post = await get(`${origin.url}/`, { method: 'POST', body: Buffer.from('x') });
  expect(post.status).toBe(405);
  expect(post.headers.allow).toBe('GET, HEAD');
});

test('CLI prints "origin: listening on …" and stops on SIGTERM', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-origin-cli-'));
  try {
    const outfile = path.join(dir, 'demo-origin-main.js');
    buildSync({
      entryPoints: [path.join(__dirname, '../../../local/demo-origin-main.ts')],
      bundle: true,
      platform: 'node',
      outfile,
      logLevel: 'silent',
    });
    const child = spawn(process.execPath, [outfile, '--port', '0', '--host', '127.0.0.1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (d: string) => {
        out += d;
        if (out.includes('\n')) resolve(out.split('\n')[0]);
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}`)));
    });
    expect(line).toMatch(/^origin: listening on http:\/\/127\.0\.0\.1:\d+ \(node\/24\.\d+\.\d+\)$/);
    const url = line.split(' ')[3];
    expect((await get(`${url}/healthz`)).body).toBe('ok\n');
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
