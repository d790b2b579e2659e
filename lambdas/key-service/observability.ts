/**
 * Observability of the key service: structured JSON logs and CloudWatch
 * embedded-metric-format (EMF) metrics, through Powertools for AWS Lambda in the Lambda and through
 * plain JSON lines (and no metrics) in process (local Lambda endpoint, tests).
 *
 * Metric contract (contract/metric-names.ts, namespace from POWERTOOLS_METRICS_NAMESPACE):
 *   OperationLatency (ms)  dimension Operation = protocol op        one per request
 *   Errors (count)         dimension Code = typed error code         one per failed request
 *   KmsLatency (ms)        dimension Operation = KMS API name        one per KMS call
 *   KmsThrottles (count)   dimension Operation = KMS API name        one per throttled KMS call
 * plus the Powertools `service` dimension and `Deployment` (KEYLESS_DEPLOYMENT) when set.
 *
 * Nothing here ever sees a payload: log records carry ids, names, codes and timings only, and a
 * metrics failure never fails a request.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import {
  KEY_SERVICE_METRICS,
  KEY_SERVICE_SERVICE_NAME,
  METRIC_DIMENSIONS,
  METRIC_NAMESPACES,
} from '../../contract/metric-names';
import { describeAwsFailure } from '../../contract/aws-errors';

// ---------------------------------------------------------------------------------------------
// KMS call timing, collected per request with AsyncLocalStorage.
// ---------------------------------------------------------------------------------------------

export interface KmsCallRecord {
  /** KMS API name: Sign, GetPublicKey, Decrypt, Encrypt, ... */
  operation: string;
  ms: number;
  /** Exception name when the call failed. */
  error?: string;
}

const kmsCalls = new AsyncLocalStorage<KmsCallRecord[]>();

/** Run `fn` (one KMS call), timing it into the current request's record, if any. */
export async function timeKmsCall<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  const started = process.hrtime.bigint();
  const sink = kmsCalls.getStore();
  try {
    const out = await fn();
    sink?.push({ operation, ms: Number(process.hrtime.bigint() - started) / 1e6 });
    return out;
  } catch (err) {
    sink?.push({ operation, ms: Number(process.hrtime.bigint() - started) / 1e6, error: describeAwsFailure(err).name });
    throw err;
  }
}

/** Run `fn` with a fresh KMS call record; returns its value (or rethrows) and the record. */
export async function collectKmsCalls<T>(
  fn: () => Promise<T>,
): Promise<{ calls: KmsCallRecord[]; value?: T; error?: unknown; failed: boolean }> {
  const calls: KmsCallRecord[] = [];
  try {
    const value = await kmsCalls.run(calls, fn);
    return { calls, value, failed: false };
  } catch (error) {
    return { calls, error, failed: true };
  }
}

/** KMS exception names that mean throttling. */
const KMS_THROTTLES = new Set(['ThrottlingException', 'LimitExceededException']);

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

export interface RequestMetrics {
  /** Protocol op, or 'invalid' when the request could not be parsed that far. */
  op: string;
  /** 'ok' or the typed error code. */
  outcome: string;
  latencyMs: number;
  kms: readonly KmsCallRecord[];
}

export interface KeyServiceMetrics {
  /** Record one finished request. Must never throw. */
  request(m: RequestMetrics): void;
}

export const noMetrics: KeyServiceMetrics = { request: () => undefined };

export interface PowertoolsMetricsOptions {
  namespace?: string;
  /** Value of the Deployment dimension; default KEYLESS_DEPLOYMENT. */
  deployment?: string;
  /** Injected Metrics instance (tests). */
  metrics?: Metrics;
}

/**
 * EMF metrics through Powertools. Each metric goes out as its own EMF record (singleMetric), so
 * concurrent requests in one process never mix dimensions. Honours POWERTOOLS_METRICS_DISABLED and
 * POWERTOOLS_DEV (metrics off) as Powertools does.
 */
export function createPowertoolsMetrics(options: PowertoolsMetricsOptions = {}): KeyServiceMetrics {
  const deployment = options.deployment ?? process.env.KEYLESS_DEPLOYMENT;
  const metrics =
    options.metrics ??
    new Metrics({
      namespace: options.namespace ?? (process.env.POWERTOOLS_METRICS_NAMESPACE || METRIC_NAMESPACES.keyService),
      serviceName: process.env.POWERTOOLS_SERVICE_NAME || KEY_SERVICE_SERVICE_NAME,
      defaultDimensions: deployment ? { [METRIC_DIMENSIONS.deployment]: deployment } : undefined,
    });
  const emit = (
    dimension: [string, string],
    name: string,
    unit: (typeof MetricUnit)[keyof typeof MetricUnit],
    value: number,
  ) => {
    const single = metrics.singleMetric();
    single.addDimension(dimension[0], dimension[1]);
    single.addMetric(name, unit, value);
  };
  return {
    request(m) {
      try {
        emit(
          [METRIC_DIMENSIONS.operation, m.op],
          KEY_SERVICE_METRICS.operationLatency,
          MetricUnit.Milliseconds,
          m.latencyMs,
        );
        if (m.outcome !== 'ok')
          emit([METRIC_DIMENSIONS.code, m.outcome], KEY_SERVICE_METRICS.errors, MetricUnit.Count, 1);
        for (const call of m.kms) {
          emit(
            [METRIC_DIMENSIONS.operation, call.operation],
            KEY_SERVICE_METRICS.kmsLatency,
            MetricUnit.Milliseconds,
            call.ms,
          );
          if (call.error && KMS_THROTTLES.has(call.error))
            emit([METRIC_DIMENSIONS.operation, call.operation], KEY_SERVICE_METRICS.kmsThrottles, MetricUnit.Count, 1);
        }
      } catch {
        // Metrics are best effort: a request never fails because of them.
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------------------------

export interface KeyServiceLogRecord {
  level: 'info' | 'warn' | 'error';
  msg: 'key_service_request' | 'key_service_config_error';
  [field: string]: unknown;
}

export type KeyServiceLogger = (record: KeyServiceLogRecord) => void;

/** One JSON object per line on stdout (the in-process default: local Lambda endpoint, dev stack). */
export const jsonLineLogger: KeyServiceLogger = (record) => {
  console.log(JSON.stringify({ time: new Date().toISOString(), service: KEY_SERVICE_SERVICE_NAME, ...record }));
};

/**
 * Structured logs through the Powertools Logger (the Lambda default): JSON with level, message
 * (= msg), timestamp, service, the Lambda context when added, and the record's fields.
 */
export function createPowertoolsLogger(
  logger: Logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME || KEY_SERVICE_SERVICE_NAME }),
): KeyServiceLogger {
  return (record) => {
    const { level, msg, ...fields } = record;
    try {
      logger[level](msg, fields);
    } catch {
      // Logging never fails a request.
    }
  };
}
