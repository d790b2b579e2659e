/**
 * Reloading the served certificates (SIGHUP with a re-read configuration, or the certificate store's
 * refresh timer with the last good one): new handshakes use the new set, established connections
 * are untouched, and a failed read keeps the last good set in service, never an empty one.
 */
import { CertificateStoreMetrics, startJitteredTimer } from '../cert-store/edge-refresh';
import type { EdgeConfig } from '../config';
import type { KeyServiceClient } from '../keyless/key-service-client';
import type { KeyDescription } from '../../../contract/key-service-protocol';
import type { EdgeMetrics } from '../observability/edge-metrics';
import type { Logger } from '../observability/log';
import type { MetricsRegistry } from '../observability/metrics-registry';
import type { ServerCertificate } from '../tls/certificates';
import {
  applyCustody,
  loadCertificateSet,
  setFingerprint,
  type CertificateSet,
  type CertificateSources,
} from './certificates';
import type { ReloadableCertificateStore } from './certificate-stores';
import { stagedChecker } from './staged-checks';

export type ReloadTrigger = 'sighup' | 'timer';

export interface CertificateReloader {
  reload(next?: EdgeConfig, trigger?: ReloadTrigger): Promise<ServerCertificate[]>;
  stop(): void;
}

export interface ReloadTargets {
  store: ReloadableCertificateStore;
  keys: KeyServiceClient;
  /** The keys the key service last described (their custody decides RSA key exchange). */
  describedKeys(): readonly KeyDescription[] | undefined;
}

/** Checks the initial set's staged entries and starts the store's refresh timer (if there is a store). */
export function startCertificateReloader(
  config: EdgeConfig,
  initialSet: CertificateSet,
  targets: ReloadTargets,
  observed: { registry: MetricsRegistry; edge: EdgeMetrics; log: Logger },
  sources: CertificateSources,
): CertificateReloader {
  const { store, keys } = targets;
  const { edge: edgeMetrics, log } = observed;
  const storeMetrics = new CertificateStoreMetrics(observed.registry);
  let stagedCount = initialSet.staged.length;
  storeMetrics.trackCertificates(() => ({ served: store.all, staged: stagedCount }));
  const checkStaged = stagedChecker(keys, storeMetrics, log);
  checkStaged(initialSet.staged);

  // Serialised: each reload starts after the previous one settled.
  let currentConfig = config;
  let lastFingerprint = setFingerprint(initialSet);
  let reloading: Promise<ServerCertificate[]> = Promise.resolve([]);
  const reload = (next?: EdgeConfig, trigger: ReloadTrigger = 'sighup'): Promise<ServerCertificate[]> => {
    reloading = reloading
      .catch(() => [])
      .then(async () => {
        const cfg = next ?? currentConfig;
        try {
          const set = await loadCertificateSet(cfg, sources);
          const fresh = set.served;
          for (const c of fresh) keys.registerCertificateKey(c.keyName, c.publicKey);
          const described = targets.describedKeys();
          if (described) applyCustody(fresh, described);
          store.replace(fresh);
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
          checkStaged(set.staged);
          return fresh;
        } catch (e) {
          if (trigger === 'sighup') edgeMetrics.certificateReloads.inc({ result: 'error' });
          storeMetrics.refreshFailures.inc({ trigger });
          log.log('error', 'certificate reload failed; still serving the previous certificates', {
            trigger,
            error: (e as Error).message,
          });
          throw e;
        }
      });
    return reloading;
  };
  const refreshTimer = config.certificateStore
    ? startJitteredTimer(config.certificateStore.refreshSeconds, () => reload(undefined, 'timer'))
    : undefined;
  return { reload, stop: () => refreshTimer?.stop() };
}
