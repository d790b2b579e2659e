/**
 * Assembles the edge: certificates (public data only) → TLS engine whose one private-key operation
 * goes to the key services over Lambda Invoke (in failover order, a circuit breaker each) → HTTP
 * frontend that proxies to the origin. Also an admin listener (`/healthz`) on a separate,
 * loopback-by-default port.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { createSsmClient, loadCertificatesFromSsm, type SsmCertificateEntry } from './cert-store/ssm';
import { assertNoPrivateKey, ConfigError, EdgeConfig } from './config';
import { EdgeMetrics } from './edge-metrics';
import { AdmissionController } from './keyless/admission';
import { KeyClientMetrics } from './keyless/client-metrics';
import { MetricsRegistry } from './keyless/metrics';
import { FailoverTarget, type TargetPing, type TargetStatus } from './keyless/failover-target';
import { KeyServiceClient } from './keyless/key-service-client';
import { createLambdaTargets } from './keyless/lambda-targets';
import type { Logger } from './log';
import type { KeyDescription } from '../../lambdas/key-service/protocol';
import { createHttpFrontend } from './proxy/http-proxy';
import type { SecureConnection } from './proxy/types';
import { CertificateStore, loadCertificate, ServerCertificate } from './tls/certificates';
import type { TlsServerConnection } from './tls/connection';
import { TlsServer } from './tls/server';
import { TicketProtector } from './tls/tickets';
import { TicketKeyRefresher } from './ticket-key-refresher';

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
  /** Reloads the served certificates (SIGHUP) from `next` (default: the startup configuration); existing connections are untouched. */
  reloadCertificates(next?: EdgeConfig): Promise<ServerCertificate[]>;
  /** Ping every key service now and update what /healthz reports. */
  checkHealth(): Promise<EdgeHealth>;
  close(): Promise<void>;
}

/** The body of GET /healthz. */
export interface EdgeHealth {
  /** True when at least one key service answers `ping`. */
  ok: boolean;
  keyService: 'reachable' | 'unreachable';
  connections: number;
  /** True while draining after SIGTERM (reported as 503, so load balancers stop sending). */
  draining?: boolean;
  keyServices: Array<TargetStatus & Partial<Pick<TargetPing, 'reachable' | 'error'>>>;
}

export function loadCertificates(config: EdgeConfig): ServerCertificate[] {
  return config.certificates.map((c, i) => {
    let pem: string;
    try {
      pem = fs.readFileSync(c.chainFile, 'utf8');
    } catch (e) {
      throw new ConfigError(`certificates[${i}].chainFile`, `cannot read ${c.chainFile} (${(e as NodeJS.ErrnoException).code})`, 'Check the path, or run `npm start` once to create the local dev certificate.');
    }
    assertNoPrivateKey(pem, `certificates[${i}].chainFile`);
    try {
      return loadCertificate(pem, c.keyName, c.hostnames);
    } catch (e) {
      throw new ConfigError(`certificates[${i}].chainFile`, (e as Error).message, 'Give a PEM chain with the leaf certificate first.');
    }
  });
}

/** Turns certificates read from SSM into served certificates; errors name the parameter. */
export function certificatesFromStore(entries: readonly SsmCertificateEntry[]): ServerCertificate[] {
  return entries.map((e) => {
    try {
      return loadCertificate(e.chainPem, e.keyName, e.hostnames);
    } catch (err) {
      throw new ConfigError(`${e.parameter}.chainPem`, (err as Error).message, 'Give a PEM chain with the leaf certificate first.');
    }
  });
}

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

export interface EdgeDependencies {
  /** SSM client for `certificateStore` (default: one from the environment's region and credentials). */
  ssmClient?: SSMClient;
}

/**
 * Every certificate the edge serves: those from files first (in order), then those in the SSM
 * certificate store (by parameter name). Fails when there is none at all.
 */
export async function loadAllCertificates(config: EdgeConfig, deps: EdgeDependencies = {}): Promise<ServerCertificate[]> {
  const certs = loadCertificates(config);
  const store = config.certificateStore;
  if (store) {
    const client = deps.ssmClient ?? createSsmClient();
    try {
      certs.push(...certificatesFromStore(await loadCertificatesFromSsm(client, store.ssmPrefix)));
    } finally {
      if (!deps.ssmClient) client.destroy();
    }
    if (certs.length === 0) {
      throw new ConfigError(
        'certificateStore.ssmPrefix',
        `no certificate parameter found under ${store.ssmPrefix}`,
        'Deploy the certificates (the CDK edge stack writes one String parameter per certificate under this prefix), check KEYLESS_CERT_SSM_PREFIX and the region, and that the task role may call ssm:GetParametersByPath on it.',
      );
    }
  }
  return certs;
}

/**
 * TLS 1.2 RSA key exchange is offered only for RSA keys the key service holds in `sealed` or `file`
 * custody (KMS cannot decrypt PKCS#1 v1.5); the service's `ping` says which custody each key has.
 */
export function applyCustody(certs: ServerCertificate[], keys: readonly KeyDescription[]): void {
  for (const c of certs) {
    const custody = keys.find((k) => k.name === c.keyName)?.custody;
    c.allowRsaKeyExchange = c.shape.keyType === 'rsa' && (custody === 'sealed' || custody === 'file');
  }
}

/**
 * On SIGTERM the listener closes this long after the signal, so connections already queued in the
 * kernel (client side: connected) are accepted and served rather than reset. Under load the event
 * loop can take tens of milliseconds to get to them.
 */
const ACCEPT_QUEUE_GRACE_MS = 100;

export async function startEdge(config: EdgeConfig, log: Logger, deps: EdgeDependencies = {}): Promise<RunningEdge> {
  const certs = await loadAllCertificates(config, deps);
  if (config.certificateStore) log.log('info', 'certificates loaded', { ssmPrefix: config.certificateStore.ssmPrefix, certificates: certs.map((c) => ({ keyName: c.keyName, hostnames: c.hostnames })) });
  // One Lambda target per configured key service, in failover order, behind one deadline per
  // operation: at most one retry, health per key service, a circuit breaker each.
  const registry = new MetricsRegistry();
  const metrics = new KeyClientMetrics(registry);
  const edgeMetrics = new EdgeMetrics(registry);
  const admission = new AdmissionController(config.admission, {
    onReject: (reason, remote) => {
      edgeMetrics.admissionRejected(reason);
      log.log('debug', 'full handshake refused', { remote, reason });
    },
  });
  edgeMetrics.admissionPending.collect = (g) => g.set({}, admission.pending);
  const failover = new FailoverTarget({
    targets: createLambdaTargets(config.keyServices, {
      deadlineMs: config.keyOperationTimeoutMs,
      connectTimeoutMs: config.keyServiceConnectTimeoutMs,
      maxSockets: config.maxKeyOperationsInFlight,
    }),
    breaker: config.circuitBreaker,
    // Unhealthy: mostly failing, or slower than half the deadline. A key service avoided for that is
    // tried again after about one breaker cool-down (the health record's half-life).
    health: { slowMs: config.keyOperationTimeoutMs / 2, halfLifeMs: config.circuitBreaker.cooldownMs },
    metrics,
    onEvent: (e) => {
      if (e.type === 'breaker') log.log(e.to === 'closed' ? 'info' : 'warn', 'key service circuit breaker', { component: 'keyless', keyService: e.target, from: e.from, to: e.to });
      else log.log(e.reason === 'health' ? 'warn' : 'info', 'key service failover', { component: 'keyless', from: e.from, to: e.to, reason: e.reason });
    },
  });
  const keys = new KeyServiceClient({
    target: failover,
    timeoutMs: config.keyOperationTimeoutMs,
    maxInFlight: config.maxKeyOperationsInFlight,
    // Only keys of certificates we serve may be used, and every signature is verified against
    // that certificate's public key before it reaches the wire.
    fetchUnregisteredKeys: false,
  });
  for (const c of certs) keys.registerCertificateKey(c.keyName, c.publicKey);

  const frontend = createHttpFrontend({
    origin: config.origin,
    log: (level, msg, fields) => log.log(level, msg, { ...fields, component: 'proxy' }),
    closeTimeoutMs: config.drainTimeoutMs,
  });
  const certificateStore = new ReloadableCertificateStore(certs);
  const trackedKeys = failover.trackOperations(keys);
  // Fleet-wide session tickets: resumed handshakes cost no key operation (DESIGN §7).
  const tickets = config.tickets.enabled ? new TicketProtector() : undefined;
  const ticketRefresher = tickets ? new TicketKeyRefresher(trackedKeys, tickets, log) : undefined;
  await ticketRefresher?.start();
  const server = new TlsServer({
    certificates: certificateStore,
    keyOperations: admission.wrap(trackedKeys),
    alpnProtocols: config.alpn,
    handshakeTimeoutMs: config.handshakeTimeoutMs,
    tickets,
    ticketSettings: { count: config.tickets.count, lifetimeSeconds: config.tickets.lifetimeSeconds },
  }, config.proxyProtocol);
  server.on('proxyProtocolError', (err, remote) => log.log('warn', 'PROXY protocol header rejected', { remote, error: err.message }));
  // Every log line about a connection carries its id: a per-process random prefix and a counter.
  const idPrefix = randomBytes(3).toString('hex');
  let nextId = 0;
  const connIds = new WeakMap<TlsServerConnection, string>();
  const connId = (conn: TlsServerConnection): string => {
    let id = connIds.get(conn);
    if (!id) {
      id = `${idPrefix}-${(nextId++).toString(36)}`;
      connIds.set(conn, id);
    }
    return id;
  };
  server.tcp.on('connection', (socket) => edgeMetrics.trackSocket(socket));
  server.on('secureConnection', (conn: TlsServerConnection) => {
    const i = conn.handshakeInfo;
    const id = connId(conn);
    edgeMetrics.handshakeSucceeded({ protocol: i?.protocol, cipher: i?.cipher, group: i?.group, resumed: i?.resumed });
    const openedAt = Date.now();
    conn.once('close', () => log.log('debug', 'connection closed', { conn: id, remote: conn.remoteAddress, durationMs: Date.now() - openedAt, error: conn.lastError?.message }));
    log.log('info', 'handshake', {
      conn: id,
      remote: conn.remoteAddress,
      protocol: i?.protocol,
      cipher: i?.cipher,
      group: i?.group,
      signatureScheme: i?.signatureScheme,
      keyExchange: i?.keyExchange,
      sni: i?.serverName,
      alpn: i?.alpn,
      helloRetry: i?.helloRetry,
      resumed: i?.resumed,
      keyName: i?.keyName,
      keyOperationMs: i?.keyOperationMs,
    });
    frontend.handle(conn as SecureConnection);
  });
  server.on('tlsClientError', (err, conn) => {
    edgeMetrics.handshakeFailed(err);
    log.log('warn', 'handshake failed', { conn: connId(conn), remote: conn.remoteAddress, error: err.message, alertSent: err.sentAlert, alertReceived: err.receivedAlert });
  });
  const tlsAddr = await server.listen(config.listen.port, config.listen.host);

  let drainPromise: Promise<void> | undefined;
  const drain = (deadlineMs = config.drainTimeoutMs): Promise<void> => {
    drainPromise ??= (async () => {
      const started = Date.now();
      const deadline = started + deadlineMs;
      edgeMetrics.draining.set({}, 1);
      log.log('info', 'draining', { connections: server.activeConnections, deadlineMs });
      // 1. Stop accepting (the listening socket closes; established connections stay). Connections
      //    the kernel has already completed but a busy event loop has not accepted yet would be
      //    reset by the close, so the listener stays open a moment longer (ACCEPT_QUEUE_GRACE_MS).
      await new Promise((r) => setTimeout(r, Math.min(ACCEPT_QUEUE_GRACE_MS, deadlineMs)));
      const allClosed = server.close();
      // 2. Handshakes in flight finish and are handed to the HTTP frontend, which still takes them.
      const handshaking = (): number => server.activeConnections - frontend.connectionCount;
      const handshakeDeadline = Math.min(deadline, started + config.handshakeTimeoutMs);
      while (handshaking() > 0 && Date.now() < handshakeDeadline) await new Promise((r) => setTimeout(r, 10));
      // 3. Idle keep-alive connections are closed politely (close_notify / HTTP/2 GOAWAY), active
      //    requests finish, until the drain deadline.
      await Promise.race([frontend.close(), new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref())]);
      // 4. Whatever is left is cut.
      const left = server.activeConnections;
      await server.close(true);
      await allClosed;
      log.log('info', 'drained', { ms: Date.now() - started, forciblyClosed: left });
    })();
    return drainPromise;
  };

  let reloading: Promise<ServerCertificate[]> = Promise.resolve([]);
  const reloadCertificates = (next: EdgeConfig = config): Promise<ServerCertificate[]> => {
    reloading = reloading.catch(() => []).then(async () => {
      try {
        const fresh = await loadAllCertificates(next, deps);
        for (const c of fresh) keys.registerCertificateKey(c.keyName, c.publicKey);
        const first = pings.find((p) => p.reachable && p.keys);
        if (first?.keys) applyCustody(fresh, first.keys);
        certificateStore.replace(fresh);
        edgeMetrics.certificateReloads.inc({ result: 'ok' });
        log.log('info', 'certificates reloaded', { certificates: fresh.map((c) => ({ keyName: c.keyName, hostnames: c.hostnames })) });
        return fresh;
      } catch (e) {
        edgeMetrics.certificateReloads.inc({ result: 'error' });
        log.log('error', 'certificate reload failed; still serving the previous certificates', { error: (e as Error).message });
        throw e;
      }
    });
    return reloading;
  };

  // Healthy while at least one key service answers ping (each pinged directly, whatever its breaker).
  let pings: TargetPing[] = [];
  const report = (): EdgeHealth => {
    const ok = pings.some((p) => p.reachable);
    return {
      ok,
      keyService: ok ? 'reachable' : 'unreachable',
      connections: server.activeConnections,
      ...(drainPromise ? { draining: true } : {}),
      keyServices: failover.status().map((s) => {
        const p = pings.find((x) => x.name === s.name);
        return { ...s, reachable: p?.reachable, error: p?.error };
      }),
    };
  };
  const checkHealth = async (): Promise<EdgeHealth> => {
    pings = await failover.pingTargets(config.keyOperationTimeoutMs);
    const first = pings.find((p) => p.reachable && p.keys);
    if (first?.keys) applyCustody([...certificateStore.all], first.keys);
    return report();
  };
  await checkHealth();
  const healthTimer = setInterval(() => void checkHealth(), 10_000).unref();
  const admin = http.createServer((req, res) => {
    if (req.url === '/healthz') {
      const health = report();
      res.writeHead(health.ok && !health.draining ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify(health));
      return;
    }
    if (req.url === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) {
      const body = edgeMetrics.renderPrometheus();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    admin.once('error', reject);
    admin.listen(config.admin.port, config.admin.host, () => resolve());
  });

  return {
    tlsPort: tlsAddr.port,
    adminPort: (admin.address() as AddressInfo).port,
    keys,
    failover,
    metrics,
    edgeMetrics,
    admission,
    checkHealth,
    drain,
    reloadCertificates,
    async close() {
      clearInterval(healthTimer);
      ticketRefresher?.stop();
      await server.close();
      await frontend.close();
      await server.close(true);
      await new Promise<void>((r) => admin.close(() => r()));
      keys.close();
    },
  };
}
