/**
 * Graceful stop (SIGTERM): stop accepting without resetting connections the kernel already
 * completed, let in-flight handshakes finish, close idle keep-alive connections, wait for active
 * requests until the deadline, then cut whatever is left.
 */
import type { EdgeConfig } from '../config';
import type { EdgeMetrics } from '../observability/edge-metrics';
import type { Logger } from '../observability/log';
import type { TlsServer } from '../tls/server';
import type { Frontend } from './frontend';

export interface Drain {
  /** Starts the drain once; later calls return the same promise. Default deadline: `drainTimeoutMs`. */
  drain(deadlineMs?: number): Promise<void>;
  /** True once a drain has started (reported by /healthz, so load balancers stop sending). */
  readonly started: boolean;
}

export function createDrain(
  server: TlsServer,
  frontend: Frontend,
  config: EdgeConfig,
  log: Logger,
  metrics: EdgeMetrics,
): Drain {
  let drainPromise: Promise<void> | undefined;
  const drain = (deadlineMs = config.drainTimeoutMs): Promise<void> => {
    drainPromise ??= (async () => {
      const started = Date.now();
      const deadline = started + deadlineMs;
      metrics.draining.set({}, 1);
      log.log('info', 'draining', { connections: server.activeConnections, deadlineMs });
      // 1. Stop accepting (the listening socket closes; established connections stay). Connections
      //    the kernel has already completed but a busy event loop has not accepted yet would be
      //    reset by the close, so the listener stays open until the accept queue is seen empty.
      await drainAcceptQueue(server, Math.min(deadline, started + ACCEPT_QUEUE_MAX_MS));
      const allClosed = server.close();
      // 2. Handshakes in flight finish and are handed to the HTTP frontend, which still takes them.
      //    Counted by the TLS server itself: the difference of two connection counts (TLS, HTTP) is
      //    wrong while finished connections leave the two sets in either order.
      const handshakeDeadline = Math.min(deadline, started + config.handshakeTimeoutMs);
      while (server.handshakingConnections > 0 && Date.now() < handshakeDeadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      // 3. Idle keep-alive connections are closed politely (close_notify / HTTP/2 GOAWAY), active
      //    requests finish, until the drain deadline.
      await Promise.race([
        frontend.close(),
        new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref()),
      ]);
      // 4. Whatever is left is cut.
      const left = server.activeConnections;
      await server.close(true);
      await allClosed;
      log.log('info', 'drained', { ms: Date.now() - started, forciblyClosed: left });
    })();
    return drainPromise;
  };
  return {
    drain,
    get started() {
      return drainPromise !== undefined;
    },
  };
}

/**
 * On SIGTERM the listener stays open at least this long, so connections already queued in the
 * kernel (client side: connected) are accepted and served rather than reset...
 */
const ACCEPT_QUEUE_GRACE_MS = 100;
/** ...and then until an event-loop turn accepts nothing more, but not longer than this. */
const ACCEPT_QUEUE_MAX_MS = 3000;

/**
 * Waits until the kernel's accept queue is empty: after the grace, turn by turn (a setImmediate runs
 * right after the poll phase that accepts), until a whole turn accepted no connection. On a starved
 * CPU one turn can take longer than the grace itself, and a connection the client already counts as
 * connected must not be reset by closing the listener.
 */
async function drainAcceptQueue(server: TlsServer, until: number): Promise<void> {
  let accepted = 0;
  const count = (): void => void accepted++;
  server.tcp.on('connection', count);
  try {
    await new Promise((r) => setTimeout(r, Math.max(0, Math.min(ACCEPT_QUEUE_GRACE_MS, until - Date.now()))));
    let before: number;
    do {
      before = accepted;
      await new Promise((r) => setImmediate(r));
    } while (accepted > before && Date.now() < until);
  } finally {
    server.tcp.off('connection', count);
  }
}
