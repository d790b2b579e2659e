/**
 * HTTP/1.1 `Upgrade` (WebSocket) tunnelling: the upgrade request is forwarded to the origin with the
 * usual header rewriting; on `101 Switching Protocols` the client connection and the origin socket
 * are spliced together (both directions piped, with backpressure); any other origin answer is relayed
 * and the connection closed.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import type { ConnectionFacts } from './connection-facts';
import { buildOriginRequestHeaders, filterResponseHeaders, type RawHeaders } from './headers';
import { armOriginTimeouts, OriginTimeoutError, type ForwardContext } from './origin';
import type { PoolAddress } from './origin-pool';
import type { Route } from './routing';
import type { ProxyOutcome, ProxyRequestEvent } from './types';
import { hostFieldCount } from './authority';

const noop = (): void => undefined;

/** Where an upgrade goes: a route's origin address, or the answer the edge gives itself. */
export type UpgradeTarget =
  | { route: Route; address: PoolAddress; agent?: http.Agent }
  | { refuse: 421 | 502; outcome: ProxyOutcome; message: string };
/** How long a half-closed side may linger before it is destroyed. */
const LINGER_MS = 5000;

function head(status: number, reason: string | undefined, headers: RawHeaders): string {
  let out = `HTTP/1.1 ${status} ${reason || http.STATUS_CODES[status] || ''}\r\n`;
  for (let i = 0; i + 1 < headers.length; i += 2) out += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return `${out}\r\n`;
}

export function proxyUpgrade(
  req: http.IncomingMessage,
  socket: Duplex,
  bodyHead: Buffer,
  facts: ConnectionFacts,
  ctx: ForwardContext,
  target: UpgradeTarget,
  onDone: (event: ProxyRequestEvent) => void,
): void {
  const started = performance.now();
  const method = req.method ?? 'GET';
  const path = req.url ?? '';
  const authority = typeof req.headers.host === 'string' ? req.headers.host : undefined;
  let status = 0;
  let outcome: ProxyOutcome = 'upgraded';
  let done = false;
  let proxyReq: http.ClientRequest | undefined;
  let originSocket: Duplex | undefined;

  /** Half-close after pending data is flushed; destroy if the peer does not finish closing soon. */
  const endGently = (s: Duplex): void => {
    if (s.destroyed) return;
    s.end();
    setTimeout(() => s.destroy(), LINGER_MS).unref();
  };
  const finish = (): void => {
    if (done) return;
    done = true;
    if (originSocket) endGently(originSocket);
    else proxyReq?.destroy();
    endGently(socket);
    onDone({
      httpVersion: req.httpVersion === '1.0' ? '1.0' : '1.1',
      method,
      authority,
      path,
      status,
      outcome,
      durationMs: performance.now() - started,
      clientAddress: facts.clientAddress,
    });
  };
  socket.on('error', noop);
  socket.once('close', finish);

  const reply = (code: number, why: ProxyOutcome, message: string): void => {
    status = code;
    outcome = why;
    const text = `${code} ${http.STATUS_CODES[code] ?? ''}: ${message}\n`;
    const lines = [
      'content-type',
      'text/plain; charset=utf-8',
      'content-length',
      String(Buffer.byteLength(text)),
      'connection',
      'close',
    ];
    if (socket.writable) socket.write(head(code, undefined, lines) + text);
    finish();
  };

  const upgrade = req.headers.upgrade;
  if (method !== 'GET' || !upgrade || !path.startsWith('/') || hostFieldCount(req.rawHeaders) > 1) {
    reply(400, 'bad_request', 'unsupported upgrade request');
    return;
  }
  if ('refuse' in target) {
    reply(target.refuse, target.outcome, target.message);
    return;
  }
  const { route, address } = target;

  const headers = buildOriginRequestHeaders({
    rawHeaders: req.rawHeaders,
    authority,
    fallbackHost: route.hostHeader,
    facts,
    httpVersion: req.httpVersion === '1.0' ? '1.0' : '1.1',
    hasBody: false,
    upgrade,
    route: route.name,
  });
  try {
    const secure = route.pool.origin.scheme === 'https';
    proxyReq = (secure ? https : http).request({
      host: address.host,
      port: address.port,
      method,
      path,
      headers,
      agent: target.agent ?? route.pool.agent,
    });
  } catch {
    reply(400, 'bad_request', 'malformed request');
    return;
  }
  const preq = proxyReq;
  address.pending++;
  preq.once('close', () => address.pending--);
  armOriginTimeouts(preq, ctx);

  preq.on('error', (err: Error) => {
    if (done || status !== 0) {
      finish();
      return;
    }
    route.pool.failed(address, String((err as NodeJS.ErrnoException).code ?? err.message));
    if (err instanceof OriginTimeoutError) reply(504, 'origin_timeout', 'origin did not respond in time');
    else {
      ctx.log('warn', 'proxy: origin unreachable (upgrade)', { err: String(err) });
      reply(502, 'origin_unreachable', 'origin unreachable');
    }
  });

  preq.on('upgrade', (res: http.IncomingMessage, osock: Duplex, originHead: Buffer) => {
    originSocket = osock;
    osock.on('error', noop);
    status = 101;
    if (done || !socket.writable) {
      finish();
      return;
    }
    // The tunnel is idle-timed by the client side only; the origin side's request timeout is off.
    (osock as { setTimeout?: (ms: number) => void }).setTimeout?.(0);
    (socket as { setTimeout?: (ms: number, cb?: () => void) => void }).setTimeout?.(ctx.idleTimeoutMs, () => {
      socket.destroy();
      osock.destroy();
    });
    socket.write(head(101, res.statusMessage, filterResponseHeaders(res.rawHeaders, { keepUpgrade: true })));
    if (originHead.length > 0) socket.write(originHead);
    if (bodyHead.length > 0) osock.write(bodyHead);
    osock.pipe(socket);
    socket.pipe(osock);
    osock.once('close', finish);
  });

  preq.on('response', (res: http.IncomingMessage) => {
    // The origin declined the upgrade: relay its answer, then close.
    res.on('error', noop);
    status = res.statusCode ?? 502;
    outcome = 'ok';
    if (done || !socket.writable) {
      res.destroy();
      finish();
      return;
    }
    const headers = filterResponseHeaders(res.rawHeaders);
    headers.push('connection', 'close');
    socket.write(head(status, res.statusMessage, headers));
    res.pipe(socket, { end: false });
    res.on('close', () => {
      if (!res.complete) {
        outcome = 'origin_error';
        socket.destroy(); // a truncated close-delimited body must not look complete
        return;
      }
      finish();
    });
  });

  preq.end();
}
