/**
 * Staged store entries are checked (key known to the key service, same public key as the leaf)
 * after every load, so `keyless rotate promote` can see that the fleet is ready; they are never
 * served. A result is logged when it changes.
 */
import type { StoredCertificate } from '../cert-store';
import { checkStagedEntries, type CertificateStoreMetrics } from '../cert-store/edge-refresh';
import type { KeyServiceClient } from '../keyless/key-service-client';
import type { Logger } from '../observability/log';

/** Checks in the background; a failure is logged, never thrown. */
export type StagedChecker = (staged: readonly StoredCertificate[]) => void;

export function stagedChecker(keys: KeyServiceClient, metrics: CertificateStoreMetrics, log: Logger): StagedChecker {
  const stagedResults = new Map<string, string>();
  const checkStaged = async (staged: readonly StoredCertificate[]): Promise<void> => {
    const checks = await checkStagedEntries(staged, (name) => keys.publicKey(name));
    metrics.recordStagedChecks(checks);
    for (const c of checks) {
      if (stagedResults.get(c.keyName) === c.result) continue;
      stagedResults.set(c.keyName, c.result);
      log.log(c.result === 'ok' ? 'info' : 'warn', 'staged certificate checked', {
        keyName: c.keyName,
        entry: c.id,
        result: c.result,
        detail: c.detail,
      });
    }
    for (const name of [...stagedResults.keys()])
      if (!checks.some((c) => c.keyName === name)) stagedResults.delete(name);
  };
  return (staged) =>
    void checkStaged(staged).catch((e: unknown) =>
      log.log('warn', 'staged certificate check failed', { error: (e as Error).message }),
    );
}
