/**
 * HTTP/2 (ALPN h2) through a real Node TLS server → createHttpFrontend → origin, with
 * `http2.connect`. Every case runs twice: with the TLSSocket itself (Node's native stream path) and
 * with the TLSSocket wrapped in a plain JS Duplex shaped like our engine's connection (Node wraps it
 * in a JSStreamSocket) — the path our TLS engine takes.
 */
import { createHash } from 'node:crypto';
import * as http2 from 'node:http2';
import type { DemoOrigin, EdgeView } from '../../../../local/demo-origin';
import {
  deadPort,
  FAKE_HANDSHAKE,
  h2Connect,
  h2Request,
  patternStream,
  type ProxyFixtures,
  type ProxyStack,
  sha256Of,
  sleep,
  startProxyFixtures,
  startProxyStack,
  type TestCert,
} from '../../../helpers/proxy';

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

const stack = (originUrl: string, wrap: boolean, extra: Parameters<typeof startProxyStack>[2] = {}): Promise<Stack> =>
  startProxyStack(cert, originUrl, extra, { wrap });

function closeSession(session: http2.ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => {
    if (session.closed || session.destroyed) resolve();
    else session.close(() => resolve());
  });
}

describe.each([
  { name: 'native TLSSocket', wrap: false },
  { name: 'JS Duplex (engine-shaped)', wrap: true },
])('HTTP/2 frontend over a $name', ({ wrap }) => {
  let s: Stack;
  let session: http2.ClientHttp2Session;
  beforeAll(async () => {
    s = await stack(origin.url, wrap);
    session = await h2Connect(s.edge.port, cert);
  });
  afterAll(async () => {
    await closeSession(session);
    await s.close();
  });

  test('GET through the demo origin reports h2 and the TLS facts', async () => {
    const d = await stack(demo.url, wrap);
    const sess = await h2Connect(d.edge.port, cert);
    try {
      expect(sess.alpnProtocol).toBe('h2');
      const res = await h2Request(sess, { ':path': '/api/tls' });
      expect(res.headers[':status']).toBe(200);
      const view = JSON.parse(res.body.toString()) as EdgeView;
      expect(view).toMatchObject({
        viaEdge: true,
        protocol: 'TLSv1.3',
        sni: 'localhost',
        alpn: 'h2',
        httpVersion: '2',
        clientAddress: '127.0.0.1',
        forwardedProto: 'https',
        forwardedHost: `localhost:${d.edge.port}`,
      });
      if (wrap) {
        // The engine-shaped connection carries the extra handshake facts.
        expect(view).toMatchObject({
          group: FAKE_HANDSHAKE.group,
          signatureScheme: FAKE_HANDSHAKE.signatureScheme,
          keyExchange: FAKE_HANDSHAKE.keyExchange,
          keyOperationMs: 12.346,
          resumed: false,
        });
      }
      const page = await h2Request(sess, { ':path': '/' });
      const html = page.body.toString();
      expect(page.headers['content-type']).toMatch(/^text\/html/);
      expect(html).toContain('<code>TLSv1.3</code>');
      expect(html).toContain('<code>h2</code>');
      expect(html).toContain('<code>HTTP/2</code>');
      if (wrap) {
        expect(html).toContain('<code>x25519</code>');
        expect(html).toContain('<code>ecdsa_secp256r1_sha256</code>');
        expect(html).toContain('<code>12.346 ms</code>');
      }
    } finally {
      await closeSession(sess);
      await d.close();
    }
  });

  test('request headers: pseudo-headers converted, hop-by-hop and spoofed x-keyless-* dropped, XFF appended', async () => {
    const res = await h2Request(session, {
      ':method': 'GET',
      ':path': '/headers?a=1',
      'x-forwarded-for': '203.0.113.9',
      'x-keyless-tls-protocol': 'SSLv3',
      'x-keyless-http-version': '0.9',
      'x-keyless-whatever': 'x',
      cookie: ['a=1', 'b=2'],
      te: 'trailers',
    });
    expect(res.headers[':status']).toBe(200);
    const seen = JSON.parse(res.body.toString()) as {
      headers: Record<string, string>;
      url: string;
      method: string;
      httpVersion: string;
    };
    expect(seen.url).toBe('/headers?a=1');
    expect(seen.httpVersion).toBe('1.1');
    expect(seen.headers.host).toBe(`localhost:${s.edge.port}`);
    expect(seen.headers['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1');
    expect(seen.headers['x-keyless-tls-protocol']).toBe('TLSv1.3');
    expect(seen.headers['x-keyless-http-version']).toBe('2');
    expect(seen.headers['x-keyless-whatever']).toBeUndefined();
    expect(seen.headers.cookie).toBe('a=1; b=2');
    expect(seen.headers.te).toBeUndefined();
    expect(Object.keys(seen.headers).some((k) => k.startsWith(':'))).toBe(false);
  });

  test('POST streams a large body both ways (hash matches)', async () => {
    const size = 6 * 1024 * 1024 + 7;
    const expected = await sha256Of(patternStream(size));
    const res = await h2Request(session, { ':method': 'POST', ':path': '/hash' }, patternStream(size));
    expect(res.headers[':status']).toBe(200);
    const got = JSON.parse(res.body.toString()) as { bytes: number; sha256: string; headers: Record<string, string> };
    expect(got.bytes).toBe(size);
    expect(got.sha256).toBe(expected.sha256);
    expect(got.headers['transfer-encoding']).toBe('chunked');

    const down = await h2Request(session, { ':path': `/download?n=${size}` });
    expect(down.body.length).toBe(size);
    expect(createHash('sha256').update(down.body).digest('hex')).toBe(expected.sha256);
  });

  test('POST with content-length, and concurrent streams on one session', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        const body = Buffer.alloc(1000 + i, i);
        return h2Request(
          session,
          { ':method': 'POST', ':path': `/hash?i=${i}`, 'content-length': String(body.length) },
          body,
        );
      }),
    );
    results.forEach((r, i) => {
      const got = JSON.parse(r.body.toString()) as { bytes: number; headers: Record<string, string> };
      expect(got.bytes).toBe(1000 + i);
      expect(got.headers['content-length']).toBe(String(1000 + i));
    });
  });

  test('response headers: connection-specific ones stripped, set-cookie kept as a list, trailers forwarded', async () => {
    const res = await h2Request(session, { ':path': '/cookies' });
    expect(res.headers[':status']).toBe(200);
    expect(res.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/']);
    expect(res.headers['x-multi']).toBe('one, two');
    expect(res.headers['x-hop']).toBeUndefined();
    expect(res.headers.connection).toBeUndefined();
    expect(res.headers['keep-alive']).toBeUndefined();
    expect(res.body.toString()).toBe('cookies');

    const tr = await h2Request(session, { ':path': '/trailers' });
    expect(tr.body.toString()).toBe('part one;part two');
    expect(tr.trailers['x-checksum']).toBe('abc123');
  });

  test('HEAD and 404 pass through', async () => {
    const head = await h2Request(session, { ':method': 'HEAD', ':path': '/cookies' });
    expect(head.headers[':status']).toBe(200);
    expect(head.body.length).toBe(0);
    const missing = await h2Request(session, { ':path': '/missing' });
    expect(missing.headers[':status']).toBe(404);
    expect(missing.body.toString()).toBe('not found');
  });

  test('Host disagreeing with :authority → 400; CONNECT → 405', async () => {
    const before = origin.requests.length;
    const res = await h2Request(session, {
      ':path': '/headers',
      ':authority': `localhost:${s.edge.port}`,
      host: 'other.example',
    });
    expect(res.headers[':status']).toBe(400);
    const connect = await h2Request(session, { ':method': 'CONNECT', ':authority': 'example.com:443' });
    expect(connect.headers[':status']).toBe(405);
    expect(origin.requests.length).toBe(before);
  });

  test('stream reset mid-upload tears down the origin request; the session keeps working', async () => {
    await new Promise<void>((resolve) => {
      const stream = session.request({ ':method': 'POST', ':path': '/hash?reset=1' }, { endStream: false });
      stream.on('error', () => undefined);
      // A continuous upload: when the reset goes out, END_STREAM has not (Node's close() ends first).
      patternStream(100 * 1024 * 1024).pipe(stream);
      setTimeout(() => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        resolve();
      }, 100);
    });
    await sleep(100);
    expect(origin.requests).toContain('ABORTED /hash?reset=1');
    const ok = await h2Request(session, { ':path': '/headers' });
    expect(ok.headers[':status']).toBe(200);
  });

  test('origin dies mid-response → RST_STREAM for that stream only', async () => {
    await expect(h2Request(session, { ':path': '/cut' })).rejects.toThrow();
    const ok = await h2Request(session, { ':path': '/headers' });
    expect(ok.headers[':status']).toBe(200);
  });

  test('origin down → 502, origin silent → 504', async () => {
    const down = await stack(`http://127.0.0.1:${await deadPort()}`, wrap);
    const sess = await h2Connect(down.edge.port, cert);
    try {
      const res = await h2Request(sess, { ':path': '/' });
      expect(res.headers[':status']).toBe(502);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      expect(res.body.toString()).toMatch(/^502 Bad Gateway/);
      const post = await h2Request(sess, { ':method': 'POST', ':path': '/hash' }, patternStream(256 * 1024));
      expect(post.headers[':status']).toBe(502);
    } finally {
      await closeSession(sess);
      await down.close();
    }
    const slow = await stack(origin.url, wrap, { originTimeoutMs: 250 });
    const sess2 = await h2Connect(slow.edge.port, cert);
    try {
      const res = await h2Request(sess2, { ':path': '/hang' });
      expect(res.headers[':status']).toBe(504);
    } finally {
      await closeSession(sess2);
      await slow.close();
    }
  });

  test('graceful close: GOAWAY after the in-flight stream completes', async () => {
    const g = await stack(origin.url, wrap);
    const sess = await h2Connect(g.edge.port, cert);
    let goaway = false;
    sess.on('goaway', () => (goaway = true));
    const inflight = h2Request(sess, { ':path': '/slow?ms=300' });
    await sleep(80);
    await Promise.all([
      g.frontend.close(),
      inflight.then((r) => {
        expect(r.headers[':status']).toBe(200);
        expect(r.body.toString()).toMatch(/^chunk0;.*chunk9;$/);
      }),
    ]);
    expect(goaway).toBe(true);
    expect(g.frontend.connectionCount).toBe(0);
    await closeSession(sess);
    await g.edge.close();
  });
});

describe('HTTP/2 request framing', () => {
  test('DATA beyond the declared content-length never reaches the origin', async () => {
    const s = await stack(origin.url, false);
    const sess = await h2Connect(s.edge.port, cert);
    sess.on('error', () => undefined);
    try {
      const before = origin.requests.length;
      const outcome = await new Promise<string>((resolve) => {
        const stream = sess.request(
          { ':method': 'POST', ':path': '/hash?cl=1', 'content-length': '5' },
          { endStream: false },
        );
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code ?? err.message}`));
        stream.on('close', () => resolve(`closed rst=${stream.rstCode} body=${Buffer.concat(chunks).toString()}`));
        stream.end('hello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n');
      });
      await sleep(50);
      // nghttp2 enforces content-length (RFC 9113 §8.1.1: a malformed request is a PROTOCOL_ERROR): the
      // stream is reset, or (Node 24's nghttp2) the whole session goes away with GOAWAY; either way the
      // origin never gets more than 5 body bytes, and no smuggled request.
      expect(outcome).toMatch(/ERR_HTTP2_STREAM_ERROR|ERR_HTTP2_SESSION_ERROR|rst=1\b/);
      const seen = origin.requests.slice(before);
      if (seen.includes('POST /hash?cl=1')) expect(seen).toContain('ABORTED /hash?cl=1');
      expect(origin.requests.slice(before).some((r) => r.includes('/smuggled'))).toBe(false);
    } finally {
      await closeSession(sess).catch(() => undefined);
      await s.close();
    }
  });
});
