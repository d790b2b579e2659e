/**
 * What /healthz reports: healthy while at least one key service answers `ping` (each pinged
 * directly, whatever its breaker). The pings also tell which custody each key has.
 */
import type { EdgeConfig } from '../config';
import type { FailoverTarget, TargetPing, TargetStatus } from '../keyless/failover-target';
import type { KeyDescription } from '../../../contract/key-service-protocol';
import type { RouteStatus } from '../proxy/routing';
import type { CertificateStore } from '../tls/certificates';
import { applyCustody } from './certificates';

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

/** What the health report reads from the rest of the edge. */
export interface HealthSources {
  failover: FailoverTarget;
  certificates: CertificateStore;
  connections(): number;
  draining(): boolean;
  origins(): RouteStatus[];
}

export interface EdgeHealthMonitor {
  /** The last pings' verdict, without pinging. */
  report(): EdgeHealth;
  /** Pings every key service now (and applies the custody they report to the served certificates). */
  check(): Promise<EdgeHealth>;
  /** The keys the first reachable key service described in the last pings. */
  describedKeys(): readonly KeyDescription[] | undefined;
  /** Pings now (resolves after this first round), then every few seconds until `stop()`. */
  start(): Promise<void>;
  stop(): void;
}

/** How often the key services are pinged between /healthz requests. */
const HEALTH_CHECK_INTERVAL_MS = 10_000;

export function createHealthMonitor(config: EdgeConfig, sources: HealthSources): EdgeHealthMonitor {
  let pings: TargetPing[] = [];
  const describedKeys = (): readonly KeyDescription[] | undefined => pings.find((p) => p.reachable && p.keys)?.keys;
  const report = (): EdgeHealth => {
    const ok = pings.some((p) => p.reachable);
    return {
      ok,
      keyService: ok ? 'reachable' : 'unreachable',
      connections: sources.connections(),
      ...(sources.draining() ? { draining: true } : {}),
      runtime: `node/${process.versions.node}`,
      keyServices: sources.failover.status().map((s) => {
        const p = pings.find((x) => x.name === s.name);
        return { ...s, reachable: p?.reachable, error: p?.error };
      }),
      // An origin that is down must not make the load balancer recycle edges: reported, not judged.
      origins: sources.origins(),
    };
  };
  const check = async (): Promise<EdgeHealth> => {
    pings = await sources.failover.pingTargets(config.keyOperationTimeoutMs);
    const keys = describedKeys();
    if (keys) applyCustody([...sources.certificates.all], keys);
    return report();
  };
  let timer: NodeJS.Timeout | undefined;
  return {
    report,
    check,
    describedKeys,
    async start() {
      await check();
      timer = setInterval(() => void check(), HEALTH_CHECK_INTERVAL_MS).unref();
    },
    stop: () => clearInterval(timer),
  };
}
