/**
 * One certificate in the certificate store (public data only): the JSON value the edge fleet reads
 * from SSM Parameter Store or a directory, and what `keyless cert import` / `keyless rotate` write.
 *
 *   {"hostnames": ["example.com"], "keyName": "site-2", "chainPem": "-----BEGIN CERTIFICATE-----...",
 *    "slot": "site", "state": "staged" | "live" | "retiring"}
 *
 * `slot` and `state` are optional so that values written before rotation existed (the CDK edge stack,
 * lib/config.ts `certificateParameterValue`) keep working: a missing state means `live`. Parsing is
 * strict: unknown fields are refused and anything carrying a private key is refused before the JSON
 * is even parsed.
 */
import { assertNoPrivateKey, ConfigError } from './config-error';
import { isObject } from './json';

/**
 * Lifecycle of a certificate during rotation (docs/rotation.md):
 * - `staged`: imported, loaded and checked by the edges, never served;
 * - `live`: served (the newest valid one first);
 * - `retiring`: served only when no live certificate fits the client, until `rotate retire` removes it.
 */
export const CERTIFICATE_STATES = ['staged', 'live', 'retiring'] as const;
export type CertificateState = (typeof CERTIFICATE_STATES)[number];

export interface StoredCertificate {
  /** Entry id in its store: the SSM parameter name below the prefix, or the file name without `.json`. */
  id: string;
  /** Where the entry was read from (full parameter name or file path), for messages. */
  source: string;
  /** Hostnames served; empty means the leaf's DNS subjectAltNames. */
  hostnames: string[];
  /** Key name at the key service that signs for this certificate (one key generation, never reused). */
  keyName: string;
  /** PEM chain, leaf first. */
  chainPem: string;
  /** The logical certificate this entry belongs to (e.g. "site"); absent on entries written before rotation. */
  slot?: string;
  state: CertificateState;
}

/** What a backend writes: everything but `source`; `id` defaults to the key name. */
export type CertificateEntryInput = Omit<StoredCertificate, 'source' | 'id'> & { id?: string };

const FIELDS = ['hostnames', 'keyName', 'chainPem', 'slot', 'state'];
const VALUE_FIX =
  'Store it as JSON {"hostnames": ["example.com"], "keyName": "<key name at the key service>", "chainPem": "-----BEGIN CERTIFICATE-----\\n...", "slot": "site", "state": "live"} (slot and state are optional; `keyless cert import` writes this).';
/** A PEM chain: one or more CERTIFICATE blocks and nothing else but whitespace. */
const PEM_CHAIN_RE = /^\s*(?:-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----\s*)+$/;
/**
 * Entry ids are file names and SSM parameter name segments, so the intersection of both alphabets;
 * no leading dot (hidden and temporary files in a directory store).
 */
export const ENTRY_ID_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$/;
/** Slots become part of a KMS alias name (`<aliasPrefix><slot>`): KMS allows [A-Za-z0-9/_-] there. */
export const SLOT_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** The key service's key-name alphabet (contract/key-service-protocol.ts KEY_NAME_PATTERN). */
const KEY_NAME_RE = /^[A-Za-z0-9._:-]{1,64}$/;

/** Throws a ConfigError unless `id` can name an entry in every backend. */
export function validateEntryId(id: string, field = 'id'): string {
  if (!ENTRY_ID_PATTERN.test(id)) {
    throw new ConfigError(
      field,
      `${JSON.stringify(id)} is not a certificate entry id`,
      'Use 1 to 64 characters of letters, digits, ".", "_" and "-", not starting with "." (the entry id is the key name).',
    );
  }
  return id;
}

/**
 * Parses one stored value strictly. `source` names it in errors (parameter name or file path); the
 * ConfigError's field is `source` or `source.<field>`.
 */
export function parseCertificateEntry(source: string, id: string, value: string | undefined): StoredCertificate {
  if (typeof value !== 'string' || value.length === 0) throw new ConfigError(source, 'has no value', VALUE_FIX);
  // Before anything else: a private key must never reach the edge, whatever field it hides in.
  assertNoPrivateKey(value, source);
  let raw: unknown;
  try {
    raw = JSON.parse(value);
  } catch (e) {
    throw new ConfigError(source, `value is not valid JSON (${(e as Error).message})`, VALUE_FIX);
  }
  if (!isObject(raw)) throw new ConfigError(source, 'value must be a JSON object', VALUE_FIX);
  const o = raw;
  for (const k of Object.keys(o)) {
    if (!FIELDS.includes(k)) {
      const hint =
        /key(file|pem)?$/i.test(k) && k !== 'keyName'
          ? ' The edge never holds a private key; the key service signs for it.'
          : '';
      throw new ConfigError(
        `${source}.${k}`,
        'unknown field',
        `Remove it; known fields are ${FIELDS.join(', ')}.${hint}`,
      );
    }
  }
  if (typeof o.keyName !== 'string' || o.keyName.length === 0)
    throw new ConfigError(
      `${source}.keyName`,
      'missing or not a string',
      'Use the key name configured at the key service.',
    );
  if (!KEY_NAME_RE.test(o.keyName))
    throw new ConfigError(
      `${source}.keyName`,
      `${JSON.stringify(o.keyName)} is not a key name`,
      'Key names are 1 to 64 characters of letters, digits, ".", "_", ":" and "-".',
    );
  if (typeof o.chainPem !== 'string' || !PEM_CHAIN_RE.test(o.chainPem)) {
    throw new ConfigError(
      `${source}.chainPem`,
      'missing or not a PEM certificate chain',
      'Give the PEM chain, leaf first: CERTIFICATE blocks only.',
    );
  }
  const hostnames = o.hostnames ?? [];
  if (!Array.isArray(hostnames) || hostnames.some((h) => typeof h !== 'string' || h.length === 0)) {
    throw new ConfigError(
      `${source}.hostnames`,
      'must be a list of host names',
      'Write e.g. ["example.com", "*.example.com"].',
    );
  }
  if (o.slot !== undefined && (typeof o.slot !== 'string' || !SLOT_PATTERN.test(o.slot))) {
    throw new ConfigError(
      `${source}.slot`,
      `${JSON.stringify(o.slot)} is not a slot name`,
      'Use 1 to 64 characters of letters, digits, "_" and "-" (e.g. "site"), or leave it out.',
    );
  }
  if (o.state !== undefined && !(CERTIFICATE_STATES as readonly unknown[]).includes(o.state)) {
    throw new ConfigError(
      `${source}.state`,
      `${JSON.stringify(o.state)} is not a certificate state`,
      `Use one of ${CERTIFICATE_STATES.join(', ')} (missing means live).`,
    );
  }
  return {
    id,
    source,
    hostnames: hostnames as string[],
    keyName: o.keyName,
    chainPem: o.chainPem,
    ...(o.slot !== undefined ? { slot: o.slot as string } : {}),
    state: (o.state as CertificateState | undefined) ?? 'live',
  };
}

/**
 * The stored JSON of an entry, in a fixed field order. Validated by parsing it back, so a backend can
 * never write what the edge would refuse (a private key, an unknown state, a malformed chain).
 */
export function serializeCertificateEntry(entry: CertificateEntryInput, source = 'certificate entry'): string {
  const value = JSON.stringify({
    hostnames: entry.hostnames,
    keyName: entry.keyName,
    chainPem: entry.chainPem,
    ...(entry.slot !== undefined ? { slot: entry.slot } : {}),
    state: entry.state,
  });
  parseCertificateEntry(source, entry.id ?? entry.keyName, value);
  return value;
}

/** Sorts entries by id, so the default certificate (clients without SNI) does not depend on listing order. */
export function sortById<T extends { id: string }>(entries: T[]): T[] {
  return entries.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
