/** Edge configuration of key-service failover: per-service endpoints, connect timeout, circuit breaker. */
import { parseEdgeConfig } from '../../../edge-proxy/src/config';
import { edgeConfigError } from '../../helpers/config-error';

const minimal = {
  certificates: [{ chainFile: 'c.pem', keyName: 'localhost' }],
  keyServices: [{ functionName: 'ks', region: 'eu-west-1' }],
  origin: 'http://127.0.0.1:8080',
};

const error = edgeConfigError;

describe('failover configuration', () => {
  it('has defaults', () => {
    const c = parseEdgeConfig(minimal);
    expect(c.keyServiceConnectTimeoutMs).toBe(300);
    expect(c.circuitBreaker).toEqual({
      failureThreshold: 5,
      errorRateThreshold: 0.5,
      minimumRequests: 20,
      windowMs: 10_000,
      cooldownMs: 5_000,
    });
    expect(c.keyServices).toEqual([{ functionName: 'ks', region: 'eu-west-1' }]);
  });

  it('keeps the connect timeout default within a short deadline', () => {
    expect(parseEdgeConfig({ ...minimal, keyOperationTimeoutMs: 200 }).keyServiceConnectTimeoutMs).toBe(200);
  });

  it('takes key services in order, with optional endpoints, and partial breaker settings', () => {
    const c = parseEdgeConfig({
      ...minimal,
      keyServices: [
        { functionName: 'ks', region: 'eu-west-1', endpoint: 'http://127.0.0.1:9001' },
        { functionName: 'arn:aws:lambda:eu-central-1:123456789012:function:ks:live' },
      ],
      keyServiceConnectTimeoutMs: 150,
      circuitBreaker: { failureThreshold: 3, cooldownMs: 2000, errorRateThreshold: 0.25 },
    });
    expect(c.keyServices).toEqual([
      { functionName: 'ks', region: 'eu-west-1', endpoint: 'http://127.0.0.1:9001' },
      { functionName: 'arn:aws:lambda:eu-central-1:123456789012:function:ks:live', region: 'eu-central-1' },
    ]);
    expect(c.keyServiceConnectTimeoutMs).toBe(150);
    expect(c.circuitBreaker).toEqual({
      failureThreshold: 3,
      errorRateThreshold: 0.25,
      minimumRequests: 20,
      windowMs: 10_000,
      cooldownMs: 2000,
    });
  });

  it.each([
    [{ ...minimal, keyServices: [{ functionName: 'ks', endpoint: 'ftp://x' }] }, 'keyServices[0].endpoint'],
    [{ ...minimal, keyServices: [{ functionName: 'ks', endpoint: 'http://x/path' }] }, 'keyServices[0].endpoint'],
    [{ ...minimal, keyServices: [{ functionName: 'ks', endpoint: 'not a url' }] }, 'keyServices[0].endpoint'],
    [{ ...minimal, keyServices: [{ functionName: 'ks', timeout: 5 }] }, 'keyServices[0].timeout'],
    [{ ...minimal, keyServiceConnectTimeoutMs: 0 }, 'keyServiceConnectTimeoutMs'],
    [{ ...minimal, keyServiceConnectTimeoutMs: 2000 }, 'keyServiceConnectTimeoutMs'],
    [{ ...minimal, circuitBreaker: 'on' }, 'circuitBreaker'],
    [{ ...minimal, circuitBreaker: { failureThreshold: 0 } }, 'circuitBreaker.failureThreshold'],
    [{ ...minimal, circuitBreaker: { errorRateThreshold: 1.5 } }, 'circuitBreaker.errorRateThreshold'],
    [{ ...minimal, circuitBreaker: { errorRateThreshold: '50%' } }, 'circuitBreaker.errorRateThreshold'],
    [{ ...minimal, circuitBreaker: { cooldownMs: 1.5 } }, 'circuitBreaker.cooldownMs'],
    [{ ...minimal, circuitBreaker: { halfOpenProbes: 2 } }, 'circuitBreaker.halfOpenProbes'],
  ])('rejects %j naming %s', (raw, field) => {
    const e = error(raw);
    expect(e.field).toBe(field);
    expect(e.message).toMatch(/\. [A-Z]/); // a problem, then how to fix it
  });
});
