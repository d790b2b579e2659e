/**
 * KeyOperations over AWS Lambda Invoke (docs/architecture.md, "Deployables"; docs/key-service-protocol.md): the edge task role's only way to the key
 * service is lambda:InvokeFunction. One LambdaClient per target with a keep-alive agent, SDK retries
 * off (maxAttempts 1: the client owns deadlines; retries/failover come later, over KeyServiceTarget).
 *
 * Endpoint and region follow the SDK's standard configuration: AWS_REGION, AWS_ENDPOINT_URL_LAMBDA
 * (e.g. the local Lambda endpoint), shared config files.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { KeyServiceRequest } from '../../../contract/key-service-protocol';
import { KeyOperationError } from '../tls/key-operations';
import { abortReason, raceAbort, DEFAULT_MAX_IN_FLIGHT, DEFAULT_TIMEOUT_MS } from './key-service-client';
import { functionErrorType, mapLambdaError } from './lambda-errors';
import type { KeyServiceTarget } from './target';

type LambdaCredentials = NonNullable<ConstructorParameters<typeof LambdaClient>[0]>['credentials'];

export interface LambdaInvokeTargetOptions {
  /** Function name, name:alias, or ARN of the key-service function. */
  functionName: string;
  /** AWS region; default from the SDK's configuration (AWS_REGION, profile). */
  region?: string;
  /** Endpoint override (tests); default from AWS_ENDPOINT_URL_LAMBDA / the region's Lambda endpoint. */
  endpoint?: string;
  /** Credentials override (tests, local endpoints); default: the SDK's provider chain. */
  credentials?: LambdaCredentials;
  /** A LambdaClient to use instead of creating one (it is then not destroyed by close()). */
  lambdaClient?: LambdaClient;
  /**
   * Connection timeout of the created client (default 1000 ms). Its request timeout is this plus
   * 500 ms: a backstop only — the caller's AbortSignal is the deadline, so it reports `timeout`.
   */
  httpTimeoutMs?: number;
  /** Maximum sockets of the created client's agent; default 256. */
  maxSockets?: number;
}

/** One key-service Lambda function reached with InvokeCommand (RequestResponse). */
export class LambdaInvokeTarget implements KeyServiceTarget {
  readonly name: string;
  readonly functionName: string;
  readonly client: LambdaClient;
  private readonly ownsClient: boolean;

  constructor(options: LambdaInvokeTargetOptions) {
    if (typeof options.functionName !== 'string' || options.functionName.length === 0) {
      throw new TypeError('functionName is required');
    }
    this.functionName = options.functionName;
    this.name = `lambda:${options.functionName}`;
    if (options.lambdaClient) {
      this.client = options.lambdaClient;
      this.ownsClient = false;
    } else {
      const timeout = options.httpTimeoutMs ?? DEFAULT_TIMEOUT_MS;
      const maxSockets = options.maxSockets ?? DEFAULT_MAX_IN_FLIGHT;
      this.client = new LambdaClient({
        region: options.region,
        endpoint: options.endpoint,
        credentials: options.credentials,
        maxAttempts: 1,
        requestHandler: new NodeHttpHandler({
          connectionTimeout: timeout,
          requestTimeout: timeout + 500,
          throwOnRequestTimeout: true,
          httpAgent: new http.Agent({ keepAlive: true, maxSockets }),
          httpsAgent: new https.Agent({ keepAlive: true, maxSockets }),
        }),
      });
      this.ownsClient = true;
    }
  }

  async invoke(request: KeyServiceRequest, signal: AbortSignal): Promise<unknown> {
    const command = new InvokeCommand({
      FunctionName: this.functionName,
      InvocationType: 'RequestResponse',
      Payload: Buffer.from(JSON.stringify(request), 'utf8'),
    });
    let out;
    try {
      // raceAbort guarantees the deadline even if a middleware ignores the signal.
      out = await raceAbort(this.client.send(command, { abortSignal: signal }), signal);
    } catch (err) {
      if (signal.aborted) throw abortReason(signal);
      throw mapLambdaError(err);
    }
    if (out.FunctionError) {
      throw new KeyOperationError('function_error', `key-service function error (${functionErrorType(out.Payload)})`);
    }
    if (out.StatusCode !== undefined && out.StatusCode !== 200) {
      throw new KeyOperationError('internal', `unexpected Lambda status ${out.StatusCode}`);
    }
    if (!out.Payload || out.Payload.length === 0) throw new KeyOperationError('internal', 'empty key-service response');
    try {
      return JSON.parse(Buffer.from(out.Payload).toString('utf8')) as unknown;
    } catch {
      throw new KeyOperationError('internal', 'malformed key-service response: not JSON');
    }
  }

  close(): void {
    if (this.ownsClient) this.client.destroy();
  }
}
