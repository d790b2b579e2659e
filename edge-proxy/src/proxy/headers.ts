/**
 * Header rewriting for the reverse proxy: hop-by-hop removal (RFC 9110 §7.6.1), HTTP/2 pseudo-header
 * conversion, `X-Forwarded-*`, and the `x-keyless-*` headers that tell the origin how the client's TLS
 * connection was terminated.
 *
 * Headers the origin receives from the edge (every client-supplied `x-keyless-*` header is removed
 * first, so none of these can be spoofed; a header is omitted when the fact does not apply):
 *
 * | header                            | example                  | meaning                                      |
 * |-----------------------------------|--------------------------|----------------------------------------------|
 * | `x-keyless-tls-protocol`          | `TLSv1.3`                | negotiated TLS version                       |
 * | `x-keyless-tls-cipher`            | `TLS_AES_128_GCM_SHA256` | cipher suite, IANA name                      |
 * | `x-keyless-tls-group`             | `x25519`                 | key-exchange group                           |
 * | `x-keyless-tls-signature-scheme`  | `ecdsa_secp256r1_sha256` | server signature scheme (RFC 8446 name)      |
 * | `x-keyless-tls-key-exchange`      | `ecdhe`                  | key-exchange kind                            |
 * | `x-keyless-tls-sni`               | `www.example.com`        | SNI host name (absent: client sent none)     |
 * | `x-keyless-tls-alpn`              | `h2`                     | ALPN protocol (absent: none negotiated)      |
 * | `x-keyless-tls-key-op-ms`         | `12.345`                 | remote private-key operation latency, ms     |
 * | `x-keyless-tls-resumed`           | `true` / `false`         | session resumed (no key operation)           |
 * | `x-keyless-http-version`          | `2` / `1.1` / `1.0`      | HTTP version between client and edge         |
 * | `x-keyless-edge-runtime`          | `node/24.22.3`           | the edge process's Node.js version           |
 * | `x-keyless-client-cert-verified`  | `1` / `0`                | always: a client certificate verified (mTLS) |
 * | `x-keyless-route`                 | `api.example.com`        | the route that chose the origin              |
 * | `x-keyless-client-cert-subject`   | `CN=alice,O=Example`     | its subject, RFC 4514                        |
 * | `x-keyless-client-cert-san`       | `DNS:a.example`          | its subjectAltName                           |
 * | `x-keyless-client-cert-fingerprint-sha256` | `3f9a…` (64 hex) | SHA-256 of the certificate (DER)             |
 *
 * plus `x-forwarded-for` (client address appended to any existing list), `x-forwarded-proto: https`
 * and `x-forwarded-host` (the client's Host / `:authority`), both overwritten.
 */
import type { ConnectionFacts } from './connection-facts';

export const KEYLESS_HEADER_PREFIX = 'x-keyless-';

/** The route (`routes[].name`, its first host by default, or `default`) that chose the origin. */
export const KEYLESS_ROUTE_HEADER = 'x-keyless-route';

export const KEYLESS_HEADERS = {
  protocol: 'x-keyless-tls-protocol',
  cipher: 'x-keyless-tls-cipher',
  group: 'x-keyless-tls-group',
  signatureScheme: 'x-keyless-tls-signature-scheme',
  keyExchange: 'x-keyless-tls-key-exchange',
  sni: 'x-keyless-tls-sni',
  alpn: 'x-keyless-tls-alpn',
  keyOperationMs: 'x-keyless-tls-key-op-ms',
  resumed: 'x-keyless-tls-resumed',
  httpVersion: 'x-keyless-http-version',
  edgeRuntime: 'x-keyless-edge-runtime',
} as const;

/** The edge's runtime, for the origin (the demo page shows it): a version, nothing secret. */
const EDGE_RUNTIME = `node/${process.versions.node}`;

/** The client certificate the edge verified (mTLS hosts); `verified` is always sent, `0` or `1`. */
export const CLIENT_CERT_HEADERS = {
  verified: 'x-keyless-client-cert-verified',
  subject: 'x-keyless-client-cert-subject',
  san: 'x-keyless-client-cert-san',
  fingerprint: 'x-keyless-client-cert-fingerprint-sha256',
} as const;

/** Connection-specific headers never forwarded in either direction (RFC 9110 §7.6.1, RFC 9113 §8.2.2). */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'http2-settings',
]);

/** A flat `[name, value, name, value, …]` list, the shape of `rawHeaders`, order and duplicates kept. */
export type RawHeaders = string[];

/** Header values we generate must be visible ASCII (no CR/LF, no control characters). */
const SAFE_VALUE = /^[\x21-\x7e](?:[\x20-\x7e]{0,1022}[\x21-\x7e])?$/;

function safeValue(v: string | undefined): string | undefined {
  return v !== undefined && SAFE_VALUE.test(v) ? v : undefined;
}

/** Lower-cased names listed in every `Connection` header (they are hop-by-hop too). */
export function connectionTokens(raw: readonly string[]): Set<string> {
  const tokens = new Set<string>();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    // Length first: runs twice per proxied request over every header, most of which are not it.
    if (raw[i].length !== 10 || raw[i].toLowerCase() !== 'connection') continue;
    for (const t of raw[i + 1].split(',')) {
      const token = t.trim().toLowerCase();
      if (token) tokens.add(token);
    }
  }
  return tokens;
}

/** Format the key-operation latency: milliseconds with at most 3 decimals. */
export function formatMs(ms: number): string {
  return String(Math.round(ms * 1000) / 1000);
}

/** The `x-keyless-*` headers for one connection, as a flat list. */
export function keylessHeaders(facts: ConnectionFacts, httpVersion: string): RawHeaders {
  const out: RawHeaders = [];
  const add = (name: string, value: string | undefined): void => {
    const v = safeValue(value);
    if (v !== undefined) out.push(name, v);
  };
  add(KEYLESS_HEADERS.protocol, facts.protocol);
  add(KEYLESS_HEADERS.cipher, facts.cipher);
  add(KEYLESS_HEADERS.group, facts.group);
  add(KEYLESS_HEADERS.signatureScheme, facts.signatureScheme);
  add(KEYLESS_HEADERS.keyExchange, facts.keyExchange);
  add(KEYLESS_HEADERS.sni, facts.sni);
  add(KEYLESS_HEADERS.alpn, facts.alpn);
  add(KEYLESS_HEADERS.keyOperationMs, facts.keyOperationMs === undefined ? undefined : formatMs(facts.keyOperationMs));
  add(KEYLESS_HEADERS.resumed, facts.resumed === undefined ? undefined : String(facts.resumed));
  add(KEYLESS_HEADERS.httpVersion, httpVersion);
  add(KEYLESS_HEADERS.edgeRuntime, EDGE_RUNTIME);
  add(CLIENT_CERT_HEADERS.verified, facts.clientCertVerified ?? '0');
  add(CLIENT_CERT_HEADERS.subject, facts.clientCertSubject);
  add(CLIENT_CERT_HEADERS.san, facts.clientCertSan);
  add(CLIENT_CERT_HEADERS.fingerprint, facts.clientCertFingerprint);
  return out;
}

export interface OriginHeadersInput {
  /** The client's request headers (`rawHeaders`; HTTP/2 pseudo-headers are dropped here). */
  rawHeaders: readonly string[];
  /** Host the client asked for (`Host`, `:authority`, or the absolute-form target's authority). */
  authority: string | undefined;
  /** `Host` to send when the client gave none (an HTTP/1.0 request): the origin's own. */
  fallbackHost?: string;
  facts: ConnectionFacts;
  /** `'1.0'`, `'1.1'` or `'2'`. */
  httpVersion: string;
  /** The request has a body (framing towards the origin: its `content-length`, else chunked). */
  hasBody: boolean;
  /** WebSocket-style upgrade: keep `Connection: upgrade` and `Upgrade`. */
  upgrade?: string;
  /** The route that chose the origin (`x-keyless-route`). */
  route?: string;
}

/**
 * Build the headers for the origin request. Drops pseudo-headers, hop-by-hop headers (and any header
 * the client nominated in `Connection`), `Host` (re-added from `authority`), `Expect` (the edge has
 * already answered `100-continue`), client-supplied `x-keyless-*`, `x-forwarded-proto` and
 * `x-forwarded-host`; appends the client to `x-forwarded-for`.
 */
export function buildOriginRequestHeaders(input: OriginHeadersInput): RawHeaders {
  const { rawHeaders: raw, authority, facts } = input;
  const nominated = connectionTokens(raw);
  const out: RawHeaders = [];
  const forwardedFor: string[] = [];
  const cookies: string[] = [];
  let hasLength = false;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i];
    const lower = name.toLowerCase();
    const value = raw[i + 1];
    if (lower.startsWith(':')) continue;
    if (lower === 'x-forwarded-for') {
      const v = value.trim();
      if (v) forwardedFor.push(v);
      continue;
    }
    if (lower === 'cookie' && input.httpVersion === '2') {
      // RFC 9113 §8.2.3: HTTP/2 may split cookies; HTTP/1.1 needs one field joined with "; ".
      cookies.push(value);
      continue;
    }
    if (lower === 'content-length') {
      // Framing-critical: never removable through `Connection`, and only meaningful with a body.
      if (input.hasBody && !hasLength) {
        out.push(name, value);
        hasLength = true;
      }
      continue;
    }
    if (
      HOP_BY_HOP_HEADERS.has(lower) ||
      nominated.has(lower) ||
      lower.startsWith(KEYLESS_HEADER_PREFIX) ||
      lower === 'host' ||
      lower === 'expect' ||
      lower === 'x-forwarded-proto' ||
      lower === 'x-forwarded-host'
    ) {
      continue;
    }
    out.push(name, value);
  }
  if (cookies.length > 0) out.push('cookie', cookies.join('; '));
  const host = authority ?? input.fallbackHost;
  if (host) out.push('host', host);
  if (input.hasBody && !hasLength) out.push('transfer-encoding', 'chunked');
  if (input.upgrade) out.push('connection', 'upgrade', 'upgrade', input.upgrade);
  if (facts.clientAddress) forwardedFor.push(facts.clientAddress);
  if (forwardedFor.length > 0) out.push('x-forwarded-for', forwardedFor.join(', '));
  out.push('x-forwarded-proto', 'https');
  if (authority) out.push('x-forwarded-host', authority);
  out.push(...keylessHeaders(facts, input.httpVersion));
  if (input.route) out.push(KEYLESS_ROUTE_HEADER, input.route);
  return out;
}

/**
 * Origin response headers for an HTTP/1.1 client: hop-by-hop removed (a `Connection`-nominated
 * `content-length` is kept: it is framing, not an option), order and duplicates kept.
 */
export function filterResponseHeaders(raw: readonly string[], opts: { keepUpgrade?: boolean } = {}): RawHeaders {
  const nominated = connectionTokens(raw);
  const out: RawHeaders = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const lower = raw[i].toLowerCase();
    if (opts.keepUpgrade && (lower === 'connection' || lower === 'upgrade')) {
      out.push(raw[i], raw[i + 1]);
      continue;
    }
    if (HOP_BY_HOP_HEADERS.has(lower) || lower.startsWith(':')) continue;
    if (nominated.has(lower) && lower !== 'content-length') continue;
    out.push(raw[i], raw[i + 1]);
  }
  return out;
}

/**
 * Origin response headers (or trailers) for an HTTP/2 client, as the object Node's http2 layer
 * accepts: lower-case names, no connection-specific headers (which Node rejects with
 * ERR_HTTP2_INVALID_CONNECTION_HEADERS), `set-cookie` kept as a list, other repeats joined with ", "
 * (Node rejects arrays for single-value headers such as `content-type`).
 */
export function toHttp2Headers(raw: readonly string[]): Record<string, string | string[]> {
  const filtered = filterResponseHeaders(raw);
  const out: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  for (let i = 0; i + 1 < filtered.length; i += 2) {
    const name = filtered[i].toLowerCase();
    const value = filtered[i + 1];
    const prev = out[name];
    if (name === 'set-cookie') {
      out[name] = prev === undefined ? [value] : [...(prev as string[]), value];
    } else if (prev === undefined) {
      out[name] = value;
    } else if (name !== 'content-length') {
      out[name] = `${prev as string}, ${value}`;
    }
  }
  return out;
}
