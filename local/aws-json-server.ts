/**
 * The AWS JSON 1.1 protocol server shared by the local endpoints (local KMS, local SSM):
 *
 *   POST /  X-Amz-Target: <TargetPrefix>.<Operation>  Content-Type: application/x-amz-json-1.1
 *
 * Errors are HTTP 400 (500 for internal faults) with `{"__type": "<Exception>", "message": "..."}`
 * and the same name in `x-amzn-ErrorType`, so the production AWS SDK v3 clients raise the exception
 * classes they raise against AWS. SigV4 signatures are not verified.
 *
 * The endpoints authenticate nobody, so they listen on loopback only and refuse requests whose Host
 * header is not a loopback name (DNS rebinding, local/loopback-host.ts).
 */
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

import { loopbackHostHeader } from './loopback-host';

export type Json = Record<string, unknown>;

/** An error the client sees as an AWS exception: its `__type`, message and HTTP status. */
export class AwsJsonError extends Error {
  constructor(
    /** The `__type` the client sees (the exception name). */
    readonly type: string,
    message?: string,
    /** HTTP status; AWS uses 400 for client faults, 500 for internal ones. */
    readonly status = 400,
  ) {
    super(message ?? '');
    this.name = type;
  }

  /** Whether a message is sent. AWS sends none for some errors (e.g. an invalid KMS signature). */
  get hasMessage(): boolean {
    return this.message.length > 0;
  }
}

/** One request, decoded. */
export interface AwsJsonCall {
  operation: string;
  request: Json;
  headers: http.IncomingHttpHeaders;
}

/** The steps of one call: `run` does the operation, `record` notes its outcome (the call record). */
export interface AwsJsonCallSteps {
  run(): Json | Promise<Json>;
  record(error?: string, out?: Json): void;
}

export interface AwsJsonService {
  /** Prefix of log lines, e.g. `kms`. */
  name: string;
  /** Name in messages, e.g. `local KMS`. */
  title: string;
  /** The X-Amz-Target prefix, e.g. `TrentService`. */
  targetPrefix: string;
  /** The exception name of an internal fault, e.g. `KMSInternalException`. */
  internalErrorType: string;
  hasOperation(name: string): boolean;
  /** Prepares one call (anything read before it runs happens here). */
  begin(call: AwsJsonCall): AwsJsonCallSteps;
}

export interface AwsJsonServerOptions {
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Loopback address to bind: '127.0.0.1' (default), '::1' or 'localhost'. */
  host?: string;
  /** Receives one line per failed request and per internal error. Never given request bodies. */
  log?: (line: string) => void;
}

export interface AwsJsonStats {
  /** Requests received (including rejected ones). */
  requests: number;
  /** Successful calls per operation name, e.g. `{ Sign: 12, GetPublicKey: 2 }`. */
  operations: Record<string, number>;
  /** Failed calls per exception name, e.g. `{ DisabledException: 1 }`. */
  errors: Record<string, number>;
}

export interface AwsJsonServer {
  readonly url: string;
  readonly port: number;
  readonly host: string;
  /** Live counters (mutated in place). */
  readonly stats: AwsJsonStats;
  resetStats(): void;
  close(): Promise<void>;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);
const MAX_BODY = 1 << 20;
const CONTENT_TYPE = 'application/x-amz-json-1.1';

/** The region of requests that name none (AWS_REGION, AWS_DEFAULT_REGION, else us-east-1). */
export function defaultRegion(): string {
  return process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1';
}

export const DEFAULT_ACCOUNT_ID = '000000000000';

/** The address to bind (default 127.0.0.1); throws unless it is a loopback one. */
export function loopbackBindAddress(title: string, host = '127.0.0.1'): string {
  if (!LOOPBACK_HOSTS.has(host))
    throw new Error(`${title} must listen on loopback (127.0.0.1, ::1 or localhost), not ${host}`);
  return host;
}

export async function startAwsJsonServer(
  service: AwsJsonService,
  opts: AwsJsonServerOptions = {},
): Promise<AwsJsonServer> {
  const host = loopbackBindAddress(service.title, opts.host);
  const log = opts.log ?? (() => undefined);
  const stats: AwsJsonStats = { requests: 0, operations: {}, errors: {} };
  const targetPattern = new RegExp(`^${service.targetPrefix}\\.([A-Za-z]+)$`);

  const send = (res: http.ServerResponse, status: number, body: Json, errorType?: string): void => {
    const payload = JSON.stringify(body);
    const headers: http.OutgoingHttpHeaders = {
      'content-type': CONTENT_TYPE,
      'content-length': Buffer.byteLength(payload),
      'x-amzn-requestid': crypto.randomUUID(),
    };
    if (errorType) headers['x-amzn-errortype'] = errorType;
    res.writeHead(status, headers);
    res.end(payload);
  };

  const fail = (res: http.ServerResponse, op: string, err: AwsJsonError): void => {
    stats.errors[err.type] = (stats.errors[err.type] ?? 0) + 1;
    log(`${service.name}: ${op} -> ${err.type}${err.hasMessage ? `: ${err.message}` : ''}`);
    const body: Json = { __type: err.type };
    if (err.hasMessage) body.message = err.message;
    send(res, err.status, body, err.type);
  };

  const decode = (req: http.IncomingMessage, raw: Buffer): AwsJsonCall | { op: string; error: AwsJsonError } => {
    if (!loopbackHostHeader(req.headers.host)) {
      return {
        op: '-',
        error: new AwsJsonError('AccessDeniedException', 'Host header must name a loopback address', 403),
      };
    }
    const target = req.headers['x-amz-target'];
    const m = typeof target === 'string' ? targetPattern.exec(target) : null;
    if (req.method !== 'POST' || !m) {
      return {
        op: String(target ?? '-'),
        error: new AwsJsonError(
          'UnknownOperationException',
          `Expected POST / with X-Amz-Target: ${service.targetPrefix}.<Operation>`,
        ),
      };
    }
    const operation = m[1];
    if (!service.hasOperation(operation)) {
      return {
        op: operation,
        error: new AwsJsonError(
          'UnknownOperationException',
          `Operation ${operation} is not implemented by the ${service.title}`,
        ),
      };
    }
    let body: unknown;
    try {
      body = raw.length === 0 ? {} : JSON.parse(raw.toString('utf8'));
    } catch {
      return { op: operation, error: new AwsJsonError('SerializationException', 'Request body is not valid JSON') };
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return { op: operation, error: new AwsJsonError('SerializationException', 'Request body must be a JSON object') };
    }
    return { operation, request: body as Json, headers: req.headers };
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse, raw: Buffer): Promise<void> => {
    stats.requests++;
    const call = decode(req, raw);
    if ('error' in call) return fail(res, call.op, call.error);
    const steps = service.begin(call);
    try {
      const out = await steps.run();
      stats.operations[call.operation] = (stats.operations[call.operation] ?? 0) + 1;
      steps.record(undefined, out);
      send(res, 200, out);
    } catch (err) {
      if (err instanceof AwsJsonError) {
        steps.record(err.type);
        return fail(res, call.operation, err);
      }
      log(`${service.name}: ${call.operation} internal error: ${(err as Error).message}`);
      steps.record(service.internalErrorType);
      return fail(
        res,
        call.operation,
        new AwsJsonError(service.internalErrorType, `Internal error in the ${service.title}`, 500),
      );
    }
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => {
      if (tooLarge) {
        stats.requests++;
        return fail(res, '-', new AwsJsonError('SerializationException', 'Request body too large', 413));
      }
      handle(req, res, Buffer.concat(chunks)).catch((err: Error) => {
        log(`${service.name}: internal error: ${err.message}`);
        if (!res.headersSent) send(res, 500, { __type: service.internalErrorType }, service.internalErrorType);
      });
    });
    req.on('error', () => res.destroy());
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host === '::1' ? '[::1]' : host;

  return {
    url: `http://${urlHost}:${port}`,
    port,
    host,
    stats,
    resetStats() {
      stats.requests = 0;
      for (const k of Object.keys(stats.operations)) delete stats.operations[k];
      for (const k of Object.keys(stats.errors)) delete stats.errors[k];
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
