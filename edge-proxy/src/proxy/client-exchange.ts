/**
 * The client side of one forwarded request: the response the edge owes the client, how it ends
 * (complete, the edge's own error answer, or aborted), and the one report made when it is over.
 */
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { Readable, Writable } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { discardRequestBody, plainText } from './client-response';
import type { ConnState } from './frontend-connections';
import type { ProxyOutcome, ProxyRequestEvent } from './types';

export type ClientRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type ClientResponse = http.ServerResponse | http2.Http2ServerResponse;

const noop = (): void => undefined;

export class ClientExchange {
  readonly isH2: boolean;
  readonly httpVersion: '1.0' | '1.1' | '2';
  readonly method: string;
  /** The request body, as a stream. */
  readonly body: Readable;
  /** The response, as a stream. */
  readonly sink: Writable;
  readonly h2stream?: http2.ServerHttp2Stream;
  outcome: ProxyOutcome = 'ok';
  /** The client response is over (completed or not); reported. */
  finished = false;
  /** The origin request and response currently serving this exchange. */
  proxyReq?: http.ClientRequest;
  proxyRes?: http.IncomingMessage;
  /** What the request was forwarded as (for the report). */
  path?: string;
  authority?: string;
  private readonly started = performance.now();
  // The whole response was handed to the connection ('close' without it = aborted). HTTP/2 compat
  // responses emit 'finish' even for a reset stream, so only our own end() callback counts.
  private completed = false;

  constructor(
    readonly req: ClientRequest,
    readonly res: ClientResponse,
    readonly st: ConnState,
    private readonly hooks: { closing(): boolean; report(event: ProxyRequestEvent): void },
  ) {
    this.isH2 = st.kind === 'h2';
    this.httpVersion = this.isH2 ? '2' : req.httpVersion === '1.0' ? '1.0' : '1.1';
    this.method = req.method ?? 'GET';
    this.body = req;
    this.sink = res;
    this.body.on('error', noop);
    this.sink.on('error', noop);
    this.h2stream = this.isH2 ? (req as http2.Http2ServerRequest).stream : undefined;
    st.active++;
    st.requests++;
    this.sink.on('close', () => this.onClosed());
    if (hooks.closing() && !this.isH2) (res as http.ServerResponse).shouldKeepAlive = false;
  }

  /** End the response; on HTTP/2 get rid of a request body nobody will read any more. */
  endResponse(data?: string): void {
    const done = (): void => {
      this.completed = true;
      const { h2stream } = this;
      if (h2stream && !this.req.complete && !h2stream.destroyed) discardRequestBody(h2stream, this.body);
    };
    if (data === undefined) this.sink.end(done);
    else this.sink.end(data, done);
  }

  /** The response cannot be completed: reset the HTTP/1.1 connection or the HTTP/2 stream. */
  abort(): void {
    if (this.isH2) {
      const stream = (this.res as http2.Http2ServerResponse).stream;
      if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    } else {
      (this.res as http.ServerResponse).destroy();
    }
  }

  /** Answer with the edge's own error, or abort when the origin's response head is already sent. */
  fail(status: number, why: ProxyOutcome, message: string): void {
    this.outcome = why;
    const res = this.res;
    if (res.headersSent) {
      this.abort();
      return;
    }
    const { body: text, headers } = plainText(status, message);
    // The rest of an unread request body is not worth draining: close the HTTP/1.1 connection.
    if (!this.isH2 && !this.req.complete) (res as http.ServerResponse).shouldKeepAlive = false;
    try {
      (res as http.ServerResponse).writeHead(status, headers);
      this.endResponse(text);
    } catch {
      this.abort();
    }
  }

  private onClosed(): void {
    if (this.finished) return;
    this.finished = true;
    const { st, proxyReq } = this;
    st.active--;
    if (!this.completed) {
      if (this.outcome === 'ok') this.outcome = 'client_aborted';
      proxyReq?.destroy();
      this.proxyRes?.destroy();
    } else if (proxyReq && !proxyReq.writableFinished) {
      // The origin answered before the request body was complete: that origin request is over.
      proxyReq.destroy();
    }
    this.hooks.report({
      httpVersion: this.httpVersion,
      method: this.method,
      authority: this.authority,
      path: this.path ?? this.req.url ?? '',
      status: this.res.headersSent ? this.res.statusCode : 0,
      outcome: this.outcome,
      durationMs: performance.now() - this.started,
      clientAddress: st.facts.clientAddress,
    });
    if (this.hooks.closing() && !this.isH2 && st.active === 0) st.conn.end();
  }
}
