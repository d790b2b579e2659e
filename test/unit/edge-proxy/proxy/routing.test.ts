/**
 * Routing to real origins (docs/configuration.md, "Routing"), through the real edge assembly:
 * two hostnames to two origins (curl, and HTTP/2 coalescing on one connection), 421 for a host no
 * route serves, https origins verified against a private CA (wrong name and expired certificate:
 * 502 with the reason logged), several addresses with passive ejection and readmission, retries
 * that never replay a body, all addresses down, /healthz, and SNI routing in tcp mode with a
 * `tls://` origin and `unrecognized_name` for an unrouted name.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { makeClientPki, type TestClientPki } from '../../../helpers/certs';
import {
  h2Get,
  h2Session,
  rawHttp1,
  startEchoOrigin,
  startMultiHostEdge,
  type EchoOrigin,
  type EchoSeen,
  type MultiHostEdge,
} from '../../../helpers/multi-host-edge';
import { havePeer, runPeer } from '../../../helpers/peers';
import { deadPort } from '../../../helpers/proxy';

const get = (host: string, p = '/'): string => `GET ${p} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
const seenOf = (body: string): EchoSeen => JSON.parse(body) as EchoSeen;

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A private CA for origins, and origin certificates from it (good, wrong name, expired). */
let originPki: TestClientPki;
const closers: Array<() => Promise<void> | void> = [];

beforeAll(() => {
  originPki = makeClientPki();
  closers.push(() => originPki.cleanup());
});

afterAll(async () => {
  for (const c of closers.reverse()) await c();
});

function originCert(
  name: string,
  dns: string,
  dates: { notBefore?: Date; notAfter?: Date } = {},
): { key: string; cert: string } {
  const c = originPki.issue(name, { subject: `/CN=${dns}`, san: `DNS:${dns}`, eku: 'serverAuth', ...dates });
  return { key: c.key.export({ format: 'pem', type: 'pkcs8' }) as string, cert: c.certPem };
}

describe('http mode: two hostnames, two origins', () => {
  let edge: MultiHostEdge;
  let a: EchoOrigin;
  let b: EchoOrigin;

  beforeAll(async () => {
    a = await startEchoOrigin('A');
    b = await startEchoOrigin('B', { tls: originCert('b-origin', 'b.internal') });
    const caFile = `${originPki.dir}/root/ca.pem`;
    edge = await startMultiHostEdge([{ name: 'apps', hostnames: ['a.app.test', 'b.app.test', '*.app.test'] }], {
      routes: [
        { hosts: ['a.app.test'], origin: a.url },
        {
          hosts: ['b.app.test'],
          origin: { url: `https://b.internal:${b.port}`, addresses: [`127.0.0.1:${b.port}`], caFile },
        },
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await edge?.stop();
    await a?.close();
    await b?.close();
  });

  it('HTTP/1.1: each host reaches its own origin (the second over TLS with a private CA), x-keyless-route says which route', async () => {
    const ra = await rawHttp1(edge.port, edge.pki.caPem, 'a.app.test', get('a.app.test'));
    const rb = await rawHttp1(edge.port, edge.pki.caPem, 'b.app.test', get('b.app.test'));
    expect([ra.status, rb.status]).toEqual([200, 200]);
    expect(seenOf(ra.body)).toMatchObject({
      origin: 'A',
      host: 'a.app.test',
      headers: { 'x-keyless-route': 'a.app.test' },
    });
    expect(seenOf(rb.body)).toMatchObject({
      origin: 'B',
      host: 'b.app.test',
      headers: { 'x-keyless-route': 'b.app.test' },
    });
  });

  it('HTTP/2 coalescing: one connection, two authorities, two origins', async () => {
    const session = h2Session(edge.port, edge.pki.caPem, 'a.app.test');
    try {
      const [ra, rb] = await Promise.all([h2Get(session, 'a.app.test'), h2Get(session, 'b.app.test')]);
      expect(seenOf(ra.body).origin).toBe('A');
      expect(seenOf(rb.body).origin).toBe('B');
    } finally {
      session.close();
    }
  });

  const maybeCurl = havePeer('curl') ? it : it.skip;
  maybeCurl('curl, HTTP/1.1 and HTTP/2: each host reaches its own origin', async () => {
    for (const proto of ['--http1.1', '--http2']) {
      for (const [host, name] of [
        ['a.app.test', 'A'],
        ['b.app.test', 'B'],
      ]) {
        const r = await runPeer(
          'curl',
          [
            '-sS',
            proto,
            '--cacert',
            edge.pki.caPath,
            '--resolve',
            `${host}:${edge.port}:127.0.0.1`,
            `https://${host}:${edge.port}/`,
          ],
          { timeoutMs: 20_000 },
        );
        expect(r.stderr).toBe('');
        expect(seenOf(r.stdout).origin).toBe(name);
      }
    }
  });

  it('a host the certificate covers but no route serves, without a default route: 421', async () => {
    const r = await rawHttp1(edge.port, edge.pki.caPem, 'c.app.test', get('c.app.test'));
    expect(r.status).toBe(421);
    expect(r.body).toMatch(/no route serves this host/);
    expect(edge.edge.edgeMetrics.registry.renderPrometheus()).toMatch(
      /keyless_edge_origin_failures_total\{route="",reason="no_route"\} [1-9]/,
    );
  });

  it('metrics per route and origin address', async () => {
    const text = edge.edge.edgeMetrics.registry.renderPrometheus();
    expect(text).toMatch(
      new RegExp(
        `keyless_edge_origin_requests_total\\{route="a.app.test",address="127.0.0.1:${a.port}",class="2xx"\\} [1-9]`,
      ),
    );
    expect(text).toMatch(
      new RegExp(
        `keyless_edge_origin_request_duration_seconds_count\\{route="b.app.test",address="127.0.0.1:${b.port}"\\} [1-9]`,
      ),
    );
  });
});

describe('https origins: verification', () => {
  let edge: MultiHostEdge;
  const origins: EchoOrigin[] = [];

  beforeAll(async () => {
    const day = 86_400_000;
    const good = await startEchoOrigin('good', { tls: originCert('good', 'origin.internal') });
    const wrongName = await startEchoOrigin('wrong-name', { tls: originCert('wrong', 'elsewhere.internal') });
    const expired = await startEchoOrigin('expired', {
      tls: originCert('expired', 'origin.internal', {
        notBefore: new Date(Date.now() - 10 * day),
        notAfter: new Date(Date.now() - day),
      }),
    });
    origins.push(good, wrongName, expired);
    const caFile = `${originPki.dir}/root/ca.pem`;
    const origin = (o: EchoOrigin) => ({
      url: `https://origin.internal:${o.port}`,
      addresses: [`127.0.0.1:${o.port}`],
      caFile,
    });
    edge = await startMultiHostEdge([{ name: 'tls', hostnames: ['*.tls.test'] }], {
      routes: [
        { hosts: ['good.tls.test'], origin: origin(good) },
        { hosts: ['wrong.tls.test'], origin: origin(wrongName) },
        { hosts: ['expired.tls.test'], origin: origin(expired) },
        {
          hosts: ['unverified.tls.test'],
          origin: {
            url: `https://origin.internal:${wrongName.port}`,
            addresses: [`127.0.0.1:${wrongName.port}`],
            dangerouslySkipTlsVerify: true,
          },
        },
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await edge?.stop();
    for (const o of origins) await o.close();
  });

  it('an origin certificate from the configured private CA verifies', async () => {
    const r = await rawHttp1(edge.port, edge.pki.caPem, 'good.tls.test', get('good.tls.test'));
    expect(r.status).toBe(200);
    expect(seenOf(r.body).origin).toBe('good');
  });

  it.each([
    ['wrong.tls.test', 'a certificate for another name', /ERR_TLS_CERT_ALTNAME_INVALID/],
    ['expired.tls.test', 'an expired certificate', /CERT_HAS_EXPIRED/],
  ])('%s (%s): 502, the reason in the log, nothing forwarded', async (host, _what, reason) => {
    const before = edge.logs.length;
    const r = await rawHttp1(edge.port, edge.pki.caPem, host, get(host));
    expect(r.status).toBe(502);
    expect(r.body).toMatch(/origin certificate verification failed/);
    const line = edge.logs.slice(before).find((l) => l.msg === 'proxy: origin certificate verification failed');
    expect(line).toBeDefined();
    expect(String(line?.code)).toMatch(reason);
    expect(origins.every((o) => !o.seen.some((s) => s.host === host))).toBe(true);
  });

  it('dangerouslySkipTlsVerify: forwarded, and the edge warned about it at startup', async () => {
    const r = await rawHttp1(edge.port, edge.pki.caPem, 'unverified.tls.test', get('unverified.tls.test'));
    expect(r.status).toBe(200);
    expect(
      edge.logs.some(
        (l) =>
          l.level === 'warn' &&
          /TLS VERIFICATION OF THIS ORIGIN IS OFF/.test(String(l.msg)) &&
          l.route === 'unverified.tls.test',
      ),
    ).toBe(true);
  });
});

describe('several addresses: balancing, ejection, readmission, retries', () => {
  let edge: MultiHostEdge;
  let origins: EchoOrigin[];
  let agent: https.Agent;
  let dropped = 0;

  beforeAll(async () => {
    origins = [await startEchoOrigin('o1'), await startEchoOrigin('o2'), await startEchoOrigin('o3')];
    const dead = [await deadPort(), await deadPort(), await deadPort()];
    // An origin that reads a POST's body and then drops the connection without answering.
    const dropper = http.createServer((req) =>
      req
        .on('data', () => undefined)
        .on('end', () => {
          if (req.method === 'POST') dropped++;
          req.socket.destroy();
        }),
    );
    await new Promise<void>((r) => dropper.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise<void>((r) => dropper.close(() => r())));
    const dropperPort = (dropper.address() as AddressInfo).port;
    edge = await startMultiHostEdge([{ name: 'pool', hostnames: ['*.pool.test'] }], {
      proxy: { connectTimeoutMs: 1000 },
      routes: [
        {
          hosts: ['three.pool.test'],
          retryIdempotent: true,
          origin: {
            url: 'http://three.internal',
            addresses: origins.map((o) => `127.0.0.1:${o.port}`),
            ejectAfterFailures: 2,
            ejectSeconds: 2,
          },
        },
        {
          hosts: ['dead.pool.test'],
          origin: {
            url: 'http://dead.internal',
            addresses: dead.map((p) => `127.0.0.1:${p}`),
            ejectAfterFailures: 1,
            ejectSeconds: 60,
          },
        },
        {
          hosts: ['drop.pool.test'],
          retryIdempotent: true,
          origin: {
            url: 'http://drop.internal',
            addresses: [`127.0.0.1:${dropperPort}`, `127.0.0.1:${origins[0].port}`],
          },
        },
      ],
    });
    agent = new https.Agent({ keepAlive: true, maxSockets: 4 });
  }, 60_000);

  afterAll(async () => {
    agent?.destroy();
    await edge?.stop();
    for (const o of origins) await o.close();
  });

  function request(host: string, method = 'GET', body?: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: edge.port,
          servername: host,
          ca: edge.pki.caPem,
          agent,
          method,
          path: '/',
          headers: { host, ...(body ? { 'content-length': String(body.length) } : {}) },
        },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.setTimeout(15_000, () => req.destroy(new Error('client timeout')));
      req.on('error', reject);
      req.end(body);
    });
  }

  const addressStatus = async (route: string) =>
    (await edge.edge.checkHealth()).origins.find((o) => o.route === route)!.addresses;

  it('spreads load over the addresses', async () => {
    const before = origins.map((o) => o.seen.length);
    await Promise.all(Array.from({ length: 30 }, () => request('three.pool.test')));
    const got = origins.map((o, i) => o.seen.length - before[i]);
    expect(got.reduce((x, y) => x + y, 0)).toBe(30);
    expect(got.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
  });

  it('one of three killed mid-load: no failed GET, the address is ejected, and readmitted once it is back', async () => {
    const victim = origins[1];
    const port = victim.port;
    let stop = false;
    const failures: string[] = [];
    const workers = Array.from({ length: 4 }, async () => {
      while (!stop) {
        const r = await request('three.pool.test').catch((e: Error) => ({ status: 0, body: e.message }));
        if (r.status !== 200) failures.push(`${r.status} ${r.body}`);
      }
    });
    await new Promise((r) => setTimeout(r, 200));
    await victim.close();
    await until('the killed address is ejected', async () =>
      (await addressStatus('three.pool.test')).some((a) => a.address === `127.0.0.1:${port}` && !a.healthy),
    );
    const health = await edge.edge.checkHealth();
    expect(health.ok).toBe(true); // an origin never fails the edge's own health
    origins[1] = await startEchoOrigin('o2-again', { port });
    await until('the address is back in service', () => origins[1].seen.length > 0);
    stop = true;
    await Promise.all(workers);
    expect(failures).toEqual([]);
    expect(edge.edge.edgeMetrics.registry.renderPrometheus()).toMatch(
      new RegExp(`keyless_edge_origin_ejections_total\\{route="three.pool.test",address="127.0.0.1:${port}"\\} [1-9]`),
    );
  }, 60_000);

  it('a POST is never replayed: the origin dropped it after reading the body → 502, received once', async () => {
    const seenBefore = origins[0].seen.filter((s) => s.method === 'POST').length;
    const droppedBefore = dropped;
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => request('drop.pool.test', 'POST', `body-${i}`)),
    );
    // The ones that went to the dropping address fail; none of them reached the other address too.
    const failed = results.filter((r) => r.status === 502).length;
    const ok = results.filter((r) => r.status === 200).length;
    expect(failed + ok).toBe(6);
    expect(failed).toBeGreaterThan(0);
    expect(dropped - droppedBefore).toBe(failed);
    expect(origins[0].seen.filter((s) => s.method === 'POST').length - seenBefore).toBe(ok);
  });

  it('an idempotent GET on a route that allows retries goes to another address when one drops it', async () => {
    const results = await Promise.all(Array.from({ length: 6 }, () => request('drop.pool.test')));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
  });

  it('all addresses down: 502 saying so, at once after ejection; /healthz lists them and stays 200', async () => {
    const first = await request('dead.pool.test');
    expect(first.status).toBe(502);
    const next = await request('dead.pool.test');
    expect(next.status).toBe(502);
    expect(next.body).toMatch(/every origin address of route dead.pool.test is down/);
    const res = await new Promise<{ status: number; body: string }>((resolve) => {
      http.get({ host: '127.0.0.1', port: edge.edge.adminPort, path: '/healthz' }, (r) => {
        let t = '';
        r.on('data', (d: Buffer) => (t += d.toString()));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body: t }));
      });
    });
    expect(res.status).toBe(200);
    const dead = (
      JSON.parse(res.body) as { origins: Array<{ route: string; addresses: Array<{ healthy: boolean }> }> }
    ).origins.find((o) => o.route === 'dead.pool.test');
    expect(dead?.addresses).toHaveLength(3);
    expect(dead?.addresses.every((a) => !a.healthy)).toBe(true);
    expect(edge.edge.edgeMetrics.registry.renderPrometheus()).toMatch(
      /keyless_edge_origin_failures_total\{route="dead.pool.test",reason="all_down"\} [1-9]/,
    );
  });
});

describe('tcp mode: SNI routing', () => {
  let edge: MultiHostEdge;
  const servers: net.Server[] = [];

  /** A TCP origin that answers every chunk with `<name>:<chunk>` (over TLS with `tlsOpts`). */
  async function tcpOrigin(name: string, tlsOpts?: { key: string; cert: string }): Promise<number> {
    const onConn = (s: net.Socket): void => {
      s.on('data', (d: Buffer) => s.write(`${name}:${d.toString()}`));
      s.on('error', () => undefined);
    };
    const server = tlsOpts ? tls.createServer(tlsOpts, onConn) : net.createServer(onConn);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push(server);
    return (server.address() as AddressInfo).port;
  }

  beforeAll(async () => {
    const plain = await tcpOrigin('plain');
    const secure = await tcpOrigin('secure', originCert('tcp-origin', 'db.internal'));
    edge = await startMultiHostEdge([{ name: 'tcp', hostnames: ['*.tcp.test'] }], {
      proxy: { mode: 'tcp' },
      alpn: [],
      routes: [
        { hosts: ['plain.tcp.test'], origin: `tcp://127.0.0.1:${plain}` },
        {
          hosts: ['secure.tcp.test'],
          origin: {
            url: `tls://db.internal:${secure}`,
            addresses: [`127.0.0.1:${secure}`],
            caFile: `${originPki.dir}/root/ca.pem`,
          },
        },
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await edge?.stop();
    for (const s of servers) s.close();
  });

  function exchange(servername: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: edge.port, servername, ca: edge.pki.caPem });
      const timer = setTimeout(() => s.destroy(new Error('client timeout')), 10_000);
      s.on('secureConnect', () => s.write('hello'));
      s.on('data', (d: Buffer) => {
        clearTimeout(timer);
        resolve(d.toString());
        s.destroy();
      });
      s.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  it('two names reach two TCP origins, one of them over tls:// with a private CA', async () => {
    expect(await exchange('plain.tcp.test')).toBe('plain:hello');
    expect(await exchange('secure.tcp.test')).toBe('secure:hello');
  });

  it('a server name no route serves: the handshake fails with unrecognized_name', async () => {
    await expect(exchange('other.tcp.test')).rejects.toThrow(/unrecognized name|alert number 112/i);
    expect(edge.logs.some((l) => l.msg === 'handshake failed' && l.alertSent === 'unrecognized_name')).toBe(true);
  });
});
