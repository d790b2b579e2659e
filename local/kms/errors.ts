/**
 * KMS error shapes. On the wire (AWS JSON 1.1) an error is an HTTP status plus a JSON body
 * `{"__type": "<Name>", "message": "..."}`; the AWS SDK v3 maps `__type` to the exception class
 * (`NotFoundException`, `DisabledException`, `KMSInvalidStateException`, ...). Unmodelled names such
 * as `ValidationException` surface as a `KMSServiceException` whose `name` is that string, exactly as
 * they do against the real service.
 */
import { AwsJsonError } from '../aws-json-server';

/** A KMS exception (`__type`, optional message, HTTP status); the wire shape is local/aws-json-server.ts's. */
export class KmsError extends AwsJsonError {}

export const validation = (message: string): KmsError => new KmsError('ValidationException', message);

/**
 * The "1 validation error detected" message AWS uses for model constraint violations.
 * `shown`: `null` → "Value null at" (missing member), `undefined` → "Value at" (value withheld, as AWS
 * does for blobs), a string → "Value 'x' at".
 */
export function constraint(member: string, shown: string | null | undefined, rule: string): KmsError {
  const value = shown === null ? 'Value null at' : shown === undefined ? 'Value at' : `Value '${shown}' at`;
  return validation(`1 validation error detected: ${value} '${member}' failed to satisfy constraint: ${rule}`);
}

export const notFound = (message: string): KmsError => new KmsError('NotFoundException', message);
export const invalidKeyUsage = (message: string): KmsError => new KmsError('InvalidKeyUsageException', message);
export const invalidState = (message: string): KmsError => new KmsError('KMSInvalidStateException', message);
export const disabled = (message: string): KmsError => new KmsError('DisabledException', message);
export const invalidCiphertext = (message?: string): KmsError => new KmsError('InvalidCiphertextException', message);
export const unsupported = (message: string): KmsError => new KmsError('UnsupportedOperationException', message);
export const serialization = (message: string): KmsError => new KmsError('SerializationException', message);
