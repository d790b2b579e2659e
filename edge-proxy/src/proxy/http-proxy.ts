/**
 * The HTTP frontend of the edge (docs/architecture.md, "Deployables", `src/proxy/`): takes each handshaken `SecureConnection`
 * from the TLS engine, serves it with Node's own HTTP/1.1 or HTTP/2 server (chosen by ALPN), and
 * reverse-proxies every request over HTTP/1.1 (plain or TLS) to the origin its route chooses.
 *
 * - HTTP/1.1 (ALPN `http/1.1` or none): `http.Server`, fed with `emit('connection', conn)`.
 *   WebSocket-style `Upgrade` requests are tunnelled to the origin (see `upgrade.ts`).
 * - HTTP/2 (ALPN `h2`): `http2.createServer()`, fed the same way; Node runs nghttp2 over any Duplex
 *   (a non-native stream is wrapped in a JSStreamSocket), so our engine's connection works as-is.
 * - Bodies stream both ways with backpressure (`pipe`); nothing is buffered whole.
 * - Origin refused/unreachable/reset before a response → 502; connect or response deadline → 504;
 *   failure after the response head was sent → the client response is aborted (connection reset for
 *   HTTP/1.1, RST_STREAM for HTTP/2), never a truncated response that looks complete.
 * - Every stream and socket has an 'error' handler: no client or origin behaviour crashes the process.
 *
 * - Routing (routing.ts, origin-pool.ts): the request's host (or the SNI) picks the route, the route's
 *   pool picks the address with the fewest pending requests; a request without a body that never
 *   reached the origin (or an idempotent one, where the route allows it) may go to another address.
 * - 421 (authority.ts): a host the connection's certificate entry does not serve, or no route.
 * - `sendProxyProtocol`: every origin connection starts with a PROXY v2 header naming the client, so
 *   origin connections belong to one client connection (an agent each) rather than a shared pool.
 *
 * Header rewriting (hop-by-hop, `X-Forwarded-*`, `x-keyless-*`) is in `headers.ts`.
 */
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import { isIP } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { hostFieldCount, hostOfAuthority, isMisdirected, type CertificateEntryView } from './authority';
import { describeConnection, type ConnectionFacts } from './connection-facts';
import { buildOriginRequestHeaders, filterResponseHeaders, toHttp2Headers, type RawHeaders } from './headers';
import {
  armOriginTimeouts,
  createProxyProtocolAgent,
  IDEMPOTENT_METHODS,
  isStaleSocketError,
  isTlsVerificationError,
  OriginTimeoutError,
  trackReached,
  type ForwardContext,
} from './origin';
import { createRouting, type Route } from './routing';
import type { PoolAddress } from './origin-pool';
import { originProxyHeader } from './origin-proxy-header';
import { proxyUpgrade, type UpgradeTarget } from './upgrade';
import type {
  HttpFrontend,
  HttpFrontendOptions,
  ProxyLog,
  ProxyOutcome,
  ProxyRequestEvent,
  SecureConnection,
} from './types';

/** Per-connection state. */
interface ConnState {
  readonly conn: SecureConnection;
  readonly facts: ConnectionFacts;
  readonly kind: 'h1' | 'h2';
  /** SNI, lower-case; absent when the client sent none. */
  readonly sni?: string;
  /** The certificate entry the handshake used (absent: not known, no 421 check). */
  readonly entry?: CertificateEntryView;
  /** In-flight requests (HTTP/1.1) — an upgraded tunnel counts as one until it closes. */
  active: number;
  /** Requests seen so far (a connection with none yet is not idle: its first request may be on its way). */
  requests: number;
  session?: http2.ServerHttp2Session;
  /** With `sendProxyProtocol`: this connection's own origin agent (http:// origins only). */
  agent?: http.Agent;
}

const noop = (): void => undefined;

/** Characters allowed in an authority we forward as `Host` (RFC 3986 host [":" port], no userinfo). */
const AUTHORITY = /^(?:[A-Za-z0-9._~!$&'()*+,;=%-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

function plainText(status: number, message: string): { body: string; headers: Record<string, string> } {
  const body = `${status} ${http.STATUS_CODES[status] ?? ''}: ${message}\n`;
  return {
    body,
    headers: {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
      'cache-control': 'no-store',
    },
  };
}

export function createHttpFrontend(options: HttpFrontendOptions): HttpFrontend {
  const log: ProxyLog = options.log ?? noop;
  const routing = createRouting(options, log);
  const routes = routing.table;
  const metrics = options.metrics;
  const ctx: ForwardContext = {
    connectTimeoutMs: options.connectTimeoutMs ?? 5000,
    originTimeoutMs: options.originTimeoutMs ?? 60_000,
    idleTimeoutMs: options.idleTimeoutMs ?? 120_000,
    log,
  };
  const closeTimeoutMs = options.closeTimeoutMs ?? 10_000;

  const states = new Set<ConnState>();
  const h1States = new WeakMap<object, ConnState>();
  const h2States = new WeakMap<object, ConnState>();
  let adopting: ConnState | undefined;
  let closing = false;
  let closePromise: Promise<void> | undefined;
  let onAllClosed: (() => void) | undefined;

  const report = (event: ProxyRequestEvent): void => {
    if (!options.onRequest) return;
    try {
      options.onRequest(event);
    } catch (err) {
      log('warn', 'proxy: onRequest hook threw', { err: String(err) });
    }
  };

  // ---------------------------------------------------------------- HTTP/1.1
  const h1 = http.createServer({
    headersTimeout: options.headersTimeoutMs ?? 30_000,
    maxHeaderSize: options.maxHeaderBytes ?? 16_384,
    requestTimeout: options.requestTimeoutMs ?? 300_000,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 5000,
    connectionsCheckingInterval: options.connectionsCheckingIntervalMs ?? 1000,
    requireHostHeader: true,
  });
  h1.timeout = ctx.idleTimeoutMs;
  // A client that sends its request and then close_notify (TLS 1.3 half-close, RFC 8446 §6.1 — e.g.
  // gnutls-cli on end of input) still gets its response; the connection ends after it.
  // (`httpAllowHalfOpen` is set by Node's http.Server constructor but missing from @types/node.)
  (h1 as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  h1.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const st = h1States.get(req.socket);
    if (!st) {
      res.destroy();
      return;
    }
    forward(req, res, st);
  });
  h1.on('upgrade', (req: http.IncomingMessage, socket: SecureConnection, head: Buffer) => {
    const st = h1States.get(socket);
    if (!st) {
      socket.destroy();
      return;
    }
    st.active++;
    st.requests++;
    const authority = typeof req.headers.host === 'string' ? req.headers.host : undefined;
    const host = authority === undefined ? undefined : hostOfAuthority(authority);
    proxyUpgrade(req, socket, head, st.facts, ctx, upgradeTarget(st, host), (event) => {
      st.active--;
      report(event);
    });
  });
  // Node starts the HTTP/1.1 header/request deadline checks (slowloris protection, 408) and the
  // connection list behind closeIdleConnections() when a server emits 'listening'. This server never
  // listens — connections are injected — so start them the same way.
  h1.emit('listening');

  // ---------------------------------------------------------------- HTTP/2
  const h2 = http2.createServer({
    settings: { maxConcurrentStreams: options.maxConcurrentStreams ?? 100, enablePush: false, maxHeaderListSize: options.maxHeaderBytes ?? 16_384 },
  });
  h2.setTimeout(ctx.idleTimeoutMs);
  h2.on('timeout', (session: http2.ServerHttp2Session) => {
    // Idle session: GOAWAY, then drop it if streams still hang around.
    session.close();
    setTimeout(() => session.destroy(), 5000).unref();
  });
  h2.on('session', (session: http2.ServerHttp2Session) => {
    // Emitted synchronously from emit('connection'), so `adopting` is this session's connection.
    if (!adopting) return;
    adopting.session = session;
    h2States.set(session, adopting);
    session.on('error', (err) => log('debug', 'proxy: http2 session error', { err: String(err) }));
  });
  h2.on('sessionError', noop);
  h2.on('request', (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
    const session = req.stream.session;
    const st = session ? h2States.get(session) : undefined;
    if (!st) {
      req.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    forward(req, res, st);
  });

  // ---------------------------------------------------------------- proxying
  function forward(req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse, st: ConnState): void {
    const started = performance.now();
    const isH2 = st.kind === 'h2';
    const httpVersion = isH2 ? '2' : req.httpVersion === '1.0' ? '1.0' : '1.1';
    const method = req.method ?? 'GET';
    const body: Readable = req;
    const sink: Writable = res;
    body.on('error', noop);
    sink.on('error', noop);

    let outcome: ProxyOutcome = 'ok';
    let finished = false;
    // The whole response was handed to the connection ('close' without it = aborted). HTTP/2 compat
    // responses emit 'finish' even for a reset stream, so only our own end() callback counts.
    let completed = false;
    const h2stream = isH2 ? (req as http2.Http2ServerRequest).stream : undefined;
    /** End the response; on HTTP/2 get rid of a request body nobody will read any more. */
    const endResponse = (data?: string): void => {
      const done = (): void => {
        completed = true;
        if (h2stream && !req.complete && !h2stream.destroyed) discardRequestBody(h2stream, body);
      };
      if (data === undefined) sink.end(done);
      else sink.end(data, done);
    };
    let proxyReq: http.ClientRequest | undefined;
    let proxyRes: http.IncomingMessage | undefined;
    const target: { path?: string; authority?: string } = {};
    st.active++;
    st.requests++;

    sink.on('close', () => {
      if (finished) return;
      finished = true;
      st.active--;
      if (!completed) {
        if (outcome === 'ok') outcome = 'client_aborted';
        proxyReq?.destroy();
        proxyRes?.destroy();
      } else if (proxyReq && !proxyReq.writableFinished) {
        // The origin answered before the request body was complete: that origin request is over.
        proxyReq.destroy();
      }
      report({
        httpVersion,
        method,
        authority: target.authority,
        path: target.path ?? req.url ?? '',
        status: res.headersSent ? res.statusCode : 0,
        outcome,
        durationMs: performance.now() - started,
        clientAddress: st.facts.clientAddress,
      });
      if (closing && !isH2 && st.active === 0) st.conn.end();
    });

    if (closing && !isH2) (res as http.ServerResponse).shouldKeepAlive = false;

    const abort = (): void => {
      if (isH2) {
        const stream = (res as http2.Http2ServerResponse).stream;
        if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      } else {
        (res as http.ServerResponse).destroy();
      }
    };

    const fail = (status: number, why: ProxyOutcome, message: string): void => {
      outcome = why;
      if (res.headersSent) {
        abort();
        return;
      }
      const { body: text, headers } = plainText(status, message);
      // The rest of an unread request body is not worth draining: close the HTTP/1.1 connection.
      if (!isH2 && !req.complete) (res as http.ServerResponse).shouldKeepAlive = false;
      try {
        (res as http.ServerResponse).writeHead(status, headers);
        endResponse(text);
      } catch {
        abort();
      }
    };

    const parsed = requestTarget(req, isH2);
    if ('error' in parsed) {
      const connect = parsed.error === 'CONNECT';
      fail(connect ? 405 : 400, 'bad_request', connect ? 'CONNECT is not supported' : parsed.error);
      return;
    }
    const { path, authority } = parsed;
    target.path = path;
    target.authority = authority;
    // Routing and the 421 rule read the host without its port, lower-case (only when they need it).
    const host = authority === undefined || (routes.onlyDefault && !st.entry) ? undefined : hostOfAuthority(authority);
    if (misdirected(st, host)) {
      fail(421, 'misdirected', 'this connection does not serve that host; open a new connection for it');
      return;
    }
    const route = routeFor(st, host);
    if (!route) {
      metrics?.failure('', 'no_route');
      fail(421, 'misdirected', 'no route serves this host');
      return;
    }

    const hasBody = isH2
      ? !(req as http2.Http2ServerRequest).stream.endAfterHeaders || req.headers['content-length'] !== undefined
      : req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    const headers = buildOriginRequestHeaders({
      rawHeaders: req.rawHeaders,
      authority,
      fallbackHost: route.hostHeader,
      facts: st.facts,
      httpVersion,
      hasBody,
      route: route.name,
    });
    const pool = route.pool;
    const secure = pool.origin.scheme === 'https';
    let tried: Set<PoolAddress> | undefined;

    const send = (attempt: number, sameAddress?: PoolAddress): void => {
      const addr = sameAddress ?? pool.pick(tried);
      if (!addr) {
        metrics?.failure(route.name, 'all_down');
        log('warn', 'proxy: every origin address is down', { route: route.name });
        fail(502, 'origin_down', `every origin address of route ${route.name} is down`);
        return;
      }
      let preq: http.ClientRequest;
      try {
        preq = (secure ? https : http).request({ host: addr.host, port: addr.port, method, path, headers, agent: st.agent ?? pool.agent });
      } catch (err) {
        // Node validates the method, path and header values; reject what it would not send.
        log('debug', 'proxy: request rejected', { err: String(err) });
        fail(400, 'bad_request', 'malformed request');
        return;
      }
      proxyReq = preq;
      addr.pending++;
      const sentAt = performance.now();
      let answered = false;
      preq.once('close', () => addr.pending--);
      armOriginTimeouts(preq, ctx);
      const reached = trackReached(preq, secure);

      preq.on('error', (err: Error) => {
        if (!answered) {
          metrics?.originRequest(route.name, addr.label, 0);
          // A failed connect or TLS handshake, or a request that got no answer, counts against the address.
          if (!preq.reusedSocket || !isStaleSocketError(err)) pool.failed(addr, String((err as NodeJS.ErrnoException).code ?? err.message));
        }
        if (proxyRes) {
          // The response was under way; the origin went away (or a deadline passed) mid-body.
          if (!proxyRes.complete) {
            outcome = 'origin_error';
            abort();
          }
          return;
        }
        if (finished) return;
        if (attempt === 0 && !hasBody && preq.reusedSocket && IDEMPOTENT_METHODS.has(method) && isStaleSocketError(err)) {
          log('debug', 'proxy: retrying on a fresh origin socket', { err: String(err) });
          send(1, addr);
          return;
        }
        // Another address, for a request without a body (never replayed) that never reached the
        // origin, or that is idempotent on a route that allows it.
        if (!hasBody && attempt + 1 < MAX_ATTEMPTS && (!reached() || (route.retryIdempotent && IDEMPOTENT_METHODS.has(method)))) {
          (tried ??= new Set()).add(addr);
          if (pool.pick(tried)) {
            log('debug', 'proxy: retrying on another origin address', { route: route.name, address: addr.label, err: String(err) });
            send(attempt + 1);
            return;
          }
        }
        const fields = { route: route.name, address: addr.label, err: String(err), code: (err as NodeJS.ErrnoException).code };
        if (err instanceof OriginTimeoutError) {
          metrics?.failure(route.name, 'timeout');
          log('warn', 'proxy: origin timeout', { ...fields, phase: err.phase, path });
          fail(504, 'origin_timeout', 'origin did not respond in time');
        } else if (isTlsVerificationError(err)) {
          metrics?.failure(route.name, 'tls');
          log('warn', 'proxy: origin certificate verification failed', { ...fields, reason: err.message });
          fail(502, 'origin_unreachable', 'origin certificate verification failed');
        } else {
          metrics?.failure(route.name, 'unreachable');
          log('warn', 'proxy: origin unreachable', fields);
          fail(502, 'origin_unreachable', 'origin unreachable');
        }
      });

      preq.on('response', (pres: http.IncomingMessage) => {
        proxyRes = pres;
        answered = true;
        pres.on('error', noop);
        const code = pres.statusCode ?? 0;
        metrics?.originRequest(route.name, addr.label, code, (performance.now() - sentAt) / 1000);
        if (code >= 500) pool.failed(addr, `status ${code}`);
        else pool.succeeded(addr);
        if (finished) {
          pres.destroy();
          return;
        }
        const status = pres.statusCode ?? 502;
        // The origin answered before the client finished sending: the rest of the upload will not
        // be read, so the HTTP/1.1 connection cannot be reused (HTTP/2 discards per stream).
        if (!isH2 && !req.complete) (res as http.ServerResponse).shouldKeepAlive = false;
        try {
          if (isH2) {
            (res as http2.Http2ServerResponse).writeHead(status, toHttp2Headers(pres.rawHeaders));
          } else {
            (res as http.ServerResponse).writeHead(status, pres.statusMessage, filterResponseHeaders(pres.rawHeaders));
          }
        } catch (err) {
          log('warn', 'proxy: unusable origin response head', { err: String(err) });
          pres.destroy();
          fail(502, 'origin_error', 'invalid response from origin');
          return;
        }
        pres.pipe(sink, { end: false });
        pres.on('end', () => {
          if (pres.rawTrailers.length > 0) addTrailers(res, isH2, pres.rawTrailers);
          endResponse();
        });
        pres.on('close', () => {
          if (!pres.complete && !finished) {
            outcome = 'origin_error';
            abort();
          }
        });
      });

      if (hasBody && attempt === 0) {
        // End the origin request only for a body that really ended: an HTTP/2 stream reset by the
        // client also ends the request Readable, and a truncated upload must not reach the origin
        // as a complete one.
        body.pipe(preq, { end: false });
        body.once('end', () => {
          const aborted = h2stream
            ? h2stream.aborted || (h2stream.rstCode !== undefined && h2stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR)
            : !req.complete;
          if (aborted) {
            if (outcome === 'ok') outcome = 'client_aborted';
            preq.destroy();
          } else {
            preq.end();
          }
        });
      } else {
        preq.end();
        if (!hasBody) body.resume();
      }
    };
    send(0);
  }

  function upgradeTarget(st: ConnState, host: string | undefined): UpgradeTarget {
    if (misdirected(st, host)) return { refuse: 421, outcome: 'misdirected', message: 'this connection does not serve that host; open a new connection for it' };
    const route = routeFor(st, host);
    if (!route) return { refuse: 421, outcome: 'misdirected', message: 'no route serves this host' };
    const address = route.pool.pick();
    if (!address) return { refuse: 502, outcome: 'origin_down', message: `every origin address of route ${route.name} is down` };
    return { route, address, agent: st.agent };
  }

  /** The route for a request: by its host, or by the SNI when it names none (or an IP address). */
  function routeFor(st: ConnState, host: string | undefined): Route | undefined {
    if (routes.onlyDefault) return routes.defaultRoute;
    return routes.match(host === undefined || isIP(host) !== 0 ? st.sni : host);
  }

  /** RFC 9110 §15.5.20: the request names a host the connection's certificate entry does not serve (see authority.ts). */
  function misdirected(st: ConnState, host: string | undefined): boolean {
    if (!st.entry || !options.certificateEntries) return false;
    return isMisdirected(host, st.sni, st.entry, st.kind === 'h2', options.certificateEntries);
  }

  // ---------------------------------------------------------------- connections
  function release(st: ConnState): void {
    if (!states.delete(st)) return;
    st.agent?.destroy();
    if (states.size === 0 && onAllClosed) onAllClosed();
  }

  const frontend: HttpFrontend = {
    get connectionCount() {
      return states.size;
    },
    ready: routing.ready,
    originStatus: routing.status,

    handle(conn: SecureConnection): void {
      conn.on('error', (err: Error) => log('debug', 'proxy: client connection error', { err: String(err) }));
      if (closing || conn.destroyed) {
        conn.destroy();
        return;
      }
      const alpn = conn.alpnProtocol;
      const kind = alpn === 'h2' ? 'h2' : !alpn || alpn === 'http/1.1' ? 'h1' : undefined;
      if (!kind) {
        log('warn', 'proxy: unsupported ALPN protocol', { alpn });
        conn.destroy();
        return;
      }
      // Request/response traffic: never wait for Nagle (Node's own listeners do this for their sockets;
      // injected connections and the JSStreamSocket wrapper around them do not).
      try {
        conn.setNoDelay(true);
      } catch {
        // best effort
      }
      const facts = describeConnection(conn);
      const entry = options.certificateEntries?.forConnection(conn);
      const st: ConnState = { conn, facts, kind, sni: facts.sni?.toLowerCase(), entry, active: 0, requests: 0 };
      if (options.sendProxyProtocol) {
        // The PROXY header names this client, so its origin sockets are its own: a keep-alive agent
        // per client connection (HTTP/2 streams of one client may use several), destroyed with it.
        st.agent = createProxyProtocolAgent(originProxyHeader(conn), {
          maxSockets: Math.min(options.maxOriginSockets ?? 256, options.maxConcurrentStreams ?? 100),
          idleSocketTimeoutMs: options.originIdleSocketTimeoutMs ?? 4000,
        });
      }
      states.add(st);
      conn.once('close', () => release(st));
      if (kind === 'h1') {
        h1States.set(conn, st);
        h1.emit('connection', conn);
      } else {
        adopting = st;
        try {
          h2.emit('connection', conn);
        } finally {
          adopting = undefined;
        }
        if (!st.session) {
          log('error', 'proxy: http2 session was not created');
          conn.destroy();
        }
      }
    },

    close(): Promise<void> {
      if (closePromise) return closePromise;
      closing = true;
      closePromise = (async () => {
        // Idle keep-alive connections are closed now (HTTP/2: GOAWAY, then the session ends when its
        // streams do). A connection that has not sent its first request yet was just established —
        // its request is most likely on the way — so it gets a short grace before being closed;
        // ending it at once would reset that request. Every response from now on says
        // `Connection: close`, and a connection ends when its last active request does.
        // (Node's own h1.close() would destroy both kinds of "idle" connection: it runs last.)
        for (const st of states) {
          if (st.kind === 'h2') st.session?.close();
          else if (st.active === 0 && st.requests > 0) st.conn.end();
        }
        const grace = setTimeout(() => {
          for (const st of states) if (st.kind === 'h1' && st.active === 0) st.conn.end();
        }, Math.min(FIRST_REQUEST_GRACE_MS, closeTimeoutMs));
        grace.unref();
        if (states.size > 0) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, closeTimeoutMs);
            timer.unref();
            onAllClosed = () => {
              clearTimeout(timer);
              resolve();
            };
          });
        }
        clearTimeout(grace);
        for (const st of [...states]) {
          st.session?.destroy();
          st.conn.destroy();
        }
        // Stops the HTTP/1.1 deadline checker.
        h1.close();
        h2.close();
        routing.close();
      })();
      return closePromise;
    },
  };
  return frontend;
}

/** Attempts per request, over different origin addresses. */
const MAX_ATTEMPTS = 3;

/** On close, how long a new HTTP/1.1 connection may take to send its first request. */
const FIRST_REQUEST_GRACE_MS = 1000;

/** Bytes / milliseconds of an unwanted HTTP/2 request body the edge reads and drops before resetting. */
const DISCARD_MAX_BYTES = 1024 * 1024;
const DISCARD_MAX_MS = 2000;

/**
 * The response is complete but the client is still sending a body nobody will read (an error answer,
 * or an origin that answered early). Read and drop a bounded amount, so that well-behaved uploads
 * finish normally, then stop the rest with RST_STREAM(NO_ERROR) (RFC 9113 §8.1). (Resetting at once
 * would be valid too, but leaves some clients — Node's own — waiting forever for their pending
 * writes.)
 */
function discardRequestBody(stream: http2.ServerHttp2Stream, body: Readable): void {
  let dropped = 0;
  const stop = (): void => {
    clearTimeout(timer);
    if (!stream.destroyed && !stream.closed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
  };
  const timer = setTimeout(stop, DISCARD_MAX_MS);
  timer.unref();
  body.unpipe();
  body.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > DISCARD_MAX_BYTES) stop();
  });
  body.once('end', () => clearTimeout(timer));
  body.once('close', () => clearTimeout(timer));
  body.resume();
}

/** Path and authority of a request, or why it cannot be forwarded. */
function requestTarget(
  req: http.IncomingMessage | http2.Http2ServerRequest,
  isH2: boolean,
): { path: string; authority?: string } | { error: string } {
  const method = req.method ?? '';
  if (method === 'CONNECT') return { error: 'CONNECT' };
  // RFC 9112 §3.2: more than one Host field makes the request invalid (Node keeps the first).
  if (hostFieldCount(req.rawHeaders) > 1) return { error: 'more than one Host header' };
  const url = req.url ?? '';
  let path: string;
  let authority: string | undefined;
  if (isH2) {
    const a = req.headers[':authority'];
    const host = req.headers.host;
    authority = typeof a === 'string' && a ? a : typeof host === 'string' && host ? host : undefined;
    // RFC 9113 §8.3.1: a Host that disagrees with :authority makes the request malformed.
    if (typeof a === 'string' && a && typeof host === 'string' && host.toLowerCase() !== a.toLowerCase()) {
      return { error: 'host and :authority disagree' };
    }
    path = url;
  } else if (url.startsWith('/') || (url === '*' && method === 'OPTIONS')) {
    path = url;
    const host = req.headers.host;
    authority = typeof host === 'string' && host ? host : undefined;
  } else {
    // Absolute form (RFC 9112 §3.2.2): the target's authority replaces Host.
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return { error: 'bad request target' };
    }
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.password) {
      return { error: 'bad request target' };
    }
    path = `${u.pathname}${u.search}`;
    authority = u.host;
  }
  if (!path.startsWith('/') && path !== '*') return { error: 'bad request target' };
  if (authority !== undefined && !AUTHORITY.test(authority)) return { error: 'bad authority' };
  return { path, authority };
}

/** Forward origin trailers (hop-by-hop and framing fields removed). */
function addTrailers(res: http.ServerResponse | http2.Http2ServerResponse, isH2: boolean, raw: RawHeaders): void {
  const filtered = filterResponseHeaders(raw).filter((_, i, all) => {
    const name = (i % 2 === 0 ? all[i] : all[i - 1]).toLowerCase();
    return name !== 'content-length' && name !== 'host';
  });
  if (filtered.length === 0) return;
  try {
    if (isH2) {
      (res as http2.Http2ServerResponse).addTrailers(toHttp2Headers(filtered));
    } else {
      const pairs: [string, string][] = [];
      for (let i = 0; i + 1 < filtered.length; i += 2) pairs.push([filtered[i], filtered[i + 1]]);
      (res as http.ServerResponse).addTrailers(pairs);
    }
  } catch {
    // Invalid trailers are dropped, the body is still delivered.
  }
}
