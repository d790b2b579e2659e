/**
 * The certificate store the TLS engine reads on every handshake, swapped whole on reload, and the
 * view of it the HTTP frontend's 421 check uses.
 */
import type { ClientAuthPolicy } from '../tls/client-auth';
import type { EdgeConfig } from '../config';
import type { CertificateEntries, CertificateEntryView } from '../proxy/authority';
import { RouteTable } from '../proxy/routes';
import type { RouteConfig } from '../routing-config';
import { AlertDescription, TlsAlert } from '../tls/alerts';
import { CertificateStore, type ServerCertificate } from '../tls/certificates';

/**
 * The certificate store the TLS engine reads on every handshake; SIGHUP swaps its contents, so
 * handshakes after a reload use the new certificates and established connections are untouched.
 */
export class ReloadableCertificateStore extends CertificateStore {
  private current: CertificateStore;

  constructor(certs: readonly ServerCertificate[]) {
    super(certs);
    this.current = new CertificateStore(certs);
  }

  replace(certs: readonly ServerCertificate[]): void {
    this.current = new CertificateStore(certs);
  }

  override get all(): readonly ServerCertificate[] {
    return this.current.all;
  }

  override candidates(serverName: string | undefined): { certs: ServerCertificate[]; matched: boolean } {
    return this.current.candidates(serverName);
  }
}

/** tcp mode with routes and no default route: only server names a route serves get a handshake. */
export class SniRoutedCertificateStore extends ReloadableCertificateStore {
  private readonly routes: RouteTable<RouteConfig>;

  constructor(certs: readonly ServerCertificate[], routes: RouteConfig[]) {
    super(certs);
    this.routes = new RouteTable(routes, undefined);
  }

  override candidates(serverName: string | undefined): { certs: ServerCertificate[]; matched: boolean } {
    if (!this.routes.match(serverName?.toLowerCase()))
      throw new TlsAlert(
        AlertDescription.unrecognized_name,
        `no route serves the server name ${JSON.stringify(serverName ?? '')}`,
      );
    return super.candidates(serverName);
  }
}

/** A client-certificate policy as a comparable key: mode and trust anchors ('' = none). */
const policyKeys = new WeakMap<ClientAuthPolicy, string>();
function clientAuthKey(policy: ClientAuthPolicy | undefined): string {
  if (!policy) return '';
  let key = policyKeys.get(policy);
  if (key === undefined) {
    key = `${policy.mode}:${policy.anchors
      .map((a) => a.fingerprint256)
      .sort()
      .join(',')}`;
    policyKeys.set(policy, key);
  }
  return key;
}

/**
 * The certificate entries behind the HTTP frontend's 421 check (proxy/authority.ts): the one a
 * connection was served (by key name among the SNI's candidates), and the one a host name selects.
 */
export function certificateEntries(store: () => CertificateStore): CertificateEntries {
  const view = (c: ServerCertificate): CertificateEntryView => ({
    hostnames: c.hostnames,
    clientAuth: clientAuthKey(c.clientAuth),
  });
  return {
    forConnection(conn) {
      const sni = typeof conn.servername === 'string' && conn.servername ? conn.servername.toLowerCase() : undefined;
      const { certs } = store().candidates(sni);
      const keyName = conn.handshakeInfo?.keyName;
      const served = (keyName && certs.find((c) => c.keyName === keyName)) || certs[0];
      return served ? view(served) : undefined;
    },
    forHost(host) {
      return view(store().candidates(host).certs[0]);
    },
  };
}

/**
 * SNI routing (tcp mode) without a default route: a name no route serves is refused in the handshake
 * with unrecognized_name (RFC 6066 §3), before any key operation.
 */
export function servedCertificateStore(
  config: EdgeConfig,
  certs: readonly ServerCertificate[],
): ReloadableCertificateStore {
  return config.proxy.mode === 'tcp' && !config.defaultRoute
    ? new SniRoutedCertificateStore(certs, config.routes)
    : new ReloadableCertificateStore(certs);
}
