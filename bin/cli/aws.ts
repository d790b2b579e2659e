/**
 * AWS SDK clients for the `keyless` command line. Configuration follows the SDK's own rules, so the
 * same command works against AWS, LocalStack and the local stack:
 *
 *  - region: `--region`, else AWS_REGION / AWS_DEFAULT_REGION / the profile's region;
 *  - credentials: `--profile` (sets AWS_PROFILE for this process, honoured by every SDK client
 *    version we use — client-acm-pca 3.523 has no per-client `profile` option), else the default
 *    provider chain;
 *  - endpoints: the SDK's per-service variables (AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL_SSM,
 *    AWS_ENDPOINT_URL_ACM_PCA, AWS_ENDPOINT_URL_LAMBDA, AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING) or
 *    AWS_ENDPOINT_URL (LocalStack);
 *  - `--local`: the endpoints of the running local stack (`npm start`), read from its state file,
 *    with dummy credentials (the local endpoints accept any).
 *
 * Every client has connect/request timeouts, so an unreachable endpoint fails with exit code 69
 * instead of hanging the command.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { ACMPCAClient } from '@aws-sdk/client-acm-pca';
import { ApplicationAutoScalingClient } from '@aws-sdk/client-application-auto-scaling';
import { KMSClient } from '@aws-sdk/client-kms';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { SSMClient } from '@aws-sdk/client-ssm';
import { NodeHttpHandler } from '@smithy/node-http-handler';

export interface LocalEndpoints {
  kmsUrl: string;
  /** The local Lambda endpoint serving the key service. */
  keyServiceUrl?: string;
  region: string;
}

export interface AwsClientOptions {
  region?: string;
  profile?: string;
  /** Talk to the local stack instead of AWS. */
  local?: LocalEndpoints;
  /** Per-request timeout (default 30 s; a waiter's total wait is separate). */
  requestTimeoutMs?: number;
}

const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

function requestHandler(timeoutMs: number): NodeHttpHandler {
  return new NodeHttpHandler({
    connectionTimeout: 5000,
    requestTimeout: timeoutMs,
    throwOnRequestTimeout: true,
    httpAgent: new http.Agent({ keepAlive: true, maxSockets: 16 }),
    httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 16 }),
  });
}

/** Lazily created clients sharing one configuration; `destroy()` closes the ones created. */
export class AwsClients {
  private readonly options: AwsClientOptions;
  private kmsClient?: KMSClient;
  private ssmClient?: SSMClient;
  private pcaClient?: ACMPCAClient;
  private lambdaClient?: LambdaClient;
  private scalingClient?: ApplicationAutoScalingClient;
  private readonly regionalKms = new Map<string, KMSClient>();

  constructor(options: AwsClientOptions = {}) {
    this.options = options;
    if (options.profile && !options.local) process.env.AWS_PROFILE = options.profile;
  }

  private common(endpoint: string | undefined): {
    region?: string;
    endpoint?: string;
    credentials?: typeof LOCAL_CREDENTIALS;
    requestHandler: NodeHttpHandler;
    maxAttempts: number;
  } {
    const local = this.options.local;
    return {
      region: local ? local.region : this.options.region,
      endpoint: local ? endpoint : undefined,
      credentials: local ? LOCAL_CREDENTIALS : undefined,
      requestHandler: requestHandler(this.options.requestTimeoutMs ?? 30_000),
      maxAttempts: 3,
    };
  }

  get kms(): KMSClient {
    return (this.kmsClient ??= new KMSClient(this.common(this.options.local?.kmsUrl)));
  }

  /** KMS in another region of the same account (multi-Region keys: replicas and their aliases). */
  kmsIn(region: string): KMSClient {
    let c = this.regionalKms.get(region);
    if (!c) {
      c = new KMSClient({ ...this.common(this.options.local?.kmsUrl), region });
      this.regionalKms.set(region, c);
    }
    return c;
  }

  get ssm(): SSMClient {
    return (this.ssmClient ??= new SSMClient(this.common(undefined)));
  }

  get acmPca(): ACMPCAClient {
    return (this.pcaClient ??= new ACMPCAClient(this.common(undefined)));
  }

  get lambda(): LambdaClient {
    return (this.lambdaClient ??= new LambdaClient(this.common(this.options.local?.keyServiceUrl)));
  }

  /** The edge fleet's scalable target (`keyless fleet`); the local stack has none. */
  get applicationAutoScaling(): ApplicationAutoScalingClient {
    return (this.scalingClient ??= new ApplicationAutoScalingClient(this.common(undefined)));
  }

  destroy(): void {
    for (const c of [
      this.kmsClient,
      this.ssmClient,
      this.pcaClient,
      this.lambdaClient,
      this.scalingClient,
      ...this.regionalKms.values(),
    ])
      c?.destroy();
  }
}
