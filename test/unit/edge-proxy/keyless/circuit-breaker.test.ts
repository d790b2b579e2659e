/**
 * The per-key-service circuit breaker on a hand-driven clock (no sleeps): consecutive failures and
 * error rate over a sliding window open it, open rejects at once naming the breaker, a cool-down
 * leads to half-open with exactly one probe, and the probe closes or re-opens it.
 */
import {
  CircuitBreaker,
  type BreakerState,
  type CircuitBreakerOptions,
} from '../../../../edge-proxy/src/keyless/circuit-breaker';
import { KeyOperationError } from '../../../../edge-proxy/src/tls/key-operations';

function setup(options: Partial<CircuitBreakerOptions> = {}) {
  const clock = { t: 1_000 };
  const transitions: string[] = [];
  const breaker = new CircuitBreaker({
    name: 'lambda:ks-eu-west-1',
    failureThreshold: 3,
    errorRateThreshold: 0.5,
    minimumRequests: 10,
    windowMs: 10_000,
    cooldownMs: 5_000,
    now: () => clock.t,
    onStateChange: (to: BreakerState, from: BreakerState) => transitions.push(`${from}->${to}`),
    ...options,
  });
  const fail = (n = 1) => {
    for (let i = 0; i < n; i++) breaker.acquire().failure();
  };
  const succeed = (n = 1) => {
    for (let i = 0; i < n; i++) breaker.acquire().success();
  };
  return { clock, breaker, transitions, fail, succeed };
}

describe('closed', () => {
  it('opens after N consecutive failures', () => {
    const { breaker, fail, transitions } = setup();
    fail(2);
    expect(breaker.state).toBe('closed');
    expect(breaker.consecutiveFailures).toBe(2);
    fail();
    expect(breaker.state).toBe('open');
    expect(transitions).toEqual(['closed->open']);
  });

  it('a success resets the consecutive count', () => {
    const { breaker, fail, succeed } = setup();
    fail(2);
    succeed();
    fail(2);
    expect(breaker.state).toBe('closed');
    expect(breaker.consecutiveFailures).toBe(2);
  });

  it('opens on the error rate over the window once it holds enough requests', () => {
    const { breaker, fail, succeed } = setup({ failureThreshold: 100 });
    // Alternate: never 2 failures in a row, but a 50 % error rate.
    for (let i = 0; i < 4; i++) {
      succeed();
      fail();
    }
    expect(breaker.windowCounts()).toEqual({ requests: 8, failures: 4 });
    expect(breaker.state).toBe('closed'); // below minimumRequests
    succeed();
    fail();
    expect(breaker.state).toBe('open');
  });

  it('forgets failures older than the window', () => {
    const { clock, breaker, fail, succeed } = setup({ failureThreshold: 100 });
    fail();
    succeed();
    fail();
    succeed();
    fail();
    clock.t += 10_001; // those 3 failures leave the window
    succeed(7);
    fail(2);
    expect(breaker.windowCounts()).toEqual({ requests: 9, failures: 2 });
    succeed();
    expect(breaker.state).toBe('closed');
  });

  it('does not open below the error-rate threshold', () => {
    const { breaker, fail, succeed } = setup({ failureThreshold: 100 });
    for (let i = 0; i < 30; i++) {
      succeed(2);
      fail();
    }
    expect(breaker.state).toBe('closed');
  });
});

describe('open', () => {
  it('rejects at once with unavailable naming the breaker, until the cool-down passes', () => {
    const { clock, breaker, fail } = setup();
    fail(3);
    expect(breaker.tryAcquire()).toBeUndefined();
    expect(breaker.allowsRequest()).toBe(false);
    let err: unknown;
    try {
      breaker.acquire();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KeyOperationError);
    expect((err as KeyOperationError).code).toBe('unavailable');
    expect((err as KeyOperationError).message).toMatch(
      /circuit breaker "lambda:ks-eu-west-1" is open, next probe in 5000 ms/,
    );
    clock.t += 4_999;
    expect(breaker.state).toBe('open');
    expect(breaker.retryInMs).toBe(1);
    clock.t += 1;
    expect(breaker.state).toBe('half_open');
    expect(breaker.retryInMs).toBe(0);
  });

  it('ignores outcomes of requests that started before it opened', () => {
    const { clock, breaker, fail } = setup();
    const late = breaker.acquire();
    const lateFailure = breaker.acquire();
    fail(3);
    late.success(); // an old request finishing well does not close it
    lateFailure.failure();
    expect(breaker.state).toBe('open');
    clock.t += 5_000;
    expect(breaker.state).toBe('half_open');
  });
});

describe('half-open', () => {
  function halfOpen() {
    const s = setup();
    s.fail(3);
    s.clock.t += 5_000;
    expect(s.breaker.state).toBe('half_open');
    return s;
  }

  it('lets exactly one probe through', () => {
    const { breaker } = halfOpen();
    expect(breaker.allowsRequest()).toBe(true);
    const probe = breaker.acquire();
    expect(probe.probe).toBe(true);
    expect(breaker.allowsRequest()).toBe(false);
    expect(breaker.tryAcquire()).toBeUndefined();
    expect(() => breaker.acquire()).toThrow(/circuit breaker "lambda:ks-eu-west-1" is half-open, probe in flight/);
    probe.success();
  });

  it('closes when the probe succeeds, with a clean record', () => {
    const { breaker, transitions, fail } = halfOpen();
    breaker.acquire().success();
    expect(breaker.state).toBe('closed');
    expect(breaker.windowCounts()).toEqual({ requests: 0, failures: 0 });
    expect(transitions).toEqual(['closed->open', 'open->half_open', 'half_open->closed']);
    fail(2);
    expect(breaker.state).toBe('closed');
  });

  it('opens again for a new cool-down when the probe fails', () => {
    const { clock, breaker, transitions } = halfOpen();
    breaker.acquire().failure();
    expect(breaker.state).toBe('open');
    expect(breaker.retryInMs).toBe(5_000);
    clock.t += 5_000;
    expect(breaker.state).toBe('half_open');
    expect(transitions).toEqual(['closed->open', 'open->half_open', 'half_open->open', 'open->half_open']);
  });

  it('a released probe frees the slot without deciding anything', () => {
    const { breaker } = halfOpen();
    breaker.acquire().release();
    expect(breaker.state).toBe('half_open');
    const again = breaker.acquire();
    expect(again.probe).toBe(true);
    again.success();
    expect(breaker.state).toBe('closed');
  });

  it('ignores a second settlement of the same permit', () => {
    const { breaker } = halfOpen();
    const probe = breaker.acquire();
    probe.success();
    probe.failure();
    expect(breaker.state).toBe('closed');
    expect(breaker.consecutiveFailures).toBe(0);
  });

  it('ignores closed-state requests finishing while it is half-open', () => {
    const s = setup();
    const old = s.breaker.acquire();
    s.fail(3);
    s.clock.t += 5_000;
    const probe = s.breaker.acquire();
    old.failure();
    expect(s.breaker.state).toBe('half_open');
    probe.success();
    expect(s.breaker.state).toBe('closed');
  });
});

describe('options and reset', () => {
  it.each([
    [{ failureThreshold: 0 }, /failureThreshold/],
    [{ errorRateThreshold: 0 }, /errorRateThreshold/],
    [{ errorRateThreshold: 1.5 }, /errorRateThreshold/],
    [{ minimumRequests: 1.5 }, /minimumRequests/],
    [{ windowMs: -1 }, /windowMs/],
    [{ cooldownMs: 0 }, /cooldownMs/],
  ])('rejects %j', (bad, message) => {
    expect(() => new CircuitBreaker({ name: 'x', ...bad })).toThrow(message);
  });

  it('has production defaults and uses the real clock when none is given', () => {
    const b = new CircuitBreaker({ name: 'x' });
    expect([b.failureThreshold, b.errorRateThreshold, b.minimumRequests, b.windowMs, b.cooldownMs]).toEqual([
      5, 0.5, 20, 10_000, 5_000,
    ]);
    for (let i = 0; i < 5; i++) b.acquire().failure();
    expect(b.state).toBe('open');
  });

  it('reset closes it and forgets history', () => {
    const { breaker, fail, transitions } = setup();
    fail(3);
    breaker.reset();
    expect(breaker.state).toBe('closed');
    expect(breaker.windowCounts().requests).toBe(0);
    expect(transitions).toEqual(['closed->open', 'open->closed']);
  });
});
