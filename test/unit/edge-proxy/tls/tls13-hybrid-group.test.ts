/**
 * X25519MLKEM768 (draft-ietf-tls-ecdhe-mlkem-04): the share layout and the shared secret, malformed
 * shares on the wire, the group-selection policy (a share in hand is never traded for a
 * HelloRetryRequest), HelloRetryRequest to and from the hybrid, TLS 1.2 never choosing it, and a
 * Node 24 (OpenSSL 3.5) client with its default groups.
 */
import * as crypto from 'node:crypto';
import * as tls from 'node:tls';
import { TlsServer } from '../../../../edge-proxy/src/tls/server';
import { CertificateStore, loadCertificate } from '../../../../edge-proxy/src/tls/certificates';
import type { TlsServerConnection } from '../../../../edge-proxy/src/tls/connection';
import {
  generateEphemeral,
  SECP256R1,
  tls12Groups,
  X25519,
  X25519MLKEM768,
  respondToKeyShare,
} from '../../../../edge-proxy/src/tls/groups';
import { AlertDescription, TlsAlert } from '../../../../edge-proxy/src/tls/alerts';
import { makeTestPki, TestPki } from '../../../helpers/certs';
import { InProcessKeys } from '../../../helpers/in-process-keys';
import { clientHelloBody, handshakeRecord, x25519Share } from '../../../helpers/client-hello';
import { hybridClientShare, RawTls13Client, rawExchange } from '../../../helpers/raw-peer';

const HYBRID = 0x11ec;
const hex = (s: string): Buffer => Buffer.from(s, 'hex');

// RFC 7748 §6.1: Alice's X25519 private key and the public key it must give.
const ALICE_PRIVATE = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
const ALICE_PUBLIC = hex('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
// A fixed ML-KEM-768 seed d ‖ z (FIPS 203 §7.1 ML-KEM.KeyGen_internal), arbitrary but constant.
const MLKEM_SEED = Buffer.from(Array.from({ length: 64 }, (_, i) => i));

function fixedClient() {
  const mlkem = crypto.createPrivateKey({ key: MLKEM_SEED, format: 'raw-seed', asymmetricKeyType: 'ml-kem-768' });
  const x25519 = crypto.createPrivateKey({ key: ALICE_PRIVATE, format: 'raw-private', asymmetricKeyType: 'x25519' });
  return { mlkem, ...hybridClientShare(mlkem, x25519) };
}

describe('X25519MLKEM768 key share (deterministic client, fixed seeds)', () => {
  it('the client share is the encapsulation key, then the X25519 share (draft §4.1)', () => {
    const a = fixedClient();
    const b = fixedClient();
    expect(a.share.length).toBe(1216);
    // Same seed, same encapsulation key: key generation is deterministic (FIPS 203 §7.1).
    expect(a.share.equals(b.share)).toBe(true);
    // The last 32 bytes are the RFC 7748 §6.1 public key of the fixed X25519 scalar.
    expect(a.share.subarray(1184).equals(ALICE_PUBLIC)).toBe(true);
  });

  it('the server share is ciphertext ‖ X25519 share, the secret ML-KEM ‖ X25519, and both sides agree (draft §4.2, §4.3)', () => {
    const client = fixedClient();
    const server = respondToKeyShare(X25519MLKEM768, client.share);
    expect(server.publicShare.length).toBe(1088 + 32);
    expect(server.sharedSecret.length).toBe(64);
    // The first 32 bytes are what decapsulating the first 1088 bytes of the server share gives...
    const kem = crypto.decapsulate(client.mlkem, server.publicShare.subarray(0, 1088));
    expect(server.sharedSecret.subarray(0, 32).equals(kem)).toBe(true);
    // ...and the whole secret is what the client derives on its own.
    expect(client.agree(server.publicShare).equals(server.sharedSecret)).toBe(true);
    // Fresh randomness per handshake: a second answer to the same share differs.
    expect(respondToKeyShare(X25519MLKEM768, client.share).sharedSecret.equals(server.sharedSecret)).toBe(false);
  });

  const validKey = fixedClient().share.subarray(0, 1184);
  const notReduced = Buffer.from(validKey);
  notReduced[0] = 0xff;
  notReduced[1] = 0xff; // first coefficient 4095 ≥ q = 3329: fails the FIPS 203 §7.2 modulus check
  const table: [string, Buffer][] = [
    ['one byte short', fixedClient().share.subarray(0, 1215)],
    ['one byte long', Buffer.concat([fixedClient().share, Buffer.from([0])])],
    ['only an X25519 share', x25519Share()],
    ['an encapsulation key with a coefficient not reduced mod q', Buffer.concat([notReduced, ALICE_PUBLIC])],
    ['an all-zero X25519 part (all-zero shared secret)', Buffer.concat([validKey, Buffer.alloc(32)])],
    ['a low-order X25519 point (1)', Buffer.concat([validKey, Buffer.from([1, ...Buffer.alloc(31)])])],
  ];
  it.each(table)('respondToKeyShare refuses %s with illegal_parameter', (_name, share) => {
    let err: unknown;
    try {
      respondToKeyShare(X25519MLKEM768, share);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TlsAlert);
    expect((err as TlsAlert).description).toBe(AlertDescription.illegal_parameter);
  });

  it('TLS 1.2 ECDHE cannot use it (no ServerECDHParams form)', () => {
    expect(tls12Groups([X25519MLKEM768, X25519, SECP256R1])).toEqual([X25519, SECP256R1]);
    expect(() => generateEphemeral(X25519MLKEM768)).toThrow(/KEM hybrid/);
  });
});

describe('X25519MLKEM768 on the wire', () => {
  let pki: TestPki;
  const servers: TlsServer[] = [];
  let port: number; // default groups: X25519MLKEM768 first
  let classicPort: number; // groups: x25519, secp256r1 only

  beforeAll(async () => {
    pki = makeTestPki();
    const rsa = pki.leaf('rsa', 'rsa2048', ['localhost']);
    const start = async (groups?: (typeof X25519)[]): Promise<number> => {
      const keys = new InProcessKeys(new Map([['rsa-key', rsa.key]]));
      const server = new TlsServer({
        certificates: new CertificateStore([loadCertificate(rsa.chainPem, 'rsa-key')]),
        keyOperations: keys,
        handshakeTimeoutMs: 3000,
        groups,
      });
      server.on('secureConnection', (c: TlsServerConnection) => {
        c.write(
          `${c.getProtocol()} ${c.handshakeInfo?.group} ${c.handshakeInfo?.keyExchange} hrr=${c.handshakeInfo?.helloRetry}\n`,
        );
        c.pipe(c);
      });
      servers.push(server);
      return (await server.listen(0)).port;
    };
    port = await start();
    classicPort = await start([X25519, SECP256R1]);
  });

  afterAll(async () => {
    for (const s of servers) await s.close(true);
    pki.cleanup();
  });

  const malformed: [string, Buffer][] = [
    ['a share one byte short', fixedClient().share.subarray(0, 1215)],
    ['a 32-byte share', x25519Share()],
    ['an encapsulation key failing the ML-KEM modulus check', Buffer.concat([Buffer.alloc(1184, 0xff), ALICE_PUBLIC])],
    ['an all-zero X25519 part', Buffer.concat([fixedClient().share.subarray(0, 1184), Buffer.alloc(32)])],
  ];
  it.each(malformed)('a ClientHello with %s gets illegal_parameter', async (_name, share) => {
    const r = await rawExchange(port, [
      handshakeRecord(clientHelloBody({ groups: [HYBRID, 0x1d], shares: [{ group: HYBRID, share }] })),
    ]);
    expect(r.plainAlert).toBe(AlertDescription.illegal_parameter);
    expect(r.closed).toBe(true);
  });

  async function handshake(serverPort: number, groups: number[], shareGroup: number | null) {
    const c = await RawTls13Client.connect(serverPort);
    try {
      const flight = await c.handshake({ hello: { groups }, shareGroup });
      c.sendFinished();
      c.useApplicationKeys();
      const summary = (await c.readAppData(1)).toString();
      return {
        helloRetry: flight.helloRetry,
        group: flight.serverHelloExtensions.get(51)!.readUInt16BE(0),
        shareLength: flight.serverHelloExtensions.get(51)!.readUInt16BE(2),
        summary,
      };
    } finally {
      c.destroy();
    }
  }

  it('a client with a hybrid share gets the hybrid in one round trip', async () => {
    const r = await handshake(port, [HYBRID, 0x1d], HYBRID);
    expect(r).toMatchObject({ helloRetry: false, group: HYBRID, shareLength: 1120 });
  });

  it.each([
    ['an X25519 share', 0x1d, [HYBRID, 0x1d], 0x1d],
    ['an X25519 share, X25519 listed first', 0x1d, [0x1d, HYBRID], 0x1d],
    ['a P-256 share', 0x17, [HYBRID, 0x1d, 0x17], 0x17],
  ])(
    'a client that lists the hybrid but sends only %s is never forced into a HelloRetryRequest',
    async (_n, share, groups, expected) => {
      const r = await handshake(port, groups, share);
      expect(r).toMatchObject({ helloRetry: false, group: expected });
    },
  );

  it('HelloRetryRequest to the hybrid when the client sent no share at all', async () => {
    const r = await handshake(port, [0x1d, HYBRID], null);
    expect(r).toMatchObject({ helloRetry: true, group: HYBRID, shareLength: 1120 });
  });

  it('HelloRetryRequest from the hybrid to X25519 on a server configured without it', async () => {
    const r = await handshake(classicPort, [HYBRID, 0x1d], HYBRID);
    expect(r).toMatchObject({ helloRetry: true, group: 0x1d, shareLength: 32 });
  });

  function nodeClient(opts: tls.ConnectionOptions): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, ca: pki.caPem, servername: 'localhost', ...opts });
      let out = '';
      socket.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) {
          socket.end();
          resolve(out.split('\n')[0]);
        }
      });
      socket.on('error', reject);
    });
  }

  it('a Node 24 (OpenSSL 3.5) client with its default groups negotiates X25519MLKEM768', async () => {
    expect(await nodeClient({})).toBe('TLSv1.3 X25519MLKEM768 ECDHE-MLKEM (X25519MLKEM768) hrr=false');
  });

  it('TLS 1.2 never picks the hybrid: a client listing it first gets X25519', async () => {
    expect(await nodeClient({ maxVersion: 'TLSv1.2', ecdhCurve: 'X25519MLKEM768:X25519' })).toMatch(
      /^TLSv1\.2 x25519 /,
    );
  });
});
