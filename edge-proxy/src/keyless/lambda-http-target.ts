/**
 * Lambda Invoke (RequestResponse) over one keep-alive HTTP connection pool, signed with the AWS SDK's
 * own SigV4 signer (docs/key-service-protocol.md, "Transport").
 *
 * Why not `LambdaClient.send(InvokeCommand)`: the SDK's middleware stack (serde, retries, user agent,
 * endpoint rules, checksum and logging steps) costs several times the signature itself on every key
 * operation, and the key operation is on the path of every full handshake (docs/benchmarks.md). This
 * target keeps everything that is the SDK's business *to the SDK*: the region, the credential provider
 * chain with its caching and refresh, the endpoint (an explicit endpoint, then the SDK's endpoint
 * variables such as AWS_ENDPOINT_URL_LAMBDA and the config file, then the endpoint rules with FIPS
 * and dual-stack), and SigV4 (`@smithy/signature-v4`, given the client's own sha256 and credentials).
 * It only sends the one signed POST and reads the answer the way the SDK's REST-JSON deserializer
 * would: `x-amzn-ErrorType` (or the body's `__type`/`code`/`Type`) names a service error, and
 * `X-Amz-Function-Error` marks an error thrown inside the function.
 *
 * Timeouts are those the failover layer relies on (lambda-targets.ts): a short connect timeout that
 * surfaces as `unavailable` (retryable elsewhere), a request timeout that is only a backstop past the
 * caller's deadline, and the caller's AbortSignal as the deadline itself (`timeout`).
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { SignatureV4 } from '@smithy/signature-v4';
import type { KeyServiceRequest } from '../../../contract/key-service-protocol';
import { KeyOperationError } from '../tls/key-operations';
import { abortReason, raceAbort } from './key-service-client';
import { functionErrorType, mapLambdaError } from './lambda-errors';
import type { KeyServiceTarget } from './target';

type LambdaCredentials = NonNullable<ConstructorParameters<typeof LambdaClient>[0]>['credentials'];

/** A Lambda answer larger than this is not a key-service response (they are a few hundred bytes). */
const MAX_RESPONSE_BYTES = 1 << 20;

export interface LambdaHttpTargetOptions {
  /** Function name, name:alias, or ARN of the key-service function. */
  functionName: string;
  /** For logs and metrics; default `lambda:<functionName>`. */
  name?: string;
  /** AWS region; default from the SDK's configuration (AWS_REGION, profile). */
  region?: string;
  /** Endpoint override; default: the SDK's endpoint variables, then the region's Lambda endpoint. */
  endpoint?: string;
  /** Credentials override; default: the SDK's provider chain (task role in ECS). */
  credentials?: LambdaCredentials;
  /** TCP connect timeout (a failed connect is `unavailable`, so the failover layer may retry). */
  connectTimeoutMs: number;
  /** Socket idle backstop; keep it past the caller's deadline so a slow answer ends as `timeout`. */
  requestTimeoutMs: number;
  /** Sockets kept to this key service. */
  maxSockets: number;
  /** Signing clock (tests that compare signatures at a fixed time). */
  clock?: () => Date;
}

interface ResolvedEndpoint {
  url: URL;
  signer: SignatureV4;
}

export class LambdaHttpTarget implements KeyServiceTarget {
  readonly name: string;
  readonly functionName: string;
  /** Used for its resolved configuration only (region, credentials, endpoint, sha256); it sends nothing. */
  private readonly sdk: LambdaClient;
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private resolved: Promise<ResolvedEndpoint> | undefined;

  constructor(private readonly options: LambdaHttpTargetOptions) {
    if (typeof options.functionName !== 'string' || options.functionName.length === 0) {
      throw new TypeError('functionName is required');
    }
    this.functionName = options.functionName;
    this.name = options.name ?? `lambda:${options.functionName}`;
    this.sdk = new LambdaClient({
      region: options.region,
      endpoint: options.endpoint,
      credentials: options.credentials,
    });
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets });
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets: options.maxSockets });
  }

  async invoke(request: KeyServiceRequest, signal: AbortSignal): Promise<unknown> {
    try {
      const { status, headers, body } = await raceAbort(this.send(request, signal), signal);
      return readInvokeAnswer(status, headers, body);
    } catch (err) {
      if (signal.aborted) throw abortReason(signal);
      throw mapLambdaError(err);
    }
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
    this.sdk.destroy();
  }

  private async send(request: KeyServiceRequest, signal: AbortSignal): Promise<HttpAnswer> {
    const { url, signer } = await this.endpoint();
    const body = Buffer.from(JSON.stringify(request), 'utf8');
    const signed = await signer.sign(
      {
        method: 'POST',
        protocol: url.protocol,
        hostname: url.hostname,
        port: url.port ? Number(url.port) : undefined,
        path: `${url.pathname.replace(/\/$/, '')}/2015-03-31/functions/${encodePathSegment(this.functionName)}/invocations`,
        query: {},
        headers: {
          host: url.host,
          'content-type': 'application/octet-stream',
          'content-length': String(body.length),
          'x-amz-invocation-type': 'RequestResponse',
        },
        body,
      },
      { signingDate: this.options.clock?.() },
    );
    return this.post(url, signed.path, signed.headers, body, signal);
  }

  /** The endpoint and signer, resolved once by the SDK's own configuration (retried after a failure). */
  private endpoint(): Promise<ResolvedEndpoint> {
    this.resolved ??= this.resolveEndpoint().catch((err: unknown) => {
      this.resolved = undefined;
      throw err;
    });
    return this.resolved;
  }

  private async resolveEndpoint(): Promise<ResolvedEndpoint> {
    const config = this.sdk.config;
    const region = await config.region();
    let url: URL;
    if (config.isCustomEndpoint && config.endpoint) {
      const e = await config.endpoint();
      url = new URL(`${e.protocol}//${e.hostname}${e.port ? `:${e.port}` : ''}${e.path ?? '/'}`);
    } else {
      const configured = await config.serviceConfiguredEndpoint?.();
      url = configured
        ? new URL(configured)
        : new URL(
            config.endpointProvider({
              Region: region,
              UseFIPS: await config.useFipsEndpoint(),
              UseDualStack: await config.useDualstackEndpoint(),
            }).url.href,
          );
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:')
      throw new KeyOperationError('internal', `unsupported Lambda endpoint scheme ${url.protocol}`);
    const signer = new SignatureV4({
      service: 'lambda',
      region,
      credentials: config.credentials,
      sha256: config.sha256,
      uriEscapePath: true,
      applyChecksum: true,
    });
    return { url, signer };
  }

  private post(
    url: URL,
    path: string,
    headers: Record<string, string>,
    body: Buffer,
    signal: AbortSignal,
  ): Promise<HttpAnswer> {
    const { connectTimeoutMs, requestTimeoutMs } = this.options;
    const secure = url.protocol === 'https:';
    return new Promise<HttpAnswer>((resolve, reject) => {
      const req = (secure ? https : http).request({
        method: 'POST',
        host: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port || (secure ? 443 : 80),
        servername: secure ? url.hostname : undefined,
        path,
        headers,
        agent: secure ? this.httpsAgent : this.httpAgent,
      });
      const onAbort = () => req.destroy(abortReason(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      const done = () => signal.removeEventListener('abort', onAbort);
      req.on('socket', (socket) => {
        if (!socket.connecting) return;
        const timer = setTimeout(() => req.destroy(networkError('ETIMEDOUT', 'connect timeout')), connectTimeoutMs);
        socket.once('connect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      });
      req.setTimeout(requestTimeoutMs, () =>
        req.destroy(Object.assign(new Error('Lambda request timed out'), { name: 'TimeoutError' })),
      );
      req.on('error', (err) => {
        done();
        reject(err);
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES)
            req.destroy(new KeyOperationError('internal', 'key-service response too large'));
          else chunks.push(chunk);
        });
        res.on('end', () => {
          done();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
        });
        // A response cut short (socket reset, the size cap above) ends in 'close' without 'end'.
        res.on('close', () => {
          if (res.complete) return;
          done();
          reject(networkError('ECONNRESET', 'Lambda response cut short'));
        });
      });
      req.end(body);
    });
  }
}

interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** The decoded function result, or the error the SDK's REST-JSON deserializer would have raised. */
function readInvokeAnswer(status: number, headers: http.IncomingHttpHeaders, body: Buffer): unknown {
  if (status < 200 || status >= 300) throw serviceError(status, headers, body);
  if (headers['x-amz-function-error']) {
    throw new KeyOperationError('function_error', `key-service function error (${functionErrorType(body)})`);
  }
  if (status !== 200) throw new KeyOperationError('internal', `unexpected Lambda status ${status}`);
  if (body.length === 0) throw new KeyOperationError('internal', 'empty key-service response');
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    throw new KeyOperationError('internal', 'malformed key-service response: not JSON');
  }
}

/**
 * A Lambda service error shaped like the SDK's (name + $metadata.httpStatusCode), so that one mapping
 * (lambda-errors.ts) serves both. The name comes from `x-amzn-ErrorType` (its part before `:`), else
 * from the body's `__type`/`code`/`Type` (the part after `#`), else from the status.
 */
function serviceError(status: number, headers: http.IncomingHttpHeaders, body: Buffer): Error {
  const header = headers['x-amzn-errortype'];
  let name = typeof header === 'string' ? header.split(':')[0] : '';
  if (!name) {
    try {
      const parsed = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      const raw = [parsed.__type, parsed.code, parsed.Code].find((v): v is string => typeof v === 'string') ?? '';
      name = raw.includes('#') ? raw.slice(raw.lastIndexOf('#') + 1) : raw;
    } catch {
      // not JSON: named by status below
    }
  }
  if (!/^[A-Za-z0-9_.]{1,80}$/.test(name)) name = status >= 500 ? 'ServiceException' : `HttpStatus${status}`;
  return Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
}

function networkError(code: string, message: string): Error {
  return Object.assign(new Error(`${message} (${code})`), { code });
}

/** RFC 3986 unreserved characters stay; everything else (`:` of an ARN or alias too) is percent-encoded, as the SDK does. */
function encodePathSegment(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
