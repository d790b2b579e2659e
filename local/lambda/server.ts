/**
 * A local endpoint compatible with the AWS Lambda Invoke REST API as the AWS SDK uses it
 * (`@aws-sdk/client-lambda` InvokeCommand), running registered handlers in-process. Loopback only,
 * and only for requests whose Host header names loopback (DNS rebinding); no authentication (SigV4
 * headers are accepted and ignored): every local user may invoke (README.md, "Quick start").
 *
 *   POST /2015-03-31/functions/{FunctionName}/invocations[?Qualifier=q]
 *     FunctionName: name, name:qualifier, partial ARN (123456789012:function:name) or full ARN.
 *     X-Amz-Invocation-Type: RequestResponse (default) → 200 + the handler's JSON result;
 *                            Event → 202 (handler runs in the background); DryRun → 204.
 *     A throwing handler → 200, X-Amz-Function-Error: Unhandled, {"errorType","errorMessage","trace"}.
 *     Unknown function → 404, x-amzn-ErrorType: ResourceNotFoundException, {"Type":"User","Message"}.
 *   GET  /_local/stats        → {"functions": {"name": {"invocations", "errors", "inFlight"}}}
 *   POST /_local/stats/reset  → 204
 *   Test-only: `faultInjector` (off unless given) can answer an Invoke with a service error (e.g. 429
 *   TooManyRequestsException) or a raw payload instead of running the handler.
 */
import * as http from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { loopbackHostHeader } from '../loopback-host';

import type { CallLog, RecordedCall } from '../call-log';

/** The Lambda context fields handlers commonly read. */
export interface LocalLambdaContext {
  awsRequestId: string;
  functionName: string;
  functionVersion: string;
  invokedFunctionArn: string;
  memoryLimitInMB: string;
  getRemainingTimeInMillis(): number;
}

export type LocalLambdaHandler = (event: unknown, context: LocalLambdaContext) => unknown;

export interface FunctionStats {
  /** Invocations that reached the handler (RequestResponse and Event; not DryRun). */
  invocations: number;
  /** Invocations whose handler threw (function errors). */
  errors: number;
  /** Handlers currently running. */
  inFlight: number;
}

/**
 * A fault the endpoint answers an Invoke with instead of running the handler (tests only):
 * `error` — a Lambda service error as the REST-JSON protocol carries it, e.g.
 *   { type: 'error', status: 429, errorType: 'TooManyRequestsException' };
 * `raw` — HTTP 200 with this exact payload (e.g. bytes that are not JSON).
 */
export type LocalLambdaFault =
  { type: 'error'; status: number; errorType: string; message?: string } | { type: 'raw'; body: string };

export interface LocalLambdaOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Loopback only: 127.0.0.1 (default), ::1 or localhost. */
  host?: string;
  /**
   * Registered functions by name. A key "name:qualifier" serves that qualifier only; a plain "name"
   * serves the unqualified function and $LATEST.
   */
  functions: Record<string, LocalLambdaHandler>;
  /** Value of getRemainingTimeInMillis at the start of an invocation (default 3000, Lambda's default timeout). */
  functionTimeoutMs?: number;
  region?: string;
  accountId?: string;
  /**
   * Test-only fault injection: asked before each RequestResponse Invoke of a registered function
   * (by its registered name); a returned fault is the answer and the handler does not run (nor count
   * in stats). Absent (the default) or returning undefined: normal behaviour.
   */
  faultInjector?: (functionName: string) => LocalLambdaFault | undefined;
  /** Records every Invoke with its caller (off unless given; may be shared with other endpoints). Never the payload. */
  callLog?: CallLog;
}

export interface LocalLambda {
  /** e.g. http://127.0.0.1:40123 — use as the Lambda client's endpoint (AWS_ENDPOINT_URL_LAMBDA). */
  url: string;
  port: number;
  /** Snapshot of per-function counters. */
  stats(): Record<string, FunctionStats>;
  resetStats(): void;
  /** The recorded calls (live; empty unless a `callLog` was given). */
  readonly calls: readonly RecordedCall[];
  close(): Promise<void>;
}

const MAX_PAYLOAD_BYTES = 6 * 1024 * 1024; // Lambda's synchronous request/response payload limit.
const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);

export async function startLocalLambda(options: LocalLambdaOptions): Promise<LocalLambda> {
  const host = options.host ?? '127.0.0.1';
  if (!LOOPBACK_HOSTS.has(host)) throw new Error(`local lambda: refusing to listen on non-loopback host ${host}`);
  const region = options.region ?? 'us-east-1';
  const accountId = options.accountId ?? '000000000000';
  const timeoutMs = options.functionTimeoutMs ?? 3000;
  const functions = new Map(Object.entries(options.functions));
  const counters = new Map<string, FunctionStats>();
  for (const name of functions.keys()) counters.set(name, { invocations: 0, errors: 0, inFlight: 0 });

  const server = http.createServer((req, res) => {
    handleRequest(req, res).catch(() => {
      if (!res.headersSent)
        sendJson(
          res,
          500,
          { Type: 'Service', Message: 'local lambda internal error' },
          { 'x-amzn-ErrorType': 'ServiceException' },
        );
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 60_000;

  async function handleRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // DNS rebinding: a web page that reaches us through its own name is refused before anything runs.
    if (!loopbackHostHeader(req.headers.host)) {
      drain(req);
      sendError(res, 403, 'AccessDeniedException', 'Host header must name a loopback address');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://local');
    if (url.pathname === '/_local/stats' && req.method === 'GET') {
      drain(req);
      sendJson(res, 200, { functions: snapshot() });
      return;
    }
    if (url.pathname === '/_local/stats/reset' && req.method === 'POST') {
      drain(req);
      resetCounters();
      res.writeHead(204).end();
      return;
    }
    const m = INVOKE_PATH.exec(url.pathname);
    if (!m || req.method !== 'POST') {
      drain(req);
      sendError(res, 404, 'UnknownOperationException', 'Unknown operation');
      return;
    }
    let rawName: string;
    try {
      rawName = decodeURIComponent(m[1]);
    } catch {
      drain(req);
      sendError(res, 400, 'InvalidParameterValueException', 'Invalid function name');
      return;
    }
    const target = resolveFunction(rawName, url.searchParams.get('Qualifier'));
    options.callLog?.record({
      service: 'lambda',
      operation: 'InvokeFunction',
      headers: req.headers,
      region,
      request: {
        FunctionName: rawName,
        Qualifier: url.searchParams.get('Qualifier') ?? undefined,
        InvocationType: headerValue(req, 'x-amz-invocation-type') ?? 'RequestResponse',
      },
      resources: [functionArn(rawName, url.searchParams.get('Qualifier'))],
      error: 'error' in target ? target.error : undefined,
    });
    if ('error' in target) {
      drain(req);
      sendError(res, target.status, target.error, target.message);
      return;
    }

    const body = await readBody(req, MAX_PAYLOAD_BYTES);
    if (body === undefined) {
      sendError(
        res,
        413,
        'RequestTooLargeException',
        `Request must be smaller than ${MAX_PAYLOAD_BYTES} bytes for the InvokeFunction operation`,
      );
      return;
    }
    let event: unknown = {};
    if (body.length > 0) {
      try {
        event = JSON.parse(body.toString('utf8'));
      } catch {
        sendError(
          res,
          400,
          'InvalidRequestContentException',
          'Could not parse request body into json: unexpected character',
        );
        return;
      }
    }

    const invocationType = headerValue(req, 'x-amz-invocation-type') ?? 'RequestResponse';
    const arn = `arn:aws:lambda:${region}:${accountId}:function:${target.name}${target.qualifier ? `:${target.qualifier}` : ''}`;
    const requestId = randomUUID();
    const commonHeaders = { 'x-amzn-RequestId': requestId, 'X-Amz-Executed-Version': '$LATEST' };
    switch (invocationType) {
      case 'DryRun':
        res.writeHead(204, commonHeaders).end();
        return;
      case 'Event':
        res.writeHead(202, commonHeaders).end();
        void invoke(target.key, event, arn, requestId);
        return;
      case 'RequestResponse':
        break;
      default:
        sendError(res, 400, 'InvalidParameterValueException', 'Invalid InvocationType');
        return;
    }

    const fault = options.faultInjector?.(target.key);
    if (fault?.type === 'error') {
      sendError(res, fault.status, fault.errorType, fault.message ?? fault.errorType);
      return;
    }
    if (fault?.type === 'raw') {
      sendRaw(res, 200, fault.body, commonHeaders);
      return;
    }

    const outcome = await invoke(target.key, event, arn, requestId);
    if (res.destroyed || res.writableEnded) return; // the caller gave up (e.g. its deadline passed)
    if (outcome.ok) {
      sendRaw(res, 200, outcome.body, commonHeaders);
    } else {
      sendRaw(res, 200, outcome.body, { ...commonHeaders, 'X-Amz-Function-Error': 'Unhandled' });
    }
  }

  async function invoke(
    key: string,
    event: unknown,
    arn: string,
    requestId: string,
  ): Promise<{ ok: boolean; body: string }> {
    const fn = functions.get(key)!;
    const c = counters.get(key)!;
    c.invocations++;
    c.inFlight++;
    const deadline = Date.now() + timeoutMs;
    const context: LocalLambdaContext = {
      awsRequestId: requestId,
      functionName: key.split(':')[0],
      functionVersion: '$LATEST',
      invokedFunctionArn: arn,
      memoryLimitInMB: '128',
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    };
    try {
      const result = await fn(event, context);
      const text = JSON.stringify(result === undefined ? null : result);
      return { ok: true, body: text };
    } catch (err) {
      c.errors++;
      const e = err instanceof Error ? err : new Error(String(err));
      return {
        ok: false,
        body: JSON.stringify({
          errorType: e.name || 'Error',
          errorMessage: e.message,
          trace: (e.stack ?? '')
            .split('\n')
            .map((l) => l.trim())
            .filter(Boolean),
        }),
      };
    } finally {
      c.inFlight--;
    }
  }

  /** Map a FunctionName (+ optional ?Qualifier) to a registered handler key. */
  function resolveFunction(
    raw: string,
    queryQualifier: string | null,
  ): { key: string; name: string; qualifier?: string } | { status: number; error: string; message: string } {
    let name = raw;
    let qualifier: string | undefined;
    const full = /^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:([A-Za-z0-9_-]+)(?::([A-Za-z0-9$_-]+))?$/.exec(
      raw,
    );
    const partial = /^\d{12}:function:([A-Za-z0-9_-]+)(?::([A-Za-z0-9$_-]+))?$/.exec(raw);
    const plain = /^([A-Za-z0-9_-]+)(?::([A-Za-z0-9$_-]+))?$/.exec(raw);
    const match = full ?? partial ?? plain;
    if (!match) return { status: 400, error: 'InvalidParameterValueException', message: 'Invalid function name' };
    name = match[1];
    qualifier = match[2];
    if (queryQualifier !== null && queryQualifier !== '') {
      if (qualifier !== undefined && qualifier !== queryQualifier) {
        return {
          status: 400,
          error: 'InvalidParameterValueException',
          message: 'The derived qualifier from the function name does not match the specified qualifier.',
        };
      }
      qualifier = queryQualifier;
    }
    const candidates =
      qualifier === undefined ? [name] : qualifier === '$LATEST' ? [`${name}:$LATEST`, name] : [`${name}:${qualifier}`];
    for (const key of candidates) if (functions.has(key)) return { key, name, qualifier };
    const arn = `arn:aws:lambda:${region}:${accountId}:function:${name}${qualifier ? `:${qualifier}` : ''}`;
    return { status: 404, error: 'ResourceNotFoundException', message: `Function not found: ${arn}` };
  }

  /** The ARN IAM evaluates an Invoke against: the function, with the qualifier when one is given. */
  function functionArn(raw: string, queryQualifier: string | null): string {
    const m = /^(?:arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:|\d{12}:function:)?([^:]+)(?::([^:]+))?$/.exec(
      raw,
    );
    const name = m?.[1] ?? raw;
    const qualifier = queryQualifier || m?.[2];
    return `arn:aws:lambda:${region}:${accountId}:function:${name}${qualifier ? `:${qualifier}` : ''}`;
  }

  function snapshot(): Record<string, FunctionStats> {
    const out: Record<string, FunctionStats> = {};
    for (const [k, v] of counters) out[k] = { ...v };
    return out;
  }

  function resetCounters(): void {
    for (const c of counters.values()) {
      c.invocations = 0;
      c.errors = 0;
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    url: `http://${urlHost}:${port}`,
    port,
    stats: snapshot,
    resetStats: resetCounters,
    calls: options.callLog?.calls ?? [],
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function headerValue(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function drain(req: http.IncomingMessage): void {
  req.resume();
}

/** Read the whole body, or undefined (and stop reading) once it exceeds `limit` bytes. */
function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > limit) {
        over = true;
        chunks.length = 0;
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!over) resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
  });
}

function sendRaw(res: http.ServerResponse, status: number, body: string, headers: Record<string, string>): void {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendRaw(res, status, JSON.stringify(body), headers);
}

/** A Lambda service error as the REST-JSON protocol carries it (the SDK reads x-amzn-ErrorType). */
function sendError(res: http.ServerResponse, status: number, type: string, message: string): void {
  sendJson(
    res,
    status,
    { Type: status >= 500 ? 'Service' : 'User', Message: message },
    { 'x-amzn-ErrorType': type, 'x-amzn-RequestId': randomUUID() },
  );
}
