/**
 * `kms` custody (docs/architecture.md, "Custody modes", the default): the private key is non-exportable in AWS KMS; signing is
 * KMS `Sign` with MessageType RAW (KMS hashes the ≤ 4096-byte message itself) and the algorithm from
 * SCHEME_TO_KMS_ALGORITHM (KMS PSS uses salt length = hash length, as TLS 1.3 requires).
 *
 * One KMSClient per container (module scope), with a keep-alive HTTP agent and explicit connection
 * and request timeouts. The endpoint and region come from the SDK's standard configuration
 * (AWS_REGION, AWS_ENDPOINT_URL_KMS / AWS_ENDPOINT_URL, shared config files).
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as crypto from 'node:crypto';
import {
  GetPublicKeyCommand,
  KMSClient,
  SignCommand,
  type KMSClientConfig,
  type SigningAlgorithmSpec,
} from '@aws-sdk/client-kms';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { KeyServiceError } from '../../../contract/key-service-errors';
import { mapKmsError } from '../../../contract/kms-errors';
import { timeKmsCall } from '../observability';
import {
  SCHEME_TO_KMS_ALGORITHM,
  keySpecOfKeyObject,
  type KeyDescription,
  type SignatureSchemeName,
} from '../../../contract/key-service-protocol';
import {
  UNKNOWN_KEY_SPEC,
  type Backend,
  type MasterSecretOutput,
  type PublicKeyOutput,
  type SignOutput,
} from './backend';

/** Timeouts of the KMS HTTP client. A KMS Sign normally takes well under 100 ms. */
export const KMS_CONNECTION_TIMEOUT_MS = 1000;
export const KMS_REQUEST_TIMEOUT_MS = 2500;
/** One retry for transient network errors; more would only burn the edge's deadline and KMS quota. */
export const KMS_MAX_ATTEMPTS = 2;
/** How long a fetched public key (and key metadata) is trusted before GetPublicKey is called again. */
export const DEFAULT_PUBLIC_KEY_TTL_MS = 5 * 60 * 1000;

/** A KMSClient with keep-alive agents and explicit timeouts. `overrides` is for tests and tools. */
export function createKmsClient(overrides: KMSClientConfig = {}): KMSClient {
  return new KMSClient({
    maxAttempts: KMS_MAX_ATTEMPTS,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: KMS_CONNECTION_TIMEOUT_MS,
      requestTimeout: KMS_REQUEST_TIMEOUT_MS,
      throwOnRequestTimeout: true,
      httpAgent: new http.Agent({ keepAlive: true, maxSockets: 64 }),
      httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 64 }),
    }),
    ...overrides,
  });
}

let sharedClient: KMSClient | undefined;

/** The container's KMSClient, created on first use (so configuration errors surface per request). */
export function getSharedKmsClient(): KMSClient {
  sharedClient ??= createKmsClient();
  return sharedClient;
}

interface KmsKeyMetadata extends PublicKeyOutput {
  keyUsage: string | undefined;
  signingAlgorithms: readonly string[];
  fetchedAt: number;
}

export interface KmsBackendOptions {
  name: string;
  /** Key id, key ARN, alias/... or alias ARN. */
  keyId: string;
  /** Injected client (tests, tools); defaults to the container's shared client. */
  client?: KMSClient;
  publicKeyTtlMs?: number;
  now?: () => number;
}

export class KmsBackend implements Backend {
  readonly custody = 'kms' as const;
  readonly name: string;
  private readonly keyId: string;
  private readonly explicitClient: KMSClient | undefined;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private cached: KmsKeyMetadata | undefined;
  private inflight: Promise<KmsKeyMetadata> | undefined;

  constructor(options: KmsBackendOptions) {
    this.name = options.name;
    this.keyId = options.keyId;
    this.explicitClient = options.client;
    this.ttlMs = options.publicKeyTtlMs ?? DEFAULT_PUBLIC_KEY_TTL_MS;
    this.now = options.now ?? Date.now;
  }

  private get client(): KMSClient {
    return this.explicitClient ?? getSharedKmsClient();
  }

  describe(): KeyDescription {
    return { name: this.name, custody: this.custody, keySpec: this.cached?.keySpec ?? UNKNOWN_KEY_SPEC };
  }

  async publicKey(): Promise<PublicKeyOutput> {
    const meta = await this.metadata();
    return { spki: Buffer.from(meta.spki), keySpec: meta.keySpec };
  }

  async sign(message: Buffer, scheme: SignatureSchemeName): Promise<SignOutput> {
    const algorithm = SCHEME_TO_KMS_ALGORITHM[scheme];
    const meta = await this.metadata();
    if (meta.keyUsage !== undefined && meta.keyUsage !== 'SIGN_VERIFY') {
      throw new KeyServiceError('unsupported', `KMS key usage is ${safeToken(meta.keyUsage)}, not SIGN_VERIFY`);
    }
    if (meta.signingAlgorithms.length > 0 && !meta.signingAlgorithms.includes(algorithm)) {
      throw new KeyServiceError('unsupported', `KMS key does not support ${algorithm}`);
    }
    const started = process.hrtime.bigint();
    let signature: Uint8Array | undefined;
    try {
      const out = await timeKmsCall('Sign', () =>
        this.client.send(
          new SignCommand({
            KeyId: this.keyId,
            Message: message,
            MessageType: 'RAW',
            SigningAlgorithm: algorithm as SigningAlgorithmSpec,
          }),
        ),
      );
      signature = out.Signature;
    } catch (err) {
      throw mapKmsError(err, 'Sign');
    }
    const backendMs = Number(process.hrtime.bigint() - started) / 1e6;
    if (!signature || signature.length === 0) {
      throw new KeyServiceError('internal', 'KMS Sign returned no signature');
    }
    return { signature: Buffer.from(signature), backendMs };
  }

  /** KMS decrypts RSA only with OAEP (docs/architecture.md, "Facts that shape the design"): TLS 1.2 RSA key exchange needs `sealed` custody. */
  async rsaMasterSecret(): Promise<MasterSecretOutput> {
    throw new KeyServiceError(
      'unsupported',
      'custody "kms" cannot decrypt a TLS 1.2 RSA premaster secret (KMS decrypts only RSAES-OAEP); use "sealed" custody for RSA key exchange',
    );
  }

  /** GetPublicKey, cached for the TTL; concurrent callers share one request; failures are not cached. */
  private async metadata(): Promise<KmsKeyMetadata> {
    const cached = this.cached;
    if (cached && this.now() - cached.fetchedAt < this.ttlMs) return cached;
    this.inflight ??= this.fetchMetadata().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async fetchMetadata(): Promise<KmsKeyMetadata> {
    let out;
    try {
      out = await timeKmsCall('GetPublicKey', () => this.client.send(new GetPublicKeyCommand({ KeyId: this.keyId })));
    } catch (err) {
      throw mapKmsError(err, 'GetPublicKey');
    }
    if (!out.PublicKey || out.PublicKey.length === 0) {
      throw new KeyServiceError('internal', 'KMS GetPublicKey returned no public key');
    }
    const spki = Buffer.from(out.PublicKey);
    let keyObject: crypto.KeyObject;
    try {
      keyObject = crypto.createPublicKey({ key: spki, format: 'der', type: 'spki' });
    } catch {
      throw new KeyServiceError('internal', 'KMS GetPublicKey returned an unparseable public key');
    }
    const derived = keySpecOfKeyObject(keyObject);
    const reported = out.KeySpec;
    if (derived === undefined) {
      throw new KeyServiceError(
        'unsupported',
        `KMS key type ${safeToken(reported ?? 'unknown')} cannot sign TLS handshakes`,
      );
    }
    if (reported !== undefined && reported !== derived) {
      throw new KeyServiceError(
        'internal',
        `KMS reported KeySpec ${safeToken(reported)} but the public key is ${derived}`,
      );
    }
    const meta: KmsKeyMetadata = {
      spki,
      keySpec: derived,
      keyUsage: out.KeyUsage,
      signingAlgorithms: out.SigningAlgorithms ?? [],
      fetchedAt: this.now(),
    };
    this.cached = meta;
    return meta;
  }
}

function safeToken(s: string): string {
  return /^[A-Za-z0-9_]{1,40}$/.test(s) ? s : 'unrecognised';
}
