/**
 * One LambdaHttpTarget per configured key service (docs/architecture.md, "Deployables": several key services, e.g. regions),
 * each with its own keep-alive connection pool, built so that the failover layer can tell a failed
 * *connect* from a slow answer: the connect timeout is short (a retry elsewhere still fits in the
 * deadline), and the socket's request timeout is only a backstop past the caller's deadline, so every
 * `TimeoutError` that arrives before the deadline is a connect timeout (mapped to `unavailable`,
 * which is retryable) while a slow answer ends as the caller's `timeout` (which is not).
 */
import { DEFAULT_MAX_IN_FLIGHT, DEFAULT_TIMEOUT_MS } from './key-service-client';
import { LambdaHttpTarget, type LambdaHttpTargetOptions } from './lambda-http-target';

export const DEFAULT_CONNECT_TIMEOUT_MS = 300;

export interface LambdaTargetSpec {
  /** Function name, name:alias, or ARN. */
  functionName: string;
  region?: string;
  /** Endpoint override (local endpoints, tests); default from AWS_ENDPOINT_URL_LAMBDA / the region. */
  endpoint?: string;
}

export interface LambdaTargetsOptions {
  /** The caller's per-operation deadline (KeyServiceClient timeoutMs). Default 1000. */
  deadlineMs?: number;
  /** TCP/TLS connect timeout per request; capped at deadlineMs. Default 300. */
  connectTimeoutMs?: number;
  /** Sockets per key service. Default 256. */
  maxSockets?: number;
  credentials?: LambdaHttpTargetOptions['credentials'];
}

/**
 * Targets in the given (failover) order. Names are `lambda:<function>`; when one function name is
 * configured more than once (e.g. the same function in two regions) they become
 * `lambda:<function>@<endpoint or region>`, and `#<position>` is added if that is still ambiguous.
 */
export function createLambdaTargets(
  specs: readonly LambdaTargetSpec[],
  options: LambdaTargetsOptions = {},
): LambdaHttpTarget[] {
  const deadlineMs = options.deadlineMs ?? DEFAULT_TIMEOUT_MS;
  const connectTimeoutMs = Math.min(options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS, deadlineMs);
  const maxSockets = options.maxSockets ?? DEFAULT_MAX_IN_FLIGHT;
  const names = specs.map((spec) => {
    const plain = `lambda:${spec.functionName}`;
    return specs.filter((s) => s.functionName === spec.functionName).length > 1
      ? `${plain}@${spec.endpoint ?? spec.region ?? 'default'}`
      : plain;
  });
  const unique = names.map((n, i) => (names.filter((x) => x === n).length > 1 ? `${n}#${i + 1}` : n));
  return specs.map((spec, i) => {
    return new LambdaHttpTarget({
      functionName: spec.functionName,
      name: unique[i],
      region: spec.region,
      endpoint: spec.endpoint,
      credentials: options.credentials,
      connectTimeoutMs,
      requestTimeoutMs: deadlineMs + 500,
      maxSockets,
    });
  });
}
