/**
 * Certificates (public data only) in SSM Parameter Store: every String parameter below a prefix is
 * one certificate, its value the JSON of entry.ts (the CDK edge stack, lib/config.ts
 * `certificateParameterValue`, writes the fields without slot and state). Values are parsed strictly;
 * anything carrying a private key is refused. `keyless cert import` / `rotate` write `<prefix><id>`.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import {
  DeleteParametersCommand,
  GetParametersByPathCommand,
  PutParameterCommand,
  SSMClient,
  type Parameter,
  type SSMClientConfig,
} from '@aws-sdk/client-ssm';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { ConfigError, validateSsmPrefix } from '../config';
import type { CertificateStoreBackend } from './backend';
import {
  parseCertificateEntry,
  serializeCertificateEntry,
  validateEntryId,
  type CertificateEntryInput,
  type StoredCertificate,
} from '../../../contract/certificate-store-entry';

/** One certificate as stored in SSM; its id is the parameter name below the prefix. */
export interface SsmCertificateEntry extends StoredCertificate {
  /** Full SSM parameter name (for messages; also `source`). */
  parameter: string;
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

/** Parses one parameter value strictly. Errors are ConfigErrors whose field is the parameter name. */
export function parseCertificateParameter(
  name: string,
  type: string | undefined,
  value: string | undefined,
  prefix?: string,
): SsmCertificateEntry {
  if (type !== undefined && type !== 'String') {
    throw new ConfigError(
      name,
      `is a ${type} parameter`,
      'Store certificates as plain String parameters: they are public data (the edge reads them without decryption).',
    );
  }
  const id = prefix !== undefined && name.startsWith(prefix) ? name.slice(prefix.length) : name;
  return { ...parseCertificateEntry(name, id, value), parameter: name };
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
      page = await client.send(
        new GetParametersByPathCommand({
          Path: prefix,
          Recursive: true,
          WithDecryption: false,
          MaxResults: 10,
          NextToken: token,
        }),
      );
    } catch (e) {
      const err = e as Error;
      throw new Error(`cannot read certificates from SSM under ${prefix}: ${err.name}: ${err.message}`, { cause: e });
    }
    params.push(...(page.Parameters ?? []));
    token = page.NextToken || undefined;
    if (token !== undefined) {
      if (seen.has(token))
        throw new Error(`cannot read certificates from SSM under ${prefix}: the service repeated a NextToken`);
      seen.add(token);
    }
  } while (token !== undefined);
  return params
    .map((p) => ({ ...p, Name: p.Name ?? '(unnamed parameter)' }))
    .sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0))
    .map((p) => parseCertificateParameter(p.Name, p.Type, p.Value, prefix));
}

/**
 * SSM parameters hold at most 8 KB (advanced tier); `Intelligent-Tiering` lets SSM pick standard
 * (4 KB, free) when the value fits, advanced otherwise.
 */
const MAX_PARAMETER_BYTES = 8192;

/** The SSM backend of the certificate store: `<prefix><id>` String parameters. */
export class SsmCertificateStore implements CertificateStoreBackend {
  readonly prefix: string;

  constructor(
    private readonly client: SSMClient,
    prefix: string,
  ) {
    this.prefix = validateSsmPrefix(prefix, 'certificateStore.ssmPrefix');
  }

  get location(): string {
    return `ssm:${this.prefix}`;
  }

  list(): Promise<StoredCertificate[]> {
    return loadCertificatesFromSsm(this.client, this.prefix);
  }

  async put(entry: CertificateEntryInput): Promise<void> {
    const id = validateEntryId(entry.id ?? entry.keyName, 'certificate entry id');
    const name = `${this.prefix}${id}`;
    const value = serializeCertificateEntry({ ...entry, id }, name);
    const size = Buffer.byteLength(value, 'utf8');
    if (size > MAX_PARAMETER_BYTES) {
      throw new ConfigError(
        name,
        `the value would be ${size} bytes; SSM parameters hold at most ${MAX_PARAMETER_BYTES}`,
        'Drop the root CA from the chain (clients have it) and keep only the leaf and intermediates.',
      );
    }
    try {
      await this.client.send(
        new PutParameterCommand({
          Name: name,
          Value: value,
          Type: 'String',
          Overwrite: true,
          Tier: 'Intelligent-Tiering',
          Description:
            `keyless certificate for ${entry.hostnames.join(', ') || 'its DNS names'} (key ${entry.keyName}, ${entry.state})`.slice(
              0,
              1024,
            ),
        }),
      );
    } catch (e) {
      const err = e as Error;
      throw new Error(`cannot write certificate ${name} to SSM: ${err.name}: ${err.message}`, { cause: e });
    }
  }

  async remove(id: string): Promise<void> {
    // Ids read back from SSM may contain "/" (nested parameters written by other tools).
    if (!/^[A-Za-z0-9_-][A-Za-z0-9_./-]{0,1010}$/.test(id)) validateEntryId(id, 'certificate entry id');
    const name = `${this.prefix}${id}`;
    try {
      // DeleteParameters (unlike DeleteParameter) reports a missing name in InvalidParameters instead
      // of failing, which is what a re-runnable step wants.
      await this.client.send(new DeleteParametersCommand({ Names: [name] }));
    } catch (e) {
      const err = e as Error;
      throw new Error(`cannot remove certificate ${name} from SSM: ${err.name}: ${err.message}`, { cause: e });
    }
  }
}
