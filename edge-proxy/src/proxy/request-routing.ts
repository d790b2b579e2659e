/**
 * Which route serves a request on a given client connection, and whether the connection may carry
 * it at all (the 421 rule, authority.ts).
 */
import { isIP } from 'node:net';
import { isMisdirected, type CertificateEntries } from './authority';
import type { ConnState } from './frontend-connections';
import type { Route } from './routing';
import type { RouteTable } from './routes';
import type { UpgradeTarget } from './upgrade';

export const MISDIRECTED_MESSAGE = 'this connection does not serve that host; open a new connection for it';
export const NO_ROUTE_MESSAGE = 'no route serves this host';

export class RequestRouter {
  constructor(
    private readonly routes: RouteTable<Route>,
    private readonly certificateEntries: CertificateEntries | undefined,
  ) {}

  /** Whether the request's host is needed at all: not with a single route and no 421 check. */
  needsHost(st: ConnState): boolean {
    return !(this.routes.onlyDefault && !st.entry);
  }

  /** The route for a request: by its host, or by the SNI when it names none (or an IP address). */
  routeFor(st: ConnState, host: string | undefined): Route | undefined {
    if (this.routes.onlyDefault) return this.routes.defaultRoute;
    return this.routes.match(host === undefined || isIP(host) !== 0 ? st.sni : host);
  }

  /** RFC 9110 §15.5.20: the request names a host the connection's certificate entry does not serve (see authority.ts). */
  misdirected(st: ConnState, host: string | undefined): boolean {
    if (!st.entry || !this.certificateEntries) return false;
    return isMisdirected(host, st.sni, st.entry, st.kind === 'h2', this.certificateEntries);
  }

  /** Where an HTTP/1.1 `Upgrade` request goes, or the answer the edge gives itself. */
  upgradeTarget(st: ConnState, host: string | undefined): UpgradeTarget {
    if (this.misdirected(st, host)) return { refuse: 421, outcome: 'misdirected', message: MISDIRECTED_MESSAGE };
    const route = this.routeFor(st, host);
    if (!route) return { refuse: 421, outcome: 'misdirected', message: NO_ROUTE_MESSAGE };
    const address = route.pool.pick();
    if (!address)
      return { refuse: 502, outcome: 'origin_down', message: `every origin address of route ${route.name} is down` };
    return { route, address, agent: st.agent };
  }
}
