/**
 * Configuration of the proxy mode (`proxy`, KEYLESS_PROXY_MODE, KEYLESS_ORIGIN_PROXY_PROTOCOL): the
 * origin scheme must match the mode, ALPN defaults to none in tcp mode and never offers h2 there,
 * and every error names the field and the fix.
 */
import { ConfigError, loadEdgeConfig, parseEdgeConfig } from '../../../edge-proxy/src/config';
import { configError, edgeConfigError } from '../../helpers/config-error';

const minimal = {
  certificates: [{ chainFile: 'c.pem', keyName: 'localhost' }],
  keyServices: [{ functionName: 'keyless-key-service', region: 'eu-west-1' }],
  origin: 'http://127.0.0.1:8080',
};
const tcp = { ...minimal, origin: 'tcp://10.0.1.5:5432', proxy: { mode: 'tcp' } };

const error = edgeConfigError;

const envError = (env: NodeJS.ProcessEnv): ConfigError =>
  configError(() =>
    loadEdgeConfig(undefined, { KEYLESS_KEY_SERVICES: 'ks', KEYLESS_ORIGIN: 'http://127.0.0.1:8080', ...env }),
  );

describe('proxy configuration', () => {
  test('defaults: http mode, no PROXY header to the origin, HTTP ALPN', () => {
    const c = parseEdgeConfig(minimal);
    expect(c.proxy).toEqual({ mode: 'http', sendProxyProtocol: false, connectTimeoutMs: 5000, idleTimeoutMs: 300_000 });
    expect(c.alpn).toEqual(['h2', 'http/1.1']);
  });

  test('tcp mode: tcp:// origin, no ALPN by default, settings taken', () => {
    const c = parseEdgeConfig({
      ...tcp,
      proxy: { mode: 'tcp', sendProxyProtocol: true, connectTimeoutMs: 2000, idleTimeoutMs: 60_000 },
    });
    expect(c.origin).toBe('tcp://10.0.1.5:5432');
    expect(c.proxy).toEqual({ mode: 'tcp', sendProxyProtocol: true, connectTimeoutMs: 2000, idleTimeoutMs: 60_000 });
    expect(c.alpn).toEqual([]);
    expect(parseEdgeConfig({ ...tcp, alpn: ['imap', 'http/1.1'] }).alpn).toEqual(['imap', 'http/1.1']);
    expect(parseEdgeConfig({ ...tcp, origin: 'tcp://[2001:db8::5]:993' }).origin).toBe('tcp://[2001:db8::5]:993');
  });

  test('http mode with sendProxyProtocol', () => {
    expect(parseEdgeConfig({ ...minimal, proxy: { sendProxyProtocol: true } }).proxy.sendProxyProtocol).toBe(true);
  });

  test.each([
    [
      'an http:// origin in tcp mode',
      { ...tcp, origin: 'http://127.0.0.1:8080' },
      'origin',
      /proxy mode "tcp".*tcp:\/\/host:port.*"http"/,
    ],
    [
      'a tcp:// origin in http mode',
      { ...minimal, origin: 'tcp://127.0.0.1:5432' },
      'origin',
      /proxy mode "http".*set proxy\.mode to "tcp"/,
    ],
    ['a tcp:// origin without a port', { ...tcp, origin: 'tcp://10.0.1.5' }, 'origin', /tcp:\/\/host:port.*e\.g\./],
    ['a tcp:// origin with a path', { ...tcp, origin: 'tcp://10.0.1.5:1/x' }, 'origin', /tcp:\/\/host:port/],
    ['h2 offered in tcp mode', { ...tcp, alpn: ['h2'] }, 'alpn', /"h2" cannot be offered.*proxy mode "http"/],
    ['a non-list ALPN in tcp mode', { ...tcp, alpn: 'imap' }, 'alpn', /list of printable ALPN ids/],
    ['an empty ALPN id', { ...tcp, alpn: [''] }, 'alpn', /list of printable ALPN ids/],
    [
      'an unknown mode',
      { ...minimal, proxy: { mode: 'udp' } },
      'proxy.mode',
      /"udp" is not a proxy mode.*"http".*"tcp"/,
    ],
    [
      'an unknown proxy field',
      { ...minimal, proxy: { mdoe: 'tcp' } },
      'proxy.mdoe',
      /unknown field.*mode, sendProxyProtocol/,
    ],
    ['proxy not an object', { ...minimal, proxy: 'tcp' }, 'proxy', /must be an object.*"mode"/],
    [
      'sendProxyProtocol not a boolean',
      { ...minimal, proxy: { sendProxyProtocol: 'yes' } },
      'proxy.sendProxyProtocol',
      /true or false/,
    ],
    [
      'a zero connect timeout',
      { ...tcp, proxy: { mode: 'tcp', connectTimeoutMs: 0 } },
      'proxy.connectTimeoutMs',
      /whole number/,
    ],
    [
      'a fractional idle timeout',
      { ...tcp, proxy: { mode: 'tcp', idleTimeoutMs: 1.5 } },
      'proxy.idleTimeoutMs',
      /whole number/,
    ],
  ])('refuses %s, naming %s and the fix', (_n, raw, field, message) => {
    const e = error(raw);
    expect(e.field).toBe(field);
    expect(e.message).toMatch(message);
  });

  test('environment: KEYLESS_PROXY_MODE and KEYLESS_ORIGIN_PROXY_PROTOCOL override the file', () => {
    const c = loadEdgeConfig(undefined, {
      KEYLESS_KEY_SERVICES: 'ks',
      KEYLESS_ORIGIN: 'tcp://127.0.0.1:6379',
      KEYLESS_PROXY_MODE: 'tcp',
      KEYLESS_ORIGIN_PROXY_PROTOCOL: '1',
      KEYLESS_CERT_SSM_PREFIX: '/keyless/test/certs/',
    });
    expect(c.proxy.mode).toBe('tcp');
    expect(c.proxy.sendProxyProtocol).toBe(true);
    expect(c.origin).toBe('tcp://127.0.0.1:6379');
    expect(c.alpn).toEqual([]);
  });

  test.each([
    [{ KEYLESS_PROXY_MODE: 'TCP' }, 'KEYLESS_PROXY_MODE', /not http or tcp/],
    [{ KEYLESS_ORIGIN_PROXY_PROTOCOL: 'true' }, 'KEYLESS_ORIGIN_PROXY_PROTOCOL', /not 0 or 1.*Set 1/],
    [{ KEYLESS_PROXY_MODE: 'tcp' }, 'origin', /tcp:\/\/host:port/], // the http:// origin no longer fits
  ])('environment errors name the variable: %j', (env, field, message) => {
    const e = envError({ KEYLESS_CERT_SSM_PREFIX: '/keyless/test/certs/', ...env });
    expect(e.field).toBe(field);
    expect(e.message).toMatch(message);
  });
});
