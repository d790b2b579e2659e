/**
 * The HTTP/2 side of the frontend (ALPN `h2`): `http2.createServer()`, fed each connection with
 * `emit('connection', conn)`. Node runs nghttp2 over any Duplex (a non-native stream is wrapped in a
 * JSStreamSocket), so the TLS engine's connection works as-is. Requests are forwarded
 * (forward-request.ts).
 */
import * as http2 from 'node:http2';
import { forwardRequest, type ForwardEnv } from './forward-request';
import type { ConnState } from './frontend-connections';
import type { HttpFrontendOptions } from './types';

export interface Http2Frontend {
  /** Start an HTTP/2 session on this connection; false (connection destroyed) when none was created. */
  adopt(st: ConnState): boolean;
  close(): void;
}

const noop = (): void => undefined;

export function createHttp2Frontend(options: HttpFrontendOptions, env: ForwardEnv): Http2Frontend {
  const log = env.ctx.log;
  const states = new WeakMap<object, ConnState>();
  let adopting: ConnState | undefined;
  const server = http2.createServer({
    settings: {
      maxConcurrentStreams: options.maxConcurrentStreams ?? 100,
      enablePush: false,
      maxHeaderListSize: options.maxHeaderBytes ?? 16_384,
    },
  });
  server.setTimeout(env.ctx.idleTimeoutMs);
  server.on('timeout', (session: http2.ServerHttp2Session) => {
    // Idle session: GOAWAY, then drop it if streams still hang around.
    session.close();
    setTimeout(() => session.destroy(), 5000).unref();
  });
  server.on('session', (session: http2.ServerHttp2Session) => {
    // Emitted synchronously from emit('connection'), so `adopting` is this session's connection.
    if (!adopting) return;
    adopting.session = session;
    states.set(session, adopting);
    session.on('error', (err) => log('debug', 'proxy: http2 session error', { err: String(err) }));
  });
  server.on('sessionError', noop);
  server.on('request', (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
    const session = req.stream.session;
    const st = session ? states.get(session) : undefined;
    if (!st) {
      req.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    forwardRequest(req, res, st, env);
  });

  return {
    adopt(st: ConnState): boolean {
      adopting = st;
      try {
        server.emit('connection', st.conn);
      } finally {
        adopting = undefined;
      }
      if (st.session) return true;
      log('error', 'proxy: http2 session was not created');
      st.conn.destroy();
      return false;
    },
    close(): void {
      server.close();
    },
  };
}
