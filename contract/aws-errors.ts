/**
 * Reads what an AWS SDK v3 call threw — a service exception, a network failure, or a timeout —
 * without ever keeping its message (which can carry ARNs and request details). Shared by the key
 * service (KMS calls) and the edge client (Lambda Invoke calls).
 */

/** Node/SDK network failures: the endpoint could not be reached or did not answer in time. */
const NETWORK_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

export interface AwsFailure {
  /** The exception name (e.g. `ThrottlingException`), or `Error` when it has none we trust. */
  name: string;
  /** Set when the endpoint was unreachable or timed out: the errno code or `TimeoutError`. */
  unreachable?: string;
  /** HTTP status of a 5xx answer. */
  serverStatus?: number;
}

/**
 * The errno-style code of a network failure, from `code` or — when the SDK wrapped an error from
 * another realm ("AWS SDK error wrapper for Error: connect ECONNREFUSED ...") — from its message.
 */
function networkErrorCode(e: { code?: unknown; message?: unknown }): string | undefined {
  if (typeof e.code === 'string' && NETWORK_ERROR_CODES.has(e.code)) return e.code;
  if (typeof e.message === 'string') {
    const m = /\b(E[A-Z_]{3,20})\b/.exec(e.message);
    if (m && NETWORK_ERROR_CODES.has(m[1])) return m[1];
  }
  return undefined;
}

export function describeAwsFailure(err: unknown): AwsFailure {
  const e = (typeof err === 'object' && err !== null ? err : {}) as {
    name?: unknown;
    code?: unknown;
    message?: unknown;
    $metadata?: { httpStatusCode?: number };
  };
  const name = typeof e.name === 'string' && /^[A-Za-z0-9_.]{1,80}$/.test(e.name) ? e.name : 'Error';
  const net = networkErrorCode(e);
  const unreachable = net ?? (name === 'TimeoutError' ? name : undefined);
  const status = e.$metadata?.httpStatusCode;
  return { name, unreachable, serverStatus: typeof status === 'number' && status >= 500 ? status : undefined };
}
