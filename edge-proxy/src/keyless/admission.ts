/**
 * Admission control for full handshakes (docs/configuration.md, "Admission control"). Every full handshake costs exactly one key
 * operation (KMS allows ~500 RSA signatures per second per region by default), so the gate sits in
 * front of the key operation itself: a `KeyOperations` wrapper that, before forwarding a signing or
 * master-secret operation, checks
 *
 *   1. the number of full handshakes already waiting for the key service (`maxPendingFullHandshakes`),
 *   2. a token bucket per client address (`perClientRatePerSecond`, `perClientBurst`), kept in a
 *      bounded map (`maxTrackedClients`, least recently used evicted first), and
 *   3. one global token bucket sized to the KMS budget (`keyOperationsPerSecond`, `keyOperationBurst`);
 *      in a fleet, each task's share of the regional budget (`fleetShare`).
 *
 * A rejected operation throws `AdmissionRejectedError` (code `refused`) at once (nothing is sent to
 * the key service); the TLS engine answers it with a `handshake_failure` alert. Resumptions never call a key operation
 * and established connections never reach this gate, so neither is affected.
 */
import type {
  ConnectionScopedKeyOperations,
  KeyOperations,
  MasterSecretResult,
  RsaMasterSecretInput,
  SignResult,
} from '../tls/key-operations';
import { KeyOperationError } from '../tls/key-operations';
import type { SignatureSchemeName } from '../../../contract/key-service-protocol';

export interface AdmissionConfig {
  /** Full handshakes waiting for the key service at once; beyond it new ones are refused. */
  maxPendingFullHandshakes: number;
  /** Sustained full handshakes per second from one client address. */
  perClientRatePerSecond: number;
  /** Full handshakes one client address may make in a burst. */
  perClientBurst: number;
  /** Client addresses tracked at once (least recently seen evicted first). */
  maxTrackedClients: number;
  /** The KMS budget: key operations per second for this edge. */
  keyOperationsPerSecond: number;
  /** Key operations allowed in a burst above the steady rate. */
  keyOperationBurst: number;
  /**
   * When above 0: at most this many key operations in any one-second window, enforced exactly by a
   * sliding window instead of the keyOperationsPerSecond/keyOperationBurst bucket. The fleet KMS
   * budget sets it to the task's share: the same bound as the bucket, without refusing a burst the
   * share has room for.
   */
  keyOperationWindow: number;
}

export const DEFAULT_ADMISSION: AdmissionConfig = {
  maxPendingFullHandshakes: 256,
  perClientRatePerSecond: 20,
  perClientBurst: 40,
  maxTrackedClients: 100_000,
  keyOperationsPerSecond: 400,
  keyOperationBurst: 40,
  keyOperationWindow: 0,
};

/**
 * One task's share of a regional KMS budget (docs/configuration.md, "Fleet KMS budget"). KMS quotas
 * are per region and per second, and every task admits on its own, so the budget is split statically:
 * each of at most `maxTasks` tasks gets `floor(regionalBudget / maxTasks)` key operations in any
 * one-second window (`keyOperationWindow`). A task then admits at most its share in any such window,
 * and any number of tasks up to `maxTasks` at most the budget — whatever the autoscaler does in
 * between — while a burst within the share is never refused. The bucket fields (burst plus one second
 * of refill = the share) describe the same bound for readers of the configuration. Undefined when the
 * share is below 2.
 */
export function fleetShare(
  regionalBudget: number,
  maxTasks: number,
): Pick<AdmissionConfig, 'keyOperationsPerSecond' | 'keyOperationBurst' | 'keyOperationWindow'> | undefined {
  const share = Math.floor(regionalBudget / maxTasks);
  if (!(share >= 2)) return undefined;
  const keyOperationBurst = Math.max(1, Math.floor(share / 10));
  return { keyOperationsPerSecond: share - keyOperationBurst, keyOperationBurst, keyOperationWindow: share };
}

export type AdmissionReason = 'pending_limit' | 'client_rate' | 'key_budget';

/** A full handshake refused by admission control (answered with `handshake_failure`). */
export class AdmissionRejectedError extends KeyOperationError {
  constructor(readonly reason: AdmissionReason) {
    super('refused', `full handshake refused by admission control (${reason})`);
    this.name = 'AdmissionRejectedError';
  }
}

/** A classic token bucket: `rate` tokens per second, at most `burst` stored. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly rate: number,
    readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  private refill(now: number): void {
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
      this.last = now;
    }
  }

  /** Whether one token is available now (without taking it). */
  has(now: number): boolean {
    this.refill(now);
    return this.tokens >= 1;
  }

  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** True when the bucket is full again (tracking it is then pointless). */
  full(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.burst;
  }
}

/**
 * At most `limit` admissions in any `windowMs` window, exactly: a ring of the last `limit` admission
 * times, whose oldest entry must have left the window before another is admitted. Unlike a bucket it
 * refuses nothing while fewer than `limit` admissions fall in the window.
 */
export class SlidingWindow {
  private readonly times: Float64Array;
  private oldest = 0;

  constructor(
    readonly limit: number,
    readonly windowMs = 1000,
  ) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError(`window limit ${limit} must be a whole number from 1`);
    this.times = new Float64Array(limit).fill(-Infinity);
  }

  take(now: number): boolean {
    if (now - this.times[this.oldest] < this.windowMs) return false;
    this.times[this.oldest] = now;
    this.oldest = (this.oldest + 1) % this.limit;
    return true;
  }
}

export { isConnectionScoped, type ConnectionScopedKeyOperations } from '../tls/key-operations';

export interface AdmissionOptions {
  /** Milliseconds clock (tests). Default `performance.now()`. */
  now?: () => number;
  /** Called on every rejection (metrics, logs). */
  onReject?: (reason: AdmissionReason, remoteAddress: string | undefined) => void;
}

export class AdmissionController {
  private readonly now: () => number;
  private readonly global: { take(now: number): boolean };
  private readonly clients = new Map<string, TokenBucket>();
  private pendingCount = 0;

  constructor(
    readonly config: AdmissionConfig,
    private readonly options: AdmissionOptions = {},
  ) {
    this.now = options.now ?? (() => performance.now());
    this.global =
      config.keyOperationWindow > 0
        ? new SlidingWindow(config.keyOperationWindow)
        : new TokenBucket(config.keyOperationsPerSecond, config.keyOperationBurst, this.now());
  }

  /** Full handshakes currently waiting for the key service. */
  get pending(): number {
    return this.pendingCount;
  }

  /** Client addresses currently tracked. */
  get trackedClients(): number {
    return this.clients.size;
  }

  /**
   * Admits one full handshake's key operation or throws AdmissionRejectedError. On success the
   * caller must call the returned release function when the operation settles.
   */
  admit(remoteAddress: string | undefined): () => void {
    const now = this.now();
    if (this.pendingCount >= this.config.maxPendingFullHandshakes) return this.reject('pending_limit', remoteAddress);
    const client = remoteAddress === undefined ? undefined : this.clientBucket(remoteAddress, now);
    if (client && !client.has(now)) return this.reject('client_rate', remoteAddress);
    if (!this.global.take(now)) return this.reject('key_budget', remoteAddress);
    client?.take(now);
    this.pendingCount++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.pendingCount--;
    };
  }

  /** Wraps key operations: signing and master-secret operations pass the gate, the rest pass through. */
  wrap(inner: KeyOperations): ConnectionScopedKeyOperations {
    const scoped = (remoteAddress: string | undefined): KeyOperations => {
      const gated = async <T>(op: () => Promise<T>): Promise<T> => {
        const release = this.admit(remoteAddress);
        try {
          return await op();
        } finally {
          release();
        }
      };
      return {
        signTls13CertificateVerify: (
          keyName: string,
          scheme: SignatureSchemeName,
          transcriptHash: Buffer,
        ): Promise<SignResult> => gated(() => inner.signTls13CertificateVerify(keyName, scheme, transcriptHash)),
        signTls12ServerKeyExchange: (
          keyName: string,
          scheme: SignatureSchemeName,
          clientRandom: Buffer,
          serverRandomSeed: Buffer,
          params: Buffer,
        ): Promise<SignResult> =>
          gated(() => inner.signTls12ServerKeyExchange(keyName, scheme, clientRandom, serverRandomSeed, params)),
        rsaMasterSecret: (keyName: string, input: RsaMasterSecretInput): Promise<MasterSecretResult> =>
          gated(() => inner.rsaMasterSecret(keyName, input)),
        ticketKeys: () => inner.ticketKeys(),
        publicKey: (keyName: string) => inner.publicKey(keyName),
        ping: () => inner.ping(),
      };
    };
    return { ...scoped(undefined), forConnection: scoped };
  }

  private reject(reason: AdmissionReason, remoteAddress: string | undefined): never {
    try {
      this.options.onReject?.(reason, remoteAddress);
    } catch {
      // observers never change the decision
    }
    throw new AdmissionRejectedError(reason);
  }

  /** The bucket of one client address, tracked in a bounded, least-recently-used map. */
  private clientBucket(address: string, now: number): TokenBucket {
    let b = this.clients.get(address);
    if (b) {
      this.clients.delete(address); // re-insert: most recently used last
      this.clients.set(address, b);
      return b;
    }
    while (this.clients.size >= this.config.maxTrackedClients) {
      const oldest = this.clients.keys().next().value as string;
      this.clients.delete(oldest);
    }
    b = new TokenBucket(this.config.perClientRatePerSecond, this.config.perClientBurst, now);
    this.clients.set(address, b);
    // Opportunistically forget a few idle clients whose bucket has refilled (cheap, bounded work).
    let scanned = 0;
    for (const [k, v] of this.clients) {
      if (++scanned > 4 || k === address) break;
      if (v.full(now)) this.clients.delete(k);
    }
    return b;
  }
}
