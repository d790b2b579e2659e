/**
 * curl (OpenSSL + nghttp2) against a Node TLS server → createHttpFrontend → origin: HTTP/2 and
 * HTTP/1.1 (including `Expect: 100-continue` uploads), over both connection shapes. Skipped when
 * curl is not installed.
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHttpFrontend } from '../../../../edge-proxy/src/proxy/http-proxy';
import type { HttpFrontend } from '../../../../edge-proxy/src/proxy/types';
import { startDemoOrigin, type DemoOrigin, type EdgeView } from '../../../../local/demo-origin';
import {
  makeCert,
  startTestOrigin,
  startTlsEdge,
  type TestCert,
  type TestServer,
  type TlsEdge,
} from '../../../helpers/proxy';

const hasCurl = spawnSync('curl', ['--version']).status === 0;

function curl(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // Async on purpose: the servers under test live in this process's event loop.
    execFile('curl', args, { maxBuffer: 64 * 1024 * 1024, timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`curl ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

(hasCurl ? describe : describe.skip).each([
  { name: 'native TLSSocket', wrap: false },
  { name: 'JS Duplex (engine-shaped)', wrap: true },
])('curl through the frontend over a $name', ({ wrap }) => {
  let cert: TestCert;
  let demo: DemoOrigin;
  let origin: TestServer;
  let demoFrontend: HttpFrontend;
  let originFrontend: HttpFrontend;
  let demoEdge: TlsEdge;
  let originEdge: TlsEdge;
  let upload: string;
  let uploadSha: string;

  const base = (edge: TlsEdge): string[] => [
    '-sS',
    '--fail-with-body',
    '--cacert',
    cert.caPath,
    '--resolve',
    `localhost:${edge.port}:127.0.0.1`,
  ];

  beforeAll(async () => {
    cert = makeCert();
    demo = await startDemoOrigin({ port: 0, host: '127.0.0.1' });
    origin = await startTestOrigin();
    demoFrontend = createHttpFrontend({ origin: demo.url });
    originFrontend = createHttpFrontend({ origin: origin.url });
    demoEdge = await startTlsEdge(demoFrontend, cert, { wrap });
    originEdge = await startTlsEdge(originFrontend, cert, { wrap });
    const data = Buffer.alloc(3 * 1024 * 1024 + 11);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 9)) & 0xff;
    upload = path.join(cert.dir, 'upload.bin');
    fs.writeFileSync(upload, data);
    uploadSha = createHash('sha256').update(data).digest('hex');
  });

  afterAll(async () => {
    await demoFrontend.close();
    await originFrontend.close();
    await demoEdge.close();
    await originEdge.close();
    await demo.close();
    await origin.close();
    cert.cleanup();
  });

  test('curl --http2: demo JSON says h2 / HTTP/2 / TLSv1.3', async () => {
    const { stdout } = await curl([
      ...base(demoEdge),
      '--http2',
      '-w',
      '\n%{http_version}',
      `https://localhost:${demoEdge.port}/api/tls`,
    ]);
    const [json, version] = stdout.trimEnd().split(/\n(?=[^\n]*$)/);
    expect(version).toBe('2');
    const view = JSON.parse(json) as EdgeView;
    expect(view).toMatchObject({
      protocol: 'TLSv1.3',
      alpn: 'h2',
      httpVersion: '2',
      sni: 'localhost',
      clientAddress: '127.0.0.1',
    });
  });

  test('curl --http2: the demo page', async () => {
    const { stdout } = await curl([...base(demoEdge), '--http2', `https://localhost:${demoEdge.port}/`]);
    expect(stdout).toContain('<code>TLSv1.3</code>');
    expect(stdout).toContain('<code>h2</code>');
    expect(stdout).toContain('<code>HTTP/2</code>');
  });

  test('curl --http1.1: demo JSON says http/1.1', async () => {
    const { stdout } = await curl([
      ...base(demoEdge),
      '--http1.1',
      '-w',
      '\n%{http_version}',
      `https://localhost:${demoEdge.port}/api/tls`,
    ]);
    const [json, version] = stdout.trimEnd().split(/\n(?=[^\n]*$)/);
    expect(version).toBe('1.1');
    expect(JSON.parse(json)).toMatchObject({ alpn: 'http/1.1', httpVersion: '1.1' });
  });

  test.each(['--http2', '--http1.1'])(
    'curl %s uploads a 3 MiB file intact (HTTP/1.1: Expect: 100-continue)',
    async (flag) => {
      const { stdout, stderr } = await curl([
        ...base(originEdge),
        flag,
        '-v',
        '-H',
        'content-type: application/octet-stream',
        '--data-binary',
        `@${upload}`,
        `https://localhost:${originEdge.port}/hash`,
      ]);
      const got = JSON.parse(stdout) as { bytes: number; sha256: string; headers: Record<string, string> };
      expect(got.bytes).toBe(fs.statSync(upload).size);
      expect(got.sha256).toBe(uploadSha);
      expect(got.headers.expect).toBeUndefined();
      if (flag === '--http1.1') expect(stderr).toMatch(/HTTP\/1\.1 100 Continue/);
    },
  );
});
