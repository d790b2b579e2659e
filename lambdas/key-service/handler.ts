/**
 * The key service (DESIGN §5): parse → validate → authorise → build the exact bytes to sign → backend
 * → respond. Deployed as an AWS Lambda (Node 20, `handler`), and usable in-process (`createHandler`)
 * by the local Lambda endpoint and tests.
 *
 * The handler never throws: every failure is an ErrorResponse with a typed code. It never logs or
 * returns key material, transcript hashes or signatures; one JSON log line per request.
 */
import type { KMSClient } from '@aws-sdk/client-kms';
import { createBackend, type Backend } from './backends';
import { loadKeysConfigFromEnv, type KeyConfig } from './config';
import { ConfigError, KeyServiceError } from './errors';
import {
  PROTOCOL_VERSION,
  TLS13_CERTIFICATE_VERIFY_SCHEMES,
  schemeMatchesKeySpec,
  tls13CertificateVerifyContent,
  type ErrorCode,
  type ErrorResponse,
  type KeyServiceResponse,
  type OkResponse,
  type PingResult,
  type PublicKeyResult,
  type SignatureResult,
  type SignatureSchemeName,
} from './protocol';
import { parseRequest, type ParsedRequest } from './validate';

export const KEY_SERVICE_VERSION = '0.1.0';

/** The part of the Lambda context object the service reads. */
export interface LambdaContextLike {
  awsRequestId?: string;
  functionName?: string;
}

export type KeyServiceHandler = (event: unknown, context?: LambdaContextLike) => Promise<KeyServiceResponse>;

export interface KeyServiceLogRecord {
  level: 'info' | 'warn' | 'error';
  msg: 'key_service_request' | 'key_service_config_error';
  [field: string]: unknown;
}

export type KeyServiceLogger = (record: KeyServiceLogRecord) => void;

/** Default logger: one JSON object per line on stdout (CloudWatch Logs in Lambda). */
export const jsonLineLogger: KeyServiceLogger = (record) => {
  console.log(JSON.stringify({ time: new Date().toISOString(), service: 'keyless-key-service', ...record }));
};

export interface KeyServiceOptions {
  /** Key configuration; defaults to KEYLESS_KEYS from the environment. */
  keys?: KeyConfig[];
  /** Pre-built backends (tests); used instead of `keys`. */
  backends?: Backend[];
  /** KMS client for `kms` keys (tests); defaults to the container's shared client. */
  kmsClient?: KMSClient;
  logger?: KeyServiceLogger;
}

/**
 * Build a handler over a fixed set of keys. Throws ConfigError when the configuration is invalid
 * (including unreadable `file` keys) — this is the only place that throws.
 */
export function createHandler(options: KeyServiceOptions = {}): KeyServiceHandler {
  const logger = options.logger ?? jsonLineLogger;
  const backends = options.backends ?? (options.keys ?? loadKeysConfigFromEnv()).map((k) => createBackend(k, { kmsClient: options.kmsClient }));
  const byName = new Map<string, Backend>();
  for (const b of backends) {
    if (byName.has(b.name)) throw new ConfigError(`duplicate key name "${b.name}"`);
    byName.set(b.name, b);
  }

  return async (event: unknown, context?: LambdaContextLike): Promise<KeyServiceResponse> => {
    const started = process.hrtime.bigint();
    const elapsedMs = () => Math.round((Number(process.hrtime.bigint() - started) / 1e6) * 1000) / 1000;
    const awsRequestId = typeof context?.awsRequestId === 'string' ? context.awsRequestId : undefined;

    const parsed = parseRequest(event);
    if (!parsed.ok) {
      logger({
        level: 'warn',
        msg: 'key_service_request',
        id: parsed.id,
        op: parsed.op,
        key: parsed.key,
        outcome: parsed.code,
        reason: parsed.message,
        latencyMs: elapsedMs(),
        awsRequestId,
      });
      return errorResponse(parsed.id, parsed.code, parsed.message);
    }

    const req = parsed.request;
    const logBase = {
      id: req.id,
      op: req.op,
      key: 'key' in req ? req.key : undefined,
      scheme: req.op === 'tls13.certificate_verify' ? req.scheme : undefined,
      awsRequestId,
    };
    try {
      const { result, backendMs } = await execute(req, byName);
      logger({ level: 'info', msg: 'key_service_request', ...logBase, outcome: 'ok', latencyMs: elapsedMs(), backendMs });
      return okResponse(req.id, result);
    } catch (err) {
      const e =
        err instanceof KeyServiceError
          ? err
          : new KeyServiceError('internal', 'internal error', err instanceof Error ? err.name : typeof err);
      logger({
        level: levelFor(e.code),
        msg: 'key_service_request',
        ...logBase,
        outcome: e.code,
        reason: e.message,
        upstream: e.upstream,
        latencyMs: elapsedMs(),
      });
      return errorResponse(req.id, e.code, e.message);
    }
  };
}

async function execute(
  req: ParsedRequest,
  keys: ReadonlyMap<string, Backend>,
): Promise<{ result: SignatureResult | PublicKeyResult | PingResult; backendMs?: number }> {
  switch (req.op) {
    case 'ping':
      return {
        result: {
          service: 'keyless-key-service',
          protocol: PROTOCOL_VERSION,
          version: KEY_SERVICE_VERSION,
          keys: [...keys.values()].map((b) => b.describe()),
        },
      };
    case 'public_key': {
      const backend = lookup(keys, req.key);
      const { spki, keySpec } = await backend.publicKey();
      return { result: { spki: spki.toString('base64'), keySpec } };
    }
    case 'tls13.certificate_verify': {
      const backend = lookup(keys, req.key);
      await authoriseScheme(backend, req.scheme);
      // The service, not the caller, builds the bytes it signs (RFC 8446 §4.4.3).
      const content = tls13CertificateVerifyContent(req.transcriptHash);
      const signed = await backend.sign(content, req.scheme);
      const backendMs = Math.round(signed.backendMs * 1000) / 1000;
      return { result: { signature: signed.signature.toString('base64'), backendMs }, backendMs };
    }
  }
}

function lookup(keys: ReadonlyMap<string, Backend>, name: string): Backend {
  const backend = keys.get(name);
  if (!backend) throw new KeyServiceError('unknown_key', 'key name is not configured on this key service');
  return backend;
}

async function authoriseScheme(backend: Backend, scheme: SignatureSchemeName): Promise<void> {
  if (!TLS13_CERTIFICATE_VERIFY_SCHEMES.includes(scheme)) {
    throw new KeyServiceError('unsupported', `${scheme} cannot be used in a TLS 1.3 CertificateVerify (RFC 8446 §4.4.3)`);
  }
  const { keySpec } = await backend.publicKey();
  if (!schemeMatchesKeySpec(scheme, keySpec)) {
    throw new KeyServiceError('unsupported', `${scheme} is not compatible with a ${keySpec} key`);
  }
}

function levelFor(code: ErrorCode): 'warn' | 'error' {
  return code === 'internal' || code === 'unavailable' ? 'error' : 'warn';
}

function okResponse<T>(id: string, result: T): OkResponse<T> {
  return { v: PROTOCOL_VERSION, id, ok: true, result };
}

function errorResponse(id: string | null, code: ErrorCode, message: string): ErrorResponse {
  return { v: PROTOCOL_VERSION, id, ok: false, error: { code, message } };
}

// ---------------------------------------------------------------------------------------------
// The Lambda entry point: configuration from the environment, built once per container.
// ---------------------------------------------------------------------------------------------

let defaultHandler: KeyServiceHandler | undefined;
let defaultConfigError: string | undefined;

function getDefaultHandler(): KeyServiceHandler | undefined {
  if (defaultHandler || defaultConfigError) return defaultHandler;
  try {
    defaultHandler = createHandler();
  } catch (err) {
    defaultConfigError = err instanceof ConfigError ? err.message : 'configuration could not be loaded';
    jsonLineLogger({ level: 'error', msg: 'key_service_config_error', reason: defaultConfigError });
  }
  return defaultHandler;
}

/** AWS Lambda handler (Node 20). Configuration: KEYLESS_KEYS; KMS endpoint/region: SDK defaults. */
export async function handler(event: unknown, context?: LambdaContextLike): Promise<KeyServiceResponse> {
  const h = getDefaultHandler();
  if (h) return h(event, context);
  const parsed = parseRequest(event);
  const id = parsed.ok ? parsed.request.id : parsed.id;
  return errorResponse(id, 'internal', 'key service is misconfigured (see its logs)');
}

/** Forget the environment-derived handler (tests that change KEYLESS_KEYS). */
export function resetDefaultHandlerForTests(): void {
  defaultHandler = undefined;
  defaultConfigError = undefined;
}
