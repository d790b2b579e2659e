/**
 * Errors of the `keyless` command line and the exit codes scripts can rely on.
 *
 *   0  ok
 *   1  the operation failed (an AWS call was refused, a file could not be written, ...)
 *   2  refused: a precondition does not hold (certificate does not match the key, name taken, ...)
 *  64  usage error (unknown command or option, missing or malformed argument) — sysexits EX_USAGE
 *  69  a service is unavailable (endpoint unreachable, local stack not running) — sysexits EX_UNAVAILABLE
 *
 * Every CliError says what is wrong and, in `hint`, what to do about it. Messages never carry key
 * material: the only secrets the CLI ever handles are ciphertext blobs, and those are not echoed.
 */
import { describeAwsFailure } from '../../contract/aws-errors';

export const EXIT = {
  ok: 0,
  failed: 1,
  refused: 2,
  usage: 64,
  unavailable: 69,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export class CliError extends Error {
  readonly exitCode: ExitCode;
  /** What the operator should do next (printed on its own line after the message). */
  readonly hint?: string;

  constructor(exitCode: ExitCode, message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
    this.exitCode = exitCode;
    this.hint = hint;
  }
}

export const usageError = (message: string, hint?: string): CliError => new CliError(EXIT.usage, message, hint);
export const refused = (message: string, hint?: string): CliError => new CliError(EXIT.refused, message, hint);
export const failed = (message: string, hint?: string, cause?: unknown): CliError =>
  new CliError(EXIT.failed, message, hint, { cause });
export const unavailable = (message: string, hint?: string, cause?: unknown): CliError =>
  new CliError(EXIT.unavailable, message, hint, { cause });

/** Whether an error came from an AWS SDK call (a service answer, or the endpoint being unreachable). */
export function isAwsSdkError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  return (
    '$metadata' in err ||
    describeAwsFailure(err).unreachable !== undefined ||
    CREDENTIAL_ERRORS.has((err as Error).name)
  );
}

const CREDENTIAL_ERRORS = new Set([
  'CredentialsProviderError',
  'ExpiredTokenException',
  'UnrecognizedClientException',
  'InvalidSignatureException',
]);

/**
 * Turns what an AWS SDK call threw into a CliError naming the service call (`what`, e.g.
 * "KMS CreateKey") and a next step. Service exception messages are kept (they explain e.g. which
 * permission is missing) but trimmed; network failures become exit code 69.
 */
export function awsError(err: unknown, what: string): CliError {
  if (err instanceof CliError) return err;
  const f = describeAwsFailure(err);
  const message = err instanceof Error ? err.message.split('\n')[0].slice(0, 300) : String(err);
  if (f.unreachable) {
    return unavailable(
      `${what}: the endpoint is unreachable (${f.unreachable})`,
      'Check --region and the AWS_ENDPOINT_URL_* variables; against the local stack, start it with `npm start` and pass --local.',
      err,
    );
  }
  if (f.serverStatus)
    return unavailable(`${what}: the service answered HTTP ${f.serverStatus} (${f.name})`, 'Retry later.', err);
  if (CREDENTIAL_ERRORS.has(f.name) || /Could not load credentials|credential/i.test(message)) {
    return failed(
      `${what}: no usable AWS credentials (${f.name}: ${message})`,
      'Pass --profile NAME, or set AWS_PROFILE / AWS_ACCESS_KEY_ID; for the local stack pass --local.',
      err,
    );
  }
  if (f.name === 'AccessDeniedException' || f.name === 'AccessDenied') {
    return failed(
      `${what}: access denied (${message})`,
      'Use a role or --profile that is allowed this call (see docs/cli.md, "Permissions").',
      err,
    );
  }
  if (f.name === 'ThrottlingException' || f.name === 'TooManyRequestsException') {
    return unavailable(`${what}: throttled by the service (${f.name})`, 'Retry in a few seconds.', err);
  }
  return failed(`${what} failed: ${f.name}: ${message}`, undefined, err);
}
