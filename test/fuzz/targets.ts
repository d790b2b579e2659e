/**
 * Fuzz targets. Each one takes an input, runs a piece of the TLS engine on it, and classifies what
 * happened. The invariants (docs/tls-engine.md: never a crash on any input):
 *   - no exception other than a TLS alert escapes a parser or the record layer;
 *   - a connection never fails with an error that is not a protocol outcome (a TypeError or a
 *     RangeError turned into internal_error is a bug, even though the connection survives it);
 *   - after the client's bytes and EOF, the connection closes within a bound (no hang);
 *   - the server's output per connection stays bounded (no amplification, memory bounded).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AlertDescription, PeerAlert, TlsAlert } from '../../edge-proxy/src/tls/alerts';
import { pemCertificatesToDer } from '../../contract/x509';
import { CertificateStore, loadCertificate } from '../../edge-proxy/src/tls/certificates';
import { loadClientAuthPolicy } from '../../edge-proxy/src/tls/client-auth';
import { HandshakeError, TlsServerConnection } from '../../edge-proxy/src/tls/connection';
import { createTlsContext, TlsContext } from '../../edge-proxy/src/tls/context';
import * as ext from '../../edge-proxy/src/tls/extensions';
import { HandshakeJoiner } from '../../edge-proxy/src/tls/handshake-joiner';
import { parseClientHello } from '../../edge-proxy/src/tls/msgs/client-hello';
import {
  parseEcdhClientKeyExchange,
  parseRsaClientKeyExchange,
} from '../../edge-proxy/src/tls/msgs/client-key-exchange';
import { parseKeyUpdate } from '../../edge-proxy/src/tls/msgs/key-update';
import {
  ContentType,
  NullProtection,
  RecordProtection,
  RecordReader,
  Tls12Protection,
  Tls13Protection,
} from '../../edge-proxy/src/tls/record-layer';
import { TicketProtector } from '../../edge-proxy/src/tls/tickets';
import { KeyOperationError } from '../../edge-proxy/src/tls/key-operations';
import { makeClientPki, makeTestPki, TestPki } from '../helpers/certs';
import { InProcessKeys } from '../helpers/in-process-keys';
import { encodeHelloFields, encodeRecord, mutateBytes, mutateFlight, parseHelloFields, Rng } from './mutators';
import { clientHelloBody, handshakeRecord } from '../helpers/client-hello';
import { FakeSocket } from './fake-socket';

export type Outcome =
  | { kind: 'ok'; label: string }
  | { kind: 'crash'; label: string; detail: string }
  | { kind: 'hang'; label: string; detail: string };

export interface FuzzTarget {
  name: string;
  description: string;
  maxLength: number;
  /** Seed inputs (corpus files, plus synthetic ones). */
  seeds: Buffer[];
  mutate(rng: Rng, input: Buffer, other?: Buffer): Buffer;
  run(input: Buffer): Promise<Outcome>;
  close?(): void;
}

/** Where the committed corpus lives (test/fuzz/corpus), from test/ (jest) or dist/test/ (npm run fuzz). */
export function corpusDir(): string {
  for (let dir = __dirname; path.dirname(dir) !== dir; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return path.join(dir, 'test', 'fuzz', 'corpus');
  }
  throw new Error(`no package.json above ${__dirname}`);
}

/** The seed corpus: every *.bin under corpus/<sub> (client-hellos, flights, …). */
export function loadCorpus(sub: string): Buffer[] {
  const dir = path.join(corpusDir(), sub);
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.bin'))
    .sort()
    .map((f) => fs.readFileSync(path.join(dir, f)));
}

/** Like loadCorpus, with file names (corpus/flights/tls13-*.bin seed the TLS 1.3 target, tls12-* the TLS 1.2 one). */
function loadCorpusNamed(sub: string): { name: string; data: Buffer }[] {
  const dir = path.join(corpusDir(), sub);
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.bin'))
    .sort()
    .map((f) => ({ name: f, data: fs.readFileSync(path.join(dir, f)) }));
}

function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}\n${err.stack ?? ''}`;
  return String(err);
}

/** An error from a parser that is a proper protocol outcome. */
function isAlert(err: unknown): boolean {
  return err instanceof TlsAlert;
}

// ---- record layer ----------------------------------------------------------------------------

const RECORD_KEY = Buffer.alloc(32, 7);
const RECORD_IV = Buffer.alloc(12, 9);

/**
 * Record layer: the input is a list of records the fuzzer (knowing the keys) protects before the
 * server opens them, so AEAD success paths — padding, inner content type, size limits — are
 * reached, not just authentication failures. Byte 0 picks the protection; each record is
 * [flags, type, len16, payload]; flag bit 0 corrupts the ciphertext after sealing.
 */
function recordTarget(): FuzzTarget {
  const protections = (mode: number): [RecordProtection, RecordProtection] => {
    switch (mode % 5) {
      case 0:
        return [new NullProtection(), new NullProtection()];
      case 1:
        return [
          new Tls13Protection('aes-128-gcm', RECORD_KEY.subarray(0, 16), RECORD_IV),
          new Tls13Protection('aes-128-gcm', RECORD_KEY.subarray(0, 16), RECORD_IV),
        ];
      case 2:
        return [
          new Tls13Protection('chacha20-poly1305', RECORD_KEY, RECORD_IV),
          new Tls13Protection('chacha20-poly1305', RECORD_KEY, RECORD_IV),
        ];
      case 3:
        return [
          new Tls12Protection('aes-256-gcm', RECORD_KEY, RECORD_IV.subarray(0, 4), 8),
          new Tls12Protection('aes-256-gcm', RECORD_KEY, RECORD_IV.subarray(0, 4), 8),
        ];
      default:
        return [
          new Tls12Protection('chacha20-poly1305', RECORD_KEY, RECORD_IV, 0),
          new Tls12Protection('chacha20-poly1305', RECORD_KEY, RECORD_IV, 0),
        ];
    }
  };
  const seed = (mode: number, records: [number, number, Buffer][]): Buffer =>
    Buffer.concat([
      Buffer.from([mode]),
      ...records.map(([flags, type, payload]) =>
        Buffer.concat([Buffer.from([flags, type, payload.length >> 8, payload.length & 0xff]), payload]),
      ),
    ]);
  return {
    name: 'record',
    description: 'record framing, size limits, AEAD open, TLS 1.3 inner plaintext and padding (RFC 8446 §5)',
    maxLength: 40_000,
    seeds: [
      seed(0, [
        [0, 22, Buffer.from('0100000403030000', 'hex')],
        [0, 21, Buffer.from([2, 40])],
      ]),
      seed(1, [
        [0, 23, Buffer.from('68656c6c6f17', 'hex')],
        [0, 23, Buffer.from('160000000000', 'hex')],
        [0, 23, Buffer.alloc(5)],
      ]),
      seed(2, [
        [0, 23, Buffer.concat([Buffer.alloc(16384, 0x61), Buffer.from([23])])],
        [1, 23, Buffer.from('6617', 'hex')],
      ]),
      seed(3, [
        [0, 23, Buffer.from('hello')],
        [0, 21, Buffer.from([1, 0])],
      ]),
      seed(4, [
        [0, 22, Buffer.from('1400000c' + '00'.repeat(12), 'hex')],
        [1, 23, Buffer.alloc(0)],
      ]),
    ],
    mutate: (rng, input, other) => mutateBytes(rng, input, 40_000, other),
    async run(input) {
      if (input.length === 0) return { kind: 'ok', label: 'empty' };
      const [sealer, opener] = protections(input[0]);
      const wire: Buffer[] = [];
      for (let off = 1; off + 4 <= input.length;) {
        const flags = input[off];
        const type = input[off + 1];
        const len = input.readUInt16BE(off + 2);
        const payload = input.subarray(off + 4, off + 4 + len);
        off += 4 + len;
        if (flags & 2) {
          // Raw record bytes as given (header included), not protected by us.
          wire.push(payload);
          continue;
        }
        let sealed: Buffer;
        if (sealer.encrypted) sealed = sealer.seal(type as ContentType, payload.subarray(0, 16_384 + 300));
        else sealed = Buffer.concat([Buffer.from([type, 3, 3, payload.length >> 8, payload.length & 0xff]), payload]);
        if (flags & 1 && sealed.length > 5) sealed[5 + ((flags >> 2) % (sealed.length - 5))] ^= 0x01;
        wire.push(sealed);
      }
      const reader = new RecordReader();
      reader.maxFragment = opener.maxFragment;
      let label = 'all opened';
      try {
        // Deliver in two uneven pieces: framing must not depend on how TCP splits the stream.
        const stream = Buffer.concat(wire);
        const cut = stream.length === 0 ? 0 : input[input.length - 1] % stream.length;
        for (const piece of [stream.subarray(0, cut), stream.subarray(cut)]) {
          reader.push(piece);
          for (let raw = reader.next(); raw; raw = reader.next()) {
            const opened = opener.open(raw);
            if (opened.plaintext.length > 16_384)
              return { kind: 'crash', label: 'oversized plaintext', detail: `opened ${opened.plaintext.length} bytes` };
          }
        }
      } catch (err) {
        if (!isAlert(err)) return { kind: 'crash', label: 'non-alert exception', detail: describeError(err) };
        label = `alert ${AlertDescription[(err as TlsAlert).description]}`;
      }
      return { kind: 'ok', label };
    },
  };
}

// ---- handshake parser ------------------------------------------------------------------------

/**
 * Handshake messages and extensions: the handshake joiner, then every parser the server applies
 * to client messages (ClientHello and each extension it reads, ClientKeyExchange, KeyUpdate).
 * Input: a handshake byte stream (the payload of handshake records).
 */
function parserTarget(hellos: Buffer[]): FuzzTarget {
  const payloads = hellos.map((h) => Buffer.concat(splitPayloads(h)));
  return {
    name: 'handshake-parser',
    description: 'handshake joiner, ClientHello, extensions, ClientKeyExchange, KeyUpdate parsers',
    maxLength: 70_000,
    seeds: [...payloads, Buffer.from('10000021' + '20' + '04'.repeat(32), 'hex'), Buffer.from('1800000101', 'hex')],
    mutate: (rng, input, other) => {
      // Mutate as a record stream (structure-aware on the ClientHello), then strip the record headers.
      const flight = mutateFlight(
        rng,
        Buffer.concat([Buffer.from([22, 3, 1, input.length >> 8, input.length & 0xff]), input.subarray(0, 65_535)]),
        70_000,
        other,
      );
      const parts = splitPayloads(flight);
      return parts.length ? Buffer.concat(parts) : flight;
    },
    async run(input) {
      const joiner = new HandshakeJoiner(65_536);
      let label = 'parsed';
      try {
        joiner.push(input);
        for (let m = joiner.next(); m; m = joiner.next()) {
          switch (m.type) {
            case 1: {
              const hello = parseClientHello(m.body);
              const parsers: [number, (d: Buffer) => unknown][] = [
                [ext.ExtensionType.server_name, ext.parseServerName],
                [ext.ExtensionType.supported_versions, ext.parseClientSupportedVersions],
                [ext.ExtensionType.key_share, ext.parseClientKeyShares],
                [ext.ExtensionType.alpn, ext.parseAlpn],
                [ext.ExtensionType.psk_key_exchange_modes, ext.parsePskModes],
                [ext.ExtensionType.pre_shared_key, ext.parseOfferedPsks],
                [ext.ExtensionType.supported_groups, (d) => ext.parseU16List(d, 'supported_groups')],
                [ext.ExtensionType.signature_algorithms, (d) => ext.parseU16List(d, 'signature_algorithms')],
              ];
              // Each parser on its own: one failing must not hide a crash in the next.
              for (const [type, parse] of parsers) {
                const data = hello.extensions.get(type);
                if (!data) continue;
                try {
                  parse(data);
                } catch (err) {
                  if (!isAlert(err)) throw err;
                }
              }
              label = 'client_hello';
              break;
            }
            case 16:
              try {
                parseEcdhClientKeyExchange(m.body);
              } catch (err) {
                if (!isAlert(err)) throw err;
              }
              parseRsaClientKeyExchange(m.body);
              label = 'client_key_exchange';
              break;
            case 24:
              parseKeyUpdate(m.body);
              label = 'key_update';
              break;
            default:
              label = `type ${m.type}`;
          }
        }
      } catch (err) {
        if (!isAlert(err)) return { kind: 'crash', label: 'non-alert exception', detail: describeError(err) };
        label = `alert ${AlertDescription[(err as TlsAlert).description]}`;
      }
      return { kind: 'ok', label };
    },
  };
}

function splitPayloads(stream: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off + 5 <= stream.length;) {
    const len = stream.readUInt16BE(off + 3);
    if (stream[off] === 22) out.push(stream.subarray(off + 5, off + 5 + len));
    off += 5 + len;
  }
  return out;
}

// ---- server state machines -------------------------------------------------------------------

export interface ServerFixture {
  ctx: TlsContext;
  pki: TestPki;
}

/**
 * A server context like the edge's: an RSA certificate whose custody allows RSA key exchange
 * (sealed), an ECDSA P-256 one, session tickets on, and the in-process key service double.
 */
export function serverFixture(): ServerFixture {
  const pki = makeTestPki();
  const rsa = pki.leaf('rsa', 'rsa2048', ['localhost']);
  const ec = pki.leaf('ec', 'p256', ['localhost']);
  const keys = new InProcessKeys(
    new Map([
      ['rsa-key', rsa.key],
      ['ec-key', ec.key],
    ]),
    { now: () => 1_700_000_000_000 },
  );
  const rsaCert = { ...loadCertificate(rsa.chainPem, 'rsa-key'), allowRsaKeyExchange: true };
  const tickets = new TicketProtector();
  const ctx = createTlsContext({
    certificates: new CertificateStore([rsaCert, loadCertificate(ec.chainPem, 'ec-key')]),
    keyOperations: keys,
    // Long: a hang must be caught by the fuzzer's own bound, not hidden by this timer.
    handshakeTimeoutMs: 120_000,
    tickets,
  });
  void keys.ticketKeys().then((k) => tickets.setKeys(k));
  return { ctx, pki };
}

/** After EOF, a connection must be closed within this many ms (generous: a loaded 2-core box). */
export const HANG_BOUND_MS = 10_000;
/** The most a server may write in answer to one client flight (a first flight is a few KiB). */
export const MAX_OUTPUT_BYTES = 256 * 1024;

/** The description of the first alert the server sent in the clear, if any. */
function firstPlainAlert(out: Buffer): number | undefined {
  for (let off = 0; off + 5 <= out.length;) {
    const len = out.readUInt16BE(off + 3);
    if (out[off] === 21 && len === 2) return out[off + 6];
    off += 5 + len;
  }
  return undefined;
}

/** Drives one TlsServerConnection with the input as the client's bytes, then EOF. */
export function runConnection(ctx: TlsContext, input: Buffer): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = new FakeSocket();
    let failure: unknown;
    let secure = false;
    let finished = false;
    const finish = (o: Outcome): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      resolve(o);
    };
    const timer = setTimeout(() => {
      conn.destroy();
      finish({
        kind: 'hang',
        label: 'no close after EOF',
        detail: `connection still open ${HANG_BOUND_MS} ms after the client's EOF (input ${input.length} bytes)`,
      });
    }, HANG_BOUND_MS);
    const conn = new TlsServerConnection(socket.asSocket(), ctx);
    conn.on('error', () => undefined);
    conn.on('tlsError', () => undefined);
    conn.once('secure', () => {
      secure = true;
      conn.resume();
      conn.end();
    });
    conn.once('handshakeError', (err: HandshakeError) => (failure = err.cause ?? err));
    conn.once('close', () => {
      const cause = failure;
      if (socket.writtenBytes > MAX_OUTPUT_BYTES)
        return finish({
          kind: 'crash',
          label: 'output too large',
          detail: `server wrote ${socket.writtenBytes} bytes`,
        });
      if (
        cause !== undefined &&
        !(
          cause instanceof TlsAlert ||
          cause instanceof PeerAlert ||
          cause instanceof HandshakeError ||
          cause instanceof KeyOperationError
        )
      ) {
        return finish({ kind: 'crash', label: 'internal error', detail: describeError(cause) });
      }
      const alert = firstPlainAlert(socket.output());
      let label: string;
      if (secure) label = 'handshake completed';
      else if (cause instanceof TlsAlert) label = `alert ${AlertDescription[cause.description]}`;
      else if (cause instanceof PeerAlert) label = 'peer alert';
      else if (cause instanceof KeyOperationError) label = `key operation ${cause.code}`;
      else label = alert !== undefined ? `alert ${AlertDescription[alert]}` : 'closed at EOF';
      finish({ kind: 'ok', label });
    });
    try {
      // Deliver in TCP-like pieces whose sizes depend only on the input (reproducible).
      const step = 1 + (input.length ? crypto.createHash('sha1').update(input).digest()[0] * 16 : 1);
      for (let off = 0; off < input.length; off += step) socket.emit('data', input.subarray(off, off + step));
      setImmediate(() => socket.emit('end'));
    } catch (err) {
      conn.destroy();
      finish({ kind: 'crash', label: 'exception from socket data handler', detail: describeError(err) });
    }
  });
}

function serverTarget(name: string, description: string, fixture: ServerFixture, seeds: Buffer[]): FuzzTarget {
  return {
    name,
    description,
    maxLength: 32_768,
    seeds,
    mutate: (rng, input, other) => mutateFlight(rng, input, 32_768, other),
    run: (input) => runConnection(fixture.ctx, input),
  };
}

/** TLS 1.2 versions of a ClientHello flight: supported_versions removed (what a TLS 1.2 client sends). */
function asTls12(flight: Buffer): Buffer | undefined {
  const { records } = splitRecordsLocal(flight);
  const hs = Buffer.concat(records.filter((r) => r.type === 22).map((r) => r.payload));
  if (hs.length < 4 || hs[0] !== 1) return undefined;
  const f = parseHelloFields(hs.subarray(4, 4 + hs.readUIntBE(1, 3)));
  if (!f) return undefined;
  f.extensions = f.extensions.filter((e) => e.type !== 43 && e.type !== 51 && e.type !== 41 && e.type !== 42);
  const body = encodeHelloFields(f);
  const msg = Buffer.concat([Buffer.from([1, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]), body]);
  return encodeRecord({ type: 22, version: 0x0301, payload: msg });
}

function splitRecordsLocal(stream: Buffer): { records: { type: number; payload: Buffer }[] } {
  const records: { type: number; payload: Buffer }[] = [];
  for (let off = 0; off + 5 <= stream.length;) {
    const len = stream.readUInt16BE(off + 3);
    records.push({ type: stream[off], payload: stream.subarray(off + 5, off + 5 + len) });
    off += 5 + len;
  }
  return { records };
}

/**
 * Second-flight material for TLS 1.2 (in the clear until the client's CCS): ClientKeyExchange for
 * ECDHE (a valid X25519 point) and for RSA (a 256-byte ciphertext), CCS, and a Finished record
 * that cannot authenticate. Appended to a TLS 1.2 ClientHello they drive the state machine past
 * ServerHelloDone, into key exchange and Finished checks.
 */
function tls12SecondFlights(): Buffer[] {
  const x = crypto.generateKeyPairSync('x25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const hs = (type: number, body: Buffer): Buffer =>
    Buffer.concat([
      Buffer.from([
        22,
        3,
        3,
        (body.length + 4) >> 8,
        (body.length + 4) & 0xff,
        type,
        0,
        body.length >> 8,
        body.length & 0xff,
      ]),
      body,
    ]);
  const ccs = Buffer.from('140303000101', 'hex');
  const finished = Buffer.concat([Buffer.from([22, 3, 3, 0, 40]), Buffer.alloc(40, 0x33)]);
  const ecdhe = hs(16, Buffer.concat([Buffer.from([32]), x]));
  const rsa = hs(16, Buffer.concat([Buffer.from([1, 0]), crypto.randomBytes(256)]));
  return [Buffer.concat([ecdhe, ccs, finished]), Buffer.concat([rsa, ccs, finished])];
}

/**
 * mTLS: a host whose certificate has `clientAuth: optional`, so a TLS 1.2 client's Certificate —
 * sent in the clear, before any key is agreed — reaches the chain checks and the hand-written DER
 * reader (x509-der.ts) that any client can reach on such a host. Seeds: TLS 1.2 ClientHellos, then a
 * real client chain (leaf and intermediate), then the second-flight material.
 */
function mtlsTarget(hellos: Buffer[], second: Buffer[]): FuzzTarget {
  const pki = makeTestPki();
  const clients = makeClientPki();
  const server = pki.leaf('mtls', 'p256', ['localhost']);
  const keys = new InProcessKeys(new Map([['mtls-key', server.key]]), { now: () => 1_700_000_000_000 });
  const ctx = createTlsContext({
    certificates: new CertificateStore([
      { ...loadCertificate(server.chainPem, 'mtls-key'), clientAuth: loadClientAuthPolicy('optional', clients.caPem) },
    ]),
    keyOperations: keys,
    handshakeTimeoutMs: 120_000,
  });
  const alice = clients.issue('alice', {
    subject: '/O=Example/OU=Fuzz/CN=alice',
    san: 'email:alice@example.com,DNS:alice.example',
    issuer: 'intermediate',
  });
  const chain = pemCertificatesToDer(alice.chainPem);
  const certBody = Buffer.concat([
    u24(chain.reduce((n, c) => n + 3 + c.length, 0)),
    ...chain.flatMap((c) => [u24(c.length), c]),
  ]);
  const certMsg = Buffer.concat([Buffer.from([11]), u24(certBody.length), certBody]);
  const certRecord = Buffer.concat([Buffer.from([22, 3, 3, certMsg.length >> 8, certMsg.length & 0xff]), certMsg]);
  const seeds = hellos
    .slice(0, 4)
    .flatMap((h) => [Buffer.concat([h, certRecord]), ...second.map((f) => Buffer.concat([h, certRecord, f]))]);
  return {
    name: 'server-mtls',
    description: 'TLS 1.2 server with client certificates (mTLS): client Certificate chains, x509-der.ts',
    maxLength: 32_768,
    seeds,
    mutate: (rng, input, other) => mutateFlight(rng, input, 32_768, other),
    run: (input) => runConnection(ctx, input),
    close: () => {
      pki.cleanup();
      clients.cleanup();
    },
  };
}

function u24(n: number): Buffer {
  return Buffer.from([n >> 16, (n >> 8) & 0xff, n & 0xff]);
}

/** The client hellos in the corpus, or a built one when the corpus is empty (keeps the smoke test honest). */
function helloSeeds(): Buffer[] {
  const captured = loadCorpus('client-hello');
  if (captured.length > 0) return captured;
  return [handshakeRecord(clientHelloBody({ serverName: 'localhost', alpn: ['h2'] }))];
}

/** Every target, sharing one server fixture. Call `close()` on each (the fixture's PKI is removed once). */
export function allTargets(): FuzzTarget[] {
  const fixture = serverFixture();
  const hellos = helloSeeds();
  const tls12Hellos = hellos.map(asTls12).filter((h): h is Buffer => h !== undefined);
  const second = tls12SecondFlights();
  const flights = loadCorpusNamed('flights');
  const tls12Seeds = [
    ...tls12Hellos,
    ...tls12Hellos.slice(0, 3).flatMap((h) => second.map((s) => Buffer.concat([h, s]))),
    ...flights.filter((f) => f.name.startsWith('tls12-')).map((f) => f.data),
  ];
  const tls13Seeds = [...hellos, ...flights.filter((f) => f.name.startsWith('tls13-')).map((f) => f.data)];
  let closed = false;
  const cleanup = (): void => {
    if (!closed) fixture.pki.cleanup();
    closed = true;
  };
  return [
    recordTarget(),
    parserTarget(hellos),
    {
      ...serverTarget(
        'server-tls13',
        'TLS 1.3 server state machine via TlsServerConnection (mutated client flights)',
        fixture,
        tls13Seeds,
      ),
      close: cleanup,
    },
    {
      ...serverTarget(
        'server-tls12',
        'TLS 1.2 server state machine (ECDHE and RSA key exchange) via TlsServerConnection',
        fixture,
        tls12Seeds,
      ),
      close: cleanup,
    },
    mtlsTarget(tls12Hellos, second),
  ];
}
