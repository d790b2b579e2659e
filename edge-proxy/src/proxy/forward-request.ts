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
 * Header rewriting (hop-by-hop, `X-Forwarded-*`, `x-keyless-*`) is in `headers.ts`; the client side
 * of the exchange (error answers, aborts, the report) in `client-exchange.ts`.
 */
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import { performance } from 'node:perf_hooks';
import { hostOfAuthority } from './authority';
import { ClientExchange, type ClientRequest, type ClientResponse } from './client-exchange';
import { addTrailers } from './client-response';
import type { ConnState, FrontendConnections } from './frontend-connections';
import { buildOriginRequestHeaders, filterResponseHeaders, toHttp2Headers, type RawHeaders } from './headers';
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
import type { Route } from './routing';
import type { RoutingMetrics } from './routing-metrics';
import type { ProxyRequestEvent } from './types';

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
  const exchange = new ClientExchange(req, res, st, { closing: () => env.connections.closing, report: env.report });
  const target = requestTarget(req, exchange.isH2);
  if ('error' in target) {
    const connect = target.error === 'CONNECT';
    exchange.fail(connect ? 405 : 400, 'bad_request', connect ? 'CONNECT is not supported' : target.error);
    return;
  }
  exchange.path = target.path;
  exchange.authority = target.authority;
  const route = routeOrRefuse(exchange, target.authority, env);
  if (!route) return;
  const hasBody = requestHasBody(req, exchange.isH2);
  const headers = buildOriginRequestHeaders({
    rawHeaders: req.rawHeaders,
    authority: target.authority,
    fallbackHost: route.hostHeader,
    facts: st.facts,
    httpVersion: exchange.httpVersion,
    hasBody,
    route: route.name,
  });
  new OriginForwarding(exchange, route, target.path, headers, hasBody, env).send(0);
}

/** The request's route, or undefined after answering 421 (RFC 9110 §15.5.20). */
function routeOrRefuse(exchange: ClientExchange, authority: string | undefined, env: ForwardEnv): Route | undefined {
  const { st } = exchange;
  const { router } = env;
  // Routing and the 421 rule read the host without its port, lower-case (only when they need it).
  const host = authority === undefined || !router.needsHost(st) ? undefined : hostOfAuthority(authority);
  if (router.misdirected(st, host)) {
    exchange.fail(421, 'misdirected', MISDIRECTED_MESSAGE);
    return undefined;
  }
  const route = router.routeFor(st, host);
  if (!route) {
    env.metrics?.failure('', 'no_route');
    exchange.fail(421, 'misdirected', NO_ROUTE_MESSAGE);
  }
  return route;
}

/** Whether the request carries a body (never replayed to another address). */
function requestHasBody(req: ClientRequest, isH2: boolean): boolean {
  return isH2
    ? !(req as http2.Http2ServerRequest).stream.endAfterHeaders || req.headers['content-length'] !== undefined
    : req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
}

/** The origin side of one exchange: its attempts over the route's addresses. */
class OriginForwarding {
  private readonly secure: boolean;
  private tried: Set<PoolAddress> | undefined;

  constructor(
    private readonly exchange: ClientExchange,
    private readonly route: Route,
    private readonly path: string,
    private readonly headers: RawHeaders,
    private readonly hasBody: boolean,
    private readonly env: ForwardEnv,
  ) {
    this.secure = route.pool.origin.scheme === 'https';
  }

  /** One attempt: to `sameAddress` (a stale-socket retry) or the pool's pick among addresses not tried. */
  send(attempt: number, sameAddress?: PoolAddress): void {
    const { exchange, route, env } = this;
    const pool = route.pool;
    const addr = sameAddress ?? pool.pick(this.tried);
    if (!addr) {
      env.metrics?.failure(route.name, 'all_down');
      env.ctx.log('warn', 'proxy: every origin address is down', { route: route.name });
      exchange.fail(502, 'origin_down', `every origin address of route ${route.name} is down`);
      return;
    }
    let preq: http.ClientRequest;
    try {
      preq = (this.secure ? https : http).request({
        host: addr.host,
        port: addr.port,
        method: exchange.method,
        path: this.path,
        headers: this.headers,
        agent: exchange.st.agent ?? pool.agent,
      });
    } catch (err) {
      // Node validates the method, path and header values; reject what it would not send.
      env.ctx.log('debug', 'proxy: request rejected', { err: String(err) });
      exchange.fail(400, 'bad_request', 'malformed request');
      return;
    }
    exchange.proxyReq = preq;
    addr.pending++;
    const sentAt = performance.now();
    let answered = false;
    preq.once('close', () => addr.pending--);
    armOriginTimeouts(preq, env.ctx);
    const reached = trackReached(preq, this.secure);
    preq.on('error', (err: Error) => this.onError(err, preq, addr, attempt, answered, reached()));
    preq.on('response', (pres: http.IncomingMessage) => {
      answered = true;
      this.relayResponse(pres, addr, sentAt);
    });
    this.sendBody(preq, attempt);
  }

  private onError(
    err: Error,
    preq: http.ClientRequest,
    addr: PoolAddress,
    attempt: number,
    answered: boolean,
    reached: boolean,
  ): void {
    const { exchange, route, env } = this;
    if (!answered) {
      env.metrics?.originRequest(route.name, addr.label, 0);
      // A failed connect or TLS handshake, or a request that got no answer, counts against the address.
      if (!preq.reusedSocket || !isStaleSocketError(err))
        route.pool.failed(addr, String((err as NodeJS.ErrnoException).code ?? err.message));
    }
    if (exchange.proxyRes) {
      // The response was under way; the origin went away (or a deadline passed) mid-body.
      if (!exchange.proxyRes.complete) {
        exchange.outcome = 'origin_error';
        exchange.abort();
      }
      return;
    }
    if (exchange.finished) return;
    if (this.retried(err, preq, addr, attempt, reached)) return;
    this.failFor(err, addr);
  }

  /** Retry where that is safe: a request body is never replayed. */
  private retried(err: Error, preq: http.ClientRequest, addr: PoolAddress, attempt: number, reached: boolean): boolean {
    const { exchange, route, env } = this;
    const method = exchange.method;
    if (
      attempt === 0 &&
      !this.hasBody &&
      preq.reusedSocket &&
      IDEMPOTENT_METHODS.has(method) &&
      isStaleSocketError(err)
    ) {
      env.ctx.log('debug', 'proxy: retrying on a fresh origin socket', { err: String(err) });
      this.send(1, addr);
      return true;
    }
    // Another address, for a request without a body (never replayed) that never reached the
    // origin, or that is idempotent on a route that allows it.
    if (
      !this.hasBody &&
      attempt + 1 < MAX_ATTEMPTS &&
      (!reached || (route.retryIdempotent && IDEMPOTENT_METHODS.has(method)))
    ) {
      (this.tried ??= new Set()).add(addr);
      if (route.pool.pick(this.tried)) {
        env.ctx.log('debug', 'proxy: retrying on another origin address', {
          route: route.name,
          address: addr.label,
          err: String(err),
        });
        this.send(attempt + 1);
        return true;
      }
    }
    return false;
  }

  /** No response and no retry: 504 for a deadline, else 502. */
  private failFor(err: Error, addr: PoolAddress): void {
    const { exchange, route, env } = this;
    const metrics = env.metrics;
    const log = env.ctx.log;
    const fields = {
      route: route.name,
      address: addr.label,
      err: String(err),
      code: (err as NodeJS.ErrnoException).code,
    };
    if (err instanceof OriginTimeoutError) {
      metrics?.failure(route.name, 'timeout');
      log('warn', 'proxy: origin timeout', { ...fields, phase: err.phase, path: this.path });
      exchange.fail(504, 'origin_timeout', 'origin did not respond in time');
    } else if (isTlsVerificationError(err)) {
      metrics?.failure(route.name, 'tls');
      log('warn', 'proxy: origin certificate verification failed', { ...fields, reason: err.message });
      exchange.fail(502, 'origin_unreachable', 'origin certificate verification failed');
    } else {
      metrics?.failure(route.name, 'unreachable');
      log('warn', 'proxy: origin unreachable', fields);
      exchange.fail(502, 'origin_unreachable', 'origin unreachable');
    }
  }

  /** The origin's response head, body and trailers to the client (hop-by-hop fields removed). */
  private relayResponse(pres: http.IncomingMessage, addr: PoolAddress, sentAt: number): void {
    const { exchange, route, env } = this;
    const { req, res, isH2 } = exchange;
    exchange.proxyRes = pres;
    pres.on('error', noop);
    const code = pres.statusCode ?? 0;
    env.metrics?.originRequest(route.name, addr.label, code, (performance.now() - sentAt) / 1000);
    if (code >= 500) route.pool.failed(addr, `status ${code}`);
    else route.pool.succeeded(addr);
    if (exchange.finished) {
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
      env.ctx.log('warn', 'proxy: unusable origin response head', { err: String(err) });
      pres.destroy();
      exchange.fail(502, 'origin_error', 'invalid response from origin');
      return;
    }
    pres.pipe(exchange.sink, { end: false });
    pres.on('end', () => {
      if (pres.rawTrailers.length > 0) addTrailers(res, isH2, pres.rawTrailers);
      exchange.endResponse();
    });
    pres.on('close', () => {
      if (!pres.complete && !exchange.finished) {
        exchange.outcome = 'origin_error';
        exchange.abort();
      }
    });
  }

  /** Stream the request body (first attempt only: a body is never replayed), or end a body-less request. */
  private sendBody(preq: http.ClientRequest, attempt: number): void {
    const { exchange } = this;
    const { body, req, h2stream } = exchange;
    if (this.hasBody && attempt === 0) {
      // End the origin request only for a body that really ended: an HTTP/2 stream reset by the
      // client also ends the request Readable, and a truncated upload must not reach the origin
      // as a complete one.
      body.pipe(preq, { end: false });
      body.once('end', () => {
        const aborted = h2stream
          ? h2stream.aborted ||
            (h2stream.rstCode !== undefined && h2stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR)
          : !req.complete;
        if (aborted) {
          if (exchange.outcome === 'ok') exchange.outcome = 'client_aborted';
          preq.destroy();
        } else {
          preq.end();
        }
      });
    } else {
      preq.end();
      if (!this.hasBody) body.resume();
    }
  }
}
