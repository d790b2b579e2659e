/**
 * The HTTP frontend answers `421 Misdirected Request` (RFC 9110 §15.5.20) when a request names a host
 * the connection's certificate entry does not serve, so a client cannot reach an mTLS host without a
 * certificate by connecting to another host; HTTP/2 may coalesce onto a name the same entry covers
 * under the same mTLS policy (RFC 9113 §9.1.1). `x-keyless-client-cert-verified` always reaches the
 * origin; two Host fields are a 400 (RFC 9112 §3.2). Through the real edge (engine + proxy), with
 * SNI and Host chosen independently, over TLS 1.3, TLS 1.2 and HTTP/2.
 */
import {
  startEchoOrigin,
  startMultiHostEdge,
  rawHttp1,
  h2Session,
  h2Get,
  type EchoOrigin,
  type MultiHostEdge,
} from '../../../helpers/multi-host-edge';

let edge: MultiHostEdge;
let origin: EchoOrigin;

beforeAll(async () => {
  origin = await startEchoOrigin('echo');
  edge = await startMultiHostEdge(
    [
      // The first entry is the default one (clients without SNI).
      { name: 'open', hostnames: ['open.test', 'alias.test'] },
      { name: 'secure', hostnames: ['secure.test'], clientAuth: 'required' },
      { name: 'wide', hostnames: ['*.wide.test'] },
      { name: 'inner', hostnames: ['inner.wide.test'], clientAuth: 'optional' },
    ],
    { origin: origin.url },
  );
}, 60_000);

afterAll(async () => {
  await edge?.stop();
  await origin?.close();
});

const get = (host: string, extra = ''): string =>
  `GET /x HTTP/1.1\r\nHost: ${host}\r\n${extra}Connection: close\r\n\r\n`;
const versions = [
  ['TLS 1.3', 'TLSv1.3'],
  ['TLS 1.2', 'TLSv1.2'],
] as const;

describe.each(versions)('HTTP/1.1 over %s', (_name, version) => {
  const opts = { minVersion: version, maxVersion: version } as const;

  it('SNI without mTLS, Host of an mTLS host: 421, and the origin never sees the request', async () => {
    const before = origin.seen.length;
    const r = await rawHttp1(edge.port, edge.pki.caPem, 'open.test', get('secure.test'), opts);
    expect(r.status).toBe(421);
    expect(r.body).toMatch(/does not serve that host/);
    expect(origin.seen.length).toBe(before);
  });

  it('no SNI (the default entry), Host of an mTLS host: 421', async () => {
    const before = origin.seen.length;
    const r = await rawHttp1(edge.port, edge.pki.caPem, undefined, get('secure.test:443'), opts);
    expect(r.status).toBe(421);
    expect(origin.seen.length).toBe(before);
  });

  it('SNI and Host agree (case and port aside): forwarded, with x-keyless-client-cert-verified: 0', async () => {
    const r = await rawHttp1(edge.port, edge.pki.caPem, 'open.test', get(`OPEN.test:${edge.port}`), opts);
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.body) as { headers: Record<string, string> };
    expect(seen.headers['x-keyless-client-cert-verified']).toBe('0');
    expect(seen.headers['x-keyless-client-cert-subject']).toBeUndefined();
  });

  it('mTLS host with a client certificate and matching Host: forwarded with verified 1', async () => {
    const r = await rawHttp1(edge.port, edge.pki.caPem, 'secure.test', get('secure.test'), {
      ...opts,
      cert: edge.alice.chainPem,
      key: edge.alice.key.export({ format: 'pem', type: 'pkcs8' }),
    });
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.body) as { headers: Record<string, string> };
    expect(seen.headers['x-keyless-client-cert-verified']).toBe('1');
    expect(seen.headers['x-keyless-client-cert-subject']).toBe('CN=alice');
  });

  it('another name of the same certificate: still 421 over HTTP/1.1 (no coalescing)', async () => {
    const r = await rawHttp1(edge.port, edge.pki.caPem, 'open.test', get('alias.test'), opts);
    expect(r.status).toBe(421);
  });

  it('no SNI, Host a name of the default entry: forwarded', async () => {
    const r = await rawHttp1(edge.port, edge.pki.caPem, undefined, get('alias.test'), opts);
    expect(r.status).toBe(200);
  });

  it('absolute-form target naming another host: 421', async () => {
    const r = await rawHttp1(
      edge.port,
      edge.pki.caPem,
      'open.test',
      'GET https://secure.test/x HTTP/1.1\r\nHost: open.test\r\nConnection: close\r\n\r\n',
      opts,
    );
    expect(r.status).toBe(421);
  });

  it('a WebSocket upgrade naming another host: 421', async () => {
    const before = origin.seen.length;
    const r = await rawHttp1(
      edge.port,
      edge.pki.caPem,
      'open.test',
      get(
        'secure.test',
        'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n',
      ).replace('Connection: close', 'Connection: Upgrade'),
      opts,
    );
    expect(r.status).toBe(421);
    expect(origin.seen.length).toBe(before);
  });

  it('two Host fields: 400, nothing forwarded (RFC 9112 §3.2)', async () => {
    const before = origin.seen.length;
    const r = await rawHttp1(
      edge.port,
      edge.pki.caPem,
      'open.test',
      'GET /x HTTP/1.1\r\nHost: open.test\r\nHost: secure.test\r\nConnection: close\r\n\r\n',
      opts,
    );
    expect(r.status).toBe(400);
    expect(origin.seen.length).toBe(before);
    const same = await rawHttp1(
      edge.port,
      edge.pki.caPem,
      'open.test',
      'GET /x HTTP/1.1\r\nHost: open.test\r\nhost: open.test\r\nConnection: close\r\n\r\n',
      opts,
    );
    expect(same.status).toBe(400);
  });
});

describe('HTTP/2', () => {
  it.each(versions)(
    "over %s: an mTLS host on a connection without mTLS: 421; the connection's own name: 200 with verified 0",
    async (_name, version) => {
      const session = h2Session(edge.port, edge.pki.caPem, 'open.test', { minVersion: version, maxVersion: version });
      try {
        const before = origin.seen.length;
        const bad = await h2Get(session, 'secure.test');
        expect(bad.status).toBe(421);
        expect(origin.seen.length).toBe(before);
        const good = await h2Get(session, 'open.test');
        expect(good.status).toBe(200);
        expect(
          (JSON.parse(good.body) as { headers: Record<string, string> }).headers['x-keyless-client-cert-verified'],
        ).toBe('0');
      } finally {
        session.close();
      }
    },
  );

  it('coalescing to another name of the same certificate entry: forwarded', async () => {
    const session = h2Session(edge.port, edge.pki.caPem, 'open.test');
    try {
      const r = await h2Get(session, 'alias.test');
      expect(r.status).toBe(200);
      expect((JSON.parse(r.body) as { host: string }).host).toBe('alias.test');
    } finally {
      session.close();
    }
  });

  it('coalescing onto a name the certificate covers but whose own entry has another mTLS policy: 421', async () => {
    const session = h2Session(edge.port, edge.pki.caPem, 'www.wide.test');
    try {
      expect((await h2Get(session, 'other.wide.test')).status).toBe(200);
      expect((await h2Get(session, 'inner.wide.test')).status).toBe(421);
    } finally {
      session.close();
    }
  });

  it('a verified client on the mTLS host: verified 1', async () => {
    const session = h2Session(edge.port, edge.pki.caPem, 'secure.test', {
      cert: edge.alice.chainPem,
      key: edge.alice.key.export({ format: 'pem', type: 'pkcs8' }),
    });
    try {
      const r = await h2Get(session, 'secure.test');
      expect(r.status).toBe(200);
      expect(
        (JSON.parse(r.body) as { headers: Record<string, string> }).headers['x-keyless-client-cert-verified'],
      ).toBe('1');
    } finally {
      session.close();
    }
  });
});

describe('hosts that name no certificate entry', () => {
  it("an IP-address Host is addressed to the connection's own name (SNI cannot carry an address)", async () => {
    const r = await rawHttp1(edge.port, edge.pki.caPem, 'open.test', get(`127.0.0.1:${edge.port}`));
    expect(r.status).toBe(200);
    const v6 = await rawHttp1(edge.port, edge.pki.caPem, 'open.test', get('[::1]'));
    expect(v6.status).toBe(200);
  });
});
