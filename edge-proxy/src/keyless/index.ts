export { KeyOperationError } from '../tls/key-operations';
export type {
  KeyOperations,
  SignResult,
  KeyDescription,
  MasterSecretResult,
  RsaMasterSecretInput,
  TicketKeys,
} from '../tls/key-operations';
export type { KeyServiceTarget } from './target';
export { KeyServiceClient, DEFAULT_MAX_IN_FLIGHT, DEFAULT_TIMEOUT_MS } from './key-service-client';
export type { KeyServiceClientOptions } from './key-service-client';
export { LambdaInvokeTarget } from './lambda-key-client';
export { mapLambdaError } from './lambda-errors';
export { LambdaHttpTarget, type LambdaHttpTargetOptions } from './lambda-http-target';
export type { LambdaInvokeTargetOptions } from './lambda-key-client';
export {
  schemeMatchesKey,
  toVerificationKey,
  verifyTls12ServerKeyExchange,
  verifyTls13CertificateVerify,
  verifyTlsSignature,
} from './verify';
export type { CertificateKeyInput } from './verify';
export { CircuitBreaker, BREAKER_DEFAULTS } from './circuit-breaker';
export type { BreakerPermit, BreakerState, CircuitBreakerOptions } from './circuit-breaker';
export { TargetHealth, HEALTH_DEFAULTS } from './target-health';
export type { TargetHealthOptions } from './target-health';
export { FailoverTarget, RETRYABLE_CODES } from './failover-target';
export type { FailoverEvent, FailoverTargetOptions, TargetPing, TargetStatus } from './failover-target';
export { createLambdaTargets, DEFAULT_CONNECT_TIMEOUT_MS } from './lambda-targets';
export type { LambdaTargetSpec, LambdaTargetsOptions } from './lambda-targets';
export { KeyClientMetrics, LATENCY_BUCKETS_SECONDS, BREAKER_STATE_VALUE } from './client-metrics';
export { MetricsRegistry, Counter, Gauge, Histogram } from '../observability/metrics-registry';
export type { HistogramSample, MetricSample, MetricSnapshot } from '../observability/metrics-registry';
