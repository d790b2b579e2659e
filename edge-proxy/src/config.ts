/**
 * Edge configuration: one JSON file (path in KEYLESS_EDGE_CONFIG or `--config`) plus environment
 * overrides. Validation names the field and the fix; the edge refuses to start on anything wrong,
 * including anything that looks like private key material.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_ADMISSION, type AdmissionConfig } from './keyless/admission';

export interface CertificateConfig {
  /** PEM file with the leaf certificate first, then intermediates. Public data only. */
  chainFile: string;
  /** Key name at the key service that signs for this certificate. */
  keyName: string;
  /** Hostnames served (defaults to the certificate's DNS subjectAltNames). */
  hostnames?: string[];
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

/** Certificates kept in SSM Parameter Store (what the CDK edge stack deploys). */
export interface CertificateStoreConfig {
  /**
   * Parameter path prefix, starting and ending with `/` (e.g. `/keyless/prod/certs/`). Every String
   * parameter below it (recursively) is one certificate: JSON `{"hostnames":[...],"keyName":"...","chainPem":"..."}`.
   */
  ssmPrefix: string;
}

export interface EdgeConfig {
  listen: { host: string; port: number };
  admin: { host: string; port: number };
  /** Certificates from files (served first, in order). May be empty when `certificateStore` is set. */
  certificates: CertificateConfig[];
  /** Certificates read from SSM at startup, after the file certificates. */
  certificateStore?: CertificateStoreConfig;
  keyServices: KeyServiceConfig[];
  origin: string;
  alpn: string[];
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
}

export class ConfigError extends Error {
  constructor(
    readonly field: string,
    problem: string,
    fix: string,
  ) {
    super(`invalid edge configuration: ${field}: ${problem}. ${fix}`);
    this.name = 'ConfigError';
  }
}

const DEFAULTS = {
  listen: { host: '0.0.0.0', port: 8443 },
  admin: { host: '127.0.0.1', port: 9090 },
  alpn: ['h2', 'http/1.1'],
  keyOperationTimeoutMs: 1000,
  handshakeTimeoutMs: 10_000,
  maxKeyOperationsInFlight: 256,
  keyServiceConnectTimeoutMs: 300,
  circuitBreaker: { failureThreshold: 5, errorRateThreshold: 0.5, minimumRequests: 20, windowMs: 10_000, cooldownMs: 5_000 },
};

const KNOWN_KEYS = new Set(['admission', 'drainTimeoutMs', 'tickets', 'proxyProtocol', 'listen', 'admin', 'certificates', 'certificateStore', 'keyServices', 'origin', 'alpn', 'keyOperationTimeoutMs', 'handshakeTimeoutMs', 'maxKeyOperationsInFlight', 'keyServiceConnectTimeoutMs', 'circuitBreaker']);

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function port(v: unknown, field: string): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new ConfigError(field, `${JSON.stringify(v)} is not a TCP port`, 'Use an integer from 1 to 65535 (0 picks a free port).');
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
  if (!isObject(v)) throw new ConfigError('tickets', 'must be an object', 'Write it as {"enabled": true, "count": 2, "lifetimeSeconds": 86400}.');
  for (const k of Object.keys(v)) {
    if (!['enabled', 'count', 'lifetimeSeconds'].includes(k)) throw new ConfigError(`tickets.${k}`, 'unknown field', 'Remove it; known fields are enabled, count, lifetimeSeconds.');
  }
  return {
    enabled: v.enabled === undefined ? d.enabled : bool(v.enabled, 'tickets.enabled'),
    count: v.count === undefined ? d.count : positive(v.count, 'tickets.count', 10),
    // RFC 8446 §4.6.1: a ticket lifetime may not exceed seven days.
    lifetimeSeconds: v.lifetimeSeconds === undefined ? d.lifetimeSeconds : positive(v.lifetimeSeconds, 'tickets.lifetimeSeconds', 604_800),
  };
}

function bool(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') throw new ConfigError(field, `${JSON.stringify(v)} is not true or false`, 'Use true or false.');
  return v;
}

function str(v: unknown, field: string, fix: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new ConfigError(field, 'missing or not a string', fix);
  return v;
}

function endpoint(v: unknown, field: string, def: { host: string; port: number }): { host: string; port: number } {
  if (v === undefined) return { ...def };
  if (!isObject(v)) throw new ConfigError(field, 'must be an object', 'Write it as {"host": "0.0.0.0", "port": 8443}.');
  return { host: v.host === undefined ? def.host : str(v.host, `${field}.host`, 'Give an IP address to bind.'), port: v.port === undefined ? def.port : port(v.port, `${field}.port`) };
}

function circuitBreaker(v: unknown): CircuitBreakerConfig {
  const d = DEFAULTS.circuitBreaker;
  if (v === undefined) return { ...d };
  const fix = 'Write it as {"failureThreshold": 5, "errorRateThreshold": 0.5, "minimumRequests": 20, "windowMs": 10000, "cooldownMs": 5000} (every field optional).';
  if (!isObject(v)) throw new ConfigError('circuitBreaker', 'must be an object', fix);
  for (const k of Object.keys(v)) {
    if (!(k in d)) throw new ConfigError(`circuitBreaker.${k}`, 'unknown field', `Remove it; known fields are ${Object.keys(d).join(', ')}.`);
  }
  const rate = v.errorRateThreshold;
  if (rate !== undefined && (typeof rate !== 'number' || !(rate > 0 && rate <= 1))) {
    throw new ConfigError('circuitBreaker.errorRateThreshold', `${JSON.stringify(rate)} is out of range`, 'Use a fraction greater than 0 and at most 1, e.g. 0.5.');
  }
  const int = (k: 'failureThreshold' | 'minimumRequests' | 'windowMs' | 'cooldownMs', max: number): number => (v[k] === undefined ? d[k] : positive(v[k], `circuitBreaker.${k}`, max));
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
  const fix = 'Write it as {"keyOperationsPerSecond": 400, "keyOperationBurst": 40, "maxPendingFullHandshakes": 256, "perClientRatePerSecond": 20, "perClientBurst": 40, "maxTrackedClients": 100000} (every field optional).';
  if (!isObject(v)) throw new ConfigError('admission', 'must be an object', fix);
  for (const k of Object.keys(v)) {
    if (!(k in d)) throw new ConfigError(`admission.${k}`, 'unknown field', `Remove it; known fields are ${Object.keys(d).join(', ')}.`);
  }
  const int = (k: keyof AdmissionConfig, max: number): number => (v[k] === undefined ? d[k] : positive(v[k], `admission.${k}`, max));
  const keyOperationsPerSecond = int('keyOperationsPerSecond', 1_000_000);
  // Default burst: a tenth of a second of the budget (at least 1), so no window sees much more than it.
  const keyOperationBurst = v.keyOperationBurst === undefined ? Math.max(1, Math.ceil(keyOperationsPerSecond / 10)) : positive(v.keyOperationBurst, 'admission.keyOperationBurst', 1_000_000);
  if (keyOperationBurst > keyOperationsPerSecond) {
    throw new ConfigError('admission.keyOperationBurst', `${keyOperationBurst} is more than keyOperationsPerSecond (${keyOperationsPerSecond})`, 'Keep the burst at most one second of the budget (default: a tenth of it).');
  }
  return {
    maxPendingFullHandshakes: int('maxPendingFullHandshakes', 100_000),
    perClientRatePerSecond: int('perClientRatePerSecond', 1_000_000),
    perClientBurst: int('perClientBurst', 1_000_000),
    maxTrackedClients: int('maxTrackedClients', 10_000_000),
    keyOperationsPerSecond,
    keyOperationBurst,
  };
}

/** SSM parameter path: `/`-separated segments of [A-Za-z0-9_.-], starting and ending with `/`. */
const SSM_PREFIX_RE = /^\/(?:[A-Za-z0-9_.-]+\/)+$/;

/** Validates an SSM parameter path prefix for certificates (`field` names where it came from). */
export function validateSsmPrefix(v: unknown, field: string): string {
  const fix = 'Give the parameter path the certificates are stored under, starting and ending with "/", e.g. "/keyless/prod/certs/".';
  if (typeof v !== 'string' || v.length === 0) throw new ConfigError(field, 'missing or not a string', fix);
  if (!v.startsWith('/') || !v.endsWith('/')) throw new ConfigError(field, `${JSON.stringify(v)} must start and end with "/"`, fix);
  if (v.length > 1011 || !SSM_PREFIX_RE.test(v)) {
    throw new ConfigError(field, `${JSON.stringify(v)} is not an SSM parameter path`, 'Use "/"-separated segments of letters, digits, "_", "." and "-" (no empty segment, not just "/"), e.g. "/keyless/prod/certs/".');
  }
  return v;
}

function certificateStore(v: unknown): CertificateStoreConfig | undefined {
  if (v === undefined) return undefined;
  if (!isObject(v)) throw new ConfigError('certificateStore', 'must be an object', 'Write it as {"ssmPrefix": "/keyless/prod/certs/"} (or set KEYLESS_CERT_SSM_PREFIX).');
  for (const k of Object.keys(v)) {
    if (k !== 'ssmPrefix') throw new ConfigError(`certificateStore.${k}`, 'unknown field', 'Remove it; the only field is ssmPrefix.');
  }
  return { ssmPrefix: validateSsmPrefix(v.ssmPrefix, 'certificateStore.ssmPrefix') };
}

/** Validates a parsed configuration object (file contents after env overrides). */
export function parseEdgeConfig(raw: unknown, baseDir = process.cwd()): EdgeConfig {
  if (!isObject(raw)) throw new ConfigError('(root)', 'configuration must be a JSON object', 'See docs/configuration.md for an example.');
  for (const k of Object.keys(raw)) {
    if (!KNOWN_KEYS.has(k)) throw new ConfigError(k, 'unknown field', `Remove it; known fields are ${[...KNOWN_KEYS].join(', ')}.`);
  }
  const store = certificateStore(raw.certificateStore);
  const rawCerts = raw.certificates === undefined ? [] : raw.certificates;
  if (!Array.isArray(rawCerts)) {
    throw new ConfigError('certificates', 'must be a list', 'Write it as [{"chainFile": "cert.pem", "keyName": "<key name at the key service>"}].');
  }
  if (rawCerts.length === 0 && !store) {
    throw new ConfigError(
      'certificates',
      'at least one certificate is required',
      'Add {"chainFile": "cert.pem", "keyName": "<key name at the key service>"}, or read them from SSM with {"certificateStore": {"ssmPrefix": "/keyless/<deployment>/certs/"}} (or KEYLESS_CERT_SSM_PREFIX).',
    );
  }
  const certificates = rawCerts.map((c, i): CertificateConfig => {
    const f = `certificates[${i}]`;
    if (!isObject(c)) throw new ConfigError(f, 'must be an object', 'Give chainFile and keyName.');
    for (const k of Object.keys(c)) {
      if (!['chainFile', 'keyName', 'hostnames'].includes(k)) {
        // A private key has no place in edge configuration: say so plainly.
        const hint = /key(file|pem)?$/i.test(k) && k !== 'keyName' ? ' The edge never holds a private key; the key service signs for it.' : '';
        throw new ConfigError(`${f}.${k}`, 'unknown field', `Remove it.${hint}`);
      }
    }
    const hostnames = c.hostnames;
    if (hostnames !== undefined && (!Array.isArray(hostnames) || hostnames.some((h) => typeof h !== 'string' || h.length === 0))) {
      throw new ConfigError(`${f}.hostnames`, 'must be a list of host names', 'Write e.g. ["example.com", "*.example.com"].');
    }
    return {
      chainFile: path.resolve(baseDir, str(c.chainFile, `${f}.chainFile`, 'Point it at the PEM certificate chain (leaf first).')),
      keyName: str(c.keyName, `${f}.keyName`, 'Use the key name configured at the key service.'),
      hostnames: hostnames as string[] | undefined,
    };
  });
  if (!Array.isArray(raw.keyServices) || raw.keyServices.length === 0) {
    throw new ConfigError('keyServices', 'at least one key service is required', 'Add {"functionName": "<Lambda name or alias ARN>"} (or set KEYLESS_KEY_SERVICES).');
  }
  const keyServices = raw.keyServices.map((k, i): KeyServiceConfig => {
    const f = `keyServices[${i}]`;
    if (!isObject(k)) throw new ConfigError(f, 'must be an object', 'Give functionName (and region when it is not in the ARN).');
    const functionName = str(k.functionName, `${f}.functionName`, 'Give the Lambda function name or qualified alias ARN.');
    for (const key of Object.keys(k)) {
      if (!['functionName', 'region', 'endpoint'].includes(key)) throw new ConfigError(`${f}.${key}`, 'unknown field', 'Remove it; known fields are functionName, region, endpoint.');
    }
    const arnRegion = /^arn:aws[a-z-]*:lambda:([a-z0-9-]+):/.exec(functionName)?.[1];
    const region = k.region === undefined ? arnRegion : str(k.region, `${f}.region`, 'Give an AWS region such as eu-west-1.');
    if (k.endpoint === undefined) return { functionName, region };
    const endpointUrl = str(k.endpoint, `${f}.endpoint`, 'Give the Lambda endpoint URL, e.g. "http://127.0.0.1:9001", or remove it to use the region\'s endpoint.');
    let parsed: URL | undefined;
    try {
      parsed = new URL(endpointUrl);
    } catch {
      parsed = undefined;
    }
    if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.pathname !== '/' || parsed.search || parsed.username) {
      throw new ConfigError(`${f}.endpoint`, `${JSON.stringify(endpointUrl)} is not an endpoint URL`, 'Use http(s)://host[:port] with no path, or remove it to use the region\'s endpoint.');
    }
    return { functionName, region, endpoint: endpointUrl };
  });
  const origin = str(raw.origin, 'origin', 'Set the origin URL, e.g. "http://127.0.0.1:8080" (or KEYLESS_ORIGIN).');
  let originUrl: URL;
  try {
    originUrl = new URL(origin);
  } catch {
    throw new ConfigError('origin', `${JSON.stringify(origin)} is not a URL`, 'Use http://host:port.');
  }
  if (originUrl.protocol !== 'http:') throw new ConfigError('origin', `scheme ${originUrl.protocol} is not supported`, 'Use an http:// origin (TLS to the origin is a later feature).');
  const alpn = raw.alpn === undefined ? [...DEFAULTS.alpn] : raw.alpn;
  if (!Array.isArray(alpn) || alpn.length === 0 || alpn.some((p) => p !== 'h2' && p !== 'http/1.1')) {
    throw new ConfigError('alpn', `${JSON.stringify(raw.alpn)} is not supported`, 'Use a non-empty list of "h2" and "http/1.1" in preference order.');
  }
  const keyOperationTimeoutMs = raw.keyOperationTimeoutMs === undefined ? DEFAULTS.keyOperationTimeoutMs : positive(raw.keyOperationTimeoutMs, 'keyOperationTimeoutMs', 60_000);
  const keyServiceConnectTimeoutMs =
    raw.keyServiceConnectTimeoutMs === undefined ? Math.min(DEFAULTS.keyServiceConnectTimeoutMs, keyOperationTimeoutMs) : positive(raw.keyServiceConnectTimeoutMs, 'keyServiceConnectTimeoutMs', 60_000);
  if (keyServiceConnectTimeoutMs > keyOperationTimeoutMs) {
    throw new ConfigError('keyServiceConnectTimeoutMs', `${keyServiceConnectTimeoutMs} is longer than keyOperationTimeoutMs (${keyOperationTimeoutMs})`, 'Make it shorter than the key-operation deadline, so a retry on another key service still fits in it.');
  }
  return {
    listen: endpoint(raw.listen, 'listen', DEFAULTS.listen),
    admin: endpoint(raw.admin, 'admin', DEFAULTS.admin),
    certificates,
    ...(store ? { certificateStore: store } : {}),
    keyServices,
    origin,
    alpn: alpn as string[],
    keyOperationTimeoutMs,
    handshakeTimeoutMs: raw.handshakeTimeoutMs === undefined ? DEFAULTS.handshakeTimeoutMs : positive(raw.handshakeTimeoutMs, 'handshakeTimeoutMs', 120_000),
    maxKeyOperationsInFlight: raw.maxKeyOperationsInFlight === undefined ? DEFAULTS.maxKeyOperationsInFlight : positive(raw.maxKeyOperationsInFlight, 'maxKeyOperationsInFlight', 100_000),
    proxyProtocol: raw.proxyProtocol === undefined ? false : bool(raw.proxyProtocol, 'proxyProtocol'),
    tickets: parseTickets(raw.tickets),
    keyServiceConnectTimeoutMs,
    circuitBreaker: circuitBreaker(raw.circuitBreaker),
    admission: admission(raw.admission),
    drainTimeoutMs: raw.drainTimeoutMs === undefined ? 30_000 : positive(raw.drainTimeoutMs, 'drainTimeoutMs', 3_600_000),
  };
}

/**
 * Reads the file (if any) and applies environment overrides:
 * KEYLESS_EDGE_PORT, KEYLESS_EDGE_HOST, KEYLESS_ADMIN_PORT, KEYLESS_ADMIN_HOST, KEYLESS_ORIGIN,
 * KEYLESS_KEY_SERVICES (comma-separated function names/ARNs in failover order) and
 * KEYLESS_CERT_SSM_PREFIX (certificateStore.ssmPrefix). With no file, the environment alone is the
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
      throw new ConfigError('KEYLESS_EDGE_CONFIG', `cannot read ${file} (${(e as NodeJS.ErrnoException).code})`, 'Check the path.');
    }
    try {
      raw = JSON.parse(text) as Json;
    } catch (e) {
      throw new ConfigError('KEYLESS_EDGE_CONFIG', `${file} is not valid JSON (${(e as Error).message})`, 'Fix the JSON syntax.');
    }
    baseDir = path.dirname(path.resolve(file));
  }
  if (!isObject(raw)) throw new ConfigError('(root)', 'configuration must be a JSON object', 'See docs/configuration.md.');
  const listen = isObject(raw.listen) ? { ...raw.listen } : {};
  if (env.KEYLESS_EDGE_PORT) listen.port = port(env.KEYLESS_EDGE_PORT, 'KEYLESS_EDGE_PORT');
  if (env.KEYLESS_EDGE_HOST) listen.host = env.KEYLESS_EDGE_HOST;
  const admin = isObject(raw.admin) ? { ...raw.admin } : {};
  if (env.KEYLESS_ADMIN_PORT) admin.port = port(env.KEYLESS_ADMIN_PORT, 'KEYLESS_ADMIN_PORT');
  if (env.KEYLESS_ADMIN_HOST) admin.host = env.KEYLESS_ADMIN_HOST;
  const merged: Json = { ...raw, listen, admin };
  if (env.KEYLESS_CERT_SSM_PREFIX) {
    merged.certificateStore = { ...(isObject(raw.certificateStore) ? raw.certificateStore : {}), ssmPrefix: validateSsmPrefix(env.KEYLESS_CERT_SSM_PREFIX, 'KEYLESS_CERT_SSM_PREFIX') };
  }
  if (env.KEYLESS_ORIGIN) merged.origin = env.KEYLESS_ORIGIN;
  if (env.KEYLESS_TICKETS) {
    if (!['0', '1'].includes(env.KEYLESS_TICKETS)) throw new ConfigError('KEYLESS_TICKETS', `${env.KEYLESS_TICKETS} is not 0 or 1`, 'Set 0 to disable session tickets (every handshake full), 1 to enable.');
    merged.tickets = { ...(isObject(raw.tickets) ? raw.tickets : {}), enabled: env.KEYLESS_TICKETS === '1' };
  }
  if (env.KEYLESS_PROXY_PROTOCOL) {
    if (!['0', '1'].includes(env.KEYLESS_PROXY_PROTOCOL)) throw new ConfigError('KEYLESS_PROXY_PROTOCOL', `${env.KEYLESS_PROXY_PROTOCOL} is not 0 or 1`, 'Set 1 when the load balancer sends PROXY protocol v2, else 0.');
    merged.proxyProtocol = env.KEYLESS_PROXY_PROTOCOL === '1';
  }
  if (env.KEYLESS_KMS_BUDGET) {
    if (!/^\d+$/.test(env.KEYLESS_KMS_BUDGET)) throw new ConfigError('KEYLESS_KMS_BUDGET', `${env.KEYLESS_KMS_BUDGET} is not a whole number`, 'Set the key operations per second this edge may use, e.g. 400.');
    merged.admission = { ...(isObject(raw.admission) ? raw.admission : {}), keyOperationsPerSecond: Number(env.KEYLESS_KMS_BUDGET) };
  }
  if (env.KEYLESS_DRAIN_TIMEOUT_MS) {
    if (!/^\d+$/.test(env.KEYLESS_DRAIN_TIMEOUT_MS)) throw new ConfigError('KEYLESS_DRAIN_TIMEOUT_MS', `${env.KEYLESS_DRAIN_TIMEOUT_MS} is not a whole number`, 'Set milliseconds, e.g. 30000 (match the load balancer deregistration delay).');
    merged.drainTimeoutMs = Number(env.KEYLESS_DRAIN_TIMEOUT_MS);
  }
  if (env.KEYLESS_KEY_SERVICES) merged.keyServices = env.KEYLESS_KEY_SERVICES.split(',').map((s) => ({ functionName: s.trim() })).filter((s) => s.functionName);
  return parseEdgeConfig(merged, baseDir);
}

/** Refuses PEM data that contains private key material: the edge must never be given a key. */
export function assertNoPrivateKey(pem: string, where: string): void {
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    throw new ConfigError(where, 'contains a PRIVATE KEY block', 'Remove it. The edge serves certificates only; private keys stay in the key service (KMS).');
  }
}
