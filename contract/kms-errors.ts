/**
 * What a KMS call's failure means in the key-service protocol's terms (docs/key-service-protocol.md,
 * "Errors"): shared by the key service (Sign, GetPublicKey, Decrypt, Encrypt) and the provisioning
 * of sealed keys the CLI and the local stack run (GenerateDataKeyPairWithoutPlaintext).
 */
import { describeAwsFailure } from './aws-errors';
import type { ErrorCode } from './key-service-protocol';
import { KeyServiceError } from './key-service-errors';

/** KMS exception names → the protocol's typed errors (docs/key-service-protocol.md). */
const KMS_ERROR_CODES: Record<string, ErrorCode> = {
  DisabledException: 'unavailable',
  KMSInvalidStateException: 'unavailable',
  KeyUnavailableException: 'unavailable',
  DependencyTimeoutException: 'unavailable',
  KMSInternalException: 'unavailable',
  NotFoundException: 'unknown_key',
  ThrottlingException: 'throttled',
  LimitExceededException: 'throttled',
  InvalidKeyUsageException: 'unsupported',
  UnsupportedOperationException: 'unsupported',
  // A sealed key's ciphertext that does not open (wrong wrapping key, wrong encryption context,
  // corrupted configuration) is a deployment error, not the caller's.
  InvalidCiphertextException: 'internal',
  IncorrectKeyException: 'internal',
};

/**
 * Map anything a KMS call threw to a KeyServiceError. The message names the KMS operation and error
 * name only — never the upstream message (it carries ARNs and request details).
 */
export function mapKmsError(
  err: unknown,
  operation: 'Sign' | 'GetPublicKey' | 'Decrypt' | 'Encrypt' | 'GenerateDataKeyPairWithoutPlaintext',
): KeyServiceError {
  if (err instanceof KeyServiceError) return err;
  const { name, unreachable, serverStatus } = describeAwsFailure(err);
  const mapped = KMS_ERROR_CODES[name];
  if (mapped) return new KeyServiceError(mapped, `KMS ${operation} failed: ${name}`, name);
  if (unreachable)
    return new KeyServiceError(
      'unavailable',
      `KMS ${operation} failed: endpoint unreachable (${unreachable})`,
      unreachable,
    );
  if (serverStatus)
    return new KeyServiceError('unavailable', `KMS ${operation} failed: ${name} (HTTP ${serverStatus})`, name);
  return new KeyServiceError('internal', `KMS ${operation} failed: ${name}`, name);
}
