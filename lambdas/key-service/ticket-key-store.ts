/**
 * Where the fleet's session-ticket keys live between requests (docs/key-service-protocol.md,
 * "Session-ticket keys"): one record per epoch, written once, never overwritten, deleted by the
 * store itself when it expires.
 *
 * Production: SSM Parameter Store, Advanced tier, one String parameter per epoch
 * (`<prefix><epoch>`) holding the KMS ciphertext of the key, with an `Expiration` parameter policy.
 * The conditional create is PutParameter with Overwrite=false: of many Lambda containers that race
 * on a new epoch, one wins and the others get ParameterAlreadyExists and read the winner's key.
 *
 * The store only ever sees ciphertext; ticket-key-envelope.ts encrypts and decrypts.
 */
import {
  DeleteParameterCommand,
  GetParameterCommand,
  PutParameterCommand,
  SSMClient,
  type SSMClientConfig,
} from '@aws-sdk/client-ssm';
import * as http from 'node:http';
import * as https from 'node:https';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { describeAwsFailure } from '../../contract/aws-errors';
import { KeyServiceError } from '../../contract/key-service-errors';

export interface TicketKeyStore {
  /** The stored ciphertext of an epoch's key, or undefined when there is none (never made, or expired). */
  get(epoch: number): Promise<Buffer | undefined>;
  /** Create the epoch's record unless one exists: true when this call created it. Never overwrites. */
  create(epoch: number, ciphertext: Buffer, expiresAtMs: number): Promise<boolean>;
  /** Delete the epoch's record; no error when there is none. */
  delete(epoch: number): Promise<void>;
}

/** SSM parameter names: `/`-separated segments of [A-Za-z0-9_.-], ending in `/` (the epoch follows). */
export const TICKET_PARAMETER_PREFIX_RE = /^\/(?:[A-Za-z0-9_.-]+\/){1,10}$/;

export const SSM_CONNECTION_TIMEOUT_MS = 1000;
export const SSM_REQUEST_TIMEOUT_MS = 2500;

/** An SSMClient with keep-alive agents and explicit timeouts (endpoint from the SDK's standard configuration). */
export function createSsmClient(overrides: SSMClientConfig = {}): SSMClient {
  return new SSMClient({
    maxAttempts: 2,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: SSM_CONNECTION_TIMEOUT_MS,
      requestTimeout: SSM_REQUEST_TIMEOUT_MS,
      throwOnRequestTimeout: true,
      httpAgent: new http.Agent({ keepAlive: true, maxSockets: 16 }),
      httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 16 }),
    }),
    ...overrides,
  });
}

const SSM_ERROR_CODES: Record<string, 'throttled' | 'unavailable'> = {
  ThrottlingException: 'throttled',
  TooManyUpdates: 'throttled',
  InternalServerError: 'unavailable',
};

/** SSM failures → typed errors, naming the operation and exception only (never SSM's message). */
export function mapSsmError(
  err: unknown,
  operation: 'GetParameter' | 'PutParameter' | 'DeleteParameter',
): KeyServiceError {
  if (err instanceof KeyServiceError) return err;
  const { name, unreachable, serverStatus } = describeAwsFailure(err);
  const mapped = SSM_ERROR_CODES[name];
  if (mapped) return new KeyServiceError(mapped, `SSM ${operation} failed: ${name}`, name);
  if (unreachable)
    return new KeyServiceError(
      'unavailable',
      `SSM ${operation} failed: endpoint unreachable (${unreachable})`,
      unreachable,
    );
  if (serverStatus)
    return new KeyServiceError('unavailable', `SSM ${operation} failed: ${name} (HTTP ${serverStatus})`, name);
  return new KeyServiceError('internal', `SSM ${operation} failed: ${name}`, name);
}

/** The Expiration parameter policy: Parameter Store deletes the parameter at this time. */
export function expirationPolicy(expiresAtMs: number): string {
  return JSON.stringify([
    { Type: 'Expiration', Version: '1.0', Attributes: { Timestamp: new Date(expiresAtMs).toISOString() } },
  ]);
}

export interface SsmTicketKeyStoreOptions {
  /** Parameter name prefix, e.g. `/keyless/prod/ticket-keys/`. */
  prefix: string;
  client: SSMClient;
}

export class SsmTicketKeyStore implements TicketKeyStore {
  private readonly prefix: string;
  private readonly client: SSMClient;

  constructor(options: SsmTicketKeyStoreOptions) {
    if (!TICKET_PARAMETER_PREFIX_RE.test(options.prefix)) throw new RangeError('invalid ticket parameter prefix');
    this.prefix = options.prefix;
    this.client = options.client;
  }

  name(epoch: number): string {
    return `${this.prefix}${epoch}`;
  }

  async get(epoch: number): Promise<Buffer | undefined> {
    try {
      const out = await this.client.send(new GetParameterCommand({ Name: this.name(epoch) }));
      const value = out.Parameter?.Value;
      if (typeof value !== 'string' || value.length === 0)
        throw new KeyServiceError('internal', 'SSM GetParameter returned no value');
      return Buffer.from(value, 'base64');
    } catch (err) {
      if (describeAwsFailure(err).name === 'ParameterNotFound') return undefined;
      throw mapSsmError(err, 'GetParameter');
    }
  }

  async create(epoch: number, ciphertext: Buffer, expiresAtMs: number): Promise<boolean> {
    try {
      await this.client.send(
        new PutParameterCommand({
          Name: this.name(epoch),
          Description: `keyless session-ticket key, epoch ${epoch} (KMS ciphertext)`,
          Value: ciphertext.toString('base64'),
          Type: 'String',
          Tier: 'Advanced',
          Overwrite: false,
          Policies: expirationPolicy(expiresAtMs),
        }),
      );
      return true;
    } catch (err) {
      if (describeAwsFailure(err).name === 'ParameterAlreadyExists') return false;
      throw mapSsmError(err, 'PutParameter');
    }
  }

  async delete(epoch: number): Promise<void> {
    try {
      await this.client.send(new DeleteParameterCommand({ Name: this.name(epoch) }));
    } catch (err) {
      if (describeAwsFailure(err).name === 'ParameterNotFound') return;
      throw mapSsmError(err, 'DeleteParameter');
    }
  }
}

/**
 * In-memory store with the same semantics (conditional create, expiry that deletes) for tests and
 * tools. Instances created with the same `shared` map behave like one Parameter Store seen by many
 * containers.
 */
export class MemoryTicketKeyStore implements TicketKeyStore {
  constructor(
    readonly records: Map<number, { ciphertext: Buffer; expiresAtMs: number }> = new Map(),
    private readonly now: () => number = Date.now,
  ) {}

  get(epoch: number): Promise<Buffer | undefined> {
    this.expire();
    const r = this.records.get(epoch);
    return Promise.resolve(r ? Buffer.from(r.ciphertext) : undefined);
  }

  create(epoch: number, ciphertext: Buffer, expiresAtMs: number): Promise<boolean> {
    this.expire();
    if (this.records.has(epoch)) return Promise.resolve(false);
    this.records.set(epoch, { ciphertext: Buffer.from(ciphertext), expiresAtMs });
    return Promise.resolve(true);
  }

  delete(epoch: number): Promise<void> {
    this.records.delete(epoch);
    return Promise.resolve();
  }

  private expire(): void {
    const now = this.now();
    for (const [e, r] of this.records) if (r.expiresAtMs <= now) this.records.delete(e);
  }
}
