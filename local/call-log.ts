/**
 * Who called what: the opt-in call record shared by the local KMS, Lambda and SSM endpoints.
 *
 * Each process of a rehearsal gets its own access key id (the edge task role, the key-service role,
 * an operator), so the SigV4 `Authorization` header names the caller:
 *
 *   AWS4-HMAC-SHA256 Credential=<AccessKeyId>/<date>/<region>/<service>/aws4_request, SignedHeaders=..., Signature=...
 *
 * The endpoints do not verify signatures (they are loopback development endpoints); the record is for
 * checking calls against IAM policies afterwards. Recording is off unless a `CallLog` is given, and it
 * keeps only names and identifiers from the request: never payloads, blobs or parameter values.
 */
import type * as http from 'node:http';

export type LocalService = 'kms' | 'lambda' | 'ssm';

export interface RecordedCall {
  service: LocalService;
  /** API operation name as IAM spells it after the service prefix, e.g. `Sign`, `InvokeFunction`, `GetParametersByPath`. */
  operation: string;
  /** The principal the access key id maps to; `unknown` when the key is not in the map, `anonymous` without SigV4. */
  principal: string;
  accessKeyId?: string;
  /** Region from the SigV4 credential scope. */
  signingRegion?: string;
  /** Region the endpoint serves. */
  region: string;
  /** Resource ARNs the call acted on, when the endpoint knows them (e.g. the key an alias resolved to). */
  resources: string[];
  /** Identifiers and enum members of the request (strings, numbers, booleans, string maps); no values, no blobs. */
  request: Record<string, unknown>;
  /** Condition keys only the service knows at call time (e.g. `kms:ResourceAliases` of the key). */
  context?: Record<string, string | string[]>;
  /** Exception name when the call failed. */
  error?: string;
  /** epoch milliseconds */
  at: number;
}

export interface SigV4Credential {
  accessKeyId: string;
  region: string;
  service: string;
}

const CREDENTIAL_RE = /Credential=([^/,\s]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/;

/** The credential scope of a SigV4 `Authorization` header, or undefined when there is none. */
export function sigV4Credential(authorization: string | string[] | undefined): SigV4Credential | undefined {
  const header = Array.isArray(authorization) ? authorization[0] : authorization;
  if (!header) return undefined;
  const m = CREDENTIAL_RE.exec(header);
  return m ? { accessKeyId: m[1], region: m[2], service: m[3] } : undefined;
}

export interface CallLogOptions {
  /** Access key id → principal name (e.g. `{ AKIAEDGE: 'edge-task-role' }`). */
  principals?: Record<string, string>;
  /** Request members never to keep (besides values that are not scalars or string maps). */
  omit?: readonly string[];
}

/** An append-only list of calls; one may be shared by several endpoints. */
export class CallLog {
  readonly calls: RecordedCall[] = [];
  private readonly principals: Map<string, string>;

  constructor(private readonly opts: CallLogOptions = {}) {
    this.principals = new Map(Object.entries(opts.principals ?? {}));
  }

  /** Maps another access key id to a principal (e.g. a process started later). */
  addPrincipal(accessKeyId: string, principal: string): void {
    this.principals.set(accessKeyId, principal);
  }

  principalOf(accessKeyId: string | undefined): string {
    if (accessKeyId === undefined) return 'anonymous';
    return this.principals.get(accessKeyId) ?? 'unknown';
  }

  record(call: {
    service: LocalService;
    operation: string;
    headers: http.IncomingHttpHeaders;
    region: string;
    request?: Record<string, unknown>;
    resources?: string[];
    context?: Record<string, string | string[]>;
    error?: string;
    omit?: readonly string[];
  }): void {
    const cred = sigV4Credential(call.headers.authorization);
    this.calls.push({
      service: call.service,
      operation: call.operation,
      principal: this.principalOf(cred?.accessKeyId),
      accessKeyId: cred?.accessKeyId,
      signingRegion: cred?.region,
      region: call.region,
      resources: call.resources ?? [],
      context: call.context,
      request: identifiersOf(call.request ?? {}, [...(this.opts.omit ?? []), ...(call.omit ?? [])]),
      error: call.error,
      at: Date.now(),
    });
  }

  clear(): void {
    this.calls.length = 0;
  }
}

/** Keeps scalar members, string lists and string→string maps; drops everything in `omit`. */
function identifiersOf(body: Record<string, unknown>, omit: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    if (omit.includes(k)) continue;
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v;
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) out[k] = [...v];
    else if (v && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string'))
      out[k] = { ...(v as Record<string, string>) };
  }
  return out;
}
