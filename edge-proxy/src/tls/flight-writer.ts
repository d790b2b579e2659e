/**
 * Our outgoing handshake records. Messages are queued in plaintext, each tagged with the write
 * protection in force when it was queued, and sealed only when the flight is flushed. So a flight
 * abandoned by an error is discarded without being sealed — sealing would use up sequence numbers
 * the peer never sees — and a fatal alert goes out under the protection the peer reads our next
 * record with: the one in force after the last bytes we actually sent (RFC 8446 §5.1, §6).
 */
import { ContentType, MAX_PLAINTEXT, NullProtection, RecordProtection } from './record-layer';

interface Queued {
  protection: RecordProtection;
  type: ContentType;
  data: Buffer;
}

export class FlightWriter {
  private queue: Queued[] = [];
  private current: RecordProtection = new NullProtection();
  private sent: RecordProtection = this.current;
  /** Largest plaintext in one protected record: 2^14, or less after the peer's record_size_limit. */
  maxProtectedPlaintext = MAX_PLAINTEXT;

  /** The write protection now in force (what application data is sealed under once established). */
  get protection(): RecordProtection {
    return this.current;
  }

  /**
   * What a fatal alert is sealed under: the protection the peer switched to after the last record we
   * sent. Keys installed since then belong to messages it never received, so it could not read them.
   */
  get alertProtection(): RecordProtection {
    return this.sent;
  }

  /** Largest plaintext per record under `p` (record_size_limit binds protected records only, RFC 8449 §4). */
  fragmentSize(p: RecordProtection = this.current): number {
    return p.encrypted ? this.maxProtectedPlaintext : MAX_PLAINTEXT;
  }

  queueHandshake(data: Buffer): void {
    this.queue.push({ protection: this.current, type: ContentType.handshake, data });
  }

  /** change_cipher_spec is never encrypted (RFC 8446 §5, Appendix D.4; RFC 5246 §7.1 sends it before the key change). */
  queueChangeCipherSpec(): void {
    this.queue.push({ protection: new NullProtection(), type: ContentType.change_cipher_spec, data: Buffer.from([1]) });
  }

  /** Later messages go out under `p`; those already queued keep the protection they were queued under. */
  setProtection(p: RecordProtection): void {
    this.current = p;
  }

  /**
   * Seals everything queued, in order, into as few records as each protection allows (consecutive
   * handshake messages under one protection are coalesced), and returns the wire bytes. The peer
   * has then been sent everything up to the current protection.
   */
  seal(): Buffer[] {
    const out: Buffer[] = [];
    let i = 0;
    while (i < this.queue.length) {
      const { protection, type } = this.queue[i];
      const run: Buffer[] = [];
      while (i < this.queue.length && this.queue[i].protection === protection && this.queue[i].type === type)
        run.push(this.queue[i++].data);
      const data = run.length === 1 ? run[0] : Buffer.concat(run);
      const size = this.fragmentSize(protection);
      for (let off = 0; off < data.length; off += size) out.push(protection.seal(type, data.subarray(off, off + size)));
    }
    this.queue = [];
    this.sent = this.current;
    return out;
  }

  /** Messages are queued and not yet sealed. */
  get pending(): boolean {
    return this.queue.length > 0;
  }

  /** An error ended the handshake: what was queued is dropped unsealed. */
  discard(): void {
    this.queue = [];
  }
}
