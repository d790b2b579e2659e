/**
 * Every alert a TLS server is required to send (RFC 8446 §6.2, RFC 5246 §7.2, RFC 7507, RFC 7919,
 * RFC 8449), each provoked by a crafted input. Each test asserts the exact alert on the wire — in
 * the clear before the server has keys, decrypted with the scripted client's keys after — and that
 * the server then closes the connection (no hang). docs/tls-engine.md has the table of cases.
 */
import * as crypto from 'node:crypto';
import { pemCertificatesToDer } from '../../../../contract/x509';
import { CertificateStore, loadCertificate } from '../../../../edge-proxy/src/tls/certificates';
import { loadClientAuthPolicy } from '../../../../edge-proxy/src/tls/client-auth';
import { TicketProtector } from '../../../../edge-proxy/src/tls/tickets';
import { AlertDescription } from '../../../../edge-proxy/src/tls/alerts';
import { ContentType, MAX_PLAINTEXT } from '../../../../edge-proxy/src/tls/record-layer';
import { handshakeMessage, HandshakeType } from '../../../../edge-proxy/src/tls/handshake-joiner';
import { Writer } from '../../../../edge-proxy/src/tls/codec';
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
import { plainAlert as plainAlertFrom, RawTls13Client } from '../../../helpers/raw-peer';

const A = AlertDescription;
let fixture: TlsServerFixture;
let pki: TestPki;
let port: number;

beforeAll(async () => {
  fixture = await startTlsServerFixture(
    (testPki) => {
      const rsa = testPki.leaf('rsa', 'rsa2048', ['localhost']);
      const mtls = testPki.leaf('mtls', 'p256', ['mtls.test']);
      const keys = new InProcessKeys(
        new Map([
          ['rsa-key', rsa.key],
          ['mtls-key', mtls.key],
        ]),
      );
      const tickets = new TicketProtector();
      tickets.setKeys({
        epochSeconds: 3600,
        current: { epoch: 100, key: crypto.randomBytes(32) },
        previous: { epoch: 99, key: crypto.randomBytes(32) },
      });
      return {
        certificates: new CertificateStore([
          loadCertificate(rsa.chainPem, 'rsa-key'),
          {
            ...loadCertificate(mtls.chainPem, 'mtls-key'),
            clientAuth: loadClientAuthPolicy('optional', testPki.caPem),
          },
        ]),
        keyOperations: keys,
        tickets,
        handshakeTimeoutMs: 5000,
        maxSkippedEarlyData: 4096,
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

/** Completes the server's flight with the scripted client, then lets `act` break something. */
async function afterServerFinished(
  act: (c: RawTls13Client) => void,
  o: Parameters<RawTls13Client['handshake']>[0] = {},
): Promise<{ alert?: number; closed: boolean }> {
  const c = await RawTls13Client.connect(port);
  await c.handshake(o);
  act(c);
  return c.untilClosed();
}

/** Completes the whole handshake (both Finished), then lets `act` send something. */
async function established(act: (c: RawTls13Client) => void): Promise<{ alert?: number; closed: boolean }> {
  return afterServerFinished((c) => {
    c.sendFinished();
    act(c);
  });
}

const ffdhe2048 = 0x0100;
const TLS_DHE_RSA_WITH_AES_128_GCM_SHA256 = 0x009e;
const TLS_ECDHE_RSA_WITH_RC4_128_SHA = 0xc011;
const TLS_RSA_WITH_RC4_128_SHA = 0x0005;

describe('decode_error (RFC 8446 §6.2: a field out of range or a wrong length)', () => {
  it('a truncated cipher_suites vector', async () => {
    const body = Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(32), Buffer.from([0, 0, 200])]);
    expect(await plainAlert([handshakeRecord(body)])).toEqual({ alert: A.decode_error, closed: true });
  });
  it('a legacy_session_id longer than 32 bytes (§4.1.2)', async () => {
    expect(await plainAlert(hello({ sessionId: Buffer.alloc(33, 1) }))).toEqual({
      alert: A.decode_error,
      closed: true,
    });
  });
  it('a record_size_limit extension of the wrong length', async () => {
    expect(await plainAlert(hello({ extra: [{ type: 28, data: Buffer.from([0x40]) }] }))).toEqual({
      alert: A.decode_error,
      closed: true,
    });
  });
  it('a client Finished of the wrong length', async () => {
    const r = await afterServerFinished((c) =>
      c.send(c.protectedRecord(ContentType.handshake, handshakeMessage(HandshakeType.finished, Buffer.alloc(12)))),
    );
    expect(r).toEqual({ alert: A.decode_error, closed: true });
  });
  it('a KeyUpdate with a trailing byte', async () => {
    const r = await established((c) =>
      c.send(c.protectedRecord(ContentType.handshake, handshakeMessage(HandshakeType.key_update, Buffer.from([0, 0])))),
    );
    expect(r).toEqual({ alert: A.decode_error, closed: true });
  });
});

describe('illegal_parameter (§4.1.2, §4.2, §4.2.11, RFC 8449)', () => {
  it('a duplicated extension (§4.2)', async () => {
    const dup = { type: 0xff02, data: Buffer.alloc(0) };
    expect(await plainAlert(hello({ extra: [dup, dup] }))).toEqual({ alert: A.illegal_parameter, closed: true });
  });
  it('pre_shared_key not the last extension (§4.2.11)', async () => {
    const psk = new Writer()
      .vec16((w) => w.vec16(Buffer.alloc(16, 1)).u32(0))
      .vec16((w) => w.vec8(Buffer.alloc(32)))
      .finish();
    const modes = { type: 45, data: Buffer.from([1, 1]) };
    expect(await plainAlert(hello({ extra: [{ type: 41, data: psk }, modes] }))).toEqual({
      alert: A.illegal_parameter,
      closed: true,
    });
  });
  it('legacy_compression_methods other than exactly [null] in TLS 1.3 (§4.1.2)', async () => {
    expect(await plainAlert(hello({ compression: [1, 0] }))).toEqual({ alert: A.illegal_parameter, closed: true });
  });
  it('an extension that belongs to another message: oid_filters in a ClientHello (§4.2)', async () => {
    expect(await plainAlert(hello({ extra: [{ type: 48, data: Buffer.from([0, 0]) }] }))).toEqual({
      alert: A.illegal_parameter,
      closed: true,
    });
  });
  it('a record_size_limit below 64 (RFC 8449 §4)', async () => {
    expect(await plainAlert(hello({ extra: [{ type: 28, data: Buffer.from([0, 63]) }] }))).toEqual({
      alert: A.illegal_parameter,
      closed: true,
    });
  });
  it('a key share for a group the client did not list (§4.2.8)', async () => {
    expect(await plainAlert(hello({ groups: [0x17], shares: [{ group: 0x1d, share: x25519Share() }] }))).toEqual({
      alert: A.illegal_parameter,
      closed: true,
    });
  });
  it('a second ClientHello that changes its random (§4.1.2)', async () => {
    const c = await RawTls13Client.connect(port);
    await expect(c.handshake({ shareGroup: null, retryOverrides: { random: crypto.randomBytes(32) } })).rejects.toThrow(
      /alert 47/,
    );
    expect(c.alerts).toEqual([A.illegal_parameter]);
    expect((await c.untilClosed()).closed).toBe(true);
  });
  it('a second ClientHello that still offers early_data (§4.2.10)', async () => {
    const c = await RawTls13Client.connect(port);
    await expect(
      c.handshake({ shareGroup: null, hello: { extra: [{ type: 42, data: Buffer.alloc(0) }] } }),
    ).rejects.toThrow(/alert 47/);
    expect((await c.untilClosed()).closed).toBe(true);
  });
  it('a KeyUpdate with request_update out of range (§4.6.3)', async () => {
    const r = await established((c) =>
      c.send(c.protectedRecord(ContentType.handshake, handshakeMessage(HandshakeType.key_update, Buffer.from([2])))),
    );
    expect(r).toEqual({ alert: A.illegal_parameter, closed: true });
  });
});

describe('unexpected_message (§5, §5.4, §4.6.3, §4.2.10)', () => {
  it('application data before the handshake', async () => {
    expect(await plainAlert([plainRecord(23, Buffer.from('hello'))])).toEqual({
      alert: A.unexpected_message,
      closed: true,
    });
  });
  it('a handshake message other than ClientHello first', async () => {
    expect(await plainAlert([handshakeRecord(Buffer.alloc(32), 20)])).toEqual({
      alert: A.unexpected_message,
      closed: true,
    });
  });
  it('a protected record whose plaintext is all zeros: no content type (§5.4)', async () => {
    const r = await afterServerFinished((c) => c.send(c.sealRaw(Buffer.alloc(20))));
    expect(r).toEqual({ alert: A.unexpected_message, closed: true });
  });
  it('a KeyUpdate before the client Finished (§4.6.3)', async () => {
    const r = await afterServerFinished((c) =>
      c.send(c.protectedRecord(ContentType.handshake, handshakeMessage(HandshakeType.key_update, Buffer.from([0])))),
    );
    expect(r).toEqual({ alert: A.unexpected_message, closed: true });
  });
  it('more early data than the server skips after declining 0-RTT (§4.2.10, §4.6.1)', async () => {
    const early = Array.from({ length: 3 }, () => plainRecord(23, crypto.randomBytes(2000)));
    const c = await RawTls13Client.connect(port);
    await c.handshake({ hello: { extra: [{ type: 42, data: Buffer.alloc(0) }] }, afterClientHello: early });
    c.sendFinished();
    expect(await c.untilClosed()).toEqual({ alert: A.unexpected_message, closed: true });
  });
});

describe('bad_record_mac (§5.2)', () => {
  it('a protected record whose tag does not verify', async () => {
    const r = await afterServerFinished((c) => {
      const rec = c.protectedRecord(ContentType.handshake, c.finishedMessage());
      rec[rec.length - 1] ^= 0x80;
      c.send(rec);
    });
    expect(r).toEqual({ alert: A.bad_record_mac, closed: true });
  });
});

describe('record_overflow (§5.1, §5.2, §5.4)', () => {
  it('a plaintext record longer than 2^14', async () => {
    const rec = plainRecord(22, Buffer.alloc(MAX_PLAINTEXT + 1));
    expect(await plainAlert([rec])).toEqual({ alert: A.record_overflow, closed: true });
  });
  it('a protected record longer than 2^14 + 256', async () => {
    const r = await afterServerFinished((c) =>
      c.send(Buffer.from([23, 3, 3, 0x41, 0x01]), Buffer.alloc(MAX_PLAINTEXT + 257)),
    );
    expect(r).toEqual({ alert: A.record_overflow, closed: true });
  });
  it('a padded inner plaintext longer than 2^14 + 1 that authenticates (§5.4)', async () => {
    const r = await afterServerFinished((c) =>
      c.send(c.protectedRecord(ContentType.handshake, c.finishedMessage(), MAX_PLAINTEXT)),
    );
    expect(r).toEqual({ alert: A.record_overflow, closed: true });
  });
});

describe('handshake_failure (§4.1.1: nothing in common)', () => {
  it('no common TLS 1.3 cipher suite', async () => {
    expect(await plainAlert(hello({ suites: [0x1304] }))).toEqual({ alert: A.handshake_failure, closed: true });
  });
  it('only SHA-1 signature schemes', async () => {
    expect(await plainAlert(hello({ sigalgs: [0x0201, 0x0203] }))).toEqual({
      alert: A.handshake_failure,
      closed: true,
    });
  });
  it('no common key-exchange group', async () => {
    expect(await plainAlert(hello({ groups: [0x1e], shares: [] }))).toEqual({
      alert: A.handshake_failure,
      closed: true,
    });
  });
  it('TLS 1.2 with only RSA key exchange against a kms-custody key (a capability, not a security level)', async () => {
    expect(await plainAlert(hello({ versions: [0x0303], suites: [0x009c] }))).toEqual({
      alert: A.handshake_failure,
      closed: true,
    });
  });
});

describe('protocol_version (§4.2.1, Appendix D)', () => {
  it('a ClientHello for TLS 1.1 at most, without supported_versions', async () => {
    expect(await plainAlert(hello({ legacyVersion: 0x0302, versions: null }))).toEqual({
      alert: A.protocol_version,
      closed: true,
    });
  });
  it('supported_versions offering only TLS 1.0 and 1.1', async () => {
    expect(await plainAlert(hello({ versions: [0x0302, 0x0301] }))).toEqual({
      alert: A.protocol_version,
      closed: true,
    });
  });
});

describe('missing_extension (§9.2, §4.2.9)', () => {
  it.each([
    ['key_share', { shares: null }],
    ['signature_algorithms', { sigalgs: null }],
  ] as [string, HelloOptions][])('a TLS 1.3 ClientHello without %s', async (_n, o) => {
    expect(await plainAlert(hello(o))).toEqual({ alert: A.missing_extension, closed: true });
  });
  it('a TLS 1.3 ClientHello without supported_groups', async () => {
    const body = clientHelloBody({});
    // Rebuild without extension 10 (supported_groups): drop it from the parsed block.
    const stripped = withoutExtension(body, 10);
    expect(await plainAlert([handshakeRecord(stripped)])).toEqual({ alert: A.missing_extension, closed: true });
  });
  it('pre_shared_key without psk_key_exchange_modes (§4.2.9)', async () => {
    const psk = new Writer()
      .vec16((w) => w.vec16(Buffer.alloc(16, 1)).u32(0))
      .vec16((w) => w.vec8(Buffer.alloc(32)))
      .finish();
    expect(await plainAlert(hello({ extra: [{ type: 41, data: psk }] }))).toEqual({
      alert: A.missing_extension,
      closed: true,
    });
  });
});

describe('unsupported_extension (§4.4.2, §6.2: an extension the server did not request)', () => {
  it('a client CertificateEntry carrying an extension our CertificateRequest did not ask for', async () => {
    const r = await afterServerFinished(
      (c) => {
        const entryExt = new Writer().vec16((w) => w.u16(5).vec16(Buffer.alloc(0))).finish();
        const body = new Writer()
          .vec8(Buffer.alloc(0))
          .vec24((w) => w.vec24(pemCertificatesToDer(pki.caPem)[0]).bytes(entryExt))
          .finish();
        c.send(c.protectedRecord(ContentType.handshake, handshakeMessage(HandshakeType.certificate, body)));
      },
      { hello: { serverName: 'mtls.test' } },
    );
    expect(r).toEqual({ alert: A.unsupported_extension, closed: true });
  });
});

describe('decrypt_error (§4.4.4)', () => {
  it('a client Finished that does not verify', async () => {
    const r = await afterServerFinished((c) =>
      c.send(c.protectedRecord(ContentType.handshake, c.finishedMessage(false))),
    );
    expect(r).toEqual({ alert: A.decrypt_error, closed: true });
  });
});

describe('insufficient_security (RFC 8446 §6.2: the server requires more than the client supports)', () => {
  it('TLS 1.2 client that can only do finite-field DH (RFC 7919 §4: MUST)', async () => {
    const r = await plainAlert(
      hello({ versions: [0x0303], suites: [TLS_DHE_RSA_WITH_AES_128_GCM_SHA256], groups: [ffdhe2048], shares: null }),
    );
    expect(r).toEqual({ alert: A.insufficient_security, closed: true });
  });
  it('TLS 1.2 client that offers only RC4 suites (RFC 7465 §2)', async () => {
    const r = await plainAlert(
      hello({
        versions: [0x0303],
        suites: [TLS_ECDHE_RSA_WITH_RC4_128_SHA, TLS_RSA_WITH_RC4_128_SHA, 0x00ff],
        shares: null,
      }),
    );
    expect(r).toEqual({ alert: A.insufficient_security, closed: true });
  });
});

describe('inappropriate_fallback (RFC 7507)', () => {
  it('TLS_FALLBACK_SCSV from a client whose best version is below ours', async () => {
    expect(await plainAlert(hello({ versions: [0x0303], suites: [0xc02f, 0x5600] }))).toEqual({
      alert: A.inappropriate_fallback,
      closed: true,
    });
  });
  it('is not sent when the client offers our best version', async () => {
    const c = await RawTls13Client.connect(port);
    const flight = await c.handshake({ hello: { suites: [0x1301, 0x5600] } });
    expect(flight.messages.at(-1)?.type).toBe(HandshakeType.finished);
    c.destroy();
  });
});

/** The ClientHello body with one extension removed (the helper always writes supported_groups). */
function withoutExtension(body: Buffer, type: number): Buffer {
  let off = 2 + 32;
  off += 1 + body[off];
  off += 2 + body.readUInt16BE(off);
  off += 1 + body[off];
  const extStart = off + 2;
  const kept: Buffer[] = [];
  for (let p = extStart; p < body.length;) {
    const t = body.readUInt16BE(p);
    const len = body.readUInt16BE(p + 2);
    if (t !== type) kept.push(body.subarray(p, p + 4 + len));
    p += 4 + len;
  }
  const exts = Buffer.concat(kept);
  const lenBuf = Buffer.alloc(2);
  lenBuf.writeUInt16BE(exts.length);
  return Buffer.concat([body.subarray(0, off), lenBuf, exts]);
}
