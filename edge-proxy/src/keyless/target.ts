/**
 * One key service the edge can reach (one Lambda function in one region). The client above it owns
 * deadlines, the in-flight cap and verification; later, retries, failover across several targets and
 * a circuit breaker compose targets without changing the client (docs/architecture.md, "Deployables").
 */
import type { KeyServiceRequest } from '../../../contract/key-service-protocol';

export interface KeyServiceTarget {
  /** For logs and metrics, e.g. "lambda:keyless-key-service". */
  readonly name: string;
  /**
   * Send one request and resolve with the decoded JSON response (not yet validated). Rejects with a
   * KeyOperationError (code timeout when `signal` aborted, function_error, unavailable, throttled,
   * internal, ...). Must stop work promptly when `signal` aborts.
   */
  invoke(request: KeyServiceRequest, signal: AbortSignal): Promise<unknown>;
  /** Release connections. */
  close?(): void;
}
