/**
 * Log sampling: per-connection debug/info lines are written for a configurable share
 * of connections, decided once per connection id; warnings and errors always. Plus the `logging`
 * configuration and its environment overrides.
 */
import { ConfigError, loadEdgeConfig, parseEdgeConfig } from '../../../../edge-proxy/src/config';
import {
  createLogger,
  LogSampler,
  unitHash,
  type Level,
  type Logger,
} from '../../../../edge-proxy/src/observability/log';

function capture(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger('test', 'debug', {}, (l) => lines.push(JSON.parse(l) as Record<string, unknown>));
  return { logger, lines };
}

const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `3fa9c1-${i.toString(36)}`);

describe('LogSampler', () => {
  it('keeps about rate × connections, the same ones every time', () => {
    for (const rate of [0.01, 0.1, 0.25, 0.5]) {
      const s = new LogSampler(rate);
      const kept = ids(20_000).filter((id) => s.sampled(id)).length / 20_000;
      expect(kept).toBeGreaterThan(rate * 0.85);
      expect(kept).toBeLessThan(rate * 1.15 + 0.001);
    }
    const s = new LogSampler(0.3);
    expect(ids(500).every((id) => s.sampled(id) === s.sampled(id))).toBe(true);
    // A lower rate keeps a subset of what a higher rate keeps (the hash is compared to the rate).
    const low = new LogSampler(0.1);
    expect(ids(2000).filter((id) => low.sampled(id) && !s.sampled(id))).toEqual([]);
  });

  it('spreads ids that differ only in a counter', () => {
    const h = ids(10_000).map(unitHash);
    expect(h.every((x) => x >= 0 && x < 1)).toBe(true);
    const deciles = new Array<number>(10).fill(0);
    for (const x of h) deciles[Math.floor(x * 10)]++;
    for (const d of deciles) expect(d).toBeGreaterThan(800);
  });

  it('rate 1 keeps every connection, rate 0 none; out-of-range rates are refused', () => {
    expect(ids(100).every((id) => new LogSampler(1).sampled(id))).toBe(true);
    expect(ids(100).some((id) => new LogSampler(0).sampled(id))).toBe(false);
    expect(() => new LogSampler(1.5)).toThrow(RangeError);
    expect(() => new LogSampler(-0.1)).toThrow(RangeError);
    expect(() => new LogSampler(NaN)).toThrow(RangeError);
  });

  it('a sampled connection logs every line; an unsampled one only warnings and errors', () => {
    const s = new LogSampler(0.5);
    const all = ids(200);
    const inId = all.find((id) => s.sampled(id))!;
    const outId = all.find((id) => !s.sampled(id))!;
    const { logger, lines } = capture();
    for (const id of [inId, outId]) {
      const c = s.forConnection(logger, id).child({ component: 'proxy' });
      for (const level of ['debug', 'info', 'warn', 'error'] as Level[]) c.log(level, `${level} line`, { n: 1 });
    }
    const of = (id: string) => lines.filter((l) => l.conn === id).map((l) => l.level);
    expect(of(inId)).toEqual(['debug', 'info', 'warn', 'error']);
    expect(of(outId)).toEqual(['warn', 'error']);
    // Sampled lines say so, so that counts can be scaled back up; every line has its fields.
    const info = lines.find((l) => l.conn === inId && l.level === 'info')!;
    expect(info).toMatchObject({ msg: 'info line', sampleRate: 0.5, component: 'proxy', n: 1 });
  });

  it('adds no sampleRate at rate 1', () => {
    const { logger, lines } = capture();
    new LogSampler(1).forConnection(logger, 'a-1').log('info', 'x');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ conn: 'a-1', msg: 'x', level: 'info' });
    expect(lines[0]).not.toHaveProperty('sampleRate');
  });
});

describe('createLogger', () => {
  it('writes one JSON object per line at or above its level', () => {
    const out: string[] = [];
    const log = createLogger('edge', 'warn', { a: 1 }, (l) => out.push(l));
    log.log('info', 'hidden');
    log.child({ b: 2 }).log('error', 'shown', { c: 3 });
    expect(out).toHaveLength(1);
    expect(out[0].endsWith('\n')).toBe(true);
    expect(JSON.parse(out[0])).toMatchObject({ level: 'error', component: 'edge', msg: 'shown', a: 1, b: 2, c: 3 });
  });
});

describe('logging configuration', () => {
  const base = {
    certificates: [{ chainFile: 'c.pem', keyName: 'k' }],
    keyServices: [{ functionName: 'ks' }],
    origin: 'http://127.0.0.1:8080',
  };

  it('defaults to info, every connection', () => {
    expect(parseEdgeConfig(base).logging).toEqual({ level: 'info', sampleRate: 1 });
    expect(parseEdgeConfig({ ...base, logging: { level: 'debug', sampleRate: 0.05 } }).logging).toEqual({
      level: 'debug',
      sampleRate: 0.05,
    });
  });

  it.each([
    [{ level: 'verbose' }, 'logging.level'],
    [{ sampleRate: 2 }, 'logging.sampleRate'],
    [{ sampleRate: '0.5' }, 'logging.sampleRate'],
    [{ rate: 0.5 }, 'logging.rate'],
    ['info', 'logging'],
  ])('refuses %j naming %s', (logging, field) => {
    let err: unknown;
    try {
      parseEdgeConfig({ ...base, logging });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe(field);
    expect((err as Error).message).toMatch(/Use|Remove|Write/);
  });

  it('takes KEYLESS_LOG_LEVEL and KEYLESS_LOG_SAMPLE_RATE from the environment', () => {
    const env = {
      KEYLESS_KEY_SERVICES: 'ks',
      KEYLESS_ORIGIN: 'http://127.0.0.1:1',
      KEYLESS_CERT_SSM_PREFIX: '/x/certs/',
    };
    expect(
      loadEdgeConfig(undefined, { ...env, KEYLESS_LOG_LEVEL: 'warn', KEYLESS_LOG_SAMPLE_RATE: '0.25' }).logging,
    ).toEqual({ level: 'warn', sampleRate: 0.25 });
    expect(loadEdgeConfig(undefined, { ...env, KEYLESS_LOG_SAMPLE_RATE: '0' }).logging).toEqual({
      level: 'info',
      sampleRate: 0,
    });
    expect(() => loadEdgeConfig(undefined, { ...env, KEYLESS_LOG_SAMPLE_RATE: '10%' })).toThrow(
      /KEYLESS_LOG_SAMPLE_RATE: 10% is not a fraction/,
    );
    expect(() => loadEdgeConfig(undefined, { ...env, KEYLESS_LOG_LEVEL: 'loud' })).toThrow(
      /logging\.level: "loud" is not a log level/,
    );
  });
});
