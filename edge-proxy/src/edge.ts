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
import { openCertificateStore, type CertificateStoreBackend, type StoredCertificate } from './cert-store';
import { CertificateStoreMetrics, checkStagedEntries, startJitteredTimer } from './cert-store/edge-refresh';
import { assertNoPrivateKey, type ClientAuthConfig, ConfigError, EdgeConfig } from './config';
import { loadClientAuthPolicy, type ClientAuthPolicy } from './tls/client-auth';
import { EdgeMetrics } from './observability/edge-metrics';
import { EmfPublisher } from './observability/emf';
import { AdmissionController } from './keyless/admission';
import { KeyClientMetrics } from './keyless/client-metrics';
import { MetricsRegistry } from './observability/metrics-registry';
import { FailoverTarget, type TargetPing, type TargetStatus } from './keyless/failover-target';
import { KeyServiceClient } from './keyless/key-service-client';
import { createLambdaTargets } from './keyless/lambda-targets';
import { LogSampler, type Logger } from './observability/log';
import type { KeyDescription } from '../../lambdas/key-service/protocol';
import { createHttpFrontend } from './proxy/http-proxy';
import { createTcpForwarder } from './proxy/tcp-forward';
import type { SecureConnection } from './proxy/types';
import type { CertificateEntries, CertificateEntryView } from './proxy/authority';
import { RoutingMetrics } from './proxy/routing-metrics';
import type { RouteStatus } from './proxy/routing';
import { RouteTable } from './proxy/routes';
import type { RouteConfig } from './routing-config';
import { AlertDescription, TlsAlert } from './tls/alerts';
import { CertificateStore, loadCertificate, ServerCertificate } from './tls/certificates';
import { ocspResponseProblem } from './tls/ocsp-stapling';
import { PeerClosedError, type TlsServerConnection } from './tls/connection';
import { TlsServer } from './tls/server';
import { groupByName } from './tls/groups';
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

/** The body of GET /healthz. */
export interface EdgeHealth {
  /** True when at least one key service answers `ping`. */
  ok: boolean;
  keyService: 'reachable' | 'unreachable';
  connections: number;
  /** True while draining after SIGTERM (reported as 503, so load balancers stop sending). */
  draining?: boolean;
  keyServices: Array<TargetStatus & Partial<Pick<TargetPing, 'reachable' | 'error'>>>;
  /** The edge process's runtime, e.g. `node/24.22.3`. */
  runtime: string;
  /** Every route's origin addresses and their health; informational: never makes the edge unhealthy. */
  origins: RouteStatus[];
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
    let cert: ServerCertificate;
    try {
      cert = loadCertificate(pem, c.keyName, c.hostnames);
    } catch (e) {
      throw new ConfigError(`certificates[${i}].chainFile`, (e as Error).message, 'Give a PEM chain with the leaf certificate first.');
    }
    const clientAuth = loadClientAuth(c.clientAuth, `certificates[${i}].clientAuth.caFile`);
    const ocspResponse = loadOcspResponse(c.ocspResponseFile, `certificates[${i}].ocspResponseFile`);
    return { ...cert, ...(clientAuth ? { clientAuth } : {}), ...(ocspResponse ? { ocspResponse } : {}) };
  });
}

/** The OCSP response stapled for a certificate (TLS engine: tls/ocsp-stapling.ts), re-read on reload. */
function loadOcspResponse(file: string | undefined, field: string): Buffer | undefined {
  if (!file) return undefined;
  let der: Buffer;
  try {
    der = fs.readFileSync(file);
  } catch (e) {
    throw new ConfigError(field, `cannot read ${file} (${(e as NodeJS.ErrnoException).code})`, 'Check the path, or remove the field to serve without OCSP stapling.');
  }
  const problem = ocspResponseProblem(der);
  if (problem) throw new ConfigError(field, `${file} ${problem}`, 'Fetch a fresh response in DER form, e.g. `openssl ocsp -issuer ca.pem -cert leaf.pem -url <responder> -respout ocsp.der`.');
  return der;
}

/** The CA bundle of an mTLS certificate entry, read at startup and on every SIGHUP reload. */
function loadClientAuth(config: ClientAuthConfig | undefined, field: string): ClientAuthPolicy | undefined {
  if (!config || config.mode === 'none' || !config.caFile) return undefined;
  let pem: string;
  try {
    pem = fs.readFileSync(config.caFile, 'utf8');
  } catch (e) {
    throw new ConfigError(field, `cannot read ${config.caFile} (${(e as NodeJS.ErrnoException).code})`, 'Check the path of the PEM bundle of client-certificate CAs.');
  }
  assertNoPrivateKey(pem, field);
  try {
    return loadClientAuthPolicy(config.mode, pem);
  } catch (e) {
    throw new ConfigError(field, `${config.caFile} ${(e as Error).message}`, 'Give a PEM bundle of the CA certificates that issue your client certificates.');
  }
}

/**
 * Turns store entries into served certificates: `live` and `retiring` ones (the TLS engine prefers
 * live, see CertificateStore.candidates); `staged` entries are never served. Errors name the entry.
 */
export function certificatesFromStore(entries: readonly StoredCertificate[]): ServerCertificate[] {
  return entries.flatMap((e) => {
    if (e.state === 'staged') return [];
    try {
      return [{ ...loadCertificate(e.chainPem, e.keyName, e.hostnames), state: e.state }];
    } catch (err) {
      throw new ConfigError(`${e.source}.chainPem`, (err as Error).message, 'Give a PEM chain with the leaf certificate first.');
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

/** tcp mode with routes and no default route: only server names a route serves get a handshake. */
export class SniRoutedCertificateStore extends ReloadableCertificateStore {
  private readonly routes: RouteTable<RouteConfig>;

  constructor(certs: readonly ServerCertificate[], routes: RouteConfig[]) {
    super(certs);
    this.routes = new RouteTable(routes, undefined);
  }

  override candidates(serverName: string | undefined): { certs: ServerCertificate[]; matched: boolean } {
    if (!this.routes.match(serverName?.toLowerCase())) throw new TlsAlert(AlertDescription.unrecognized_name, `no route serves the server name ${JSON.stringify(serverName ?? '')}`);
    return super.candidates(serverName);
  }
}

export interface EdgeDependencies {
  /** SSM client for `certificateStore` (default: one from the environment's region and credentials). */
  ssmClient?: SSMClient;
  /** The certificate store backend (tests); default: the one `certificateStore` names. */
  certificateStore?: CertificateStoreBackend;
  /** Where embedded-metric-format lines go when `metrics.emf` is on (default: stdout). */
  emfWrite?: (line: string) => void;
}

/** What the edge holds: the certificates it serves, and the store's staged entries (checked, never served). */
export interface CertificateSet {
  served: ServerCertificate[];
  staged: StoredCertificate[];
}

/**
 * Every certificate the edge serves: those from files first (in order), then the live and retiring
 * entries of the certificate store (by entry id). Fails when there is none at all.
 */
export async function loadCertificateSet(config: EdgeConfig, deps: EdgeDependencies = {}): Promise<CertificateSet> {
  const served = loadCertificates(config);
  const store = config.certificateStore;
  if (!store) return { served, staged: [] };
  const opened = deps.certificateStore ? { store: deps.certificateStore, close: () => undefined } : openCertificateStore(store, deps.ssmClient);
  let entries: StoredCertificate[];
  try {
    entries = await opened.store.list();
  } finally {
    opened.close();
  }
  served.push(...certificatesFromStore(entries));
  const staged = entries.filter((e) => e.state === 'staged');
  if (served.length === 0) {
    const stagedNote = staged.length > 0 ? ` (${staged.length} staged, never served: promote one with \`keyless rotate <slot> promote\`)` : '';
    if (store.ssmPrefix !== undefined) {
      throw new ConfigError(
        'certificateStore.ssmPrefix',
        `no certificate parameter found under ${store.ssmPrefix}${stagedNote}`,
        'Deploy the certificates (the CDK edge stack writes one String parameter per certificate under this prefix), check KEYLESS_CERT_SSM_PREFIX and the region, and that the task role may call ssm:GetParametersByPath on it.',
      );
    }
    throw new ConfigError(
      'certificateStore.directory',
      `no certificate found in ${store.directory}${stagedNote}`,
      'Import one with `keyless cert import` (one <key name>.json per certificate), or check KEYLESS_CERT_DIR.',
    );
  }
  return { served, staged };
}

/** The certificates the edge serves (see loadCertificateSet). */
export async function loadAllCertificates(config: EdgeConfig, deps: EdgeDependencies = {}): Promise<ServerCertificate[]> {
  return (await loadCertificateSet(config, deps)).served;
}

/** Where the certificate store is, for logs. */
function storeLocation(config: EdgeConfig): Record<string, string> {
  const s = config.certificateStore;
  if (!s) return {};
  return s.ssmPrefix !== undefined ? { ssmPrefix: s.ssmPrefix } : { directory: s.directory };
}

/** A fingerprint of what is served and staged, to log a refresh only when something changed. */
function setFingerprint(set: CertificateSet): string {
  return JSON.stringify([set.served.map((c) => [c.keyName, c.state ?? 'live', c.leaf.fingerprint256, c.hostnames]), set.staged.map((e) => [e.id, e.keyName, e.chainPem.length])]);
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

/** A client-certificate policy as a comparable key: mode and trust anchors ('' = none). */
const policyKeys = new WeakMap<ClientAuthPolicy, string>();
function clientAuthKey(policy: ClientAuthPolicy | undefined): string {
  if (!policy) return '';
  let key = policyKeys.get(policy);
  if (key === undefined) {
    key = `${policy.mode}:${policy.anchors.map((a) => a.fingerprint256).sort().join(',')}`;
    policyKeys.set(policy, key);
  }
  return key;
}

/**
 * The certificate entries behind the HTTP frontend's 421 check (proxy/authority.ts): the one a
 * connection was served (by key name among the SNI's candidates), and the one a host name selects.
 */
export function certificateEntries(store: () => CertificateStore): CertificateEntries {
  const view = (c: ServerCertificate): CertificateEntryView => ({ hostnames: c.hostnames, clientAuth: clientAuthKey(c.clientAuth) });
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

export async function startEdge(config: EdgeConfig, log: Logger, deps: EdgeDependencies = {}): Promise<RunningEdge> {
  const initialSet = await loadCertificateSet(config, deps);
  const certs = initialSet.served;
  if (config.certificateStore) {
    log.log('info', 'certificates loaded', { ...storeLocation(config), certificates: certs.map((c) => ({ keyName: c.keyName, hostnames: c.hostnames, state: c.state ?? 'live' })), staged: initialSet.staged.map((e) => e.keyName) });
  }
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
  // CloudWatch in ECS: the same figures as embedded-metric-format lines on stdout (docs/observability.md).
  const emf = config.metrics.emf
    ? new EmfPublisher(edgeMetrics, metrics, { namespace: config.metrics.namespace, deployment: config.metrics.deployment, intervalMs: config.metrics.intervalSeconds * 1000, write: deps.emfWrite })
    : undefined;
  emf?.start();
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

  const proxyLog = (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void => log.log(level, msg, { ...fields, component: 'proxy' });
  // Routes to origins (docs/configuration.md, "Routing"); per route and origin address metrics.
  const routing = { routes: config.routes, ...(config.defaultRoute ? { defaultRoute: config.defaultRoute } : {}) };
  const routingMetrics = new RoutingMetrics(registry);
  // What happens to the plaintext: HTTP reverse proxy, or raw TCP forwarding (config `proxy.mode`).
  const frontend =
    config.proxy.mode === 'tcp'
      ? createTcpForwarder({
          routing,
          connectTimeoutMs: config.proxy.connectTimeoutMs,
          idleTimeoutMs: config.proxy.idleTimeoutMs,
          sendProxyProtocol: config.proxy.sendProxyProtocol,
          closeTimeoutMs: config.drainTimeoutMs,
          log: proxyLog,
          metrics: edgeMetrics,
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
          certificateEntries: certificateEntries(() => certificateStore),
        });
  await frontend.ready;
  // SNI routing (tcp mode) without a default route: a name no route serves is refused in the
  // handshake with unrecognized_name (RFC 6066 §3), before any key operation.
  const certificateStore = config.proxy.mode === 'tcp' && !config.defaultRoute ? new SniRoutedCertificateStore(certs, config.routes) : new ReloadableCertificateStore(certs);
  const trackedKeys = failover.trackOperations(keys);
  // Fleet-wide session tickets: resumed handshakes cost no key operation (docs/key-service-protocol.md, "Session-ticket keys").
  const tickets = config.tickets.enabled ? new TicketProtector({ onRejected: (reason) => edgeMetrics.ticketRejected(reason) }) : undefined;
  const ticketRefresher = tickets ? new TicketKeyRefresher(trackedKeys, tickets, log) : undefined;
  await ticketRefresher?.start();
  const server = new TlsServer({
    certificates: certificateStore,
    keyOperations: admission.wrap(trackedKeys),
    alpnProtocols: config.alpn,
    groups: config.groups.map((name) => groupByName(name)!),
    // tcp mode: the client's FIN ends only the client → origin direction (see proxy/tcp-forward.ts).
    allowHalfOpen: config.proxy.mode === 'tcp',
    handshakeTimeoutMs: config.handshakeTimeoutMs,
    tickets,
    ticketSettings: { count: config.tickets.count, lifetimeSeconds: config.tickets.lifetimeSeconds },
  }, config.proxyProtocol);
  // Connections beyond the cap are closed at accept (before any TLS work): bounds memory and file descriptors.
  server.tcp.maxConnections = config.limits.maxConnections;
  server.on('proxyProtocolError', (err, remote) => log.log('warn', 'PROXY protocol header rejected', { remote, error: err.message }));
  // Every log line about a connection carries its id: a per-process random prefix and a counter.
  const idPrefix = randomBytes(3).toString('hex');
  const logSampler = new LogSampler(config.logging.sampleRate);
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
    // Per-connection lines are sampled (logging.sampleRate); warnings and errors never are.
    const clog = logSampler.forConnection(log, id);
    edgeMetrics.handshakeSucceeded({ protocol: i?.protocol, cipher: i?.cipher, group: i?.group, resumed: i?.resumed, handshakeMs: conn.handshakeMs });
    const openedAt = Date.now();
    conn.once('close', () => clog.log('debug', 'connection closed', { remote: conn.remoteAddress, durationMs: Date.now() - openedAt, error: conn.lastError?.message }));
    clog.log('info', 'handshake', {
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
      // mTLS hosts: the verified client certificate's SHA-256 (an identifier, not a secret), or "none".
      clientCert: i?.clientAuth ? (i.clientAuth.fingerprint256 ?? 'none') : undefined,
      handshakeMs: conn.handshakeMs === undefined ? undefined : Math.round(conn.handshakeMs * 1000) / 1000,
    });
    frontend.handle(conn as SecureConnection);
  });
  server.on('tlsClientError', (err, conn) => {
    edgeMetrics.handshakeFailed(err);
    // A TCP probe (no ClientHello) or a client that left after our whole flight — for it the
    // handshake succeeded — is routine: debug, sampled. Anything else is worth a warning.
    const routine = err.cause instanceof PeerClosedError && err.cause.stage !== 'during_handshake';
    logSampler.forConnection(log, connId(conn)).log(routine ? 'debug' : 'warn', routine ? 'handshake abandoned' : 'handshake failed', { remote: conn.remoteAddress, error: err.message, alertSent: err.sentAlert, alertReceived: err.receivedAlert });
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
      //    reset by the close, so the listener stays open until the accept queue is seen empty.
      await drainAcceptQueue(server, Math.min(deadline, started + ACCEPT_QUEUE_MAX_MS));
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

  // Staged entries are checked (key known to the key service, same public key as the leaf) after
  // every load, so `keyless rotate promote` can see that the fleet is ready; never served.
  const storeMetrics = new CertificateStoreMetrics(registry);
  let stagedCount = initialSet.staged.length;
  storeMetrics.trackCertificates(() => ({ served: certificateStore.all, staged: stagedCount }));
  const stagedResults = new Map<string, string>();
  const checkStaged = async (staged: readonly StoredCertificate[]): Promise<void> => {
    const checks = await checkStagedEntries(staged, (name) => keys.publicKey(name));
    storeMetrics.recordStagedChecks(checks);
    for (const c of checks) {
      if (stagedResults.get(c.keyName) === c.result) continue;
      stagedResults.set(c.keyName, c.result);
      log.log(c.result === 'ok' ? 'info' : 'warn', 'staged certificate checked', { keyName: c.keyName, entry: c.id, result: c.result, detail: c.detail });
    }
    for (const name of [...stagedResults.keys()]) if (!checks.some((c) => c.keyName === name)) stagedResults.delete(name);
  };
  const checkStagedQuietly = (staged: readonly StoredCertificate[]): void => void checkStaged(staged).catch((e: unknown) => log.log('warn', 'staged certificate check failed', { error: (e as Error).message }));
  checkStagedQuietly(initialSet.staged);

  // Reloads (SIGHUP with a re-read configuration, or the refresh timer with the last good one) are
  // serialised; a failed read keeps the last good set in service, never an empty one.
  let currentConfig = config;
  let lastFingerprint = setFingerprint(initialSet);
  let reloading: Promise<ServerCertificate[]> = Promise.resolve([]);
  const reloadCertificates = (next?: EdgeConfig, trigger: 'sighup' | 'timer' = 'sighup'): Promise<ServerCertificate[]> => {
    reloading = reloading.catch(() => []).then(async () => {
      const cfg = next ?? currentConfig;
      try {
        const set = await loadCertificateSet(cfg, deps);
        const fresh = set.served;
        for (const c of fresh) keys.registerCertificateKey(c.keyName, c.publicKey);
        const first = pings.find((p) => p.reachable && p.keys);
        if (first?.keys) applyCustody(fresh, first.keys);
        certificateStore.replace(fresh);
        currentConfig = cfg;
        stagedCount = set.staged.length;
        if (trigger === 'sighup') edgeMetrics.certificateReloads.inc({ result: 'ok' });
        const fingerprint = setFingerprint(set);
        const changed = fingerprint !== lastFingerprint;
        lastFingerprint = fingerprint;
        // The timer re-reads every minute: say so only when something changed.
        log.log(changed || trigger === 'sighup' ? 'info' : 'debug', 'certificates reloaded', {
          trigger,
          changed,
          certificates: fresh.map((c) => ({ keyName: c.keyName, hostnames: c.hostnames, state: c.state ?? 'live' })),
          staged: set.staged.map((e) => e.keyName),
        });
        checkStagedQuietly(set.staged);
        return fresh;
      } catch (e) {
        if (trigger === 'sighup') edgeMetrics.certificateReloads.inc({ result: 'error' });
        storeMetrics.refreshFailures.inc({ trigger });
        log.log('error', 'certificate reload failed; still serving the previous certificates', { trigger, error: (e as Error).message });
        throw e;
      }
    });
    return reloading;
  };
  const refreshTimer = config.certificateStore ? startJitteredTimer(config.certificateStore.refreshSeconds, () => reloadCertificates(undefined, 'timer')) : undefined;

  // Healthy while at least one key service answers ping (each pinged directly, whatever its breaker).
  let pings: TargetPing[] = [];
  const report = (): EdgeHealth => {
    const ok = pings.some((p) => p.reachable);
    return {
      ok,
      keyService: ok ? 'reachable' : 'unreachable',
      connections: server.activeConnections,
      ...(drainPromise ? { draining: true } : {}),
      runtime: `node/${process.versions.node}`,
      keyServices: failover.status().map((s) => {
        const p = pings.find((x) => x.name === s.name);
        return { ...s, reachable: p?.reachable, error: p?.error };
      }),
      // An origin that is down must not make the load balancer recycle edges: reported, not judged.
      origins: frontend.originStatus(),
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
      refreshTimer?.stop();
      emf?.stop(); // the last interval's figures are written before exit
      ticketRefresher?.stop();
      await server.close();
      await frontend.close();
      await server.close(true);
      await new Promise<void>((r) => admin.close(() => r()));
      keys.close();
    },
  };
}
