/**
 * Fleet-wide session-ticket keys (DESIGN §7). Every edge gets the same keys for the same epoch from
 * the key service, which derives them with KMS GenerateMac under one HMAC_256 key, so nothing is
 * stored and nothing is shared by hand:
 *
 *   epoch       = floor(unix_seconds / epochSeconds)
 *   key(epoch)  = GenerateMac(HMAC_SHA_256, message = "keyless ticket key v1" ‖ uint64_be(epoch))[0..31]
 *
 * The answer carries the current and the previous epoch's key (tickets issued just before a
 * boundary still resume). Keys are cached per epoch in the container; one GenerateMac per epoch and
 * container, concurrent requests share it, failures are not cached.
 *
 * Environment: KEYLESS_TICKET_MAC_KEY_ID (key id, ARN, alias or alias ARN of the HMAC_256 key) and
 * KEYLESS_TICKET_EPOCH_SECONDS (default 3600, 60..604800). Without the key id, `ticket_keys`
 * answers `unavailable`.
 */
import { GenerateMacCommand, type KMSClient } from '@aws-sdk/client-kms';
import { ConfigError, KeyServiceError } from './errors';
import { TICKET_KEY_LENGTH } from './protocol';
import { getSharedKmsClient, mapKmsError } from './backends/kms';
import { timeKmsCall } from './observability';

export const TICKET_MAC_KEY_ENV_VAR = 'KEYLESS_TICKET_MAC_KEY_ID';
export const TICKET_EPOCH_ENV_VAR = 'KEYLESS_TICKET_EPOCH_SECONDS';
export const DEFAULT_TICKET_EPOCH_SECONDS = 3600;
export const MIN_TICKET_EPOCH_SECONDS = 60;
export const MAX_TICKET_EPOCH_SECONDS = 7 * 24 * 3600;

const MESSAGE_PREFIX = Buffer.from('keyless ticket key v1', 'latin1');

/** The MAC input for an epoch: "keyless ticket key v1" ‖ uint64_be(epoch). */
export function ticketKeyMessage(epoch: number): Buffer {
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new RangeError('epoch must be a non-negative safe integer');
  const e = Buffer.alloc(8);
  e.writeBigUInt64BE(BigInt(epoch));
  return Buffer.concat([MESSAGE_PREFIX, e]);
}

export function epochOf(unixMs: number, epochSeconds: number): number {
  return Math.floor(unixMs / 1000 / epochSeconds);
}

export interface TicketKeysValue {
  epochSeconds: number;
  current: { epoch: number; key: Buffer };
  previous: { epoch: number; key: Buffer };
}

export interface TicketKeySource {
  readonly epochSeconds: number;
  /** The keys of the current and previous epoch. Throws KeyServiceError. */
  get(): Promise<TicketKeysValue & { backendMs: number }>;
}

export interface TicketKeysConfig {
  macKeyId: string;
  epochSeconds: number;
}

/** Read the ticket-key configuration; undefined when KEYLESS_TICKET_MAC_KEY_ID is not set. Throws ConfigError. */
export function loadTicketKeysConfigFromEnv(env: NodeJS.ProcessEnv = process.env): TicketKeysConfig | undefined {
  const macKeyId = env[TICKET_MAC_KEY_ENV_VAR]?.trim();
  if (!macKeyId) return undefined;
  if (macKeyId.length > 2048 || /\s/.test(macKeyId)) throw new ConfigError(`${TICKET_MAC_KEY_ENV_VAR}: not a valid KMS key identifier`);
  const raw = env[TICKET_EPOCH_ENV_VAR]?.trim();
  let epochSeconds = DEFAULT_TICKET_EPOCH_SECONDS;
  if (raw) {
    if (!/^\d{1,7}$/.test(raw)) throw new ConfigError(`${TICKET_EPOCH_ENV_VAR}: expected an integer number of seconds`);
    epochSeconds = Number(raw);
  }
  if (epochSeconds < MIN_TICKET_EPOCH_SECONDS || epochSeconds > MAX_TICKET_EPOCH_SECONDS) {
    throw new ConfigError(`${TICKET_EPOCH_ENV_VAR}: must be ${MIN_TICKET_EPOCH_SECONDS}..${MAX_TICKET_EPOCH_SECONDS} seconds`);
  }
  return { macKeyId, epochSeconds };
}

export interface KmsTicketKeysOptions extends TicketKeysConfig {
  /** Injected client (tests, tools); defaults to the container's shared client. */
  client?: KMSClient;
  /** Clock (ms since the epoch), for tests. */
  now?: () => number;
}

/** Ticket keys derived with KMS GenerateMac, cached per epoch. */
export class KmsTicketKeys implements TicketKeySource {
  readonly epochSeconds: number;
  private readonly macKeyId: string;
  private readonly explicitClient: KMSClient | undefined;
  private readonly now: () => number;
  /** epoch → key (or the pending GenerateMac); only the two newest epochs are kept. */
  private readonly cache = new Map<number, Promise<Buffer>>();

  constructor(options: KmsTicketKeysOptions) {
    this.macKeyId = options.macKeyId;
    this.epochSeconds = options.epochSeconds;
    this.explicitClient = options.client;
    this.now = options.now ?? Date.now;
  }

  async get(): Promise<TicketKeysValue & { backendMs: number }> {
    const started = process.hrtime.bigint();
    const epoch = epochOf(this.now(), this.epochSeconds);
    if (epoch < 1) throw new KeyServiceError('internal', 'clock before the first ticket epoch');
    const [current, previous] = await Promise.all([this.key(epoch), this.key(epoch - 1)]);
    this.prune(epoch);
    return {
      epochSeconds: this.epochSeconds,
      current: { epoch, key: Buffer.from(current) },
      previous: { epoch: epoch - 1, key: Buffer.from(previous) },
      backendMs: Number(process.hrtime.bigint() - started) / 1e6,
    };
  }

  private key(epoch: number): Promise<Buffer> {
    let p = this.cache.get(epoch);
    if (!p) {
      p = this.derive(epoch);
      this.cache.set(epoch, p);
      p.catch(() => {
        if (this.cache.get(epoch) === p) this.cache.delete(epoch); // failures are not cached
      });
    }
    return p;
  }

  private prune(epoch: number): void {
    for (const e of this.cache.keys()) if (e < epoch - 1 || e > epoch + 1) this.cache.delete(e);
  }

  private async derive(epoch: number): Promise<Buffer> {
    const client = this.explicitClient ?? getSharedKmsClient();
    let mac: Uint8Array | undefined;
    try {
      const out = await timeKmsCall('GenerateMac', () =>
        client.send(new GenerateMacCommand({ KeyId: this.macKeyId, MacAlgorithm: 'HMAC_SHA_256', Message: ticketKeyMessage(epoch) })),
      );
      mac = out.Mac;
    } catch (err) {
      throw mapKmsError(err, 'GenerateMac');
    }
    if (!mac || mac.length < TICKET_KEY_LENGTH) throw new KeyServiceError('internal', 'KMS GenerateMac returned no MAC');
    return Buffer.from(mac.subarray(0, TICKET_KEY_LENGTH));
  }
}
