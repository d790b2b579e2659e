/**
 * Fleet-wide session-ticket keys with forward secrecy (docs/key-service-protocol.md, "Session-ticket
 * keys"). Every edge gets the same keys for the same epoch, and each epoch's key is random and
 * ceases to exist after its retention:
 *
 *   epoch          = floor(unix_seconds / epochSeconds)
 *   key(epoch)     = 32 bytes from the CSPRNG, made by the first container that needs it, stored
 *                    as KMS ciphertext in the ticket-key store (conditional create: the loser of a
 *                    race reads the winner's key)
 *   accepted       = the current epoch and the epochsAccepted - 1 before it
 *   deleted at     = (epoch + epochsAccepted) × epochSeconds + TICKET_KEY_GRACE_SECONDS
 *
 * Nothing derives a key: no long-lived secret can bring back an epoch whose record the store has
 * deleted. Keys are cached per epoch in the container only while they are accepted.
 *
 * Environment: KEYLESS_TICKET_KEY_ID (the symmetric KMS key of the envelope),
 * KEYLESS_TICKET_PARAMETER_PREFIX (SSM parameter names, e.g. /keyless/prod/ticket-keys/),
 * KEYLESS_DEPLOYMENT (named in the encryption context), KEYLESS_TICKET_EPOCH_SECONDS (default 3600,
 * 60..604800) and KEYLESS_TICKET_EPOCHS_ACCEPTED (default 2, 2..8). Without the key id and prefix,
 * `ticket_keys` answers `unavailable`.
 */
import * as crypto from 'node:crypto';
import { ConfigError, KeyServiceError } from '../../contract/key-service-errors';
import { MAX_TICKET_EPOCHS_ACCEPTED, TICKET_KEY_LENGTH } from '../../contract/key-service-protocol';
import { KmsTicketKeyEnvelope, type TicketKeyEnvelope } from './ticket-key-envelope';
import {
  createSsmClient,
  SsmTicketKeyStore,
  TICKET_PARAMETER_PREFIX_RE,
  type TicketKeyStore,
} from './ticket-key-store';
import type { KMSClient } from '@aws-sdk/client-kms';

export const TICKET_KEY_ENV_VAR = 'KEYLESS_TICKET_KEY_ID';
export const TICKET_PARAMETER_PREFIX_ENV_VAR = 'KEYLESS_TICKET_PARAMETER_PREFIX';
export const TICKET_EPOCH_ENV_VAR = 'KEYLESS_TICKET_EPOCH_SECONDS';
export const TICKET_EPOCHS_ACCEPTED_ENV_VAR = 'KEYLESS_TICKET_EPOCHS_ACCEPTED';
export const DEPLOYMENT_ENV_VAR = 'KEYLESS_DEPLOYMENT';
/** The variable of the removed GenerateMac derivation: refused, so a stale deployment says what to change. */
export const REMOVED_TICKET_MAC_ENV_VAR = 'KEYLESS_TICKET_MAC_KEY_ID';

export const DEFAULT_TICKET_EPOCH_SECONDS = 3600;
export const MIN_TICKET_EPOCH_SECONDS = 60;
export const MAX_TICKET_EPOCH_SECONDS = 7 * 24 * 3600;
export const DEFAULT_TICKET_EPOCHS_ACCEPTED = 2;
export const MIN_TICKET_EPOCHS_ACCEPTED = 2;
export { MAX_TICKET_EPOCHS_ACCEPTED };
/**
 * How long a key outlives its last accepting epoch in the store: covers clock skew between
 * containers and edges and the edges' refresh just after a boundary. At most the shortest epoch, so
 * the container that creates epoch E may sweep epoch E - epochsAccepted - 1.
 */
export const TICKET_KEY_GRACE_SECONDS = 60;

export function epochOf(unixMs: number, epochSeconds: number): number {
  return Math.floor(unixMs / 1000 / epochSeconds);
}

/** The retention of ticket keys: what the edges accept and when the store deletes a key. */
export interface TicketRetention {
  epochSeconds: number;
  epochsAccepted: number;
}

/** End of the last epoch in which a ticket sealed under `epoch` is accepted (unix ms). */
export function acceptedUntilMs(epoch: number, r: TicketRetention): number {
  return (epoch + r.epochsAccepted) * r.epochSeconds * 1000;
}

/** When the store deletes the key of `epoch` (unix ms). */
export function keyExpiresAtMs(epoch: number, r: TicketRetention): number {
  return acceptedUntilMs(epoch, r) + TICKET_KEY_GRACE_SECONDS * 1000;
}

export interface EpochKey {
  epoch: number;
  key: Buffer;
}

export interface TicketKeysValue {
  epochSeconds: number;
  /** Default 2: current and previous. */
  epochsAccepted?: number;
  current: EpochKey;
  previous: EpochKey;
  /** Epochs current-2 .. current-(epochsAccepted-1), newest first; absent or empty with two epochs accepted. */
  older?: EpochKey[];
}

export interface TicketKeySource {
  readonly epochSeconds: number;
  /** The keys of every accepted epoch. Throws KeyServiceError. */
  get(): Promise<TicketKeysValue & { backendMs: number }>;
}

export interface TicketKeysConfig extends TicketRetention {
  /** Symmetric KMS key of the envelope. */
  keyId: string;
  /** SSM parameter name prefix; the epoch number follows it. */
  parameterPrefix: string;
  deployment: string;
}

/** Read the ticket-key configuration; undefined when it is not configured. Throws ConfigError naming the variable. */
export function loadTicketKeysConfigFromEnv(env: NodeJS.ProcessEnv = process.env): TicketKeysConfig | undefined {
  if (env[REMOVED_TICKET_MAC_ENV_VAR]?.trim()) {
    throw new ConfigError(
      `${REMOVED_TICKET_MAC_ENV_VAR}: ticket keys are no longer derived from a KMS HMAC key; remove it and set ${TICKET_KEY_ENV_VAR} and ${TICKET_PARAMETER_PREFIX_ENV_VAR} (docs/key-service-protocol.md)`,
    );
  }
  const keyId = env[TICKET_KEY_ENV_VAR]?.trim();
  const parameterPrefix = env[TICKET_PARAMETER_PREFIX_ENV_VAR]?.trim();
  if (!keyId && !parameterPrefix) return undefined;
  if (!keyId)
    throw new ConfigError(
      `${TICKET_KEY_ENV_VAR}: not set (the symmetric KMS key that encrypts stored ticket keys); ${TICKET_PARAMETER_PREFIX_ENV_VAR} needs it`,
    );
  if (!parameterPrefix)
    throw new ConfigError(
      `${TICKET_PARAMETER_PREFIX_ENV_VAR}: not set (SSM parameter prefix such as /keyless/prod/ticket-keys/); ${TICKET_KEY_ENV_VAR} needs it`,
    );
  if (keyId.length > 2048 || /\s/.test(keyId))
    throw new ConfigError(`${TICKET_KEY_ENV_VAR}: not a valid KMS key identifier`);
  if (!TICKET_PARAMETER_PREFIX_RE.test(parameterPrefix) || /^\/(aws|ssm)/i.test(parameterPrefix)) {
    throw new ConfigError(
      `${TICKET_PARAMETER_PREFIX_ENV_VAR}: expected a parameter path ending in "/", such as /keyless/prod/ticket-keys/ (segments of [A-Za-z0-9_.-], not under /aws or /ssm)`,
    );
  }
  const deployment = env[DEPLOYMENT_ENV_VAR]?.trim();
  if (!deployment || !/^[A-Za-z0-9_-]{1,64}$/.test(deployment)) {
    throw new ConfigError(
      `${DEPLOYMENT_ENV_VAR}: set it to the deployment name (1..64 of [A-Za-z0-9_-]); ticket keys are encrypted under it`,
    );
  }
  const epochSeconds = boundedInteger(
    env,
    TICKET_EPOCH_ENV_VAR,
    DEFAULT_TICKET_EPOCH_SECONDS,
    MIN_TICKET_EPOCH_SECONDS,
    MAX_TICKET_EPOCH_SECONDS,
    'seconds',
  );
  const epochsAccepted = boundedInteger(
    env,
    TICKET_EPOCHS_ACCEPTED_ENV_VAR,
    DEFAULT_TICKET_EPOCHS_ACCEPTED,
    MIN_TICKET_EPOCHS_ACCEPTED,
    MAX_TICKET_EPOCHS_ACCEPTED,
    'epochs',
  );
  return { keyId, parameterPrefix, deployment, epochSeconds, epochsAccepted };
}

function boundedInteger(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: number,
  min: number,
  max: number,
  unit: string,
): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  if (!/^\d{1,7}$/.test(raw)) throw new ConfigError(`${name}: expected an integer number of ${unit}`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(`${name}: must be ${min}..${max} ${unit}`);
  return n;
}

export interface StoredTicketKeysOptions extends TicketRetention {
  store: TicketKeyStore;
  envelope: TicketKeyEnvelope;
  /** Clock (ms since the epoch), for tests. */
  now?: () => number;
}

/** Random per-epoch ticket keys, kept encrypted in a store that deletes them after retention. */
export class StoredTicketKeys implements TicketKeySource {
  readonly epochSeconds: number;
  readonly epochsAccepted: number;
  private readonly store: TicketKeyStore;
  private readonly envelope: TicketKeyEnvelope;
  private readonly now: () => number;
  /** epoch → key (or the pending read/create); only accepted epochs are kept. */
  private readonly cache = new Map<number, Promise<Buffer | undefined>>();

  constructor(options: StoredTicketKeysOptions) {
    this.epochSeconds = options.epochSeconds;
    this.epochsAccepted = options.epochsAccepted;
    this.store = options.store;
    this.envelope = options.envelope;
    this.now = options.now ?? Date.now;
  }

  async get(): Promise<TicketKeysValue & { backendMs: number }> {
    const started = process.hrtime.bigint();
    const epoch = epochOf(this.now(), this.epochSeconds);
    if (epoch < this.epochsAccepted) throw new KeyServiceError('internal', 'clock before the first ticket epochs');
    this.prune(epoch);
    const epochs = Array.from({ length: this.epochsAccepted }, (_, i) => epoch - i);
    const keys = await Promise.all(epochs.map((e, i) => this.key(e, i === 0)));
    const [current, previous, ...older] = keys.map((key, i): EpochKey => ({
      epoch: epochs[i],
      key: key ? Buffer.from(key) : placeholderKey(),
    }));
    return {
      epochSeconds: this.epochSeconds,
      epochsAccepted: this.epochsAccepted,
      current,
      previous,
      older,
      backendMs: Number(process.hrtime.bigint() - started) / 1e6,
    };
  }

  /** The key of an accepted epoch: cached, or read from the store, or (current epoch only) created. */
  private key(epoch: number, create: boolean): Promise<Buffer | undefined> {
    let p = this.cache.get(epoch);
    if (!p) {
      p = this.readOrCreate(epoch, create);
      this.cache.set(epoch, p);
      const forget = () => {
        if (this.cache.get(epoch) === p) this.cache.delete(epoch);
      };
      // Failures are not cached, and neither is "not there yet" (another container may create it).
      p.then((k) => k ?? forget(), forget);
    }
    return p;
  }

  private async readOrCreate(epoch: number, create: boolean): Promise<Buffer | undefined> {
    // Defence in depth: never read, let alone make, a key past its retention.
    if (this.now() >= acceptedUntilMs(epoch, this)) return undefined;
    const stored = await this.store.get(epoch);
    if (stored) return this.envelope.open(epoch, stored);
    if (!create) return undefined;
    const key = crypto.randomBytes(TICKET_KEY_LENGTH);
    const ciphertext = await this.envelope.seal(epoch, key);
    if (await this.store.create(epoch, ciphertext, keyExpiresAtMs(epoch, this))) {
      await this.sweep(epoch);
      return key;
    }
    // Another container created this epoch first: use its key.
    key.fill(0);
    const winner = await this.store.get(epoch);
    if (!winner)
      throw new KeyServiceError(
        'unavailable',
        'the ticket key of the current epoch could not be read after a concurrent create',
      );
    return this.envelope.open(epoch, winner);
  }

  /**
   * The creator of a new epoch deletes the two epochs whose retention has certainly ended, in case
   * the store's own expiry runs late. Best effort: the store's expiry stays the guarantee.
   */
  private async sweep(epoch: number): Promise<void> {
    const stale = [epoch - this.epochsAccepted - 1, epoch - this.epochsAccepted - 2].filter((e) => e >= 0);
    await Promise.all(stale.map((e) => this.store.delete(e).catch(() => undefined)));
  }

  /** Forget (and wipe) keys that are no longer accepted. */
  private prune(epoch: number): void {
    for (const [e, p] of this.cache) {
      if (e > epoch - this.epochsAccepted && e <= epoch + 1) continue;
      this.cache.delete(e);
      p.then(
        (k) => k?.fill(0),
        () => undefined,
      );
    }
  }
}

/**
 * Stand-in for an accepted epoch that has no key (before the first key was ever made, e.g. right
 * after the first deployment): random and never stored, so it seals nothing and opens nothing.
 */
function placeholderKey(): Buffer {
  return crypto.randomBytes(TICKET_KEY_LENGTH);
}

export interface TicketKeysFromConfigOptions {
  kmsClient?: KMSClient;
}

/** The production source: SSM Parameter Store (SDK default endpoint) and the KMS envelope. */
export function ticketKeysFromConfig(
  cfg: TicketKeysConfig,
  options: TicketKeysFromConfigOptions = {},
): StoredTicketKeys {
  return new StoredTicketKeys({
    epochSeconds: cfg.epochSeconds,
    epochsAccepted: cfg.epochsAccepted,
    store: new SsmTicketKeyStore({ prefix: cfg.parameterPrefix, client: createSsmClient() }),
    envelope: new KmsTicketKeyEnvelope({ keyId: cfg.keyId, deployment: cfg.deployment, client: options.kmsClient }),
  });
}
