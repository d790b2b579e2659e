/**
 * Graceful shutdown of the HTTP frontend: every client connection is told to finish (HTTP/2 GOAWAY,
 * HTTP/1.1 `Connection: close` on its next response), in-flight requests get `closeTimeoutMs`, then
 * whatever is left is destroyed and the origin pools are released.
 */
import type { FrontendConnections } from './frontend-connections';

/** On close, how long a new HTTP/1.1 connection may take to send its first request. */
const FIRST_REQUEST_GRACE_MS = 1000;

export interface DrainParts {
  readonly connections: FrontendConnections;
  readonly closeTimeoutMs: number;
  /** Closed last, once the connections are gone: the servers and the origin pools. */
  readonly closeServers: () => void;
}

export async function drainFrontend({ connections, closeTimeoutMs, closeServers }: DrainParts): Promise<void> {
  connections.closing = true;
  // Idle keep-alive connections are closed now (HTTP/2: GOAWAY, then the session ends when its
  // streams do). A connection that has not sent its first request yet was just established —
  // its request is most likely on the way — so it gets a short grace before being closed;
  // ending it at once would reset that request. Every response from now on says
  // `Connection: close`, and a connection ends when its last active request does.
  // (Node's own http.Server close() would destroy both kinds of "idle" connection: it runs last.)
  for (const st of connections) {
    if (st.kind === 'h2') st.session?.close();
    else if (st.active === 0 && st.requests > 0) st.conn.end();
  }
  const grace = setTimeout(
    () => {
      for (const st of connections) if (st.kind === 'h1' && st.active === 0) st.conn.end();
    },
    Math.min(FIRST_REQUEST_GRACE_MS, closeTimeoutMs),
  );
  grace.unref();
  await connections.whenEmpty(closeTimeoutMs);
  clearTimeout(grace);
  for (const st of [...connections]) {
    st.session?.destroy();
    st.conn.destroy();
  }
  closeServers();
}
