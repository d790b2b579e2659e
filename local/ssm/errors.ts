/**
 * SSM error shapes. On the wire (AWS JSON 1.1) an error is HTTP 400 (500 for internal faults) with
 * `{"__type": "<Name>", "message": "..."}` and the same name in `x-amzn-ErrorType`; the AWS SDK v3 maps
 * the name to its exception class (`ParameterNotFound`, `ParameterAlreadyExists`, ...), so callers
 * see what they see against the real service.
 */
import { AwsJsonError } from '../aws-json-server';

/** An SSM exception (`__type`, message, HTTP status); the wire shape is local/aws-json-server.ts's. */
export class SsmError extends AwsJsonError {
  constructor(type: string, message: string, status = 400) {
    super(type, message, status);
  }
}

export const validation = (message: string): SsmError => new SsmError('ValidationException', message);
export const notFound = (name: string): SsmError => new SsmError('ParameterNotFound', `Parameter ${name} not found.`);
export const serialization = (message: string): SsmError => new SsmError('SerializationException', message);

/** The "1 validation error detected" message AWS uses for model constraint violations. */
export function constraint(member: string, shown: string | null, rule: string): SsmError {
  const value = shown === null ? 'Value null at' : `Value '${shown}' at`;
  return validation(`1 validation error detected: ${value} '${member}' failed to satisfy constraint: ${rule}`);
}
