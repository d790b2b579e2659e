/**
 * The key service (docs/key-service-protocol.md): parse → validate → authorise → build the exact bytes to sign/derive →
 * backend → respond. Deployed as an AWS Lambda (`nodejs24.x`, `handler`), and usable in-process
 * (`createHandler`) by the local Lambda endpoint and tests.
 *
 * The handler never throws: every failure is an ErrorResponse with a typed code. It never logs or
 * returns key material, premaster or master secrets in logs, transcript hashes or signatures; one
 * structured log line per request, and (in the Lambda) CloudWatch EMF metrics per request.
 */
import type { KMSClient } from '@aws-sdk/client-kms';
import { createBackend, KmsBackend, type Backend, type HostedCustody } from './backends';
import {
  ALIAS_KEY_NAME_PATTERN,
  isAliasPrefixEntry,
  loadKeysConfigFromEnv,
  type KeyConfig,
  type KeysConfigEntry,
} from './config';
import { ConfigError, KeyServiceError } from '../../contract/key-service-errors';
import {
  collectKmsCalls,
  createPowertoolsLogger,
  createPowertoolsMetrics,
  jsonLineLogger,
  noMetrics,
  type KeyServiceLogger,
  type KeyServiceMetrics,
} from './observability';
import {
  PROTOCOL_VERSION,
  TLS12_SERVER_KEY_EXCHANGE_SCHEMES,
  TLS13_CERTIFICATE_VERIFY_SCHEMES,
  schemeMatchesKeySpec,
  tls12ServerKeyExchangeContent,
  tls12ServerRandom,
  tls13CertificateVerifyContent,
  type ErrorCode,
  type KeyServiceResponse,
  type MasterSecretResult,
  type PingResult,
  type PublicKeyResult,
  type SignatureResult,
  type SignatureSchemeName,
  type TicketKeysResult,
} from '../../contract/key-service-protocol';
import { checkRsaMasterSecretRequest } from './rsa-premaster';
import { loadTicketKeysConfigFromEnv, ticketKeysFromConfig, type TicketKeySource } from './ticket-keys';
import {
  decodeRequest,
  encodeErrorResponse,
  encodeOkResponse,
  encodeResult,
  type DecodedRequest,
} from '../../contract/key-service-codec';

export { jsonLineLogger, type KeyServiceLogger, type KeyServiceLogRecord } from './observability';

export const KEY_SERVICE_VERSION = '0.2.0';

/** The part of the Lambda context object the service reads. */
export interface LambdaContextLike {
  awsRequestId?: string;
  functionName?: string;
}

export type KeyServiceHandler = (event: unknown, context?: LambdaContextLike) => Promise<KeyServiceResponse>;

export interface KeyServiceOptions {
  /** Key configuration (configured keys and at most one alias-prefix entry); defaults to KEYLESS_KEYS from the environment. */
  keys?: KeysConfigEntry[];
  /**
   * Custody modes the host adds to `kms` and `sealed` (the local Lambda endpoint: `file`). The
   * Lambda adds none, so a `file` entry in KEYLESS_KEYS is a ConfigError there.
   */
  hostedCustodies?: readonly HostedCustody[];
  /** Pre-built backends (tests); used instead of `keys`. */
  backends?: Backend[];
  /** KMS client for `kms`/`sealed` keys and ticket keys (tests); defaults to the container's shared client. */
  kmsClient?: KMSClient;
  /**
   * Source of session-ticket keys. Default: random per-epoch keys in SSM Parameter Store under the
   * KMS envelope when KEYLESS_TICKET_KEY_ID and KEYLESS_TICKET_PARAMETER_PREFIX are set (see
   * ticket-keys.ts), otherwise none. `null`: none (`ticket_keys` answers `unavailable`).
   */
  ticketKeys?: TicketKeySource | null;
  /** Unknown alias-resolved names remembered without asking KMS again (defaults: 60 s, 1024 names). */
  unknownKeyCache?: Partial<UnknownKeyCacheOptions>;
  logger?: KeyServiceLogger;
  /** Metrics sink; default none (the Lambda entry point uses Powertools EMF metrics). */
  metrics?: KeyServiceMetrics;
}

type ExecuteOutput = {
  result: SignatureResult | MasterSecretResult | TicketKeysResult | PublicKeyResult | PingResult;
  backendMs?: number;
};

/**
 * Build a handler over a fixed set of keys. Throws ConfigError when the configuration is invalid
 * (including unreadable keys of a hosted custody such as the local stack's `file`) — this is the only place that throws.
 */
export function createHandler(options: KeyServiceOptions = {}): KeyServiceHandler {
  const sinkLogger = options.logger ?? jsonLineLogger;
  const sinkMetrics = options.metrics ?? noMetrics;
  // Neither logging nor metrics may ever fail a request (or make the handler throw).
  const logger: KeyServiceLogger = (record) => {
    try {
      sinkLogger(record);
    } catch {
      // dropped
    }
  };
  const metrics: KeyServiceMetrics = {
    request: (m) => {
      try {
        sinkMetrics.request(m);
      } catch {
        // dropped
      }
    },
  };
  const hostedCustodies = options.hostedCustodies ?? [];
  const entries = options.backends ? [] : (options.keys ?? loadKeysConfigFromEnv(process.env, hostedCustodies));
  const backends =
    options.backends ??
    entries
      .filter((k): k is KeyConfig => !isAliasPrefixEntry(k))
      .map((k) => createBackend(k, { kmsClient: options.kmsClient, hostedCustodies }));
  const byName = new Map<string, Backend>();
  for (const b of backends) {
    if (byName.has(b.name)) throw new ConfigError(`duplicate key name "${b.name}"`);
    byName.set(b.name, b);
  }
  const pattern = entries.find(isAliasPrefixEntry);
  const keys = new KeyResolver(
    byName,
    pattern ? { aliasPrefix: pattern.aliasPrefix, kmsClient: options.kmsClient } : undefined,
    {
      ...DEFAULT_UNKNOWN_KEY_CACHE,
      ...options.unknownKeyCache,
    },
  );
  let ticketKeys: TicketKeySource | undefined;
  if (options.ticketKeys === undefined) {
    const cfg = loadTicketKeysConfigFromEnv();
    if (cfg) ticketKeys = ticketKeysFromConfig(cfg, { kmsClient: options.kmsClient });
  } else {
    ticketKeys = options.ticketKeys ?? undefined;
  }

  return async (event: unknown, context?: LambdaContextLike): Promise<KeyServiceResponse> => {
    const started = process.hrtime.bigint();
    const elapsedMs = () => Math.round((Number(process.hrtime.bigint() - started) / 1e6) * 1000) / 1000;
    const awsRequestId = typeof context?.awsRequestId === 'string' ? context.awsRequestId : undefined;

    const parsed = decodeRequest(event);
    if (!parsed.ok) {
      const latencyMs = elapsedMs();
      logger({
        level: 'warn',
        msg: 'key_service_request',
        id: parsed.id,
        op: parsed.op,
        key: parsed.key,
        outcome: parsed.code,
        reason: parsed.message,
        latencyMs,
        awsRequestId,
      });
      metrics.request({ op: parsed.op ?? 'invalid', outcome: parsed.code, latencyMs, kms: [] });
      return encodeErrorResponse(parsed.id, parsed.code, parsed.message);
    }

    const req = parsed.request;
    const logBase = {
      id: req.id,
      op: req.op,
      key: 'key' in req ? req.key : undefined,
      scheme: 'scheme' in req ? req.scheme : undefined,
      ems: req.op === 'tls12.rsa_master_secret' ? req.handshakeMessages !== undefined : undefined,
      awsRequestId,
    };
    const run = await collectKmsCalls(() => execute(req, keys, ticketKeys));
    const latencyMs = elapsedMs();
    const kms =
      run.calls.length > 0
        ? { kmsCalls: run.calls.length, kmsMs: round3(run.calls.reduce((t, c) => t + c.ms, 0)) }
        : {};
    if (!run.failed && run.value) {
      logger({
        level: 'info',
        msg: 'key_service_request',
        ...logBase,
        outcome: 'ok',
        latencyMs,
        backendMs: run.value.backendMs,
        ...kms,
      });
      metrics.request({ op: req.op, outcome: 'ok', latencyMs, kms: run.calls });
      return encodeOkResponse(req.id, run.value.result);
    }
    const err = run.error;
    const e =
      err instanceof KeyServiceError
        ? err
        : new KeyServiceError('internal', 'internal error', err instanceof Error ? err.name : typeof err);
    if (e.code === 'unknown_key' && logBase.key !== undefined) keys.notFound(logBase.key);
    logger({
      level: levelFor(e.code),
      msg: 'key_service_request',
      ...logBase,
      outcome: e.code,
      reason: e.message,
      upstream: e.upstream,
      latencyMs,
      ...kms,
    });
    metrics.request({ op: req.op, outcome: e.code, latencyMs, kms: run.calls });
    return encodeErrorResponse(req.id, e.code, e.message);
  };
}

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

async function execute(
  req: DecodedRequest,
  keys: KeyResolver,
  ticketKeys: TicketKeySource | undefined,
): Promise<ExecuteOutput> {
  switch (req.op) {
    case 'ping':
      return {
        result: {
          service: 'keyless-key-service',
          protocol: PROTOCOL_VERSION,
          version: KEY_SERVICE_VERSION,
          keys: keys.configured().map((b) => b.describe()),
          ...(keys.aliasPrefix !== undefined
            ? { keyPattern: { name: '*', custody: 'kms', aliasPrefix: keys.aliasPrefix } }
            : {}),
        },
      };
    case 'public_key': {
      const backend = lookup(keys, req.key);
      const { spki, keySpec } = await backend.publicKey();
      return { result: encodeResult('public_key', { spki, keySpec }) };
    }
    case 'tls13.certificate_verify': {
      const backend = lookup(keys, req.key);
      if (!TLS13_CERTIFICATE_VERIFY_SCHEMES.includes(req.scheme)) {
        throw new KeyServiceError(
          'unsupported',
          `${req.scheme} cannot be used in a TLS 1.3 CertificateVerify (RFC 8446 §4.4.3)`,
        );
      }
      await authoriseScheme(backend, req.scheme);
      // The service, not the caller, builds the bytes it signs (RFC 8446 §4.4.3).
      return signed(await backend.sign(tls13CertificateVerifyContent(req.transcriptHash), req.scheme));
    }
    case 'tls12.server_key_exchange': {
      const backend = lookup(keys, req.key);
      if (!TLS12_SERVER_KEY_EXCHANGE_SCHEMES.includes(req.scheme)) {
        throw new KeyServiceError('unsupported', `${req.scheme} cannot be used in a TLS 1.2 ServerKeyExchange`);
      }
      await authoriseScheme(backend, req.scheme);
      // params were validated (named curve, point on the curve, nothing after it) by decodeRequest;
      // the server random is derived here from the seed, never taken from the caller.
      const content = tls12ServerKeyExchangeContent(
        req.clientRandom,
        tls12ServerRandom(req.serverRandomSeed),
        req.params,
      );
      return signed(await backend.sign(content, req.scheme));
    }
    case 'tls12.rsa_master_secret': {
      const backend = lookup(keys, req.key);
      // Public checks first (freshness, EMS transcript); they never look at the plaintext.
      checkRsaMasterSecretRequest(req);
      const out = await backend.rsaMasterSecret(req);
      if (out.masterSecret.length !== 48)
        throw new KeyServiceError('internal', 'backend returned a master secret of the wrong length');
      // backendMs is reported in whole milliseconds here: the edge needs no finer view of how long
      // a decryption took (see docs/key-service-protocol.md, "Residual exposure").
      const backendMs = Math.round(out.backendMs);
      const result = encodeResult('tls12.rsa_master_secret', { masterSecret: out.masterSecret, backendMs });
      out.masterSecret.fill(0);
      return { result, backendMs };
    }
    case 'ticket_keys': {
      if (!ticketKeys) {
        throw new KeyServiceError(
          'unavailable',
          'session-ticket keys are not configured on this key service (KEYLESS_TICKET_KEY_ID, KEYLESS_TICKET_PARAMETER_PREFIX)',
        );
      }
      const t = await ticketKeys.get();
      const result = encodeResult('ticket_keys', t);
      return { result, backendMs: round3(t.backendMs) };
    }
  }
}

function signed(out: { signature: Buffer; backendMs: number }): ExecuteOutput {
  const backendMs = round3(out.backendMs);
  return { result: encodeResult('tls13.certificate_verify', { signature: out.signature, backendMs }), backendMs };
}

function lookup(keys: KeyResolver, name: string): Backend {
  const backend = keys.get(name);
  if (!backend) throw new KeyServiceError('unknown_key', 'key name is not configured on this key service');
  return backend;
}

/** Backends resolved by alias prefix are kept (public-key cache and all) for this many names. */
const MAX_RESOLVED_KEYS = 256;

export interface UnknownKeyCacheOptions {
  /** How long a name KMS did not know is answered `unknown_key` without asking again. */
  ttlMs: number;
  /** At most this many such names are remembered (the oldest is forgotten first). */
  maxEntries: number;
  /** Clock, for tests. */
  now: () => number;
}

/**
 * Short, so a key made with `keyless keys create` is served within a minute; bounded, so a flood of
 * made-up names costs neither memory nor more than one KMS GetPublicKey per name and minute.
 */
export const DEFAULT_UNKNOWN_KEY_CACHE: UnknownKeyCacheOptions = { ttlMs: 60_000, maxEntries: 1024, now: Date.now };

/**
 * Key names → backends: the configured keys first; then, with an alias-prefix entry, any other name
 * N (alias-safe) as the KMS key `<aliasPrefix>N`. Whether that alias exists is KMS's answer at the
 * first use (NotFoundException → `unknown_key`), so new key generations need no redeploy. A name
 * KMS did not know is remembered for a short while (negative cache) and takes no backend slot.
 * Names are immutable per key generation (docs/rotation.md), so signing by alias never pairs a
 * certificate with another key.
 */
class KeyResolver {
  private readonly resolved = new Map<string, Backend>();
  /** name → when it may be asked about again. */
  private readonly unknown = new Map<string, number>();
  readonly aliasPrefix: string | undefined;

  constructor(
    private readonly byName: ReadonlyMap<string, Backend>,
    private readonly pattern: { aliasPrefix: string; kmsClient?: KMSClient } | undefined,
    private readonly unknownCache: UnknownKeyCacheOptions,
  ) {
    this.aliasPrefix = pattern?.aliasPrefix;
  }

  configured(): Backend[] {
    return [...this.byName.values()];
  }

  get(name: string): Backend | undefined {
    const configured = this.byName.get(name);
    if (configured || !this.pattern || !ALIAS_KEY_NAME_PATTERN.test(name)) return configured;
    if (this.knownUnknown(name)) return undefined;
    let backend = this.resolved.get(name);
    if (backend) {
      // Most recently used last, so the oldest is evicted first.
      this.resolved.delete(name);
    } else {
      backend = new KmsBackend({ name, keyId: `${this.pattern.aliasPrefix}${name}`, client: this.pattern.kmsClient });
      if (this.resolved.size >= MAX_RESOLVED_KEYS) this.resolved.delete(this.resolved.keys().next().value as string);
    }
    this.resolved.set(name, backend);
    return backend;
  }

  /** KMS said the alias of an alias-resolved name does not exist: free its slot, remember the answer. */
  notFound(name: string): void {
    if (this.byName.has(name) || !this.resolved.delete(name)) return;
    this.unknown.delete(name);
    if (this.unknown.size >= this.unknownCache.maxEntries)
      this.unknown.delete(this.unknown.keys().next().value as string);
    this.unknown.set(name, this.unknownCache.now() + this.unknownCache.ttlMs);
  }

  private knownUnknown(name: string): boolean {
    const until = this.unknown.get(name);
    if (until === undefined) return false;
    if (this.unknownCache.now() < until) return true;
    this.unknown.delete(name);
    return false;
  }
}

async function authoriseScheme(backend: Backend, scheme: SignatureSchemeName): Promise<void> {
  const { keySpec } = await backend.publicKey();
  if (!schemeMatchesKeySpec(scheme, keySpec)) {
    throw new KeyServiceError('unsupported', `${scheme} is not compatible with a ${keySpec} key`);
  }
}

function levelFor(code: ErrorCode): 'warn' | 'error' {
  return code === 'internal' || code === 'unavailable' ? 'error' : 'warn';
}

// ---------------------------------------------------------------------------------------------
// The Lambda entry point: configuration from the environment, built once per container.
// ---------------------------------------------------------------------------------------------

/**
 * The Lambda entry: its handler is built from the environment at the first invocation, once per
 * container, and a configuration error answers every request `internal` (logged once) instead of
 * failing the invocation. Only `kms` and `sealed` custody: no host adds any here.
 */
export function createLambdaEntry(): (event: unknown, context?: LambdaContextLike) => Promise<KeyServiceResponse> {
  let built: KeyServiceHandler | undefined;
  let configError: string | undefined;
  const getHandler = (): KeyServiceHandler | undefined => {
    if (built || configError) return built;
    // Powertools reads its environment (POWERTOOLS_*, AWS_LAMBDA_LOG_LEVEL) when constructed: here,
    // once per container.
    const logger = createPowertoolsLogger();
    try {
      built = createHandler({ logger, metrics: createPowertoolsMetrics() });
    } catch (err) {
      configError = err instanceof ConfigError ? err.message : 'configuration could not be loaded';
      logger({ level: 'error', msg: 'key_service_config_error', reason: configError });
    }
    return built;
  };
  return async (event, context) => {
    const h = getHandler();
    if (h) return h(event, context);
    const parsed = decodeRequest(event);
    const id = parsed.ok ? parsed.request.id : parsed.id;
    return encodeErrorResponse(id, 'internal', 'key service is misconfigured (see its logs)');
  };
}

/**
 * AWS Lambda handler (`nodejs24.x`). Configuration: KEYLESS_KEYS, KEYLESS_TICKET_KEY_ID,
 * KEYLESS_TICKET_PARAMETER_PREFIX, KEYLESS_TICKET_EPOCH_SECONDS, KEYLESS_TICKET_EPOCHS_ACCEPTED;
 * KMS and SSM endpoints/region: SDK defaults; logs and metrics: Powertools
 * (POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE, KEYLESS_DEPLOYMENT as a dimension).
 */
export const handler = createLambdaEntry();
