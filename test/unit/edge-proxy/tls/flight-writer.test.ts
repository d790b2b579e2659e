/**
 * The flight writer's rule (RFC 8446 §5.1, §6): queued messages are sealed only when sent, so an
 * abandoned flight uses up no sequence numbers, and an alert goes out under the protection the peer
 * reads our next record with. Checked by opening what it produces with a peer's view of the keys.
 */
import * as crypto from 'node:crypto';
import { FlightWriter } from '../../../../edge-proxy/src/tls/flight-writer';
import { ContentType, NullProtection, RawRecord, Tls13Protection } from '../../../../edge-proxy/src/tls/record-layer';
import { encodeAlert, AlertDescription } from '../../../../edge-proxy/src/tls/alerts';

const key = crypto.randomBytes(16);
const iv = crypto.randomBytes(12);
/** Our side and the peer's side of one direction's keys. */
const pair = (): { ours: Tls13Protection; peers: Tls13Protection } => ({
  ours: new Tls13Protection('aes-128-gcm', key, iv),
  peers: new Tls13Protection('aes-128-gcm', key, iv),
});
const asRecord = (wire: Buffer): RawRecord => ({
  type: wire[0],
  header: wire.subarray(0, 5),
  fragment: wire.subarray(5),
});
const msg = (n: number): Buffer => Buffer.alloc(n, n);

describe('FlightWriter', () => {
  it('a flight queued across a key change and never sent: the alert goes out in the clear', () => {
    const w = new FlightWriter();
    w.queueHandshake(msg(40)); // ServerHello
    w.setProtection(pair().ours); // handshake keys
    w.queueHandshake(msg(10)); // EncryptedExtensions
    w.discard();
    expect(w.alertProtection).toBeInstanceOf(NullProtection);
    expect([...w.alertProtection.seal(ContentType.alert, encodeAlert(AlertDescription.unexpected_message))]).toEqual([
      21, 3, 3, 0, 2, 2, 10,
    ]);
  });

  it('messages discarded after a send are not sealed: the alert takes the next sequence number the peer expects', () => {
    const { ours, peers } = pair();
    const w = new FlightWriter();
    w.setProtection(ours);
    w.queueHandshake(msg(30));
    const sent = w.seal();
    w.queueHandshake(msg(20)); // e.g. a CertificateVerify, abandoned
    w.queueHandshake(msg(36)); // and a Finished
    w.discard();
    const alert = w.alertProtection.seal(ContentType.alert, encodeAlert(AlertDescription.internal_error));
    expect(peers.open(asRecord(sent[0])).plaintext).toEqual(msg(30));
    expect(peers.open(asRecord(alert))).toEqual({ type: ContentType.alert, plaintext: Buffer.from([2, 80]) });
  });

  it('after a flight that ends with a key change is sent, the alert uses the new keys', () => {
    const hs = pair();
    const app = pair();
    const w = new FlightWriter();
    w.setProtection(hs.ours);
    w.queueHandshake(msg(36)); // Finished
    w.setProtection(app.ours);
    const sent = w.seal();
    expect(hs.peers.open(asRecord(sent[0])).plaintext).toEqual(msg(36));
    expect(w.alertProtection).toBe(app.ours);
    expect(app.peers.open(asRecord(w.alertProtection.seal(ContentType.alert, Buffer.from([2, 10])))).plaintext).toEqual(
      Buffer.from([2, 10]),
    );
  });

  it('coalesces messages under one protection and keeps each message under the protection it was queued with', () => {
    const hs = pair();
    const w = new FlightWriter();
    w.queueHandshake(msg(5));
    w.queueHandshake(msg(6));
    w.queueChangeCipherSpec();
    w.setProtection(hs.ours);
    w.queueHandshake(msg(7));
    w.queueHandshake(msg(8));
    const records = w.seal();
    expect(records.map((r) => r[0])).toEqual([22, 20, 23]);
    expect(records[0].subarray(5)).toEqual(Buffer.concat([msg(5), msg(6)]));
    expect(hs.peers.open(asRecord(records[2])).plaintext).toEqual(Buffer.concat([msg(7), msg(8)]));
  });

  it('splits protected handshake data at the peer record_size_limit', () => {
    const hs = pair();
    const w = new FlightWriter();
    w.maxProtectedPlaintext = 100;
    w.setProtection(hs.ours);
    w.queueHandshake(msg(250));
    expect(w.seal().map((r) => hs.peers.open(asRecord(r)).plaintext.length)).toEqual([100, 100, 50]);
  });
});
