/**
 * Health of one key service from its recent requests: exponentially weighted moving averages of the
 * error rate and of the latency. Both also decay with time (a half-life), so a key service that was
 * avoided because it looked unhealthy is tried again once its bad record is old enough — that real
 * request is the probe that brings traffic back (fail back) or confirms it is still bad.
 *
 * With hysteresis, so that traffic does not flap between key services: a sample that takes the error
 * rate to `unhealthyErrorRate` or the latency to `slowMs` makes the key service unhealthy, and it is
 * healthy again only once both have fallen below half of those thresholds (by better samples or by
 * time: at least one half-life). One failure is evidence enough to prefer another key service (the
 * first sample is taken as is); slowness needs `minLatencySamples` samples, so a single slow answer
 * (a new connection, a GC pause) does not move traffic to another region.
 */

export interface TargetHealthOptions {
  /** Weight of the newest sample, 0 < alpha ≤ 1. Default 0.3. */
  alpha?: number;
  /** Half-life of the averages without new samples, ms. Default 10 000. */
  halfLifeMs?: number;
  /** Unhealthy at or above this smoothed error rate (healthy again below half of it). Default 0.5. */
  unhealthyErrorRate?: number;
  /** Unhealthy at or above this smoothed latency, ms (healthy again below half of it). Default: latency does not matter. */
  slowMs?: number;
  /** Samples needed (since the start or a reset) before latency can make it unhealthy. Default 3. */
  minLatencySamples?: number;
  now?: () => number;
}

export const HEALTH_DEFAULTS = {
  alpha: 0.3,
  halfLifeMs: 10_000,
  unhealthyErrorRate: 0.5,
  minLatencySamples: 3,
} as const;

export class TargetHealth {
  readonly alpha: number;
  readonly halfLifeMs: number;
  readonly unhealthyErrorRate: number;
  readonly slowMs: number;
  readonly minLatencySamples: number;
  private readonly now: () => number;
  private error = 0;
  private latency = 0;
  private samples = 0;
  private updatedAt = 0;
  private unhealthy = false;

  constructor(options: TargetHealthOptions = {}) {
    this.alpha = options.alpha ?? HEALTH_DEFAULTS.alpha;
    if (!(this.alpha > 0 && this.alpha <= 1)) throw new TypeError('alpha must be in (0, 1]');
    this.halfLifeMs = options.halfLifeMs ?? HEALTH_DEFAULTS.halfLifeMs;
    if (!(this.halfLifeMs > 0)) throw new TypeError('halfLifeMs must be positive');
    this.unhealthyErrorRate = options.unhealthyErrorRate ?? HEALTH_DEFAULTS.unhealthyErrorRate;
    if (!(this.unhealthyErrorRate > 0 && this.unhealthyErrorRate <= 1))
      throw new TypeError('unhealthyErrorRate must be in (0, 1]');
    this.slowMs = options.slowMs ?? Infinity;
    if (!(this.slowMs > 0)) throw new TypeError('slowMs must be positive');
    this.minLatencySamples = options.minLatencySamples ?? HEALTH_DEFAULTS.minLatencySamples;
    if (!Number.isInteger(this.minLatencySamples) || this.minLatencySamples < 1)
      throw new TypeError('minLatencySamples must be a positive integer');
    this.now = options.now ?? (() => performance.now());
  }

  /** Record one request: whether it failed and how long it took. */
  record(failed: boolean, latencyMs: number): void {
    const decay = this.decay();
    this.error *= decay;
    this.latency *= decay;
    if (this.samples === 0) {
      this.error = failed ? 1 : 0;
      this.latency = latencyMs;
    } else {
      this.error += this.alpha * ((failed ? 1 : 0) - this.error);
      this.latency += this.alpha * (latencyMs - this.latency);
    }
    this.samples++;
    this.updatedAt = this.now();
    if (
      this.error >= this.unhealthyErrorRate ||
      (this.latency >= this.slowMs && this.samples >= this.minLatencySamples)
    )
      this.unhealthy = true;
  }

  /** Smoothed error rate, 0..1, decayed to now. */
  get errorRate(): number {
    return this.samples === 0 ? 0 : this.error * this.decay();
  }

  /** Smoothed latency in ms, decayed to now (undefined before the first sample). */
  get latencyMs(): number | undefined {
    return this.samples === 0 ? undefined : this.latency * this.decay();
  }

  get healthy(): boolean {
    if (this.unhealthy && this.errorRate < this.unhealthyErrorRate / 2 && (this.latencyMs ?? 0) < this.slowMs / 2)
      this.unhealthy = false;
    return !this.unhealthy;
  }

  /** Forget everything (e.g. when the circuit breaker closes again). */
  reset(): void {
    this.error = 0;
    this.latency = 0;
    this.samples = 0;
    this.unhealthy = false;
  }

  private decay(): number {
    if (this.samples === 0) return 1;
    const dt = Math.max(0, this.now() - this.updatedAt);
    return Math.pow(0.5, dt / this.halfLifeMs);
  }
}
