/**
 * The edge's production Lambda transport (edge-proxy/src/keyless/lambda-http-target.ts): one signed
 * POST per key operation, the SDK's signer and configuration, no SDK middleware.
 *
 * 1. Its SigV4 signature is checked by an independent verifier written here from AWS's published
 *    algorithm (canonical request, string to sign, derived key). The verifier is first shown to accept
 *    what the SDK's own `InvokeCommand` sends and to reject a tampered request, so a pass means the
 *    lean request is signed as Lambda checks it — for a plain name, name:alias and an ARN.
 * 2. Against the local Lambda endpoint, every outcome (result, service errors, function errors,
 *    garbage, unreachable endpoint, deadline) maps to the same KeyOperationError code and message as
 *    the SDK transport (LambdaInvokeTarget), so the failover layer sees no difference.
 * 3. The endpoint comes from the SDK's own variable (AWS_ENDPOINT_URL_LAMBDA) when none is given.
 */
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startLocalLambda, type LocalLambda, type LocalLambdaFault } from '../../../../local/lambda';
import { KeyOperationError, LambdaHttpTarget, LambdaInvokeTarget } from '../../../../edge-proxy/src/keyless';
import type { KeyServiceTarget } from '../../../../edge-proxy/src/keyless/target';
import type { KeyServiceRequest } from '../../../../contract/key-service-protocol';

const CREDENTIALS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const REQUEST = {
  v: 2,
  id: 'req-1',
  op: 'tls13.certificate_verify',
  key: 'example.com',
  scheme: 'rsa_pss_rsae_sha256',
  hash: 'AAAA',
} as unknown as KeyServiceRequest;

interface Captured {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

/** AWS SigV4 verification, written from the published algorithm (not from the SDK). */
function verifySigV4(req: Captured, secret: string, service: string): { ok: boolean; reason?: string } {
  const auth = String(req.headers.authorization ?? '');
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(
      auth,
    );
  if (!m) return { ok: false, reason: `malformed Authorization: ${auth}` };
  const [, , day, region, svc, signedHeaders, signature] = m;
  if (svc !== service) return { ok: false, reason: `service ${svc}` };
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  if (!amzDate.startsWith(day)) return { ok: false, reason: 'date scope mismatch' };
  const names = signedHeaders.split(';');
  if (!names.includes('host')) return { ok: false, reason: 'host not signed' };
  const headerValue = (name: string) => {
    const values: string[] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2)
      if (req.rawHeaders[i].toLowerCase() === name) values.push(req.rawHeaders[i + 1].trim().replace(/\s+/g, ' '));
    return values.join(',');
  };
  const [pathPart, query = ''] = req.url.split('?');
  // Non-S3 services: each path segment is URI-encoded again (the path as sent is already encoded once).
  const canonicalUri = pathPart
    .split('/')
    .map((seg) => encodeURIComponent(seg).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .join('/');
  const payloadHash = crypto.createHash('sha256').update(req.body).digest('hex');
  const canonical = [
    req.method,
    canonicalUri,
    query,
    ...names.map((n) => `${n}:${headerValue(n)}`),
    '',
    signedHeaders,
    payloadHash,
  ].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, crypto.createHash('sha256').update(canonical).digest('hex')].join(
    '\n',
  );
  let key: Buffer = crypto.createHmac('sha256', `AWS4${secret}`).update(day).digest();
  for (const part of [region, service, 'aws4_request']) key = crypto.createHmac('sha256', key).update(part).digest();
  const expected = crypto.createHmac('sha256', key).update(toSign).digest('hex');
  return expected === signature ? { ok: true } : { ok: false, reason: 'signature mismatch' };
}

/** A server that records each request and answers like a successful Invoke. */
async function startCapture(): Promise<{ url: string; requests: Captured[]; close: () => Promise<void> }> {
  const requests: Captured[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks),
      });
      res.writeHead(200, { 'content-type': 'application/json', 'x-amz-executed-version': '$LATEST' });
      res.end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const FUNCTION_NAMES = [
  'keyless-key-service',
  'keyless-key-service:live',
  'arn:aws:lambda:eu-west-1:123456789012:function:keyless-key-service:live',
];

describe('SigV4: an independent verifier accepts the SDK and the lean transport alike', () => {
  let capture: Awaited<ReturnType<typeof startCapture>>;
  beforeAll(async () => (capture = await startCapture()));
  afterAll(() => capture.close());

  const sdkTarget = (functionName: string) =>
    new LambdaInvokeTarget({ functionName, region: 'eu-west-1', endpoint: capture.url, credentials: CREDENTIALS });
  const leanTarget = (functionName: string) =>
    new LambdaHttpTarget({
      functionName,
      region: 'eu-west-1',
      endpoint: capture.url,
      credentials: CREDENTIALS,
      connectTimeoutMs: 1000,
      requestTimeoutMs: 2000,
      maxSockets: 4,
    });

  it.each(FUNCTION_NAMES)('%s', async (functionName) => {
    const results: Captured[] = [];
    for (const make of [sdkTarget, leanTarget]) {
      const target: KeyServiceTarget = make(functionName);
      capture.requests.length = 0;
      await expect(target.invoke(REQUEST, new AbortController().signal)).resolves.toEqual({ ok: true });
      target.close?.();
      expect(capture.requests).toHaveLength(1);
      results.push(capture.requests[0]);
    }
    const [sdk, lean] = results;
    expect(verifySigV4(sdk, CREDENTIALS.secretAccessKey, 'lambda')).toEqual({ ok: true });
    expect(verifySigV4(lean, CREDENTIALS.secretAccessKey, 'lambda')).toEqual({ ok: true });
    // The same resource, invocation type and payload as the SDK.
    expect(lean.url).toBe(sdk.url);
    expect(lean.method).toBe('POST');
    expect(lean.headers['x-amz-invocation-type']).toBe('RequestResponse');
    expect(JSON.parse(lean.body.toString())).toEqual(JSON.parse(sdk.body.toString()));
    // The verifier is able to fail: a changed body, another secret, or another path are rejected.
    expect(verifySigV4({ ...lean, body: Buffer.from('{}') }, CREDENTIALS.secretAccessKey, 'lambda').ok).toBe(false);
    expect(verifySigV4(lean, 'another-secret', 'lambda').ok).toBe(false);
    expect(
      verifySigV4({ ...lean, url: lean.url.replace('keyless', 'keyles5') }, CREDENTIALS.secretAccessKey, 'lambda').ok,
    ).toBe(false);
  });

  it('signs at the time it is given, in the scope of its region', async () => {
    const target = new LambdaHttpTarget({
      functionName: 'keyless-key-service',
      region: 'ap-southeast-2',
      endpoint: capture.url,
      credentials: CREDENTIALS,
      connectTimeoutMs: 1000,
      requestTimeoutMs: 2000,
      maxSockets: 1,
      clock: () => new Date('2026-03-04T05:06:07Z'),
    });
    capture.requests.length = 0;
    await target.invoke(REQUEST, new AbortController().signal);
    target.close();
    const sent = capture.requests[0];
    expect(sent.headers['x-amz-date']).toBe('20260304T050607Z');
    expect(sent.headers.authorization).toContain('/20260304/ap-southeast-2/lambda/aws4_request');
    expect(verifySigV4(sent, CREDENTIALS.secretAccessKey, 'lambda')).toEqual({ ok: true });
  });
});

describe('every outcome maps as the SDK transport maps it', () => {
  let lambda: LocalLambda;
  let fault: LocalLambdaFault | undefined;
  let release: () => void = () => undefined;

  beforeAll(async () => {
    lambda = await startLocalLambda({
      faultInjector: () => fault,
      functions: {
        echo: (event) => ({ echoed: event }),
        thrower: () => {
          throw new TypeError('handler crashed');
        },
        slow: () => new Promise((resolve) => (release = () => resolve({ late: true }))),
      },
    });
  });
  afterAll(async () => {
    release();
    await lambda.close();
  });
  afterEach(() => (fault = undefined));

  const targets = (functionName: string, endpoint = lambda.url): KeyServiceTarget[] => [
    new LambdaInvokeTarget({
      functionName,
      region: 'us-east-1',
      endpoint,
      credentials: CREDENTIALS,
      httpTimeoutMs: 300,
    }),
    new LambdaHttpTarget({
      functionName,
      region: 'us-east-1',
      endpoint,
      credentials: CREDENTIALS,
      connectTimeoutMs: 300,
      requestTimeoutMs: 1500,
      maxSockets: 4,
    }),
  ];

  /** Both transports' outcomes for one invocation: the value, or the error's code and message. */
  async function outcomes(functionName: string, endpoint?: string, deadlineMs = 1000): Promise<unknown[]> {
    const out: unknown[] = [];
    for (const target of targets(functionName, endpoint)) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(new KeyOperationError('timeout', 'deadline')), deadlineMs);
      try {
        out.push({ value: await target.invoke(REQUEST, controller.signal) });
      } catch (e) {
        expect(e).toBeInstanceOf(KeyOperationError);
        out.push({ code: (e as KeyOperationError).code, message: (e as Error).message });
      } finally {
        clearTimeout(timer);
        target.close?.();
      }
    }
    return out;
  }

  const cases: Array<[string, string, LocalLambdaFault | undefined, unknown]> = [
    ['a result', 'echo', undefined, { value: { echoed: JSON.parse(JSON.stringify(REQUEST)) } }],
    [
      'an unknown function',
      'nope',
      undefined,
      { code: 'unavailable', message: 'Lambda Invoke failed: ResourceNotFoundException' },
    ],
    [
      'a function that throws',
      'thrower',
      undefined,
      { code: 'function_error', message: 'key-service function error (TypeError)' },
    ],
    [
      'throttling (429)',
      'echo',
      { type: 'error', status: 429, errorType: 'TooManyRequestsException' },
      { code: 'throttled', message: 'Lambda Invoke failed: TooManyRequestsException' },
    ],
    [
      'a service fault (500)',
      'echo',
      { type: 'error', status: 500, errorType: 'ServiceException' },
      { code: 'unavailable', message: 'Lambda Invoke failed: ServiceException' },
    ],
    [
      'an ENI limit (502)',
      'echo',
      { type: 'error', status: 502, errorType: 'ENILimitReachedException' },
      { code: 'unavailable', message: 'Lambda Invoke failed: ENILimitReachedException' },
    ],
    [
      'a payload that is not JSON',
      'echo',
      { type: 'raw', body: 'not json' },
      { code: 'internal', message: 'malformed key-service response: not JSON' },
    ],
  ];
  it.each(cases)('%s', async (_label, functionName, injected, expected) => {
    fault = injected;
    expect(await outcomes(functionName)).toEqual([expected, expected]);
  });

  it('an endpoint nobody listens on is unavailable (retryable elsewhere) on both', async () => {
    const server = http.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const closed = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await new Promise<void>((r) => server.close(() => r()));
    const [sdk, lean] = (await outcomes('echo', closed)) as Array<{ code: string; message: string }>;
    expect(sdk.code).toBe('unavailable');
    expect(lean).toEqual({ code: 'unavailable', message: 'Lambda Invoke failed: endpoint unreachable (ECONNREFUSED)' });
  });

  it('the caller’s deadline ends a slow function as timeout, on both', async () => {
    const got = await outcomes('slow', undefined, 200);
    release();
    expect(got).toEqual([
      { code: 'timeout', message: 'deadline' },
      { code: 'timeout', message: 'deadline' },
    ]);
  });

  it('with no endpoint given, the SDK’s AWS_ENDPOINT_URL_LAMBDA is where it goes', async () => {
    const saved = process.env.AWS_ENDPOINT_URL_LAMBDA;
    process.env.AWS_ENDPOINT_URL_LAMBDA = lambda.url;
    try {
      const target = new LambdaHttpTarget({
        functionName: 'echo',
        region: 'us-east-1',
        credentials: CREDENTIALS,
        connectTimeoutMs: 300,
        requestTimeoutMs: 1500,
        maxSockets: 1,
      });
      await expect(target.invoke(REQUEST, new AbortController().signal)).resolves.toEqual({
        echoed: JSON.parse(JSON.stringify(REQUEST)),
      });
      target.close();
    } finally {
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_LAMBDA;
      else process.env.AWS_ENDPOINT_URL_LAMBDA = saved;
    }
  });
});
