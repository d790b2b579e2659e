/**
 * The local Lambda-invoke endpoint (local/lambda) as the production @aws-sdk/client-lambda sees it.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { startLocalLambda, type LocalLambda, type LocalLambdaContext } from '../../../../local/lambda';
import { run, parseArgs } from '../../../../local/lambda/main';
import { createHandler } from '../../../../lambdas/key-service/handler';

let lambda: LocalLambda;
let client: LambdaClient;
let lastContext: LocalLambdaContext | undefined;

beforeAll(async () => {
  lambda = await startLocalLambda({
    functions: {
      echo: (event, context) => {
        lastContext = context;
        return { got: event };
      },
      'echo:live': () => ({ alias: 'live' }),
      boom: () => {
        throw new TypeError('kaboom');
      },
      asyncBoom: async () => {
        await new Promise((r) => setTimeout(r, 5));
        throw new RangeError('late kaboom');
      },
      nothing: () => undefined,
    },
  });
  client = new LambdaClient({
    endpoint: lambda.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
});

afterAll(async () => {
  client.destroy();
  await lambda.close();
});

const decode = (p: Uint8Array | undefined): unknown => JSON.parse(Buffer.from(p ?? []).toString('utf8'));
const invoke = (
  FunctionName: string,
  payload: unknown = { hello: 'world' },
  extra: Partial<ConstructorParameters<typeof InvokeCommand>[0]> = {},
) => client.send(new InvokeCommand({ FunctionName, Payload: Buffer.from(JSON.stringify(payload)), ...extra }));

describe('local Lambda endpoint', () => {
  test('listens on loopback only', async () => {
    expect(lambda.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await expect(startLocalLambda({ host: '0.0.0.0', functions: {} })).rejects.toThrow(/non-loopback/);
  });

  test('refuses requests whose Host header is not a loopback name (DNS rebinding), before running anything', async () => {
    const port = Number(new URL(lambda.url).port);
    const send = (host: string | undefined, path = '/2015-03-31/functions/echo/invocations') =>
      new Promise<{ status: number; type?: string }>((resolve, reject) => {
        const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json' };
        const req = http.request(
          { host: '127.0.0.1', port, method: 'POST', path, headers, setHost: host !== undefined },
          (res) => {
            res.resume();
            resolve({ status: res.statusCode as number, type: res.headers['x-amzn-errortype'] as string | undefined });
          },
        );
        if (host !== undefined) req.setHeader('host', host);
        req.on('error', reject);
        req.end('{}');
      });
    lambda.resetStats();
    for (const host of ['attacker.example', `attacker.example:${port}`, '127.0.0.1.attacker.example']) {
      expect(await send(host)).toEqual({ status: 403, type: 'AccessDeniedException' });
    }
    expect((await send(undefined)).status).toBe(400); // HTTP/1.1 without Host: Node refuses it first
    expect((await send('attacker.example', '/_local/stats/reset')).status).toBe(403);
    expect(lambda.stats().echo.invocations).toBe(0);
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`])
      expect((await send(host)).status).toBe(200);
    expect(lambda.stats().echo.invocations).toBe(3);
  });

  test('RequestResponse: 200, the JSON result and X-Amz-Executed-Version', async () => {
    const out = await invoke('echo', { a: [1, 2, 3] });
    expect(out.StatusCode).toBe(200);
    expect(out.ExecutedVersion).toBe('$LATEST');
    expect(out.FunctionError).toBeUndefined();
    expect(decode(out.Payload)).toEqual({ got: { a: [1, 2, 3] } });
    expect(lastContext).toMatchObject({
      functionName: 'echo',
      functionVersion: '$LATEST',
      invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:echo',
    });
    expect(lastContext!.awsRequestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(lastContext!.getRemainingTimeInMillis()).toBeGreaterThan(0);
  });

  test('function names: ARN, partial ARN, $LATEST and qualifiers', async () => {
    expect(decode((await invoke('arn:aws:lambda:eu-west-1:123456789012:function:echo')).Payload)).toEqual({
      got: { hello: 'world' },
    });
    expect(decode((await invoke('123456789012:function:echo')).Payload)).toEqual({ got: { hello: 'world' } });
    expect(decode((await invoke('echo:$LATEST')).Payload)).toEqual({ got: { hello: 'world' } });
    expect(decode((await invoke('echo', {}, { Qualifier: '$LATEST' })).Payload)).toEqual({ got: {} });
    expect(decode((await invoke('echo:live')).Payload)).toEqual({ alias: 'live' });
    expect(decode((await invoke('arn:aws:lambda:us-east-1:123456789012:function:echo:live')).Payload)).toEqual({
      alias: 'live',
    });
    expect(decode((await invoke('echo', {}, { Qualifier: 'live' })).Payload)).toEqual({ alias: 'live' });
    await expect(invoke('echo:other')).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    await expect(invoke('echo:live', {}, { Qualifier: 'other' })).rejects.toMatchObject({
      name: 'InvalidParameterValueException',
    });
  });

  test('a throwing handler: 200 with X-Amz-Function-Error: Unhandled and errorType/errorMessage', async () => {
    for (const [fn, type, message] of [
      ['boom', 'TypeError', 'kaboom'],
      ['asyncBoom', 'RangeError', 'late kaboom'],
    ]) {
      const out = await invoke(fn);
      expect(out.StatusCode).toBe(200);
      expect(out.FunctionError).toBe('Unhandled');
      expect(decode(out.Payload)).toMatchObject({ errorType: type, errorMessage: message, trace: expect.any(Array) });
    }
  });

  test('a handler returning undefined answers null', async () => {
    expect(decode((await invoke('nothing')).Payload)).toBeNull();
  });

  test('unknown function → ResourceNotFoundException as the SDK maps it', async () => {
    const err = await invoke('missing').catch((e: unknown) => e);
    expect(err).toMatchObject({
      name: 'ResourceNotFoundException',
      message: 'Function not found: arn:aws:lambda:us-east-1:000000000000:function:missing',
      Type: 'User',
      $metadata: { httpStatusCode: 404 },
    });
  });

  test('a payload that is not JSON → InvalidRequestContentException', async () => {
    const err = await client
      .send(new InvokeCommand({ FunctionName: 'echo', Payload: Buffer.from('{nope') }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'InvalidRequestContentException', $metadata: { httpStatusCode: 400 } });
  });

  test('DryRun and Event invocation types', async () => {
    lambda.resetStats();
    const dry = await invoke('echo', {}, { InvocationType: 'DryRun' });
    expect(dry.StatusCode).toBe(204);
    expect(lambda.stats().echo.invocations).toBe(0);
    const ev = await invoke('echo', {}, { InvocationType: 'Event' });
    expect(ev.StatusCode).toBe(202);
    expect(lambda.stats().echo.invocations).toBe(1);
  });

  test('per-function counters, in-process and over GET /_local/stats', async () => {
    lambda.resetStats();
    await invoke('echo');
    await invoke('echo');
    await invoke('boom');
    await invoke('missing').catch(() => undefined);
    expect(lambda.stats().echo).toEqual({ invocations: 2, errors: 0, inFlight: 0 });
    expect(lambda.stats().boom).toEqual({ invocations: 1, errors: 1, inFlight: 0 });
    const res = await fetch(`${lambda.url}/_local/stats`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { functions: Record<string, { invocations: number }> };
    expect(body.functions.echo.invocations).toBe(2);
    expect(body.functions.missing).toBeUndefined();
    expect((await fetch(`${lambda.url}/_local/stats/reset`, { method: 'POST' })).status).toBe(204);
    expect(lambda.stats().echo.invocations).toBe(0);
  });
});

describe('CLI (local/lambda/main.ts)', () => {
  test('parses its flags', () => {
    expect(parseArgs([])).toEqual({ functionName: 'keyless-key-service', port: 3001, host: '127.0.0.1' });
    expect(parseArgs(['--function-name', 'ks-a', '--port=0'])).toEqual({
      functionName: 'ks-a',
      port: 0,
      host: '127.0.0.1',
    });
    expect(() => parseArgs(['--port', '70000'])).toThrow(/--port/);
    expect(() => parseArgs(['--function-name', 'bad name'])).toThrow(/--function-name/);
    expect(() => parseArgs(['--bogus'])).toThrow(/unknown argument/);
  });

  test('serves the real key-service handler under --function-name from KEYLESS_KEYS', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-ll-'));
    const keyFile = path.join(dir, 'dev.pem');
    fs.writeFileSync(
      keyFile,
      crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
      { mode: 0o600 },
    );
    const lines: string[] = [];
    const server = await run(['--function-name', 'ks-test', '--port', '0'], {
      env: { KEYLESS_KEYS: JSON.stringify([{ name: 'dev', custody: 'file', path: keyFile }]) },
      out: (l) => lines.push(l),
      logger: () => undefined,
    });
    const c = new LambdaClient({
      endpoint: server.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'l', secretAccessKey: 'l' },
      maxAttempts: 1,
    });
    try {
      expect(lines).toEqual([`lambda: listening on http://127.0.0.1:${server.port} (node/${process.versions.node})`]);
      const out = await c.send(
        new InvokeCommand({
          FunctionName: 'ks-test',
          Payload: Buffer.from(JSON.stringify({ v: 2, id: 'cli', op: 'ping' })),
        }),
      );
      expect(decode(out.Payload)).toMatchObject({
        ok: true,
        id: 'cli',
        result: { keys: [{ name: 'dev', custody: 'file', keySpec: 'ECC_NIST_P256' }] },
      });
      await expect(run(['--port', '0'], { env: {}, out: () => undefined })).rejects.toThrow(/KEYLESS_KEYS: not set/);
    } finally {
      c.destroy();
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the real handler never produces a function error for bad input', async () => {
    const h = createHandler({ keys: [{ name: 'k', custody: 'kms', keyId: 'alias/none' }], logger: () => undefined });
    const server = await startLocalLambda({ functions: { ks: h } });
    const c = new LambdaClient({
      endpoint: server.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'l', secretAccessKey: 'l' },
      maxAttempts: 1,
    });
    try {
      for (const payload of [
        null,
        42,
        'str',
        [],
        { v: 2 },
        {
          v: 2,
          id: 'x',
          op: 'tls13.certificate_verify',
          key: 'zzz',
          scheme: 'rsa_pss_rsae_sha256',
          transcriptHash: 'AA==',
        },
      ]) {
        const out = await c.send(
          new InvokeCommand({ FunctionName: 'ks', Payload: Buffer.from(JSON.stringify(payload)) }),
        );
        expect(out.FunctionError).toBeUndefined();
        expect(decode(out.Payload)).toMatchObject({ v: 2, ok: false, error: { code: expect.any(String) } });
      }
    } finally {
      c.destroy();
      await server.close();
    }
  });
});
