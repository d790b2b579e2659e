/**
 * The edge side of the certificate store: the jittered refresh timer, the check of `staged` entries
 * (is the key known to the key service, and is its public key the certificate's?) and the metrics
 * operators and `keyless rotate promote` look at:
 *
 *   keyless_edge_certificates{state}                       certificates held now: live | retiring |
 *       staged | not_valid (live/retiring outside their validity period: never served)
 *   keyless_edge_certificate_refresh_failures_total{trigger}  store reads that failed (the last good
 *       set stays in service): timer | sighup
 *   keyless_edge_staged_certificate_check{key_name,result}  1 for the latest check result of each staged
 *       key name (0 for its other results): ok | key_mismatch | unknown_key | unavailable | invalid
 */
import * as crypto from 'node:crypto';
import type { Counter, Gauge, MetricsRegistry } from '../observability/metrics-registry';
import { isServable, loadCertificate, type ServerCertificate } from '../tls/certificates';
import type { StoredCertificate } from '../../../contract/certificate-store-entry';

export const STAGED_CHECK_RESULTS = ['ok', 'key_mismatch', 'unknown_key', 'unavailable', 'invalid'] as const;
export type StagedCheckResult = (typeof STAGED_CHECK_RESULTS)[number];

export interface StagedCheck {
  keyName: string;
  id: string;
  result: StagedCheckResult;
  /** Why, for logs (never key material). */
  detail?: string;
}

/** Fraction of the refresh interval each timer tick may move either way (±20 %). */
export const REFRESH_JITTER = 0.2;

/** The delay before the next refresh: `seconds` ± 20 %, so a fleet started together does not read the store in lockstep. */
export function jitteredDelayMs(seconds: number, random: () => number = Math.random): number {
  return Math.round(seconds * 1000 * (1 - REFRESH_JITTER + 2 * REFRESH_JITTER * random()));
}

/**
 * Calls `tick` after a jittered delay, again after it settles, until stopped. The timer is unref'd
 * (it never keeps the process alive) and never runs two ticks at once.
 */
export function startJitteredTimer(seconds: number, tick: () => Promise<unknown>): { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      tick()
        .catch(() => undefined)
        .finally(schedule);
    }, jitteredDelayMs(seconds));
    timer.unref();
  };
  schedule();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

/** Public-key lookup at the key service (`public_key`), as the edge's key-service client offers it. */
export type PublicKeyLookup = (keyName: string) => Promise<{ spki: Buffer }>;

/**
 * Checks staged entries before anyone promotes them: the chain parses, the key service knows the key
 * name, and the key's public key is the leaf's. A failure is reported, never thrown: a bad staged
 * entry must not disturb what is being served.
 */
export async function checkStagedEntries(
  entries: readonly StoredCertificate[],
  publicKey: PublicKeyLookup,
): Promise<StagedCheck[]> {
  return Promise.all(
    entries.map(async (e): Promise<StagedCheck> => {
      let cert: ServerCertificate;
      try {
        cert = loadCertificate(e.chainPem, e.keyName, e.hostnames);
      } catch (err) {
        return { keyName: e.keyName, id: e.id, result: 'invalid', detail: (err as Error).message };
      }
      let spki: Buffer;
      try {
        spki = (await publicKey(e.keyName)).spki;
      } catch (err) {
        const code = (err as { code?: string }).code;
        return {
          keyName: e.keyName,
          id: e.id,
          result: code === 'unknown_key' ? 'unknown_key' : 'unavailable',
          detail: (err as Error).message,
        };
      }
      const leafSpki = cert.publicKey.export({ type: 'spki', format: 'der' });
      if (!crypto.timingSafeEqual(sha256(leafSpki), sha256(spki))) {
        return {
          keyName: e.keyName,
          id: e.id,
          result: 'key_mismatch',
          detail: 'the key service holds a different public key for this key name than the certificate',
        };
      }
      return { keyName: e.keyName, id: e.id, result: 'ok' };
    }),
  );
}

function sha256(b: Buffer): Buffer {
  return crypto.createHash('sha256').update(b).digest();
}

export class CertificateStoreMetrics {
  readonly certificates: Gauge<'state'>;
  readonly refreshFailures: Counter<'trigger'>;
  readonly stagedChecks: Gauge<'key_name' | 'result'>;
  private readonly seenStaged = new Set<string>();

  constructor(registry: MetricsRegistry) {
    this.certificates = registry.gauge(
      'keyless_edge_certificates',
      'Certificates this edge holds now, by state (not_valid: live or retiring but outside their validity period, never served).',
      ['state'],
    );
    this.refreshFailures = registry.counter(
      'keyless_edge_certificate_refresh_failures_total',
      'Certificate store reads that failed (the last good set stays in service), by trigger: timer or sighup.',
      ['trigger'],
    );
    this.stagedChecks = registry.gauge(
      'keyless_edge_staged_certificate_check',
      'Latest check of each staged certificate: 1 for its result (ok, key_mismatch, unknown_key, unavailable, invalid), 0 for the others.',
      ['key_name', 'result'],
    );
  }

  /** Reads the counts from `current()` at every scrape, so certificates expiring in service show up. */
  trackCertificates(current: () => { served: readonly ServerCertificate[]; staged: number }): void {
    this.certificates.collect = (g) => {
      const { served, staged } = current();
      const now = Date.now();
      const counts = { live: 0, retiring: 0, staged, not_valid: 0 };
      for (const c of served) {
        if (!isServable(c, now)) counts.not_valid++;
        else counts[c.state === 'retiring' ? 'retiring' : 'live']++;
      }
      for (const [state, n] of Object.entries(counts)) g.set({ state }, n);
    };
  }

  recordStagedChecks(checks: readonly StagedCheck[]): void {
    const current = new Set(checks.map((c) => c.keyName));
    // Key names no longer staged (promoted or removed) drop to 0 on every result.
    for (const name of this.seenStaged) {
      if (current.has(name)) continue;
      for (const result of STAGED_CHECK_RESULTS) this.stagedChecks.set({ key_name: name, result }, 0);
      this.seenStaged.delete(name);
    }
    for (const c of checks) {
      this.seenStaged.add(c.keyName);
      for (const result of STAGED_CHECK_RESULTS)
        this.stagedChecks.set({ key_name: c.keyName, result }, result === c.result ? 1 : 0);
    }
  }
}
