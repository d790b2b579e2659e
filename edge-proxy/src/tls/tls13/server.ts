/**
 * TLS 1.3 server handshake (RFC 8446 §2, §4) in the manner of Go's handshake_server_tls13.go:
 * `handshake()` is a table of contents of named steps — process the ClientHello (with a
 * HelloRetryRequest if needed) → check for resumption → ServerHello, EncryptedExtensions →
 * Certificate, CertificateVerify (the one remote key operation) → Finished → the client's
 * Certificate and Finished → NewSessionTickets. Each `await io.readHandshakeMessage()` names the
 * message it requires, so ordering rules are enforced by the shape of the code.
 */
import * as crypto from 'node:crypto';
import { AlertDescription, TlsAlert } from '../alerts';
import { Writer } from '../codec';
import type { TlsContext } from '../context';
import { ExtensionType, Extension, encodeAlpn } from '../extensions';
import { negotiateAlpn, requestedServerName } from '../negotiation';
import { NamedGroup, respondToKeyShare } from '../groups';
import type { HandshakeInfo, HandshakeIo } from '../handshake-io';
import { HandshakeMessage, HandshakeType } from '../handshake-joiner';
import { ClientHello, parseClientHello } from '../msgs/client-hello';
import { encodeServerHello } from '../msgs/server-hello';
import { encodeEncryptedExtensions } from '../msgs/encrypted-extensions';
import { encodeTls13Certificate } from '../msgs/certificate';
import { encodeCertificateVerify } from '../msgs/certificate-verify';
import { encodeFinished } from '../msgs/finished';
import { encodeKeyUpdate, parseKeyUpdate } from '../msgs/key-update';
import { encodeNewSessionTicket13 } from '../msgs/new-session-ticket';
import { Tls13Protection } from '../record-layer';
import type { ServerCertificate } from '../certificates';
import { chooseScheme, SignatureScheme, tls13SchemesFor } from '../sigalgs';
import { CipherSuite, TLS13_SUITES } from '../suites';
import { Transcript } from '../transcript';
import { finishedVerifyData, hkdfExpandLabel, KeySchedule, nextTrafficSecret, trafficKeys } from './key-schedule';
import { ticketFresh } from '../tickets';
import { verifyFinished } from '../finished';
import { certificateRequest13, ClientAuthResult, readClientAuth13, resumedClientAuth } from '../client-auth';
import { checkClientHelloExtensions13, checkRetriedClientHello } from '../hello-checks';
import { clientRecordSizeLimit, maxPlaintextUnder, recordSizeLimitExtension } from '../record-size-limit';
import { clientWantsOcsp } from '../ocsp-stapling';
import { certificateStatusBody } from '../msgs/certificate-status';

export const TLS13 = 0x0304;
export const TLS12 = 0x0303;

/** ServerHello.random of a HelloRetryRequest: SHA-256("HelloRetryRequest") (RFC 8446 §4.1.3). */
export const HELLO_RETRY_RANDOM = Buffer.from(
  'cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c',
  'hex',
);

/** What the ClientHello asks for and what we chose, computed the same way for a first and a retried hello. */
interface Negotiated {
  suite: CipherSuite;
  cert: ServerCertificate;
  scheme: SignatureScheme;
  serverName?: string;
  sniMatched: boolean;
  alpn?: string;
  clientGroups: number[];
  shares: { group: number; share: Buffer }[];
  /** The client's record_size_limit (RFC 8449), if it sent one. */
  recordSizeLimit?: number;
  /** The client sent status_request for OCSP (RFC 6066 §8). */
  wantsOcsp: boolean;
}

function required<T>(value: T | undefined, name: string): T {
  // RFC 8446 §9.2: a ClientHello without a mandatory extension gets missing_extension.
  if (value === undefined)
    throw new TlsAlert(AlertDescription.missing_extension, `ClientHello has no ${name} extension`);
  return value;
}

function negotiate(hello: ClientHello, ctx: TlsContext): Negotiated {
  // RFC 8446 §4.1.2: legacy_compression_methods must be exactly one byte, null.
  if (hello.compressionMethods.length !== 1 || hello.compressionMethods[0] !== 0) {
    throw new TlsAlert(AlertDescription.illegal_parameter, 'TLS 1.3 ClientHello must offer only null compression');
  }
  checkClientHelloExtensions13(hello);
  const suite = ctx.tls13Suites.find((s) => hello.cipherSuites.includes(s.id));
  if (!suite) throw new TlsAlert(AlertDescription.handshake_failure, 'no TLS 1.3 cipher suite in common');

  const sigalgs = required(hello.signatureAlgorithms, 'signature_algorithms');
  const clientGroups = required(hello.supportedGroups, 'supported_groups');
  const shares = required(hello.keyShares, 'key_share');
  // RFC 8446 §4.2.8: every share must be for a group the client listed.
  for (const s of shares) {
    if (!clientGroups.includes(s.group))
      throw new TlsAlert(AlertDescription.illegal_parameter, 'key share for a group not in supported_groups');
  }

  const serverName = requestedServerName(hello);
  const { certs, matched } = ctx.certificates.candidates(serverName);
  let cert: ServerCertificate | undefined;
  let scheme: SignatureScheme | undefined;
  for (const c of certs) {
    scheme = chooseScheme(tls13SchemesFor(c.shape), sigalgs);
    if (scheme) {
      cert = c;
      break;
    }
  }
  if (!cert || !scheme)
    throw new TlsAlert(AlertDescription.handshake_failure, 'no certificate with a signature scheme the client accepts');

  const alpn = negotiateAlpn(hello, ctx.alpnProtocols);
  // certificate_authorities (§4.2.4) is read by nobody: our certificates are chosen by SNI and
  // signature scheme; a client that cannot verify the chain will say so with an alert.
  const recordSizeLimit = clientRecordSizeLimit(hello);
  const wantsOcsp = clientWantsOcsp(hello);
  return {
    suite,
    cert,
    scheme,
    serverName,
    sniMatched: matched && serverName !== undefined,
    alpn,
    clientGroups,
    shares,
    recordSizeLimit,
    wantsOcsp,
  };
}

function supportedVersionsExtension(): Extension {
  return { type: ExtensionType.supported_versions, data: new Writer().u16(TLS13).finish() };
}

/** The established session: traffic secrets kept for KeyUpdate (RFC 8446 §4.6.3). */
export class Tls13Session {
  constructor(
    private readonly io: HandshakeIo,
    private readonly suite: CipherSuite,
    private clientSecret: Buffer,
    private serverSecret: Buffer,
  ) {}

  onPostHandshakeMessage(msg: HandshakeMessage): void {
    switch (msg.type) {
      case HandshakeType.key_update: {
        const requested = parseKeyUpdate(msg.body);
        this.clientSecret = nextTrafficSecret(this.suite.hash, this.clientSecret);
        const k = trafficKeys(this.suite.hash, this.clientSecret, this.suite.keyLength);
        this.io.setReadProtection(new Tls13Protection(this.suite.aead, k.key, k.iv));
        if (requested) this.updateWriteKeys(false);
        return;
      }
      default:
        throw new TlsAlert(AlertDescription.unexpected_message, `unexpected post-handshake message type ${msg.type}`);
    }
  }

  /** Send a KeyUpdate and switch our write keys after it. */
  updateWriteKeys(requestPeerUpdate: boolean): void {
    this.io.sendHandshake(encodeKeyUpdate(requestPeerUpdate));
    this.serverSecret = nextTrafficSecret(this.suite.hash, this.serverSecret);
    const k = trafficKeys(this.suite.hash, this.serverSecret, this.suite.keyLength);
    this.io.setWriteProtection(new Tls13Protection(this.suite.aead, k.key, k.iv));
    this.io.flush();
  }
}

/**
 * The first offered ticket we can use (RFC 8446 §4.2.11): ours, TLS 1.3, same hash as the chosen
 * suite, fresh, its age plausible, same SNI and ALPN. Its binder must verify, else decrypt_error.
 * Only `psk_dhe_ke` is supported, so a client without that mode gets a full handshake.
 */
function acceptPsk(
  hello: ClientHello,
  helloRaw: Buffer,
  neg: Negotiated,
  transcriptBefore: Transcript,
  ctx: TlsContext,
): { secret: Buffer; index: number; clientAuth?: ClientAuthResult } | undefined {
  const offered = hello.psk;
  const modes = hello.pskModes;
  if (!offered || !ctx.tickets?.ready) return undefined;
  // RFC 8446 §4.2.9: a PSK offer without psk_key_exchange_modes is a protocol error.
  if (!modes) throw new TlsAlert(AlertDescription.missing_extension, 'pre_shared_key without psk_key_exchange_modes');
  if (!modes.includes(1)) return undefined;
  const now = Date.now();
  const { ageToleranceMs } = ctx.ticketSettings;
  for (let i = 0; i < offered.identities.length; i++) {
    const state = ctx.tickets.open(offered.identities[i].identity);
    if (!state || state.protocol !== 'TLSv1.3') continue;
    const ticketSuite = TLS13_SUITES.find((x) => x.id === state.suite);
    if (!ticketSuite || ticketSuite.hash !== neg.suite.hash) continue;
    if (!ticketFresh(state, now, ageToleranceMs)) continue;
    const clientAge = (offered.identities[i].obfuscatedAge - state.ageAdd) >>> 0;
    if (Math.abs(clientAge - (now - state.issuedAt)) > ageToleranceMs) continue;
    if (state.serverName !== (neg.serverName ?? '') || state.alpn !== (neg.alpn ?? '')) continue;
    // mTLS: the ticket's client identity must still satisfy this host's policy, else a full handshake.
    const clientAuth = resumedClientAuth(neg.cert.clientAuth, state.clientCertificateChain);
    if (clientAuth === 'refuse') continue;
    const truncated = helloRaw.subarray(0, helloRaw.length - offered.bindersLength);
    const binderKey = new KeySchedule(neg.suite.hash, state.secret).resumptionBinderKey();
    const expected = finishedVerifyData(neg.suite.hash, binderKey, transcriptBefore.digestWith(truncated));
    const binder = offered.binders[i];
    if (binder.length !== expected.length || !crypto.timingSafeEqual(binder, expected)) {
      throw new TlsAlert(AlertDescription.decrypt_error, 'PSK binder does not verify');
    }
    return { secret: state.secret, index: i, clientAuth };
  }
  return undefined;
}

/** NewSessionTicket messages after the handshake (RFC 8446 §4.6.1), under the fleet ticket keys. */
function sendTickets(
  io: HandshakeIo,
  ctx: TlsContext,
  suite: CipherSuite,
  resumptionMaster: Buffer,
  neg: Negotiated,
  resumed: boolean,
  clientAuth?: ClientAuthResult,
): void {
  if (!ctx.tickets?.ready) return;
  const { lifetimeSeconds } = ctx.ticketSettings;
  // `count` tickets after a full handshake (a client may open that many connections in parallel);
  // after a resumed one a single ticket replaces the one just used (RFC 8446 §4.6.1 leaves the number
  // to the server; C.4: clients should not reuse a ticket).
  const count = resumed ? 1 : ctx.ticketSettings.count;
  for (let i = 0; i < count; i++) {
    const nonce = Buffer.from([i]);
    // randomInt draws from Node's pooled random bytes rather than one OpenSSL call per ticket.
    const ageAdd = crypto.randomInt(0, 0x1_0000_0000);
    const ticket = ctx.tickets.seal({
      protocol: 'TLSv1.3',
      suite: suite.id,
      secret: hkdfExpandLabel(suite.hash, resumptionMaster, 'resumption', nonce, suite.hashLength),
      issuedAt: Date.now(),
      ageAdd,
      lifetimeSeconds,
      extendedMasterSecret: false,
      serverName: neg.serverName ?? '',
      alpn: neg.alpn ?? '',
      clientCertificateChain: clientAuth?.chain,
    });
    if (ticket) io.sendHandshake(encodeNewSessionTicket13(lifetimeSeconds, ageAdd, nonce, ticket));
  }
  // All tickets in one record, sent with the first response where it follows at once.
  io.flushWithApplicationData();
}

export interface Tls13Result {
  info: HandshakeInfo;
  session: Tls13Session;
}

/** The group we key-exchange in and the client's share for it. */
interface KeyExchange {
  group: NamedGroup;
  peerShare: Buffer;
}

/** The PSK we resume with (RFC 8446 §4.2.11). */
type AcceptedPsk = NonNullable<ReturnType<typeof acceptPsk>>;

/** Our preferred group the client sent a share for (docs/tls-engine.md, "Selection policy"). */
function pickKeyShare(neg: Negotiated, ctx: TlsContext): KeyExchange | undefined {
  for (const group of ctx.groups) {
    const s = neg.shares.find((e) => e.group === group.id);
    if (s) return { group, peerShare: s.share };
  }
  return undefined;
}

/**
 * The handshake's state, one field per thing learnt along the way; each method is one step of
 * `handshake()`, in order. Mirrors Go's serverHandshakeStateTLS13.
 */
class Tls13ServerHandshake {
  private hello: ClientHello;
  private helloRaw: Buffer;
  private neg: Negotiated;
  private transcript!: Transcript;
  private keyExchange!: KeyExchange;
  private helloRetry = false;
  private compatCcsSent = false;
  private psk?: AcceptedPsk;
  private schedule!: KeySchedule;
  private handshakeSecrets!: { client: Buffer; server: Buffer };
  private applicationSecrets!: { client: Buffer; server: Buffer };
  /** The client-certificate policy of this handshake: the certificate's, unless we resume. */
  private clientPolicy?: ServerCertificate['clientAuth'];
  private clientAuth?: ClientAuthResult;
  private keyOperationMs?: number;

  constructor(
    private readonly io: HandshakeIo,
    first: HandshakeMessage,
    firstHello: ClientHello,
    private readonly ctx: TlsContext,
  ) {
    this.hello = firstHello;
    this.helloRaw = first.raw;
    this.neg = negotiate(firstHello, ctx);
  }

  async handshake(): Promise<Tls13Result> {
    await this.processClientHello();
    this.checkForResumption();
    this.sendServerParameters();
    await this.sendServerCertificate();
    this.sendServerFinished();
    await this.readClientCertificate();
    await this.readClientFinished();
    this.sendSessionTickets();
    return {
      session: new Tls13Session(
        this.io,
        this.neg.suite,
        this.applicationSecrets.client,
        this.applicationSecrets.server,
      ),
      info: this.handshakeInfo(),
    };
  }

  /** A share we can use, or a HelloRetryRequest for one (RFC 8446 §4.1.4). */
  private async processClientHello(): Promise<void> {
    const keyExchange = pickKeyShare(this.neg, this.ctx);
    if (keyExchange) {
      this.keyExchange = keyExchange;
      this.transcript = new Transcript(this.neg.suite.hash);
    } else {
      await this.helloRetryRequest();
    }
  }

  /** No usable share: ask for one in the best group we have in common, and read the second ClientHello. */
  private async helloRetryRequest(): Promise<void> {
    const { io, ctx } = this;
    const first = { hello: this.hello, neg: this.neg };
    const retryGroup = ctx.groups.find((g) => first.neg.clientGroups.includes(g.id));
    if (!retryGroup) throw new TlsAlert(AlertDescription.handshake_failure, 'no key-exchange group in common');
    this.transcript = Transcript.afterHelloRetry(first.neg.suite.hash, this.helloRaw);
    const hrr = encodeServerHello({
      version: TLS12,
      random: HELLO_RETRY_RANDOM,
      sessionId: first.hello.sessionId,
      cipherSuite: first.neg.suite.id,
      extensions: [
        supportedVersionsExtension(),
        { type: ExtensionType.key_share, data: new Writer().u16(retryGroup.id).finish() },
      ],
    });
    this.sendHandshake(hrr);
    this.sendCompatCcs();
    io.flush();
    // 0-RTT is never accepted; after a HelloRetryRequest the client's early data is every
    // application_data record before its second ClientHello (RFC 8446 §4.2.10).
    if (first.hello.earlyData) io.skipRejectedEarlyData('application_data');

    const second = await io.readHandshakeMessage(HandshakeType.client_hello);
    const hello = parseClientHello(second.body);
    checkRetriedClientHello(first.hello, hello);
    if (!hello.supportedVersions?.includes(TLS13)) {
      throw new TlsAlert(AlertDescription.illegal_parameter, 'second ClientHello does not offer TLS 1.3');
    }
    if (!hello.sessionId.equals(first.hello.sessionId))
      throw new TlsAlert(AlertDescription.illegal_parameter, 'second ClientHello changed legacy_session_id');
    const neg = negotiate(hello, ctx);
    // RFC 8446 §4.1.4: the retried hello must use the suite we chose and one share for the group we asked for.
    if (neg.suite.id !== first.neg.suite.id)
      throw new TlsAlert(AlertDescription.illegal_parameter, 'second ClientHello changed the cipher suite');
    if (neg.shares.length !== 1 || neg.shares[0].group !== retryGroup.id) {
      throw new TlsAlert(
        AlertDescription.illegal_parameter,
        'second ClientHello must carry exactly one share, for the requested group',
      );
    }
    this.hello = hello;
    this.helloRaw = second.raw;
    this.neg = neg;
    this.keyExchange = { group: retryGroup, peerShare: neg.shares[0].share };
    this.helloRetry = true;
  }

  /** Binders are computed over the transcript up to this ClientHello minus its binders. */
  private checkForResumption(): void {
    this.psk = acceptPsk(this.hello, this.helloRaw, this.neg, this.transcript, this.ctx);
    this.transcript.update(this.helloRaw);
    // mTLS (RFC 8446 §4.3.2): never with a PSK (§4.6.2 keeps the identity of the original
    // handshake, carried in the ticket).
    this.clientPolicy = this.psk ? undefined : this.neg.cert.clientAuth;
  }

  /** ServerHello, handshake keys, EncryptedExtensions and, for mTLS, CertificateRequest. */
  private sendServerParameters(): void {
    const { hello, neg, psk } = this;
    const { group, peerShare } = this.keyExchange;
    const { publicShare, sharedSecret } = respondToKeyShare(group, peerShare);
    this.sendHandshake(
      encodeServerHello({
        version: TLS12,
        random: crypto.randomBytes(32),
        sessionId: hello.sessionId,
        cipherSuite: neg.suite.id,
        extensions: [
          supportedVersionsExtension(),
          { type: ExtensionType.key_share, data: new Writer().u16(group.id).vec16(publicShare).finish() },
          ...(psk ? [{ type: ExtensionType.pre_shared_key, data: new Writer().u16(psk.index).finish() }] : []),
        ],
      }),
    );
    this.sendCompatCcs();
    this.installHandshakeKeys(sharedSecret);
    this.sendHandshake(encodeEncryptedExtensions(this.encryptedExtensions()));
    if (this.clientPolicy) this.sendHandshake(certificateRequest13(this.clientPolicy));
  }

  private installHandshakeKeys(sharedSecret: Buffer): void {
    const { io, neg } = this;
    const { suite } = neg;
    this.schedule = new KeySchedule(suite.hash, this.psk?.secret);
    this.handshakeSecrets = this.schedule.handshakeTrafficSecrets(sharedSecret, this.transcript.digest());
    // Read keys first: a ClientHello that does not end its record (§5.1) is refused before our keys change.
    io.setReadProtection(protection(suite, this.handshakeSecrets.client));
    io.setWriteProtection(protection(suite, this.handshakeSecrets.server));
    // We never accept 0-RTT (no early_data in EncryptedExtensions, none offered in tickets): records
    // that do not decrypt under the handshake keys are the client's early data and are skipped
    // (RFC 8446 §4.2.10).
    if (this.hello.earlyData) io.skipRejectedEarlyData('undecryptable');
  }

  private encryptedExtensions(): Extension[] {
    const { neg } = this;
    const ee: Extension[] = [];
    if (neg.recordSizeLimit !== undefined) {
      // RFC 8449 §4: honour the client's limit from EncryptedExtensions on, and tell it ours.
      this.io.limitRecordPlaintext(maxPlaintextUnder(neg.recordSizeLimit, true));
      ee.push(recordSizeLimitExtension(true));
    }
    if (neg.sniMatched) ee.push({ type: ExtensionType.server_name, data: Buffer.alloc(0) }); // RFC 6066 §3
    if (neg.alpn) ee.push({ type: ExtensionType.alpn, data: encodeAlpn(neg.alpn) });
    return ee;
  }

  /** Certificate, then CertificateVerify: the one key operation of a full handshake. None with a PSK. */
  private async sendServerCertificate(): Promise<void> {
    if (this.psk) return;
    const { io, neg } = this;
    const { cert, scheme } = neg;
    // OCSP stapling (RFC 8446 §4.4.2.1): in the leaf's entry, only when the client asked.
    const leafExtensions =
      neg.wantsOcsp && cert.ocspResponse
        ? [{ type: ExtensionType.status_request, data: certificateStatusBody(cert.ocspResponse) }]
        : [];
    this.sendHandshake(encodeTls13Certificate(cert.chain, leafExtensions));
    // Let the client start on the certificate chain while the key service signs.
    io.flush();
    // The key operations client verifies the signature against this certificate's public key
    // before returning it, so nothing unverified reaches the wire.
    const signed = await this.ctx.keyOperations.signTls13CertificateVerify(
      cert.keyName,
      scheme.name,
      this.transcript.digest(),
    );
    this.keyOperationMs = signed.latencyMs;
    this.sendHandshake(encodeCertificateVerify(scheme.id, signed.signature));
  }

  /** Our Finished, then application write keys (RFC 8446 §7.1: secrets from the transcript up to it). */
  private sendServerFinished(): void {
    const { io, neg } = this;
    const { suite } = neg;
    this.sendHandshake(
      encodeFinished(finishedVerifyData(suite.hash, this.handshakeSecrets.server, this.transcript.digest())),
    );
    this.applicationSecrets = this.schedule.applicationTrafficSecrets(this.transcript.digest());
    io.setWriteProtection(protection(suite, this.applicationSecrets.server));
    io.flush();
  }

  /** mTLS: the client's Certificate and CertificateVerify come before its Finished, under handshake keys. */
  private async readClientCertificate(): Promise<void> {
    this.clientAuth = this.clientPolicy
      ? await readClientAuth13(this.io, this.transcript, this.clientPolicy)
      : this.psk?.clientAuth;
  }

  private async readClientFinished(): Promise<void> {
    const { io, neg } = this;
    const { suite } = neg;
    const expected = finishedVerifyData(suite.hash, this.handshakeSecrets.client, this.transcript.digest());
    const clientFin = await io.readHandshakeMessage(HandshakeType.finished);
    verifyFinished(clientFin, expected);
    this.transcript.update(clientFin.raw);
    io.setReadProtection(protection(suite, this.applicationSecrets.client));
  }

  private sendSessionTickets(): void {
    const { suite } = this.neg;
    sendTickets(
      this.io,
      this.ctx,
      suite,
      this.schedule.resumptionMasterSecret(this.transcript.digest()),
      this.neg,
      this.psk !== undefined,
      this.clientAuth,
    );
  }

  /** The record of what was negotiated. */
  private handshakeInfo(): HandshakeInfo {
    const { neg, psk } = this;
    const { group } = this.keyExchange;
    return {
      protocol: 'TLSv1.3',
      cipher: neg.suite.name,
      cipherOpenssl: neg.suite.opensslName,
      group: group.name,
      signatureScheme: psk ? undefined : neg.scheme.name,
      keyExchange: `${psk ? 'PSK + ' : ''}${group.hybrid ? 'ECDHE-MLKEM' : 'ECDHE'} (${group.name})`,
      serverName: neg.serverName,
      alpn: neg.alpn,
      helloRetry: this.helloRetry,
      resumed: psk !== undefined,
      keyOperationMs: this.keyOperationMs,
      keyName: neg.cert.keyName,
      clientAuth: this.clientAuth,
    };
  }

  /** Every handshake message we send enters the transcript as it is queued. */
  private sendHandshake(message: Buffer): void {
    this.transcript.update(message);
    this.io.sendHandshake(message);
  }

  /**
   * Middlebox compatibility (RFC 8446 §D.4): one CCS right after our first handshake message, when
   * the client sent a legacy session id.
   */
  private sendCompatCcs(): void {
    if (!this.compatCcsSent && this.hello.sessionId.length > 0) this.io.sendChangeCipherSpec();
    this.compatCcsSent = true;
  }
}

/** Record protection under one traffic secret (RFC 8446 §7.3). */
function protection(suite: CipherSuite, secret: Buffer): Tls13Protection {
  const k = trafficKeys(suite.hash, secret, suite.keyLength);
  return new Tls13Protection(suite.aead, k.key, k.iv);
}

export async function serverHandshake13(
  io: HandshakeIo,
  first: HandshakeMessage,
  firstHello: ClientHello,
  ctx: TlsContext,
): Promise<Tls13Result> {
  return new Tls13ServerHandshake(io, first, firstHello, ctx).handshake();
}
