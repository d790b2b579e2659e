/**
 * What happens to the plaintext of a handshaken connection (config `proxy.mode`): the HTTP reverse
 * proxy (HTTP/1.1 or HTTP/2 by ALPN), or raw TCP forwarding; both route to origins
 * (docs/configuration.md, "Routing").
 */
import type { EdgeConfig } from '../config';
import type { Logger } from '../observability/log';
import type { CertificateEntries } from '../proxy/authority';
import { createHttpFrontend } from '../proxy/http-proxy';
import { RoutingMetrics } from '../proxy/routing-metrics';
import { createTcpForwarder, type TcpForwarder } from '../proxy/tcp-forward';
import type { HttpFrontend } from '../proxy/types';
import type { EdgeFigures } from './metrics';

export type Frontend = HttpFrontend | TcpForwarder;

/** Resolves once origin names are resolved and health checks started. */
export async function startFrontend(
  config: EdgeConfig,
  log: Logger,
  figures: EdgeFigures,
  certificateEntries: CertificateEntries,
): Promise<Frontend> {
  const proxyLog = (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void =>
    log.log(level, msg, { ...fields, component: 'proxy' });
  const routing = { routes: config.routes, ...(config.defaultRoute ? { defaultRoute: config.defaultRoute } : {}) };
  // Per route and origin address metrics.
  const routingMetrics = new RoutingMetrics(figures.registry);
  const frontend =
    config.proxy.mode === 'tcp'
      ? createTcpForwarder({
          routing,
          connectTimeoutMs: config.proxy.connectTimeoutMs,
          idleTimeoutMs: config.proxy.idleTimeoutMs,
          sendProxyProtocol: config.proxy.sendProxyProtocol,
          closeTimeoutMs: config.drainTimeoutMs,
          log: proxyLog,
          metrics: figures.edge,
        })
      : createHttpFrontend({
          routing,
          metrics: routingMetrics,
          connectTimeoutMs: config.proxy.connectTimeoutMs,
          sendProxyProtocol: config.proxy.sendProxyProtocol,
          log: proxyLog,
          closeTimeoutMs: config.drainTimeoutMs,
          idleTimeoutMs: config.limits.httpIdleTimeoutMs,
          headersTimeoutMs: config.limits.httpHeadersTimeoutMs,
          maxHeaderBytes: config.limits.httpMaxHeaderBytes,
          certificateEntries,
        });
  await frontend.ready;
  return frontend;
}
