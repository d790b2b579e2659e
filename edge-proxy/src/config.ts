/**
 * Edge configuration: one JSON file (path in KEYLESS_EDGE_CONFIG or `--config`) plus environment
 * overrides. Validation names the field and the fix; the edge refuses to start on anything wrong,
 * including anything that looks like private key material.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../../contract/config-error';
import { isObject } from '../../contract/json';
import { METRIC_NAMESPACES } from '../../contract/metric-names';
import { DEFAULT_ADMISSION, fleetShare, type AdmissionConfig } from './keyless/admission';
import type { Level } from './observability/log';
import { groupByName, SUPPORTED_GROUPS, type NamedGroup } from './tls/groups';
import { parseRouting, routesFromEnv, type RouteConfig } from './routing-config';

export interface CertificateConfig {
  /** PEM file with the leaf certificate first, then intermediates. Public data only. */
  chainFile: string;
  /** Key name at the key service that signs for this certificate. */
  keyName: string;
  /** Hostnames served (defaults to the certificate's DNS subjectAltNames). */
  hostnames?: string[];
  /** Client certificates (mTLS) on these hostnames; absent = mode "none". */
  clientAuth?: ClientAuthConfig;
  /**
   * DER OCSP response for the leaf (e.g. from `openssl ocsp -respout`), stapled for clients that send
   * status_request. Refreshed by the operator and re-read with the certificates.
   */
  ocspResponseFile?: string;
}

/** mTLS per certificate entry: ask clients for a certificate issued by one of the CAs in `caFile`. */
export interface ClientAuthConfig {
  mode: 'none' | 'optional' | 'required';
  /** PEM bundle of the CAs client certificates must chain to (absolute path; required unless mode is "none"). */
  caFile?: string;
}

export interface KeyServiceConfig {
  /** Lambda function name or (qualified) ARN. */
  functionName: string;
  region?: string;
  /** Lambda endpoint URL override for this key service (local endpoints, tests). */
  endpoint?: string;
}

/** Circuit breaker of each key service (see docs/configuration.md). */
export interface CircuitBreakerConfig {
  failureThreshold: number;
  errorRateThreshold: number;
  minimumRequests: number;
  windowMs: number;
  cooldownMs: number;
}

/**
 * The certificate store the edge re-reads without restart (docs/configuration.md, "Certificate
 * store"): SSM Parameter Store (what the CDK edge stack deploys) or a local directory. Exactly one of
 * `ssmPrefix` and `directory` is set.
 */
export type CertificateStoreConfig = (
  | {
      /**
       * Parameter path prefix, starting and ending with `/` (e.g. `/keyless/prod/certs/`). Every String
       * parameter below it (recursively) is one certificate: JSON `{"hostnames":[...],"keyName":"...","chainPem":"...","slot":"...","state":"..."}`.
       */
      ssmPrefix: string;
      directory?: undefined;
    }
  | {
      /** Directory with one `<id>.json` file per certificate (same JSON); absolute after parsing. */
      directory: string;
      ssmPrefix?: undefined;
    }
) & {
  /** Re-read the store this often (seconds, ±20 % jitter per edge); default 60. */
  refreshSeconds: number;
};

/** Default certificate refresh interval (seconds). */
export const DEFAULT_CERT_REFRESH_SECONDS = 60;

/** What happens to the decrypted stream (docs/configuration.md, "Proxy mode"). */
export interface ProxyConfig {
  /** `http`: HTTP/1.1 + HTTP/2 reverse proxy to an `http://` origin. `tcp`: raw bytes to a `tcp://` origin. */
  mode: 'http' | 'tcp';
  /** Send a PROXY protocol v2 header (client address, SNI, ALPN, TLS version and cipher) first on every origin connection. */
  sendProxyProtocol: boolean;
  /** Origin TCP connect deadline (both modes). */
  connectTimeoutMs: number;
  /** tcp mode: no byte in either direction for this long closes the connection. */
  idleTimeoutMs: number;
}

/** Logs (docs/observability.md): minimum level, and the share of connections whose debug/info lines are written. */
export interface LoggingConfig {
  level: Level;
  /** 0..1, decided once per connection id; warnings and errors are always written. */
  sampleRate: number;
}

/** CloudWatch embedded metric format lines on stdout (docs/observability.md). */
export interface MetricsConfig {
  emf: boolean;
  namespace: string;
  intervalSeconds: number;
  /** Value of the `Deployment` dimension (KEYLESS_DEPLOYMENT, set by the CDK edge stack). */
  deployment: string;
}

/** Connection limits (docs/configuration.md, "Limits"). */
export interface LimitsConfig {
  /** Open TCP connections on the TLS listener; connections beyond it are closed at accept. */
  maxConnections: number;
  /** HTTP: a client connection with no traffic this long is closed (HTTP/2: GOAWAY). */
  httpIdleTimeoutMs: number;
  /** HTTP/1.1: the complete request head must arrive within this (slowloris) → 408. */
  httpHeadersTimeoutMs: number;
  /** HTTP/1.1: largest request head (request line + headers) → 431. */
  httpMaxHeaderBytes: number;
}

export interface EdgeConfig {
  listen: { host: string; port: number };
  admin: { host: string; port: number };
  /** Certificates from files (served first, in order). May be empty when `certificateStore` is set. */
  certificates: CertificateConfig[];
  /** Certificates read from SSM at startup, after the file certificates. */
  certificateStore?: CertificateStoreConfig;
  keyServices: KeyServiceConfig[];
  /** The default route's origin URL as written (absent: `routes` without a default). */
  origin?: string;
  /** Per-hostname routes to origins (routing-config.ts; docs/configuration.md, "Routing"). */
  routes: RouteConfig[];
  /** Where hosts no route names go; absent = 421 (http mode) or `unrecognized_name` (tcp mode). */
  defaultRoute?: RouteConfig;
  proxy: ProxyConfig;
  alpn: string[];
  /** Key-exchange groups in server preference order (names as in SUPPORTED_GROUPS; docs/tls-engine.md). */
  groups: NamedGroup['name'][];
  keyOperationTimeoutMs: number;
  handshakeTimeoutMs: number;
  maxKeyOperationsInFlight: number;
  /** Connect timeout of one request to a key service (a refused or slow connect is retried elsewhere). */
  keyServiceConnectTimeoutMs: number;
  circuitBreaker: CircuitBreakerConfig;
  /** Admission control for full handshakes (each costs one key operation). */
  admission: AdmissionConfig;
  /** On SIGTERM: how long to wait for in-flight handshakes and active requests before closing the rest. */
  drainTimeoutMs: number;
  /** Expect a PROXY protocol v2 header (from the NLB) before TLS on every connection. */
  proxyProtocol: boolean;
  /** Session tickets (resumption) with fleet-wide keys from the key service. */
  tickets: { enabled: boolean; count: number; lifetimeSeconds: number };
  logging: LoggingConfig;
  metrics: MetricsConfig;
  limits: LimitsConfig;
}

export { assertNoPrivateKey, ConfigError } from '../../contract/config-error';

const DEFAULTS = {
  listen: { host: '0.0.0.0', port: 8443 },
  admin: { host: '127.0.0.1', port: 9090 },
  alpn: ['h2', 'http/1.1'],
  keyOperationTimeoutMs: 1000,
  handshakeTimeoutMs: 10_000,
  maxKeyOperationsInFlight: 256,
  keyServiceConnectTimeoutMs: 300,
  circuitBreaker: {
    failureThreshold: 5,
    errorRateThreshold: 0.5,
    minimumRequests: 20,
    windowMs: 10_000,
    cooldownMs: 5_000,
  },
};

const KNOWN_KEYS = new Set([
  'logging',
  'metrics',
  'limits',
  'proxy',
  'admission',
  'drainTimeoutMs',
  'tickets',
  'proxyProtocol',
  'listen',
  'admin',
  'certificates',
  'certificateStore',
  'keyServices',
  'origin',
  'alpn',
  'groups',
  'keyOperationTimeoutMs',
  'handshakeTimeoutMs',
  'maxKeyOperationsInFlight',
  'keyServiceConnectTimeoutMs',
  'circuitBreaker',
  'routes',
]);

type Json = Record<string, unknown>;

function port(v: unknown, field: string): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new ConfigError(
      field,
      `${JSON.stringify(v)} is not a TCP port`,
      'Use an integer from 1 to 65535 (0 picks a free port).',
    );
  }
  return n;
}

function positive(v: unknown, field: string, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0 || v > max) {
    throw new ConfigError(field, `${JSON.stringify(v)} is out of range`, `Use a whole number from 1 to ${max}.`);
  }
  return v;
}

function parseTickets(v: unknown): EdgeConfig['tickets'] {
  const d = { enabled: true, count: 2, lifetimeSeconds: 86_400 };
  if (v === undefined) return d;
  if (!isObject(v))
    throw new ConfigError(
      'tickets',
      'must be an object',
      'Write it as {"enabled": true, "count": 2, "lifetimeSeconds": 86400}.',
    );
  for (const k of Object.keys(v)) {
    if (!['enabled', 'count', 'lifetimeSeconds'].includes(k))
      throw new ConfigError(
        `tickets.${k}`,
        'unknown field',
        'Remove it; known fields are enabled, count, lifetimeSeconds.',
      );
  }
  return {
    enabled: v.enabled === undefined ? d.enabled : bool(v.enabled, 'tickets.enabled'),
    count: v.count === undefined ? d.count : positive(v.count, 'tickets.count', 10),
    // RFC 8446 §4.6.1: a ticket lifetime may not exceed seven days.
    lifetimeSeconds:
      v.lifetimeSeconds === undefined
        ? d.lifetimeSeconds
        : positive(v.lifetimeSeconds, 'tickets.lifetimeSeconds', 604_800),
  };
}

function bool(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean')
    throw new ConfigError(field, `${JSON.stringify(v)} is not true or false`, 'Use true or false.');
  return v;
}

function str(v: unknown, field: string, fix: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new ConfigError(field, 'missing or not a string', fix);
  return v;
}

function endpoint(v: unknown, field: string, def: { host: string; port: number }): { host: string; port: number } {
  if (v === undefined) return { ...def };
  if (!isObject(v)) throw new ConfigError(field, 'must be an object', 'Write it as {"host": "0.0.0.0", "port": 8443}.');
  return {
    host: v.host === undefined ? def.host : str(v.host, `${field}.host`, 'Give an IP address to bind.'),
    port: v.port === undefined ? def.port : port(v.port, `${field}.port`),
  };
}

function circuitBreaker(v: unknown): CircuitBreakerConfig {
  const d = DEFAULTS.circuitBreaker;
  if (v === undefined) return { ...d };
  const fix =
    'Write it as {"failureThreshold": 5, "errorRateThreshold": 0.5, "minimumRequests": 20, "windowMs": 10000, "cooldownMs": 5000} (every field optional).';
  if (!isObject(v)) throw new ConfigError('circuitBreaker', 'must be an object', fix);
  for (const k of Object.keys(v)) {
    if (!(k in d))
      throw new ConfigError(
        `circuitBreaker.${k}`,
        'unknown field',
        `Remove it; known fields are ${Object.keys(d).join(', ')}.`,
      );
  }
  const rate = v.errorRateThreshold;
  if (rate !== undefined && (typeof rate !== 'number' || !(rate > 0 && rate <= 1))) {
    throw new ConfigError(
      'circuitBreaker.errorRateThreshold',
      `${JSON.stringify(rate)} is out of range`,
      'Use a fraction greater than 0 and at most 1, e.g. 0.5.',
    );
  }
  const int = (k: 'failureThreshold' | 'minimumRequests' | 'windowMs' | 'cooldownMs', max: number): number =>
    v[k] === undefined ? d[k] : positive(v[k], `circuitBreaker.${k}`, max);
  return {
    failureThreshold: int('failureThreshold', 10_000),
    errorRateThreshold: rate === undefined ? d.errorRateThreshold : (rate as number),
    minimumRequests: int('minimumRequests', 1_000_000),
    windowMs: int('windowMs', 3_600_000),
    cooldownMs: int('cooldownMs', 3_600_000),
  };
}

function admission(v: unknown): AdmissionConfig {
  const d = DEFAULT_ADMISSION;
  if (v === undefined) return { ...d };
  const fix =
    'Write it as {"keyOperationsPerSecond": 400, "keyOperationBurst": 40, "maxPendingFullHandshakes": 256, "perClientRatePerSecond": 20, "perClientBurst": 40, "maxTrackedClients": 100000, "keyOperationWindow": 0} (every field optional; a keyOperationWindow above 0 replaces the key-operation bucket by at most that many in any one-second window).';
  if (!isObject(v)) throw new ConfigError('admission', 'must be an object', fix);
  for (const k of Object.keys(v)) {
    if (!(k in d))
      throw new ConfigError(
        `admission.${k}`,
        'unknown field',
        `Remove it; known fields are ${Object.keys(d).join(', ')}.`,
      );
  }
  const int = (k: keyof AdmissionConfig, max: number): number =>
    v[k] === undefined ? d[k] : positive(v[k], `admission.${k}`, max);
  const keyOperationsPerSecond = int('keyOperationsPerSecond', 1_000_000);
  // Default burst: a tenth of a second of the budget (at least 1), so no window sees much more than it.
  const keyOperationBurst =
    v.keyOperationBurst === undefined
      ? Math.max(1, Math.ceil(keyOperationsPerSecond / 10))
      : positive(v.keyOperationBurst, 'admission.keyOperationBurst', 1_000_000);
  if (keyOperationBurst > keyOperationsPerSecond) {
    throw new ConfigError(
      'admission.keyOperationBurst',
      `${keyOperationBurst} is more than keyOperationsPerSecond (${keyOperationsPerSecond})`,
      'Keep the burst at most one second of the budget (default: a tenth of it).',
    );
  }
  // 0 (the default) keeps the bucket; the fleet KMS budget sets the task's share.
  const keyOperationWindow =
    v.keyOperationWindow === undefined || v.keyOperationWindow === 0
      ? 0
      : positive(v.keyOperationWindow, 'admission.keyOperationWindow', 100_000);
  return {
    maxPendingFullHandshakes: int('maxPendingFullHandshakes', 100_000),
    perClientRatePerSecond: int('perClientRatePerSecond', 1_000_000),
    perClientBurst: int('perClientBurst', 1_000_000),
    maxTrackedClients: int('maxTrackedClients', 10_000_000),
    keyOperationsPerSecond,
    keyOperationBurst,
    keyOperationWindow,
  };
}

const PROXY_DEFAULTS: ProxyConfig = {
  mode: 'http',
  sendProxyProtocol: false,
  connectTimeoutMs: 5000,
  idleTimeoutMs: 300_000,
};

function proxyConfig(v: unknown): ProxyConfig {
  const d = PROXY_DEFAULTS;
  if (v === undefined) return { ...d };
  const fix =
    'Write it as {"mode": "http" | "tcp", "sendProxyProtocol": false, "connectTimeoutMs": 5000, "idleTimeoutMs": 300000} (every field optional).';
  if (!isObject(v)) throw new ConfigError('proxy', 'must be an object', fix);
  for (const k of Object.keys(v)) {
    if (!(k in d))
      throw new ConfigError(`proxy.${k}`, 'unknown field', `Remove it; known fields are ${Object.keys(d).join(', ')}.`);
  }
  if (v.mode !== undefined && v.mode !== 'http' && v.mode !== 'tcp') {
    throw new ConfigError(
      'proxy.mode',
      `${JSON.stringify(v.mode)} is not a proxy mode`,
      'Use "http" (reverse proxy to an http:// origin) or "tcp" (raw TCP forwarding to a tcp://host:port origin).',
    );
  }
  return {
    mode: (v.mode as ProxyConfig['mode'] | undefined) ?? d.mode,
    sendProxyProtocol:
      v.sendProxyProtocol === undefined ? d.sendProxyProtocol : bool(v.sendProxyProtocol, 'proxy.sendProxyProtocol'),
    connectTimeoutMs:
      v.connectTimeoutMs === undefined
        ? d.connectTimeoutMs
        : positive(v.connectTimeoutMs, 'proxy.connectTimeoutMs', 600_000),
    idleTimeoutMs:
      v.idleTimeoutMs === undefined ? d.idleTimeoutMs : positive(v.idleTimeoutMs, 'proxy.idleTimeoutMs', 86_400_000),
  };
}

/** ALPN protocol ids the listener offers: HTTP ones in http mode; in tcp mode any but h2, default none. */
function alpnFor(raw: unknown, mode: ProxyConfig['mode']): string[] {
  if (mode === 'http') {
    const alpn = raw === undefined ? [...DEFAULTS.alpn] : raw;
    if (!Array.isArray(alpn) || alpn.length === 0 || alpn.some((p) => p !== 'h2' && p !== 'http/1.1')) {
      throw new ConfigError(
        'alpn',
        `${JSON.stringify(raw)} is not supported`,
        'Use a non-empty list of "h2" and "http/1.1" in preference order.',
      );
    }
    return alpn as string[];
  }
  if (raw === undefined) return [];
  // RFC 7301 §3.1: a protocol id is 1 to 255 bytes; we take printable ASCII (every registered id is).
  if (!Array.isArray(raw) || raw.some((p) => typeof p !== 'string' || !/^[\x21-\x7e]{1,255}$/.test(p))) {
    throw new ConfigError(
      'alpn',
      `${JSON.stringify(raw)} is not a list of ALPN protocol ids`,
      'Use a list of printable ALPN ids in preference order, e.g. ["imap"], or [] / leave it out to offer none (the default in tcp mode).',
    );
  }
  if (raw.includes('h2')) {
    // The edge would promise HTTP/2 on the origin's behalf; the http mode speaks it itself.
    throw new ConfigError(
      'alpn',
      '"h2" cannot be offered in proxy mode "tcp"',
      'Remove "h2", or use proxy mode "http", which serves HTTP/2 to clients itself.',
    );
  }
  return raw as string[];
}

const LOG_LEVELS: readonly Level[] = ['debug', 'info', 'warn', 'error'];

function logging(v: unknown): LoggingConfig {
  const d: LoggingConfig = { level: 'info', sampleRate: 1 };
  if (v === undefined) return d;
  if (!isObject(v))
    throw new ConfigError(
      'logging',
      'must be an object',
      'Write it as {"level": "info", "sampleRate": 1} (every field optional).',
    );
  for (const k of Object.keys(v)) {
    if (!(k in d))
      throw new ConfigError(`logging.${k}`, 'unknown field', 'Remove it; known fields are level, sampleRate.');
  }
  if (v.level !== undefined && !LOG_LEVELS.includes(v.level as Level)) {
    throw new ConfigError(
      'logging.level',
      `${JSON.stringify(v.level)} is not a log level`,
      `Use one of ${LOG_LEVELS.join(', ')} (or KEYLESS_LOG_LEVEL).`,
    );
  }
  const rate = v.sampleRate;
  if (rate !== undefined && (typeof rate !== 'number' || !(rate >= 0 && rate <= 1))) {
    throw new ConfigError(
      'logging.sampleRate',
      `${JSON.stringify(rate)} is out of range`,
      'Use a fraction from 0 to 1 (1 = every connection, 0.1 = one in ten; warnings and errors are always logged), or KEYLESS_LOG_SAMPLE_RATE.',
    );
  }
  return { level: (v.level as Level | undefined) ?? d.level, sampleRate: (rate as number | undefined) ?? d.sampleRate };
}

/** Namespace as CloudWatch accepts it: 1–255 of letters, digits and . - _ / # : (not starting with "AWS/"). */
const NAMESPACE_RE = /^[A-Za-z0-9.\-_/#:]{1,255}$/;

function metricsConfig(v: unknown): MetricsConfig {
  const d: MetricsConfig = {
    emf: false,
    namespace: METRIC_NAMESPACES.edge,
    intervalSeconds: 60,
    deployment: 'default',
  };
  if (v === undefined) return d;
  if (!isObject(v))
    throw new ConfigError(
      'metrics',
      'must be an object',
      'Write it as {"emf": true, "namespace": "Keyless/Edge", "intervalSeconds": 60, "deployment": "prod"} (every field optional).',
    );
  for (const k of Object.keys(v)) {
    if (!(k in d))
      throw new ConfigError(
        `metrics.${k}`,
        'unknown field',
        `Remove it; known fields are ${Object.keys(d).join(', ')}.`,
      );
  }
  const name = (x: unknown, field: string): string => {
    if (typeof x !== 'string' || !NAMESPACE_RE.test(x) || x.startsWith('AWS/')) {
      throw new ConfigError(
        field,
        `${JSON.stringify(x)} is not a CloudWatch ${field === 'metrics.namespace' ? 'namespace' : 'dimension value'}`,
        'Use 1 to 255 letters, digits and . - _ / # : (not starting with "AWS/"), e.g. "Keyless/Edge".',
      );
    }
    return x;
  };
  return {
    emf: v.emf === undefined ? d.emf : bool(v.emf, 'metrics.emf'),
    namespace: v.namespace === undefined ? d.namespace : name(v.namespace, 'metrics.namespace'),
    // CloudWatch stores custom metrics at one-minute resolution: shorter intervals add log lines, not detail.
    intervalSeconds:
      v.intervalSeconds === undefined
        ? d.intervalSeconds
        : positive(v.intervalSeconds, 'metrics.intervalSeconds', 3600),
    deployment: v.deployment === undefined ? d.deployment : name(v.deployment, 'metrics.deployment'),
  };
}

function limits(v: unknown): LimitsConfig {
  const d: LimitsConfig = {
    maxConnections: 20_000,
    httpIdleTimeoutMs: 120_000,
    httpHeadersTimeoutMs: 30_000,
    httpMaxHeaderBytes: 16_384,
  };
  if (v === undefined) return d;
  if (!isObject(v))
    throw new ConfigError(
      'limits',
      'must be an object',
      'Write it as {"maxConnections": 20000, "httpIdleTimeoutMs": 120000, "httpHeadersTimeoutMs": 30000, "httpMaxHeaderBytes": 16384} (every field optional).',
    );
  for (const k of Object.keys(v)) {
    if (!(k in d))
      throw new ConfigError(
        `limits.${k}`,
        'unknown field',
        `Remove it; known fields are ${Object.keys(d).join(', ')}.`,
      );
  }
  const int = (k: keyof LimitsConfig, max: number): number =>
    v[k] === undefined ? d[k] : positive(v[k], `limits.${k}`, max);
  return {
    maxConnections: int('maxConnections', 1_000_000),
    httpIdleTimeoutMs: int('httpIdleTimeoutMs', 86_400_000),
    httpHeadersTimeoutMs: int('httpHeadersTimeoutMs', 600_000),
    httpMaxHeaderBytes: int('httpMaxHeaderBytes', 1_048_576),
  };
}

/** `certificates[i].clientAuth`: {"mode": "none" | "optional" | "required", "caFile": "clients-ca.pem"}. */
function clientAuthConfig(v: unknown, field: string, baseDir: string): ClientAuthConfig {
  const example =
    'Write it as {"mode": "required", "caFile": "clients-ca.pem"} (mode "none", "optional" or "required").';
  if (!isObject(v)) throw new ConfigError(field, 'must be an object', example);
  for (const k of Object.keys(v)) {
    if (k !== 'mode' && k !== 'caFile')
      throw new ConfigError(`${field}.${k}`, 'unknown field', 'Remove it; known fields are mode and caFile.');
  }
  const mode = v.mode;
  if (mode !== 'none' && mode !== 'optional' && mode !== 'required') {
    throw new ConfigError(
      `${field}.mode`,
      `${JSON.stringify(mode)} is not a client-certificate mode`,
      'Use "none", "optional" (ask, let clients without a certificate through) or "required".',
    );
  }
  if (mode === 'none') {
    if (v.caFile !== undefined)
      throw new ConfigError(
        `${field}.caFile`,
        'is set but mode is "none"',
        'Remove caFile, or set mode to "optional" or "required" to use it.',
      );
    return { mode };
  }
  const caFile = str(
    v.caFile,
    `${field}.caFile`,
    'Point it at a PEM bundle of the CA certificates that issue your client certificates.',
  );
  return { mode, caFile: path.resolve(baseDir, caFile) };
}

/** SSM parameter path: `/`-separated segments of [A-Za-z0-9_.-], starting and ending with `/`. */
const SSM_PREFIX_RE = /^\/(?:[A-Za-z0-9_.-]+\/)+$/;

/** Validates an SSM parameter path prefix for certificates (`field` names where it came from). */
export function validateSsmPrefix(v: unknown, field: string): string {
  const fix =
    'Give the parameter path the certificates are stored under, starting and ending with "/", e.g. "/keyless/prod/certs/".';
  if (typeof v !== 'string' || v.length === 0) throw new ConfigError(field, 'missing or not a string', fix);
  if (!v.startsWith('/') || !v.endsWith('/'))
    throw new ConfigError(field, `${JSON.stringify(v)} must start and end with "/"`, fix);
  if (v.length > 1011 || !SSM_PREFIX_RE.test(v)) {
    throw new ConfigError(
      field,
      `${JSON.stringify(v)} is not an SSM parameter path`,
      'Use "/"-separated segments of letters, digits, "_", "." and "-" (no empty segment, not just "/"), e.g. "/keyless/prod/certs/".',
    );
  }
  return v;
}

function certificateStore(v: unknown, baseDir: string): CertificateStoreConfig | undefined {
  if (v === undefined) return undefined;
  const example =
    'Write it as {"ssmPrefix": "/keyless/prod/certs/"} or {"directory": "/srv/keyless/certs"}, optionally with "refreshSeconds": 60 (or set KEYLESS_CERT_SSM_PREFIX / KEYLESS_CERT_DIR).';
  if (!isObject(v)) throw new ConfigError('certificateStore', 'must be an object', example);
  for (const k of Object.keys(v)) {
    if (!['ssmPrefix', 'directory', 'refreshSeconds'].includes(k))
      throw new ConfigError(
        `certificateStore.${k}`,
        'unknown field',
        'Remove it; known fields are ssmPrefix, directory, refreshSeconds.',
      );
  }
  // Certificates are re-read at most every 5 s (SSM GetParametersByPath has a low request quota) and at least daily.
  const refreshSeconds =
    v.refreshSeconds === undefined
      ? DEFAULT_CERT_REFRESH_SECONDS
      : positive(v.refreshSeconds, 'certificateStore.refreshSeconds', 86_400);
  if (refreshSeconds < 5 && v.directory === undefined) {
    throw new ConfigError(
      'certificateStore.refreshSeconds',
      `${refreshSeconds} is too short for SSM`,
      'Use at least 5 seconds with ssmPrefix (SSM throttles GetParametersByPath); send SIGHUP for an immediate refresh.',
    );
  }
  if (v.ssmPrefix !== undefined && v.directory !== undefined) {
    throw new ConfigError(
      'certificateStore',
      'has both ssmPrefix and directory',
      'Keep one: ssmPrefix for SSM Parameter Store (AWS), directory for a local directory.',
    );
  }
  if (v.directory !== undefined) {
    const dir = str(
      v.directory,
      'certificateStore.directory',
      'Give the directory holding one <key name>.json per certificate, e.g. ".keyless/dev/certs".',
    );
    return { directory: path.resolve(baseDir, dir), refreshSeconds };
  }
  if (v.ssmPrefix === undefined)
    throw new ConfigError('certificateStore', 'has neither ssmPrefix nor directory', example);
  return { ssmPrefix: validateSsmPrefix(v.ssmPrefix, 'certificateStore.ssmPrefix'), refreshSeconds };
}

/** Validates a parsed configuration object (file contents after env overrides). */
export function parseEdgeConfig(raw: unknown, baseDir = process.cwd()): EdgeConfig {
  if (!isObject(raw))
    throw new ConfigError('(root)', 'configuration must be a JSON object', 'See docs/configuration.md for an example.');
  for (const k of Object.keys(raw)) {
    if (!KNOWN_KEYS.has(k))
      throw new ConfigError(k, 'unknown field', `Remove it; known fields are ${[...KNOWN_KEYS].join(', ')}.`);
  }
  const store = certificateStore(raw.certificateStore, baseDir);
  const rawCerts = raw.certificates === undefined ? [] : raw.certificates;
  if (!Array.isArray(rawCerts)) {
    throw new ConfigError(
      'certificates',
      'must be a list',
      'Write it as [{"chainFile": "cert.pem", "keyName": "<key name at the key service>"}].',
    );
  }
  if (rawCerts.length === 0 && !store) {
    throw new ConfigError(
      'certificates',
      'at least one certificate is required',
      'Add {"chainFile": "cert.pem", "keyName": "<key name at the key service>"}, or read them from SSM with {"certificateStore": {"ssmPrefix": "/keyless/<deployment>/certs/"}} (or KEYLESS_CERT_SSM_PREFIX), or from a directory with {"certificateStore": {"directory": "certs"}} (or KEYLESS_CERT_DIR).',
    );
  }
  const certificates = rawCerts.map((c, i): CertificateConfig => {
    const f = `certificates[${i}]`;
    if (!isObject(c)) throw new ConfigError(f, 'must be an object', 'Give chainFile and keyName.');
    for (const k of Object.keys(c)) {
      if (!['chainFile', 'keyName', 'hostnames', 'clientAuth', 'ocspResponseFile'].includes(k)) {
        // A private key has no place in edge configuration: say so plainly.
        const hint =
          /key(file|pem)?$/i.test(k) && k !== 'keyName'
            ? ' The edge never holds a private key; the key service signs for it.'
            : '';
        throw new ConfigError(`${f}.${k}`, 'unknown field', `Remove it.${hint}`);
      }
    }
    const hostnames = c.hostnames;
    if (
      hostnames !== undefined &&
      (!Array.isArray(hostnames) || hostnames.some((h) => typeof h !== 'string' || h.length === 0))
    ) {
      throw new ConfigError(
        `${f}.hostnames`,
        'must be a list of host names',
        'Write e.g. ["example.com", "*.example.com"].',
      );
    }
    return {
      chainFile: path.resolve(
        baseDir,
        str(c.chainFile, `${f}.chainFile`, 'Point it at the PEM certificate chain (leaf first).'),
      ),
      keyName: str(c.keyName, `${f}.keyName`, 'Use the key name configured at the key service.'),
      hostnames: hostnames as string[] | undefined,
      ...(c.clientAuth === undefined ? {} : { clientAuth: clientAuthConfig(c.clientAuth, `${f}.clientAuth`, baseDir) }),
      ...(c.ocspResponseFile === undefined
        ? {}
        : {
            ocspResponseFile: path.resolve(
              baseDir,
              str(
                c.ocspResponseFile,
                `${f}.ocspResponseFile`,
                'Point it at a DER OCSP response for the leaf certificate (openssl ocsp -respout), or remove the field.',
              ),
            ),
          }),
    };
  });
  if (!Array.isArray(raw.keyServices) || raw.keyServices.length === 0) {
    throw new ConfigError(
      'keyServices',
      'at least one key service is required',
      'Add {"functionName": "<Lambda name or alias ARN>"} (or set KEYLESS_KEY_SERVICES).',
    );
  }
  const keyServices = raw.keyServices.map((k, i): KeyServiceConfig => {
    const f = `keyServices[${i}]`;
    if (!isObject(k))
      throw new ConfigError(f, 'must be an object', 'Give functionName (and region when it is not in the ARN).');
    const functionName = str(
      k.functionName,
      `${f}.functionName`,
      'Give the Lambda function name or qualified alias ARN.',
    );
    for (const key of Object.keys(k)) {
      if (!['functionName', 'region', 'endpoint'].includes(key))
        throw new ConfigError(
          `${f}.${key}`,
          'unknown field',
          'Remove it; known fields are functionName, region, endpoint.',
        );
    }
    const arnRegion = /^arn:aws[a-z-]*:lambda:([a-z0-9-]+):/.exec(functionName)?.[1];
    const region =
      k.region === undefined ? arnRegion : str(k.region, `${f}.region`, 'Give an AWS region such as eu-west-1.');
    if (k.endpoint === undefined) return { functionName, region };
    const endpointUrl = str(
      k.endpoint,
      `${f}.endpoint`,
      'Give the Lambda endpoint URL, e.g. "http://127.0.0.1:9001", or remove it to use the region\'s endpoint.',
    );
    let parsed: URL | undefined;
    try {
      parsed = new URL(endpointUrl);
    } catch {
      parsed = undefined;
    }
    if (
      !parsed ||
      (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') ||
      parsed.pathname !== '/' ||
      parsed.search ||
      parsed.username
    ) {
      throw new ConfigError(
        `${f}.endpoint`,
        `${JSON.stringify(endpointUrl)} is not an endpoint URL`,
        "Use http(s)://host[:port] with no path, or remove it to use the region's endpoint.",
      );
    }
    return { functionName, region, endpoint: endpointUrl };
  });
  const proxy = proxyConfig(raw.proxy);
  const routing = parseRouting(raw.routes, raw.origin, proxy.mode, baseDir);
  const tlsOrigin = [...routing.routes, ...(routing.defaultRoute ? [routing.defaultRoute] : [])].find(
    (r) => r.origin.scheme === 'https' || r.origin.scheme === 'tls',
  );
  if (proxy.sendProxyProtocol && tlsOrigin) {
    throw new ConfigError(
      'proxy.sendProxyProtocol',
      `is not supported with the TLS origin of route ${tlsOrigin.name}`,
      'Turn it off, or reach that origin over http:// / tcp://.',
    );
  }
  const alpn = alpnFor(raw.alpn, proxy.mode);
  const keyOperationTimeoutMs =
    raw.keyOperationTimeoutMs === undefined
      ? DEFAULTS.keyOperationTimeoutMs
      : positive(raw.keyOperationTimeoutMs, 'keyOperationTimeoutMs', 60_000);
  const keyServiceConnectTimeoutMs =
    raw.keyServiceConnectTimeoutMs === undefined
      ? Math.min(DEFAULTS.keyServiceConnectTimeoutMs, keyOperationTimeoutMs)
      : positive(raw.keyServiceConnectTimeoutMs, 'keyServiceConnectTimeoutMs', 60_000);
  if (keyServiceConnectTimeoutMs > keyOperationTimeoutMs) {
    throw new ConfigError(
      'keyServiceConnectTimeoutMs',
      `${keyServiceConnectTimeoutMs} is longer than keyOperationTimeoutMs (${keyOperationTimeoutMs})`,
      'Make it shorter than the key-operation deadline, so a retry on another key service still fits in it.',
    );
  }
  return {
    listen: endpoint(raw.listen, 'listen', DEFAULTS.listen),
    admin: endpoint(raw.admin, 'admin', DEFAULTS.admin),
    certificates,
    ...(store ? { certificateStore: store } : {}),
    keyServices,
    ...(routing.defaultRoute ? { origin: routing.defaultRoute.origin.url } : {}),
    routes: routing.routes,
    ...(routing.defaultRoute ? { defaultRoute: routing.defaultRoute } : {}),
    proxy,
    alpn,
    groups: groupsConfig(raw.groups, 'groups'),
    keyOperationTimeoutMs,
    handshakeTimeoutMs:
      raw.handshakeTimeoutMs === undefined
        ? DEFAULTS.handshakeTimeoutMs
        : positive(raw.handshakeTimeoutMs, 'handshakeTimeoutMs', 120_000),
    maxKeyOperationsInFlight:
      raw.maxKeyOperationsInFlight === undefined
        ? DEFAULTS.maxKeyOperationsInFlight
        : positive(raw.maxKeyOperationsInFlight, 'maxKeyOperationsInFlight', 100_000),
    proxyProtocol: raw.proxyProtocol === undefined ? false : bool(raw.proxyProtocol, 'proxyProtocol'),
    tickets: parseTickets(raw.tickets),
    logging: logging(raw.logging),
    metrics: metricsConfig(raw.metrics),
    limits: limits(raw.limits),
    keyServiceConnectTimeoutMs,
    circuitBreaker: circuitBreaker(raw.circuitBreaker),
    admission: admission(raw.admission),
    drainTimeoutMs:
      raw.drainTimeoutMs === undefined ? 30_000 : positive(raw.drainTimeoutMs, 'drainTimeoutMs', 3_600_000),
  };
}

/**
 * Reads the file (if any) and applies environment overrides:
 * KEYLESS_EDGE_PORT, KEYLESS_EDGE_HOST, KEYLESS_ADMIN_PORT, KEYLESS_ADMIN_HOST, KEYLESS_ORIGIN,
 * KEYLESS_ROUTES (`routes`, as `host[,host]=url;host=url`),
 * KEYLESS_PROXY_MODE (proxy.mode), KEYLESS_ORIGIN_PROXY_PROTOCOL (proxy.sendProxyProtocol, 0/1),
 * KEYLESS_KEY_SERVICES (comma-separated function names/ARNs in failover order) and
 * KEYLESS_CERT_SSM_PREFIX (certificateStore.ssmPrefix), KEYLESS_CERT_DIR (certificateStore.directory),
 * KEYLESS_CERT_REFRESH_SECONDS (certificateStore.refreshSeconds), KEYLESS_GROUPS (groups, comma-separated). With no file, the environment alone is the
 * configuration (as in the CDK edge stack).
 */
export function loadEdgeConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): EdgeConfig {
  let raw: Json = {};
  let baseDir = process.cwd();
  if (file) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new ConfigError(
        'KEYLESS_EDGE_CONFIG',
        `cannot read ${file} (${(e as NodeJS.ErrnoException).code})`,
        'Check the path.',
      );
    }
    try {
      raw = JSON.parse(text) as Json;
    } catch (e) {
      throw new ConfigError(
        'KEYLESS_EDGE_CONFIG',
        `${file} is not valid JSON (${(e as Error).message})`,
        'Fix the JSON syntax.',
      );
    }
    baseDir = path.dirname(path.resolve(file));
  }
  if (!isObject(raw))
    throw new ConfigError('(root)', 'configuration must be a JSON object', 'See docs/configuration.md.');
  const listen = isObject(raw.listen) ? { ...raw.listen } : {};
  if (env.KEYLESS_EDGE_PORT) listen.port = port(env.KEYLESS_EDGE_PORT, 'KEYLESS_EDGE_PORT');
  if (env.KEYLESS_EDGE_HOST) listen.host = env.KEYLESS_EDGE_HOST;
  const admin = isObject(raw.admin) ? { ...raw.admin } : {};
  if (env.KEYLESS_ADMIN_PORT) admin.port = port(env.KEYLESS_ADMIN_PORT, 'KEYLESS_ADMIN_PORT');
  if (env.KEYLESS_ADMIN_HOST) admin.host = env.KEYLESS_ADMIN_HOST;
  const merged: Json = { ...raw, listen, admin };
  if (env.KEYLESS_CERT_SSM_PREFIX && env.KEYLESS_CERT_DIR) {
    throw new ConfigError(
      'KEYLESS_CERT_DIR',
      'is set together with KEYLESS_CERT_SSM_PREFIX',
      'Set one: KEYLESS_CERT_SSM_PREFIX for SSM Parameter Store, KEYLESS_CERT_DIR for a local directory.',
    );
  }
  if (env.KEYLESS_CERT_SSM_PREFIX || env.KEYLESS_CERT_DIR || env.KEYLESS_CERT_REFRESH_SECONDS) {
    const store: Json = { ...(isObject(raw.certificateStore) ? raw.certificateStore : {}) };
    // The environment's location replaces the file's (either kind).
    if (env.KEYLESS_CERT_SSM_PREFIX) {
      delete store.directory;
      store.ssmPrefix = validateSsmPrefix(env.KEYLESS_CERT_SSM_PREFIX, 'KEYLESS_CERT_SSM_PREFIX');
    }
    if (env.KEYLESS_CERT_DIR) {
      delete store.ssmPrefix;
      store.directory = path.resolve(env.KEYLESS_CERT_DIR);
    }
    if (env.KEYLESS_CERT_REFRESH_SECONDS) {
      if (!/^\d+$/.test(env.KEYLESS_CERT_REFRESH_SECONDS))
        throw new ConfigError(
          'KEYLESS_CERT_REFRESH_SECONDS',
          `${env.KEYLESS_CERT_REFRESH_SECONDS} is not a whole number`,
          'Set seconds between certificate refreshes, e.g. 60.',
        );
      store.refreshSeconds = Number(env.KEYLESS_CERT_REFRESH_SECONDS);
    }
    merged.certificateStore = store;
  }
  if (env.KEYLESS_ORIGIN) merged.origin = env.KEYLESS_ORIGIN;
  if (env.KEYLESS_ROUTES) merged.routes = routesFromEnv(env.KEYLESS_ROUTES);
  if (env.KEYLESS_TICKETS) {
    if (!['0', '1'].includes(env.KEYLESS_TICKETS))
      throw new ConfigError(
        'KEYLESS_TICKETS',
        `${env.KEYLESS_TICKETS} is not 0 or 1`,
        'Set 0 to disable session tickets (every handshake full), 1 to enable.',
      );
    merged.tickets = { ...(isObject(raw.tickets) ? raw.tickets : {}), enabled: env.KEYLESS_TICKETS === '1' };
  }
  if (env.KEYLESS_PROXY_PROTOCOL) {
    if (!['0', '1'].includes(env.KEYLESS_PROXY_PROTOCOL))
      throw new ConfigError(
        'KEYLESS_PROXY_PROTOCOL',
        `${env.KEYLESS_PROXY_PROTOCOL} is not 0 or 1`,
        'Set 1 when the load balancer sends PROXY protocol v2, else 0.',
      );
    merged.proxyProtocol = env.KEYLESS_PROXY_PROTOCOL === '1';
  }
  if (env.KEYLESS_PROXY_MODE || env.KEYLESS_ORIGIN_PROXY_PROTOCOL) {
    const proxy: Json = { ...(isObject(raw.proxy) ? raw.proxy : {}) };
    if (env.KEYLESS_PROXY_MODE) {
      if (!['http', 'tcp'].includes(env.KEYLESS_PROXY_MODE))
        throw new ConfigError(
          'KEYLESS_PROXY_MODE',
          `${env.KEYLESS_PROXY_MODE} is not http or tcp`,
          'Set http (reverse proxy to an http:// origin) or tcp (raw TCP forwarding to a tcp://host:port origin).',
        );
      proxy.mode = env.KEYLESS_PROXY_MODE;
    }
    if (env.KEYLESS_ORIGIN_PROXY_PROTOCOL) {
      if (!['0', '1'].includes(env.KEYLESS_ORIGIN_PROXY_PROTOCOL))
        throw new ConfigError(
          'KEYLESS_ORIGIN_PROXY_PROTOCOL',
          `${env.KEYLESS_ORIGIN_PROXY_PROTOCOL} is not 0 or 1`,
          'Set 1 to send PROXY protocol v2 to the origin (it must expect it), else 0.',
        );
      proxy.sendProxyProtocol = env.KEYLESS_ORIGIN_PROXY_PROTOCOL === '1';
    }
    merged.proxy = proxy;
  }
  if (env.KEYLESS_KMS_BUDGET || env.KEYLESS_FLEET_MAX_TASKS)
    merged.admission = { ...(isObject(raw.admission) ? raw.admission : {}), ...fleetBudgetFromEnv(env) };
  if (env.KEYLESS_MAX_CONNECTIONS) {
    if (!/^\d+$/.test(env.KEYLESS_MAX_CONNECTIONS))
      throw new ConfigError(
        'KEYLESS_MAX_CONNECTIONS',
        `${env.KEYLESS_MAX_CONNECTIONS} is not a whole number`,
        'Set the open TCP connections one edge accepts, e.g. 20000 (keep the autoscaling target well below it).',
      );
    merged.limits = {
      ...(isObject(raw.limits) ? raw.limits : {}),
      maxConnections: Number(env.KEYLESS_MAX_CONNECTIONS),
    };
  }
  if (env.KEYLESS_DRAIN_TIMEOUT_MS) {
    if (!/^\d+$/.test(env.KEYLESS_DRAIN_TIMEOUT_MS))
      throw new ConfigError(
        'KEYLESS_DRAIN_TIMEOUT_MS',
        `${env.KEYLESS_DRAIN_TIMEOUT_MS} is not a whole number`,
        'Set milliseconds, e.g. 30000 (match the load balancer deregistration delay).',
      );
    merged.drainTimeoutMs = Number(env.KEYLESS_DRAIN_TIMEOUT_MS);
  }
  // Observability (docs/observability.md). EMF is on by default inside ECS (the agent sets
  // ECS_CONTAINER_METADATA_URI_V4 in every task), where stdout goes to CloudWatch Logs.
  const rawLogging = isObject(raw.logging) ? { ...raw.logging } : raw.logging;
  if (isObject(rawLogging)) {
    if (env.KEYLESS_LOG_LEVEL) rawLogging.level = env.KEYLESS_LOG_LEVEL;
    if (env.KEYLESS_LOG_SAMPLE_RATE)
      rawLogging.sampleRate = fraction(env.KEYLESS_LOG_SAMPLE_RATE, 'KEYLESS_LOG_SAMPLE_RATE');
    merged.logging = rawLogging;
  } else if (raw.logging === undefined && (env.KEYLESS_LOG_LEVEL || env.KEYLESS_LOG_SAMPLE_RATE)) {
    merged.logging = {
      ...(env.KEYLESS_LOG_LEVEL ? { level: env.KEYLESS_LOG_LEVEL } : {}),
      ...(env.KEYLESS_LOG_SAMPLE_RATE
        ? { sampleRate: fraction(env.KEYLESS_LOG_SAMPLE_RATE, 'KEYLESS_LOG_SAMPLE_RATE') }
        : {}),
    };
  }
  if (raw.metrics === undefined || isObject(raw.metrics)) {
    const m: Json = { ...(isObject(raw.metrics) ? raw.metrics : {}) };
    if (m.emf === undefined && env.ECS_CONTAINER_METADATA_URI_V4) m.emf = true;
    if (env.KEYLESS_EMF) {
      if (!['0', '1'].includes(env.KEYLESS_EMF))
        throw new ConfigError(
          'KEYLESS_EMF',
          `${env.KEYLESS_EMF} is not 0 or 1`,
          'Set 1 to write CloudWatch embedded-metric-format lines on stdout, 0 to turn them off (default: on inside ECS).',
        );
      m.emf = env.KEYLESS_EMF === '1';
    }
    if (env.KEYLESS_DEPLOYMENT) m.deployment = env.KEYLESS_DEPLOYMENT;
    if (Object.keys(m).length > 0) merged.metrics = m;
  }
  if (env.KEYLESS_GROUPS !== undefined)
    merged.groups = groupsConfig(
      env.KEYLESS_GROUPS.split(',')
        .map((g) => g.trim())
        .filter((g) => g),
      'KEYLESS_GROUPS',
    );
  if (env.KEYLESS_KEY_SERVICES)
    merged.keyServices = env.KEYLESS_KEY_SERVICES.split(',')
      .map((s) => ({ functionName: s.trim() }))
      .filter((s) => s.functionName);
  return parseEdgeConfig(merged, baseDir);
}

/**
 * KEYLESS_KMS_BUDGET (the region's key operations per second for this fleet) and
 * KEYLESS_FLEET_MAX_TASKS (the most tasks that can run at once, default 1): this task's share of the
 * budget (fleetShare), so the whole fleet stays within it (docs/configuration.md, "Fleet KMS budget").
 */
function fleetBudgetFromEnv(env: NodeJS.ProcessEnv): Json {
  const whole = (name: 'KEYLESS_KMS_BUDGET' | 'KEYLESS_FLEET_MAX_TASKS', example: string): number => {
    const v = env[name] as string;
    if (!/^\d+$/.test(v) || Number(v) < 1) throw new ConfigError(name, `${v} is not a whole number from 1`, example);
    return Number(v);
  };
  if (!env.KEYLESS_KMS_BUDGET)
    throw new ConfigError(
      'KEYLESS_FLEET_MAX_TASKS',
      'is set without KEYLESS_KMS_BUDGET',
      "Set KEYLESS_KMS_BUDGET to the region's key operations per second for this fleet too (the CDK sets both).",
    );
  const budget = whole('KEYLESS_KMS_BUDGET', "Set the region's key operations per second for this fleet, e.g. 400.");
  const maxTasks = env.KEYLESS_FLEET_MAX_TASKS
    ? whole('KEYLESS_FLEET_MAX_TASKS', 'Set the most edge tasks that can run at once, e.g. 20.')
    : 1;
  const share = fleetShare(budget, maxTasks);
  if (!share) {
    throw new ConfigError(
      'KEYLESS_KMS_BUDGET',
      `${budget}/s shared by ${maxTasks} tasks leaves each less than 2 key operations per second`,
      "Raise the KMS budget (and the KMS quota behind it), or lower the fleet's maximum task count.",
    );
  }
  return { ...share };
}

/**
 * `groups` / KEYLESS_GROUPS: names from SUPPORTED_GROUPS (any case), most preferred first, no
 * repeats, and at least one classic group, since TLS 1.2 and clients without ML-KEM need one.
 */
function groupsConfig(v: unknown, field: string): NamedGroup['name'][] {
  const known = SUPPORTED_GROUPS.map((g) => g.name).join(', ');
  if (v === undefined) return SUPPORTED_GROUPS.map((g) => g.name);
  if (!Array.isArray(v) || v.length === 0)
    throw new ConfigError(
      field,
      'must be a non-empty list of group names',
      `Write e.g. ["X25519MLKEM768", "x25519", "secp256r1"] (known: ${known}), or set KEYLESS_GROUPS=X25519MLKEM768,x25519.`,
    );
  const out: NamedGroup[] = [];
  for (const name of v) {
    const g = typeof name === 'string' ? groupByName(name) : undefined;
    if (!g)
      throw new ConfigError(field, `${JSON.stringify(name)} is not a supported group`, `Use names from: ${known}.`);
    if (out.includes(g))
      throw new ConfigError(field, `${g.name} is listed twice`, 'List each group once, most preferred first.');
    out.push(g);
  }
  if (out.every((g) => g.hybrid))
    throw new ConfigError(
      field,
      'lists only post-quantum hybrid groups',
      'Add a classic group after them, e.g. "x25519": TLS 1.2 and clients without ML-KEM need one.',
    );
  return out.map((g) => g.name);
}

function fraction(v: string, field: string): number {
  const n = Number(v);
  if (!/^\d*\.?\d+$/.test(v) || !(n >= 0 && n <= 1))
    throw new ConfigError(
      field,
      `${v} is not a fraction from 0 to 1`,
      'Set e.g. 0.1 to log one connection in ten (warnings and errors are always logged).',
    );
  return n;
}
