/**
 * HTTP/1.1 through a real Node TLS server → createHttpFrontend → origin, with `https.request`.
 */
import { createHash } from 'node:crypto';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { SecureConnection } from '../../../../edge-proxy/src/proxy/types';
import type { DemoOrigin, EdgeView } from '../../../../local/demo-origin';
import {
  deadPort,
  httpsRequest,
  patternStream,
  type ProxyFixtures,
  type ProxyStack,
  sha256Of,
  sleep,
  startProxyFixtures,
  startProxyStack,
  type TestCert,
} from '../../../helpers/proxy';

// Compile-time proof that Node's TLSSocket satisfies the engine contract.
const _contract: (s: tls.TLSSocket) => SecureConnection = (s) => s;
void _contract;

let fixtures: ProxyFixtures;
let cert: TestCert;
let origin: ProxyFixtures['origin'];
let demo: DemoOrigin;

beforeAll(async () => {
  fixtures = await startProxyFixtures();
  ({ cert, origin, demo } = fixtures);
});

afterAll(() => fixtures.close());

type Stack = ProxyStack;

const stack = (
  originUrl: string,
  extra: Parameters<typeof startProxyStack>[2] = {},
  edgeOpts: Parameters<typeof startProxyStack>[3] = {},
): Promise<Stack> => startProxyStack(cert, originUrl, extra, edgeOpts);

describe('HTTP/1.1 frontend over a Node TLSSocket', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await stack(origin.url);
  });
  afterAll(() => s.close());

  test('GET through the demo origin reports the TLS facts (ALPN http/1.1)', async () => {
    const d = await stack(demo.url);
    try {
      const res = await httpsRequest(d.edge.port, cert, { path: '/api/tls', alpn: ['http/1.1'] });
      expect(res.status).toBe(200);
      expect(res.alpn).toBe('http/1.1');
      const view = JSON.parse(res.body.toString()) as EdgeView;
      expect(view).toMatchObject({
        viaEdge: true,
        protocol: 'TLSv1.3',
        sni: 'localhost',
        alpn: 'http/1.1',
        httpVersion: '1.1',
        resumed: false,
        clientAddress: '127.0.0.1',
        forwardedProto: 'https',
        forwardedHost: `127.0.0.1:${d.edge.port}`,
      });
      expect(view.cipher).toMatch(/^TLS_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)$/);
      // Node's TLSSocket has no engine facts: those headers are simply absent.
      expect(view.group).toBeNull();
      expect(view.keyOperationMs).toBeNull();
    } finally {
      await d.close();
    }
  });

  test('no ALPN offered → served as HTTP/1.1, ALPN header absent', async () => {
    const res = await httpsRequest(s.edge.port, cert, { path: '/headers' });
    expect(res.status).toBe(200);
    expect(res.alpn).toBe(false);
    const seen = JSON.parse(res.body.toString()) as { headers: Record<string, string>; httpVersion: string };
    expect(seen.headers['x-keyless-tls-alpn']).toBeUndefined();
    expect(seen.headers['x-keyless-tls-protocol']).toBe('TLSv1.3');
    expect(seen.headers['x-keyless-http-version']).toBe('1.1');
    expect(seen.headers['x-keyless-tls-sni']).toBe('localhost');
    expect(seen.headers['x-keyless-tls-resumed']).toBe('false');
    expect(seen.headers.host).toBe(`127.0.0.1:${s.edge.port}`);
    expect(seen.httpVersion).toBe('1.1');
  });

  test('the demo page shows the protocol values', async () => {
    const d = await stack(demo.url);
    try {
      const res = await httpsRequest(d.edge.port, cert, { path: '/', alpn: ['http/1.1'] });
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      const html = res.body.toString();
      expect(html).toContain('<code>TLSv1.3</code>');
      expect(html).toContain('<code>localhost</code>');
      expect(html).toContain('<code>http/1.1</code>');
      expect(html).toContain('<code>HTTP/1.1</code>');
      expect(html).toContain('<code>127.0.0.1</code>');
      expect(html).toMatch(/<code>TLS_[A-Z0-9_]+<\/code>/);
      expect(html).not.toMatch(/(src|href)="https?:/);
    } finally {
      await d.close();
    }
  });

  test('POST streams a large body to the origin (hash matches)', async () => {
    const size = 8 * 1024 * 1024 + 123;
    const expected = await sha256Of(patternStream(size));
    const res = await httpsRequest(s.edge.port, cert, {
      method: 'POST',
      path: '/hash',
      body: patternStream(size),
      headers: { 'content-type': 'application/octet-stream' }, // chunked: no content-length
    });
    expect(res.status).toBe(200);
    const got = JSON.parse(res.body.toString()) as { bytes: number; sha256: string; headers: Record<string, string> };
    expect(got.bytes).toBe(size);
    expect(got.sha256).toBe(expected.sha256);
    expect(got.headers['transfer-encoding']).toBe('chunked');
  });

  test('POST with content-length keeps it', async () => {
    const body = Buffer.from('hello keyless world');
    const res = await httpsRequest(s.edge.port, cert, {
      method: 'PUT',
      path: '/hash',
      body,
      headers: { 'content-length': body.length },
    });
    const got = JSON.parse(res.body.toString()) as { bytes: number; method: string; headers: Record<string, string> };
    expect(got).toMatchObject({ bytes: body.length, method: 'PUT' });
    expect(got.headers['content-length']).toBe(String(body.length));
    expect(got.headers['transfer-encoding']).toBeUndefined();
  });

  test('large streamed download arrives intact', async () => {
    const size = 16 * 1024 * 1024;
    const expected = await sha256Of(patternStream(size));
    const res = await httpsRequest(s.edge.port, cert, { path: `/download?n=${size}` });
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBeUndefined();
    expect(createHash('sha256').update(res.body).digest('hex')).toBe(expected.sha256);
    expect(res.body.length).toBe(size);
  });

  test('X-Forwarded-For is appended; forwarded proto/host overwritten', async () => {
    const res = await httpsRequest(s.edge.port, cert, {
      path: '/headers',
      headers: {
        'x-forwarded-for': '203.0.113.7, 198.51.100.2',
        'x-forwarded-proto': 'http',
        'x-forwarded-host': 'evil.example',
      },
    });
    const seen = JSON.parse(res.body.toString()) as { headers: Record<string, string> };
    expect(seen.headers['x-forwarded-for']).toBe('203.0.113.7, 198.51.100.2, 127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('https');
    expect(seen.headers['x-forwarded-host']).toBe(`127.0.0.1:${s.edge.port}`);
  });

  test('client-supplied x-keyless-* headers are stripped (no spoofing)', async () => {
    const res = await httpsRequest(s.edge.port, cert, {
      path: '/headers',
      headers: [
        'Host',
        'localhost',
        'X-Keyless-TLS-Protocol',
        'SSLv3',
        'x-keyless-tls-resumed',
        'true',
        'X-Keyless-Anything',
        'x',
        'x-keyless-tls-key-op-ms',
        '0',
      ],
    });
    const seen = JSON.parse(res.body.toString()) as { headers: Record<string, string>; rawHeaders: string[] };
    expect(seen.headers['x-keyless-tls-protocol']).toBe('TLSv1.3');
    expect(seen.headers['x-keyless-tls-resumed']).toBe('false');
    expect(seen.headers['x-keyless-anything']).toBeUndefined();
    expect(seen.headers['x-keyless-tls-key-op-ms']).toBeUndefined();
    const names = seen.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    expect(names.filter((n) => n === 'x-keyless-tls-protocol')).toHaveLength(1);
  });

  test('hop-by-hop headers (and Connection-nominated ones) are not forwarded either way', async () => {
    const res = await httpsRequest(s.edge.port, cert, {
      path: '/headers',
      headers: {
        connection: 'keep-alive, x-private-hop',
        'x-private-hop': '1',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        'proxy-connection': 'x',
        'x-end-to-end': 'yes',
      },
    });
    const seen = JSON.parse(res.body.toString()) as { headers: Record<string, string> };
    expect(seen.headers['x-private-hop']).toBeUndefined();
    expect(seen.headers['keep-alive']).toBeUndefined();
    expect(seen.headers.te).toBeUndefined();
    expect(seen.headers['proxy-connection']).toBeUndefined();
    expect(seen.headers['x-end-to-end']).toBe('yes');

    const cookies = await httpsRequest(s.edge.port, cert, { path: '/cookies' });
    expect(cookies.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/']);
    expect(cookies.headers['x-hop']).toBeUndefined();
    expect(cookies.headers['proxy-connection']).toBeUndefined();
    expect(cookies.headers['x-multi']).toBe('one, two');
    expect(cookies.body.toString()).toBe('cookies');
  });

  test('keep-alive: several requests on one client connection', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 5; i++) {
        const res = await httpsRequest(s.edge.port, cert, { path: `/headers?i=${i}`, agent });
        expect(res.status).toBe(200);
        expect((JSON.parse(res.body.toString()) as { url: string }).url).toBe(`/headers?i=${i}`);
      }
    } finally {
      agent.destroy();
    }
  });

  test('absolute-form request target is forwarded as a path with its authority as Host', async () => {
    const raw = await rawRequest(
      s.edge.port,
      `GET http://app.example/headers?q=1 HTTP/1.1\r\nhost: ignored.example\r\nconnection: close\r\n\r\n`,
    );
    expect(raw).toMatch(/^HTTP\/1\.1 200/);
    const seen = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as { url: string; headers: Record<string, string> };
    expect(seen.url).toBe('/headers?q=1');
    expect(seen.headers.host).toBe('app.example');
  });

  test('origin trailers reach an HTTP/1.1 client', async () => {
    const body = await new Promise<{ text: string; trailers: Record<string, string | undefined> }>(
      (resolve, reject) => {
        const req = https.request(
          {
            host: '127.0.0.1',
            port: s.edge.port,
            servername: 'localhost',
            ca: cert.cert,
            path: '/trailers',
            agent: false,
            headers: { te: 'trailers' },
          },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (text += c));
            res.on('end', () => resolve({ text, trailers: res.trailers }));
          },
        );
        req.on('error', reject);
        req.end();
      },
    );
    expect(body.text).toBe('part one;part two');
    expect(body.trailers['x-checksum']).toBe('abc123');
  });

  test('HEAD and 404 pass through', async () => {
    const head = await httpsRequest(s.edge.port, cert, { method: 'HEAD', path: '/cookies' });
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    const missing = await httpsRequest(s.edge.port, cert, { path: '/missing' });
    expect(missing.status).toBe(404);
    expect(missing.body.toString()).toBe('not found');
  });

  test('an origin answering before the upload is complete: response relayed, connection not reused', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const res = await httpsRequest(s.edge.port, cert, {
        method: 'POST',
        path: '/missing',
        body: patternStream(4 * 1024 * 1024),
        agent,
      });
      expect(res.status).toBe(404);
      expect(res.headers.connection).toBe('close');
      const next = await httpsRequest(s.edge.port, cert, { path: '/headers', agent });
      expect(next.status).toBe(200);
    } finally {
      agent.destroy();
    }
  });

  test('access events are reported', async () => {
    s.events.length = 0;
    await httpsRequest(s.edge.port, cert, { path: '/headers?event=1' });
    await sleep(20);
    expect(s.events).toContainEqual(
      expect.objectContaining({
        httpVersion: '1.1',
        method: 'GET',
        path: '/headers?event=1',
        status: 200,
        outcome: 'ok',
        clientAddress: '127.0.0.1',
      }),
    );
  });
});

describe('HTTP/1.1 failure handling', () => {
  test('origin down → 502 with a short plain-text body', async () => {
    const port = await deadPort();
    const s = await stack(`http://127.0.0.1:${port}`);
    try {
      const res = await httpsRequest(s.edge.port, cert, { path: '/' });
      expect(res.status).toBe(502);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      expect(res.body.toString()).toMatch(/^502 Bad Gateway/);
      expect(res.body.length).toBeLessThan(200);
      // POST with a body too, and the edge keeps serving.
      const post = await httpsRequest(s.edge.port, cert, {
        method: 'POST',
        path: '/hash',
        body: patternStream(512 * 1024),
      });
      expect(post.status).toBe(502);
      await sleep(20);
      expect(s.events.map((e) => e.outcome)).toEqual(['origin_unreachable', 'origin_unreachable']);
    } finally {
      await s.close();
    }
  });

  test('origin does not answer → 504', async () => {
    const s = await stack(origin.url, { originTimeoutMs: 300 });
    try {
      const t0 = Date.now();
      const res = await httpsRequest(s.edge.port, cert, { path: '/hang' });
      expect(res.status).toBe(504);
      expect(res.body.toString()).toMatch(/^504 Gateway Timeout/);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    } finally {
      await s.close();
    }
  });

  test('origin dies mid-response → client response aborted, edge keeps serving', async () => {
    const s = await stack(origin.url);
    try {
      await expect(httpsRequest(s.edge.port, cert, { path: '/cut' })).rejects.toThrow();
      const ok = await httpsRequest(s.edge.port, cert, { path: '/headers' });
      expect(ok.status).toBe(200);
    } finally {
      await s.close();
    }
  });

  test('client aborts mid-upload → origin request torn down, no crash', async () => {
    const s = await stack(origin.url);
    try {
      await new Promise<void>((resolve) => {
        const req = https.request({
          host: '127.0.0.1',
          port: s.edge.port,
          servername: 'localhost',
          ca: cert.cert,
          method: 'POST',
          path: '/hash?abort=1',
          agent: false,
          headers: { 'content-length': 10_000_000 },
        });
        req.on('error', () => resolve());
        req.write(Buffer.alloc(100_000));
        setTimeout(() => req.destroy(), 100);
      });
      await sleep(100);
      expect(s.events.at(-1)?.outcome).toBe('client_aborted');
      expect(origin.requests).toContain('ABORTED /hash?abort=1');
      const ok = await httpsRequest(s.edge.port, cert, { path: '/headers' });
      expect(ok.status).toBe(200);
    } finally {
      await s.close();
    }
  });

  test('malformed requests get 400 from Node, never reach the origin', async () => {
    const s = await stack(origin.url);
    try {
      const before = origin.requests.length;
      const res = await rawRequest(s.edge.port, 'GET /x HTTP/1.1\r\n\r\n'); // HTTP/1.1 without Host
      expect(res).toMatch(/^HTTP\/1\.1 400/);
      const smuggle = await rawRequest(
        s.edge.port,
        'POST /hash HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n',
      );
      expect(smuggle).toMatch(/^HTTP\/1\.1 400/);
      expect(origin.requests.length).toBe(before);
    } finally {
      await s.close();
    }
  });

  test('a slow request head is cut off with 408 (headers deadline)', async () => {
    const s = await stack(origin.url, {
      headersTimeoutMs: 300,
      requestTimeoutMs: 1000,
      connectionsCheckingIntervalMs: 50,
    });
    try {
      const res = await rawRequest(s.edge.port, 'GET / HTTP/1.1\r\nhost: localhost\r\n', 3000);
      expect(res).toMatch(/^HTTP\/1\.1 408/);
    } finally {
      await s.close();
    }
  });
});

describe('origin keep-alive', () => {
  /** An origin whose first connection dies (no answer) exactly when its second request arrives. */
  async function flakyOrigin(): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
    let connections = 0;
    const raw = net.createServer((sock) => {
      const n = ++connections;
      let requests = 0;
      sock.on('error', () => undefined);
      sock.on('data', () => {
        requests++;
        if (n === 1 && requests === 2) sock.destroy();
        else sock.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      });
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    return {
      url: `http://127.0.0.1:${(raw.address() as net.AddressInfo).port}`,
      connections: () => connections,
      close: () => new Promise<void>((resolve) => raw.close(() => resolve())),
    };
  }

  test('a pooled origin socket that dies under a GET is retried once on a fresh socket', async () => {
    const o = await flakyOrigin();
    const s = await stack(o.url);
    try {
      expect((await httpsRequest(s.edge.port, cert, { path: '/a' })).status).toBe(200);
      const retried = await httpsRequest(s.edge.port, cert, { path: '/b' });
      expect(retried.status).toBe(200);
      expect(retried.body.toString()).toBe('ok');
      expect(o.connections()).toBe(2);
    } finally {
      await s.close();
      await o.close();
    }
  });

  test('... but a request with a body is not replayed: 502', async () => {
    const o = await flakyOrigin();
    const s = await stack(o.url);
    try {
      expect((await httpsRequest(s.edge.port, cert, { path: '/a' })).status).toBe(200);
      const post = await httpsRequest(s.edge.port, cert, { method: 'POST', path: '/d', body: 'x' });
      expect(post.status).toBe(502);
      expect(o.connections()).toBe(1);
    } finally {
      await s.close();
      await o.close();
    }
  });
});

describe('HTTP/1.1 Upgrade (WebSocket-style) tunnelling', () => {
  test('101 from the origin splices client and origin', async () => {
    const s = await stack(origin.url);
    try {
      const sock = tls.connect({
        host: '127.0.0.1',
        port: s.edge.port,
        servername: 'localhost',
        ca: cert.cert,
        ALPNProtocols: ['http/1.1'],
      });
      await new Promise<void>((resolve, reject) => {
        sock.once('secureConnect', resolve);
        sock.once('error', reject);
      });
      sock.write(
        'GET /ws HTTP/1.1\r\nhost: localhost\r\nconnection: Upgrade\r\nupgrade: echo\r\nx-keyless-tls-protocol: fake\r\n\r\nearly;',
      );
      let got = '';
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => (got += d));
      const until = async (pred: () => boolean): Promise<void> => {
        for (let i = 0; i < 200 && !pred(); i++) await sleep(10);
      };
      await until(() => got.includes('early;'));
      expect(got).toMatch(/^HTTP\/1\.1 101 /);
      expect(got.toLowerCase()).toContain('upgrade: echo');
      expect(got).toContain('x-saw-keyless-protocol: TLSv1.3');
      sock.write('ping!');
      await until(() => got.endsWith('ping!'));
      expect(got.endsWith('early;ping!')).toBe(true);
      sock.end();
      await until(() => s.frontend.connectionCount === 0);
      expect(s.frontend.connectionCount).toBe(0);
      await sleep(20);
      expect(s.events.at(-1)).toMatchObject({ outcome: 'upgraded', status: 101, path: '/ws' });
    } finally {
      await s.close();
    }
  });

  test('data the origin sends just before closing the tunnel is delivered', async () => {
    const s = await stack(origin.url);
    try {
      const res = await rawRequest(
        s.edge.port,
        'GET /bye HTTP/1.1\r\nhost: localhost\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n',
      );
      expect(res).toMatch(/^HTTP\/1\.1 101 /);
      expect(res.endsWith('goodbye'.repeat(10000))).toBe(true);
    } finally {
      await s.close();
    }
  });

  test('origin refusing the upgrade is relayed, origin down → 502', async () => {
    const s = await stack(origin.url);
    try {
      const refused = await rawRequest(
        s.edge.port,
        'GET /refuse HTTP/1.1\r\nhost: localhost\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n',
      );
      expect(refused).toMatch(/^HTTP\/1\.1 403 /);
      expect(refused.endsWith('refused')).toBe(true);
    } finally {
      await s.close();
    }
    const down = await stack(`http://127.0.0.1:${await deadPort()}`);
    try {
      const res = await rawRequest(
        down.edge.port,
        'GET /ws HTTP/1.1\r\nhost: localhost\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n',
      );
      expect(res).toMatch(/^HTTP\/1\.1 502 /);
    } finally {
      await down.close();
    }
  });
});

describe('graceful close', () => {
  test('close() lets an in-flight request finish, then refuses new connections', async () => {
    const s = await stack(origin.url);
    const inflight = httpsRequest(s.edge.port, cert, { path: '/slow?ms=400' });
    await sleep(100);
    const idle = await httpsRequest(s.edge.port, cert, {
      path: '/headers',
      agent: new https.Agent({ keepAlive: true }),
    });
    expect(idle.status).toBe(200);
    expect(s.frontend.connectionCount).toBe(2); // one busy, one idle keep-alive
    const t0 = Date.now();
    const closed = s.frontend.close();
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe(Array.from({ length: 10 }, (_, i) => `chunk${i};`).join(''));
    await closed;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    expect(s.frontend.connectionCount).toBe(0);
    await expect(httpsRequest(s.edge.port, cert, { path: '/headers' })).rejects.toThrow();
    await s.edge.close();
  });
});

/** Send raw bytes over TLS (no ALPN) and collect everything until the server closes. */
function rawRequest(port: number, text: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: cert.cert }, () =>
      sock.write(text),
    );
    let got = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (got += d));
    sock.on('error', () => resolve(got));
    sock.on('close', () => resolve(got));
    const timer = setTimeout(() => {
      sock.destroy();
      if (got) resolve(got);
      else reject(new Error('raw request timed out'));
    }, timeoutMs);
    sock.on('close', () => clearTimeout(timer));
  });
}
