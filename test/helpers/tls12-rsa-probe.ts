/**
 * A minimal TLS 1.2 RSA-key-exchange client for "no oracle" tests: it sends a ClientKeyExchange with
 * a ciphertext of the test's choosing, then CCS and a Finished computed from the premaster the test
 * claims, and reports what the server did (its alert, or its CCS + Finished). Built on the engine's
 * own codec, PRF and record protection, used here from the client side.
 */
import * as crypto from 'node:crypto';
import * as net from 'node:net';
import { Writer } from '../../edge-proxy/src/tls/codec';
import { ContentType, RecordReader, Tls12Protection, recordHeader } from '../../edge-proxy/src/tls/record-layer';
import { HandshakeJoiner, HandshakeType, handshakeMessage } from '../../edge-proxy/src/tls/handshake-joiner';
import { prf12 } from '../../contract/tls12-prf';
import { clientHelloBody } from './client-hello';

export interface ProbeOutcome {
  /** The alert description the server sent after our Finished, if any. */
  alert?: number;
  /** The alert was in a plaintext record (true before the server's CCS). */
  alertInClear?: boolean;
  /** The server answered with CCS and Finished: the premaster was right. */
  serverFinished: boolean;
}

export interface Probe {
  /** The server certificate's public key, to build ciphertexts with. */
  publicKey: crypto.KeyObject;
  /** Complete the handshake with this ClientKeyExchange ciphertext and this claimed premaster. */
  finish(ciphertext: Buffer, premaster: Buffer): Promise<ProbeOutcome>;
}

function record(type: ContentType, payload: Buffer): Buffer {
  return Buffer.concat([recordHeader(type, payload.length), payload]);
}

/** Connects, sends a ClientHello for TLS_RSA_WITH_AES_128_GCM_SHA256, reads up to ServerHelloDone. */
export function startRsaProbe(port: number, servername = 'localhost'): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const reader = new RecordReader();
    const joiner = new HandshakeJoiner(1 << 20);
    const transcript: Buffer[] = [];
    const clientRandom = crypto.randomBytes(32);
    let serverRandom: Buffer | undefined;
    let publicKey: crypto.KeyObject | undefined;
    let afterHello: ((d: Buffer) => void) | undefined;
    sock.on('error', reject);
    sock.on('data', (d: Buffer) => {
      if (afterHello) return afterHello(d);
      reader.push(d);
      for (let rec = reader.next(); rec; rec = reader.next()) {
        if (rec.type !== ContentType.handshake)
          return reject(new Error(`unexpected record type ${rec.type} before ServerHelloDone`));
        joiner.push(rec.fragment);
        for (let m = joiner.next(); m; m = joiner.next()) {
          transcript.push(m.raw);
          if (m.type === HandshakeType.server_hello) serverRandom = m.body.subarray(2, 34);
          if (m.type === HandshakeType.certificate) {
            const certLen = m.body.readUIntBE(3, 3);
            publicKey = new crypto.X509Certificate(m.body.subarray(6, 6 + certLen)).publicKey;
          }
          if (m.type === HandshakeType.server_hello_done) {
            afterHello = () => undefined;
            resolve({ publicKey: publicKey!, finish: (c, pms) => finish(c, pms) });
          }
        }
      }
    });
    const hello = handshakeMessage(
      HandshakeType.client_hello,
      clientHelloBody({
        versions: null,
        suites: [0x009c],
        shares: null,
        sigalgs: [0x0804, 0x0401],
        serverName: servername,
        random: clientRandom,
      }),
    );
    transcript.push(hello);
    sock.write(record(ContentType.handshake, hello));

    const finish = (ciphertext: Buffer, premaster: Buffer): Promise<ProbeOutcome> =>
      new Promise((done) => {
        const cke = handshakeMessage(HandshakeType.client_key_exchange, new Writer().vec16(ciphertext).finish());
        transcript.push(cke);
        const master = prf12('sha256', premaster, 'master secret', Buffer.concat([clientRandom, serverRandom!]), 48);
        const block = prf12('sha256', master, 'key expansion', Buffer.concat([serverRandom!, clientRandom]), 40);
        const write = new Tls12Protection('aes-128-gcm', block.subarray(0, 16), block.subarray(32, 36), 8);
        const hash = crypto.createHash('sha256').update(Buffer.concat(transcript)).digest();
        const fin = handshakeMessage(HandshakeType.finished, prf12('sha256', master, 'client finished', hash, 12));
        const out = new RecordReader();
        let serverCcs = false;
        const timer = setTimeout(() => conclude({ serverFinished: false }), 5000);
        const conclude = (o: ProbeOutcome): void => {
          clearTimeout(timer);
          sock.destroy();
          done(o);
        };
        afterHello = (d) => {
          out.push(d);
          for (let rec = out.next(); rec; rec = out.next()) {
            if (rec.type === ContentType.alert)
              return conclude({
                alert: rec.fragment.length === 2 ? rec.fragment[1] : undefined,
                alertInClear: !serverCcs,
                serverFinished: false,
              });
            if (rec.type === ContentType.change_cipher_spec) serverCcs = true;
            else if (rec.type === ContentType.handshake && serverCcs) return conclude({ serverFinished: true });
          }
        };
        sock.on('close', () => conclude({ serverFinished: false }));
        sock.write(
          Buffer.concat([
            record(ContentType.handshake, cke),
            record(ContentType.change_cipher_spec, Buffer.from([1])),
            write.seal(ContentType.handshake, fin),
          ]),
        );
      });
  });
}
