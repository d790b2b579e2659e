/**
 * The key-service client's metrics, in memory, for the Prometheus `/metrics`
 * endpoint to expose later. Names follow Prometheus conventions (seconds, `_total`).
 *
 *   keyless_key_operations_total{op,outcome}                    operations as the TLS engine saw them
 *   keyless_key_operation_duration_seconds{op}                  their latency (whole operation)
 *   keyless_key_service_requests_total{target,outcome}          requests (attempts) per key service
 *   keyless_key_service_request_duration_seconds{target}        latency of each attempt per key service
 *   keyless_key_service_errors_total{target,type}               failed attempts by error type
 *   keyless_key_service_retries_total{target,reason}            retries (at most one per operation)
 *   keyless_key_service_failovers_total{from,to,reason}         moves away from/back to a key service
 *   keyless_key_service_breaker_state{target}                   0 closed, 1 open, 2 half-open
 *   keyless_key_service_breaker_transitions_total{target,to}    breaker transitions
 *
 * `outcome` is `ok` or the KeyOperationError code (`timeout`, `unavailable`, `bad_signature`, ...).
 */
import type { BreakerState } from './circuit-breaker';
import { MetricsRegistry, type Counter, type Gauge, type Histogram } from '../observability/metrics-registry';

/** Upper bounds in seconds: 1 ms … 5 s (the deadline is 1 s by default). */
export const LATENCY_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] as const;

export const BREAKER_STATE_VALUE: Record<BreakerState, number> = { closed: 0, open: 1, half_open: 2 };

export class KeyClientMetrics {
  readonly registry: MetricsRegistry;
  readonly operations: Counter<'op' | 'outcome'>;
  readonly operationDuration: Histogram<'op'>;
  readonly requests: Counter<'target' | 'outcome'>;
  readonly requestDuration: Histogram<'target'>;
  readonly errors: Counter<'target' | 'type'>;
  readonly retries: Counter<'target' | 'reason'>;
  readonly failovers: Counter<'from' | 'to' | 'reason'>;
  readonly breakerState: Gauge<'target'>;
  readonly breakerTransitions: Counter<'target' | 'to'>;

  /** Registers the metrics in `registry` (a new one by default). */
  constructor(registry: MetricsRegistry = new MetricsRegistry()) {
    this.registry = registry;
    this.operations = registry.counter(
      'keyless_key_operations_total',
      'Key operations by operation and outcome (ok or error code).',
      ['op', 'outcome'],
    );
    this.operationDuration = registry.histogram(
      'keyless_key_operation_duration_seconds',
      'Latency of whole key operations, retries included.',
      ['op'],
      LATENCY_BUCKETS_SECONDS,
    );
    this.requests = registry.counter(
      'keyless_key_service_requests_total',
      'Requests sent to each key service, by outcome.',
      ['target', 'outcome'],
    );
    this.requestDuration = registry.histogram(
      'keyless_key_service_request_duration_seconds',
      'Latency of each request to a key service.',
      ['target'],
      LATENCY_BUCKETS_SECONDS,
    );
    this.errors = registry.counter(
      'keyless_key_service_errors_total',
      'Failed requests to a key service by error type.',
      ['target', 'type'],
    );
    this.retries = registry.counter(
      'keyless_key_service_retries_total',
      'Retries after a retryable failure, by the target that failed and the reason.',
      ['target', 'reason'],
    );
    this.failovers = registry.counter(
      'keyless_key_service_failovers_total',
      'Traffic moved between key services: reason retry (one request) or health (the preferred key service changed).',
      ['from', 'to', 'reason'],
    );
    this.breakerState = registry.gauge(
      'keyless_key_service_breaker_state',
      'Circuit breaker state per key service: 0 closed, 1 open, 2 half-open.',
      ['target'],
    );
    this.breakerTransitions = registry.counter(
      'keyless_key_service_breaker_transitions_total',
      'Circuit breaker transitions per key service, by new state.',
      ['target', 'to'],
    );
  }

  /** Plain JSON of every metric (for tests, /healthz-style debugging, the later /metrics endpoint). */
  snapshot(): ReturnType<MetricsRegistry['snapshot']> {
    return this.registry.snapshot();
  }
}
