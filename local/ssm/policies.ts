/**
 * Parameter policies (advanced-tier parameters only): `Expiration` deletes the parameter at its
 * timestamp; `ExpirationNotification` and `NoChangeNotification` are accepted and kept (they only
 * send EventBridge events in AWS, which this endpoint does not emulate).
 *
 *   [{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":"2026-12-31T00:00:00.000Z"}}]
 */
import { SsmError } from './errors';

export type PolicyType = 'Expiration' | 'ExpirationNotification' | 'NoChangeNotification';

export interface ParameterPolicy {
  type: PolicyType;
  /** The policy as the caller wrote it (returned by DescribeParameters). */
  text: string;
  /** Expiration only: epoch milliseconds. */
  expiresAt?: number;
}

const MAX_POLICIES = 10;
const UNITS = ['Days', 'Hours'];

const invalidType = (message: string): SsmError => new SsmError('InvalidPolicyTypeException', message);
const invalidAttribute = (message: string): SsmError => new SsmError('InvalidPolicyAttributeException', message);

/** Parses the `Policies` member of PutParameter; throws the exceptions SSM uses. */
export function parsePolicies(text: string, now = Date.now()): ParameterPolicy[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw invalidType('Policies must be a JSON array of policy objects.');
  }
  if (!Array.isArray(raw)) throw invalidType('Policies must be a JSON array of policy objects.');
  if (raw.length > MAX_POLICIES)
    throw new SsmError('PoliciesLimitExceededException', `You can specify at most ${MAX_POLICIES} policies.`);
  const seen = new Set<string>();
  return raw.map((p: unknown) => {
    if (!p || typeof p !== 'object' || Array.isArray(p)) throw invalidType('Each policy must be a JSON object.');
    const { Type: type, Version: version, Attributes: attrs } = p as Record<string, unknown>;
    if (type !== 'Expiration' && type !== 'ExpirationNotification' && type !== 'NoChangeNotification') {
      throw invalidType(
        `Unsupported policy type ${JSON.stringify(type)}; use Expiration, ExpirationNotification or NoChangeNotification.`,
      );
    }
    if (version !== '1.0') throw invalidAttribute(`Policy ${type} needs "Version": "1.0".`);
    if (seen.has(type)) throw new SsmError('IncompatiblePolicyException', `Policy ${type} is given more than once.`);
    seen.add(type);
    if (!attrs || typeof attrs !== 'object' || Array.isArray(attrs))
      throw invalidAttribute(`Policy ${type} needs an Attributes object.`);
    const a = attrs as Record<string, unknown>;
    const policy: ParameterPolicy = { type, text: JSON.stringify(p) };
    if (type === 'Expiration') {
      const ts = typeof a.Timestamp === 'string' ? Date.parse(a.Timestamp) : NaN;
      if (!Number.isFinite(ts))
        throw invalidAttribute('Expiration needs Attributes.Timestamp in ISO 8601 (e.g. 2026-12-31T00:00:00.000Z).');
      if (ts <= now) throw invalidAttribute('The Expiration timestamp must be in the future.');
      policy.expiresAt = ts;
    } else {
      const key = type === 'ExpirationNotification' ? 'Before' : 'After';
      if (typeof a[key] !== 'string' || !/^\d+$/.test(a[key]) || !UNITS.includes(String(a.Unit))) {
        throw invalidAttribute(
          `${type} needs Attributes.${key} (a number as a string) and Attributes.Unit (Days or Hours).`,
        );
      }
    }
    return policy;
  });
}

export function expiryOf(policies: readonly ParameterPolicy[]): number | undefined {
  return policies.find((p) => p.type === 'Expiration')?.expiresAt;
}
