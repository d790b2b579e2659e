/**
 * The two key-service operations the CLI uses (docs/key-service-protocol.md): `ping` (version and the key names it
 * serves) and `public_key` (a key name's SubjectPublicKeyInfo, to check that a certificate belongs to
 * the key the service will sign with). Reached like the edge reaches it: Lambda Invoke.
 */
import * as crypto from 'node:crypto';
import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { decodeResponse, KeyServiceMessageError } from '../../contract/key-service-codec';
import {
  PROTOCOL_VERSION,
  type KeyServiceRequest,
  type PingResult,
  type PublicKeyResult,
} from '../../contract/key-service-protocol';
import { awsError, failed, refused } from './errors';

export interface KeyServiceProbe {
  /** Human-readable target, e.g. `lambda:keyless-key-service`. */
  readonly name: string;
  ping(): Promise<PingResult>;
  /** Throws a refusal (exit code 2) when the service does not know the key (`unknown_key`). */
  publicKey(keyName: string): Promise<PublicKeyResult>;
}

/**
 * Sends a request through any transport and unwraps the response, read by the protocol's own strict
 * decoder (contract/key-service-codec.ts): a malformed answer or one of another protocol version is
 * a clear failure, not a half-read result.
 */
export async function call<T>(
  name: string,
  send: (req: KeyServiceRequest) => Promise<unknown>,
  req: KeyServiceRequest,
): Promise<T> {
  const res = await send(req);
  let decoded;
  try {
    decoded = decodeResponse(req, res);
  } catch (e) {
    if (e instanceof KeyServiceMessageError)
      throw failed(
        `${name} answered ${req.op} with something this CLI cannot read (${e.message})`,
        'Deploy the key service and use the CLI of the same release.',
      );
    throw e;
  }
  if (decoded.ok) return (res as { result: T }).result;
  if (decoded.code === 'unknown_key') {
    throw refused(
      `${name} does not serve key ${'key' in req ? req.key : ''} (unknown_key)`,
      "Check the key name; kms keys need the key service's alias-prefix entry, sealed keys their own KEYLESS_KEYS entry (redeploy).",
    );
  }
  throw failed(`${name} answered ${req.op} with ${decoded.code}: ${decoded.message}`);
}

const requestId = (): string => `cli-${crypto.randomBytes(6).toString('hex')}`;

/** A probe over an in-process transport (tests, or any handler). */
export function keyServiceProbe(name: string, send: (req: KeyServiceRequest) => Promise<unknown>): KeyServiceProbe {
  return {
    name,
    ping: () => call<PingResult>(name, send, { v: PROTOCOL_VERSION, id: requestId(), op: 'ping' }),
    publicKey: (key) =>
      call<PublicKeyResult>(name, send, { v: PROTOCOL_VERSION, id: requestId(), op: 'public_key', key }),
  };
}

/** A probe that invokes the key-service Lambda function (name, name:alias or ARN). */
export function lambdaKeyService(lambda: LambdaClient, functionName: string): KeyServiceProbe {
  const name = `key service ${functionName}`;
  return keyServiceProbe(name, async (req) => {
    let out;
    try {
      out = await lambda.send(
        new InvokeCommand({
          FunctionName: functionName,
          InvocationType: 'RequestResponse',
          Payload: Buffer.from(JSON.stringify(req)),
        }),
      );
    } catch (e) {
      throw awsError(e, `Lambda Invoke ${functionName}`);
    }
    const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : '';
    if (out.FunctionError) throw failed(`${name} failed (${out.FunctionError})`, "Look at the function's logs.");
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw failed(`${name} answered with something that is not JSON`);
    }
  });
}
