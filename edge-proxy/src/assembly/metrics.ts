/**
 * The edge's figures: one registry behind `/metrics` holding the key client's and the edge's own
 * metrics, and in ECS the same figures as CloudWatch embedded-metric-format lines on stdout
 * (docs/observability.md).
 */
import type { EdgeConfig } from '../config';
import { KeyClientMetrics } from '../keyless/client-metrics';
import { EdgeMetrics } from '../observability/edge-metrics';
import { EmfPublisher } from '../observability/emf';
import { MetricsRegistry } from '../observability/metrics-registry';

export interface EdgeFigures {
  registry: MetricsRegistry;
  /** The key-service client's metrics. */
  keyClient: KeyClientMetrics;
  edge: EdgeMetrics;
  /** Running when `metrics.emf` is on; `stop()` writes the last interval's figures. */
  emf?: EmfPublisher;
}

export function startMetrics(config: EdgeConfig, emfWrite?: (line: string) => void): EdgeFigures {
  const registry = new MetricsRegistry();
  const keyClient = new KeyClientMetrics(registry);
  const edge = new EdgeMetrics(registry);
  const emf = config.metrics.emf
    ? new EmfPublisher(edge, keyClient, {
        namespace: config.metrics.namespace,
        deployment: config.metrics.deployment,
        intervalMs: config.metrics.intervalSeconds * 1000,
        write: emfWrite,
      })
    : undefined;
  emf?.start();
  return { registry, keyClient, edge, ...(emf ? { emf } : {}) };
}
