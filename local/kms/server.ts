/**
 * HTTP front end of the local KMS: the AWS JSON 1.1 protocol as KMS speaks it.
 *
 *   POST /  X-Amz-Target: TrentService.<Operation>  Content-Type: application/x-amz-json-1.1
 *
 * Responses are JSON with binary members in base64 and timestamps in epoch seconds; the protocol
 * (dispatch, error shapes, loopback-only) is local/aws-json-server.ts's, so the production
 * `@aws-sdk/client-kms` raises the exception classes it raises against AWS.
 *
 * One endpoint serves every region of the account, as `AWS_ENDPOINT_URL_KMS` points every regional
 * client at it: the region is the one the request is signed for (the SigV4 credential scope), with a
 * key store per region, so multi-Region keys (ReplicateKey) and aliases per region behave as in KMS.
 *
 * The endpoint holds private keys and authenticates nobody: it is loopback-only.
 */
import {
  DEFAULT_ACCOUNT_ID,
  defaultRegion,
  startAwsJsonServer,
  type AwsJsonCall,
  type AwsJsonCallSteps,
  type AwsJsonStats,
} from '../aws-json-server';
import { CallLog } from '../call-log';
import { Input, type Json } from './input';
import { OPERATIONS } from './operations';
import { KmsStore } from './store';

export interface LocalKmsOptions {
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Loopback address to bind: '127.0.0.1' (default), '::1' or 'localhost'. */
  host?: string;
  /** Directory for persistent state (e.g. `.keyless/dev/kms`); omit for in-memory keys. */
  dataDir?: string;
  /** Region of requests that name none (unsigned), and of `region` (default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1). */
  region?: string;
  /** Account id in key ARNs (default 000000000000). */
  accountId?: string;
  /** Receives one line per failed request and per internal error. Never given request bodies. */
  log?: (line: string) => void;
  /** Records every call with its caller (off unless given; may be shared with other endpoints). */
  callLog?: CallLog;
}

export type LocalKmsStats = AwsJsonStats;

export interface LocalKms {
  /** Base URL for the SDK `endpoint` option or AWS_ENDPOINT_URL_KMS, e.g. http://127.0.0.1:4599 */
  readonly url: string;
  readonly port: number;
  readonly host: string;
  readonly region: string;
  readonly accountId: string;
  /** Live counters (mutated in place). */
  readonly stats: LocalKmsStats;
  /** The recorded calls (live; empty unless a `callLog` was given). */
  readonly calls: CallLog['calls'];
  resetStats(): void;
  close(): Promise<void>;
}

/** Request members never kept in the call record (messages, plaintext, ciphertext, signatures, policies). */
const UNRECORDED_MEMBERS = ['Message', 'Plaintext', 'CiphertextBlob', 'Signature', 'Mac', 'Policy'];

/**
 * Condition keys of the key a request names, as they are at call time: `kms:ResourceAliases` (the
 * aliases pointing at it) and `aws:ResourceTag/<key>` (its tags).
 */
function keyContextOf(store: KmsStore, body: Json): Record<string, string | string[]> {
  const id =
    typeof body.KeyId === 'string' ? body.KeyId : typeof body.TargetKeyId === 'string' ? body.TargetKeyId : undefined;
  if (id === undefined) return {};
  try {
    const key = store.resolveKey(id, { aliases: true });
    const context: Record<string, string | string[]> = {
      'kms:ResourceAliases': store
        .listAliases()
        .filter((a) => a.targetKeyId === key.keyId)
        .map((a) => a.aliasName),
    };
    for (const [k, v] of Object.entries(key.tags)) context[`aws:ResourceTag/${k}`] = v;
    return context;
  } catch {
    return {};
  }
}

/** The key and alias ARNs a request names, resolved as far as the store can (for the call record). */
function resourcesOf(store: KmsStore, body: Json, out?: Json): string[] {
  const arns = new Set<string>();
  for (const field of ['KeyId', 'TargetKeyId', 'DestinationKeyId', 'SourceKeyId']) {
    const id = body[field];
    if (typeof id !== 'string') continue;
    try {
      arns.add(store.keyArn(store.resolveKey(id, { aliases: true }).keyId));
    } catch {
      // an unknown key names no resource of ours
    }
  }
  if (typeof body.AliasName === 'string') arns.add(store.aliasArn(body.AliasName));
  const created = ((out?.KeyMetadata ?? out?.ReplicaKeyMetadata) as Json | undefined)?.Arn;
  if (typeof created === 'string') arns.add(created);
  return [...arns];
}

/** The region of a SigV4 `Authorization` header's credential scope (`Credential=AKID/date/region/kms/aws4_request`). */
function signedRegion(authorization: string | undefined): string | undefined {
  const m = /Credential=[^/,\s]+\/\d{8}\/([a-z]+(?:-[a-z]+){1,3}-\d+)\/kms\/aws4_request/.exec(authorization ?? '');
  return m?.[1];
}

export async function startLocalKms(opts: LocalKmsOptions = {}): Promise<LocalKms> {
  const region = opts.region ?? defaultRegion();
  const accountId = opts.accountId ?? DEFAULT_ACCOUNT_ID;
  const stores = new Map<string, KmsStore>();
  const storeFor = (r: string): KmsStore => {
    let s = stores.get(r);
    if (!s) {
      s = new KmsStore({ region: r, accountId, dataDir: opts.dataDir });
      s.peer = storeFor;
      stores.set(r, s);
    }
    return s;
  };
  storeFor(region);
  const callLog = opts.callLog;

  const begin = ({ operation, request, headers }: AwsJsonCall): AwsJsonCallSteps => {
    const callRegion = signedRegion(headers.authorization) ?? region;
    const store = storeFor(callRegion);
    // Resolved before the call, so a key it deletes or an alias it moves is recorded as it was.
    const before = callLog ? resourcesOf(store, request) : [];
    const context = callLog ? keyContextOf(store, request) : undefined;
    return {
      run: () => OPERATIONS[operation](store, new Input(request)),
      record: (error, out) =>
        callLog?.record({
          service: 'kms',
          operation,
          headers,
          region: callRegion,
          request,
          resources: [...new Set([...before, ...resourcesOf(store, {}, out)])],
          context,
          error,
          omit: UNRECORDED_MEMBERS,
        }),
    };
  };

  const server = await startAwsJsonServer(
    {
      name: 'kms',
      title: 'local KMS',
      targetPrefix: 'TrentService',
      internalErrorType: 'KMSInternalException',
      hasOperation: (name) => Object.hasOwn(OPERATIONS, name),
      begin,
    },
    opts,
  );
  return {
    url: server.url,
    port: server.port,
    host: server.host,
    region,
    accountId,
    stats: server.stats,
    calls: callLog?.calls ?? [],
    resetStats: () => server.resetStats(),
    close: () => server.close(),
  };
}
