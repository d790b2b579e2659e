/**
 * Names shared by the stacks, the edge and the key service (the runtime contract lives here so that
 * tests and docs can point at one place).
 */
import {
  EDGE_METRICS,
  KEY_SERVICE_METRICS,
  KEY_SERVICE_SERVICE_NAME,
  METRIC_DIMENSIONS,
  METRIC_NAMESPACES,
} from '../contract/metric-names';

/** The edge container's TLS listener (the NLB forwards TCP 443 to it). */
export const EDGE_PORT = 8443;
/** The edge's admin listener: GET /healthz and /metrics. */
export const ADMIN_PORT = 9090;
/** The public listener of the Network Load Balancer. */
export const LISTENER_PORT = 443;
/**
 * The edge's liveness check: the admin listener answers GET /healthz with any status. The Dockerfile
 * HEALTHCHECK and the ECS container health check run exactly this (test/infra/dockerfile.test.ts).
 */
export const LIVENESS_CHECK_COMMAND = [
  'node',
  '-e',
  "require('http').get({host:'127.0.0.1',port:Number(process.env.KEYLESS_ADMIN_PORT||9090),path:'/healthz',timeout:4000},r=>{r.resume();process.exit(0)}).on('error',()=>process.exit(1)).on('timeout',()=>process.exit(1))",
] as const;
/** Name of the Lambda alias the edge invokes (a published version sits behind it). */
export const KEY_SERVICE_ALIAS = 'live';
/**
 * Tag every resource of a deployment carries; its value is the deployment name. The key-service
 * role may only use KMS keys that carry it (`aws:ResourceTag/keyless:deployment`).
 */
export const DEPLOYMENT_TAG = 'keyless:deployment';
/** Encryption-context key binding a sealed key's ciphertext to its key name. */
export { SEALED_ENCRYPTION_CONTEXT_KEY as SEALED_CONTEXT_KEY } from '../contract/sealed-key-envelope';

export function stackId(deployment: string, kind: 'KeyService' | 'Edge', region?: string): string {
  const base = `Keyless-${capitalise(deployment)}-${kind}`;
  return region === undefined ? base : `${base}-${region}`;
}

/**
 * The key-service function's name in every region (`keyless-<deployment>-key-service`): what the
 * CLI's `--key-service` takes, and what an edge in another account writes into its alias ARN.
 */
export function keyServiceFunctionName(deployment: string): string {
  return `keyless-${deployment}-key-service`;
}

/**
 * The edge task role's name: the only principal that may invoke the key service (named in the
 * function's resource policy across accounts, and in the SCP of docs/policies/ in one account).
 */
export function edgeTaskRoleName(deployment: string): string {
  return `keyless-${deployment}-edge-task`;
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
 * CloudWatch metric contract (contract/metric-names.ts). The edge publishes its figures with CloudWatch
 * embedded metric format (EMF) on stdout, which the awslogs driver ships to CloudWatch Logs, so the
 * task role needs no CloudWatch permission. The key service does the same through Powertools
 * (namespace given by the POWERTOOLS_METRICS_NAMESPACE variable the stack sets).
 */
/** POWERTOOLS_SERVICE_NAME of the key service: the `service` dimension of its metrics. */
export const KEY_SERVICE_POWERTOOLS_SERVICE = KEY_SERVICE_SERVICE_NAME;

export const METRICS = {
  edgeNamespace: METRIC_NAMESPACES.edge,
  keyServiceNamespace: METRIC_NAMESPACES.keyService,
  /** Dimension every edge metric carries; its value is the deployment name. */
  deploymentDimension: METRIC_DIMENSIONS.deployment,
  edge: EDGE_METRICS,
  keyService: KEY_SERVICE_METRICS,
} as const;
