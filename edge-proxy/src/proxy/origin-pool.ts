/**
 * The addresses of one route's origin and their health (docs/configuration.md, "Routing").
 *
 * - Addresses: a fixed `host:port` list, or the URL's host name resolved (A and AAAA records) and
 *   re-resolved on its TTL; an address that stays keeps its health record.
 * - Balancing: least pending requests among usable addresses; ties go round-robin.
 * - Passive health: `ejectAfterFailures` consecutive connect errors or 5xx answers eject an address
 *   for `ejectSeconds`; afterwards it gets traffic again, and one more failure ejects it again. A pool
 *   of one address never ejects it (there is nothing to fail over to).
 * - Active health (optional): GET `healthCheck.path` on every address each interval; a failing check
 *   takes the address out until a check passes, a passing one readmits an ejected address at once.
 * - TLS origins (https://, tls://): verification on (system CAs or `caFile`), SNI and the name
 *   verified = `serverName` or the URL's host, ALPN `http/1.1` (https).
 */
import * as dns from 'node:dns';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { isIP } from 'node:net';
import * as tls from 'node:tls';
import type { OriginAddress, OriginConfig } from '../routing-config';
import { originAgentOptions } from './origin';
import type { ProxyLog } from './types';

/** What the pool reports (metrics); `RoutingMetrics` implements it. */
export interface OriginPoolEvents {
  health(route: string, address: string, healthy: boolean): void;
  ejected(route: string, address: string): void;
}

export interface PoolAddress {
  readonly host: string;
  readonly port: number;
  /** `host:port` (`[v6]:port`), the metric label. */
  readonly label: string;
  /** Requests sent to it and not finished. */
  pending: number;
  /** Consecutive failures (connect errors, 5xx). */
  failures: number;
  /** Ejected until this time (ms since the epoch); 0 = not ejected. */
  ejectedUntil: number;
  /** The active health check's last verdict (true until a check fails). */
  checkOk: boolean;
}

export interface AddressStatus {
  address: string;
  healthy: boolean;
  pending: number;
  consecutiveFailures: number;
  ejectedForSeconds?: number;
  healthCheck?: 'passing' | 'failing';
}

export interface OriginPoolOptions {
  route: string;
  origin: OriginConfig;
  maxSockets: number;
  idleSocketTimeoutMs: number;
  log: ProxyLog;
  events?: OriginPoolEvents;
  /** Clock (tests). */
  now?: () => number;
}

const label = (host: string, port: number): string => (isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`);

/** TTL used when the name came from the system resolver (hosts file, mDNS), which gives none. */
const LOOKUP_TTL_SECONDS = 30;
const MIN_TTL_SECONDS = 5;
const MAX_TTL_SECONDS = 300;

export class OriginPool {
  readonly route: string;
  readonly origin: OriginConfig;
  /** Keep-alive agent for http:// and https:// origins (sockets keyed by address). */
  readonly agent?: http.Agent;
  /** TLS client options for https:// and tls:// origins. */
  readonly tls?: tls.ConnectionOptions;
  private addresses: PoolAddress[] = [];
  private next = 0;
  private readonly timers: NodeJS.Timeout[] = [];
  private closed = false;
  private readonly now: () => number;

  constructor(private readonly opts: OriginPoolOptions) {
    this.route = opts.route;
    this.origin = opts.origin;
    this.now = opts.now ?? Date.now;
    const o = opts.origin;
    if (o.scheme === 'https' || o.scheme === 'tls') {
      this.tls = {
        servername: o.serverName ?? (isIP(o.host) ? undefined : o.host),
        ...(o.caFile ? { ca: fs.readFileSync(o.caFile, 'utf8') } : {}),
        rejectUnauthorized: !o.dangerouslySkipTlsVerify,
        ...(o.scheme === 'https' ? { ALPNProtocols: ['http/1.1'] } : {}),
      };
      // The name verified is the SNI name, also when connecting to an address.
      const name = o.serverName ?? o.host;
      if (!o.dangerouslySkipTlsVerify)
        this.tls.checkServerIdentity = (_host, cert) => tls.checkServerIdentity(name, cert);
    }
    const agentOptions = originAgentOptions(opts);
    if (o.scheme === 'http') this.agent = new http.Agent(agentOptions);
    else if (o.scheme === 'https') this.agent = new https.Agent({ ...agentOptions, ...this.tls });
    if (o.addresses) this.setAddresses(o.addresses);
    else if (isIP(o.host)) this.setAddresses([{ host: o.host, port: o.port }]);
  }

  /** Resolve the origin's name (when it has no fixed addresses) and start the health checks. */
  async start(): Promise<void> {
    const o = this.origin;
    if (!o.addresses && !isIP(o.host)) await this.resolve();
    if (o.healthCheck) {
      const t = setInterval(() => void this.checkAll(), o.healthCheck.intervalSeconds * 1000);
      t.unref();
      this.timers.push(t);
      void this.checkAll();
    }
  }

  /** The usable address with the fewest pending requests, other than `exclude`; undefined when all are down. */
  pick(exclude?: ReadonlySet<PoolAddress>): PoolAddress | undefined {
    const list = this.addresses;
    if (list.length === 1) return exclude?.has(list[0]) ? undefined : list[0];
    const now = this.now();
    let best: PoolAddress | undefined;
    const n = list.length;
    const start = this.next++ % Math.max(n, 1);
    for (let k = 0; k < n; k++) {
      const a = list[(start + k) % n];
      if (!this.usable(a, now) || exclude?.has(a)) continue;
      if (!best || a.pending < best.pending) best = a;
    }
    return best;
  }

  /** A request reached this address and was answered below 500. */
  succeeded(a: PoolAddress): void {
    if (a.failures === 0) return;
    a.failures = 0;
    if (a.ejectedUntil !== 0) {
      a.ejectedUntil = 0;
      this.opts.events?.health(this.route, a.label, true);
    }
  }

  /** A connect error, TLS failure or 5xx answer from this address. */
  failed(a: PoolAddress, reason: string): void {
    a.failures++;
    if (this.addresses.length <= 1 || a.failures < this.origin.ejectAfterFailures) return;
    const now = this.now();
    if (a.ejectedUntil > now) return;
    a.ejectedUntil = now + this.origin.ejectSeconds * 1000;
    // Readmitted after the cooldown on probation: one more failure ejects it again.
    a.failures = this.origin.ejectAfterFailures - 1;
    this.opts.log('warn', 'proxy: origin address ejected', {
      route: this.route,
      address: a.label,
      reason,
      seconds: this.origin.ejectSeconds,
    });
    this.opts.events?.ejected(this.route, a.label);
    this.opts.events?.health(this.route, a.label, false);
  }

  status(): AddressStatus[] {
    const now = this.now();
    return this.addresses.map((a) => ({
      address: a.label,
      healthy: this.usable(a, now),
      pending: a.pending,
      consecutiveFailures: a.failures,
      ...(a.ejectedUntil > now ? { ejectedForSeconds: Math.ceil((a.ejectedUntil - now) / 1000) } : {}),
      ...(this.origin.healthCheck ? { healthCheck: a.checkOk ? ('passing' as const) : ('failing' as const) } : {}),
    }));
  }

  get size(): number {
    return this.addresses.length;
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.agent?.destroy();
  }

  private usable(a: PoolAddress, now: number): boolean {
    return a.checkOk && (a.ejectedUntil === 0 || a.ejectedUntil <= now);
  }

  private setAddresses(list: readonly OriginAddress[]): void {
    const old = new Map(this.addresses.map((a) => [a.label, a]));
    this.addresses = list.map(
      (x) =>
        old.get(label(x.host, x.port)) ?? {
          host: x.host,
          port: x.port,
          label: label(x.host, x.port),
          pending: 0,
          failures: 0,
          ejectedUntil: 0,
          checkOk: true,
        },
    );
    for (const a of this.addresses) if (!old.has(a.label)) this.opts.events?.health(this.route, a.label, true);
  }

  /** A and AAAA records with their TTLs; the system resolver (hosts file) when DNS has none. */
  private async resolve(): Promise<void> {
    const o = this.origin;
    let ttl = LOOKUP_TTL_SECONDS;
    let found: OriginAddress[] = [];
    try {
      const [v4, v6] = await Promise.all([
        dns.promises.resolve4(o.host, { ttl: true }).catch(() => []),
        dns.promises.resolve6(o.host, { ttl: true }).catch(() => []),
      ]);
      const records = [...v4, ...v6];
      if (records.length > 0) {
        found = records.map((r) => ({ host: r.address, port: o.port }));
        ttl = Math.min(...records.map((r) => r.ttl));
      } else {
        found = (await dns.promises.lookup(o.host, { all: true })).map((r) => ({ host: r.address, port: o.port }));
      }
    } catch (err) {
      this.opts.log('warn', 'proxy: origin name did not resolve', {
        route: this.route,
        host: o.host,
        err: String(err),
      });
    }
    if (found.length > 0) this.setAddresses(found);
    if (this.closed) return;
    const seconds = found.length > 0 ? Math.min(MAX_TTL_SECONDS, Math.max(MIN_TTL_SECONDS, ttl)) : MIN_TTL_SECONDS;
    const t = setTimeout(() => void this.resolve(), seconds * 1000);
    t.unref();
    this.timers.push(t);
    if (this.timers.length > 8) this.timers.splice(0, this.timers.length - 8);
  }

  private async checkAll(): Promise<void> {
    await Promise.all(this.addresses.map((a) => this.check(a)));
  }

  private check(a: PoolAddress): Promise<void> {
    const hc = this.origin.healthCheck;
    if (!hc || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const lib = this.origin.scheme === 'https' ? https : http;
      const req = lib.request({
        host: a.host,
        port: a.port,
        path: hc.path,
        method: 'GET',
        agent: false,
        headers: { host: this.origin.host, 'user-agent': 'keyless-edge-health-check' },
        timeout: hc.timeoutMs,
        ...(this.tls ?? {}),
      });
      const verdict = (ok: boolean, why?: string): void => {
        if (ok !== a.checkOk) {
          this.opts.log(
            ok ? 'info' : 'warn',
            ok ? 'proxy: origin address passes its health check' : 'proxy: origin address fails its health check',
            { route: this.route, address: a.label, reason: why },
          );
          this.opts.events?.health(this.route, a.label, ok);
        }
        a.checkOk = ok;
        if (ok) {
          a.failures = 0;
          a.ejectedUntil = 0;
        }
        resolve();
      };
      req.on('response', (res) => {
        res.resume();
        const s = res.statusCode ?? 0;
        verdict(s >= 200 && s < 400, `status ${s}`);
      });
      req.on('timeout', () => req.destroy(new Error('health check timed out')));
      req.on('error', (err) => verdict(false, String(err)));
      req.end();
    });
  }
}
