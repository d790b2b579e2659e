/**
 * A key-service client over one Lambda function, for tests, the LocalStack suite and the benchmark.
 * The edge itself always goes through `createLambdaTargets` (failover, health, breaker); this is the
 * production `KeyServiceClient` on a single production `LambdaInvokeTarget`, sized as the edge sizes it:
 *
 *   const keys = new LambdaKeyClient({ functionName: 'keyless-key-service', region: 'eu-west-1' });
 *   keys.registerCertificateKey('example.com', certificatePem);
 *   const { signature } = await keys.signTls13CertificateVerify('example.com', 'rsa_pss_rsae_sha256', hash);
 */
import {
  DEFAULT_MAX_IN_FLIGHT,
  DEFAULT_TIMEOUT_MS,
  KeyServiceClient,
  LambdaInvokeTarget,
  type KeyServiceClientOptions,
  type LambdaInvokeTargetOptions,
} from '../../edge-proxy/src/keyless';

export interface LambdaKeyClientOptions
  extends Omit<KeyServiceClientOptions, 'target'>, Omit<LambdaInvokeTargetOptions, 'httpTimeoutMs' | 'maxSockets'> {}

export class LambdaKeyClient extends KeyServiceClient {
  constructor(options: LambdaKeyClientOptions) {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const target = new LambdaInvokeTarget({
      functionName: options.functionName,
      region: options.region,
      endpoint: options.endpoint,
      credentials: options.credentials,
      lambdaClient: options.lambdaClient,
      httpTimeoutMs: timeoutMs,
      maxSockets: options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
    });
    super({ ...options, target, timeoutMs });
  }
}
