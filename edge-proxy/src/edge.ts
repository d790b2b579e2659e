/**
 * Assembles the edge: certificates (public data only) → TLS engine whose one private-key operation
 * goes to the key services over Lambda Invoke (in failover order, a circuit breaker each) → HTTP
 * frontend that proxies to the origin. Also an admin listener (`/healthz`) on a separate,
 * loopback-by-default port. Each step is one module of `assembly/`; `startEdge` only orders them.
 */
import type { EdgeConfig } from './config';
import type { AdmissionController } from './keyless/admission';
import type { KeyClientMetrics } from './keyless/client-metrics';
import type { FailoverTarget } from './keyless/failover-target';
import type { KeyServiceClient } from './keyless/key-service-client';
import type { EdgeMetrics } from './observability/edge-metrics';
import type { Logger } from './observability/log';
import type { ServerCertificate } from './tls/certificates';
import { startAdminServer } from './assembly/admin-server';
import { startCertificateReloader } from './assembly/certificate-reload';
import { certificateEntries, servedCertificateStore } from './assembly/certificate-stores';
import {
  loadCertificateSet,
  storeLocation,
  type CertificateSet,
  type CertificateSources,
} from './assembly/certificates';
import { routeConnections } from './assembly/connections';
import { createDrain } from './assembly/drain';
import { startFrontend } from './assembly/frontend';
import { createHealthMonitor, type EdgeHealth } from './assembly/health';
import { assembleKeyOperations } from './assembly/key-operations';
import { startMetrics } from './assembly/metrics';
import { startSessionTickets } from './assembly/tickets';
import { createTlsServer, listenTls } from './assembly/tls-server';

export {
  applyCustody,
  certificatesFromStore,
  loadAllCertificates,
  loadCertificates,
  loadCertificateSet,
  type CertificateSet,
} from './assembly/certificates';
export {
  certificateEntries,
  ReloadableCertificateStore,
  SniRoutedCertificateStore,
} from './assembly/certificate-stores';
export type { EdgeHealth } from './assembly/health';

export interface RunningEdge {
  tlsPort: number;
  adminPort: number;
  /** The key-service client (the TLS engine uses it through `failover.trackOperations`). */
  keys: KeyServiceClient;
  /** The configured key services in failover order, with their breakers and health. */
  failover: FailoverTarget;
  metrics: KeyClientMetrics;
  /** The edge's own metrics (same registry as `metrics`; `/metrics` renders both). */
  edgeMetrics: EdgeMetrics;
  /** Admission control in front of every full handshake's key operation. */
  admission: AdmissionController;
  /**
   * Graceful stop (SIGTERM): stop accepting, let in-flight handshakes finish, close idle keep-alive
   * connections, wait for active requests until `deadlineMs` (default `drainTimeoutMs`), then close
   * whatever is left. `close()` afterwards releases the rest.
   */
  drain(deadlineMs?: number): Promise<void>;
  /**
   * Reloads the served certificates from the files and the certificate store of `next` (SIGHUP; default:
   * the last configuration that loaded). New handshakes use the new set; existing connections are
   * untouched. The refresh timer calls it with trigger `timer`.
   */
  reloadCertificates(next?: EdgeConfig, trigger?: 'sighup' | 'timer'): Promise<ServerCertificate[]>;
  /** Ping every key service now and update what /healthz reports. */
  checkHealth(): Promise<EdgeHealth>;
  close(): Promise<void>;
}

export interface EdgeDependencies extends CertificateSources {
  /** Where embedded-metric-format lines go when `metrics.emf` is on (default: stdout). */
  emfWrite?: (line: string) => void;
  /** Bind the TLS port with SO_REUSEPORT, beside the other workers' listeners (workers.ts). */
  reusePort?: boolean;
}

export async function startEdge(config: EdgeConfig, log: Logger, deps: EdgeDependencies = {}): Promise<RunningEdge> {
  const initialSet = await loadCertificateSet(config, deps);
  logLoadedCertificates(config, initialSet, log);
  const figures = startMetrics(config, deps.emfWrite);
  const keyOps = assembleKeyOperations(config, log, figures, initialSet.served);
  // The frontend's 421 check reads the certificate store, which is created just below.
  const frontend = await startFrontend(
    config,
    log,
    figures,
    certificateEntries(() => certificateStore),
  );
  const certificateStore = servedCertificateStore(config, initialSet.served);
  const tickets = await startSessionTickets(config, keyOps.tracked, log, figures);
  const server = createTlsServer(
    config,
    { certificates: certificateStore, keyOperations: keyOps.admitted, tickets: tickets.protector },
    log,
  );
  routeConnections(server, frontend, config, log, figures.edge);
  const tlsAddr = await listenTls(server, config.listen, deps.reusePort ?? false);
  const drain = createDrain(server, frontend, config, log, figures.edge);
  const health = createHealthMonitor(config, {
    failover: keyOps.failover,
    certificates: certificateStore,
    connections: () => server.activeConnections,
    draining: () => drain.started,
    origins: () => frontend.originStatus(),
  });
  const certificates = startCertificateReloader(
    config,
    initialSet,
    { store: certificateStore, keys: keyOps.keys, describedKeys: health.describedKeys },
    { registry: figures.registry, edge: figures.edge, log },
    deps,
  );
  await health.start();
  const admin = await startAdminServer(config.admin, health.report, figures.edge);

  return {
    tlsPort: tlsAddr.port,
    adminPort: admin.port,
    keys: keyOps.keys,
    failover: keyOps.failover,
    metrics: figures.keyClient,
    edgeMetrics: figures.edge,
    admission: keyOps.admission,
    checkHealth: health.check,
    drain: drain.drain,
    reloadCertificates: certificates.reload,
    async close() {
      health.stop();
      certificates.stop();
      figures.emf?.stop(); // the last interval's figures are written before exit
      tickets.stop();
      await server.close();
      await frontend.close();
      await server.close(true);
      await admin.close();
      keyOps.keys.close();
    },
  };
}

function logLoadedCertificates(config: EdgeConfig, set: CertificateSet, log: Logger): void {
  if (!config.certificateStore) return;
  log.log('info', 'certificates loaded', {
    ...storeLocation(config),
    certificates: set.served.map((c) => ({ keyName: c.keyName, hostnames: c.hostnames, state: c.state ?? 'live' })),
    staged: set.staged.map((e) => e.keyName),
  });
}
