/**
 * Keeps the edge's session-ticket keys current (docs/key-service-protocol.md, "Session-ticket
 * keys"): fetched from the key service (`ticket_keys`: random per epoch, kept there encrypted until
 * their retention ends), refreshed just after each epoch starts, and kept when the key service is
 * unreachable — resumption is how the fleet rides out an outage — but only within the acceptance
 * window: the protector wipes a key once its last accepted epoch has ended, fetched or not.
 */
import type { KeyOperations } from './tls/key-operations';
import type { Logger } from './observability/log';
import type { TicketProtector } from './tls/tickets';

const RETRY_MS = 5_000;

export class TicketKeyRefresher {
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly keys: Pick<KeyOperations, 'ticketKeys'>,
    private readonly protector: TicketProtector,
    private readonly log: Logger,
  ) {}

  /** First fetch; resolves either way (without keys the edge simply issues no tickets yet). */
  async start(): Promise<void> {
    await this.refresh();
  }

  private async refresh(): Promise<void> {
    if (this.stopped) return;
    let next = RETRY_MS;
    this.protector.expire();
    try {
      const k = await this.keys.ticketKeys();
      const changed = this.protector.epoch !== k.current.epoch;
      this.protector.setKeys(k);
      if (changed)
        this.log.log('info', 'ticket keys', {
          epoch: k.current.epoch,
          epochSeconds: k.epochSeconds,
          epochsAccepted: k.epochsAccepted ?? 2,
        });
      // Fetch again shortly after the next epoch starts (all edges roll over together).
      const epochEndsMs = (k.current.epoch + 1) * k.epochSeconds * 1000;
      next = Math.max(1_000, Math.min(epochEndsMs - Date.now() + 1_000, 5 * 60_000));
    } catch (e) {
      this.log.log('warn', 'ticket keys unavailable; keeping the ones we have', {
        error: (e as Error).message,
        haveKeys: this.protector.ready,
      });
    }
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.refresh(), next);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
