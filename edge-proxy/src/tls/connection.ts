/**
 * One server-side TLS connection as a `Duplex` with the familiar `TLSSocket` surface, so Node's
 * `http` and `http2` servers can sit on it.
 *
 * Input is pulled record by record while the handshake runs (keys change between records, so a
 * record is only opened when the state machine asks for the next message), and pushed once the
 * connection is established. The handshake never blocks the event loop: while the key service is
 * signing, input is buffered (up to a bound) and the deadline timer keeps running.
 */
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { AlertDescription, AlertLevel, encodeAlert, PeerAlert, TlsAlert } from './alerts';
import type { TlsContext } from './context';
import type { HandshakeInfo, HandshakeIo } from './handshake-io';
import { HandshakeJoiner, HandshakeMessage, HandshakeType } from './handshake-joiner';
import {
  ContentType,
  MAX_PLAINTEXT,
  NullProtection,
  OpenedRecord,
  RawRecord,
  RecordProtection,
  RecordReader,
  Tls13Protection,
} from './record-layer';
import { FlightWriter } from './flight-writer';
import { handshakeMessageLimit } from './msgs/limits';
import { EstablishedSession, serverHandshake } from './server-handshake';
import { isConnectionScoped, KEY_OPERATION_ALERTS, KeyOperationError } from './key-operations';
import { peerCertificateObject, type LegacyPeerCertificate } from './client-auth';

type State = 'handshake' | 'open' | 'closed';

/** Why a handshake ended without success; emitted as 'handshakeError'. */
export class HandshakeError extends Error {
  constructor(
    message: string,
    /** The alert we sent, if any. */
    readonly sentAlert?: string,
    /** The alert the peer sent, if any. */
    readonly receivedAlert?: string,
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'HandshakeError';
  }
}

/**
 * The peer closed TCP (no alert) before the handshake completed. `stage` tells noise from trouble:
 * `before_client_hello` is a TCP probe (load-balancer health check, port scan);
 * `after_server_finished` is a client that got our whole flight — for it the handshake succeeded —
 * and left without sending its Finished (e.g. a TLS 1.3 client destroyed right after connecting, so
 * its Finished never left its buffers); `during_handshake` is a client that gave up mid-way.
 */
export class PeerClosedError extends HandshakeError {
  constructor(readonly stage: 'before_client_hello' | 'during_handshake' | 'after_server_finished') {
    super(
      stage === 'before_client_hello'
        ? 'peer closed the connection before sending a ClientHello'
        : stage === 'after_server_finished'
          ? 'peer closed the connection after the server Finished without sending its own'
          : 'peer closed the connection during the handshake',
    );
    this.name = 'PeerClosedError';
  }
}

interface PendingWrite {
  chunks: Buffer[];
  callback: (err?: Error | null) => void;
}

export class TlsServerConnection extends Duplex implements HandshakeIo {
  readonly encrypted = true;
  alpnProtocol: string | false = false;
  servername: string | false = false;
  /** Like TLSSocket: the client presented a certificate that verified (mTLS hosts only). */
  get authorized(): boolean {
    return this.handshakeInfo?.clientAuth?.verified === true;
  }
  /** Like TLSSocket: why `authorized` is false on a host that asked for a certificate. */
  get authorizationError(): string | undefined {
    const auth = this.handshakeInfo?.clientAuth;
    return auth && !auth.verified ? 'NO_PEER_CERTIFICATE' : undefined;
  }
  handshakeInfo?: HandshakeInfo;
  /** TLS 1.3 KeyUpdates after the handshake: ours (write keys changed) and the peer's (read keys changed). */
  readonly keyUpdates = { sent: 0, received: 0 };
  /** Time from accepting the connection (after any PROXY header) to the handshake's completion. */
  handshakeMs?: number;
  readonly remoteAddress?: string;
  readonly remotePort?: number;
  /** Address the client connected to: the NLB listener's from its PROXY v2 header, else our socket's. */
  readonly localAddress?: string;
  readonly localPort?: number;

  private state: State = 'handshake';
  private readonly reader = new RecordReader();
  private readonly joiner: HandshakeJoiner;
  private readProtection: RecordProtection = new NullProtection();
  private readonly flight = new FlightWriter();
  private wake?: () => void;
  private inputEnded = false;
  private readPaused = false;
  private readClosed = false;
  private tls12Records = false;
  private pendingWrites: PendingWrite[] = [];
  private drainWaiters: Array<(err?: Error | null) => void> = [];
  /** Why an established connection was torn down, if it was an error (also emitted as 'tlsError'). */
  lastError?: Error;
  private session?: EstablishedSession;
  private handshakeTimer?: NodeJS.Timeout;
  private readonly startedAt = process.hrtime.bigint();
  private sawClientHello = false;
  /** Our Finished has been queued: from here on only the client's Finished is missing. */
  private sentFinished = false;
  /** 0-RTT declined (RFC 8446 §4.2.10): how to recognise the client's early data, and how much more we skip. */
  private earlyDataSkip?: { mode: 'application_data' | 'undecryptable'; remaining: number };
  /** We asked the peer to update its keys (it neared the AEAD limit) and have not seen it do so yet. */
  private peerUpdateRequested = false;
  /** Queued handshake messages wait for application data, or for the end of this event-loop turn. */
  private flushScheduled = false;
  /** How far the handshake was when the peer's FIN arrived (what a PeerClosedError reports). */
  private endStage?: PeerClosedError['stage'];

  constructor(
    private readonly socket: Socket,
    private readonly ctx: TlsContext,
    /** When a PROXY header was read first: the client's real address and the bytes after it. */
    proxied?: {
      source?: { address: string; port: number };
      destination?: { address: string; port: number };
      rest: Buffer;
    },
  ) {
    // Half-open: a peer's close_notify ends our readable side only (RFC 8446 §6.1); the consumer
    // decides when to end ours (HTTP finishes its response first).
    super({ allowHalfOpen: true });
    this.remoteAddress = proxied?.source?.address ?? socket.remoteAddress;
    this.remotePort = proxied?.source?.port ?? socket.remotePort;
    this.localAddress = proxied?.destination?.address ?? socket.localAddress;
    this.localPort = proxied?.destination?.port ?? socket.localPort;
    this.joiner = new HandshakeJoiner((type) => handshakeMessageLimit(type, ctx.maxHandshakeMessageSize));
    socket.on('data', (d: Buffer) => this.onSocketData(d));
    socket.on('end', () => this.onSocketEnd());
    socket.on('error', (err) => this.onSocketError(err));
    socket.on('close', () => {
      if (!this.destroyed) this.destroy();
    });
    socket.on('drain', () => this.releaseDrainWaiters());
    this.handshakeTimer = setTimeout(
      () => this.fail(new HandshakeError(`handshake not complete after ${ctx.handshakeTimeoutMs} ms`)),
      ctx.handshakeTimeoutMs,
    );
    this.handshakeTimer.unref?.();
    if (proxied && proxied.rest.length > 0) this.reader.push(proxied.rest);
    socket.resume();
    void this.runHandshake();
  }

  // ---- TLSSocket surface -------------------------------------------------------------------

  getProtocol(): string | null {
    return this.handshakeInfo?.protocol ?? null;
  }

  /** Before the handshake completes every field is empty. */
  getCipher(): { name: string; standardName: string; version: string } {
    const info = this.handshakeInfo;
    return { name: info?.cipherOpenssl ?? '', standardName: info?.cipher ?? '', version: info?.protocol ?? '' };
  }

  /**
   * The client's verified certificate in Node's `PeerCertificate` shape (`detailed`: with
   * `issuerCertificate` up the path), or `{}` when there is none, as TLSSocket does.
   */
  getPeerCertificate(detailed = false): LegacyPeerCertificate | Record<string, never> {
    const chain = this.handshakeInfo?.clientAuth?.chain;
    return chain && chain.length > 0 ? peerCertificateObject(chain, detailed) : {};
  }

  isSessionReused(): boolean {
    return this.handshakeInfo?.resumed ?? false;
  }

  setTimeout(ms: number, cb?: () => void): this {
    this.socket.setTimeout(ms);
    if (cb) this.once('timeout', cb);
    // Forward unconditionally: Node's http server calls setTimeout() first and adds its 'timeout'
    // listener afterwards, so forwarding only when a listener already existed left HTTP/1.1
    // connections without an idle timeout.
    if (this.socket.listenerCount('timeout') === 0) this.socket.on('timeout', () => this.emit('timeout'));
    return this;
  }

  setNoDelay(noDelay?: boolean): this {
    this.socket.setNoDelay(noDelay);
    return this;
  }

  setKeepAlive(enable?: boolean, delay?: number): this {
    this.socket.setKeepAlive(enable, delay);
    return this;
  }

  address(): ReturnType<Socket['address']> {
    return this.socket.address();
  }

  // ---- HandshakeIo ---------------------------------------------------------------------------

  async readHandshakeMessage(expected: HandshakeType): Promise<HandshakeMessage> {
    while (true) {
      const message = this.joiner.next();
      if (message) {
        if (message.type === HandshakeType.client_hello) this.sawClientHello = true;
        if (message.type !== expected) {
          throw new TlsAlert(
            AlertDescription.unexpected_message,
            `expected ${HandshakeType[expected]}, got handshake type ${HandshakeType[message.type] ?? message.type}`,
          );
        }
        return message;
      }
      const record = await this.nextRecord();
      this.checkNotInterleaved(record);
      switch (record.type) {
        case ContentType.handshake:
          // RFC 8446 §5.1: zero-length handshake fragments are not allowed.
          if (record.plaintext.length === 0)
            throw new TlsAlert(AlertDescription.unexpected_message, 'empty handshake record');
          this.joiner.push(record.plaintext);
          break;
        case ContentType.alert:
          throw this.peerAlert(record.plaintext);
        case ContentType.change_cipher_spec:
          // TLS 1.2: a CCS where a handshake message is due is out of order.
          if (this.tls12Records)
            throw new TlsAlert(AlertDescription.unexpected_message, 'change_cipher_spec out of order');
          this.checkCompatChangeCipherSpec(record.plaintext);
          break;
        default:
          throw new TlsAlert(AlertDescription.unexpected_message, 'application data before the handshake completed');
      }
    }
  }

  useTls12Records(): void {
    this.tls12Records = true;
  }

  async readChangeCipherSpec(): Promise<void> {
    if (this.joiner.hasPartial)
      throw new TlsAlert(AlertDescription.unexpected_message, 'handshake message spans change_cipher_spec');
    const record = await this.nextRecord();
    if (record.type === ContentType.alert) throw this.peerAlert(record.plaintext);
    if (record.type !== ContentType.change_cipher_spec)
      throw new TlsAlert(AlertDescription.unexpected_message, 'expected change_cipher_spec');
    if (record.plaintext.length !== 1 || record.plaintext[0] !== 1)
      throw new TlsAlert(AlertDescription.unexpected_message, 'malformed change_cipher_spec');
  }

  sendWarningAlert(description: number): void {
    if (this.socket.destroyed) return;
    this.socket.write(this.flight.protection.seal(ContentType.alert, encodeAlert(description, AlertLevel.warning)));
  }

  sendHandshake(raw: Buffer): void {
    if (raw[0] === HandshakeType.finished) this.sentFinished = true;
    this.flight.queueHandshake(raw);
  }

  sendChangeCipherSpec(): void {
    this.flight.queueChangeCipherSpec();
  }

  flush(): void {
    const records = this.flight.seal();
    if (records.length === 0 || this.socket.destroyed) return;
    this.socket.write(records.length === 1 ? records[0] : Buffer.concat(records));
  }

  flushWithApplicationData(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (this.state === 'open') this.flush();
    });
  }

  setReadProtection(p: RecordProtection): void {
    if (this.joiner.hasPartial)
      throw new TlsAlert(AlertDescription.unexpected_message, 'handshake message spans a key change');
    this.readProtection = p;
    this.reader.maxFragment = p.maxFragment;
    this.peerUpdateRequested = false;
    if (this.state === 'open') this.keyUpdates.received++;
  }

  skipRejectedEarlyData(mode: 'application_data' | 'undecryptable'): void {
    this.earlyDataSkip = { mode, remaining: this.ctx.maxSkippedEarlyData };
  }

  limitRecordPlaintext(maxPlaintext: number): void {
    this.flight.maxProtectedPlaintext = Math.max(1, Math.min(MAX_PLAINTEXT, maxPlaintext));
  }

  setWriteProtection(p: RecordProtection): void {
    this.flight.setProtection(p);
    if (this.state === 'open') this.keyUpdates.sent++;
  }

  // ---- input ---------------------------------------------------------------------------------

  private onSocketData(data: Buffer): void {
    this.reader.push(data);
    if (this.state === 'handshake') {
      if (this.reader.buffered > this.ctx.maxBufferedHandshakeInput) {
        this.fail(new TlsAlert(AlertDescription.unexpected_message, 'too much input buffered during the handshake'));
        return;
      }
      this.wakeReader();
    } else if (this.state === 'open') {
      this.drainRecords();
    }
  }

  private onSocketEnd(): void {
    this.inputEnded = true;
    this.endStage =
      !this.sawClientHello && this.reader.buffered === 0
        ? 'before_client_hello'
        : this.sentFinished
          ? 'after_server_finished'
          : 'during_handshake';
    if (this.state === 'handshake') this.wakeReader();
    // A peer that closes without close_notify truncates the stream; end it for the reader anyway.
    else if (this.state === 'open' && !this.readClosed) this.push(null);
  }

  private onSocketError(err: Error): void {
    if (this.state === 'handshake')
      this.fail(new HandshakeError(`socket error during handshake: ${err.message}`, undefined, undefined, err));
    else this.closeWithError(err);
  }

  /**
   * Tears an established connection down without emitting 'error' on the stream: a peer reset is a
   * normal way for a connection to end, and HTTP/2 over a JS stream cannot survive an 'error'
   * raised while it is writing. Consumers see 'close'; the cause is in `lastError` / 'tlsError'.
   */
  private closeWithError(err: Error): void {
    if (this.destroyed) return;
    this.lastError = err;
    this.emit('tlsError', err);
    this.destroy();
  }

  private wakeReader(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private async nextRecord(): Promise<OpenedRecord> {
    while (true) {
      const raw = this.reader.next();
      if (raw) {
        const skipped = this.skipEarlyDataRecord(raw);
        if (skipped === 'skipped') continue;
        if (skipped) return skipped;
        // CCS is never encrypted during a handshake. In TLS 1.3 every protected record is outwardly
        // application_data, so an alert record is one the peer sent in the clear (it could not read
        // our ServerHello); in TLS 1.2 alerts after the key change are protected and opened below.
        if (
          this.readProtection.encrypted &&
          (raw.type === ContentType.change_cipher_spec || (raw.type === ContentType.alert && !this.tls12Records))
        ) {
          return { type: raw.type, plaintext: raw.fragment };
        }
        return this.readProtection.open(raw);
      }
      if (this.inputEnded) throw new PeerClosedError(this.endStage ?? 'during_handshake');
      if (this.state !== 'handshake') throw new HandshakeError('connection closed');
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  /**
   * RFC 8446 §4.2.10: a server that declines 0-RTT skips the client's early data, up to a bound
   * (more is unexpected_message, §4.6.1). After a HelloRetryRequest every application_data record
   * before the second ClientHello is early data; otherwise it is every record that fails to
   * decrypt under the handshake keys, until the first one that does.
   */
  private skipEarlyDataRecord(raw: RawRecord): OpenedRecord | 'skipped' | undefined {
    const skip = this.earlyDataSkip;
    if (!skip) return undefined;
    if (raw.type !== ContentType.application_data) {
      // The second ClientHello ends early data after a HelloRetryRequest; a CCS may come before it.
      if (skip.mode === 'application_data' && raw.type === ContentType.handshake) this.earlyDataSkip = undefined;
      return undefined;
    }
    let opened: OpenedRecord | null = null;
    if (skip.mode === 'undecryptable') {
      if (!(this.readProtection instanceof Tls13Protection)) return undefined;
      opened = this.readProtection.tryOpen(raw);
      if (opened) {
        this.earlyDataSkip = undefined;
        return opened;
      }
    }
    // The AEAD tag is the only overhead we can be sure of; the rest counts as early data.
    skip.remaining -= Math.max(0, raw.fragment.length - 16);
    if (skip.remaining < 0)
      throw new TlsAlert(AlertDescription.unexpected_message, 'more early data than we skip after declining 0-RTT');
    return 'skipped';
  }

  /** RFC 8446 §5: a single-byte 0x01 CCS between the first ClientHello and the client Finished is dropped. */
  private checkCompatChangeCipherSpec(payload: Buffer): void {
    if (!this.sawClientHello || this.state !== 'handshake') {
      throw new TlsAlert(AlertDescription.unexpected_message, 'change_cipher_spec outside the handshake');
    }
    if (payload.length !== 1 || payload[0] !== 1)
      throw new TlsAlert(AlertDescription.unexpected_message, 'malformed change_cipher_spec');
  }

  private peerAlert(payload: Buffer): Error {
    // RFC 8446 §5.4 (and §5.1 for plaintext records): an alert with no content at all is
    // unexpected_message; one of the wrong length is a decode_error.
    if (payload.length === 0) return new TlsAlert(AlertDescription.unexpected_message, 'empty alert record');
    if (payload.length !== 2) return new TlsAlert(AlertDescription.decode_error, 'malformed alert');
    return new PeerAlert(payload[0], payload[1]);
  }

  /**
   * RFC 8446 §5.1: "if a handshake message is split over two or more records, there MUST NOT be any
   * other records between them" — whatever the record type, during the handshake or after it.
   */
  private checkNotInterleaved(record: OpenedRecord): void {
    if (record.type !== ContentType.handshake && this.joiner.hasPartial) {
      throw new TlsAlert(
        AlertDescription.unexpected_message,
        `${ContentType[record.type]} record inside a fragmented handshake message`,
      );
    }
  }

  /** Established: process every buffered record, honouring backpressure from our reader. */
  private drainRecords(): void {
    try {
      while (this.state === 'open' && !this.readPaused && !this.readClosed) {
        const raw = this.reader.next();
        if (!raw) return;
        const record = this.readProtection.open(raw);
        this.checkNotInterleaved(record);
        switch (record.type) {
          case ContentType.application_data:
            this.requestPeerKeyUpdateIfDue();
            if (record.plaintext.length > 0 && !this.push(record.plaintext)) {
              this.readPaused = true;
              this.socket.pause();
            }
            break;
          case ContentType.handshake:
            if (record.plaintext.length === 0)
              throw new TlsAlert(AlertDescription.unexpected_message, 'empty handshake record');
            this.joiner.push(record.plaintext);
            for (let m = this.joiner.next(); m; m = this.joiner.next()) this.session?.onPostHandshakeMessage(m);
            break;
          case ContentType.alert:
            // close_notify ends most connections: recognised from its bytes, without building an
            // Error that would be thrown away.
            if (record.plaintext.length === 2 && record.plaintext[1] === AlertDescription.close_notify) {
              // Anything after close_notify is ignored (RFC 8446 §6.1); the consumer ends our side.
              this.readClosed = true;
              this.push(null);
              return;
            }
            throw this.peerAlert(record.plaintext);
          default:
            throw new TlsAlert(AlertDescription.unexpected_message, 'change_cipher_spec after the handshake');
        }
      }
    } catch (err) {
      this.fail(err);
    }
  }

  override _read(): void {
    if (this.readPaused) {
      this.readPaused = false;
      this.socket.resume();
      this.drainRecords();
    }
  }

  // ---- output --------------------------------------------------------------------------------

  /**
   * RFC 8446 §5.5: keys must change before the AEAD's usage limit (2^24.5 full records for AES-GCM).
   * At `keyUpdateAfterRecords` records under one key we send a KeyUpdate and switch (TLS 1.3 only;
   * TLS 1.2 has no key update, and renegotiation is refused).
   */
  private keyUpdateDue(): boolean {
    return (
      this.session?.updateWriteKeys !== undefined && this.flight.protection.sequence >= this.ctx.keyUpdateAfterRecords
    );
  }

  /** The peer's records under one key near the same limit: ask it to update (and update ours). */
  private requestPeerKeyUpdateIfDue(): void {
    if (
      this.peerUpdateRequested ||
      !this.session?.updateWriteKeys ||
      this.readProtection.sequence < this.ctx.keyUpdateAfterRecords
    )
      return;
    this.peerUpdateRequested = true;
    this.session.updateWriteKeys(true);
  }

  /**
   * Application data → records of at most 2^14 bytes, written in one gathered socket write; each
   * record's pieces are written as they are, not copied together.
   */
  private writeApplicationData(chunks: Buffer[], callback: (err?: Error | null) => void): void {
    if (this.state !== 'open' || this.socket.destroyed) {
      callback(); // closed underneath the writer: drop quietly, 'close' tells the consumer
      return;
    }
    // Handshake messages still queued (session tickets) go first, in the same write.
    let records: Buffer[] = this.flight.pending ? this.flight.seal() : [];
    const data = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    const size = this.flight.fragmentSize();
    for (let off = 0; off < data.length; off += size) {
      if (this.keyUpdateDue()) {
        // Records sealed so far go out before the KeyUpdate, which is the last record under the old key.
        if (records.length > 0) this.writeRecords(records);
        records = [];
        this.session!.updateWriteKeys!(false);
      }
      records.push(...this.flight.protection.sealParts(ContentType.application_data, data.subarray(off, off + size)));
    }
    if (records.length === 0) {
      callback();
      return;
    }
    // Complete the write as soon as the socket accepts it, and wait for 'drain' only under
    // backpressure (as net.Socket does). A write pending across a teardown would trip Node's
    // JSStreamSocket (which wraps us under http2), so the window is kept as small as possible.
    if (this.writeRecords(records)) {
      callback();
    } else {
      this.drainWaiters.push(callback);
    }
  }

  /** Writes records as one gathered write (cork/uncork → writev), without copying them together. */
  private writeRecords(records: Buffer[]): boolean {
    if (records.length === 1) return this.socket.write(records[0]);
    this.socket.cork();
    let ok = true;
    for (const r of records) ok = this.socket.write(r);
    this.socket.uncork();
    return ok;
  }

  private releaseDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.state === 'handshake') this.pendingWrites.push({ chunks: [chunk], callback });
    else this.writeApplicationData([chunk], callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (err?: Error | null) => void): void {
    const bufs = chunks.map((c) => c.chunk);
    if (this.state === 'handshake') this.pendingWrites.push({ chunks: bufs, callback });
    else this.writeApplicationData(bufs, callback);
  }

  override _final(callback: (err?: Error | null) => void): void {
    if (this.state === 'open' && !this.socket.destroyed) {
      this.flush(); // session tickets not yet sent go before close_notify
      this.socket.write(
        this.flight.protection.seal(ContentType.alert, encodeAlert(AlertDescription.close_notify, AlertLevel.warning)),
      );
      this.socket.end();
    }
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.state = 'closed';
    clearTimeout(this.handshakeTimer);
    this.wakeReader();
    // Pending writes complete quietly: the stream is being destroyed, the data has nowhere to go.
    for (const w of this.pendingWrites) w.callback();
    this.pendingWrites = [];
    this.releaseDrainWaiters();
    if (!this.socket.destroyed) {
      // End rather than destroy, so an alert already written reaches the peer before the FIN; a
      // peer that never closes its side is cut off shortly after. (Ending an already-ended socket
      // only builds an ERR_STREAM_ALREADY_FINISHED nobody reads, so that is skipped.)
      if (!this.socket.writableEnded) this.socket.end();
      setTimeout(() => this.socket.destroy(), 2000).unref();
    }
    callback(err);
  }

  // ---- handshake driver ----------------------------------------------------------------------

  private async runHandshake(): Promise<void> {
    try {
      // Admission control (per-client limits) needs to know whose handshake a key operation is for.
      const ops = this.ctx.keyOperations;
      const ctx = isConnectionScoped(ops)
        ? { ...this.ctx, keyOperations: ops.forConnection(this.remoteAddress) }
        : this.ctx;
      const result = await serverHandshake(this, ctx);
      if (this.state !== 'handshake') return; // failed or closed while we were waiting
      clearTimeout(this.handshakeTimer);
      this.handshakeInfo = result.info;
      this.session = result.session;
      this.alpnProtocol = result.info.alpn ?? false;
      this.servername = result.info.serverName ?? false;
      this.state = 'open';
      const handshakeMs = Number(process.hrtime.bigint() - this.startedAt) / 1e6;
      this.handshakeMs = handshakeMs;
      this.emit('secure', { ...result.info, handshakeMs });
      const writes = this.pendingWrites;
      this.pendingWrites = [];
      for (const w of writes) this.writeApplicationData(w.chunks, w.callback);
      if (this.inputEnded) this.push(null);
      else this.drainRecords();
    } catch (err) {
      this.fail(err);
    }
  }

  /** Ends the connection after a protocol error, sending the alert the error calls for. */
  private fail(err: unknown): void {
    if (this.state === 'closed') return;
    let sent: AlertDescription | undefined;
    let received: string | undefined;
    if (err instanceof TlsAlert) sent = err.description;
    else if (err instanceof PeerAlert) received = AlertDescription[err.description] ?? String(err.description);
    else if (err instanceof KeyOperationError) sent = KEY_OPERATION_ALERTS[err.code];
    else if (!(err instanceof HandshakeError)) sent = AlertDescription.internal_error;

    this.flight.discard(); // a half-built flight is not sent after an error, nor sealed
    if (sent !== undefined && !this.socket.destroyed) {
      try {
        this.socket.write(this.flight.alertProtection.seal(ContentType.alert, encodeAlert(sent)));
      } catch {
        // the alert is best effort; closing is what matters
      }
    }
    const wasHandshake = this.state === 'handshake';
    this.state = 'closed';
    const message = err instanceof Error ? err.message : String(err);
    if (wasHandshake) {
      this.emit(
        'handshakeError',
        new HandshakeError(message, sent !== undefined ? AlertDescription[sent] : undefined, received, err),
      );
      this.destroy();
    } else {
      this.closeWithError(err instanceof Error ? err : new Error(message));
    }
  }
}
