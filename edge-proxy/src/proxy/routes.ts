/**
 * Which route serves a host: exact names first, then one-label wildcards (`*.example.com` covers
 * `a.example.com`, not `example.com` nor `a.b.example.com`: the rule certificates match by,
 * contract/x509.ts), then the default route, if any. One `Map` lookup per request on the common path.
 */
import { wildcardParent } from '../../../contract/x509';

export interface RouteMatchable {
  readonly name: string;
  readonly hosts: readonly string[];
}

export class RouteTable<R extends RouteMatchable> {
  private readonly exact = new Map<string, R>();
  private readonly wildcard = new Map<string, R>();

  constructor(
    routes: readonly R[],
    readonly defaultRoute: R | undefined,
  ) {
    for (const r of routes) {
      for (const h of r.hosts) {
        if (h.startsWith('*.')) this.wildcard.set(h.slice(2), r);
        else this.exact.set(h, r);
      }
    }
  }

  /** The route for a lower-case host without port (undefined: no host); undefined when none serves it. */
  match(host: string | undefined): R | undefined {
    if (host !== undefined) {
      const exact = this.exact.get(host);
      if (exact) return exact;
      if (this.wildcard.size > 0) {
        const parent = wildcardParent(host);
        const wild = parent !== undefined ? this.wildcard.get(parent) : undefined;
        if (wild) return wild;
      }
    }
    return this.defaultRoute;
  }

  /** Is there only the default route (the edge forwards everything to one origin)? */
  get onlyDefault(): boolean {
    return this.exact.size === 0 && this.wildcard.size === 0;
  }
}
