/**
 * TLS 1.2 PRF (RFC 5246 §5) against the published test vectors from the IETF TLS working group list
 * (the "TLS 1.2 PRF test vectors" widely used by TLS libraries), and the master-secret derivations
 * built on it (RFC 5246 §8.1, RFC 7627 §4).
 */
import * as crypto from 'node:crypto';
import {
  MASTER_SECRET_LENGTH,
  pHash,
  prf12,
  tls12ExtendedMasterSecret,
  tls12MasterSecret,
} from '../../../contract/tls12-prf';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('TLS 1.2 PRF test vectors', () => {
  test('P_SHA256, 100 bytes', () => {
    const out = prf12(
      'sha256',
      hex('9bbe436ba940f017b17652849a71db35'),
      'test label',
      hex('a0ba9f936cda311827a6f796ffd5198c'),
      100,
    );
    expect(out.toString('hex')).toBe(
      'e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a' +
        '6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab' +
        '4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701' +
        '87347b66',
    );
  });

  test('P_SHA384, 148 bytes', () => {
    const out = prf12(
      'sha384',
      hex('b80b733d6ceefcdc71566ea48e5567df'),
      'test label',
      hex('cd665cf6a8447dd6ff8b27555edb7465'),
      148,
    );
    expect(out.toString('hex')).toBe(
      '7b0c18e9ced410ed1804f2cfa34a336a1c14dffb4900bb5fd7942107e81c83cd' +
        'e9ca0faa60be9fe34f82b1233c9146a0e534cb400fed2700884f9dc236f80edd' +
        '8bfa961144c9e8d792eca722a7b32fc3d416d473ebc2c5fd4abfdad05d918425' +
        '9b5bf8cd4d90fa0d31e2dec479e4f1a26066f2eea9a69236a3e52655c9e9aee6' +
        '91c8f3a26854308d5eaa3be85e0990703d73e56f',
    );
  });

  test('shorter outputs are prefixes; P_hash is HMAC-chained as RFC 5246 §5 defines', () => {
    const secret = crypto.randomBytes(48);
    const seed = crypto.randomBytes(64);
    const long = pHash('sha256', secret, seed, 80);
    expect(pHash('sha256', secret, seed, 12).equals(long.subarray(0, 12))).toBe(true);
    expect(pHash('sha256', secret, seed, 0).length).toBe(0);
    // Spelled out for the first two blocks.
    const a1 = crypto.createHmac('sha256', secret).update(seed).digest();
    const a2 = crypto.createHmac('sha256', secret).update(a1).digest();
    const expected = Buffer.concat([
      crypto
        .createHmac('sha256', secret)
        .update(Buffer.concat([a1, seed]))
        .digest(),
      crypto
        .createHmac('sha256', secret)
        .update(Buffer.concat([a2, seed]))
        .digest(),
    ]);
    expect(long.subarray(0, 64).equals(expected)).toBe(true);
  });

  test('bad arguments are refused', () => {
    expect(() => pHash('sha1' as never, Buffer.alloc(1), Buffer.alloc(1), 10)).toThrow(TypeError);
    expect(() => pHash('sha256', Buffer.alloc(1), Buffer.alloc(1), -1)).toThrow(RangeError);
    expect(() => pHash('sha256', Buffer.alloc(1), Buffer.alloc(1), 1.5)).toThrow(RangeError);
  });
});

describe('master secrets', () => {
  test('RFC 5246 §8.1 and RFC 7627 §4 labels and seeds', () => {
    const pm = crypto.randomBytes(48);
    const cr = crypto.randomBytes(32);
    const sr = crypto.randomBytes(32);
    const ms = tls12MasterSecret('sha256', pm, cr, sr);
    expect(ms.length).toBe(MASTER_SECRET_LENGTH);
    expect(ms.equals(prf12('sha256', pm, 'master secret', Buffer.concat([cr, sr]), 48))).toBe(true);
    expect(tls12MasterSecret('sha384', pm, cr, sr).equals(ms)).toBe(false);
    const sessionHash = crypto.createHash('sha384').update('handshake').digest();
    const ems = tls12ExtendedMasterSecret('sha384', pm, sessionHash);
    expect(ems.equals(prf12('sha384', pm, 'extended master secret', sessionHash, 48))).toBe(true);
  });
});
