/**
 * Session tickets (docs/key-service-protocol.md, "Session-ticket keys"): resumption state sealed under fleet-wide ticket keys that every edge
 * gets from the key service for the same epoch, so a ticket from one edge resumes on any other and a
 * resumed handshake needs no key operation.
 *
 * Ticket = version(1) ‖ epoch(u32) ‖ nonce(12) ‖ AES-256-GCM(key[epoch], state) ‖ tag(16), with
 * version ‖ epoch as additional data. Tickets under the key of an accepted epoch open; anything else
 * (expired epoch, another fleet, tampering) is simply not a ticket: full handshake, counted by reason.
 */
import * as crypto from 'node:crypto';
import { Reader, Writer } from './codec';
import type { TicketKeys } from './key-operations';

const TICKET_VERSION = 1;
const HEADER = 1 + 4 + 12;
const TAG = 16;

/** What a ticket remembers. TLS 1.3: the resumption PSK; TLS 1.2: the master secret. */
export interface TicketState {
  protocol: 'TLSv1.3' | 'TLSv1.2';
  suite: number;
  /** TLS 1.3 PSK, or TLS 1.2 master secret. */
  secret: Buffer;
  /** Unix milliseconds when the ticket was issued. */
  issuedAt: number;
  /** TLS 1.3 ticket_age_add; 0 for TLS 1.2. */
  ageAdd: number;
  lifetimeSeconds: number;
  /** TLS 1.2: the original session used the extended master secret. */
  extendedMasterSecret: boolean;
  serverName: string;
  alpn: string;
  /**
   * mTLS: the client's verified certificate path (DER, leaf first), so a resumed connection still
   * knows its client. Encoded after the other fields only when present, so tickets without it are
   * unchanged (and still open on edges that predate it).
   */
  clientCertificateChain?: Buffer[];
}

export function encodeTicketState(s: TicketState): Buffer {
  return new Writer()
    .u8(s.protocol === 'TLSv1.3' ? 13 : 12)
    .u16(s.suite)
    .vec8(s.secret)
    .u32(Math.floor(s.issuedAt / 0x100000000))
    .u32(s.issuedAt >>> 0)
    .u32(s.ageAdd)
    .u32(s.lifetimeSeconds)
    .u8(s.extendedMasterSecret ? 1 : 0)
    .vec8(Buffer.from(s.serverName, 'latin1'))
    .vec8(Buffer.from(s.alpn, 'latin1'))
    .bytes(
      s.clientCertificateChain?.length
        ? new Writer().vec24((w) => s.clientCertificateChain!.forEach((c) => w.vec24(c))).finish()
        : Buffer.alloc(0),
    )
    .finish();
}

export function decodeTicketState(b: Buffer): TicketState | undefined {
  try {
    const r = new Reader(b, 'ticket state');
    const kind = r.u8();
    if (kind !== 12 && kind !== 13) return undefined;
    const state: TicketState = {
      protocol: kind === 13 ? 'TLSv1.3' : 'TLSv1.2',
      suite: r.u16(),
      secret: Buffer.from(r.vec8('secret')),
      issuedAt: r.u32() * 0x100000000 + r.u32(),
      ageAdd: r.u32(),
      lifetimeSeconds: r.u32(),
      extendedMasterSecret: r.u8() === 1,
      serverName: r.vec8('sni').toString('latin1'),
      alpn: r.vec8('alpn').toString('latin1'),
    };
    if (r.remaining > 0) {
      const chain = r.sub24('client certificates');
      state.clientCertificateChain = [];
      while (chain.remaining > 0) state.clientCertificateChain.push(Buffer.from(chain.vec24('client certificate', 1)));
    }
    r.end();
    return state;
  } catch {
    return undefined;
  }
}

/** Why a presented ticket did not open (each one means a full handshake instead): a metric label. */
export type TicketRejection = 'no_keys' | 'malformed' | 'expired_epoch' | 'unknown_epoch' | 'undecryptable';

export interface TicketProtectorOptions {
  /** Called for every ticket that does not open (keyless_edge_tickets_rejected_total). */
  onRejected?: (reason: TicketRejection) => void;
  /** Wall clock (ms), for tests. */
  now?: () => number;
}

/** How long after its epoch ends the current key still seals (the refresher fetches the next one within seconds). */
const SEAL_SLACK_MS = 60_000;

interface HeldKey {
  epoch: number;
  key: Buffer;
  /** Local time (ms) from which tickets under this key are refused: end of its last accepted epoch. */
  acceptedUntil: number;
}

/**
 * Seals and opens tickets with the fleet's ticket keys (kept fresh by the edge). The acceptance
 * window is the key service's: the current epoch and the epochsAccepted - 1 before it. A ticket
 * from any other epoch is refused, and a key is wiped once its last accepted epoch has ended, also
 * when the key service cannot be reached to replace it (docs/key-service-protocol.md, "Session-ticket keys").
 */
export class TicketProtector {
  private held: HeldKey[] = [];
  private sealUntil = 0;
  private readonly now: () => number;
  private readonly onRejected: (reason: TicketRejection) => void;

  constructor(options: TicketProtectorOptions = {}) {
    this.now = options.now ?? Date.now;
    this.onRejected = options.onRejected ?? (() => undefined);
  }

  /** Install the keys the key service handed out (every accepted epoch, current first). */
  setKeys(keys: TicketKeys): void {
    const periodMs = keys.epochSeconds * 1000;
    const accepted = keys.epochsAccepted ?? 2;
    const now = this.now();
    // Epoch numbers are the key service's. When our clock agrees with it (within an epoch), its
    // epochs end where ours do; otherwise they are placed relative to our current epoch.
    const localEpoch = Math.floor(now / periodMs);
    const offset = Math.abs(localEpoch - keys.current.epoch) <= 1 ? 0 : (localEpoch - keys.current.epoch) * periodMs;
    const until = (epoch: number) => (epoch + accepted) * periodMs + offset;
    this.wipe();
    this.held = [keys.current, keys.previous, ...(keys.older ?? [])]
      .filter((k) => k.epoch > keys.current.epoch - accepted)
      .map((k) => ({ epoch: k.epoch, key: Buffer.from(k.key), acceptedUntil: until(k.epoch) }));
    // New tickets only under the current epoch's key, plus a minute for the refresh after a
    // boundary: an edge that cannot reach the key service stops issuing tickets that would soon die.
    this.sealUntil = (keys.current.epoch + 1) * periodMs + offset + SEAL_SLACK_MS;
    this.expire();
  }

  get ready(): boolean {
    this.expire();
    return this.held.length > 0 && this.now() < this.sealUntil;
  }

  /** The current epoch, for tests and metrics. */
  get epoch(): number | undefined {
    return this.held[0]?.epoch;
  }

  /** Wipe keys whose acceptance has ended (called on every use and by the refresher). */
  expire(): void {
    const now = this.now();
    if (this.held.every((k) => now < k.acceptedUntil)) return;
    for (const k of this.held) if (now >= k.acceptedUntil) k.key.fill(0);
    this.held = this.held.filter((k) => now < k.acceptedUntil);
  }

  seal(state: TicketState): Buffer | undefined {
    if (!this.ready) return undefined;
    const k = this.held[0];
    const header = Buffer.alloc(HEADER);
    header[0] = TICKET_VERSION;
    header.writeUInt32BE(k.epoch >>> 0, 1);
    crypto.randomFillSync(header, 5, 12);
    const cipher = crypto.createCipheriv('aes-256-gcm', k.key, header.subarray(5));
    cipher.setAAD(header.subarray(0, 5));
    const body = Buffer.concat([cipher.update(encodeTicketState(state)), cipher.final()]);
    return Buffer.concat([header, body, cipher.getAuthTag()]);
  }

  open(ticket: Buffer): TicketState | undefined {
    const hadKeys = this.held.length > 0;
    this.expire();
    if (ticket.length < HEADER + TAG + 1 || ticket[0] !== TICKET_VERSION) return this.reject('malformed');
    if (this.held.length === 0) return this.reject(hadKeys ? 'expired_epoch' : 'no_keys');
    const epoch = ticket.readUInt32BE(1);
    const key = this.held.find((k) => k.epoch >>> 0 === epoch)?.key;
    if (!key)
      return this.reject(epoch < this.held[this.held.length - 1].epoch >>> 0 ? 'expired_epoch' : 'unknown_epoch');
    try {
      const d = crypto.createDecipheriv('aes-256-gcm', key, ticket.subarray(5, HEADER));
      d.setAAD(ticket.subarray(0, 5));
      d.setAuthTag(ticket.subarray(ticket.length - TAG));
      const plain = Buffer.concat([d.update(ticket.subarray(HEADER, ticket.length - TAG)), d.final()]);
      return decodeTicketState(plain) ?? this.reject('undecryptable');
    } catch {
      // Tampered, another fleet's, or sealed under another key for this epoch (e.g. by an edge of
      // the previous release during a rolling deploy): a full handshake, counted.
      return this.reject('undecryptable');
    }
  }

  private reject(reason: TicketRejection): undefined {
    this.onRejected(reason);
    return undefined;
  }

  private wipe(): void {
    for (const k of this.held) k.key.fill(0);
    this.held = [];
  }
}

export interface TicketSettings {
  /** Tickets sent after each full TLS 1.3 handshake (default 2); a resumed handshake gets one. */
  count: number;
  /** Ticket lifetime in seconds (default 24 h; RFC 8446 §4.6.1 caps it at 7 days). */
  lifetimeSeconds: number;
  /** Tolerated difference between the client's and our view of a ticket's age (ms). */
  ageToleranceMs: number;
}

export const DEFAULT_TICKET_SETTINGS: TicketSettings = { count: 2, lifetimeSeconds: 86_400, ageToleranceMs: 10_000 };
export const MAX_TICKET_LIFETIME_SECONDS = 604_800;

/** Still within its lifetime (and not from the future beyond the tolerance). */
export function ticketFresh(state: TicketState, now: number, toleranceMs: number): boolean {
  const age = now - state.issuedAt;
  return age >= -toleranceMs && age <= state.lifetimeSeconds * 1000;
}
