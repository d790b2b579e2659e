/**
 * HTTP front end of the local KMS: the AWS JSON 1.1 protocol as KMS speaks it.
 *
 *   POST /  X-Amz-Target: TrentService.<Operation>  Content-Type: application/x-amz-json-1.1
 *
 * Responses are JSON with binary members in base64 and timestamps in epoch seconds; errors are
 * HTTP 400 (500 for internal faults) with `{"__type": "<Exception>", "message": "..."}` and the
 * same name in `x-amzn-ErrorType`, so the production `@aws-sdk/client-kms` raises the same
 * exception classes it raises against AWS. SigV4 signatures are not verified.
 *
 * One endpoint serves every region of the account, as `AWS_ENDPOINT_URL_KMS` points every regional
 * client at it: the region is the one the request is signed for (the SigV4 credential scope), with a
 * key store per region, so multi-Region keys (ReplicateKey) and aliases per region behave as in KMS.
 *
 * The endpoint holds private keys and authenticates nobody, so it listens on loopback only and
 * refuses requests whose Host header is not a loopback name (DNS rebinding).
 */
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

import { CallLog } from '../call-log';
import { KmsError } from './errors';
import { Input, type Json } from './input';
import { OPERATIONS } from './operations';
import { KmsStore } from './store';
import { loopbackHostHeader } from '../loopback-host';

export interface LocalKmsOptions {
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Loopback address to bind: '127.0.0.1' (default), '::1' or 'localhost'. */
  host?: string;
  /** Directory for persistent state (e.g. `.keyless/dev/kms`); omit for in-memory keys. */
  dataDir?: string;
  /** Region of requests that name none (unsigned), and of `region` (default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1). */
  region?: string;
  /** Account id in key ARNs (default 000000000000). */
  accountId?: string;
  /** Receives one line per failed request and per internal error. Never given request bodies. */
  log?: (line: string) => void;
  /** Records every call with its caller (off unless given; may be shared with other endpoints). */
  callLog?: CallLog;
}

export interface LocalKmsStats {
  /** Requests received (including rejected ones). */
  requests: number;
  /** Successful calls per operation name, e.g. `{ Sign: 12, GetPublicKey: 2 }`. */
  operations: Record<string, number>;
  /** Failed calls per exception name, e.g. `{ DisabledException: 1 }`. */
  errors: Record<string, number>;
}

export interface LocalKms {
  /** Base URL for the SDK `endpoint` option or AWS_ENDPOINT_URL_KMS, e.g. http://127.0.0.1:4599 */
  readonly url: string;
  readonly port: number;
  readonly host: string;
  readonly region: string;
  readonly accountId: string;
  /** Live counters (mutated in place). */
  readonly stats: LocalKmsStats;
  /** The recorded calls (live; empty unless a `callLog` was given). */
  readonly calls: CallLog['calls'];
  resetStats(): void;
  close(): Promise<void>;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);
const MAX_BODY = 1 << 20;
const CONTENT_TYPE = 'application/x-amz-json-1.1';
/** Request members never kept in the call record (messages, plaintext, ciphertext, signatures, policies). */
const UNRECORDED_MEMBERS = ['Message', 'Plaintext', 'CiphertextBlob', 'Signature', 'Mac', 'Policy'];

/**
 * Condition keys of the key a request names, as they are at call time: `kms:ResourceAliases` (the
 * aliases pointing at it) and `aws:ResourceTag/<key>` (its tags).
 */
function keyContextOf(store: KmsStore, body: Json): Record<string, string | string[]> {
  const id = typeof body.KeyId === 'string' ? body.KeyId : typeof body.TargetKeyId === 'string' ? body.TargetKeyId : undefined;
  if (id === undefined) return {};
  try {
    const key = store.resolveKey(id, { aliases: true });
    const context: Record<string, string | string[]> = {
      'kms:ResourceAliases': store
        .listAliases()
        .filter((a) => a.targetKeyId === key.keyId)
        .map((a) => a.aliasName),
    };
    for (const [k, v] of Object.entries(key.tags)) context[`aws:ResourceTag/${k}`] = v;
    return context;
  } catch {
    return {};
  }
}

/** The key and alias ARNs a request names, resolved as far as the store can (for the call record). */
function resourcesOf(store: KmsStore, body: Json, out?: Json): string[] {
  const arns = new Set<string>();
  for (const field of ['KeyId', 'TargetKeyId', 'DestinationKeyId', 'SourceKeyId']) {
    const id = body[field];
    if (typeof id !== 'string') continue;
    try {
      arns.add(store.keyArn(store.resolveKey(id, { aliases: true }).keyId));
    } catch {
      // an unknown key names no resource of ours
    }
  }
  if (typeof body.AliasName === 'string') arns.add(store.aliasArn(body.AliasName));
  const created = ((out?.KeyMetadata ?? out?.ReplicaKeyMetadata) as Json | undefined)?.Arn;
  if (typeof created === 'string') arns.add(created);
  return [...arns];
}

function defaultRegion(): string {
  return process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1';
}

/** The region of a SigV4 `Authorization` header's credential scope (`Credential=AKID/date/region/kms/aws4_request`). */
function signedRegion(authorization: string | undefined): string | undefined {
  const m = /Credential=[^/,\s]+\/\d{8}\/([a-z]+(?:-[a-z]+){1,3}-\d+)\/kms\/aws4_request/.exec(authorization ?? '');
  return m?.[1];
}

export async function startLocalKms(opts: LocalKmsOptions = {}): Promise<LocalKms> {
  const host = opts.host ?? '127.0.0.1';
  if (!LOOPBACK_HOSTS.has(host)) {
    throw new Error(`local KMS must listen on loopback (127.0.0.1, ::1 or localhost), not ${host}`);
  }
  const region = opts.region ?? defaultRegion();
  const accountId = opts.accountId ?? '000000000000';
  const stores = new Map<string, KmsStore>();
  const storeFor = (r: string): KmsStore => {
    let s = stores.get(r);
    if (!s) {
      s = new KmsStore({ region: r, accountId, dataDir: opts.dataDir });
      s.peer = storeFor;
      stores.set(r, s);
    }
    return s;
  };
  storeFor(region);
  const log = opts.log ?? (() => undefined);
  const stats: LocalKmsStats = { requests: 0, operations: {}, errors: {} };
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

  const fail = (res: http.ServerResponse, op: string, err: KmsError): void => {
    stats.errors[err.type] = (stats.errors[err.type] ?? 0) + 1;
    log(`kms: ${op} -> ${err.type}${err.hasMessage ? `: ${err.message}` : ''}`);
    const body: Json = { __type: err.type };
    if (err.hasMessage) body.message = err.message;
    send(res, err.status, body, err.type);
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse, raw: Buffer): Promise<void> => {
    stats.requests++;
    if (!loopbackHostHeader(req.headers.host)) {
      return fail(res, '-', new KmsError('AccessDeniedException', 'Host header must name a loopback address', 403));
    }
    const target = req.headers['x-amz-target'];
    const m = typeof target === 'string' ? /^TrentService\.([A-Za-z]+)$/.exec(target) : null;
    if (req.method !== 'POST' || !m) {
      return fail(res, String(target ?? '-'), new KmsError('UnknownOperationException', 'Expected POST / with X-Amz-Target: TrentService.<Operation>'));
    }
    const opName = m[1];
    const op = OPERATIONS[opName];
    if (!op) {
      return fail(res, opName, new KmsError('UnknownOperationException', `Operation ${opName} is not implemented by the local KMS`));
    }
    let body: unknown;
    try {
      body = raw.length === 0 ? {} : JSON.parse(raw.toString('utf8'));
    } catch {
      return fail(res, opName, new KmsError('SerializationException', 'Request body is not valid JSON'));
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return fail(res, opName, new KmsError('SerializationException', 'Request body must be a JSON object'));
    }
    const request = body as Json;
    const callRegion = signedRegion(req.headers.authorization) ?? region;
    const store = storeFor(callRegion);
    // Resolved before the call, so a key it deletes or an alias it moves is recorded as it was.
    const before = callLog ? resourcesOf(store, request) : [];
    const context = callLog ? keyContextOf(store, request) : undefined;
    const record = (error?: string, out?: Json): void =>
      callLog?.record({ service: 'kms', operation: opName, headers: req.headers, region: callRegion, request, resources: [...new Set([...before, ...resourcesOf(store, {}, out)])], context, error, omit: UNRECORDED_MEMBERS });
    try {
      const out = await op(store, new Input(request));
      stats.operations[opName] = (stats.operations[opName] ?? 0) + 1;
      record(undefined, out);
      send(res, 200, out);
    } catch (err) {
      if (err instanceof KmsError) {
        record(err.type);
        return fail(res, opName, err);
      }
      log(`kms: ${opName} internal error: ${(err as Error).message}`);
      record('KMSInternalException');
      return fail(res, opName, new KmsError('KMSInternalException', 'Internal error in the local KMS', 500));
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
        return fail(res, '-', new KmsError('SerializationException', 'Request body too large', 413));
      }
      handle(req, res, Buffer.concat(chunks)).catch((err: Error) => {
        log(`kms: internal error: ${err.message}`);
        if (!res.headersSent) send(res, 500, { __type: 'KMSInternalException' }, 'KMSInternalException');
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
    region,
    accountId,
    stats,
    calls: callLog?.calls ?? [],
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
