/**
 * The edge's one private-key operation per full handshake: admission control (the fleet's KMS
 * budget) in front of a key-service client whose Lambda targets are tried in failover order, each
 * with its health record and circuit breaker (docs/architecture.md).
 */
import type { EdgeConfig } from '../config';
import { AdmissionController } from '../keyless/admission';
import { FailoverTarget } from '../keyless/failover-target';
import type { KeyOperations } from '../tls/key-operations';
import { KeyServiceClient } from '../keyless/key-service-client';
import { createLambdaTargets } from '../keyless/lambda-targets';
import type { Logger } from '../observability/log';
import type { ServerCertificate } from '../tls/certificates';
import type { EdgeFigures } from './metrics';

export interface EdgeKeyOperations {
  /** The key-service client (the TLS engine uses it through `failover.trackOperations`). */
  keys: KeyServiceClient;
  /** The configured key services in failover order, with their breakers and health. */
  failover: FailoverTarget;
  admission: AdmissionController;
  /** Every operation, its outcome recorded in the key services' health (ticket keys too). */
  tracked: KeyOperations;
  /** What the TLS engine calls: `tracked` behind admission control. */
  admitted: KeyOperations;
}

export function assembleKeyOperations(
  config: EdgeConfig,
  log: Logger,
  figures: EdgeFigures,
  certs: readonly ServerCertificate[],
): EdgeKeyOperations {
  const admission = createAdmission(config, log, figures);
  const failover = createFailover(config, log, figures);
  const keys = new KeyServiceClient({
    target: failover,
    timeoutMs: config.keyOperationTimeoutMs,
    maxInFlight: config.maxKeyOperationsInFlight,
    // Only keys of certificates we serve may be used, and every signature is verified against
    // that certificate's public key before it reaches the wire.
    fetchUnregisteredKeys: false,
  });
  for (const c of certs) keys.registerCertificateKey(c.keyName, c.publicKey);
  const tracked = failover.trackOperations(keys);
  return { keys, failover, admission, tracked, admitted: admission.wrap(tracked) };
}

function createAdmission(config: EdgeConfig, log: Logger, figures: EdgeFigures): AdmissionController {
  const admission = new AdmissionController(config.admission, {
    onReject: (reason, remote) => {
      figures.edge.admissionRejected(reason);
      log.log('debug', 'full handshake refused', { remote, reason });
    },
  });
  figures.edge.admissionPending.collect = (g) => g.set({}, admission.pending);
  return admission;
}

/**
 * One Lambda target per configured key service, in failover order, behind one deadline per
 * operation: at most one retry, health per key service, a circuit breaker each.
 */
function createFailover(config: EdgeConfig, log: Logger, figures: EdgeFigures): FailoverTarget {
  return new FailoverTarget({
    targets: createLambdaTargets(config.keyServices, {
      deadlineMs: config.keyOperationTimeoutMs,
      connectTimeoutMs: config.keyServiceConnectTimeoutMs,
      maxSockets: config.maxKeyOperationsInFlight,
    }),
    breaker: config.circuitBreaker,
    // Unhealthy: mostly failing, or slower than half the deadline. A key service avoided for that is
    // tried again after about one breaker cool-down (the health record's half-life).
    health: { slowMs: config.keyOperationTimeoutMs / 2, halfLifeMs: config.circuitBreaker.cooldownMs },
    metrics: figures.keyClient,
    onEvent: (e) => {
      if (e.type === 'breaker')
        log.log(e.to === 'closed' ? 'info' : 'warn', 'key service circuit breaker', {
          component: 'keyless',
          keyService: e.target,
          from: e.from,
          to: e.to,
        });
      else
        log.log(e.reason === 'health' ? 'warn' : 'info', 'key service failover', {
          component: 'keyless',
          from: e.from,
          to: e.to,
          reason: e.reason,
        });
    },
  });
}
