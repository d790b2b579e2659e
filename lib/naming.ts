/**
 * Names shared by the stacks, the edge and the key service (the runtime contract lives here so that
 * tests and docs can point at one place).
 */

/** The edge container's TLS listener (the NLB forwards TCP 443 to it). */
export const EDGE_PORT = 8443;
/** The edge's admin listener: GET /healthz and /metrics. */
export const ADMIN_PORT = 9090;
/** The public listener of the Network Load Balancer. */
export const LISTENER_PORT = 443;
/** Name of the Lambda alias the edge invokes (a published version sits behind it). */
export const KEY_SERVICE_ALIAS = 'live';
/** Encryption-context key binding a sealed key's ciphertext to its key name. */
export const SEALED_CONTEXT_KEY = 'keyless:key-name';

export function stackId(deployment: string, kind: 'KeyService' | 'Edge', region?: string): string {
  const base = `Keyless-${capitalise(deployment)}-${kind}`;
  return region === undefined ? base : `${base}-${region}`;
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** KMS alias names (without the `alias/` ARN prefix parts) for the deployment's keys. */
export const aliasNames = {
  signingKey: (deployment: string, keyName: string): string => `alias/keyless/${deployment}/keys/${keyName}`,
  sealedWrapping: (deployment: string): string => `alias/keyless/${deployment}/sealed-wrapping`,
};

/** SSM path prefix under which each certificate is one parameter (KEYLESS_CERT_SSM_PREFIX). */
export function certificatePrefix(deployment: string): string {
  return `/keyless/${deployment}/certs/`;
}

/**
 * CloudWatch metric contract. The edge publishes its figures with CloudWatch embedded metric format
 * (EMF) on stdout, which the awslogs driver ships to CloudWatch Logs, so the task role needs no
 * CloudWatch permission. The key service does the same through Powertools (namespace given by the
 * POWERTOOLS_METRICS_NAMESPACE variable the stack sets).
 */
export const METRICS = {
  edgeNamespace: 'Keyless/Edge',
  keyServiceNamespace: 'Keyless/KeyService',
  /** Dimension every edge metric carries; its value is the deployment name. */
  deploymentDimension: 'Deployment',
  edge: {
    handshakesFull: 'HandshakesFull',
    handshakesResumed: 'HandshakesResumed',
    /** Carries an extra `Alert` dimension (the TLS alert description sent). */
    handshakeFailures: 'HandshakeFailures',
    keyOperationLatency: 'KeyOperationLatency',
    keyOperationErrors: 'KeyOperationErrors',
    admissionRejections: 'AdmissionRejections',
    activeConnections: 'ActiveConnections',
    /** One per resumed handshake: the KMS request a full handshake would have cost. */
    keyOperationsAvoided: 'KeyOperationsAvoided',
    /** The peer closed TCP without an alert before the handshake completed (probes, clients that left). */
    handshakesAbandoned: 'HandshakesAbandoned',
    /** Milliseconds, accept → client Finished; carries a `Kind` dimension (`full` / `resumed`). */
    handshakeDuration: 'HandshakeDuration',
  },
  keyService: {
    /** Carries an `Operation` dimension. */
    operationLatency: 'OperationLatency',
    kmsLatency: 'KmsLatency',
    kmsThrottles: 'KmsThrottles',
    /** Carries a `Code` dimension (the typed error code). */
    errors: 'Errors',
  },
} as const;
