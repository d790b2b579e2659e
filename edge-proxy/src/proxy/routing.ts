/**
 * The HTTP frontend's routes: one origin pool per route (origin-pool.ts), a table from host to route
 * (routes.ts), built from `HttpFrontendOptions.routing`, or from `origin` alone (everything to it).
 */
import { parseOrigin as parseOriginConfig, type RouteConfig, type RoutingConfig } from '../routing-config';
import { OriginPool, type AddressStatus } from './origin-pool';
import { RouteTable } from './routes';
import type { HttpFrontendOptions, ProxyLog } from './types';

export interface Route {
  readonly name: string;
  readonly hosts: readonly string[];
  readonly retryIdempotent: boolean;
  readonly pool: OriginPool;
  /** `Host` for requests that name none (HTTP/1.0): the origin URL's own. */
  readonly hostHeader: string;
}

/** /healthz: one entry per route. */
export interface RouteStatus {
  route: string;
  origin: string;
  addresses: AddressStatus[];
}

export interface Routing {
  readonly table: RouteTable<Route>;
  /** Names resolved, health checks started. */
  readonly ready: Promise<void>;
  status(): RouteStatus[];
  close(): void;
}

export function createRouting(options: HttpFrontendOptions, log: ProxyLog): Routing {
  const config: RoutingConfig = options.routing ?? { routes: [], defaultRoute: defaultRouteOf(options.origin) };
  const make = (r: RouteConfig): Route => ({
    name: r.name,
    hosts: r.hosts,
    retryIdempotent: r.retryIdempotent,
    hostHeader: new URL(r.origin.url).host,
    pool: new OriginPool({
      route: r.name,
      origin: r.origin,
      maxSockets: options.maxOriginSockets ?? 256,
      idleSocketTimeoutMs: options.originIdleSocketTimeoutMs ?? 4000,
      log,
      events: options.metrics,
    }),
  });
  const routes = config.routes.map(make);
  const fallback = config.defaultRoute ? make(config.defaultRoute) : undefined;
  const all = fallback ? [...routes, fallback] : routes;
  for (const r of all) {
    if (r.pool.origin.dangerouslySkipTlsVerify)
      log(
        'warn',
        'proxy: TLS VERIFICATION OF THIS ORIGIN IS OFF (dangerouslySkipTlsVerify): anyone on the path to it can read and change the traffic',
        { route: r.name, origin: r.pool.origin.url },
      );
  }
  const ready = Promise.all(all.map((r) => r.pool.start())).then(() => undefined);
  ready.catch(() => undefined);
  return {
    table: new RouteTable(routes, fallback),
    ready,
    status: () => all.map((r) => ({ route: r.name, origin: r.pool.origin.url, addresses: r.pool.status() })),
    close: () => {
      for (const r of all) r.pool.close();
    },
  };
}

function defaultRouteOf(origin: string | undefined): RouteConfig {
  if (!origin) throw new Error('proxy: give `origin` or `routing`');
  try {
    return {
      name: 'default',
      hosts: [],
      origin: parseOriginConfig(origin, 'origin', 'http', process.cwd()),
      retryIdempotent: false,
    };
  } catch (err) {
    throw new Error(`proxy: ${(err as Error).message}`);
  }
}
