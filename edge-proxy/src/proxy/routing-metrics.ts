/**
 * Metrics per route and origin address (Prometheus names; docs/observability.md):
 *
 *   keyless_edge_origin_requests_total{route,address,class}   origin requests by answer: 1xx..5xx, or
 *       error (no answer: connect error, TLS failure, reset, timeout)
 *   keyless_edge_origin_request_duration_seconds{route,address}  request sent → response head
 *   keyless_edge_origin_healthy{route,address}                1 usable, 0 ejected or failing its check
 *   keyless_edge_origin_ejections_total{route,address}        passive-health ejections
 *   keyless_edge_origin_failures_total{route,reason}          requests answered by the edge itself:
 *       all_down (502, no usable address) | unreachable (502) | tls (502, verification) | timeout (504)
 *       | no_route (421, route "": no route serves the host and there is no default route)
 */
import { LATENCY_BUCKETS_SECONDS } from '../keyless/client-metrics';
import type { Counter, Gauge, Histogram, MetricsRegistry } from '../observability/metrics-registry';
import type { OriginPoolEvents } from './origin-pool';

export type OriginFailure = 'all_down' | 'unreachable' | 'tls' | 'timeout' | 'no_route';

const CLASSES = ['error', '1xx', '2xx', '3xx', '4xx', '5xx'];

export class RoutingMetrics implements OriginPoolEvents {
  readonly requests: Counter<'route' | 'address' | 'class'>;
  readonly duration: Histogram<'route' | 'address'>;
  readonly healthy: Gauge<'route' | 'address'>;
  readonly ejections: Counter<'route' | 'address'>;
  readonly failures: Counter<'route' | 'reason'>;

  constructor(registry: MetricsRegistry) {
    this.requests = registry.counter(
      'keyless_edge_origin_requests_total',
      'Origin requests by route, origin address and answer class (error: none).',
      ['route', 'address', 'class'],
    );
    this.duration = registry.histogram(
      'keyless_edge_origin_request_duration_seconds',
      'Origin request sent to response head, by route and origin address.',
      ['route', 'address'],
      LATENCY_BUCKETS_SECONDS,
    );
    this.healthy = registry.gauge(
      'keyless_edge_origin_healthy',
      'Origin address usable (1) or ejected / failing its health check (0).',
      ['route', 'address'],
    );
    this.ejections = registry.counter(
      'keyless_edge_origin_ejections_total',
      'Origin addresses ejected by passive health checks.',
      ['route', 'address'],
    );
    this.failures = registry.counter(
      'keyless_edge_origin_failures_total',
      'Requests the edge answered itself: all_down, unreachable, tls (502), timeout (504), no_route (421).',
      ['route', 'reason'],
    );
  }

  /** One origin request ended: its status (0 = no answer) and, when answered, the time to the head. */
  originRequest(route: string, address: string, status: number, seconds?: number): void {
    this.requests.inc({ route, address, class: CLASSES[status >= 100 && status < 600 ? Math.floor(status / 100) : 0] });
    if (seconds !== undefined) this.duration.observe({ route, address }, seconds);
  }

  failure(route: string, reason: OriginFailure): void {
    this.failures.inc({ route, reason });
  }

  health(route: string, address: string, healthy: boolean): void {
    this.healthy.set({ route, address }, healthy ? 1 : 0);
  }

  ejected(route: string, address: string): void {
    this.ejections.inc({ route, address });
  }
}
