/**
 * A circuit breaker for one key service (docs/architecture.md, "Deployables"): closed → open after N consecutive failures or an
 * error rate over a sliding window; open rejects at once (no request leaves the edge) for a
 * cool-down; then half-open lets exactly one probe through; the probe's success closes it, its
 * failure opens it again for another cool-down.
 *
 * Callers take a permit before each request and settle it with its outcome. Outcomes of requests that
 * started in an earlier state (e.g. still in flight when the breaker opened) are ignored, so only what
 * the current state decided to let through can change it. The clock is injectable: unit tests drive
 * it by hand and never sleep.
 */
import { KeyOperationError } from '../tls/key-operations';

export type BreakerState = 'closed' | 'open' | 'half_open';

export interface CircuitBreakerOptions {
  /** For messages, logs and metrics, e.g. the target's name. */
  name: string;
  /** Consecutive failures that open the breaker. Default 5. */
  failureThreshold?: number;
  /** Error rate (0 < r ≤ 1) over the window that opens the breaker. Default 0.5. */
  errorRateThreshold?: number;
  /** Requests the window must hold before the error rate is considered. Default 20. */
  minimumRequests?: number;
  /** Length of the sliding window of the error rate, ms. Default 10 000. */
  windowMs?: number;
  /** How long the breaker stays open before it lets one probe through, ms. Default 5 000. */
  cooldownMs?: number;
  /** Monotonic milliseconds; default `performance.now()`. */
  now?: () => number;
  /** Called on every transition (including the lazy open → half_open one). */
  onStateChange?: (to: BreakerState, from: BreakerState, breaker: CircuitBreaker) => void;
}

export const BREAKER_DEFAULTS = {
  failureThreshold: 5,
  errorRateThreshold: 0.5,
  minimumRequests: 20,
  windowMs: 10_000,
  cooldownMs: 5_000,
} as const;

/** The right to send one request; settle it exactly once (later calls are ignored). */
export interface BreakerPermit {
  /** True when this request is the half-open probe. */
  readonly probe: boolean;
  success(): void;
  failure(): void;
  /** Neither success nor failure (e.g. never sent); frees the half-open probe slot. */
  release(): void;
}

/** Number of buckets of the sliding window (its resolution is windowMs / BUCKETS). */
const BUCKETS = 10;

export class CircuitBreaker {
  readonly name: string;
  readonly failureThreshold: number;
  readonly errorRateThreshold: number;
  readonly minimumRequests: number;
  readonly windowMs: number;
  readonly cooldownMs: number;
  private readonly now: () => number;
  private readonly onStateChange?: CircuitBreakerOptions['onStateChange'];

  private current: BreakerState = 'closed';
  /** Incremented on every transition; a permit only counts in the generation it was taken in. */
  private generation = 0;
  private openedAt = 0;
  private consecutive = 0;
  private probeInFlight = false;
  private readonly bucketStart: number[] = new Array<number>(BUCKETS).fill(-Infinity);
  private readonly bucketOk: number[] = new Array<number>(BUCKETS).fill(0);
  private readonly bucketFailed: number[] = new Array<number>(BUCKETS).fill(0);

  constructor(options: CircuitBreakerOptions) {
    this.name = options.name;
    this.failureThreshold = positiveInt(
      options.failureThreshold ?? BREAKER_DEFAULTS.failureThreshold,
      'failureThreshold',
    );
    const rate = options.errorRateThreshold ?? BREAKER_DEFAULTS.errorRateThreshold;
    if (!(rate > 0 && rate <= 1)) throw new TypeError('errorRateThreshold must be in (0, 1]');
    this.errorRateThreshold = rate;
    this.minimumRequests = positiveInt(options.minimumRequests ?? BREAKER_DEFAULTS.minimumRequests, 'minimumRequests');
    this.windowMs = positiveInt(options.windowMs ?? BREAKER_DEFAULTS.windowMs, 'windowMs');
    this.cooldownMs = positiveInt(options.cooldownMs ?? BREAKER_DEFAULTS.cooldownMs, 'cooldownMs');
    this.now = options.now ?? (() => performance.now());
    this.onStateChange = options.onStateChange;
  }

  /** The current state; an open breaker whose cool-down has passed reads (and becomes) half_open. */
  get state(): BreakerState {
    if (this.current === 'open' && this.now() - this.openedAt >= this.cooldownMs) this.transition('half_open');
    return this.current;
  }

  /** Milliseconds until an open breaker lets a probe through (0 unless open). */
  get retryInMs(): number {
    return this.state === 'open' ? Math.max(0, this.cooldownMs - (this.now() - this.openedAt)) : 0;
  }

  get consecutiveFailures(): number {
    return this.consecutive;
  }

  /** Requests and failures in the sliding window. */
  windowCounts(): { requests: number; failures: number } {
    const now = this.now();
    let ok = 0;
    let failed = 0;
    for (let i = 0; i < BUCKETS; i++) {
      if (now - this.bucketStart[i] < this.windowMs) {
        ok += this.bucketOk[i];
        failed += this.bucketFailed[i];
      }
    }
    return { requests: ok + failed, failures: failed };
  }

  /** Whether a request would be let through now (does not take the half-open probe slot). */
  allowsRequest(): boolean {
    const s = this.state;
    return s === 'closed' || (s === 'half_open' && !this.probeInFlight);
  }

  /** A permit for one request, or undefined when the breaker rejects it. */
  tryAcquire(): BreakerPermit | undefined {
    const s = this.state;
    if (s === 'open') return undefined;
    if (s === 'half_open') {
      if (this.probeInFlight) return undefined;
      this.probeInFlight = true;
      return this.permit(true);
    }
    return this.permit(false);
  }

  /** A permit, or a KeyOperationError('unavailable') naming this breaker. */
  acquire(): BreakerPermit {
    const p = this.tryAcquire();
    if (!p) throw this.rejection();
    return p;
  }

  /** The error a rejected request fails with. */
  rejection(): KeyOperationError {
    const s = this.state;
    const detail = s === 'open' ? `open, next probe in ${Math.ceil(this.retryInMs)} ms` : 'half-open, probe in flight';
    return new KeyOperationError('unavailable', `circuit breaker "${this.name}" is ${detail}`);
  }

  /** Close the breaker and forget all history (operator action, tests). */
  reset(): void {
    this.consecutive = 0;
    this.probeInFlight = false;
    this.clearWindow();
    if (this.current !== 'closed') this.transition('closed');
  }

  // -------------------------------------------------------------------------------------------

  private permit(probe: boolean): BreakerPermit {
    const generation = this.generation;
    let settled = false;
    const settle = (outcome: 'success' | 'failure' | 'release'): void => {
      if (settled) return;
      settled = true;
      if (probe) this.probeInFlight = false;
      if (generation !== this.generation || outcome === 'release') return;
      if (outcome === 'success') this.onSuccess();
      else this.onFailure();
    };
    return {
      probe,
      success: () => settle('success'),
      failure: () => settle('failure'),
      release: () => settle('release'),
    };
  }

  private onSuccess(): void {
    if (this.current === 'half_open') {
      this.consecutive = 0;
      this.clearWindow();
      this.transition('closed');
      return;
    }
    this.consecutive = 0;
    this.count(false);
  }

  private onFailure(): void {
    if (this.current === 'half_open') {
      this.open();
      return;
    }
    this.consecutive++;
    this.count(true);
    if (this.consecutive >= this.failureThreshold) {
      this.open();
      return;
    }
    const { requests, failures } = this.windowCounts();
    if (requests >= this.minimumRequests && failures / requests >= this.errorRateThreshold) this.open();
  }

  private open(): void {
    this.openedAt = this.now();
    this.transition('open');
  }

  private count(failed: boolean): void {
    const now = this.now();
    const width = this.windowMs / BUCKETS;
    const slot = Math.floor(now / width);
    const i = ((slot % BUCKETS) + BUCKETS) % BUCKETS;
    const start = slot * width;
    if (this.bucketStart[i] !== start) {
      this.bucketStart[i] = start;
      this.bucketOk[i] = 0;
      this.bucketFailed[i] = 0;
    }
    if (failed) this.bucketFailed[i]++;
    else this.bucketOk[i]++;
  }

  private clearWindow(): void {
    this.bucketStart.fill(-Infinity);
    this.bucketOk.fill(0);
    this.bucketFailed.fill(0);
  }

  private transition(to: BreakerState): void {
    const from = this.current;
    if (from === to) {
      // open → open (a failed probe) still starts a new cool-down and a new generation.
      this.generation++;
      return;
    }
    this.current = to;
    this.generation++;
    if (to === 'open') this.consecutive = 0;
    if (to !== 'half_open') this.probeInFlight = false;
    this.onStateChange?.(to, from, this);
  }
}

function positiveInt(n: number, name: string): number {
  if (!Number.isInteger(n) || n <= 0) throw new TypeError(`${name} must be a positive integer`);
  return n;
}
