/** Edge configuration: defaults, environment overrides, and errors that name the field and the fix. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { assertNoPrivateKey, loadEdgeConfig, parseEdgeConfig } from '../../../edge-proxy/src/config';
import { edgeConfigError } from '../../helpers/config-error';

const minimal = {
  certificates: [{ chainFile: 'c.pem', keyName: 'localhost' }],
  keyServices: [{ functionName: 'keyless-key-service', region: 'eu-west-1' }],
  origin: 'http://127.0.0.1:8080',
};

const error = edgeConfigError;

describe('edge configuration', () => {
  it('fills safe defaults and resolves paths against the file folder', () => {
    const c = parseEdgeConfig(minimal, '/etc/keyless');
    expect(c.listen).toEqual({ host: '0.0.0.0', port: 8443 });
    expect(c.admin).toEqual({ host: '127.0.0.1', port: 9090 });
    expect(c.keyOperationTimeoutMs).toBe(1000);
    expect(c.alpn).toEqual(['h2', 'http/1.1']);
    expect(c.certificates[0].chainFile).toBe('/etc/keyless/c.pem');
  });

  it('takes the region from a Lambda ARN', () => {
    const c = parseEdgeConfig({
      ...minimal,
      keyServices: [{ functionName: 'arn:aws:lambda:ap-northeast-1:123456789012:function:ks:live' }],
    });
    expect(c.keyServices[0].region).toBe('ap-northeast-1');
  });

  it.each([
    [{ ...minimal, certificates: [] }, 'certificates'],
    [{ ...minimal, keyServices: [] }, 'keyServices'],
    [{ ...minimal, origin: 'ftp://x' }, 'origin'],
    [{ ...minimal, origin: 'not a url' }, 'origin'],
    [{ ...minimal, listen: { port: 70000 } }, 'listen.port'],
    [{ ...minimal, alpn: ['spdy/3'] }, 'alpn'],
    [{ ...minimal, keyOperationTimeoutMs: 0 }, 'keyOperationTimeoutMs'],
    [{ ...minimal, colour: 'blue' }, 'colour'],
    [{ ...minimal, certificates: [{ chainFile: 'c.pem', keyName: 'k', hostnames: 'x' }] }, 'certificates[0].hostnames'],
  ])('rejects %j naming %s', (raw, field) => {
    const e = error(raw);
    expect(e.field).toBe(field);
    expect(e.message).toMatch(/\. [A-Z]/); // a problem, then how to fix it
  });

  it('refuses a private key field with an explanation', () => {
    const e = error({ ...minimal, certificates: [{ chainFile: 'c.pem', keyName: 'k', keyFile: 'k.pem' }] });
    expect(e.field).toBe('certificates[0].keyFile');
    expect(e.message).toMatch(/never holds a private key/);
  });

  it('refuses PEM data carrying a private key', () => {
    // The marker is built at run time so no PEM private-key marker is ever committed.
    const ecKeyMarker = `-----BEGIN EC ${'PRIVATE'} KEY-----\n`;
    expect(() =>
      assertNoPrivateKey(`-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n${ecKeyMarker}`, 'chain'),
    ).toThrow(/PRIVATE KEY/);
    expect(() =>
      assertNoPrivateKey('-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n', 'chain'),
    ).not.toThrow();
  });

  it('applies environment overrides on top of the file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edge-config-'));
    const file = path.join(dir, 'edge.json');
    fs.writeFileSync(file, JSON.stringify(minimal));
    const c = loadEdgeConfig(file, {
      KEYLESS_EDGE_PORT: '9443',
      KEYLESS_ADMIN_PORT: '0',
      KEYLESS_ORIGIN: 'http://10.0.0.1:80',
      KEYLESS_KEY_SERVICES: 'a, b',
    });
    expect(c.listen.port).toBe(9443);
    expect(c.admin.port).toBe(0);
    expect(c.origin).toBe('http://10.0.0.1:80');
    expect(c.keyServices.map((k) => k.functionName)).toEqual(['a', 'b']);
    expect(c.certificates[0].chainFile).toBe(path.join(dir, 'c.pem'));
    expect(() => loadEdgeConfig(file, { KEYLESS_EDGE_PORT: 'http' })).toThrow(/KEYLESS_EDGE_PORT/);
    fs.writeFileSync(file, '{ nope');
    expect(() => loadEdgeConfig(file, {})).toThrow(/not valid JSON/);
    fs.rmSync(dir, { recursive: true });
  });
});
