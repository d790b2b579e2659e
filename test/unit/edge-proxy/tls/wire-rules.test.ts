/**
 * Record- and message-level rules of RFC 8446, RFC 7627 and RFC 5077 that a conformance suite found
 * broken, each checked on a raw socket with the exact bytes: the alert on the wire (decrypted where
 * it is protected) and that the server then closes. docs/tls-engine.md lists the cases.
 *
 * - §5.1: nothing may come between the records of a fragmented handshake message.
 * - §5.4: an Alert or Handshake record with empty content is unexpected_message.
 * - Appendix D.5: legacy_version 0x0300 or lower is protocol_version, whatever else is offered.
 * - §4.2, RFC 7627 §5.1: every extension the server interprets is decoded strictly.
 * - RFC 5077 §3.4: a TLS 1.2 ticket resumes with an empty session id.
 * - §5.1, §6: an alert is sent under keys the peer has, even when the ClientHello does not end its record.
 * - A ClientHello of any legal size (up to 131,396 bytes) is read; other messages keep their bound.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CertificateStore, loadCertificate } from '../../../../edge-proxy/src/tls/certificates';
import { TicketProtector } from '../../../../edge-proxy/src/tls/tickets';
import { AlertDescription } from '../../../../edge-proxy/src/tls/alerts';
import { ContentType } from '../../../../edge-proxy/src/tls/record-layer';
import { handshakeMessage, HandshakeType } from '../../../../edge-proxy/src/tls/handshake-joiner';
import { Writer } from '../../../../edge-proxy/src/tls/codec';
import { TLS12_SUITES } from '../../../../edge-proxy/src/tls/suites';
import { MAX_CLIENT_HELLO } from '../../../../edge-proxy/src/tls/msgs/limits';
import type { TestPki } from '../../../helpers/certs';
import { InProcessKeys } from '../../../helpers/in-process-keys';
import { startTlsServerFixture, type TlsServerFixture } from '../../../helpers/tls-server-fixture';
import {
  clientHelloBody,
  clientHelloRecords,
  handshakeRecord,
  HelloOptions,
  plainRecord,
  x25519Share,
} from '../../../helpers/client-hello';
import { plainAlert as plainAlertFrom, rawExchange, RawTls13Client, resumeTls12 } from '../../../helpers/raw-peer';
import { havePeer, runPeer } from '../../../helpers/peers';

const A = AlertDescription;
let pki: TestPki;
let keys: InProcessKeys;
let tickets: TicketProtector;
let fixture: TlsServerFixture;
let port: number;

beforeAll(async () => {
  fixture = await startTlsServerFixture(
    (testPki) => {
      const rsa = testPki.leaf('rsa', 'rsa2048', ['localhost']);
      keys = new InProcessKeys(new Map([['rsa-key', rsa.key]]));
      tickets = new TicketProtector();
      tickets.setKeys({
        epochSeconds: 3600,
        current: { epoch: 7, key: crypto.randomBytes(32) },
        previous: { epoch: 6, key: crypto.randomBytes(32) },
      });
      return {
        certificates: new CertificateStore([loadCertificate(rsa.chainPem, 'rsa-key')]),
        keyOperations: keys,
        tickets,
        handshakeTimeoutMs: 8000,
      };
    },
    (c) => c.pipe(c),
  );
  ({ pki, port } = fixture);
});

afterAll(() => fixture.close());

/** A ClientHello (and anything after it) in the clear: the alert comes back in the clear. */
const plainAlert = (chunks: Buffer[]): Promise<{ alert?: number; closed: boolean }> => plainAlertFrom(port, chunks);
const hello = clientHelloRecords;
const tls12 = (o: HelloOptions = {}): HelloOptions => ({ versions: null, suites: [0xc02f], ...o });

/** The server's flight done by the scripted client; `act` then sends under the client's handshake keys. */
async function underHandshakeKeys(
  act: (c: RawTls13Client) => void,
): Promise<{ alert?: number; closed: boolean; echoed: string }> {
  const c = await RawTls13Client.connect(port);
  await c.handshake();
  act(c);
  const r = await c.untilClosed();
  return { ...r, echoed: c.appData.toString() };
}

/** Both Finished exchanged; `act` then sends under the client's application keys. */
async function underApplicationKeys(
  act: (c: RawTls13Client) => void,
): Promise<{ alert?: number; closed: boolean; echoed: string }> {
  return underHandshakeKeys((c) => {
    c.sendFinished();
    act(c);
  });
}

describe('RFC 8446 §5.1: no other record between the fragments of a handshake message', () => {
  const keyUpdate = handshakeMessage(HandshakeType.key_update, Buffer.from([0]));
  const request = Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');

  it.each([1, 2, 3, 4])(
    'a KeyUpdate split after byte %i with application data in between: unexpected_message, nothing answered',
    async (at) => {
      const r = await underApplicationKeys((c) =>
        c.send(
          c.protectedRecord(ContentType.handshake, keyUpdate.subarray(0, at)),
          c.protectedRecord(ContentType.application_data, request),
          c.protectedRecord(ContentType.handshake, keyUpdate.subarray(at)),
        ),
      );
      expect(r).toEqual({ alert: A.unexpected_message, closed: true, echoed: '' });
    },
  );

  it('an alert (close_notify) between the fragments of a KeyUpdate', async () => {
    const r = await underApplicationKeys((c) =>
      c.send(
        c.protectedRecord(ContentType.handshake, keyUpdate.subarray(0, 2)),
        c.protectedRecord(ContentType.alert, Buffer.from([1, 0])),
        c.protectedRecord(ContentType.handshake, keyUpdate.subarray(2)),
      ),
    );
    expect(r).toEqual({ alert: A.unexpected_message, closed: true, echoed: '' });
  });

  it('a ChangeCipherSpec between the fragments of the client Finished (handshake keys)', async () => {
    const r = await underHandshakeKeys((c) => {
      const fin = c.finishedMessage();
      c.send(
        c.protectedRecord(ContentType.handshake, fin.subarray(0, 10)),
        plainRecord(20, Buffer.from([1])),
        c.protectedRecord(ContentType.handshake, fin.subarray(10)),
      );
    });
    expect(r).toMatchObject({ alert: A.unexpected_message, closed: true });
  });

  it('application data between the fragments of the client Finished (handshake keys)', async () => {
    const r = await underHandshakeKeys((c) => {
      const fin = c.finishedMessage();
      c.send(
        c.protectedRecord(ContentType.handshake, fin.subarray(0, 10)),
        c.protectedRecord(ContentType.application_data, request),
        c.protectedRecord(ContentType.handshake, fin.subarray(10)),
      );
    });
    expect(r).toMatchObject({ alert: A.unexpected_message, closed: true });
  });

  it('a ChangeCipherSpec between the fragments of the ClientHello (no keys yet)', async () => {
    const ch = handshakeRecord(clientHelloBody({})).subarray(5);
    expect(
      await plainAlert([
        plainRecord(22, ch.subarray(0, 40)),
        plainRecord(20, Buffer.from([1])),
        plainRecord(22, ch.subarray(40)),
      ]),
    ).toEqual({ alert: A.unexpected_message, closed: true });
  });
});

describe('RFC 8446 §5.4: Alert and Handshake records with empty content are unexpected_message', () => {
  it.each([
    ['alert', 'handshake', 0],
    ['alert', 'handshake', 7],
    ['alert', 'application', 0],
    ['alert', 'application', 7],
    ['handshake', 'handshake', 0],
    ['handshake', 'handshake', 7],
    ['handshake', 'application', 0],
    ['handshake', 'application', 7],
  ] as const)('an empty %s under %s keys with %i bytes of padding', async (type, keys, padding) => {
    const contentType = type === 'alert' ? ContentType.alert : ContentType.handshake;
    const send = (c: RawTls13Client): void => c.send(c.protectedRecord(contentType, Buffer.alloc(0), padding));
    const r = keys === 'handshake' ? await underHandshakeKeys(send) : await underApplicationKeys(send);
    expect(r).toMatchObject({ alert: A.unexpected_message, closed: true });
  });

  it.each([1, 3])('an alert of %i bytes stays decode_error', async (n) => {
    const r = await underApplicationKeys((c) => c.send(c.protectedRecord(ContentType.alert, Buffer.alloc(n, 1))));
    expect(r).toMatchObject({ alert: A.decode_error, closed: true });
  });
});

describe('RFC 8446 Appendix D.5: legacy_version 0x0300 or lower is protocol_version', () => {
  it.each([
    ['0x0300', 0x0300],
    ['0x0200', 0x0200],
    ['0x0100', 0x0100],
    ['0x0000', 0x0000],
  ])('legacy_version %s with supported_versions offering TLS 1.3', async (_name, v) => {
    expect(await plainAlert(hello({ legacyVersion: v }))).toEqual({ alert: A.protocol_version, closed: true });
  });
});

describe('strict extension bodies (RFC 8446 §4.2, RFC 7627 §5.1): decode_error; a repeated extension is illegal_parameter', () => {
  const psk = (trailing: Buffer) =>
    Buffer.concat([
      new Writer()
        .vec16((w) => w.vec16(Buffer.alloc(16, 1)).u32(0))
        .vec16((w) => w.vec8(Buffer.alloc(32)))
        .finish(),
      trailing,
    ]);
  const modes = { type: 45, data: Buffer.from([1, 1]) };
  const trailing = Buffer.from([0]);
  const sni = new Writer().vec16((w) => w.u8(0).vec16(Buffer.from('localhost'))).finish();
  const shares = new Writer().vec16((w) => w.u16(0x1d).vec16(x25519Share())).finish();
  /** Per interpreted extension: a malformed body, and how it goes into the ClientHello. */
  const malformed: [string, HelloOptions][] = [
    ['server_name with a trailing byte', { extra: [{ type: 0, data: Buffer.concat([sni, trailing]) }] }],
    ['status_request (ocsp) with a trailing byte', { extra: [{ type: 5, data: Buffer.from([1, 0, 0, 0, 0, 0]) }] }],
    ['supported_groups with a trailing byte', { replace: [{ type: 10, data: Buffer.from([0, 2, 0, 0x1d, 0]) }] }],
    ['ec_point_formats with a trailing byte', { extra: [{ type: 11, data: Buffer.from([1, 0, 0]) }] }],
    ['signature_algorithms of odd length', { replace: [{ type: 13, data: Buffer.from([0, 3, 8, 4, 4]) }] }],
    ['ALPN with a trailing byte', { extra: [{ type: 16, data: Buffer.from([0, 3, 2, 0x68, 0x32, 0]) }] }],
    ['extended_master_secret that is not empty', { extra: [{ type: 23, data: Buffer.from([0]) }] }],
    ['record_size_limit of three bytes', { extra: [{ type: 28, data: Buffer.from([0x40, 0, 0]) }] }],
    ['early_data that is not empty', { extra: [{ type: 42, data: Buffer.from([0]) }] }],
    ['supported_versions with a trailing byte', { replace: [{ type: 43, data: Buffer.from([2, 3, 4, 0]) }] }],
    ['psk_key_exchange_modes with a trailing byte', { extra: [{ type: 45, data: Buffer.from([1, 1, 0]) }] }],
    ['key_share with a trailing byte', { replace: [{ type: 51, data: Buffer.concat([shares, trailing]) }] }],
    ['renegotiation_info whose length overruns it', { extra: [{ type: 0xff01, data: Buffer.from([1]) }] }],
    ['pre_shared_key with a trailing byte', { extra: [modes, { type: 41, data: psk(trailing) }] }],
  ];
  it.each(malformed)('TLS 1.3 ClientHello: %s', async (_name, o) => {
    expect(await plainAlert(hello(o))).toEqual({ alert: A.decode_error, closed: true });
  });
  it.each(malformed)('TLS 1.2 ClientHello: %s', async (_name, o) => {
    expect(await plainAlert(hello(tls12(o)))).toEqual({ alert: A.decode_error, closed: true });
  });

  const wellFormed: [string, number, Buffer][] = [
    ['server_name', 0, sni],
    ['status_request', 5, Buffer.from([1, 0, 0, 0, 0])],
    ['ec_point_formats', 11, Buffer.from([1, 0])],
    ['ALPN', 16, Buffer.from([0, 3, 2, 0x68, 0x32])],
    ['extended_master_secret', 23, Buffer.alloc(0)],
    ['record_size_limit', 28, Buffer.from([0x40, 0])],
    ['session_ticket', 35, Buffer.alloc(0)],
    ['early_data', 42, Buffer.alloc(0)],
    ['psk_key_exchange_modes', 45, Buffer.from([1, 1])],
    ['renegotiation_info', 0xff01, Buffer.from([0])],
  ];
  it.each(wellFormed)('a repeated %s extension', async (_name, type, data) => {
    expect(
      await plainAlert(
        hello({
          extra: [
            { type, data },
            { type, data },
          ],
        }),
      ),
    ).toEqual({ alert: A.illegal_parameter, closed: true });
  });
  it.each([
    ['supported_groups', 10, Buffer.from([0, 2, 0, 0x1d])],
    ['signature_algorithms', 13, Buffer.from([0, 2, 8, 4])],
    ['supported_versions', 43, Buffer.from([2, 3, 4])],
    ['key_share', 51, shares],
  ] as [string, number, Buffer][])('a repeated %s extension', async (_name, type, data) => {
    expect(await plainAlert(hello({ extra: [{ type, data }] }))).toEqual({ alert: A.illegal_parameter, closed: true });
  });
  it('an empty extended_master_secret still negotiates EMS in TLS 1.2 (the control)', async () => {
    const r = await rawExchange(port, hello(tls12({ extra: [{ type: 23, data: Buffer.alloc(0) }] })), 1500);
    expect(r.plainAlert).toBeUndefined();
    expect(r.received[0]).toBe(22); // ServerHello
  });
});

describe('RFC 5077 §3.4: a TLS 1.2 ticket resumes with an empty session id', () => {
  const suite = TLS12_SUITES.find((s) => s.id === 0xc02f)!;
  const ticketFor = (master: Buffer): Buffer =>
    tickets.seal({
      protocol: 'TLSv1.2',
      suite: suite.id,
      secret: master,
      issuedAt: Date.now(),
      ageAdd: 0,
      lifetimeSeconds: 3600,
      extendedMasterSecret: true,
      serverName: '',
      alpn: '',
    })!;

  it.each([
    ['an empty session id', Buffer.alloc(0)],
    ['a 32-byte session id', crypto.randomBytes(32)],
  ])('with %s: abbreviated handshake, no key operation, the session id echoed', async (_name, sessionId) => {
    const master = crypto.randomBytes(48);
    const before = keys.signatures + keys.masterSecrets;
    const r = await resumeTls12(port, {
      ticket: ticketFor(master),
      master,
      suite,
      sessionId,
      extendedMasterSecret: true,
      appData: Buffer.from('resumed'),
    });
    expect(r.alert).toBeUndefined();
    expect(r.messageTypes).toEqual([HandshakeType.server_hello, HandshakeType.new_session_ticket]);
    expect(r.sessionId).toEqual(sessionId);
    expect(r.finishedVerifies).toBe(true);
    expect(r.echoed.toString()).toBe('resumed');
    expect(keys.signatures + keys.masterSecrets).toBe(before);
  });

  const maybe = havePeer('openssl') ? it : it.skip;
  maybe('openssl s_client -tls1_2 -sess_out, then -sess_in: reused without a key operation', async () => {
    const sess = path.join(pki.dir, 'tls12-sess.pem');
    const base = [
      's_client',
      '-connect',
      `127.0.0.1:${port}`,
      '-servername',
      'localhost',
      '-CAfile',
      pki.caPath,
      '-tls1_2',
      '-cipher',
      'ECDHE-RSA-AES128-GCM-SHA256',
    ];
    const first = await runPeer('openssl', [...base, '-sess_out', sess], { input: 'first\n' });
    expect(first.stdout).toMatch(/New, TLSv1.2/);
    expect(fs.readFileSync(sess, 'utf8')).toContain('BEGIN SSL SESSION PARAMETERS');
    const before = keys.signatures;
    const second = await runPeer('openssl', [...base, '-sess_in', sess], { input: 'second\n' });
    expect(second.stdout).toMatch(/Reused, TLSv1.2/);
    expect(keys.signatures).toBe(before);
  });
});

describe('RFC 8446 §5.1, §6: the alert goes out under keys the peer has', () => {
  it('a ClientHello whose record also holds the start of another message: a plaintext unexpected_message, no ServerHello', async () => {
    const ch = handshakeRecord(clientHelloBody({})).subarray(5);
    const record = plainRecord(22, Buffer.concat([ch, Buffer.from([HandshakeType.finished, 0, 0])]));
    const r = await rawExchange(port, [record], 8000);
    expect(r.closed).toBe(true);
    // Exactly one record: the alert, in the clear. The ServerHello queued before the key change is dropped.
    expect([...r.received]).toEqual([21, 3, 3, 0, 2, 2, A.unexpected_message]);
  });

  it('a ClientHello followed in the same record by a whole second message: the same', async () => {
    const ch = handshakeRecord(clientHelloBody({})).subarray(5);
    const record = plainRecord(22, Buffer.concat([ch, handshakeMessage(HandshakeType.finished, Buffer.alloc(32))]));
    const r = await rawExchange(port, [record], 8000);
    expect(r.closed).toBe(true);
    expect([...r.received]).toEqual([21, 3, 3, 0, 2, 2, A.unexpected_message]);
  });
});

describe('ClientHello size: every legal ClientHello is read (131,396 bytes at most); other messages keep their bound', () => {
  /** The largest legal TLS 1.2 ClientHello: full session id, 32,767 suites, 255 compression methods, 65,535 bytes of extensions. */
  function largestClientHello(): Buffer {
    const suites = new Writer().vec16((w) => {
      w.u16(0xc02f);
      for (let i = 1; i < 32_767; i++) w.u16(0x0a0a + (i % 2) * 0x1010); // GREASE values, ignored
    });
    const compression = Buffer.from([0, ...Array.from({ length: 254 }, (_, i) => i + 1)]);
    const exts = new Writer()
      .u16(10)
      .vec16(Buffer.from([0, 2, 0, 0x17]))
      .u16(13)
      .vec16(Buffer.from([0, 2, 8, 4]))
      .finish();
    const padding = 65_535 - exts.length - 4;
    const body = new Writer()
      .u16(0x0303)
      .bytes(crypto.randomBytes(32))
      .vec8(crypto.randomBytes(32))
      .bytes(suites.finish())
      .vec8(compression)
      .vec16((w) => w.bytes(exts).u16(21).vec16(Buffer.alloc(padding)))
      .finish();
    return handshakeMessage(HandshakeType.client_hello, body);
  }

  it(`a ClientHello of exactly ${MAX_CLIENT_HELLO} bytes gets a ServerHello`, async () => {
    const ch = largestClientHello();
    expect(ch.length - 4).toBe(MAX_CLIENT_HELLO);
    const records: Buffer[] = [];
    for (let off = 0; off < ch.length; off += 16_384) records.push(plainRecord(22, ch.subarray(off, off + 16_384)));
    const r = await rawExchange(port, records, 3000);
    expect(r.plainAlert).toBeUndefined();
    expect(r.received[0]).toBe(22);
    expect(r.received[5]).toBe(HandshakeType.server_hello);
  });

  it('a ClientHello header announcing one byte more is illegal_parameter, before the body is read', async () => {
    const header = Buffer.from([
      1,
      (MAX_CLIENT_HELLO + 1) >> 16,
      ((MAX_CLIENT_HELLO + 1) >> 8) & 0xff,
      (MAX_CLIENT_HELLO + 1) & 0xff,
    ]);
    expect(await plainAlert([plainRecord(22, header)])).toEqual({ alert: A.illegal_parameter, closed: true });
  });

  it('any other message over maxHandshakeMessageSize (64 KiB) is illegal_parameter: a KeyUpdate header announcing 70,000 bytes', async () => {
    const r = await underApplicationKeys((c) =>
      c.send(c.protectedRecord(ContentType.handshake, Buffer.from([HandshakeType.key_update, 0x01, 0x11, 0x70]))),
    );
    expect(r).toMatchObject({ alert: A.illegal_parameter, closed: true });
  });
});
