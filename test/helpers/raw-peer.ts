/** A raw TCP peer: sends bytes, collects what the server answers until it closes (or a deadline). */
import * as net from 'node:net';
import * as crypto from 'node:crypto';
import {
  HandshakeJoiner,
  HandshakeMessage,
  handshakeMessage,
  HandshakeType,
} from '../../edge-proxy/src/tls/handshake-joiner';
import {
  ContentType,
  RawRecord,
  recordHeader,
  Tls12Protection,
  Tls13Protection,
} from '../../edge-proxy/src/tls/record-layer';
import { prf12 } from '../../contract/tls12-prf';
import {
  KeySchedule,
  finishedVerifyData,
  nextTrafficSecret,
  trafficKeys,
} from '../../edge-proxy/src/tls/tls13/key-schedule';
import { Transcript } from '../../edge-proxy/src/tls/transcript';
import { TLS13_SUITES, CipherSuite } from '../../edge-proxy/src/tls/suites';
import { Reader } from '../../edge-proxy/src/tls/codec';
import { clientHelloBody, HelloOptions } from './client-hello';

export interface RawExchange {
  received: Buffer;
  closed: boolean;
  /** The fatal alert description if the server's first alert record is in the clear. */
  plainAlert?: number;
}

export function rawExchange(port: number, chunks: Buffer[], waitMs = 3000, gapMs = 0): Promise<RawExchange> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    let closed = false;
    const done = (): void => {
      clearTimeout(timer);
      const received = Buffer.concat(got);
      let plainAlert: number | undefined;
      for (let off = 0; off + 5 <= received.length;) {
        const len = received.readUInt16BE(off + 3);
        if (received[off] === 21 && len === 2) {
          plainAlert = received[off + 6];
          break;
        }
        off += 5 + len;
      }
      sock.destroy();
      resolve({ received, closed, plainAlert });
    };
    const timer = setTimeout(done, waitMs);
    sock.on('data', (d) => got.push(d));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      closed = true;
      done();
    });
    sock.on('connect', async () => {
      for (const c of chunks) {
        if (sock.destroyed) break;
        sock.write(c);
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
    });
  });
}

// ---- A scriptable TLS 1.3 client for negative tests ------------------------------------------------
//
// Real clients never send the broken inputs the alert tests need past the ClientHello (a bad Finished,
// a record with a wrong tag, a padded all-zero record...). This client does the handshake with the
// engine's own primitives — key schedule (checked against RFC 8448 in tls13-rfc8448.test.ts), record
// protection, transcript — and lets a test break exactly one thing.

const HRR_RANDOM = Buffer.from('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c', 'hex');

/**
 * Sends records in the clear (a ClientHello and anything after it) and reports the server's answer:
 * the alert it sends, in the clear before any keys (RFC 8446 §6), and whether it closed.
 */
export async function plainAlert(port: number, chunks: Buffer[]): Promise<{ alert?: number; closed: boolean }> {
  const r = await rawExchange(port, chunks, 8000);
  return { alert: r.plainAlert, closed: r.closed };
}

export interface ClientShare {
  group: number;
  share: Buffer;
  agree(peer: Buffer): Buffer;
}

export function clientShare(group: number): ClientShare {
  if (group === 0x11ec)
    return hybridClientShare(
      crypto.generateKeyPairSync('ml-kem-768').privateKey,
      crypto.generateKeyPairSync('x25519').privateKey,
    );
  if (group === 0x001d) {
    const { privateKey, publicKey } = crypto.generateKeyPairSync('x25519');
    return {
      group,
      share: Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'),
      agree: (peer) =>
        crypto.diffieHellman({
          privateKey,
          publicKey: crypto.createPublicKey({
            key: { kty: 'OKP', crv: 'X25519', x: peer.toString('base64url') },
            format: 'jwk',
          }),
        }),
    };
  }
  const ecdh = crypto.createECDH(group === 0x0017 ? 'prime256v1' : 'secp384r1');
  const share = ecdh.generateKeys();
  return { group, share, agree: (peer) => ecdh.computeSecret(peer) };
}

/**
 * The client side of X25519MLKEM768 (draft-ietf-tls-ecdhe-mlkem-04 §4): share = encapsulation key ‖
 * X25519 share; secret = decapsulated ML-KEM secret ‖ X25519 secret.
 */
export function hybridClientShare(mlkem: crypto.KeyObject, x25519: crypto.KeyObject): ClientShare {
  const ek = Buffer.from(crypto.createPublicKey(mlkem).export({ format: 'jwk' }).pub as string, 'base64url');
  const x = Buffer.from(crypto.createPublicKey(x25519).export({ format: 'jwk' }).x!, 'base64url');
  return {
    group: 0x11ec,
    share: Buffer.concat([ek, x]),
    agree: (peer) => {
      const kem = crypto.decapsulate(mlkem, peer.subarray(0, 1088));
      const dh = crypto.diffieHellman({
        privateKey: x25519,
        publicKey: crypto.createPublicKey({
          key: { kty: 'OKP', crv: 'X25519', x: peer.subarray(1088).toString('base64url') },
          format: 'jwk',
        }),
      });
      return Buffer.concat([kem, dh]);
    },
  };
}

function parseExtensionsBlock(r: Reader): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  const block = r.sub16('extensions');
  while (block.remaining > 0) {
    const t = block.u16();
    out.set(t, block.vec16('ext'));
  }
  return out;
}

export interface ServerFlight {
  helloRetry: boolean;
  /** ServerHello legacy fields (RFC 8446 §4.1.3). */
  serverHello: { legacyVersion: number; sessionId: Buffer; compression: number };
  serverHelloExtensions: Map<number, Buffer>;
  encryptedExtensions: Map<number, Buffer>;
  /** Handshake messages after EncryptedExtensions, up to and including Finished. */
  messages: HandshakeMessage[];
  /** Plaintext lengths of the protected handshake records the server sent. */
  handshakeRecordSizes: number[];
}

export interface Tls13HandshakeOptions {
  hello?: HelloOptions;
  /** Group of the key share we send first (default x25519); `null` sends none (forces HelloRetryRequest). */
  shareGroup?: number | null;
  /** Sent right after the (first) ClientHello, e.g. 0-RTT records. */
  afterClientHello?: Buffer[];
  /** Extensions to drop from the second ClientHello (early_data must go, RFC 8446 §4.2.10). */
  dropOnRetry?: number[];
  /** Overrides applied to the second ClientHello (to test what it may not change). */
  retryOverrides?: HelloOptions;
}

export class RawTls13Client {
  private readonly sock: net.Socket;
  private input = Buffer.alloc(0);
  private waiter?: () => void;
  closed = false;
  private readonly joiner = new HandshakeJoiner(1 << 20);
  private read?: Tls13Protection;
  private write?: Tls13Protection;
  suite: CipherSuite = TLS13_SUITES[0];
  transcript?: Transcript;
  private schedule?: KeySchedule;
  private hs?: { client: Buffer; server: Buffer };
  private app?: { client: Buffer; server: Buffer };
  /** Alerts received (descriptions), decrypted when protected. */
  readonly alerts: number[] = [];
  /** Application data received after the handshake. */
  appData = Buffer.alloc(0);
  /** Size of each protected application-data record received (plaintext + content type). */
  readonly appRecordSizes: number[] = [];

  private constructor(sock: net.Socket) {
    this.sock = sock;
    sock.on('data', (d: Buffer) => {
      this.input = Buffer.concat([this.input, d]);
      this.wake();
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static connect(port: number): Promise<RawTls13Client> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new RawTls13Client(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  send(...chunks: Buffer[]): void {
    if (!this.sock.destroyed) this.sock.write(Buffer.concat(chunks));
  }

  /** A protected record under our current write keys; `padding` zero bytes after the content type. */
  protectedRecord(type: ContentType, plaintext: Buffer, padding = 0): Buffer {
    if (!this.write) throw new Error('no write keys yet');
    if (padding === 0) return this.write.seal(type, plaintext);
    // Tls13Protection seals without padding: append the type and the zeros ourselves and seal as
    // "type 0" content, which is exactly TLSInnerPlaintext with padding (RFC 8446 §5.4).
    return this.sealRaw(Buffer.concat([plaintext, Buffer.from([type]), Buffer.alloc(padding)]));
  }

  /** Seals `inner` as the whole TLSInnerPlaintext (no content type added): for all-zero records. */
  sealRaw(inner: Buffer): Buffer {
    if (!this.write) throw new Error('no write keys yet');
    // seal(type, x) encrypts x ‖ type; with type 0 that is x ‖ 0x00, so drop one byte of `inner`.
    if (inner.length === 0 || inner[inner.length - 1] !== 0)
      throw new Error('sealRaw needs inner plaintext ending in a zero byte');
    return this.write.seal(0 as ContentType, inner.subarray(0, inner.length - 1));
  }

  private async nextRawRecord(deadline: number): Promise<{ type: number; header: Buffer; fragment: Buffer } | null> {
    while (true) {
      if (this.input.length >= 5) {
        const len = this.input.readUInt16BE(3);
        if (this.input.length >= 5 + len) {
          const header = this.input.subarray(0, 5);
          const fragment = this.input.subarray(5, 5 + len);
          this.input = this.input.subarray(5 + len);
          return { type: header[0], header, fragment };
        }
      }
      if (this.closed || Date.now() > deadline) return null;
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, Math.max(1, deadline - Date.now())).unref();
      });
    }
  }

  /** Next record, decrypted when keys are set; alerts are collected. Null on close or deadline. */
  async nextRecord(deadline = Date.now() + 10_000): Promise<{ type: number; plaintext: Buffer; size: number } | null> {
    while (true) {
      const raw = await this.nextRawRecord(deadline);
      if (!raw) return null;
      if (raw.type === ContentType.change_cipher_spec) continue;
      let rec = { type: raw.type, plaintext: raw.fragment, size: raw.fragment.length };
      if (raw.type === ContentType.application_data && this.read) {
        const opened = this.read.open(raw);
        rec = { type: opened.type, plaintext: opened.plaintext, size: opened.plaintext.length + 1 };
      }
      if (rec.type === ContentType.alert && rec.plaintext.length === 2) this.alerts.push(rec.plaintext[1]);
      return rec;
    }
  }

  async nextHandshakeMessage(sizes?: number[]): Promise<HandshakeMessage> {
    while (true) {
      const m = this.joiner.next();
      if (m) return m;
      const rec = await this.nextRecord();
      if (!rec)
        throw new Error(`connection closed before the next handshake message (alerts: ${this.alerts.join(',')})`);
      if (rec.type === ContentType.alert) throw new Error(`server sent alert ${rec.plaintext[1]}`);
      if (rec.type !== ContentType.handshake) throw new Error(`unexpected record type ${rec.type}`);
      sizes?.push(rec.size);
      this.joiner.push(rec.plaintext);
    }
  }

  /** Runs the handshake up to and including the server Finished; our Finished is not sent yet. */
  async handshake(o: Tls13HandshakeOptions = {}): Promise<ServerFlight> {
    const hello = { ...o.hello };
    const suiteId = (hello.suites ?? [0x1301]).find((s) => TLS13_SUITES.some((x) => x.id === s)) ?? 0x1301;
    hello.random ??= crypto.randomBytes(32);
    let share = o.shareGroup === null ? undefined : clientShare(o.shareGroup ?? 0x001d);
    const ch1 = handshakeMessage(
      HandshakeType.client_hello,
      clientHelloBody({ ...hello, shares: share ? [{ group: share.group, share: share.share }] : [] }),
    );
    this.send(plainRecordOf(ContentType.handshake, ch1), ...(o.afterClientHello ?? []));
    let sh = await this.nextHandshakeMessage();
    let helloRetry = false;
    let transcript: Transcript;
    let chRaw = ch1;
    let r = new Reader(sh.body, 'ServerHello');
    r.u16();
    let random = r.bytes(32);
    if (random.equals(HRR_RANDOM)) {
      helloRetry = true;
      r.vec8('sid');
      const suite = r.u16();
      this.suite = TLS13_SUITES.find((s) => s.id === suite)!;
      r.u8();
      const exts = parseExtensionsBlock(r);
      const group = exts.get(51)!.readUInt16BE(0);
      transcript = Transcript.afterHelloRetry(this.suite.hash, ch1);
      transcript.update(sh.raw);
      share = clientShare(group);
      const extra = (hello.extra ?? []).filter((e) => !(o.dropOnRetry ?? []).includes(e.type));
      chRaw = handshakeMessage(
        HandshakeType.client_hello,
        clientHelloBody({ ...hello, extra, ...o.retryOverrides, shares: [{ group, share: share.share }] }),
      );
      this.send(
        plainRecordOf(ContentType.change_cipher_spec, Buffer.from([1])),
        plainRecordOf(ContentType.handshake, chRaw),
      );
      sh = await this.nextHandshakeMessage();
      r = new Reader(sh.body, 'ServerHello');
      r.u16();
      random = r.bytes(32);
    } else {
      this.suite = TLS13_SUITES.find((s) => s.id === suiteId)!;
      transcript = new Transcript(this.suite.hash);
    }
    if (sh.type !== HandshakeType.server_hello) throw new Error(`expected ServerHello, got ${sh.type}`);
    const legacyVersion = sh.body.readUInt16BE(0);
    const sessionId = Buffer.from(r.vec8('sid'));
    this.suite = TLS13_SUITES.find((s) => s.id === r.u16())!;
    const compression = r.u8();
    const shExts = parseExtensionsBlock(r);
    const ks = new Reader(shExts.get(51)!, 'key_share');
    ks.u16();
    const serverShare = ks.vec16('share');
    transcript.update(chRaw);
    transcript.update(sh.raw);
    this.schedule = new KeySchedule(this.suite.hash);
    this.hs = this.schedule.handshakeTrafficSecrets(share!.agree(serverShare), transcript.digest());
    this.read = this.protection(this.hs.server);
    this.write = this.protection(this.hs.client);
    const sizes: number[] = [];
    const ee = await this.nextHandshakeMessage(sizes);
    transcript.update(ee.raw);
    const eeExts = parseExtensionsBlock(new Reader(ee.body, 'EncryptedExtensions'));
    const messages: HandshakeMessage[] = [];
    while (true) {
      const m = await this.nextHandshakeMessage(sizes);
      messages.push(m);
      if (m.type === HandshakeType.finished) {
        const expected = finishedVerifyData(this.suite.hash, this.hs.server, transcript.digest());
        if (!m.body.equals(expected)) throw new Error('server Finished does not verify');
      }
      transcript.update(m.raw);
      if (m.type === HandshakeType.finished) break;
    }
    this.app = this.schedule.applicationTrafficSecrets(transcript.digest());
    this.read = this.protection(this.app.server);
    this.transcript = transcript;
    return {
      helloRetry,
      serverHello: { legacyVersion, sessionId, compression },
      serverHelloExtensions: shExts,
      encryptedExtensions: eeExts,
      messages,
      handshakeRecordSizes: sizes,
    };
  }

  private protection(secret: Buffer): Tls13Protection {
    const k = trafficKeys(this.suite.hash, secret, this.suite.keyLength);
    return new Tls13Protection(this.suite.aead, k.key, k.iv);
  }

  /** Our Finished (or a wrong one) under the handshake keys; then switch to application keys. */
  finishedMessage(valid = true): Buffer {
    const verify = finishedVerifyData(this.suite.hash, this.hs!.client, this.transcript!.digest());
    if (!valid) verify[0] ^= 1;
    return handshakeMessage(HandshakeType.finished, verify);
  }

  sendFinished(valid = true): void {
    this.send(this.protectedRecord(ContentType.handshake, this.finishedMessage(valid)));
    this.useApplicationKeys();
  }

  useApplicationKeys(): void {
    this.write = this.protection(this.app!.client);
  }

  /** Reads until the server closes (or the deadline): the first alert and whether it closed. */
  async untilClosed(deadlineMs = 8000): Promise<{ alert?: number; closed: boolean }> {
    const deadline = Date.now() + deadlineMs;
    try {
      while (true) {
        const rec = await this.nextRecord(deadline);
        if (!rec) break;
        if (rec.type === ContentType.application_data) this.appData = Buffer.concat([this.appData, rec.plaintext]);
      }
    } catch {
      // a record we cannot open: stop reading, report what we have
    }
    const closed = this.closed;
    this.sock.destroy();
    return { alert: this.alerts[0], closed };
  }

  /** Reads application data until `n` bytes arrived (or close/deadline). */
  async readAppData(n: number, deadlineMs = 8000): Promise<Buffer> {
    const deadline = Date.now() + deadlineMs;
    while (this.appData.length < n) {
      const rec = await this.nextRecord(deadline);
      if (!rec) break;
      if (rec.type === ContentType.application_data) {
        this.appData = Buffer.concat([this.appData, rec.plaintext]);
        this.appRecordSizes.push(rec.size);
      } else if (rec.type === ContentType.handshake) this.postHandshake(rec.plaintext);
    }
    return this.appData;
  }

  /** Post-handshake messages: NewSessionTicket is ignored; KeyUpdate moves our read keys. */
  readonly keyUpdatesReceived: boolean[] = [];
  private postHandshake(data: Buffer): void {
    this.joiner.push(data);
    for (let m = this.joiner.next(); m; m = this.joiner.next()) {
      if (m.type === HandshakeType.key_update) {
        this.keyUpdatesReceived.push(m.body[0] === 1);
        this.app!.server = nextTrafficSecret(this.suite.hash, this.app!.server);
        this.read = this.protection(this.app!.server);
      }
    }
  }

  /** Sends our KeyUpdate and switches our write keys. */
  sendKeyUpdate(requestUpdate: boolean): void {
    this.send(
      this.protectedRecord(
        ContentType.handshake,
        handshakeMessage(HandshakeType.key_update, Buffer.from([requestUpdate ? 1 : 0])),
      ),
    );
    this.app!.client = nextTrafficSecret(this.suite.hash, this.app!.client);
    this.write = this.protection(this.app!.client);
  }

  destroy(): void {
    this.sock.destroy();
  }
}

function plainRecordOf(type: ContentType, payload: Buffer): Buffer {
  return Buffer.concat([recordHeader(type, payload.length), payload]);
}

// ---- A raw TLS 1.2 client that resumes from a session ticket ----------------------------------------
//
// Resumption is where RFC 5077 §3.4 matters (a ticket with an empty session id must resume), and no
// real client sends an empty session id with its ticket, so this one does, with the engine's record
// protection and the key service's PRF; it checks the server's Finished and then echoes data.

export interface Tls12Resumption {
  /** The session id in the ServerHello. */
  sessionId: Buffer;
  /** Handshake message types the server sent in the clear, in order, before its ChangeCipherSpec. */
  messageTypes: number[];
  /** Whether a ChangeCipherSpec and a Finished that verifies under the ticket's master secret followed. */
  finishedVerifies: boolean;
  /** What came back after our Finished and `appData`. */
  echoed: Buffer;
  alert?: number;
}

export async function resumeTls12(
  port: number,
  o: {
    ticket: Buffer;
    master: Buffer;
    suite: CipherSuite;
    sessionId: Buffer;
    extendedMasterSecret: boolean;
    appData: Buffer;
  },
): Promise<Tls12Resumption> {
  const sock = net.connect(port, '127.0.0.1');
  const stream = new RawRecordStream(sock);
  await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  const extra = [
    { type: 35, data: o.ticket },
    ...(o.extendedMasterSecret ? [{ type: 23, data: Buffer.alloc(0) }] : []),
  ];
  const ch = handshakeMessage(
    HandshakeType.client_hello,
    clientHelloBody({ versions: null, suites: [o.suite.id], sessionId: o.sessionId, extra }),
  );
  const clientRandom = ch.subarray(6, 38);
  sock.write(plainRecordOf(ContentType.handshake, ch));
  const transcript = new Transcript(o.suite.hash);
  transcript.update(ch);
  const result: Tls12Resumption = {
    sessionId: Buffer.alloc(0),
    messageTypes: [],
    finishedVerifies: false,
    echoed: Buffer.alloc(0),
  };
  const joiner = new HandshakeJoiner(1 << 20);
  let serverRandom = Buffer.alloc(32);
  const deadline = Date.now() + 10_000;
  let rec = await stream.next(deadline);
  while (rec && rec.type === ContentType.handshake) {
    joiner.push(rec.fragment);
    for (let m = joiner.next(); m; m = joiner.next()) {
      result.messageTypes.push(m.type);
      if (m.type === HandshakeType.server_hello) {
        serverRandom = Buffer.from(m.body.subarray(2, 34));
        result.sessionId = Buffer.from(m.body.subarray(35, 35 + m.body[34]));
      }
      transcript.update(m.raw);
    }
    rec = await stream.next(deadline);
  }
  if (rec?.type === ContentType.alert) result.alert = rec.fragment[1];
  if (rec?.type !== ContentType.change_cipher_spec) {
    sock.destroy();
    return result;
  }
  const k = o.suite.keyLength;
  const iv = o.suite.fixedIvLength!;
  const block = prf12(
    o.suite.hash,
    o.master,
    'key expansion',
    Buffer.concat([serverRandom, clientRandom]),
    2 * k + 2 * iv,
  );
  const read = new Tls12Protection(
    o.suite.aead,
    block.subarray(k, 2 * k),
    block.subarray(2 * k + iv),
    o.suite.recordIvLength!,
  );
  const write = new Tls12Protection(
    o.suite.aead,
    block.subarray(0, k),
    block.subarray(2 * k, 2 * k + iv),
    o.suite.recordIvLength!,
  );
  const finRecord = await stream.next(deadline);
  if (!finRecord) return result;
  const fin = read.open(finRecord).plaintext;
  result.finishedVerifies = fin
    .subarray(4)
    .equals(prf12(o.suite.hash, o.master, 'server finished', transcript.digest(), 12));
  transcript.update(fin);
  const clientFin = handshakeMessage(
    HandshakeType.finished,
    prf12(o.suite.hash, o.master, 'client finished', transcript.digest(), 12),
  );
  sock.write(
    Buffer.concat([
      plainRecordOf(ContentType.change_cipher_spec, Buffer.from([1])),
      write.seal(ContentType.handshake, clientFin),
      write.seal(ContentType.application_data, o.appData),
    ]),
  );
  while (result.echoed.length < o.appData.length) {
    const r = await stream.next(deadline);
    if (!r) break;
    const opened = read.open(r);
    if (opened.type === ContentType.alert) result.alert = opened.plaintext[1];
    if (opened.type === ContentType.application_data) result.echoed = Buffer.concat([result.echoed, opened.plaintext]);
  }
  sock.destroy();
  return result;
}

/** Records from a socket, as they arrive. */
class RawRecordStream {
  private input = Buffer.alloc(0);
  private closed = false;
  private waiter?: () => void;

  constructor(sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.input = Buffer.concat([this.input, d]);
      this.wake();
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  async next(deadline: number): Promise<RawRecord | null> {
    while (true) {
      if (this.input.length >= 5 && this.input.length >= 5 + this.input.readUInt16BE(3)) {
        const len = this.input.readUInt16BE(3);
        const rec = {
          type: this.input[0],
          header: this.input.subarray(0, 5),
          fragment: this.input.subarray(5, 5 + len),
        };
        this.input = this.input.subarray(5 + len);
        return rec;
      }
      if (this.closed || Date.now() > deadline) return null;
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, Math.max(1, deadline - Date.now())).unref();
      });
    }
  }
}
