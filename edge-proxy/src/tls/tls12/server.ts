/**
 * TLS 1.2 server handshake (RFC 5246 §7.3) for AEAD suites only, in one straight line:
 * negotiate → ServerHello, Certificate, [ServerKeyExchange: signed by the key service],
 * ServerHelloDone → ClientKeyExchange → master secret (ECDHE: here; RSA: by the key service, which
 * returns only the master secret) → client CCS + Finished → our CCS + Finished.
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
import { HandshakeMessage, HandshakeType, handshakeMessage } from '../handshake-joiner';
import {
  ClientHello,
  encodeServerEcdhParams,
  encodeServerHello,
  encodeServerHelloDone,
  encodeServerKeyExchange,
  encodeTls12Certificate,
  encodeNewSessionTicket12,
  parseEcdhClientKeyExchange,
  parseRsaClientKeyExchange,
} from '../messages';
import { negotiateAlpn, requestedServerName } from '../negotiation';
import { Tls12Protection } from '../record-layer';
import { chooseScheme, SignatureScheme, SIGNATURE_SCHEMES, KeyShape } from '../sigalgs';
import { CipherSuite, TLS12_SUITES } from '../suites';
import { Transcript } from '../transcript';
import { TicketState, ticketFresh } from '../tickets';
import { anonymousClient, certificateRequest12, ClientAuthResult, describeClient, readClientCertificate12, readClientCertificateVerify12, resumedClientAuth } from '../client-auth';
import { prf12 } from '../../../../contract/tls12-prf';
import { DOWNGRADE_SENTINEL_TLS12, tls12ServerRandom } from '../../../../contract/key-service-protocol';
import { clientRecordSizeLimit, maxPlaintextUnder, recordSizeLimitExtension } from '../record-size-limit';
import { clientWantsOcsp, encodeCertificateStatus } from '../ocsp-stapling';
import { insufficientSecurity } from '../insufficient-security';
import { tls12KeyBlock, verifyFinished } from '../finished';

const TLS12 = 0x0303;
export { DOWNGRADE_SENTINEL_TLS12 };

/** Signature schemes for a TLS 1.2 ServerKeyExchange by this key, in preference order. Never SHA-1. */
export function tls12SchemesFor(shape: KeyShape): SignatureScheme[] {
  if (shape.keyType === 'rsa') {
    const order = ['rsa_pss_rsae_sha256', 'rsa_pkcs1_sha256', 'rsa_pss_rsae_sha384', 'rsa_pkcs1_sha384', 'rsa_pss_rsae_sha512', 'rsa_pkcs1_sha512'];
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
  throw new TlsAlert(AlertDescription.handshake_failure, 'no TLS 1.2 cipher suite, group and signature scheme in common');
}

/** renegotiation_info (RFC 5746 §3.6): in an initial handshake renegotiated_connection must be empty. */
function clientSignalsSecureRenegotiation(hello: ClientHello): boolean {
  if (hello.renegotiationInfo) {
    if (hello.renegotiationInfo.length !== 0) throw new TlsAlert(AlertDescription.handshake_failure, 'renegotiation_info not empty in an initial handshake');
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

export async function serverHandshake12(io: HandshakeIo, first: HandshakeMessage, hello: ClientHello, ctx: TlsContext): Promise<{ info: HandshakeInfo; session: Tls12Session }> {
  io.useTls12Records();
  if (!hello.compressionMethods.includes(0)) throw new TlsAlert(AlertDescription.handshake_failure, 'client does not offer null compression');
  const secureRenegotiation = clientSignalsSecureRenegotiation(hello);
  const ems = hello.extendedMasterSecret;
  const serverName = requestedServerName(hello);
  const { certs, matched } = ctx.certificates.candidates(serverName);
  const { cert, suite, scheme, group } = choose(hello, certs, tls12Groups(ctx.groups));
  // RFC 9113 §9.2.2: HTTP/2 over TLS 1.2 needs an ephemeral key exchange (RSA key exchange is on its
  // cipher-suite block list; Chromium fails with ERR_HTTP2_INADEQUATE_TRANSPORT_SECURITY), so h2 is
  // not chosen with it. Found by the interop matrix (test/interop/matrix.test.ts).
  const alpn = negotiateAlpn(hello, suite.keyExchange === 'RSA' ? ctx.alpnProtocols.filter((p) => p !== 'h2') : ctx.alpnProtocols);
  const ticketExt = hello.sessionTicket;
  const issueTicket = ticketExt !== undefined && ctx.tickets?.ready === true;
  const resumable = ticketExt && ticketExt.length > 0 ? resumableTicket(ticketExt, hello, serverName, ems, ctx) : undefined;
  // mTLS: a ticket's client identity must still satisfy this host's policy, else a full handshake.
  const resumedAuth = resumable ? resumedClientAuth(cert.clientAuth, resumable.clientCertificateChain) : undefined;
  if (resumable && resumedAuth !== 'refuse') return resumeHandshake12(io, first, hello, resumable, { secureRenegotiation, ems, alpn, issueTicket, clientAuth: resumedAuth }, ctx);

  // The server random commits to a seed S: SHA-256(S)[0..24] ‖ downgrade sentinel. The key service
  // derives it from S before signing ServerKeyExchange (so the caller chooses none of its bytes), and
  // checks it for RSA key exchange (so a recorded handshake cannot be replayed through it).
  const seed = crypto.randomBytes(32);
  const serverRandom = tls12ServerRandom(seed);

  const extensions: Extension[] = [];
  if (secureRenegotiation) extensions.push({ type: ExtensionType.renegotiation_info, data: Buffer.from([0]) });
  if (ems) extensions.push({ type: ExtensionType.extended_master_secret, data: Buffer.alloc(0) });
  if (matched && serverName) extensions.push({ type: ExtensionType.server_name, data: Buffer.alloc(0) });
  if (alpn) extensions.push({ type: ExtensionType.alpn, data: encodeAlpn(alpn) });
  if (group && hello.ecPointFormats) {
    extensions.push({ type: ExtensionType.ec_point_formats, data: Buffer.from([1, 0]) }); // uncompressed only
  }
  if (issueTicket) extensions.push({ type: ExtensionType.session_ticket, data: Buffer.alloc(0) }); // RFC 5077 §3.2
  const recordSizeLimit = clientRecordSizeLimit(hello);
  if (recordSizeLimit !== undefined) {
    // RFC 8449 §4: binds our protected records (after our CCS); ours is announced in the ServerHello.
    io.limitRecordPlaintext(maxPlaintextUnder(recordSizeLimit, false));
    extensions.push(recordSizeLimitExtension(false));
  }
  // OCSP stapling (RFC 6066 §8): an empty status_request here, CertificateStatus after Certificate.
  const staple = clientWantsOcsp(hello) ? cert.ocspResponse : undefined;
  if (staple) extensions.push({ type: ExtensionType.status_request, data: Buffer.alloc(0) });

  const transcript = new Transcript(suite.hash);
  const messages: Buffer[] = [];
  const send = (msg: Buffer): void => {
    transcript.update(msg);
    messages.push(msg);
    io.sendHandshake(msg);
  };
  transcript.update(first.raw);
  messages.push(first.raw);
  send(encodeServerHello({ version: TLS12, random: serverRandom, sessionId: Buffer.alloc(0), cipherSuite: suite.id, extensions }));
  send(encodeTls12Certificate(cert.chain));
  if (staple) send(encodeCertificateStatus(staple));

  let keyOperationMs: number | undefined;
  const ephemeral = group ? generateEphemeral(group) : undefined;
  if (ephemeral && scheme) {
    // Let the client work on the chain while the key service signs our ECDHE parameters.
    io.flush();
    const params = encodeServerEcdhParams(ephemeral.group.id, ephemeral.publicShare);
    const signed = await ctx.keyOperations.signTls12ServerKeyExchange(cert.keyName, scheme.name, hello.random, seed, params);
    keyOperationMs = signed.latencyMs;
    send(encodeServerKeyExchange(params, scheme.id, signed.signature));
  }
  // mTLS (RFC 5246 §7.4.4): CertificateRequest just before ServerHelloDone; the client's
  // Certificate opens its flight (§7.4.6) and counts towards the EMS session hash (RFC 7627 §3).
  const clientPolicy = cert.clientAuth;
  if (clientPolicy) send(certificateRequest12(clientPolicy));
  send(encodeServerHelloDone());
  io.flush();
  let clientAuth: ClientAuthResult | undefined;
  let clientPath: Awaited<ReturnType<typeof readClientCertificate12>>['path'];
  if (clientPolicy) {
    const c = await readClientCertificate12(io, clientPolicy);
    transcript.update(c.raw);
    messages.push(c.raw);
    clientPath = c.path;
    clientAuth = c.path ? describeClient(clientPolicy.mode, c.path) : anonymousClient(clientPolicy);
  }

  const cke = await io.readHandshakeMessage(HandshakeType.client_key_exchange);
  transcript.update(cke.raw);
  messages.push(cke.raw);
  // EMS covers the messages up to ClientKeyExchange, not the client's CertificateVerify.
  const sessionHash = transcript.digest();
  const messagesThroughCke = Buffer.concat(messages);
  if (clientPath) {
    // RFC 5246 §7.4.8: a signature over every handshake message so far; checked before any key
    // operation is spent on this client.
    const cv = await readClientCertificateVerify12(io, clientPath[0], messagesThroughCke);
    transcript.update(cv);
    messages.push(cv);
  }

  let masterSecret: Buffer;
  if (ephemeral) {
    const premaster = ephemeral.agree(parseEcdhClientKeyExchange(cke.body));
    masterSecret = ems
      ? prf12(suite.hash, premaster, 'extended master secret', sessionHash, 48) // RFC 7627 §4
      : prf12(suite.hash, premaster, 'master secret', Buffer.concat([hello.random, serverRandom]), 48);
    premaster.fill(0);
  } else {
    // RSA key exchange: the premaster never reaches the edge; the key service returns the master
    // secret of this session only (or a synthetic one on a bad ciphertext — implicit rejection).
    const result = await ctx.keyOperations.rsaMasterSecret(cert.keyName, {
      encryptedPreMasterSecret: parseRsaClientKeyExchange(cke.body),
      clientVersion: hello.legacyVersion,
      clientRandom: hello.random,
      serverRandom,
      serverRandomSeed: seed,
      prfHash: suite.hash,
      handshakeMessages: ems ? messagesThroughCke : undefined,
    });
    keyOperationMs = result.latencyMs;
    masterSecret = result.masterSecret;
  }

  const keys = tls12KeyBlock(suite, masterSecret, serverRandom, hello.random);
  await io.readChangeCipherSpec();
  io.setReadProtection(new Tls12Protection(suite.aead, keys.client.key, keys.client.iv, suite.recordIvLength!));
  const expected = prf12(suite.hash, masterSecret, 'client finished', transcript.digest(), 12);
  const fin = await io.readHandshakeMessage(HandshakeType.finished);
  verifyFinished(fin, expected);
  transcript.update(fin.raw);

  // RFC 5077 §3.3: NewSessionTicket goes before our CCS and is part of the Finished transcript.
  if (issueTicket) {
    const nst = newTicket12(ctx, { suite: suite.id, master: masterSecret, ems, serverName, alpn, clientCertificateChain: clientAuth?.chain });
    if (nst) {
      transcript.update(nst);
      io.sendHandshake(nst);
    }
  }
  io.sendChangeCipherSpec();
  io.setWriteProtection(new Tls12Protection(suite.aead, keys.server.key, keys.server.iv, suite.recordIvLength!));
  io.sendHandshake(handshakeMessage(HandshakeType.finished, prf12(suite.hash, masterSecret, 'server finished', transcript.digest(), 12)));
  io.flush();

  return {
    session: new Tls12Session(io),
    info: {
      protocol: 'TLSv1.2',
      cipher: suite.name,
      cipherOpenssl: suite.opensslName,
      group: ephemeral?.group.name,
      signatureScheme: scheme?.name,
      keyExchange: ephemeral ? `ECDHE (${ephemeral.group.name})` : 'RSA (no forward secrecy)',
      extendedMasterSecret: ems,
      serverName,
      alpn,
      helloRetry: false,
      resumed: false,
      keyOperationMs,
      keyName: cert.keyName,
      clientAuth,
    },
  };
}

interface TicketUse {
  secureRenegotiation: boolean;
  ems: boolean;
  alpn?: string;
  issueTicket: boolean;
  clientAuth?: ClientAuthResult;
}

/** A valid, fresh ticket for this client, or undefined: an unusable ticket means a full handshake. */
function resumableTicket(ticket: Buffer, hello: ClientHello, serverName: string | undefined, ems: boolean, ctx: TlsContext): TicketState | undefined {
  const state = ctx.tickets?.open(ticket);
  if (!state || state.protocol !== 'TLSv1.2' || !hello.cipherSuites.includes(state.suite)) return undefined;
  if (!TLS12_SUITES.some((s) => s.id === state.suite)) return undefined;
  if (!ticketFresh(state, Date.now(), ctx.ticketSettings.ageToleranceMs) || state.serverName !== (serverName ?? '')) return undefined;
  // RFC 7627 §5.3: a session with EMS must not resume without it (abort); one without EMS is not
  // resumed by a client that now offers it (full handshake).
  if (state.extendedMasterSecret && !ems) throw new TlsAlert(AlertDescription.handshake_failure, 'resumption without extended master secret of a session that used it');
  return state.extendedMasterSecret === ems ? state : undefined;
}

function newTicket12(ctx: TlsContext, s: { suite: number; master: Buffer; ems: boolean; serverName?: string; alpn?: string; clientCertificateChain?: Buffer[] }): Buffer | undefined {
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
async function resumeHandshake12(io: HandshakeIo, first: HandshakeMessage, hello: ClientHello, state: TicketState, use: TicketUse, ctx: TlsContext): Promise<{ info: HandshakeInfo; session: Tls12Session }> {
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
  send(encodeServerHello({ version: TLS12, random: serverRandom, sessionId: hello.sessionId, cipherSuite: suite.id, extensions }));
  const master = state.secret;
  if (use.issueTicket) {
    const nst = newTicket12(ctx, { suite: suite.id, master, ems: use.ems, serverName: state.serverName, alpn: use.alpn, clientCertificateChain: use.clientAuth?.chain });
    if (nst) send(nst);
  }
  const keys = tls12KeyBlock(suite, master, serverRandom, hello.random);
  io.sendChangeCipherSpec();
  io.setWriteProtection(new Tls12Protection(suite.aead, keys.server.key, keys.server.iv, suite.recordIvLength!));
  send(handshakeMessage(HandshakeType.finished, prf12(suite.hash, master, 'server finished', transcript.digest(), 12)));
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
