/**
 * Forwarding one request to its route's origin over HTTP/1.1 (plain or TLS), and its response back
 * (docs/architecture.md, "Deployables", `src/proxy/`).
 *
 * - Bodies stream both ways with backpressure (`pipe`); nothing is buffered whole.
 * - Origin refused/unreachable/reset before a response → 502; connect or response deadline → 504;
 *   failure after the response head was sent → the client response is aborted (connection reset for
 *   HTTP/1.1, RST_STREAM for HTTP/2), never a truncated response that looks complete.
 * - The route's pool picks the address with the fewest pending requests; a request without a body
 *   (never replayed) that never reached the origin, or an idempotent one where the route allows it,
 *   may go to another address; a body-less idempotent request that met a stale kept-alive socket is
 *   retried once on a fresh one.
 * - 421 (authority.ts, request-routing.ts): a host the connection's certificate entry does not
 *   serve, or no route.
 *
 * Header rewriting (hop-by-hop, `X-Forwarded-*`, `x-keyless-*`) is in `headers.ts`.
 */
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import type { Readable, Writable } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { hostOfAuthority } from './authority';
import { addTrailers, discardRequestBody, plainText } from './client-response';
import type { ConnState, FrontendConnections } from './frontend-connections';
import { buildOriginRequestHeaders, filterResponseHeaders, toHttp2Headers } from './headers';
import {
  armOriginTimeouts,
  IDEMPOTENT_METHODS,
  isStaleSocketError,
  isTlsVerificationError,
  OriginTimeoutError,
  trackReached,
  type ForwardContext,
} from './origin';
import type { PoolAddress } from './origin-pool';
import { MISDIRECTED_MESSAGE, NO_ROUTE_MESSAGE, type RequestRouter } from './request-routing';
import { requestTarget } from './request-target';
import type { RoutingMetrics } from './routing-metrics';
import type { ProxyOutcome, ProxyRequestEvent } from './types';

export type ClientRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type ClientResponse = http.ServerResponse | http2.Http2ServerResponse;

/** What forwarding needs from the frontend that owns the connection. */
export interface ForwardEnv {
  readonly ctx: ForwardContext;
  readonly router: RequestRouter;
  readonly connections: FrontendConnections;
  readonly metrics?: RoutingMetrics;
  /** Called once per request when it ends; never throws. */
  report(event: ProxyRequestEvent): void;
}

/** Attempts per request, over different origin addresses. */
const MAX_ATTEMPTS = 3;

const noop = (): void => undefined;

/** Forward `req` on connection `st` to its route's origin and relay the answer to `res`; reports the outcome once. */
export function forwardRequest(req: ClientRequest, res: ClientResponse, st: ConnState, env: ForwardEnv): void {
  const { ctx, router, connections, metrics } = env;
  const log = ctx.log;
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
    env.report({
      httpVersion,
      method,
      authority: target.authority,
      path: target.path ?? req.url ?? '',
      status: res.headersSent ? res.statusCode : 0,
      outcome,
      durationMs: performance.now() - started,
      clientAddress: st.facts.clientAddress,
    });
    if (connections.closing && !isH2 && st.active === 0) st.conn.end();
  });

  if (connections.closing && !isH2) (res as http.ServerResponse).shouldKeepAlive = false;

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
  const host = authority === undefined || !router.needsHost(st) ? undefined : hostOfAuthority(authority);
  if (router.misdirected(st, host)) {
    fail(421, 'misdirected', MISDIRECTED_MESSAGE);
    return;
  }
  const route = router.routeFor(st, host);
  if (!route) {
    metrics?.failure('', 'no_route');
    fail(421, 'misdirected', NO_ROUTE_MESSAGE);
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
