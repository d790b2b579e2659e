/** The routing part of the edge configuration: what parses, and errors that name the field and the fix. */
import { loadEdgeConfig, parseEdgeConfig } from '../../../edge-proxy/src/config';
import { configError, edgeConfigError } from '../../helpers/config-error';

const base = {
  certificates: [{ chainFile: 'c.pem', keyName: 'k' }],
  keyServices: [{ functionName: 'f', region: 'us-east-1' }],
};

describe('routes', () => {
  it('parses routes, origin objects and the default route', () => {
    const c = parseEdgeConfig(
      {
        ...base,
        origin: 'http://10.0.0.1:8080',
        routes: [
          { hosts: ['WWW.Example.com', '*.example.com'], origin: 'https://10.0.0.2' },
          {
            name: 'api',
            hosts: ['api.example.com'],
            retryIdempotent: true,
            origin: {
              url: 'https://api.internal:8443',
              addresses: ['10.0.2.10:8443', '[2001:db8::1]:8443'],
              caFile: 'ca.pem',
              serverName: 'api.internal',
              healthCheck: { path: '/healthz' },
              ejectAfterFailures: 3,
              ejectSeconds: 10,
            },
          },
        ],
      },
      '/etc/keyless',
    );
    expect(c.origin).toBe('http://10.0.0.1:8080');
    expect(c.defaultRoute).toMatchObject({ name: 'default', origin: { scheme: 'http', host: '10.0.0.1', port: 8080 } });
    expect(c.routes[0]).toMatchObject({
      name: 'www.example.com',
      hosts: ['www.example.com', '*.example.com'],
      origin: { scheme: 'https', port: 443, dangerouslySkipTlsVerify: false },
      retryIdempotent: false,
    });
    expect(c.routes[1]).toMatchObject({
      name: 'api',
      retryIdempotent: true,
      origin: {
        addresses: [
          { host: '10.0.2.10', port: 8443 },
          { host: '2001:db8::1', port: 8443 },
        ],
        caFile: '/etc/keyless/ca.pem',
        serverName: 'api.internal',
        healthCheck: { path: '/healthz', intervalSeconds: 10, timeoutMs: 2000 },
        ejectAfterFailures: 3,
        ejectSeconds: 10,
      },
    });
  });

  it('routes without a default route: no origin needed', () => {
    const c = parseEdgeConfig({ ...base, routes: [{ hosts: ['a.example'], origin: 'http://10.0.0.1' }] });
    expect(c.defaultRoute).toBeUndefined();
    expect(c.origin).toBeUndefined();
  });

  it.each([
    ['no origin and no routes', {}, 'origin', /give "routes"/],
    ['empty routes', { routes: [] }, 'routes', /non-empty list/],
    ['a route without hosts', { routes: [{ origin: 'http://a' }] }, 'routes[0].hosts', /non-empty list/],
    [
      'a host with a port',
      { routes: [{ hosts: ['a.example:443'], origin: 'http://a' }] },
      'routes[0].hosts[0]',
      /without a port/,
    ],
    [
      'a two-label wildcard',
      { routes: [{ hosts: ['*.*.example'], origin: 'http://a' }] },
      'routes[0].hosts[0]',
      /one-label wildcard/,
    ],
    [
      'a wildcard over a top-level domain',
      { routes: [{ hosts: ['*.example'], origin: 'http://a' }] },
      'routes[0].hosts[0]',
      /top-level domain/,
    ],
    [
      'a host in two routes',
      {
        routes: [
          { hosts: ['a.example'], origin: 'http://a' },
          { hosts: ['A.example'], origin: 'http://b' },
        ],
      },
      'routes[1].hosts[0]',
      /already routed by routes\[0\]/,
    ],
    [
      'an unknown route field',
      { routes: [{ hosts: ['a.example'], origin: 'http://a', weight: 2 }] },
      'routes[0].weight',
      /known fields/,
    ],
    [
      'tcp:// in http mode',
      { routes: [{ hosts: ['a.example'], origin: 'tcp://a:1' }] },
      'routes[0].origin',
      /proxy.mode to "tcp"/,
    ],
    [
      'an origin with a path',
      { routes: [{ hosts: ['a.example'], origin: { url: 'https://a/x' } }] },
      'routes[0].origin.url',
      /path, query or credentials/,
    ],
    [
      'a bad address',
      { routes: [{ hosts: ['a.example'], origin: { url: 'http://a', addresses: ['10.0.0.1'] } }] },
      'routes[0].origin.addresses[0]',
      /host:port/,
    ],
    [
      'caFile on an http origin',
      { routes: [{ hosts: ['a.example'], origin: { url: 'http://a', caFile: 'ca.pem' } }] },
      'routes[0].origin.caFile',
      /only to https/,
    ],
    [
      'verification off as a string',
      { routes: [{ hosts: ['a.example'], origin: { url: 'https://a', dangerouslySkipTlsVerify: 'yes' } }] },
      'routes[0].origin.dangerouslySkipTlsVerify',
      /true or false/,
    ],
    [
      'a health check path without /',
      { routes: [{ hosts: ['a.example'], origin: { url: 'http://a', healthCheck: { path: 'healthz' } } }] },
      'routes[0].origin.healthCheck.path',
      /starting with "\/"/,
    ],
    [
      'PROXY protocol to a TLS origin',
      { proxy: { sendProxyProtocol: true }, origin: 'https://a' },
      'proxy.sendProxyProtocol',
      /TLS origin/,
    ],
  ])('%s', (_name, extra, field, fix) => {
    const e = edgeConfigError({ ...base, ...extra });
    expect(e.field).toBe(field);
    expect(e.message).toMatch(fix);
  });

  it('tcp mode: tcp:// and tls:// with a port', () => {
    const c = parseEdgeConfig({
      ...base,
      proxy: { mode: 'tcp' },
      alpn: [],
      routes: [{ hosts: ['db.example'], origin: 'tls://db.internal:5433' }],
      origin: 'tcp://10.0.0.1:5432',
    });
    expect(c.routes[0].origin).toMatchObject({ scheme: 'tls', host: 'db.internal', port: 5433 });
    expect(edgeConfigError({ ...base, proxy: { mode: 'tcp' }, origin: 'tls://db.internal' }).message).toMatch(
      /has no port/,
    );
  });

  it('KEYLESS_ROUTES: host[,host]=url;...', () => {
    const c = loadEdgeConfig(undefined, {
      KEYLESS_CERT_DIR: '/tmp',
      KEYLESS_KEY_SERVICES: 'f',
      KEYLESS_ROUTES: 'a.example,b.example=https://10.0.0.5:8443; *.apps.example=http://10.0.0.6:8080',
    });
    expect(c.routes.map((r) => [r.hosts, r.origin.url])).toEqual([
      [['a.example', 'b.example'], 'https://10.0.0.5:8443'],
      [['*.apps.example'], 'http://10.0.0.6:8080'],
    ]);
    expect(
      configError(() =>
        loadEdgeConfig(undefined, { KEYLESS_CERT_DIR: '/tmp', KEYLESS_KEY_SERVICES: 'f', KEYLESS_ROUTES: 'a.example' }),
      ).field,
    ).toBe('KEYLESS_ROUTES');
  });
});
