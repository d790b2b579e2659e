/**
 * A stand-in for LocalStack, for rehearsing the LocalStack suite where Docker is missing. It is not
 * LocalStack and proves nothing about LocalStack; it proves that the harness itself works — preflight,
 * bundling, the Lambda API calls and waiters, endpoint injection, the edge, the scenarios, the fidelity
 * run and its report — so that the real run only meets LocalStack's own behaviour.
 *
 * What it imitates, on one HTTP port like LocalStack's 4566:
 *   GET  /_localstack/health                         kms, lambda, iam, logs, sts "running"
 *   KMS (X-Amz-Target TrentService.*)                forwarded to the local KMS endpoint (local/kms)
 *   Lambda REST API: CreateFunction, GetFunction, DeleteFunction, PublishVersion, CreateAlias, Invoke
 *   Logs (X-Amz-Target Logs_20140328.FilterLogEvents) the function's stdout lines
 * A created function's zip is unpacked and run in its own node process (LocalStack: a container) with
 * the function's environment plus what LocalStack injects: AWS_ENDPOINT_URL (this server), the region,
 * credentials and the function name.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { startLocalKms, type LocalKms } from '../../local/kms';
import { readZip } from './zip';

export interface FakeLocalStack {
  url: string;
  kms: LocalKms;
  /** Invocations served, by function name. */
  invocations: Map<string, number>;
  close(): Promise<void>;
}

interface Fn {
  name: string;
  config: Record<string, unknown>;
  dir: string;
  child?: ChildProcess;
  runtimeUrl?: Promise<string>;
  versions: string[];
  aliases: Map<string, string>;
  logs: string[];
}

const ACCOUNT = '000000000000';
const RUNTIME_SCRIPT = `
const http = require('node:http');
const handler = require(process.env._HANDLER_FILE)[process.env._HANDLER_EXPORT];
let n = 0;
http.createServer((req, res) => {
  let body = '';
  req.on('data', (d) => (body += d));
  req.on('end', async () => {
    let out;
    const headers = { 'content-type': 'application/json' };
    try {
      out = JSON.stringify(await handler(body ? JSON.parse(body) : {}, { awsRequestId: 'fake-' + (++n), functionName: process.env.AWS_LAMBDA_FUNCTION_NAME }));
    } catch (e) {
      headers['x-amz-function-error'] = 'Unhandled';
      out = JSON.stringify({ errorType: e && e.name || 'Error', errorMessage: String(e && e.message) });
    }
    res.writeHead(200, headers).end(out);
  });
}).listen(0, '127.0.0.1', function () { process.stdout.write('FAKE-RUNTIME-READY http://127.0.0.1:' + this.address().port + '\\n'); });
`;

export async function startFakeLocalStack(opts: { region?: string } = {}): Promise<FakeLocalStack> {
  const region = opts.region ?? 'us-east-1';
  const kms = await startLocalKms({ region });
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-fake-localstack-'));
  const functions = new Map<string, Fn>();
  const invocations = new Map<string, number>();
  let url = '';

  const arnOf = (name: string, qualifier?: string) =>
    `arn:aws:lambda:${region}:${ACCOUNT}:function:${name}${qualifier ? `:${qualifier}` : ''}`;
  const send = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(text);
  };
  const error = (res: http.ServerResponse, status: number, type: string, message: string) =>
    send(res, status, { message, Type: 'User' }, { 'x-amzn-errortype': type });

  function startRuntime(fn: Fn): Promise<string> {
    const [file, exportName] = String(fn.config.Handler).split('.');
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      ...(fn.config.Environment as { Variables?: Record<string, string> } | undefined)?.Variables,
      // What LocalStack injects into every Lambda container:
      AWS_ENDPOINT_URL: url,
      AWS_REGION: region,
      AWS_DEFAULT_REGION: region,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_LAMBDA_FUNCTION_NAME: fn.name,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      _HANDLER_FILE: path.join(fn.dir, `${file}.js`),
      _HANDLER_EXPORT: exportName,
    };
    // NODE_OPTIONS from the function (e.g. --enable-source-maps) applies to the runtime, as in Lambda.
    const child = spawn(process.execPath, ['-e', RUNTIME_SCRIPT], {
      env,
      cwd: fn.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    fn.child = child;
    return new Promise((resolve, reject) => {
      let buf = '';
      const onLine = (line: string) => {
        const m = /^FAKE-RUNTIME-READY (\S+)/.exec(line);
        if (m) resolve(m[1]);
        else if (line.trim()) fn.logs.push(line);
      };
      const onData = (d: Buffer) => {
        buf += d.toString();
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          onLine(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', (code) =>
        reject(new Error(`function runtime exited (${code}): ${fn.logs.slice(-5).join(' | ')}`)),
      );
    });
  }

  function configuration(fn: Fn, qualifier = '$LATEST') {
    return {
      ...fn.config,
      FunctionName: fn.name,
      FunctionArn: arnOf(fn.name, qualifier === '$LATEST' ? undefined : qualifier),
      Version: qualifier,
      State: 'Active',
      LastUpdateStatus: 'Successful',
    };
  }

  async function readBody(req: http.IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://fake');
    const body = await readBody(req);
    const target = String(req.headers['x-amz-target'] ?? '');
    if (u.pathname === '/_localstack/health') {
      const running = 'running';
      return send(res, 200, {
        services: { kms: running, lambda: running, iam: running, logs: running, sts: running },
        edition: 'fake (rehearsal)',
        version: 'not-localstack',
      });
    }
    if (target.startsWith('TrentService.')) {
      const r = await fetch(`${kms.url}/`, {
        method: 'POST',
        headers: { 'content-type': String(req.headers['content-type'] ?? ''), 'x-amz-target': target },
        body,
      });
      res
        .writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' })
        .end(Buffer.from(await r.arrayBuffer()));
      return;
    }
    if (target === 'Logs_20140328.FilterLogEvents') {
      const group = (JSON.parse(body.toString() || '{}') as { logGroupName?: string }).logGroupName ?? '';
      const fn = functions.get(group.replace('/aws/lambda/', ''));
      if (!fn)
        return send(res, 400, {
          __type: 'ResourceNotFoundException',
          message: 'The specified log group does not exist.',
        });
      return send(res, 200, {
        events: fn.logs.map((message, i) => ({ message, timestamp: i, logStreamName: 'fake' })),
        searchedLogStreams: [],
      });
    }
    const m = /^\/2015-03-31\/functions(?:\/([^/]+))?(?:\/(versions|aliases|invocations))?\/?$/.exec(u.pathname);
    if (!m)
      return error(
        res,
        404,
        'UnknownOperationException',
        `fake LocalStack: ${req.method} ${u.pathname} is not imitated`,
      );
    const [rawName, qualifierInName] = decodeURIComponent(m[1] ?? '').split(':');
    const fn = functions.get(rawName);
    const sub = m[2];
    if (req.method === 'POST' && !m[1]) {
      const input = JSON.parse(body.toString()) as Record<string, unknown> & {
        FunctionName: string;
        Code: { ZipFile: string };
      };
      if (functions.has(input.FunctionName))
        return error(res, 409, 'ResourceConflictException', 'Function already exist');
      const dir = path.join(root, `${input.FunctionName}-${Date.now()}`);
      fs.mkdirSync(dir, { recursive: true });
      for (const [name, data] of readZip(Buffer.from(input.Code.ZipFile, 'base64')))
        fs.writeFileSync(path.join(dir, name), data);
      const config: Record<string, unknown> = { ...input };
      delete config.Code;
      const created: Fn = { name: input.FunctionName, config, dir, versions: [], aliases: new Map(), logs: [] };
      functions.set(created.name, created);
      return send(res, 201, configuration(created));
    }
    if (!fn) return error(res, 404, 'ResourceNotFoundException', `Function not found: ${arnOf(rawName)}`);
    if (req.method === 'GET' && !sub)
      return send(res, 200, {
        Configuration: configuration(fn, u.searchParams.get('Qualifier') ?? '$LATEST'),
        Code: { RepositoryType: 'S3' },
      });
    if (req.method === 'DELETE' && !sub) {
      fn.child?.kill('SIGTERM');
      functions.delete(fn.name);
      return send(res, 204, undefined);
    }
    if (req.method === 'POST' && sub === 'versions') {
      fn.versions.push(String(fn.versions.length + 1));
      return send(res, 201, configuration(fn, fn.versions[fn.versions.length - 1]));
    }
    if (req.method === 'POST' && sub === 'aliases') {
      const input = JSON.parse(body.toString()) as { Name: string; FunctionVersion: string };
      fn.aliases.set(input.Name, input.FunctionVersion);
      return send(res, 201, {
        AliasArn: arnOf(fn.name, input.Name),
        Name: input.Name,
        FunctionVersion: input.FunctionVersion,
      });
    }
    if (req.method === 'POST' && sub === 'invocations') {
      const qualifier = qualifierInName ?? u.searchParams.get('Qualifier') ?? undefined;
      if (qualifier && qualifier !== '$LATEST' && !fn.aliases.has(qualifier) && !fn.versions.includes(qualifier)) {
        return error(res, 404, 'ResourceNotFoundException', `Function not found: ${arnOf(fn.name, qualifier)}`);
      }
      fn.runtimeUrl ??= startRuntime(fn);
      const r = await fetch(await fn.runtimeUrl, { method: 'POST', body });
      invocations.set(fn.name, (invocations.get(fn.name) ?? 0) + 1);
      const headers: Record<string, string> = {
        'x-amz-executed-version':
          qualifier && fn.aliases.has(qualifier) ? (fn.aliases.get(qualifier) as string) : '$LATEST',
      };
      const fnError = r.headers.get('x-amz-function-error');
      if (fnError) headers['x-amz-function-error'] = fnError;
      res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(Buffer.from(await r.arrayBuffer()));
      return;
    }
    return error(res, 404, 'UnknownOperationException', `fake LocalStack: ${req.method} ${u.pathname} is not imitated`);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: Error) => {
      if (!res.headersSent) error(res, 500, 'ServiceException', e.message);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    kms,
    invocations,
    close: async () => {
      for (const fn of functions.values()) fn.child?.kill('SIGTERM');
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await kms.close();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}
