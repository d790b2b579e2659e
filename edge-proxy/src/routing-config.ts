/**
 * The routing part of the edge configuration (docs/configuration.md, "Routing"): which origin serves
 * which hostname, how the edge reaches it (plaintext or TLS, one address or several), and how it
 * decides that an origin address is down.
 *
 *   "origin": "http://10.0.1.5:8080",                 the default route (optional with "routes")
 *   "routes": [
 *     { "hosts": ["www.example.com", "*.example.com"], "origin": "http://10.0.1.5:8080" },
 *     { "hosts": ["api.example.com"], "retryIdempotent": true,
 *       "origin": { "url": "https://api.internal:8443", "addresses": ["10.0.2.10:8443", "10.0.2.11:8443"],
 *                   "caFile": "internal-ca.pem", "healthCheck": { "path": "/healthz", "intervalSeconds": 10 } } }
 *   ]
 */
import * as path from 'node:path';
import { isIP } from 'node:net';
import { isObject } from '../../contract/json';
import { ConfigError } from '../../contract/config-error';

export type OriginScheme = 'http' | 'https' | 'tcp' | 'tls';

export interface OriginAddress {
  /** Host name or IP literal (IPv6 without brackets). */
  host: string;
  port: number;
}

export interface OriginHealthCheck {
  /** GET this path on every address (http/https origins); a 2xx or 3xx answer is healthy. */
  path: string;
  intervalSeconds: number;
  timeoutMs: number;
}

export interface OriginConfig {
  /** As written, e.g. `https://api.internal:8443` (no path). */
  url: string;
  scheme: OriginScheme;
  /** The URL's host: the `Host` fallback, the TLS name, and (without `addresses`) the name resolved. */
  host: string;
  port: number;
  /** Fixed addresses; absent = resolve `host` (a DNS name: re-resolved on its TTL). */
  addresses?: OriginAddress[];
  /** https/tls: PEM bundle of the CAs the origin's certificate must chain to (default: the system CAs). */
  caFile?: string;
  /** https/tls: the name sent in SNI and verified in the origin's certificate (default: `host`). */
  serverName?: string;
  /** https/tls: do not verify the origin's certificate. Logged loudly at startup. */
  dangerouslySkipTlsVerify: boolean;
  healthCheck?: OriginHealthCheck;
  /** Passive health: this many consecutive connect errors or 5xx answers eject an address ... */
  ejectAfterFailures: number;
  /** ... for this long; then it gets traffic again. */
  ejectSeconds: number;
}

export interface RouteConfig {
  /** For logs, metrics and the demo page: `routes[i]`'s first host, or `default`. */
  name: string;
  /** Exact names or `*.` wildcards (one label), lower-case; empty for the default route. */
  hosts: string[];
  origin: OriginConfig;
  /** Retry idempotent requests without a body on another address after an error (never a body). */
  retryIdempotent: boolean;
}

export interface RoutingConfig {
  routes: RouteConfig[];
  /** Hosts no route names (and, in tcp mode, clients without SNI) go here; absent = 421 / unrecognized_name. */
  defaultRoute?: RouteConfig;
}

const ORIGIN_FIELDS = [
  'url',
  'addresses',
  'caFile',
  'serverName',
  'dangerouslySkipTlsVerify',
  'healthCheck',
  'ejectAfterFailures',
  'ejectSeconds',
];
const ROUTE_FIELDS = ['name', 'hosts', 'origin', 'retryIdempotent'];
const SCHEMES: Record<'http' | 'tcp', OriginScheme[]> = { http: ['http', 'https'], tcp: ['tcp', 'tls'] };
const DEFAULT_PORTS: Partial<Record<OriginScheme, number>> = { http: 80, https: 443 };

type Json = Record<string, unknown>;

function whole(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new ConfigError(field, `${JSON.stringify(v)} is out of range`, `Use a whole number from ${min} to ${max}.`);
  return v;
}

/** `host:port` or `[v6]:port`. */
function parseAddress(v: unknown, field: string): OriginAddress {
  const m = typeof v === 'string' ? /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(v) : null;
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65535)
    throw new ConfigError(
      field,
      `${JSON.stringify(v)} is not host:port`,
      'Write e.g. "10.0.2.10:8443" or "[2001:db8::10]:8443".',
    );
  return { host: m[1] ?? m[2], port };
}

function parseOriginUrl(
  v: unknown,
  field: string,
  mode: 'http' | 'tcp',
): Pick<OriginConfig, 'url' | 'scheme' | 'host' | 'port'> {
  const allowed = SCHEMES[mode];
  const example =
    mode === 'tcp'
      ? '"tcp://10.0.1.5:5432" or "tls://db.internal:5433"'
      : '"http://10.0.1.5:8080" or "https://api.internal:8443"';
  if (typeof v !== 'string' || v === '')
    throw new ConfigError(field, 'missing or not a string', `Set the origin URL, e.g. ${example}.`);
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw new ConfigError(field, `${JSON.stringify(v)} is not a URL`, `Use ${example}.`);
  }
  const scheme = url.protocol.slice(0, -1) as OriginScheme;
  if (!allowed.includes(scheme)) {
    const other = mode === 'http' ? 'tcp' : 'http';
    const hint = SCHEMES[other].includes(scheme)
      ? ` For ${scheme}:// set proxy.mode to "${other}" (or KEYLESS_PROXY_MODE=${other}).`
      : '';
    throw new ConfigError(
      field,
      `scheme ${url.protocol} is not supported in proxy mode "${mode}"`,
      `Use ${allowed.map((s) => `${s}://host:port`).join(' or ')}.${hint}`,
    );
  }
  if (
    !url.hostname ||
    (url.pathname !== '' && url.pathname !== '/') ||
    url.search ||
    url.hash ||
    url.username ||
    url.password
  ) {
    throw new ConfigError(
      field,
      `${JSON.stringify(v)} has a path, query or credentials`,
      `Give ${scheme}://host:port and nothing else.`,
    );
  }
  const defaultPort = DEFAULT_PORTS[scheme];
  if (!url.port && defaultPort === undefined)
    throw new ConfigError(field, `${JSON.stringify(v)} has no port`, `Give ${scheme}://host:port, e.g. ${example}.`);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { url: v, scheme, host, port: url.port ? Number(url.port) : (defaultPort as number) };
}

/** An origin: a URL string, or an object with `url` and the settings below. */
export function parseOrigin(v: unknown, field: string, mode: 'http' | 'tcp', baseDir: string): OriginConfig {
  const spec: Json = isObject(v) ? v : { url: v };
  for (const k of Object.keys(spec))
    if (!ORIGIN_FIELDS.includes(k))
      throw new ConfigError(
        `${field}.${k}`,
        'unknown field',
        `Remove it; known fields are ${ORIGIN_FIELDS.join(', ')}.`,
      );
  const urlField = isObject(v) ? `${field}.url` : field;
  const base = parseOriginUrl(spec.url, urlField, mode);
  const tls = base.scheme === 'https' || base.scheme === 'tls';
  const origin: OriginConfig = { ...base, dangerouslySkipTlsVerify: false, ejectAfterFailures: 5, ejectSeconds: 30 };
  if (spec.addresses !== undefined) {
    if (!Array.isArray(spec.addresses) || spec.addresses.length === 0 || spec.addresses.length > 64) {
      throw new ConfigError(
        `${field}.addresses`,
        'must be a list of 1 to 64 "host:port" strings',
        'Write e.g. ["10.0.2.10:8443", "10.0.2.11:8443"], or remove it to resolve the URL\'s host name.',
      );
    }
    origin.addresses = spec.addresses.map((a, i) => parseAddress(a, `${field}.addresses[${i}]`));
  }
  for (const k of ['caFile', 'serverName', 'dangerouslySkipTlsVerify'] as const) {
    if (spec[k] !== undefined && !tls)
      throw new ConfigError(
        `${field}.${k}`,
        `applies only to https:// and tls:// origins, not ${base.scheme}://`,
        `Remove it, or use ${mode === 'tcp' ? 'tls' : 'https'}://.`,
      );
  }
  if (spec.caFile !== undefined) {
    if (typeof spec.caFile !== 'string' || spec.caFile === '')
      throw new ConfigError(
        `${field}.caFile`,
        'must be a file path',
        "Point it at a PEM bundle of the CAs that issue the origin's certificate.",
      );
    origin.caFile = path.resolve(baseDir, spec.caFile);
  }
  if (spec.serverName !== undefined) {
    if (
      typeof spec.serverName !== 'string' ||
      !/^[A-Za-z0-9.-]{1,253}$/.test(spec.serverName) ||
      isIP(spec.serverName)
    ) {
      throw new ConfigError(
        `${field}.serverName`,
        `${JSON.stringify(spec.serverName)} is not a DNS name`,
        'Give the name in the origin\'s certificate, e.g. "api.internal.example.com".',
      );
    }
    origin.serverName = spec.serverName.toLowerCase();
  }
  if (spec.dangerouslySkipTlsVerify !== undefined) {
    if (typeof spec.dangerouslySkipTlsVerify !== 'boolean')
      throw new ConfigError(
        `${field}.dangerouslySkipTlsVerify`,
        'is not true or false',
        "Remove it (verification on), or give caFile with the origin's CA instead.",
      );
    origin.dangerouslySkipTlsVerify = spec.dangerouslySkipTlsVerify;
  }
  if (spec.healthCheck !== undefined) {
    const h = spec.healthCheck;
    const fix = 'Write it as {"path": "/healthz", "intervalSeconds": 10, "timeoutMs": 2000}.';
    if (!isObject(h)) throw new ConfigError(`${field}.healthCheck`, 'must be an object', fix);
    if (base.scheme === 'tcp' || base.scheme === 'tls')
      throw new ConfigError(
        `${field}.healthCheck`,
        `applies only to http:// and https:// origins, not ${base.scheme}://`,
        'Remove it; tcp origins rely on passive health (connect errors).',
      );
    for (const k of Object.keys(h))
      if (!['path', 'intervalSeconds', 'timeoutMs'].includes(k))
        throw new ConfigError(`${field}.healthCheck.${k}`, 'unknown field', fix);
    if (typeof h.path !== 'string' || !/^\/[\x21-\x7e]*$/.test(h.path))
      throw new ConfigError(
        `${field}.healthCheck.path`,
        `${JSON.stringify(h.path)} is not a path`,
        'Give a path starting with "/", e.g. "/healthz".',
      );
    origin.healthCheck = {
      path: h.path,
      intervalSeconds:
        h.intervalSeconds === undefined
          ? 10
          : whole(h.intervalSeconds, `${field}.healthCheck.intervalSeconds`, 1, 3600),
      timeoutMs: h.timeoutMs === undefined ? 2000 : whole(h.timeoutMs, `${field}.healthCheck.timeoutMs`, 1, 60_000),
    };
  }
  if (spec.ejectAfterFailures !== undefined)
    origin.ejectAfterFailures = whole(spec.ejectAfterFailures, `${field}.ejectAfterFailures`, 1, 1000);
  if (spec.ejectSeconds !== undefined) origin.ejectSeconds = whole(spec.ejectSeconds, `${field}.ejectSeconds`, 1, 3600);
  return origin;
}

/** A route host: an exact DNS name or `*.` + a name (one label), as certificates name hosts. */
function routeHost(v: unknown, field: string): string {
  const h = typeof v === 'string' ? v.toLowerCase() : '';
  const label = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
  if (!new RegExp(`^(?:\\*\\.)?${label}(?:\\.${label})*$`).test(h)) {
    throw new ConfigError(
      field,
      `${JSON.stringify(v)} is not a host name`,
      'Give a DNS name ("www.example.com") or a one-label wildcard ("*.example.com"), without a port.',
    );
  }
  // No certificate may cover a wildcard over a top-level domain (contract/x509.ts), so such a route could never match.
  if (h.startsWith('*.') && !h.slice(2).includes('.')) {
    throw new ConfigError(
      field,
      `${JSON.stringify(v)} is a wildcard over a top-level domain`,
      'Name a domain under it ("*.example.com"): TLS clients refuse certificates for such a wildcard.',
    );
  }
  return h;
}

/** `routes` (optional) and `origin` (the default route; required unless `routes` is given). */
export function parseRouting(
  rawRoutes: unknown,
  rawOrigin: unknown,
  mode: 'http' | 'tcp',
  baseDir: string,
): RoutingConfig {
  const routes: RouteConfig[] = [];
  if (rawRoutes !== undefined) {
    const fix = 'Write it as [{"hosts": ["www.example.com"], "origin": "http://10.0.1.5:8080"}].';
    if (!Array.isArray(rawRoutes) || rawRoutes.length === 0)
      throw new ConfigError(
        'routes',
        'must be a non-empty list',
        `${fix} Or remove it to send everything to "origin".`,
      );
    const seen = new Map<string, string>();
    rawRoutes.forEach((r, i) => {
      const f = `routes[${i}]`;
      if (!isObject(r)) throw new ConfigError(f, 'must be an object', fix);
      for (const k of Object.keys(r))
        if (!ROUTE_FIELDS.includes(k))
          throw new ConfigError(
            `${f}.${k}`,
            'unknown field',
            `Remove it; known fields are ${ROUTE_FIELDS.join(', ')}.`,
          );
      if (!Array.isArray(r.hosts) || r.hosts.length === 0)
        throw new ConfigError(
          `${f}.hosts`,
          'must be a non-empty list of host names',
          'Write e.g. ["www.example.com", "*.example.com"] (for everything else use the top-level "origin").',
        );
      const hosts = r.hosts.map((h, j) => routeHost(h, `${f}.hosts[${j}]`));
      for (const [j, h] of hosts.entries()) {
        const other = seen.get(h);
        if (other)
          throw new ConfigError(
            `${f}.hosts[${j}]`,
            `${h} is already routed by ${other}`,
            'Give each host name to one route only.',
          );
        seen.set(h, f);
      }
      if (r.retryIdempotent !== undefined && typeof r.retryIdempotent !== 'boolean')
        throw new ConfigError(
          `${f}.retryIdempotent`,
          'is not true or false',
          'Use true to retry idempotent requests without a body on another address, or false.',
        );
      if (r.name !== undefined && (typeof r.name !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(r.name)))
        throw new ConfigError(
          `${f}.name`,
          `${JSON.stringify(r.name)} is not a route name`,
          'Use 1 to 64 letters, digits, ".", "_" or "-" (it becomes a metric label).',
        );
      routes.push({
        name: (r.name as string | undefined) ?? hosts[0],
        hosts,
        origin: parseOrigin(r.origin, `${f}.origin`, mode, baseDir),
        retryIdempotent: r.retryIdempotent === true,
      });
    });
  }
  if (rawOrigin === undefined && routes.length > 0) return { routes };
  if (rawOrigin === undefined) {
    throw new ConfigError(
      'origin',
      'missing',
      `Set the origin URL, e.g. "${mode === 'tcp' ? 'tcp://127.0.0.1:5432' : 'http://127.0.0.1:8080'}" (or KEYLESS_ORIGIN), or give "routes".`,
    );
  }
  return {
    routes,
    defaultRoute: {
      name: 'default',
      hosts: [],
      origin: parseOrigin(rawOrigin, 'origin', mode, baseDir),
      retryIdempotent: false,
    },
  };
}

/**
 * KEYLESS_ROUTES: `host[,host...]=url;...`, e.g. `app.example.com=https://10.0.0.5:8443;*.example.com=http://10.0.0.6:8080`,
 * or the `routes` list as JSON (what the CDK edge stack sets).
 */
export function routesFromEnv(v: string): Json[] {
  if (v.trim().startsWith('[')) {
    try {
      return JSON.parse(v) as Json[];
    } catch (err) {
      throw new ConfigError(
        'KEYLESS_ROUTES',
        `is not valid JSON (${(err as Error).message})`,
        'Give the routes list as JSON, or as "host[,host]=url;host=url".',
      );
    }
  }
  return v
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const eq = entry.indexOf('=');
      if (eq <= 0)
        throw new ConfigError(
          'KEYLESS_ROUTES',
          `${JSON.stringify(entry)} is not host=url`,
          'Write "host[,host]=url;host=url", e.g. "app.example.com=https://10.0.0.5:8443;*.example.com=http://10.0.0.6:8080".',
        );
      return {
        hosts: entry
          .slice(0, eq)
          .split(',')
          .map((h) => h.trim()),
        origin: entry.slice(eq + 1).trim(),
      };
    });
}
