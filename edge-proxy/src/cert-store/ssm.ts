/**
 * Certificates (public data only) read from SSM Parameter Store at startup: every String parameter
 * below a prefix is one certificate, its value the JSON written by the CDK edge stack
 * (lib/config.ts `certificateParameterValue`): `{"hostnames":[...],"keyName":"...","chainPem":"..."}`.
 * Values are parsed strictly; anything carrying a private key is refused.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { GetParametersByPathCommand, SSMClient, type Parameter, type SSMClientConfig } from '@aws-sdk/client-ssm';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { assertNoPrivateKey, ConfigError, validateSsmPrefix } from '../config';

/** One certificate as stored in SSM. */
export interface SsmCertificateEntry {
  /** Full SSM parameter name (for messages). */
  parameter: string;
  /** PEM chain, leaf first. */
  chainPem: string;
  keyName: string;
  /** Hostnames served; empty means the leaf's DNS subjectAltNames. */
  hostnames: string[];
}

export interface SsmClientOptions {
  region?: string;
  /** Endpoint URL override (tests, local stacks); default: `AWS_ENDPOINT_URL_SSM` or the region's endpoint. */
  endpoint?: string;
  credentials?: SSMClientConfig['credentials'];
  /** TCP connect timeout of one request (default 3000 ms). */
  connectTimeoutMs?: number;
  /** Timeout of one request once connected (default 10000 ms). */
  requestTimeoutMs?: number;
  /** Attempts per call, SDK retries included (default 3). */
  maxAttempts?: number;
}

/** An SSM client with explicit timeouts, so a black-holed endpoint fails startup instead of hanging it. */
export function createSsmClient(options: SsmClientOptions = {}): SSMClient {
  return new SSMClient({
    region: options.region,
    endpoint: options.endpoint,
    credentials: options.credentials,
    maxAttempts: options.maxAttempts ?? 3,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: options.connectTimeoutMs ?? 3000,
      requestTimeout: options.requestTimeoutMs ?? 10_000,
      throwOnRequestTimeout: true,
      httpAgent: new http.Agent({ keepAlive: false }),
      httpsAgent: new https.Agent({ keepAlive: false }),
    }),
  });
}

const FIELDS = ['hostnames', 'keyName', 'chainPem'];
const VALUE_FIX = 'Store it as JSON {"hostnames": ["example.com"], "keyName": "<key name at the key service>", "chainPem": "-----BEGIN CERTIFICATE-----\\n..."} (the CDK edge stack writes this).';
/** A PEM chain: one or more CERTIFICATE blocks and nothing else but whitespace. */
const PEM_CHAIN_RE = /^\s*(?:-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----\s*)+$/;

/** Parses one parameter value strictly. Errors are ConfigErrors whose field is the parameter name. */
export function parseCertificateParameter(name: string, type: string | undefined, value: string | undefined): SsmCertificateEntry {
  if (type !== undefined && type !== 'String') {
    throw new ConfigError(name, `is a ${type} parameter`, 'Store certificates as plain String parameters: they are public data (the edge reads them without decryption).');
  }
  if (typeof value !== 'string' || value.length === 0) throw new ConfigError(name, 'has no value', VALUE_FIX);
  // Before anything else: a private key must never reach the edge, whatever field it hides in.
  assertNoPrivateKey(value, name);
  let raw: unknown;
  try {
    raw = JSON.parse(value);
  } catch (e) {
    throw new ConfigError(name, `value is not valid JSON (${(e as Error).message})`, VALUE_FIX);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(name, 'value must be a JSON object', VALUE_FIX);
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!FIELDS.includes(k)) {
      const hint = /key(file|pem)?$/i.test(k) && k !== 'keyName' ? ' The edge never holds a private key; the key service signs for it.' : '';
      throw new ConfigError(`${name}.${k}`, 'unknown field', `Remove it; known fields are ${FIELDS.join(', ')}.${hint}`);
    }
  }
  if (typeof o.keyName !== 'string' || o.keyName.length === 0) throw new ConfigError(`${name}.keyName`, 'missing or not a string', 'Use the key name configured at the key service.');
  if (typeof o.chainPem !== 'string' || !PEM_CHAIN_RE.test(o.chainPem)) {
    throw new ConfigError(`${name}.chainPem`, 'missing or not a PEM certificate chain', 'Give the PEM chain, leaf first: CERTIFICATE blocks only.');
  }
  const hostnames = o.hostnames ?? [];
  if (!Array.isArray(hostnames) || hostnames.some((h) => typeof h !== 'string' || h.length === 0)) {
    throw new ConfigError(`${name}.hostnames`, 'must be a list of host names', 'Write e.g. ["example.com", "*.example.com"].');
  }
  return { parameter: name, chainPem: o.chainPem, keyName: o.keyName, hostnames: hostnames as string[] };
}

/**
 * Reads every certificate below `prefix` (recursively, all pages), ordered by parameter name, so the
 * first one (the default for clients without SNI) does not depend on SSM's ordering. An empty store
 * yields an empty list; the caller decides whether that is fatal.
 */
export async function loadCertificatesFromSsm(client: SSMClient, prefix: string): Promise<SsmCertificateEntry[]> {
  validateSsmPrefix(prefix, 'certificateStore.ssmPrefix');
  const params: Parameter[] = [];
  const seen = new Set<string>();
  let token: string | undefined;
  do {
    let page;
    try {
      page = await client.send(new GetParametersByPathCommand({ Path: prefix, Recursive: true, WithDecryption: false, MaxResults: 10, NextToken: token }));
    } catch (e) {
      const err = e as Error;
      throw new Error(`cannot read certificates from SSM under ${prefix}: ${err.name}: ${err.message}`, { cause: e });
    }
    params.push(...(page.Parameters ?? []));
    token = page.NextToken || undefined;
    if (token !== undefined) {
      if (seen.has(token)) throw new Error(`cannot read certificates from SSM under ${prefix}: the service repeated a NextToken`);
      seen.add(token);
    }
  } while (token !== undefined);
  return params
    .map((p) => ({ ...p, Name: p.Name ?? '(unnamed parameter)' }))
    .sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0))
    .map((p) => parseCertificateParameter(p.Name, p.Type, p.Value));
}
