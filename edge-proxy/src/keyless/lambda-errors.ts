/**
 * What a failed Lambda Invoke means to the failover layer (docs/architecture.md, "Key operations"):
 * throttling is `throttled`, a function or network that cannot serve is `unavailable` (retryable on
 * another key service), anything else `internal`. Shared by both Invoke transports.
 */
import { describeAwsFailure } from '../../../contract/aws-errors';
import { KeyOperationError } from '../tls/key-operations';

/** The errorType a Lambda function error reports (short, printable), without its message. */
export function functionErrorType(payload: Uint8Array | undefined): string {
  try {
    const body: unknown = JSON.parse(Buffer.from(payload ?? []).toString('utf8'));
    const t = (body as { errorType?: unknown } | null)?.errorType;
    if (typeof t === 'string' && /^[A-Za-z0-9_.]{1,80}$/.test(t)) return t;
  } catch {
    // fall through
  }
  return 'unknown';
}

const LAMBDA_THROTTLED = new Set(['TooManyRequestsException', 'EC2ThrottledException', 'ThrottlingException']);
const LAMBDA_UNAVAILABLE = new Set([
  'ResourceNotFoundException',
  'ResourceNotReadyException',
  'ResourceConflictException',
  'ServiceException',
  'EC2UnexpectedException',
  'EC2AccessDeniedException',
  'ENILimitReachedException',
  'SubnetIPAddressLimitReachedException',
  'InvalidSubnetIDException',
  'InvalidSecurityGroupIDException',
  'KMSAccessDeniedException',
  'KMSDisabledException',
  'KMSInvalidStateException',
  'KMSNotFoundException',
  'SnapStartNotReadyException',
  'SnapStartTimeoutException',
  'SnapStartException',
  'EFSIOException',
  'EFSMountConnectivityException',
  'EFSMountFailureException',
  'EFSMountTimeoutException',
]);
/** Map an error thrown by InvokeCommand (service or network) to a KeyOperationError. */
export function mapLambdaError(err: unknown): KeyOperationError {
  if (err instanceof KeyOperationError) return err;
  const { name, unreachable, serverStatus } = describeAwsFailure(err);
  if (LAMBDA_THROTTLED.has(name)) return new KeyOperationError('throttled', `Lambda Invoke failed: ${name}`);
  if (LAMBDA_UNAVAILABLE.has(name)) return new KeyOperationError('unavailable', `Lambda Invoke failed: ${name}`);
  if (unreachable)
    return new KeyOperationError('unavailable', `Lambda Invoke failed: endpoint unreachable (${unreachable})`);
  if (serverStatus) return new KeyOperationError('unavailable', `Lambda Invoke failed: ${name} (HTTP ${serverStatus})`);
  return new KeyOperationError('internal', `Lambda Invoke failed: ${name}`);
}
