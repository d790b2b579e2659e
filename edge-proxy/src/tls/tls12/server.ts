/**
 * TLS 1.2 server handshake (RFC 5246 §7.3) for AEAD suites only; `handshake()` is a table of
 * contents of named steps: negotiate → (resume from a ticket) → ServerHello, Certificate,
 * [ServerKeyExchange: signed by the key service], ServerHelloDone → ClientKeyExchange → master
 * secret (ECDHE: here; RSA: by the key service, which returns only the master secret) → client CCS +
 * Finished → our CCS + Finished.
 *
 * Also: extended master secret (RFC 7627), secure renegotiation indication with renegotiation refused
 * (RFC 5746), ECDHE groups and point formats (RFC 8422), the TLS 1.3 downgrade sentinel in
 * ServerHello.random (RFC 8446 §4.1.3).
 */
import * as crypto from 'node:crypto';
import { AlertDescription, TlsAlert } from '../alerts';
import type { ServerCertificate } from '../certificates';
import type { TlsContext } from '../context';
import { Extension, ExtensionType, encodeAlpn } from '../extensions';
import { generateEphemeral, NamedGroup, SECP256R1, tls12Groups } from '../groups';
import type { HandshakeInfo, HandshakeIo } from '../handshake-io';
import { HandshakeMessage, HandshakeType } from '../handshake-joiner';
import type { ClientHello } from '../msgs/client-hello';
import { encodeServerHello } from '../msgs/server-hello';
import { encodeFinished } from '../msgs/finished';
import { encodeTls12Certificate } from '../msgs/certificate';
import { encodeServerEcdhParams, encodeServerKeyExchange } from '../msgs/server-key-exchange';
import { encodeServerHelloDone } from '../msgs/server-hello-done';
import { parseEcdhClientKeyExchange, parseRsaClientKeyExchange } from '../msgs/client-key-exchange';
import { encodeNewSessionTicket12 } from '../msgs/new-session-ticket';
import { negotiateAlpn, requestedServerName } from '../negotiation';
import { Tls12Protection } from '../record-layer';
import { chooseScheme, SignatureScheme, SIGNATURE_SCHEMES, KeyShape } from '../sigalgs';
import { CipherSuite, TLS12_SUITES } from '../suites';
import { Transcript } from '../transcript';
import { TicketState, ticketFresh } from '../tickets';
import {
  anonymousClient,
  certificateRequest12,
  ClientAuthResult,
  describeClient,
  readClientCertificate12,
  readClientCertificateVerify12,
  resumedClientAuth,
} from '../client-auth';
import { prf12 } from '../../../../contract/tls12-prf';
import { DOWNGRADE_SENTINEL_TLS12, tls12ServerRandom } from '../../../../contract/key-service-protocol';
import { clientRecordSizeLimit, maxPlaintextUnder, recordSizeLimitExtension } from '../record-size-limit';
import { clientWantsOcsp } from '../ocsp-stapling';
import { encodeCertificateStatus } from '../msgs/certificate-status';
import { insufficientSecurity } from '../insufficient-security';
import { tls12KeyBlock, verifyFinished } from '../finished';

const TLS12 = 0x0303;
export { DOWNGRADE_SENTINEL_TLS12 };

/** Signature schemes for a TLS 1.2 ServerKeyExchange by this key, in preference order. Never SHA-1. */
export function tls12SchemesFor(shape: KeyShape): SignatureScheme[] {
  if (shape.keyType === 'rsa') {
    const order = [
      'rsa_pss_rsae_sha256',
      'rsa_pkcs1_sha256',
      'rsa_pss_rsae_sha384',
      'rsa_pkcs1_sha384',
      'rsa_pss_rsae_sha512',
      'rsa_pkcs1_sha512',
    ];
    return order.map((n) => SIGNATURE_SCHEMES.find((s) => s.name === n)!);
  }
  // KMS binds each curve to one ECDSA hash, so the scheme follows the key's curve.
  return SIGNATURE_SCHEMES.filter((s) => s.keyType === 'ec' && s.curve === shape.curve);
}

interface Choice {
  cert: ServerCertificate;
  suite: CipherSuite;
  scheme?: SignatureScheme;
  group?: NamedGroup;
}

/** First certificate (in SNI order) and, for it, the first of our suites the client can complete. */
function choose(hello: ClientHello, certs: ServerCertificate[], groups: readonly NamedGroup[]): Choice {
  // Without signature_algorithms the client implies SHA-1 (RFC 5246 §7.4.1.4.1): no ECDHE for it.
  const sigalgs = hello.signatureAlgorithms ?? [];
  // RFC 8422 §4: without the extension any curve may be used; P-256 is the one every client has.
  const clientGroups = hello.supportedGroups ?? [SECP256R1.id];
  const group = groups.find((g) => clientGroups.includes(g.id));
  for (const cert of certs) {
    for (const suite of TLS12_SUITES) {
      if (!hello.cipherSuites.includes(suite.id)) continue;
      if (suite.keyExchange === 'RSA') {
        if (cert.shape.keyType === 'rsa' && cert.allowRsaKeyExchange) return { cert, suite };
        continue;
      }
      const wantType = suite.keyExchange === 'ECDHE_ECDSA' ? 'ec' : 'rsa';
      if (cert.shape.keyType !== wantType || !group) continue;
      const scheme = chooseScheme(tls12SchemesFor(cert.shape), sigalgs);
      if (scheme) return { cert, suite, scheme, group };
    }
  }
  // Some failures are the client offering only what we refuse as too weak (RFC 7919 §4, RFC 7465 §2).
  const weak = insufficientSecurity(hello.cipherSuites, hello.supportedGroups, groups);
  if (weak) throw new TlsAlert(AlertDescription.insufficient_security, weak);
  throw new TlsAlert(
    AlertDescription.handshake_failure,
    'no TLS 1.2 cipher suite, group and signature scheme in common',
  );
}

/** renegotiation_info (RFC 5746 §3.6): in an initial handshake renegotiated_connection must be empty. */
function clientSignalsSecureRenegotiation(hello: ClientHello): boolean {
  if (hello.renegotiationInfo) {
    if (hello.renegotiationInfo.length !== 0)
      throw new TlsAlert(AlertDescription.handshake_failure, 'renegotiation_info not empty in an initial handshake');
    return true;
  }
  return hello.cipherSuites.includes(0x00ff); // TLS_EMPTY_RENEGOTIATION_INFO_SCSV
}

/** After the handshake: renegotiation is refused politely (RFC 5746 §4.4 allows declining). */
export class Tls12Session {
  constructor(private readonly io: HandshakeIo) {}

  onPostHandshakeMessage(msg: HandshakeMessage): void {
    if (msg.type === HandshakeType.client_hello) {
      this.io.sendWarningAlert(AlertDescription.no_renegotiation);
      return;
    }
    throw new TlsAlert(AlertDescription.unexpected_message, `unexpected post-handshake message type ${msg.type}`);
  }
}

/** What the ClientHello asks for and what we chose. */
interface Negotiated12 extends Choice {
  secureRenegotiation: boolean;
  ems: boolean;
  serverName?: string;
  sniMatched: boolean;
  alpn?: string;
  /** The client sent an empty or non-empty session_ticket and we have ticket keys (RFC 5077 §3.2). */
  issueTicket: boolean;
}

function negotiate12(hello: ClientHello, ctx: TlsContext): Negotiated12 {
  if (!hello.compressionMethods.includes(0))
    throw new TlsAlert(AlertDescription.handshake_failure, 'client does not offer null compression');
  const secureRenegotiation = clientSignalsSecureRenegotiation(hello);
  const serverName = requestedServerName(hello);
  const { certs, matched } = ctx.certificates.candidates(serverName);
  const choice = choose(hello, certs, tls12Groups(ctx.groups));
  // RFC 9113 §9.2.2: HTTP/2 over TLS 1.2 needs an ephemeral key exchange (RSA key exchange is on its
  // cipher-suite block list; Chromium fails with ERR_HTTP2_INADEQUATE_TRANSPORT_SECURITY), so h2 is
  // not chosen with it.
  const alpn = negotiateAlpn(
    hello,
    choice.suite.keyExchange === 'RSA' ? ctx.alpnProtocols.filter((p) => p !== 'h2') : ctx.alpnProtocols,
  );
  return {
    ...choice,
    secureRenegotiation,
    ems: hello.extendedMasterSecret,
    serverName,
    sniMatched: matched && serverName !== undefined,
    alpn,
    issueTicket: hello.sessionTicket !== undefined && ctx.tickets?.ready === true,
  };
}

/**
 * The handshake's state, one field per thing learnt along the way; each method is one step of
 * `handshake()`, in order.
 */
class Tls12ServerHandshake {
  private readonly neg: Negotiated12;
  private readonly transcript: Transcript;
  /** Every handshake message as sent, for the EMS input of RSA key exchange and the client's CertificateVerify. */
  private readonly messages: Buffer[] = [];
  /** The seed the server random commits to (docs/key-service-protocol.md). */
  private readonly seed = crypto.randomBytes(32);
  private readonly serverRandom: Buffer;
  private ephemeral?: ReturnType<typeof generateEphemeral>;
  private keyOperationMs?: number;
  private clientAuth?: ClientAuthResult;
  private clientPath?: Awaited<ReturnType<typeof readClientCertificate12>>['path'];
  private clientKeyExchange!: HandshakeMessage;
  /** Transcript hash through ClientKeyExchange: the EMS session hash (RFC 7627 §3). */
  private sessionHash!: Buffer;
  private messagesThroughCke!: Buffer;
  private masterSecret!: Buffer;
  private keys!: ReturnType<typeof tls12KeyBlock>;

  constructor(
    private readonly io: HandshakeIo,
    first: HandshakeMessage,
    private readonly hello: ClientHello,
    private readonly ctx: TlsContext,
    neg: Negotiated12,
  ) {
    this.neg = neg;
    // The server random commits to a seed S: SHA-256(S)[0..24] ‖ downgrade sentinel. The key service
    // derives it from S before signing ServerKeyExchange (so the caller chooses none of its bytes), and
    // checks it for RSA key exchange (so a recorded handshake cannot be replayed through it).
    this.serverRandom = tls12ServerRandom(this.seed);
    this.transcript = new Transcript(neg.suite.hash);
    this.transcript.update(first.raw);
    this.messages.push(first.raw);
  }

  async handshake(): Promise<Tls12Result> {
    this.sendServerHello();
    this.sendServerCertificate();
    await this.sendServerKeyExchange();
    this.sendServerHelloDone();
    await this.readClientCertificate();
    await this.readClientKeyExchange();
    await this.readClientCertificateVerify();
    await this.establishMasterSecret();
    await this.readClientFinished();
    this.sendServerFinished();
    return { session: new Tls12Session(this.io), info: this.handshakeInfo() };
  }

  private sendServerHello(): void {
    const { hello, neg, io } = this;
    const extensions: Extension[] = [];
    if (neg.secureRenegotiation) extensions.push({ type: ExtensionType.renegotiation_info, data: Buffer.from([0]) });
    if (neg.ems) extensions.push({ type: ExtensionType.extended_master_secret, data: Buffer.alloc(0) });
    if (neg.sniMatched) extensions.push({ type: ExtensionType.server_name, data: Buffer.alloc(0) });
    if (neg.alpn) extensions.push({ type: ExtensionType.alpn, data: encodeAlpn(neg.alpn) });
    if (neg.group && hello.ecPointFormats) {
      extensions.push({ type: ExtensionType.ec_point_formats, data: Buffer.from([1, 0]) }); // uncompressed only
    }
    if (neg.issueTicket) extensions.push({ type: ExtensionType.session_ticket, data: Buffer.alloc(0) }); // RFC 5077 §3.2
    const recordSizeLimit = clientRecordSizeLimit(hello);
    if (recordSizeLimit !== undefined) {
      // RFC 8449 §4: binds our protected records (after our CCS); ours is announced in the ServerHello.
      io.limitRecordPlaintext(maxPlaintextUnder(recordSizeLimit, false));
      extensions.push(recordSizeLimitExtension(false));
    }
    // OCSP stapling (RFC 6066 §8): an empty status_request here, CertificateStatus after Certificate.
    if (this.staple()) extensions.push({ type: ExtensionType.status_request, data: Buffer.alloc(0) });
    this.send(
      encodeServerHello({
        version: TLS12,
        random: this.serverRandom,
        sessionId: Buffer.alloc(0),
        cipherSuite: neg.suite.id,
        extensions,
      }),
    );
  }

  private staple(): Buffer | undefined {
    return clientWantsOcsp(this.hello) ? this.neg.cert.ocspResponse : undefined;
  }

  private sendServerCertificate(): void {
    this.send(encodeTls12Certificate(this.neg.cert.chain));
    const staple = this.staple();
    if (staple) this.send(encodeCertificateStatus(staple));
  }

  /** ECDHE: our parameters, signed by the key service (the key operation of this handshake). */
  private async sendServerKeyExchange(): Promise<void> {
    const { group, scheme, cert } = this.neg;
    this.ephemeral = group ? generateEphemeral(group) : undefined;
    if (!this.ephemeral || !scheme) return;
    // Let the client work on the chain while the key service signs our ECDHE parameters.
    this.io.flush();
    const params = encodeServerEcdhParams(this.ephemeral.group.id, this.ephemeral.publicShare);
    const signed = await this.ctx.keyOperations.signTls12ServerKeyExchange(
      cert.keyName,
      scheme.name,
      this.hello.random,
      this.seed,
      params,
    );
    this.keyOperationMs = signed.latencyMs;
    this.send(encodeServerKeyExchange(params, scheme.id, signed.signature));
  }

  /**
   * mTLS (RFC 5246 §7.4.4): CertificateRequest just before ServerHelloDone; the client's
   * Certificate opens its flight (§7.4.6) and counts towards the EMS session hash (RFC 7627 §3).
   */
  private sendServerHelloDone(): void {
    const clientPolicy = this.neg.cert.clientAuth;
    if (clientPolicy) this.send(certificateRequest12(clientPolicy));
    this.send(encodeServerHelloDone());
    this.io.flush();
  }

  private async readClientCertificate(): Promise<void> {
    const clientPolicy = this.neg.cert.clientAuth;
    if (!clientPolicy) return;
    const c = await readClientCertificate12(this.io, clientPolicy);
    this.received(c.raw);
    this.clientPath = c.path;
    this.clientAuth = c.path ? describeClient(clientPolicy.mode, c.path) : anonymousClient(clientPolicy);
  }

  private async readClientKeyExchange(): Promise<void> {
    this.clientKeyExchange = await this.io.readHandshakeMessage(HandshakeType.client_key_exchange);
    this.received(this.clientKeyExchange.raw);
    // EMS covers the messages up to ClientKeyExchange, not the client's CertificateVerify.
    this.sessionHash = this.transcript.digest();
    this.messagesThroughCke = Buffer.concat(this.messages);
  }

  /**
   * RFC 5246 §7.4.8: a signature over every handshake message so far; checked before any key
   * operation is spent on this client.
   */
  private async readClientCertificateVerify(): Promise<void> {
    if (!this.clientPath) return;
    this.received(await readClientCertificateVerify12(this.io, this.clientPath[0], this.messagesThroughCke));
  }

  private async establishMasterSecret(): Promise<void> {
    const { hello, neg, ephemeral, serverRandom } = this;
    const { suite } = neg;
    const cke = this.clientKeyExchange;
    if (ephemeral) {
      const premaster = ephemeral.agree(parseEcdhClientKeyExchange(cke.body));
      this.masterSecret = neg.ems
        ? prf12(suite.hash, premaster, 'extended master secret', this.sessionHash, 48) // RFC 7627 §4
        : prf12(suite.hash, premaster, 'master secret', Buffer.concat([hello.random, serverRandom]), 48);
      premaster.fill(0);
    } else {
      // RSA key exchange: the premaster never reaches the edge; the key service returns the master
      // secret of this session only (or a synthetic one on a bad ciphertext — implicit rejection).
      const result = await this.ctx.keyOperations.rsaMasterSecret(neg.cert.keyName, {
        encryptedPreMasterSecret: parseRsaClientKeyExchange(cke.body),
        clientVersion: hello.legacyVersion,
        clientRandom: hello.random,
        serverRandom,
        serverRandomSeed: this.seed,
        prfHash: suite.hash,
        handshakeMessages: neg.ems ? this.messagesThroughCke : undefined,
      });
      this.keyOperationMs = result.latencyMs;
      this.masterSecret = result.masterSecret;
    }
    this.keys = tls12KeyBlock(suite, this.masterSecret, serverRandom, hello.random);
  }

  private async readClientFinished(): Promise<void> {
    const { io, neg, keys } = this;
    const { suite } = neg;
    await io.readChangeCipherSpec();
    io.setReadProtection(new Tls12Protection(suite.aead, keys.client.key, keys.client.iv, suite.recordIvLength!));
    const expected = prf12(suite.hash, this.masterSecret, 'client finished', this.transcript.digest(), 12);
    const fin = await io.readHandshakeMessage(HandshakeType.finished);
    verifyFinished(fin, expected);
    this.transcript.update(fin.raw);
  }

  /** RFC 5077 §3.3: NewSessionTicket goes before our CCS and is part of the Finished transcript. */
  private sendServerFinished(): void {
    const { io, neg, keys } = this;
    const { suite } = neg;
    if (neg.issueTicket) {
      const nst = newTicket12(this.ctx, {
        suite: suite.id,
        master: this.masterSecret,
        ems: neg.ems,
        serverName: neg.serverName,
        alpn: neg.alpn,
        clientCertificateChain: this.clientAuth?.chain,
      });
      if (nst) {
        this.transcript.update(nst);
        io.sendHandshake(nst);
      }
    }
    io.sendChangeCipherSpec();
    io.setWriteProtection(new Tls12Protection(suite.aead, keys.server.key, keys.server.iv, suite.recordIvLength!));
    io.sendHandshake(
      encodeFinished(prf12(suite.hash, this.masterSecret, 'server finished', this.transcript.digest(), 12)),
    );
    io.flush();
  }

  /** The record of what was negotiated. */
  private handshakeInfo(): HandshakeInfo {
    const { neg, ephemeral } = this;
    return {
      protocol: 'TLSv1.2',
      cipher: neg.suite.name,
      cipherOpenssl: neg.suite.opensslName,
      group: ephemeral?.group.name,
      signatureScheme: neg.scheme?.name,
      keyExchange: ephemeral ? `ECDHE (${ephemeral.group.name})` : 'RSA (no forward secrecy)',
      extendedMasterSecret: neg.ems,
      serverName: neg.serverName,
      alpn: neg.alpn,
      helloRetry: false,
      resumed: false,
      keyOperationMs: this.keyOperationMs,
      keyName: neg.cert.keyName,
      clientAuth: this.clientAuth,
    };
  }

  /** A message we send: queued, and part of the transcript. */
  private send(msg: Buffer): void {
    this.transcript.update(msg);
    this.messages.push(msg);
    this.io.sendHandshake(msg);
  }

  /** A message the client sent, in the transcript. */
  private received(raw: Buffer): void {
    this.transcript.update(raw);
    this.messages.push(raw);
  }
}

type Tls12Result = { info: HandshakeInfo; session: Tls12Session };

export async function serverHandshake12(
  io: HandshakeIo,
  first: HandshakeMessage,
  hello: ClientHello,
  ctx: TlsContext,
): Promise<Tls12Result> {
  io.useTls12Records();
  const neg = negotiate12(hello, ctx);
  const resumption = checkForResumption(hello, neg, ctx);
  if (resumption)
    return resumeHandshake12(io, first, hello, resumption.state, { ...neg, clientAuth: resumption.clientAuth }, ctx);
  return new Tls12ServerHandshake(io, first, hello, ctx, neg).handshake();
}

/** A ticket we resume from, with the client identity it carries (mTLS: still valid for this host's policy). */
function checkForResumption(
  hello: ClientHello,
  neg: Negotiated12,
  ctx: TlsContext,
): { state: TicketState; clientAuth?: ClientAuthResult } | undefined {
  const ticket = hello.sessionTicket;
  const state = ticket && ticket.length > 0 ? resumableTicket(ticket, hello, neg.serverName, neg.ems, ctx) : undefined;
  if (!state) return undefined;
  // mTLS: a ticket's client identity must still satisfy this host's policy, else a full handshake.
  const clientAuth = resumedClientAuth(neg.cert.clientAuth, state.clientCertificateChain);
  return clientAuth === 'refuse' ? undefined : { state, clientAuth };
}

interface TicketUse {
  secureRenegotiation: boolean;
  ems: boolean;
  alpn?: string;
  issueTicket: boolean;
  clientAuth?: ClientAuthResult;
}

/** A valid, fresh ticket for this client, or undefined: an unusable ticket means a full handshake. */
function resumableTicket(
  ticket: Buffer,
  hello: ClientHello,
  serverName: string | undefined,
  ems: boolean,
  ctx: TlsContext,
): TicketState | undefined {
  const state = ctx.tickets?.open(ticket);
  if (!state || state.protocol !== 'TLSv1.2' || !hello.cipherSuites.includes(state.suite)) return undefined;
  if (!TLS12_SUITES.some((s) => s.id === state.suite)) return undefined;
  if (!ticketFresh(state, Date.now(), ctx.ticketSettings.ageToleranceMs) || state.serverName !== (serverName ?? ''))
    return undefined;
  // RFC 7627 §5.3: a session with EMS must not resume without it (abort); one without EMS is not
  // resumed by a client that now offers it (full handshake).
  if (state.extendedMasterSecret && !ems)
    throw new TlsAlert(
      AlertDescription.handshake_failure,
      'resumption without extended master secret of a session that used it',
    );
  return state.extendedMasterSecret === ems ? state : undefined;
}

function newTicket12(
  ctx: TlsContext,
  s: {
    suite: number;
    master: Buffer;
    ems: boolean;
    serverName?: string;
    alpn?: string;
    clientCertificateChain?: Buffer[];
  },
): Buffer | undefined {
  const { lifetimeSeconds } = ctx.ticketSettings;
  const ticket = ctx.tickets?.seal({
    protocol: 'TLSv1.2',
    suite: s.suite,
    secret: s.master,
    issuedAt: Date.now(),
    ageAdd: 0,
    lifetimeSeconds,
    extendedMasterSecret: s.ems,
    serverName: s.serverName ?? '',
    alpn: s.alpn ?? '',
    clientCertificateChain: s.clientCertificateChain,
  });
  return ticket ? encodeNewSessionTicket12(lifetimeSeconds, ticket) : undefined;
}

/**
 * Abbreviated handshake from a session ticket (RFC 5077 §3.1, RFC 5246 §7.3): ServerHello echoing
 * the client's session id, a fresh ticket, our CCS and Finished first, then the client's. No key
 * operation: the master secret comes from the ticket. An empty session id resumes too: RFC 5077
 * §3.4 lets the client recognise the resumption by the NewSessionTicket or ChangeCipherSpec that
 * follows our ServerHello.
 */
async function resumeHandshake12(
  io: HandshakeIo,
  first: HandshakeMessage,
  hello: ClientHello,
  state: TicketState,
  use: TicketUse,
  ctx: TlsContext,
): Promise<Tls12Result> {
  const suite = TLS12_SUITES.find((x) => x.id === state.suite)!;
  const serverRandom = Buffer.concat([crypto.randomBytes(24), DOWNGRADE_SENTINEL_TLS12]);
  const extensions: Extension[] = [];
  if (use.secureRenegotiation) extensions.push({ type: ExtensionType.renegotiation_info, data: Buffer.from([0]) });
  if (use.ems) extensions.push({ type: ExtensionType.extended_master_secret, data: Buffer.alloc(0) });
  if (use.alpn) extensions.push({ type: ExtensionType.alpn, data: encodeAlpn(use.alpn) });
  if (use.issueTicket) extensions.push({ type: ExtensionType.session_ticket, data: Buffer.alloc(0) });
  const recordSizeLimit = clientRecordSizeLimit(hello);
  if (recordSizeLimit !== undefined) {
    io.limitRecordPlaintext(maxPlaintextUnder(recordSizeLimit, false)); // RFC 8449 §4
    extensions.push(recordSizeLimitExtension(false));
  }
  const transcript = new Transcript(suite.hash);
  transcript.update(first.raw);
  const send = (msg: Buffer): void => {
    transcript.update(msg);
    io.sendHandshake(msg);
  };
  send(
    encodeServerHello({
      version: TLS12,
      random: serverRandom,
      sessionId: hello.sessionId,
      cipherSuite: suite.id,
      extensions,
    }),
  );
  const master = state.secret;
  if (use.issueTicket) {
    const nst = newTicket12(ctx, {
      suite: suite.id,
      master,
      ems: use.ems,
      serverName: state.serverName,
      alpn: use.alpn,
      clientCertificateChain: use.clientAuth?.chain,
    });
    if (nst) send(nst);
  }
  const keys = tls12KeyBlock(suite, master, serverRandom, hello.random);
  io.sendChangeCipherSpec();
  io.setWriteProtection(new Tls12Protection(suite.aead, keys.server.key, keys.server.iv, suite.recordIvLength!));
  send(encodeFinished(prf12(suite.hash, master, 'server finished', transcript.digest(), 12)));
  io.flush();

  await io.readChangeCipherSpec();
  io.setReadProtection(new Tls12Protection(suite.aead, keys.client.key, keys.client.iv, suite.recordIvLength!));
  const fin = await io.readHandshakeMessage(HandshakeType.finished);
  verifyFinished(fin, prf12(suite.hash, master, 'client finished', transcript.digest(), 12));
  return {
    session: new Tls12Session(io),
    info: {
      protocol: 'TLSv1.2',
      cipher: suite.name,
      cipherOpenssl: suite.opensslName,
      keyExchange: 'session ticket',
      extendedMasterSecret: use.ems,
      serverName: state.serverName || undefined,
      alpn: use.alpn,
      helloRetry: false,
      resumed: true,
      clientAuth: use.clientAuth,
    },
  };
}
