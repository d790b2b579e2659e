/**
 * HTTP front end of the local SSM Parameter Store: the AWS JSON 1.1 protocol as SSM speaks it.
 *
 *   POST /  X-Amz-Target: AmazonSSM.<Operation>  Content-Type: application/x-amz-json-1.1
 *
 * Timestamps are epoch seconds; the protocol (dispatch, error shapes, loopback-only) is
 * local/aws-json-server.ts's, so the production `@aws-sdk/client-ssm` raises the exception classes
 * it raises against AWS. With a `CallLog` each call is recorded with the access key id that signed
 * it (local/call-log.ts).
 */
import {
  DEFAULT_ACCOUNT_ID,
  defaultRegion,
  loopbackBindAddress,
  startAwsJsonServer,
  type AwsJsonCall,
  type AwsJsonCallSteps,
  type AwsJsonServer,
} from '../aws-json-server';
import { CallLog, sigV4Credential, type RecordedCall } from '../call-log';
import { OPERATIONS, resourcesOf } from './operations';
import { SsmStore } from './store';

export interface LocalSsmOptions {
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Loopback address to bind: '127.0.0.1' (default), '::1' or 'localhost'. */
  host?: string;
  /** Directory for persistent state; omit for in-memory parameters. */
  dataDir?: string;
  /** Region in parameter ARNs (default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1). */
  region?: string;
  /** Account id in parameter ARNs (default 000000000000). */
  accountId?: string;
  /** Records every call with its caller (off unless given; may be shared with other endpoints). */
  callLog?: CallLog;
  /** Receives one line per failed request. Never given request bodies or values. */
  log?: (line: string) => void;
}

export interface LocalSsm {
  /** Base URL for the SDK `endpoint` option or AWS_ENDPOINT_URL_SSM, e.g. http://127.0.0.1:4600 */
  readonly url: string;
  readonly port: number;
  readonly region: string;
  readonly accountId: string;
  /** The recorded calls (live; empty unless a `callLog` was given). */
  readonly calls: readonly RecordedCall[];
  close(): Promise<void>;
}

/** Members never kept in the call record. */
const SECRET_MEMBERS = ['Value'];

const TITLE = 'local SSM';

export async function startLocalSsm(opts: LocalSsmOptions = {}): Promise<LocalSsm> {
  loopbackBindAddress(TITLE, opts.host); // before the store touches its data directory
  const region = opts.region ?? defaultRegion();
  const accountId = opts.accountId ?? DEFAULT_ACCOUNT_ID;
  const store = new SsmStore(region, accountId, opts.dataDir);
  const callLog = opts.callLog;

  const begin = ({ operation, request, headers }: AwsJsonCall): AwsJsonCallSteps => ({
    run: () =>
      OPERATIONS[operation](store, request, {
        accessKeyId: sigV4Credential(headers.authorization)?.accessKeyId,
        now: Date.now(),
      }),
    record: (error) => {
      if (!callLog) return;
      let resources: string[] = [];
      try {
        resources = resourcesOf(store, request);
      } catch {
        // a malformed name names no resource
      }
      callLog.record({ service: 'ssm', operation, headers, region, request, resources, error, omit: SECRET_MEMBERS });
    },
  });

  let server: AwsJsonServer;
  try {
    server = await startAwsJsonServer(
      {
        name: 'ssm',
        title: TITLE,
        targetPrefix: 'AmazonSSM',
        internalErrorType: 'InternalServerError',
        hasOperation: (name) => Object.hasOwn(OPERATIONS, name),
        begin,
      },
      opts,
    );
  } catch (err) {
    store.close();
    throw err;
  }
  return {
    url: server.url,
    port: server.port,
    region,
    accountId,
    calls: callLog?.calls ?? [],
    close: () => {
      store.close();
      return server.close();
    },
  };
}
