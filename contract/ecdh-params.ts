/**
 * Validation of TLS 1.2 ServerECDHParams (RFC 8422 §5.4) before the key service signs them, shared
 * with the edge client (which checks before spending an invocation):
 *
 *   struct { ECCurveType curve_type; NamedCurve namedcurve; } ECParameters;   // curve_type 3 = named_curve
 *   struct { ECParameters curve_params; ECPoint public; } ServerECDHParams;   // ECPoint = opaque point<1..2^8-1>
 *
 * Accepted: x25519 (29) with a 32-byte canonical u-coordinate (RFC 7748 §5, RFC 8422 §5.11), and
 * secp256r1 (23) / secp384r1 (24) with an uncompressed point (0x04 ‖ X ‖ Y) that lies on the curve.
 * Nothing may follow the point. The service signs nothing else in a ServerKeyExchange, so a caller
 * cannot smuggle another structure (or another protocol's message) under the signature.
 */
import * as crypto from 'node:crypto';

export const EC_CURVE_TYPE_NAMED_CURVE = 3;

export const NAMED_GROUPS = {
  secp256r1: 23,
  secp384r1: 24,
  x25519: 29,
} as const;
export type SupportedGroupName = keyof typeof NAMED_GROUPS;

interface GroupRule {
  name: SupportedGroupName;
  pointLength: number;
  /** OpenSSL curve name for the on-curve check (NIST curves). */
  opensslCurve?: string;
}

const GROUPS = new Map<number, GroupRule>([
  [23, { name: 'secp256r1', pointLength: 65, opensslCurve: 'prime256v1' }],
  [24, { name: 'secp384r1', pointLength: 97, opensslCurve: 'secp384r1' }],
  [29, { name: 'x25519', pointLength: 32 }],
]);

/**
 * Longest ServerECDHParams accepted for parsing: curve_type(1) + named_curve(2) + length(1) + the
 * longest ECPoint (255). The supported curves need at most 4 + 97 (P-384); longer params for other
 * curves are answered `unsupported`, not `bad_request`.
 */
export const MAX_SERVER_ECDH_PARAMS_BYTES = 4 + 255;

/** 2^255 - 19, little-endian, for the canonical-encoding check of X25519 public values. */
const X25519_P_LE = Buffer.from('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'hex');

export type EcdhParamsCheck =
  | { ok: true; group: SupportedGroupName; namedCurve: number; point: Buffer }
  | { ok: false; code: 'bad_request' | 'unsupported'; message: string };

/**
 * Check that `params` is exactly one ServerECDHParams for a supported named curve with a valid
 * public point. Never throws; messages name the rule, never the bytes.
 */
export function checkServerEcdhParams(params: Buffer): EcdhParamsCheck {
  const bad = (message: string): EcdhParamsCheck => ({ ok: false, code: 'bad_request', message: `params: ${message}` });
  const unsupported = (message: string): EcdhParamsCheck => ({
    ok: false,
    code: 'unsupported',
    message: `params: ${message}`,
  });
  if (params.length < 4) return bad('too short for ServerECDHParams');
  if (params.length > MAX_SERVER_ECDH_PARAMS_BYTES) return bad(`longer than ${MAX_SERVER_ECDH_PARAMS_BYTES} bytes`);
  // Everything is bounded by now: curve_type (1) ‖ named_curve (2) ‖ point<1..255>.
  if (params[0] !== EC_CURVE_TYPE_NAMED_CURVE) {
    return unsupported('curve_type must be named_curve (3); explicit curves are not supported (RFC 8422 §5.4)');
  }
  const namedCurve = params.readUInt16BE(1);
  const rule = GROUPS.get(namedCurve);
  if (!rule) return unsupported('named curve not supported (x25519, secp256r1, secp384r1)');
  const pointLength = params[3];
  if (4 + pointLength !== params.length) return bad('point length does not match the data (or data follows the point)');
  if (pointLength !== rule.pointLength) return bad(`a ${rule.name} public point is ${rule.pointLength} bytes`);
  const point = params.subarray(4);
  if (rule.opensslCurve) {
    if (point[0] !== 0x04) return bad(`${rule.name} points must be uncompressed (0x04 ‖ X ‖ Y, RFC 8422 §5.4.1)`);
    try {
      // Decoding into an EC_POINT fails unless the point lies on the curve (and is not infinity).
      crypto.ECDH.convertKey(point, rule.opensslCurve, undefined, undefined, 'uncompressed');
    } catch {
      return bad(`public point is not on ${rule.name}`);
    }
  } else if (!x25519Canonical(point)) {
    return bad('x25519 public value must be a canonical, non-zero u-coordinate');
  }
  return { ok: true, group: rule.name, namedCurve, point: Buffer.from(point) };
}

/** u < 2^255 - 19 (canonical, so the top bit is clear) and u ∉ {0, 1} (points of small order). */
function x25519Canonical(u: Buffer): boolean {
  let lessThanP = false;
  for (let i = 31; i >= 0; i--) {
    if (u[i] !== X25519_P_LE[i]) {
      lessThanP = u[i] < X25519_P_LE[i];
      break;
    }
  }
  if (!lessThanP) return false;
  const isSmall = u.subarray(1).every((b) => b === 0) && (u[0] === 0 || u[0] === 1);
  return !isSmall;
}
