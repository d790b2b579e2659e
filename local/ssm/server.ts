/**
 * HTTP front end of the local SSM Parameter Store: the AWS JSON 1.1 protocol as SSM speaks it.
 *
 *   POST /  X-Amz-Target: AmazonSSM.<Operation>  Content-Type: application/x-amz-json-1.1
 *
 * Timestamps are epoch seconds; errors are HTTP 400 (500 for internal faults) with
 * `{"__type": "<Exception>", "message": "..."}` and the same name in `x-amzn-ErrorType`, so the
 * production `@aws-sdk/client-ssm` raises the exception classes it raises against AWS. SigV4
 * signatures are not verified; with a `CallLog` each call is recorded with the access key id that
 * signed it (local/call-log.ts).
 *
 * It authenticates nobody, so it listens on loopback only and refuses requests whose Host header is
 * not a loopback name (DNS rebinding).
 */
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

import { CallLog, sigV4Credential, type RecordedCall } from '../call-log';
import { SsmError } from './errors';
import { OPERATIONS, resourcesOf, type Json } from './operations';
import { SsmStore } from './store';
import { loopbackHostHeader } from '../loopback-host';

export interface LocalSsmOptions {
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Loopback address to bind: '127.0.0.1' (default), '::1' or 'localhost'. */
  host?: string;
  /** Directory for persistent state; omit for in-memory parameters. */
  dataDir?: string;
  /** Region in parameter ARNs (default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1). */
  region?: string;
  /** Account id in parameter ARNs (default 000000000000). */
  accountId?: string;
  /** Records every call with its caller (off unless given; may be shared with other endpoints). */
  callLog?: CallLog;
  /** Receives one line per failed request. Never given request bodies or values. */
  log?: (line: string) => void;
}

export interface LocalSsm {
  /** Base URL for the SDK `endpoint` option or AWS_ENDPOINT_URL_SSM, e.g. http://127.0.0.1:4600 */
  readonly url: string;
  readonly port: number;
  readonly region: string;
  readonly accountId: string;
  /** The recorded calls (live; empty unless a `callLog` was given). */
  readonly calls: readonly RecordedCall[];
  close(): Promise<void>;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);
const MAX_BODY = 1 << 20;
const CONTENT_TYPE = 'application/x-amz-json-1.1';
/** Members never kept in the call record. */
const SECRET_MEMBERS = ['Value'];

export async function startLocalSsm(opts: LocalSsmOptions = {}): Promise<LocalSsm> {
  const host = opts.host ?? '127.0.0.1';
  if (!LOOPBACK_HOSTS.has(host)) throw new Error(`local SSM must listen on loopback (127.0.0.1, ::1 or localhost), not ${host}`);
  const region = opts.region ?? (process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1');
  const accountId = opts.accountId ?? '000000000000';
  const store = new SsmStore(region, accountId, opts.dataDir);
  const log = opts.log ?? (() => undefined);
  const callLog = opts.callLog;

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

  const fail = (res: http.ServerResponse, op: string, err: SsmError): void => {
    log(`ssm: ${op} -> ${err.type}: ${err.message}`);
    send(res, err.status, { __type: err.type, message: err.message }, err.type);
  };

  const handle = (req: http.IncomingMessage, res: http.ServerResponse, raw: Buffer): void => {
    if (!loopbackHostHeader(req.headers.host)) {
      return fail(res, '-', new SsmError('AccessDeniedException', 'Host header must name a loopback address', 403));
    }
    const target = req.headers['x-amz-target'];
    const m = typeof target === 'string' ? /^AmazonSSM\.([A-Za-z]+)$/.exec(target) : null;
    if (req.method !== 'POST' || !m) {
      return fail(res, String(target ?? '-'), new SsmError('UnknownOperationException', 'Expected POST / with X-Amz-Target: AmazonSSM.<Operation>'));
    }
    const opName = m[1];
    const op = OPERATIONS[opName];
    if (!op) return fail(res, opName, new SsmError('UnknownOperationException', `Operation ${opName} is not implemented by the local SSM`));
    let body: unknown;
    try {
      body = raw.length === 0 ? {} : JSON.parse(raw.toString('utf8'));
    } catch {
      return fail(res, opName, new SsmError('SerializationException', 'Request body is not valid JSON'));
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return fail(res, opName, new SsmError('SerializationException', 'Request body must be a JSON object'));
    }
    const request = body as Json;
    const record = (error?: string): void => {
      if (!callLog) return;
      let resources: string[] = [];
      try {
        resources = resourcesOf(store, request);
      } catch {
        // a malformed name names no resource
      }
      callLog.record({ service: 'ssm', operation: opName, headers: req.headers, region, request, resources, error, omit: SECRET_MEMBERS });
    };
    try {
      const out = op(store, request, { accessKeyId: sigV4Credential(req.headers.authorization)?.accessKeyId, now: Date.now() });
      record();
      send(res, 200, out);
    } catch (err) {
      const e = err instanceof SsmError ? err : new SsmError('InternalServerError', 'Internal error in the local SSM', 500);
      if (!(err instanceof SsmError)) log(`ssm: ${opName} internal error: ${(err as Error).message}`);
      record(e.type);
      fail(res, opName, e);
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
      if (tooLarge) return fail(res, '-', new SsmError('SerializationException', 'Request body too large', 413));
      handle(req, res, Buffer.concat(chunks));
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
    region,
    accountId,
    calls: callLog?.calls ?? [],
    close: () =>
      new Promise<void>((resolve, reject) => {
        store.close();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
