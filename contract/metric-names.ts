/**
 * The CloudWatch metric contract: namespaces, metric names and dimension names, defined once. The edge
 * emits them as EMF (edge-proxy/src/emf.ts), the key service through Powertools
 * (lambdas/key-service/observability.ts), and the CDK dashboards and alarms read them (lib/naming.ts,
 * lib/monitoring.ts), so a renamed metric cannot leave a dashboard reading nothing.
 */

export const METRIC_NAMESPACES = {
  edge: 'Keyless/Edge',
  keyService: 'Keyless/KeyService',
} as const;

export const METRIC_DIMENSIONS = {
  /** On every metric of both deployables; its value is the deployment name (KEYLESS_DEPLOYMENT). */
  deployment: 'Deployment',
  /** Edge HandshakeFailures: the TLS alert description sent (`received:<name>` for one received). */
  alert: 'Alert',
  /** Edge AdmissionRejections: the admission reason. */
  reason: 'Reason',
  /** Edge HandshakeDuration: `full` or `resumed`. */
  kind: 'Kind',
  /** Key service: the protocol operation (OperationLatency) or the KMS API name (KmsLatency, KmsThrottles). */
  operation: 'Operation',
  /** Key service Errors: the typed error code. */
  code: 'Code',
  /** Added by Powertools to every key-service metric: POWERTOOLS_SERVICE_NAME. */
  service: 'service',
} as const;

/** POWERTOOLS_SERVICE_NAME of the key service: the value of its `service` dimension. */
export const KEY_SERVICE_SERVICE_NAME = 'keyless-key-service';

/** Edge metrics (namespace METRIC_NAMESPACES.edge), each with `Deployment` and at most one more dimension. */
export const EDGE_METRICS = {
  handshakesFull: 'HandshakesFull',
  handshakesResumed: 'HandshakesResumed',
  /** Handshakes that ended with an alert or an error; also per `Alert`. */
  handshakeFailures: 'HandshakeFailures',
  /** The peer closed TCP without an alert before the handshake completed (probes, clients that left). */
  handshakesAbandoned: 'HandshakesAbandoned',
  /** One per resumed handshake: the KMS request a full handshake would have cost. */
  keyOperationsAvoided: 'KeyOperationsAvoided',
  keyOperationLatency: 'KeyOperationLatency',
  keyOperationErrors: 'KeyOperationErrors',
  /** Also per `Reason`. */
  admissionRejections: 'AdmissionRejections',
  activeConnections: 'ActiveConnections',
  /** Milliseconds, accept → client Finished; per `Kind` (full / resumed). */
  handshakeDuration: 'HandshakeDuration',
} as const;

/** Key-service metrics (namespace METRIC_NAMESPACES.keyService), each with `service` and `Deployment`. */
export const KEY_SERVICE_METRICS = {
  /** Per `Operation` (the protocol operation). */
  operationLatency: 'OperationLatency',
  /** Per `Operation` (the KMS API name). */
  kmsLatency: 'KmsLatency',
  /** Per `Operation` (the KMS API name). */
  kmsThrottles: 'KmsThrottles',
  /** Per `Code` (the typed error code). */
  errors: 'Errors',
} as const;
