/**
 * RFC 8448 §3 "Simple 1-RTT Handshake": the key schedule, traffic keys, Finished values and the
 * record protection of our engine reproduce the published trace byte for byte.
 */
import * as crypto from 'node:crypto';
import {
  finishedVerifyData,
  KeySchedule,
  trafficKeys,
  hkdfExpandLabel,
} from '../../../../../edge-proxy/src/tls/tls13/key-schedule';
import { ContentType, RecordReader, Tls13Protection } from '../../../../../edge-proxy/src/tls/record-layer';
import { Transcript } from '../../../../../edge-proxy/src/tls/transcript';
import { parseClientHello } from '../../../../../edge-proxy/src/tls/msgs/client-hello';
import { ExtensionType, parseClientKeyShares } from '../../../../../edge-proxy/src/tls/extensions';

const h = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// Inputs and published values from RFC 8448 §3.
const clientPublic = h('99381de560e4bd43d23d8e435a7dbafeb3c06e51c13cae4d5413691e529aaf2c');
const serverPrivate = h('b1580eeadf6dd589b8ef4f2d5652578cc810e9980191ec8d058308cea216a21e');
const clientHello = h(
  '010000c00303cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7000006130113031302010000910000000b0009000006736572766572ff01000100000a00140012001d0017001800190100010101020103010400230000003300260024001d002099381de560e4bd43d23d8e435a7dbafeb3c06e51c13cae4d5413691e529aaf2c002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202002d00020101001c00024001',
);
const serverHello = h(
  '020000560303a6af06a4121860dc5e6e60249cd34c95930c8ac5cb1434dac155772ed3e2692800130100002e00330024001d0020c9828876112095fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f002b00020304',
);
const encryptedExtensions = h('080000240022000a00140012001d00170018001901000101010201030104001c0002400100000000');
const certificate = h(
  '0b0001b9000001b50001b0308201ac30820115a003020102020102300d06092a864886f70d01010b0500300e310c300a06035504031303727361301e170d3136303733303031323335395a170d3236303733303031323335395a300e310c300a0603550403130372736130819f300d06092a864886f70d010101050003818d0030818902818100b4bb498f8279303d980836399b36c6988c0c68de55e1bdb826d3901a2461eafd2de49a91d015abbc9a95137ace6c1af19eaa6af98c7ced43120998e187a80ee0ccb0524b1b018c3e0b63264d449a6d38e22a5fda430846748030530ef0461c8ca9d9efbfae8ea6d1d03e2bd193eff0ab9a8002c47428a6d35a8d88d79f7f1e3f0203010001a31a301830090603551d1304023000300b0603551d0f0404030205a0300d06092a864886f70d01010b05000381810085aad2a0e5b9276b908c65f73a7267170618a54c5f8a7b337d2df7a594365417f2eae8f8a58c8f8172f9319cf36b7fd6c55b80f21a03015156726096fd335e5e67f2dbf102702e608ccae6bec1fc63a42a99be5c3eb7107c3c54e9b9eb2bd5203b1c3b84e0a8b2f759409ba3eac9d91d402dcc0cc8f8961229ac9187b42b4de10000',
);
const certificateVerify = h(
  '0f000084080400805a747c5d88fa9bd2e55ab085a61015b7211f824cd484145ab3ff52f1fda8477b0b7abc90db78e2d33a5c141a078653fa6bef780c5ea248eeaaa785c4f394cab6d30bbe8d4859ee511f602957b15411ac027671459e46445c9ea58c181e818e95b8c3fb0bf3278409d3be152a3da5043e063dda65cdf5aea20d53dfacd42f74f3',
);
const serverFinished = h('140000209b9b141d906337fbd2cbdce71df4deda4ab42c309572cb7fffee5454b78f0718');
const clientFinished = h('14000020a8ec436d677634ae525ac1fcebe11a039ec17694fac6e98527b642f2edd5ce61');
const serverFlightRecordPrefix = h(
  '17030302a2d1ff334a56f5bff6594a07cc87b580233f500f45e489e7f33af35edf7869fcf40aa40aa2b8ea73f848a7ca07612ef9f945cb960b4068905123ea78b111b429ba9191cd05d2a389280f526134aadc7fc78c4b729df828b5ecf7b13bd9aefb0e57f271585b8ea9bb355c7c79020716cfb9b1183ef3ab20e37d57a6b9d7477609aee6e122a4cf51427325250c7d0e509289444c9b3a648f1d71035d2ed65b0e3cdd0cbae8bf2d0b227812cbb360987255cc744110c453baa4fcd610928d809810e4b7ed1a8fd991f06aa6248204797e36a6a73b70a2559c09ead686945ba246ab66e5edd8044b4c6de3fcf2a89441ac66272fd8fb330ef8190579b3684596c960bd596eea520a56a8d650f563aad27409960dca63d3e688611ea5e22f4415cf9538d51a200c27034272968a264ed6540c84838d89f72c24461aad6d26f59ecaba9acbbb317b66d902f4f292a36ac1b639c637ce343117b659622245317b49eeda0c6258f100d7d961ffb138647e92ea330faeea6dfa31c7a84dc3bd7e1b7a6c7178af36879018e3f252107f243d243dc7339d5684c8b0378bf30244da8c87c843f5e56eb4c5e8280a2b48052cf93b16499a66db7cca71e4599426f7d461e66f99882bd89fc50800becca62d6c74116dbd2972fda1fa80f85df881edbe5a37668936b335583b599186dc5c6918a396fa48a181d6b6fa4f9d62d513afbb992f2b992f67f8afe67f76913fa388cb5630c8ca01e0c65d11c66a1e2ac4c85977b7c7a6999bbf10dc35ae69f5515614636c0b9b68c19ed2e31c0b3b66763038ebba42f3b38edc0399f3a9f23faa63978c317fc9fa66a73f60f0504de93b5b845e275592c12335ee340bbc4fddd502784016e4b3be7ef04dda49f4b440a30cb5d2af939828fd4ae3794e44f94df5a631ede42c1719bfdabf0253fe5175be898e750edc53370d2b',
);
const clientFinishedRecord = h(
  '170303003575ec4dc238cce60b298044a71e219c56cc77b0517fe9b93c7a4bfc44d87f38f80338ac98fc46deb384bd1caeacab6867d726c40546',
);
const appPayload = h(
  '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031',
);
const clientDataRecord = h(
  '1703030043a23f7054b62c94d0affafe8228ba55cbefacea42f914aa66bcab3f2b9819a8a5b46b395bd54a9a20441e2b62974e1f5a6292a2977014bd1e3deae63aeebb21694915e4',
);
const serverDataRecord = h(
  '17030300432e937e11ef4ac740e538ad36005fc4a46932fc3225d05f82aa1b36e30efaf97d90e6dffc602dcb501a59a8fcc49c4bf2e5f0a21c0047c2abf332540dd032e167c2955d',
);
const serverAlertRecord = h('1703030013b58fd67166ebf599d24720cfbe7efa7a8864a9');
const clientAlertRecord = h('1703030013c9872760655666b74d7ff1153efd6db6d0b0e3');

const X25519_PKCS8_PREFIX = h('302e020100300506032b656e04220420');
const X25519_SPKI_PREFIX = h('302a300506032b656e032100');

function x25519(priv: Buffer, pub: Buffer): Buffer {
  return crypto.diffieHellman({
    privateKey: crypto.createPrivateKey({
      key: Buffer.concat([X25519_PKCS8_PREFIX, priv]),
      format: 'der',
      type: 'pkcs8',
    }),
    publicKey: crypto.createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, pub]), format: 'der', type: 'spki' }),
  });
}

function recordOf(bytes: Buffer) {
  const r = new RecordReader();
  r.push(bytes);
  const rec = r.next();
  if (!rec) throw new Error('incomplete record');
  return rec;
}

describe('RFC 8448 simple 1-RTT trace', () => {
  const shared = x25519(serverPrivate, clientPublic);
  const schedule = new KeySchedule('sha256');
  const t = new Transcript('sha256');
  t.update(clientHello);
  t.update(serverHello);
  const helloHash = t.digest();
  const hs = schedule.handshakeTrafficSecrets(shared, helloHash);

  it('parses the ClientHello and its key share', () => {
    const ch = parseClientHello(clientHello.subarray(4));
    expect(ch.cipherSuites).toEqual([0x1301, 0x1303, 0x1302]);
    const shares = parseClientKeyShares(ch.extensions.get(ExtensionType.key_share)!);
    expect(shares[0].group).toBe(0x001d);
    expect(shares[0].share).toEqual(clientPublic);
  });

  it('derives the early secret, shared secret and handshake secrets', () => {
    expect(schedule.earlySecret.toString('hex')).toBe(
      '33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a',
    );
    expect(shared.toString('hex')).toBe('8bd4054fb55b9d63fdfbacf9f04b9f0d35e6d63f537563efd46272900f89492d');
    expect(helloHash.toString('hex')).toBe('860c06edc07858ee8e78f0e7428c58edd6b43f2ca3e6e95f02ed063cf0e1cad8');
    expect(hs.client.toString('hex')).toBe('b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21');
    expect(hs.server.toString('hex')).toBe('b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38');
    const derived = hkdfExpandLabel(
      'sha256',
      schedule.earlySecret,
      'derived',
      crypto.createHash('sha256').digest(),
      32,
    );
    expect(derived.toString('hex')).toBe('6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba');
  });

  it('derives handshake traffic keys and seals the server flight exactly', () => {
    const sk = trafficKeys('sha256', hs.server, 16);
    expect(sk.key.toString('hex')).toBe('3fce516009c21727d0f2e4e86ee403bc');
    expect(sk.iv.toString('hex')).toBe('5d313eb2671276ee13000b30');
    const ck = trafficKeys('sha256', hs.client, 16);
    expect(ck.key.toString('hex')).toBe('dbfaa693d1762c5b666af5d950258d01');
    expect(ck.iv.toString('hex')).toBe('5bd3c71b836e0b76bb73265f');
    const flight = Buffer.concat([encryptedExtensions, certificate, certificateVerify, serverFinished]);
    const sealed = new Tls13Protection('aes-128-gcm', sk.key, sk.iv).seal(ContentType.handshake, flight);
    expect(sealed.toString('hex')).toBe(serverFlightRecordPrefix.toString('hex'));
  });

  it('computes both Finished values and opens the client Finished record', () => {
    const th = new Transcript('sha256');
    for (const m of [clientHello, serverHello, encryptedExtensions, certificate, certificateVerify]) th.update(m);
    expect(finishedVerifyData('sha256', hs.server, th.digest())).toEqual(serverFinished.subarray(4));
    th.update(serverFinished);
    expect(finishedVerifyData('sha256', hs.client, th.digest())).toEqual(clientFinished.subarray(4));
    const ck = trafficKeys('sha256', hs.client, 16);
    const opened = new Tls13Protection('aes-128-gcm', ck.key, ck.iv).open(recordOf(clientFinishedRecord));
    expect(opened.type).toBe(ContentType.handshake);
    expect(opened.plaintext).toEqual(clientFinished);
  });

  it('derives application secrets and protects application data and alerts both ways', () => {
    const th = new Transcript('sha256');
    for (const m of [clientHello, serverHello, encryptedExtensions, certificate, certificateVerify, serverFinished])
      th.update(m);
    expect(th.digest().toString('hex')).toBe('9608102a0f1ccc6db6250b7b7e417b1a000eaada3daae4777a7686c9ff83df13');
    const app = schedule.applicationTrafficSecrets(th.digest());
    expect(app.client.toString('hex')).toBe('9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5');
    expect(app.server.toString('hex')).toBe('a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643');
    const sk = trafficKeys('sha256', app.server, 16);
    expect(sk.key.toString('hex')).toBe('9f02283b6c9c07efc26bb9f2ac92e356');
    expect(sk.iv.toString('hex')).toBe('cf782b88dd83549aadf1e984');
    const ck = trafficKeys('sha256', app.client, 16);
    expect(ck.key.toString('hex')).toBe('17422dda596ed5d9acd890e3c63f5051');
    expect(ck.iv.toString('hex')).toBe('5b78923dee08579033e523d9');

    const serverWrite = new Tls13Protection('aes-128-gcm', sk.key, sk.iv);
    // In the trace the server's first application-key record is a NewSessionTicket (sequence 0).
    serverWrite.seal(ContentType.handshake, Buffer.alloc(0xc9 + 4));
    expect(serverWrite.seal(ContentType.application_data, appPayload)).toEqual(serverDataRecord);
    expect(serverWrite.seal(ContentType.alert, h('0100'))).toEqual(serverAlertRecord);

    const serverRead = new Tls13Protection('aes-128-gcm', ck.key, ck.iv);
    const data = serverRead.open(recordOf(clientDataRecord));
    expect(data).toEqual({ type: ContentType.application_data, plaintext: appPayload });
    const alert = serverRead.open(recordOf(clientAlertRecord));
    expect(alert).toEqual({ type: ContentType.alert, plaintext: h('0100') });
  });

  it('rejects a record whose tag was altered, with bad_record_mac', () => {
    const ck = trafficKeys('sha256', hs.client, 16);
    const tampered = Buffer.from(clientFinishedRecord);
    tampered[tampered.length - 1] ^= 1;
    expect(() => new Tls13Protection('aes-128-gcm', ck.key, ck.iv).open(recordOf(tampered))).toThrow(/bad_record_mac/);
  });
});
